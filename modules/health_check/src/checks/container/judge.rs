//! The container rules. What counts as healthy is decided in one place ([`health_problem`])
//! for both check kinds, and so is a restart loop ([`restart_loop`], on the shared
//! [`crate::checks::flapping`] rules); states are the engine's own enums.

use super::params::{ContainerParams, ContainerState, HealthWanted};
use super::ContainerSeen;
use crate::checks::flapping::{flapping, readable, FlapPolicy};
use crate::checks::round2;
use crate::verdict::{Status, Verdict};
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use host_probe::containers::{ContainerFacts, HealthFacts};

/// "exited (exit code 1)", "running".
fn status_phrase(facts: &ContainerFacts) -> String {
    use ContainerStateStatusEnum::{DEAD, EXITED};
    match (facts.status, facts.exit_code) {
        (Some(status @ (EXITED | DEAD)), Some(code)) => format!("{status} (exit code {code})"),
        (None, _) => "unknown state".to_string(),
        (Some(status), _) => status.to_string(),
    }
}

/// "healthy", "unhealthy (FailingStreak 3)", "health: starting", "no healthcheck".
fn health_phrase(facts: &ContainerFacts) -> String {
    match &facts.health {
        None => "no healthcheck".to_string(),
        Some(h) if h.status == HealthStatusEnum::UNHEALTHY => {
            format!("unhealthy (FailingStreak {})", h.failing_streak)
        }
        Some(h) if h.status == HealthStatusEnum::HEALTHY => "healthy".to_string(),
        Some(h) => format!("health: {}", h.status),
    }
}

/// "0 restarts, up 2h" or "7 restarts, not up": in every container message.
pub fn restarts_and_uptime(facts: &ContainerFacts) -> String {
    let restarts = match facts.restart_count {
        1 => "1 restart".to_string(),
        n => format!("{n} restarts"),
    };
    match facts.uptime() {
        Some(up) => format!("{restarts}, up {}", readable(up)),
        None => format!("{restarts}, not up"),
    }
}

/// "running, healthy, 0 restarts, up 2h" (and ", OOM-killed" when it was).
fn observed(facts: &ContainerFacts) -> String {
    let mut parts = vec![
        status_phrase(facts),
        health_phrase(facts),
        restarts_and_uptime(facts),
    ];
    if facts.oom_killed {
        parts.push("OOM-killed".to_string());
    }
    parts.join(", ")
}

/// "unhealthy, FailingStreak 3" or "health: starting": the short form, for lists.
fn health_summary(h: &HealthFacts) -> String {
    match h.status {
        HealthStatusEnum::UNHEALTHY => format!("unhealthy, FailingStreak {}", h.failing_streak),
        other => format!("health: {other}"),
    }
}

/// Why a container's healthcheck is not acceptable, or `None` when it is healthy or has none.
/// "unhealthy, FailingStreak 3, last check exit code 1: \"...\"" or "health: starting".
pub fn health_problem(health: Option<&HealthFacts>) -> Option<String> {
    let h = health?;
    match h.status {
        HealthStatusEnum::HEALTHY => None,
        HealthStatusEnum::UNHEALTHY => {
            let mut reason = health_summary(h);
            match (h.last_exit_code, &h.last_output) {
                (Some(code), Some(output)) => {
                    reason.push_str(&format!(", last check exit code {code}: {output:?}"));
                }
                (Some(code), None) => {
                    reason.push_str(&format!(", last check exit code {code} (no output)"));
                }
                (None, Some(output)) => reason.push_str(&format!(", last check: {output:?}")),
                (None, None) => {}
            }
            Some(reason)
        }
        _ => Some(health_summary(h)),
    }
}

/// Why a container is in a restart loop, or `None`: its restart count rose during this run's
/// observation ("restarted 6 times in 5s, up 3ms"), or it restarted by itself and has been up
/// for less than `window` when it was read, or is not up at all ("restarted 138 times, up 3ms
/// (less than flap_window 10s)"). With `only_rises`, only the first: a container that is meant
/// to be stopped may have restarted before it stopped for good.
pub fn restart_loop(
    seen: &ContainerSeen,
    window: std::time::Duration,
    only_rises: bool,
) -> Option<String> {
    let facts = &seen.facts;
    if only_rises && facts.restart_count <= seen.first.restarts {
        return None;
    }
    flapping(
        facts.restart_count,
        facts.uptime(),
        seen.first,
        facts.read_at_usec,
        window,
    )
}

/// "exit code 0" or "exit code 0, 143".
fn exit_codes_phrase(codes: &[i64]) -> String {
    let listed: Vec<String> = codes.iter().map(i64::to_string).collect();
    match codes {
        [_] => format!("exit code {}", listed.join("")),
        _ => format!("exit code one of {}", listed.join(", ")),
    }
}

