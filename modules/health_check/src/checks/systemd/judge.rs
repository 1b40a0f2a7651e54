//! The systemd rules: a unit's load, active and enablement state, restarts and uptime; the
//! manager's overall state.

use super::params::{SystemdParams, UnitName, UnitStateWanted};
use crate::checks::round2;
use crate::verdict::{Status, Verdict};
use ansible_module::types::Duration;
use host_probe::systemd::{ActiveState, FailedUnits, LoadState, UnitObservation};

/// Decides a unit check. `now_usec` is CLOCK_REALTIME in microseconds, for `min_uptime`.
pub fn judge_unit(spec: &SystemdParams, seen: &UnitObservation, now_usec: u64) -> Verdict {
    let unit = &spec.unit;
    let verdict = |status, observed: String, message: String| {
        with_details(
            Verdict::new(status, observed, message),
            unit,
            seen,
            now_usec,
        )
    };
    match &seen.load_state {
        LoadState::NotFound => {
            return verdict(
                Status::Fail,
                "not-found".into(),
                format!("{unit} not found (load state not-found)"),
            )
        }
        LoadState::Loaded | LoadState::Masked => {}
        other => {
            let why = seen
                .load_error
                .as_deref()
                .map(|message| format!(": {message}"))
                .unwrap_or_default();
            return verdict(
                Status::Fail,
                format!("load state {other}"),
                format!("{unit} could not be loaded (load state {other}){why}"),
            );
        }
    }

    let mut problems = Vec::new();
    let state_ok = match spec.state {
        UnitStateWanted::Active => seen.active_state.is_up(),
        UnitStateWanted::Inactive => seen.active_state == ActiveState::Inactive,
        UnitStateWanted::Any => true,
    };
    if !state_ok {
        problems.push(format!(
            "{unit} is {}{} ({}), expected {}",
            if seen.load_state == LoadState::Masked {
                "masked and "
            } else {
                ""
            },
            seen.active_state,
            state_detail(seen),
            spec.state.as_str()
        ));
    }
    if let Some(want_enabled) = spec.enabled {
        let file_state = &seen.unit_file_state;
        let wanted = if want_enabled {
            "enabled"
        } else {
            "not enabled"
        };
        let ok = if want_enabled {
            file_state.is_enabled()
        } else {
            file_state.is_not_enabled()
        };
        if !ok && file_state.is_empty() {
            problems.push(format!("{unit} has no unit file state, expected {wanted}"));
        } else if !ok {
            problems.push(format!("{unit} is {file_state}, expected {wanted}"));
        }
    }
    if let (Some(max), Some(service)) = (spec.max_restarts, &seen.service) {
        if service.n_restarts > max {
            problems.push(format!(
                "{unit} restarted {} times, more than max_restarts {max}",
                service.n_restarts
            ));
        }
    }
    if let Some(min) = spec.min_uptime {
        // Only reached with state active; a unit that is not active already failed above.
        if let Some(up) = uptime(seen, now_usec) {
            if up < min.get() {
                problems.push(format!(
                    "{unit} active for {}, less than min_uptime {min}",
                    readable(up)
                ));
            }
        }
    }

    let observed = observed_unit(seen, now_usec);
    if problems.is_empty() {
        verdict(
            Status::Pass,
            observed,
            format!("{unit} is {} ({})", seen.active_state, seen.sub_state),
        )
    } else {
        verdict(Status::Fail, observed, problems.join("; "))
    }
}

/// "sub-state dead, result exit-code": the sub-state, and for services how they last ended.
fn state_detail(seen: &UnitObservation) -> String {
    match &seen.service {
        Some(service) => format!("sub-state {}, result {}", seen.sub_state, service.result),
        None => format!("sub-state {}", seen.sub_state),
    }
}

/// How long the unit has been active, when it is.
fn uptime(seen: &UnitObservation, now_usec: u64) -> Option<std::time::Duration> {
    let active = seen.active_state.is_up();
    (active && seen.active_enter_usec > 0)
        .then(|| std::time::Duration::from_micros(now_usec.saturating_sub(seen.active_enter_usec)))
}

/// Whole seconds from ten seconds up; nobody reads "3h2m1.532s".
fn readable(duration: std::time::Duration) -> Duration {
    if duration.as_secs() >= 10 {
        Duration::from_secs(duration.as_secs())
    } else {
        Duration(std::time::Duration::from_millis(duration.as_millis() as u64))
    }
}

fn observed_unit(seen: &UnitObservation, now_usec: u64) -> String {
    let mut parts = vec![format!("{} ({})", seen.active_state, seen.sub_state)];
    if seen.load_state == LoadState::Masked {
        parts.insert(0, "masked".into());
    }
    if let Some(service) = &seen.service {
        if service.result != "success" {
            parts.push(format!("result {}", service.result));
        }
    }
    if !seen.unit_file_state.is_empty() && seen.load_state != LoadState::Masked {
        parts.push(seen.unit_file_state.to_string());
    }
    if let Some(service) = &seen.service {
        parts.push(match service.n_restarts {
            1 => "1 restart".to_string(),
            n => format!("{n} restarts"),
        });
    }
    if let Some(up) = uptime(seen, now_usec) {
        parts.push(format!("up {}", readable(up)));
    }
    parts.join(", ")
}

fn with_details(
    mut verdict: Verdict,
    unit: &UnitName,
    seen: &UnitObservation,
    now_usec: u64,
) -> Verdict {
    verdict = verdict
        .detail("unit", unit.as_str())
        .detail("load_state", seen.load_state.as_str());
    if seen.load_state == LoadState::NotFound {
        return verdict;
    }
    verdict = verdict
        .detail("active_state", seen.active_state.as_str())
        .detail("sub_state", seen.sub_state.as_str())
        .detail("unit_file_state", seen.unit_file_state.as_str());
    if let Some(service) = &seen.service {
        verdict = verdict
            .detail("result", service.result.as_str())
            .detail("n_restarts", service.n_restarts);
    }
    if seen.active_enter_usec > 0 {
        let secs = i64::try_from(seen.active_enter_usec / 1_000_000).unwrap_or(i64::MAX);
        verdict = verdict.detail(
            "active_enter_timestamp",
            ansible_module::time::rfc3339_from_unix(secs),
        );
    }
    if let Some(up) = uptime(seen, now_usec) {
        verdict = verdict.detail("uptime_s", round2(up.as_secs_f64()));
    }
    verdict
}

/// Decides the system-state check.
pub fn judge_system_state(expected: &str, state: &str, failed: FailedUnits) -> Verdict {
    let failed_text = match &failed {
        FailedUnits::Listed(names) if names.is_empty() => "none listed".to_string(),
        FailedUnits::Listed(names) => names.join(", "),
        FailedUnits::Unknown(why) => format!("cannot list them: {why}"),
    };
    let degraded = state == "degraded";
    let observed = if degraded {
        format!("degraded (failed units: {failed_text})")
    } else {
        state.to_string()
    };
    let mut verdict = if state == expected {
        Verdict::pass(observed, format!("system is {state}"))
    } else if degraded {
        Verdict::fail(
            observed,
            format!("system is degraded, expected {expected}; failed units: {failed_text}"),
        )
    } else {
        Verdict::fail(observed, format!("system is {state}, expected {expected}"))
    };
    verdict = verdict.detail("system_state", state);
    if let FailedUnits::Listed(names) = failed {
        if degraded {
            verdict = verdict.detail("failed_units", names);
        }
    }
    verdict
}
