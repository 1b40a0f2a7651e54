//! The container rules. What counts as healthy is decided in one place ([`health_problem`])
//! for both check kinds; states are the engine's own enums.

use super::params::{ContainerParams, ContainerState, HealthWanted};
use crate::verdict::Verdict;
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

/// "running, healthy, 0 restarts" (and ", OOM-killed" when it was).
fn observed(facts: &ContainerFacts) -> String {
    let restarts = match facts.restart_count {
        1 => "1 restart".to_string(),
        n => format!("{n} restarts"),
    };
    let mut parts = vec![status_phrase(facts), health_phrase(facts), restarts];
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

/// Judges one container against its check. The healthcheck is judged only when the container
/// should be and is running: a stopped container's health status is stale.
pub fn judge_container(spec: &ContainerParams, facts: &ContainerFacts) -> Verdict {
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
    }
    if let Some(max) = spec.max_restarts {
        if facts.restart_count > max {
            problems.push(format!(
                "restarted {} times, max {max}",
                facts.restart_count
            ));
        }
    }
    let name = spec.container.as_str();
    let observed = observed(facts);
    let verdict = if problems.is_empty() {
        Verdict::pass(observed.clone(), format!("container '{name}': {observed}"))
    } else {
        Verdict::fail(
            observed,
            format!("container '{name}': {}", problems.join("; ")),
        )
    };
    let health = facts.health.as_ref();
    verdict
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
        .detail("oom_killed", facts.oom_killed)
        .detail("exit_code", facts.exit_code)
}

/// Judges the running containers together: each must be healthy or have no healthcheck.
pub fn judge_all_healthy(running: &[ContainerFacts]) -> Verdict {
    let mut sorted: Vec<&ContainerFacts> = running.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let count = |status: Option<HealthStatusEnum>| {
        sorted
            .iter()
            .filter(|f| f.health.as_ref().map(|h| h.status) == status)
            .count()
    };
    let (healthy, without) = (count(Some(HealthStatusEnum::HEALTHY)), count(None));
    let offenders: Vec<&ContainerFacts> = sorted
        .iter()
        .copied()
        .filter(|f| health_problem(f.health.as_ref()).is_some())
        .collect();
    let total = sorted.len();
    let mut observed = vec![format!("{healthy} healthy")];
    for status in [HealthStatusEnum::UNHEALTHY, HealthStatusEnum::STARTING] {
        let n = count(Some(status));
        if n > 0 {
            observed.push(format!("{n} {status}"));
        }
    }
    observed.push(format!("{without} without healthcheck"));
    let observed = format!("{total} running: {}", observed.join(", "));
    let verdict = if total == 0 {
        Verdict::pass("0 running", "no running containers")
    } else if offenders.is_empty() {
        Verdict::pass(
            observed,
            format!(
                "all {total} running containers healthy or without healthcheck \
                 ({healthy} healthy, {without} without)"
            ),
        )
    } else {
        let listed: Vec<String> = offenders
            .iter()
            .filter_map(|f| {
                Some(format!(
                    "{} ({})",
                    f.name,
                    health_summary(f.health.as_ref()?)
                ))
            })
            .collect();
        Verdict::fail(
            observed,
            format!(
                "{} of {total} running containers not healthy: {}",
                offenders.len(),
                listed.join(", ")
            ),
        )
    };
    verdict
        .detail("running", total)
        .detail("healthy", healthy)
        .detail("without_healthcheck", without)
        .detail(
            "not_healthy",
            offenders.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        )
}
