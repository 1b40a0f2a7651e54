//! A check's verdict, its line in the result, and how a planned check looks before it runs.

use crate::checks::Kind;
use serde::Serialize;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// A check's verdict. `Skip` is for checks that cannot apply on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// What a check decided, before the runner adds who it was and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub observed: String,
    pub message: String,
    pub details: Map<String, Value>,
}

impl Verdict {
    pub fn new(status: Status, observed: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            observed: observed.into(),
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn pass(observed: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::Pass, observed, message)
    }

    pub fn fail(observed: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::Fail, observed, message)
    }

    /// Adds a machine-readable figure to `details`.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// One check's line in the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub kind: Kind,
    pub name: String,
    pub status: Status,
    pub mandatory: bool,
    pub expected: String,
    pub observed: String,
    pub message: String,
    pub duration_ms: f64,
    pub details: Map<String, Value>,
}

impl CheckResult {
    /// `kind:name`, how summaries and messages refer to a check.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

pub type CheckFuture = Pin<Box<dyn Future<Output = Verdict> + Send + 'static>>;

/// A check ready to run: who it is and what it expects, plus the work itself.
pub struct Planned {
    pub meta: CheckMeta,
    pub work: CheckFuture,
    /// A bounded resource the work needs (a place among the systemd bus's queries in flight):
    /// the runner waits for a permit before the check's timeout starts and holds it while the
    /// work runs, so a long queue never times a check out.
    pub gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
}

/// Who a check is and what it expects: known before it runs, so a check that never answers
/// still gets a complete result line.
#[derive(Debug, Clone)]
pub struct CheckMeta {
    pub kind: Kind,
    pub name: String,
    pub mandatory: bool,
    pub timeout: std::time::Duration,
    pub expected: String,
}

impl CheckMeta {
    pub fn result(&self, verdict: Verdict, duration: std::time::Duration) -> CheckResult {
        CheckResult {
            kind: self.kind,
            name: self.name.clone(),
            status: verdict.status,
            mandatory: self.mandatory,
            expected: self.expected.clone(),
            observed: verdict.observed,
            message: verdict.message,
            duration_ms: round_ms(duration),
            details: verdict.details,
        }
    }
}

/// Milliseconds with two decimals: enough to compare runs, short enough to read.
pub fn round_ms(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 100_000.0).round() / 100.0
}
