//! Runs planned checks concurrently, each under its own timeout, all under one deadline.

use crate::check::{CheckResult, Outcome, Planned};
use ansible_module::types::Duration;
use std::time::Instant;
use tokio::task::JoinSet;

/// Runs every check at once on the current runtime and returns the results in plan order.
/// A check that outlives its timeout fails with "timed out"; one still running at the deadline
/// fails with "deadline exceeded". Never waits past the deadline.
pub async fn run_all(plans: Vec<Planned>, deadline: Duration) -> Vec<CheckResult> {
    let started = Instant::now();
    let deadline_at = tokio::time::Instant::from_std(started + deadline.get());
    let mut slots: Vec<Option<CheckResult>> = vec![None; plans.len()];
    let mut waiting = Vec::with_capacity(plans.len());
    let mut set = JoinSet::new();
    for (index, Planned { meta, work }) in plans.into_iter().enumerate() {
        let timeout = meta.timeout;
        set.spawn(async move {
            let begin = Instant::now();
            let outcome = match tokio::time::timeout(timeout, work).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::fail(
                    "no answer",
                    format!("timed out after {}", Duration(timeout)),
                ),
            };
            (index, outcome, begin.elapsed())
        });
        waiting.push(meta);
    }
    loop {
        match tokio::time::timeout_at(deadline_at, set.join_next()).await {
            Ok(Some(Ok((index, outcome, took)))) => {
                slots[index] = Some(waiting[index].result(outcome, took));
            }
            // A panicking check is turned into JSON by the panic hook before this is reached;
            // a cancelled one cannot happen before the deadline.
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                break;
            }
        }
    }
    slots
        .into_iter()
        .zip(&waiting)
        .map(|(slot, meta)| {
            slot.unwrap_or_else(|| {
                meta.result(
                    Outcome::fail(
                        "unfinished",
                        format!("deadline exceeded: the whole run is limited to {deadline}"),
                    ),
                    started.elapsed(),
                )
            })
        })
        .collect()
}
