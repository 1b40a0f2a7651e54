//! Runs planned checks concurrently, each under its own timeout, all under one deadline.

use crate::verdict::{CheckResult, Planned, Status, Verdict};
use ansible_module::types::Duration;
use std::time::Instant;
use tokio::task::JoinSet;

/// Runs every check at once on the current runtime and returns the results in plan order.
/// A check that outlives its timeout fails with "timed out"; one still running at `deadline_at`
/// fails with "deadline exceeded" (`deadline` is the run's whole limit, for the message).
/// Never waits past `deadline_at`.
pub async fn run_all(
    plans: Vec<Planned>,
    deadline_at: Instant,
    deadline: Duration,
) -> Vec<CheckResult> {
    let started = Instant::now();
    let deadline_at = tokio::time::Instant::from_std(deadline_at);
    let mut slots: Vec<Option<CheckResult>> = vec![None; plans.len()];
    let mut waiting = Vec::with_capacity(plans.len());
    let mut set = JoinSet::new();
    for (index, Planned { meta, work }) in plans.into_iter().enumerate() {
        let timeout = meta.timeout;
        set.spawn(async move {
            let begin = Instant::now();
            let outcome = match tokio::time::timeout(timeout, work).await {
                Ok(outcome) => outcome,
                Err(_) => Verdict::fail(
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
                let result = waiting[index].result(outcome, took);
                record_progress(&result);
                slots[index] = Some(result);
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
                    Verdict::fail(
                        "unfinished",
                        format!("deadline exceeded: the whole run is limited to {deadline}"),
                    ),
                    started.elapsed(),
                )
            })
        })
        .collect()
}

/// The results finished so far in this process, newest last: what a signal's result reports.
fn progress() -> &'static std::sync::Mutex<Vec<CheckResult>> {
    static PROGRESS: std::sync::OnceLock<std::sync::Mutex<Vec<CheckResult>>> =
        std::sync::OnceLock::new();
    PROGRESS.get_or_init(Default::default)
}

fn record_progress(result: &CheckResult) {
    if let Ok(mut done) = progress().lock() {
        // A check re-run while waiting replaces its earlier line.
        done.retain(|r| !(r.kind == result.kind && r.name == result.name));
        done.push(result.clone());
    }
}

/// The interrupt report ([`ansible_module::on_interrupt`]): the checks finished so far.
pub fn report_so_far() -> ansible_module::Response {
    let done = match progress().try_lock() {
        Ok(done) => done.clone(),
        Err(_) => Vec::new(),
    };
    let mut response = ansible_module::Response::ok(format!(
        "{} check(s) finished before the interruption",
        done.len()
    ));
    response.insert("checks", &done);
    response
}

/// Settings of a wait-until-healthy run.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    pub wait_timeout: Duration,
    pub interval: Duration,
}

/// The results of every check after the last attempt.
#[derive(Debug)]
pub struct Run {
    pub results: Vec<CheckResult>,
    pub attempts: u32,
    pub waited: std::time::Duration,
}

/// Runs all checks, then, while a mandatory check fails and `waiting` allows, pauses and runs
/// the failed checks again (services come up late after a deploy). `replan` gives fresh checks
/// in the same order as `first`, so index `i` is the same check on every attempt.
pub async fn run_until_healthy<F, E>(
    first: Vec<Planned>,
    mut replan: F,
    deadline: Duration,
    waiting: Option<Waiting>,
) -> Run
where
    F: FnMut() -> Result<Vec<Planned>, E>,
{
    let started = Instant::now();
    let deadline_at = started + deadline.get();
    let mut results = run_all(first, deadline_at, deadline).await;
    let mut attempts = 1;
    let mut waited = std::time::Duration::ZERO;
    let Some(waiting) = waiting else {
        return Run {
            results,
            attempts,
            waited,
        };
    };
    loop {
        let mandatory_failing = results
            .iter()
            .any(|r| r.status == Status::Fail && r.mandatory);
        let next_attempt_at = Instant::now() + waiting.interval.get();
        if !mandatory_failing
            || next_attempt_at > started + waiting.wait_timeout.get()
            || next_attempt_at >= deadline_at
        {
            break;
        }
        tokio::time::sleep(waiting.interval.get()).await;
        waited += waiting.interval.get();
        let Ok(fresh) = replan() else { break };
        let failing: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == Status::Fail)
            .map(|(index, _)| index)
            .collect();
        let mut fresh: Vec<Option<Planned>> = fresh.into_iter().map(Some).collect();
        let selected: Vec<(usize, Planned)> = failing
            .iter()
            .filter_map(|&index| Some((index, fresh.get_mut(index)?.take()?)))
            .collect();
        let (indices, plans): (Vec<usize>, Vec<Planned>) = selected.into_iter().unzip();
        let rerun = run_all(plans, deadline_at, deadline).await;
        for (index, result) in indices.into_iter().zip(rerun) {
            results[index] = result;
        }
        attempts += 1;
    }
    Run {
        results,
        attempts,
        waited,
    }
}
