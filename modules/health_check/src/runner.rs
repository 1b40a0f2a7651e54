//! Runs planned checks concurrently, each under its own timeout, all under one deadline.
//!
//! Concurrency is bounded by the open-files limit (raised to the hard limit first): a check
//! waits for a slot rather than fail with "too many open files" for the module's own limit, and
//! its timeout starts when it runs. Child processes of checks that were given up on (a hung
//! `nvidia-smi`) are killed when dropped and reaped before a run returns.

use crate::verdict::{CheckResult, Planned, Status, Verdict};
use ansible_module::types::Duration;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// File descriptors kept back for everything that is not one check's own: stdio, the runtime's
/// epoll and signal pipes, the shared D-Bus and engine connections, artifact writes.
const RESERVED_FDS: u64 = 64;
/// The most file descriptors one check holds at once: a socket, a resolver's socket, a child's
/// pipes.
const FDS_PER_CHECK: u64 = 3;
/// How long a run waits for killed children to be reaped once its checks are done.
const REAP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
const REAP_GRACE_PAST_DEADLINE: std::time::Duration = std::time::Duration::from_millis(100);

/// How many checks may run at once with `open_files` descriptors allowed to this process.
pub fn concurrency_for(open_files: u64) -> usize {
    let slots = open_files.saturating_sub(RESERVED_FDS) / FDS_PER_CHECK;
    usize::try_from(slots.max(1))
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// Raises the open-files limit and sizes the run's concurrency from it. Where the limit cannot
/// be read, the conservative shell default of 1024 is assumed.
fn check_slots() -> Arc<Semaphore> {
    let open_files = host_probe::process::raise_open_files_limit().map_or(1024, |limit| limit.soft);
    Arc::new(Semaphore::new(concurrency_for(open_files)))
}

/// Runs every check at once on the current runtime and returns the results in plan order.
/// A check that outlives its timeout fails with "timed out"; one still running at `deadline_at`
/// fails with "deadline exceeded" (`deadline` is the run's whole limit, for the message).
/// Never waits past `deadline_at`.
pub async fn run_all(
    plans: Vec<Planned>,
    deadline_at: Instant,
    deadline: Duration,
    slots_free: &Arc<Semaphore>,
) -> Vec<CheckResult> {
    let started = Instant::now();
    let deadline_at = tokio::time::Instant::from_std(deadline_at);
    let mut slots: Vec<Option<CheckResult>> = vec![None; plans.len()];
    let mut waiting = Vec::with_capacity(plans.len());
    let mut set = JoinSet::new();
    for (index, Planned { meta, work, gate }) in plans.into_iter().enumerate() {
        let timeout = meta.timeout;
        let slots_free = Arc::clone(slots_free);
        set.spawn(async move {
            // First a place at the resource the check needs (its gate), then a slot of the
            // open-files budget; the timeout starts once it has both. Closed never: the
            // semaphores live as long as the run. Held until the check ends.
            let _gate = match gate {
                Some(gate) => gate.acquire_owned().await.ok(),
                None => None,
            };
            let _slot = slots_free.acquire_owned().await.ok();
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
    // Aborted checks drop their work (and kill their children) when the runtime next polls
    // them: let it, then wait briefly for the killed children so none is left a zombie.
    while set.join_next().await.is_some() {}
    // A SIGKILLed child dies at once unless it is stuck in the kernel; past the deadline, only
    // a moment is spent on it.
    let left = deadline_at.saturating_duration_since(tokio::time::Instant::now());
    host_probe::process::reap_abandoned(left.clamp(REAP_GRACE_PAST_DEADLINE, REAP_GRACE)).await;
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
    // The module exits right after this report: no tool it started may run on.
    host_probe::process::kill_running();
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
    let slots_free = check_slots();
    let mut results = run_all(first, deadline_at, deadline, &slots_free).await;
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
        let rerun = run_all(plans, deadline_at, deadline, &slots_free).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Kind;
    use crate::verdict::CheckMeta;

    fn sleeping_check(
        name: &str,
        sleep: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Planned {
        Planned {
            meta: CheckMeta {
                kind: Kind::Tcp,
                name: name.into(),
                mandatory: true,
                timeout,
                expected: "an answer".into(),
            },
            gate: None,
            work: Box::pin(async move {
                tokio::time::sleep(sleep).await;
                Verdict::pass("answered", "answered")
            }),
        }
    }

    #[test]
    fn concurrency_leaves_a_reserve_and_never_drops_to_zero() {
        assert_eq!(concurrency_for(1024), (1024 - 64) / 3);
        assert_eq!(concurrency_for(64), 1);
        assert_eq!(concurrency_for(0), 1);
        assert_eq!(concurrency_for(u64::MAX), Semaphore::MAX_PERMITS);
    }

    /// Three checks of 200 ms, each with a 300 ms timeout, behind `gate` (if any) and the
    /// open-files `slots`: their statuses.
    async fn three_200ms_checks(gate: Option<Arc<Semaphore>>, slots: usize) -> Vec<Status> {
        let step = std::time::Duration::from_millis(200);
        let timeout = std::time::Duration::from_millis(300);
        let plans = ["a", "b", "c"]
            .iter()
            .map(|name| Planned {
                gate: gate.clone(),
                ..sleeping_check(name, step, timeout)
            })
            .collect();
        let deadline_at = Instant::now() + std::time::Duration::from_secs(60);
        let slots = Arc::new(Semaphore::new(slots));
        let results = run_all(
            plans,
            deadline_at,
            Duration(deadline_at - Instant::now()),
            &slots,
        )
        .await;
        results.iter().map(|r| r.status).collect()
    }

    /// Three 200 ms checks through one slot take 600 ms in all, yet none times out at 300 ms:
    /// a check's timeout starts when it gets its slot.
    #[tokio::test(flavor = "current_thread")]
    async fn a_check_waiting_for_a_slot_is_not_timed_out_by_the_wait() {
        let statuses = three_200ms_checks(None, 1).await;
        assert_eq!(statuses, [Status::Pass, Status::Pass, Status::Pass]);
    }

    /// Three 200 ms checks behind a gate of one permit (the systemd bus's bound on queries in
    /// flight) take 600 ms in all, yet none times out at 300 ms: the wait at the gate is not
    /// the check's time.
    #[tokio::test(flavor = "current_thread")]
    async fn a_check_waiting_at_its_gate_is_not_timed_out_by_the_wait() {
        let statuses = three_200ms_checks(Some(Arc::new(Semaphore::new(1))), 100).await;
        assert_eq!(statuses, [Status::Pass, Status::Pass, Status::Pass]);
    }
}
