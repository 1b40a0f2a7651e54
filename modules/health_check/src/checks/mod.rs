//! The check kinds, one folder each: `params.rs` (what a task writes), `judge.rs` (the pure
//! rules), `mod.rs` (the [`Check`] implementation: what it expects and how it observes) and
//! `tests.rs`.
//!
//! Every kind observes first (through `host_probe` or the network) and then judges the
//! observation with a pure function of the parameters, the observation and the clock, so
//! every rule is tested without I/O.

pub mod container;
pub mod disk;
pub mod flapping;
pub mod gpu;
pub mod http;
pub mod load;
pub mod memory;
pub mod systemd;
pub mod tcp;

use crate::verdict::{CheckMeta, Planned, Verdict};
use host_probe::ProbeError;
use serde::Serialize;
use std::future::Future;
use std::time::SystemTime;

/// The check kinds, as a result names them (`kind` in every result line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Disk,
    Memory,
    Load,
    Tcp,
    Http,
    Gpu,
    Systemd,
    Container,
    Containers,
}

impl Kind {
    /// Every kind, in the order a run lists them.
    pub const ALL: [Kind; 9] = [
        Kind::Disk,
        Kind::Memory,
        Kind::Load,
        Kind::Tcp,
        Kind::Http,
        Kind::Gpu,
        Kind::Systemd,
        Kind::Container,
        Kind::Containers,
    ];

    /// The kind's name in results, summaries and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Disk => "disk",
            Kind::Memory => "memory",
            Kind::Load => "load",
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Gpu => "gpu",
            Kind::Systemd => "systemd",
            Kind::Container => "container",
            Kind::Containers => "containers",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check kind: what it expects, how it observes the host, and how it judges what it saw.
///
/// `self` is what the kind's checks share within a run (a bus or engine connection, an HTTP
/// client); it is cheap to clone.
pub trait Check: Clone + Send + Sync + 'static {
    const KIND: Kind;
    /// One entry's parameters, as a task writes them.
    type Params: Send + Sync + 'static;
    /// What observing gives; the judge's only input besides the parameters and the clock.
    type Observation: Send + 'static;

    /// What the check requires, in words, for the result's `expected`.
    fn expected(params: &Self::Params) -> String;

    /// Reads the host (or the network). Only errors that leave nothing to judge are `Err`.
    fn observe(
        &self,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Self::Observation, ProbeError>> + Send;

    /// Decides. Pure: same parameters, observation and time, same verdict.
    fn judge(params: &Self::Params, observation: &Self::Observation, now: SystemTime) -> Verdict;

    /// The verdict when observing failed.
    fn failure(_params: &Self::Params, error: &ProbeError) -> Verdict {
        Verdict::fail(error.observed(), error.to_string())
    }
}

/// Turns one check into planned work: observe, then judge (or report the failure).
pub fn plan<C: Check>(check: C, params: C::Params, meta: CheckMeta) -> Planned {
    let work = async move {
        match check.observe(&params).await {
            Ok(observation) => C::judge(&params, &observation, SystemTime::now()),
            Err(error) => C::failure(&params, &error),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
        gate: None,
    }
}

/// A percentage with one decimal, for messages.
pub(crate) fn percent(value: f64) -> String {
    format!("{:.1}%", value)
}

/// Rounds a ratio to two decimals for `details`.
pub(crate) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
