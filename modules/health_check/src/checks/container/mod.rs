//! `container` and `containers`: one container's state, healthcheck and restarts
//! (`containers` entries), or the health of every running container at once
//! (`containers_all_healthy`), over the Docker Engine API (Docker, or Podman's compatible
//! socket). Both share one engine connection per run.

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::containers::{ContainerFacts, Inspected};
use host_probe::engine::Engine;
use host_probe::ProbeError;
use params::{AllHealthyParams, ContainerParams, ContainerState, HealthWanted};
use std::sync::Arc;
use std::time::SystemTime;

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
    type Observation = Inspected<ContainerFacts>;

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
        if let Some(max) = spec.max_restarts {
            parts.push(format!("at most {max} restarts"));
        }
        parts.push("not OOM-killed".into());
        parts.join(", ")
    }

    async fn observe(&self, spec: &ContainerParams) -> Result<Self::Observation, ProbeError> {
        Ok(host_probe::containers::inspect(&self.engine, spec.container.as_str()).await?)
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
    type Observation = Inspected<Vec<ContainerFacts>>;

    fn expected(_spec: &AllHealthyParams) -> String {
        "every running container healthy or without a healthcheck".to_string()
    }

    async fn observe(&self, _spec: &AllHealthyParams) -> Result<Self::Observation, ProbeError> {
        Ok(host_probe::containers::running(&self.engine).await?)
    }

    fn judge(_spec: &AllHealthyParams, seen: &Self::Observation, _now: SystemTime) -> Verdict {
        judge::judge_all_healthy(&seen.facts)
            .detail("engine_api_version", seen.api_version.as_str())
    }

    fn failure(_spec: &AllHealthyParams, error: &ProbeError) -> Verdict {
        engine_failure(error)
    }
}