/// What `state: exited` or `state: dead` expects of the exit code, in words.
pub fn expected_exit(spec: &ContainerParams) -> Option<String> {
    matches!(spec.state, ContainerState::Exited | ContainerState::Dead)
        .then(|| exit_codes_phrase(spec.exit_codes()))
}

/// Judges one container against its check. The healthcheck is judged only when the container
/// should be and is running: a stopped container's health status is stale. The exit code is
/// judged when it should be and is stopped. Every message ends with its restarts and uptime.
pub fn judge_container(spec: &ContainerParams, seen: &ContainerSeen) -> Verdict {
    let facts = &seen.facts;
    let mut problems = Vec::new();
    if facts.oom_killed {
        problems.push("OOM-killed".to_string());
    }
    if facts.status != Some(spec.state.status()) {
        problems.push(format!(
            "state {}, expected {}",
            status_phrase(facts),
            spec.state.as_str()
        ));
    } else if spec.state == ContainerState::Running {
        if facts.health.is_none() && spec.require_healthcheck {
            problems.push("no healthcheck (require_healthcheck is set)".to_string());
        }
        if spec.health == HealthWanted::Healthy {
            problems.extend(health_problem(facts.health.as_ref()));
        }
    } else if let Some(expected) = expected_exit(spec) {
        let accepted = spec.exit_codes();
        match facts.exit_code {
            Some(code) if accepted.contains(&code) => {}
            Some(code) => {
                let wanted = exit_codes_phrase(accepted);
                let wanted = wanted.trim_start_matches("exit code ");
                problems.push(format!("exit code {code}, expected {wanted}"));
            }
            None => problems.push(format!("no exit code reported, expected {expected}")),
        }
    }
    if let Some(max) = spec.max_restarts {
        if facts.restart_count > max {
            problems.push(format!(
                "restarted {} times, max {max}",
                facts.restart_count
            ));
        }
    }
    // A container that should be up is judged on both rules; one that should be stopped only
    // on restarts during the run; one that should be restarting is expected to loop.
    let flap = match spec.state {
        ContainerState::Restarting => None,
        ContainerState::Running | ContainerState::Paused => {
            restart_loop(seen, spec.flap_window(), false)
        }
        _ => restart_loop(seen, spec.flap_window(), true),
    };
    let mut warning = None;
    match (&flap, spec.flapping) {
        (Some(why), FlapPolicy::Fail) => problems.push(format!("in a restart loop: {why}")),
        (Some(why), FlapPolicy::Warn) => warning = Some(format!("in a restart loop: {why}")),
        _ => {}
    }
    let name = spec.container.as_str();
    let counts = restarts_and_uptime(facts);
    let observed = observed(facts);
    let verdict = if !problems.is_empty() {
        Verdict::fail(
            observed,
            format!("container '{name}': {} ({counts})", problems.join("; ")),
        )
    } else if let Some(warning) = warning {
        Verdict::new(
            Status::Warn,
            observed,
            format!("container '{name}': {warning} ({counts})"),
        )
    } else {
        Verdict::pass(observed.clone(), format!("container '{name}': {observed}"))
    };
    let health = facts.health.as_ref();
    let verdict = verdict
        .detail("id", facts.short_id())
        .detail(
            "status",
            facts.status.map(|s| s.to_string()).unwrap_or_default(),
        )
        .detail("health", health.map(|h| h.status.to_string()))
        .detail("failing_streak", health.map(|h| h.failing_streak))
        .detail(
            "last_health_output",
            health.and_then(|h| h.last_output.as_deref()),
        )
        .detail("restart_count", facts.restart_count)
        .detail("first_seen_restarts", seen.first.restarts)
        .detail(
            "uptime_s",
            facts.uptime().map(|up| round2(up.as_secs_f64())),
        )
        .detail("started_at", facts.started_at_usec.map(rfc3339))
        .detail("oom_killed", facts.oom_killed)
        .detail("exit_code", facts.exit_code);
    match flap {
        Some(why) => verdict.detail("flapping", why),
        None => verdict,
    }
}

/// Microseconds since the epoch as an RFC 3339 UTC time (whole seconds).
fn rfc3339(usec: u64) -> String {
    ansible_module::time::rfc3339_from_unix(i64::try_from(usec / 1_000_000).unwrap_or(i64::MAX))
}

