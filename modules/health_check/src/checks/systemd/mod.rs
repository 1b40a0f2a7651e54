//! `systemd`: units (`systemd` entries) and the manager's overall state (`system_state`), read
//! by `host_probe::systemd` over D-Bus. All systemd checks of a run share one bus connection.

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::flapping::{self, FirstSeen};
use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::systemd::{Bus, SystemStateObservation, UnitObservation};
use host_probe::ProbeError;
use params::{SystemStateParams, SystemdParams, UnitStateWanted};
use std::time::SystemTime;

/// A unit as read now, with the run's first reading of it (restarts in between mean a
/// restart loop).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnitSeen {
    pub unit: UnitObservation,
    pub first: FirstSeen,
}

/// The unit check, sharing the run's bus.
#[derive(Clone)]
pub struct Unit {
    pub bus: Bus,
}

/// The system-state check, sharing the run's bus.
#[derive(Clone)]
pub struct SystemState {
    pub bus: Bus,
}

/// Checks the combinations serde cannot; the error names the parameter (`systemd[2]`).
pub fn validate(spec: &SystemdParams, parameter: &str) -> Result<(), ansible_module::Error> {
    if spec.max_restarts.is_some() && spec.unit.suffix() != "service" {
        return Err(ansible_module::Error::InvalidParameter {
            name: format!("{parameter}.max_restarts"),
            message: format!("only .service units count restarts, not {}", spec.unit),
        });
    }
    if spec.min_uptime.is_some() && spec.state != UnitStateWanted::Active {
        return Err(ansible_module::Error::InvalidParameter {
            name: format!("{parameter}.min_uptime"),
            message: format!("needs state active, not {}", spec.state.as_str()),
        });
    }
    Ok(())
}

/// CLOCK_REALTIME in microseconds, as systemd's timestamps are.
fn realtime_usec(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Check for Unit {
    const KIND: Kind = Kind::Systemd;
    type Params = SystemdParams;
    type Observation = UnitSeen;

    fn expected(spec: &SystemdParams) -> String {
        let mut parts = vec![match spec.state {
            UnitStateWanted::Active => "active".to_string(),
            UnitStateWanted::Inactive => "inactive".to_string(),
            UnitStateWanted::Any => "loaded, any state".to_string(),
        }];
        match spec.enabled {
            Some(true) => parts.push("enabled".into()),
            Some(false) => parts.push("not enabled".into()),
            None => {}
        }
        if let Some(max) = spec.max_restarts {
            parts.push(format!("at most {max} restarts"));
        }
        if let Some(min) = spec.min_uptime {
            parts.push(format!("up for at least {min}"));
        }
        parts.join(", ")
    }

    async fn observe(&self, spec: &SystemdParams) -> Result<UnitSeen, ProbeError> {
        // The runner holds a permit of the bus's query slots for this check (its gate).
        let unit = self.bus.unit_holding_slot(spec.unit.as_str()).await?;
        let now = FirstSeen {
            restarts: unit.service.as_ref().map_or(0, |s| u64::from(s.n_restarts)),
            read_at_usec: unit.read_at_usec,
        };
        let first = flapping::first_seen(&format!("systemd:{}", spec.unit), now);
        Ok(UnitSeen { unit, first })
    }

    fn judge(spec: &SystemdParams, seen: &UnitSeen, now: SystemTime) -> Verdict {
        judge::judge_unit(spec, seen, realtime_usec(now))
    }
}

impl Check for SystemState {
    const KIND: Kind = Kind::Systemd;
    type Params = SystemStateParams;
    type Observation = SystemStateObservation;

    fn expected(spec: &SystemStateParams) -> String {
        format!("system state {}", spec.state.as_str())
    }

    async fn observe(
        &self,
        _spec: &SystemStateParams,
    ) -> Result<SystemStateObservation, ProbeError> {
        Ok(self.bus.system_state().await?)
    }

    fn judge(spec: &SystemStateParams, seen: &SystemStateObservation, _now: SystemTime) -> Verdict {
        judge::judge_system_state(spec.state.as_str(), &seen.state, seen.failed_units.clone())
    }
}
