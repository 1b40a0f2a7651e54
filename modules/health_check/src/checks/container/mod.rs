//! `container` and `containers`: one container's state, healthcheck and restarts
//! (`containers` entries), or the health of every running, restarting, paused or dead
//! container at once (`containers_all_healthy`), over the Docker Engine API (Docker, or
//! Podman's compatible socket). Both share one engine connection per run. The first reading
//! of each container in a run is kept ([`crate::checks::flapping`]): a container that
//! restarted between two attempts of a `wait_timeout` run is in a restart loop, even if a
//! later attempt catches it in its few running milliseconds.

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::flapping::{self, FirstSeen};
use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::containers::{ContainerFacts, Inspected};
use host_probe::engine::Engine;
use host_probe::ProbeError;
use params::{AllHealthyParams, ContainerParams, ContainerState, HealthWanted};
use std::sync::Arc;
use std::time::SystemTime;

pub use params::validate;

/// A container as read now, with the run's first reading of it (restarts in between mean a
/// restart loop).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerSeen {
    pub facts: ContainerFacts,
    pub first: FirstSeen,
}

impl ContainerSeen {
    /// Pairs a reading with the run's first reading of the same container (by ID: a
    /// container removed and created again under its name starts afresh), recording this one
    /// if it is the first.
    pub fn remembered(facts: ContainerFacts) -> Self {
        let now = FirstSeen {
            restarts: facts.restart_count,
            read_at_usec: facts.read_at_usec,
        };
        let first = flapping::first_seen(&format!("container:{}", facts.id), now);
        Self { facts, first }
    }
}

/// One container's check, sharing the run's engine connection.
#[derive(Clone)]
pub struct Container {
    pub engine: Arc<Engine>,
}

/// The every-running-container check, sharing the run's engine connection.
#[derive(Clone)]
pub struct AllContainers {
    pub engine: Arc<Engine>,
}

/// A failed observation's verdict, with the engine's API version when one was agreed.
fn engine_failure(error: &ProbeError) -> Verdict {
    let verdict = Verdict::fail(error.observed(), error.to_string());
    match error {
        ProbeError::Engine(engine) => match engine.api_version() {
            Some(version) => verdict.detail("engine_api_version", version),
            None => verdict,
        },
        _ => verdict,
    }
}

impl Check for Container {
    const KIND: Kind = Kind::Container;
    type Params = ContainerParams;
    type Observation = Inspected<ContainerSeen>;

    fn expected(spec: &ContainerParams) -> String {
        let mut parts = vec![format!("state {}", spec.state.as_str())];
        if spec.state == ContainerState::Running {
            match (spec.health, spec.require_healthcheck) {
                (HealthWanted::Healthy, false) => parts.push("healthy or no healthcheck".into()),
                (HealthWanted::Healthy, true) => parts.push("healthy".into()),
                (HealthWanted::Any, true) => parts.push("has a healthcheck".into()),
                (HealthWanted::Any, false) => {}
            }
        }
        parts.extend(judge::expected_exit(spec));
        if let Some(max) = spec.max_restarts {
            parts.push(format!("at most {max} restarts"));
        }
        parts.push("not OOM-killed".into());
        if spec.flapping == flapping::FlapPolicy::Fail && spec.state != ContainerState::Restarting {
            parts.push("not in a restart loop".into());
        }
        parts.join(", ")
    }

    async fn observe(&self, spec: &ContainerParams) -> Result<Self::Observation, ProbeError> {
        let inspected =
            host_probe::containers::inspect(&self.engine, spec.container.as_str()).await?;
        Ok(Inspected {
            facts: ContainerSeen::remembered(inspected.facts),
            api_version: inspected.api_version,
        })
    }

    fn judge(spec: &ContainerParams, seen: &Self::Observation, _now: SystemTime) -> Verdict {
        judge::judge_container(spec, &seen.facts)
            .detail("engine_api_version", seen.api_version.as_str())
    }

    fn failure(_spec: &ContainerParams, error: &ProbeError) -> Verdict {
        engine_failure(error)
    }
}

impl Check for AllContainers {
    const KIND: Kind = Kind::Containers;
    type Params = AllHealthyParams;
    type Observation = Inspected<Vec<ContainerSeen>>;

    fn expected(spec: &AllHealthyParams) -> String {
        let mut expected = "every running, restarting, paused or dead container running, \
                            healthy or without a healthcheck, not OOM-looping"
            .to_string();
        if spec.flapping == flapping::FlapPolicy::Fail {
            expected.push_str(", not in a restart loop");
        }
        expected
    }

    async fn observe(&self, _spec: &AllHealthyParams) -> Result<Self::Observation, ProbeError> {
        let inspected = host_probe::containers::live(&self.engine).await?;
        Ok(Inspected {
            facts: inspected
                .facts
                .into_iter()
                .map(ContainerSeen::remembered)
                .collect(),
            api_version: inspected.api_version,
        })
    }

    fn judge(spec: &AllHealthyParams, seen: &Self::Observation, _now: SystemTime) -> Verdict {
        judge::judge_all_healthy(&seen.facts, spec.flapping, spec.flap_window())
            .detail("engine_api_version", seen.api_version.as_str())
    }

    fn failure(_spec: &AllHealthyParams, error: &ProbeError) -> Verdict {
        engine_failure(error)
    }
}
