//! The systemd rules: a unit's load, active and enablement state, restarts and uptime; the
//! manager's overall state.

use super::params::{SystemdParams, UnitName, UnitStateWanted};
use super::UnitSeen;
use crate::checks::flapping::{flapping, readable, FlapPolicy};
use crate::checks::round2;
use crate::verdict::{Status, Verdict};
use host_probe::systemd::{ActiveState, FailedUnits, LoadState, UnitObservation};

/// Decides a unit check. Uptime is taken at the instant the properties were read
/// (`read_at_usec`), or at `now_usec` (CLOCK_REALTIME microseconds) when that is unknown; a
/// reading taken in a restart loop's few running milliseconds must not look healthy.
pub fn judge_unit(spec: &SystemdParams, seen_now: &UnitSeen, now_usec: u64) -> Verdict {
    let seen = &seen_now.unit;
    let now_usec = if seen.read_at_usec > 0 {
        seen.read_at_usec
    } else {
        now_usec
    };
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

    let up = uptime(seen, now_usec);
    let flap = seen.service.as_ref().and_then(|service| {
        flapping(
            u64::from(service.n_restarts),
            up,
            seen_now.first,
            now_usec,
            spec.flap_window(),
        )
    });
    let mut warning = None;
    match (&flap, spec.flapping) {
        (Some(why), FlapPolicy::Fail) => {
            problems.push(format!("{unit} is in a restart loop: {why}"))
        }
        (Some(why), FlapPolicy::Warn) => {
            warning = Some(format!("{unit} is in a restart loop: {why}"))
        }
        _ => {}
    }
    // Every message says how often the unit restarted and how long it has been up, so that a
    // pass after a restart loop, or a failure right after a restart, reads as what it is.
    let counts = restarts_and_uptime(seen, up);
    let observed = observed_unit(seen, now_usec);
    let mut verdict = if !problems.is_empty() {
        let mut message = problems.join("; ");
        if flap.is_none() || spec.flapping != FlapPolicy::Fail {
            message.push_str(&format!(" ({counts})"));
        }
        verdict(Status::Fail, observed, message)
    } else if let Some(message) = warning {
        verdict(Status::Warn, observed, message)
    } else {
        verdict(
            Status::Pass,
            observed,
            format!(
                "{unit} is {} ({}), {counts}",
                seen.active_state, seen.sub_state
            ),
        )
    };
    if let Some(why) = flap {
        verdict = verdict.detail("flapping", why);
    }
    verdict.detail("first_seen_restarts", seen_now.first.restarts)
}

/// "3 restarts, up 2h" (services) or "up 2h"; "not up" for a unit that is not active.
fn restarts_and_uptime(seen: &UnitObservation, up: Option<std::time::Duration>) -> String {
    let up = up.map_or_else(|| "not up".to_string(), |up| format!("up {}", readable(up)));
    match &seen.service {
        Some(service) => match service.n_restarts {
            1 => format!("1 restart, {up}"),
            n => format!("{n} restarts, {up}"),
        },
        None => up,
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