/// Why one live container is not healthy (`fail`) or only suspicious (`warn`): its state,
/// an OOM loop, a restart loop, its healthcheck.
fn container_problems(
    seen: &ContainerSeen,
    policy: FlapPolicy,
    window: std::time::Duration,
) -> (Vec<String>, Vec<String>) {
    use ContainerStateStatusEnum::{DEAD, PAUSED, RESTARTING, RUNNING};
    let facts = &seen.facts;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    match facts.status {
        Some(RUNNING) => {}
        Some(RESTARTING | PAUSED | DEAD) => problems.push(status_phrase(facts)),
        Some(other) => problems.push(other.to_string()),
        None => problems.push("unknown state".to_string()),
    }
    if facts.oom_killed && facts.restart_count > 0 {
        problems.push("OOM-looping: OOM-killed and restarted".to_string());
    }
    match (restart_loop(seen, window, false), policy) {
        (Some(why), FlapPolicy::Fail) => problems.push(format!("restart loop: {why}")),
        (Some(why), FlapPolicy::Warn) => warnings.push(format!("restart loop: {why}")),
        _ => {}
    }
    if facts.status == Some(RUNNING) {
        if let Some(health) = facts.health.as_ref() {
            if health_problem(Some(health)).is_some() {
                problems.push(health_summary(health));
            }
        }
    }
    (problems, warnings)
}

/// Judges the live containers (running, restarting, paused, dead) together: each must be
/// running, not in a restart loop, not OOM-looping, and healthy or without a healthcheck.
/// Each offender is named with why.
pub fn judge_all_healthy(
    live: &[ContainerSeen],
    policy: FlapPolicy,
    window: std::time::Duration,
) -> Verdict {
    use ContainerStateStatusEnum::RUNNING;
    let mut sorted: Vec<&ContainerSeen> = live.iter().collect();
    sorted.sort_by(|a, b| a.facts.name.cmp(&b.facts.name));
    let running: Vec<&ContainerFacts> = sorted
        .iter()
        .map(|seen| &seen.facts)
        .filter(|facts| facts.status == Some(RUNNING))
        .collect();
    let count = |status: Option<HealthStatusEnum>| {
        running
            .iter()
            .filter(|f| f.health.as_ref().map(|h| h.status) == status)
            .count()
    };
    let (healthy, without) = (count(Some(HealthStatusEnum::HEALTHY)), count(None));
    let mut offenders = Vec::new();
    let mut suspects = Vec::new();
    for seen in &sorted {
        let (problems, warnings) = container_problems(seen, policy, window);
        let name = &seen.facts.name;
        if !problems.is_empty() {
            offenders.push((name.clone(), problems.join("; ")));
        } else if !warnings.is_empty() {
            suspects.push((name.clone(), warnings.join("; ")));
        }
    }
    let total = sorted.len();
    let mut counts = vec![format!("{healthy} healthy")];
    for status in [HealthStatusEnum::UNHEALTHY, HealthStatusEnum::STARTING] {
        let n = count(Some(status));
        if n > 0 {
            counts.push(format!("{n} {status}"));
        }
    }
    counts.push(format!("{without} without healthcheck"));
    let mut observed = format!("{} running: {}", running.len(), counts.join(", "));
    for status in [
        ContainerStateStatusEnum::RESTARTING,
        ContainerStateStatusEnum::PAUSED,
        ContainerStateStatusEnum::DEAD,
    ] {
        let n = sorted
            .iter()
            .filter(|seen| seen.facts.status == Some(status))
            .count();
        if n > 0 {
            observed.push_str(&format!("; {n} {status}"));
        }
    }
    let listed = |entries: &[(String, String)]| {
        entries
            .iter()
            .map(|(name, why)| format!("{name} ({why})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let verdict = if total == 0 {
        Verdict::pass("0 running", "no running containers")
    } else if !offenders.is_empty() {
        Verdict::fail(
            observed,
            format!(
                "{} of {total} containers not healthy: {}",
                offenders.len(),
                listed(&offenders)
            ),
        )
    } else if !suspects.is_empty() {
        Verdict::new(
            Status::Warn,
            observed,
            format!(
                "{} of {total} containers in a restart loop: {}",
                suspects.len(),
                listed(&suspects)
            ),
        )
    } else {
        Verdict::pass(
            observed,
            format!(
                "all {total} running containers healthy or without healthcheck \
                 ({healthy} healthy, {without} without)"
            ),
        )
    };
    let restarts: serde_json::Map<String, serde_json::Value> = sorted
        .iter()
        .map(|seen| (seen.facts.name.clone(), seen.facts.restart_count.into()))
        .collect();
    verdict
        .detail("running", running.len())
        .detail("healthy", healthy)
        .detail("without_healthcheck", without)
        .detail(
            "not_healthy",
            offenders
                .iter()
                .map(|(name, _)| name.clone())
                .collect::<Vec<_>>(),
        )
        .detail("restart_counts", restarts)
}
