//! `tcp`: reachability of a `host:port`: resolve, then connect to each address until one
//! answers.

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::{round_ms, Verdict};
use host_probe::error::io_reason;
use host_probe::ProbeError;
use params::{HostPort, TcpParams};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// The TCP check.
#[derive(Debug, Clone, Copy)]
pub struct Tcp;

/// What connecting found. An unreachable address is an observation, not a probe error: the
/// judge words it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TcpObservation {
    /// The name did not resolve; the resolver's reason.
    Unresolved(String),
    Connected {
        peer: SocketAddr,
        connect_ms: f64,
    },
    /// Every resolved address refused (none at all when the list is empty), with the reasons.
    Unreachable(Vec<(SocketAddr, String)>),
}

impl Check for Tcp {
    const KIND: Kind = Kind::Tcp;
    type Params = TcpParams;
    type Observation = TcpObservation;

    /// Uses the entry's own timeout; the planner fills in the run's default first.
    fn expected(spec: &TcpParams) -> String {
        format!(
            "connect within {}",
            spec.timeout.unwrap_or(crate::args::DEFAULT_TIMEOUT)
        )
    }

    async fn observe(&self, spec: &TcpParams) -> Result<TcpObservation, ProbeError> {
        Ok(connect(&spec.address).await)
    }

    fn judge(spec: &TcpParams, seen: &TcpObservation, _now: SystemTime) -> Verdict {
        judge::judge(&spec.address, seen)
    }
}

/// Resolves `address` and connects to each of its addresses until one answers.
pub async fn connect(address: &HostPort) -> TcpObservation {
    let started = Instant::now();
    let resolved: Vec<SocketAddr> =
        match tokio::net::lookup_host((address.host.as_str(), address.port)).await {
            Ok(addrs) => addrs.collect(),
            Err(err) => return TcpObservation::Unresolved(err.to_string()),
        };
    let mut failures = Vec::new();
    for candidate in resolved {
        match tokio::net::TcpStream::connect(candidate).await {
            Ok(_) => {
                return TcpObservation::Connected {
                    peer: candidate,
                    connect_ms: round_ms(started.elapsed()),
                }
            }
            Err(err) => failures.push((candidate, io_reason(&err))),
        }
    }
    TcpObservation::Unreachable(failures)
}
