//! The host's health summary: counts, overall status and the task's outcome.

use crate::verdict::{CheckResult, Status};
use serde::Serialize;

/// Bumped when a field changes meaning or goes away; adding fields keeps the version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub schema_version: u32,
    pub host: String,
    /// `fail` when a mandatory check failed, `warn` when anything warned or an advisory check
    /// failed, else `pass`.
    pub status: Status,
    pub total: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub mandatory_failed: Vec<String>,
    pub advisory_failed: Vec<String>,
    pub started_at: String,
    pub duration_ms: f64,
    /// How many times the failing checks ran (1 without `wait_timeout`).
    pub attempts: u32,
    /// Time spent waiting between attempts.
    pub waited_ms: f64,
}

impl Summary {
    pub fn new(
        results: &[CheckResult],
        host: String,
        started_at: String,
        duration_ms: f64,
    ) -> Self {
        let count = |status| results.iter().filter(|r| r.status == status).count();
        let failed = |mandatory: bool| {
            results
                .iter()
                .filter(|r| r.status == Status::Fail && r.mandatory == mandatory)
                .map(CheckResult::label)
                .collect::<Vec<_>>()
        };
        let mandatory_failed = failed(true);
        let advisory_failed = failed(false);
        let status = if !mandatory_failed.is_empty() {
            Status::Fail
        } else if !advisory_failed.is_empty() || count(Status::Warn) > 0 {
            Status::Warn
        } else {
            Status::Pass
        };
        Self {
            schema_version: SCHEMA_VERSION,
            host,
            status,
            total: results.len(),
            pass: count(Status::Pass),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            skip: count(Status::Skip),
            mandatory_failed,
            advisory_failed,
            started_at,
            duration_ms,
            attempts: 1,
            waited_ms: 0.0,
        }
    }

    /// The task's one-line `msg`.
    pub fn message(&self, results: &[CheckResult]) -> String {
        if self.status == Status::Fail {
            let failed: Vec<&CheckResult> = results
                .iter()
                .filter(|r| r.status == Status::Fail && r.mandatory)
                .collect();
            // A msg listing a thousand failures helps nobody: name the first few, count the
            // rest (every one is in `checks` and `summary.mandatory_failed`).
            let mut failures: Vec<String> = failed
                .iter()
                .take(MSG_MAX_FAILURES)
                .map(|r| format!("{} ({})", r.label(), r.message))
                .collect();
            if failed.len() > MSG_MAX_FAILURES {
                failures.push(format!(
                    "and {} more (see checks)",
                    failed.len() - MSG_MAX_FAILURES
                ));
            }
            format!(
                "mandatory health checks failed{}: {}",
                self.attempts_note(),
                failures.join(", ")
            )
        } else {
            format!(
                "{} check{}: {} pass, {} warn, {} fail, {} skip{}",
                self.total,
                if self.total == 1 { "" } else { "s" },
                self.pass,
                self.warn,
                self.fail,
                self.skip,
                self.attempts_note()
            )
        }
    }

    fn attempts_note(&self) -> String {
        if self.attempts > 1 {
            format!(
                " after {} attempts ({:.1}s waited)",
                self.attempts,
                self.waited_ms / 1000.0
            )
        } else {
            String::new()
        }
    }
}

/// At most this many failed checks are named in the task's `msg`.
pub const MSG_MAX_FAILURES: usize = 10;

/// The task's `warnings`: every advisory failure and every warning, one line each, and the
/// `details.warning` of a check that passed but wants a word with the operator (a disk path
/// measured on the root filesystem).
pub fn warnings(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| match (r.status, r.mandatory) {
            (Status::Fail, false) => Some(format!(
                "advisory check {} failed: {}",
                r.label(),
                r.message
            )),
            (Status::Warn, _) => Some(format!("{}: {}", r.label(), r.message)),
            (Status::Pass, _) => r
                .details
                .get("warning")
                .and_then(|warning| warning.as_str())
                .map(|warning| format!("{}: {warning}", r.label())),
            _ => None,
        })
        .collect()
}

/// This host's name, from the kernel.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
