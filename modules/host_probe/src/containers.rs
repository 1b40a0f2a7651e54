//! Container facts from the engine: one container by name or ID, or every running one. The
//! engine's typed states (`ContainerStateStatusEnum`, `HealthStatusEnum`) are kept as they are.

use crate::engine::{Engine, EngineError};
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::ListContainersOptions;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How much of a healthcheck's output is kept.
pub const MAX_OUTPUT_CHARS: usize = 200;

/// What the engine says about one container, reduced to what a check judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerFacts {
    /// Without Docker's leading `/`.
    pub name: String,
    pub id: String,
    /// `State.Status`; `None` when the engine did not say.
    pub status: Option<ContainerStateStatusEnum>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: u64,
    /// `None`: the container has no healthcheck.
    pub health: Option<HealthFacts>,
}

/// `State.Health` of a container that has a healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthFacts {
    /// starting, healthy or unhealthy.
    pub status: HealthStatusEnum,
    pub failing_streak: u64,
    /// The newest entry of the health log.
    pub last_exit_code: Option<i64>,
    pub last_output: Option<String>,
}

/// One container as the engine answered, with the API version agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspected<T> {
    pub facts: T,
    pub api_version: String,
}

impl ContainerFacts {
    pub fn from_inspect(response: &ContainerInspectResponse) -> Self {
        let state = response.state.as_ref();
        let health = state.and_then(|s| s.health.as_ref()).and_then(|health| {
            // "none" (or nothing) is what the engine says for a container without one.
            let status = health
                .status
                .filter(|s| !matches!(s, HealthStatusEnum::NONE | HealthStatusEnum::EMPTY))?;
            let last = health.log.as_ref().and_then(|log| log.last());
            Some(HealthFacts {
                status,
                failing_streak: non_negative(health.failing_streak),
                last_exit_code: last.and_then(|entry| entry.exit_code),
                last_output: last
                    .and_then(|entry| entry.output.as_deref())
                    .map(one_line)
                    .filter(|output| !output.is_empty()),
            })
        });
        Self {
            name: response
                .name
                .as_deref()
                .map(|name| name.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            id: response.id.clone().unwrap_or_default(),
            status: state
                .and_then(|s| s.status)
                .filter(|status| *status != ContainerStateStatusEnum::EMPTY),
            exit_code: state.and_then(|s| s.exit_code),
            oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
            restart_count: non_negative(response.restart_count),
            health,
        }
    }

    /// The first 12 characters of the ID, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

fn non_negative(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// A healthcheck's output on one line: whitespace runs (newlines included) become one space,
/// and it is cut to [`MAX_OUTPUT_CHARS`].
pub fn one_line(output: &str) -> String {
    let joined = output.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Inspects one container by name or ID.
pub async fn inspect(
    engine: &Engine,
    name: &str,
) -> Result<Inspected<ContainerFacts>, EngineError> {
    let docker = engine.client().await?;
    let api_version = docker.client_version().to_string();
    match docker.inspect_container(name, None).await {
        Ok(response) => Ok(Inspected {
            facts: ContainerFacts::from_inspect(&response),
            api_version,
        }),
        Err(err) if is_not_found(&err) => Err(EngineError::NotFound {
            name: name.to_string(),
            api_version,
        }),
        Err(source) => Err(EngineError::Inspect {
            name: name.to_string(),
            api_version,
            source,
        }),
    }
}

/// Inspects every running container (in no particular order).
pub async fn running(engine: &Engine) -> Result<Inspected<Vec<ContainerFacts>>, EngineError> {
    let docker = engine.client().await?;
    let api_version = docker.client_version().to_string();
    let options = ListContainersOptions {
        filters: Some(HashMap::from([(
            "status".to_string(),
            vec!["running".to_string()],
        )])),
        ..Default::default()
    };
    let listed = match docker.list_containers(Some(options)).await {
        Ok(listed) => listed,
        Err(source) => {
            return Err(EngineError::List {
                api_version,
                source,
            })
        }
    };
    // The list's health summary is not in every API version; inspecting is.
    let mut inspections = tokio::task::JoinSet::new();
    for id in listed.into_iter().filter_map(|summary| summary.id) {
        let docker = docker.clone();
        inspections.spawn(async move { docker.inspect_container(&id, None).await });
    }
    let mut running = Vec::new();
    while let Some(joined) = inspections.join_next().await {
        match joined {
            Ok(Ok(response)) => running.push(ContainerFacts::from_inspect(&response)),
            // Removed since it was listed: no longer running, so not ours to judge.
            Ok(Err(err)) if is_not_found(&err) => {}
            Ok(Err(err)) => {
                return Err(EngineError::InspectAll {
                    api_version,
                    reason: crate::engine::describe(&err),
                })
            }
            Err(err) => {
                return Err(EngineError::InspectAll {
                    api_version,
                    reason: err.to_string(),
                })
            }
        }
    }
    Ok(Inspected {
        facts: running,
        api_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_from_an_engine_answer() {
        // Trimmed from Docker 20.10's answer for a container with a failing healthcheck.
        let response: ContainerInspectResponse = serde_json::from_value(json!({
            "Id": "5f0c3e1d2b4a69788f1e2d3c4b5a69788f1e2d3c4b5a69788f1e2d3c4b5a6978",
            "Name": "/sick",
            "RestartCount": 2,
            "State": {
                "Status": "running", "Running": true, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
                "StartedAt": "2026-11-25T11:00:00.000000000Z",
                "FinishedAt": "0001-01-01T00:00:00Z",
                "Health": {
                    "Status": "unhealthy", "FailingStreak": 5,
                    "Log": [
                        {"Start": "2026-11-25T11:00:01.0Z", "End": "2026-11-25T11:00:01.1Z",
                         "ExitCode": 1, "Output": "old"},
                        {"Start": "2026-11-25T11:00:02.0Z", "End": "2026-11-25T11:00:02.1Z",
                         "ExitCode": 1, "Output": "wget: server returned error: HTTP/1.0 500\n"}
                    ]
                }
            }
        }))
        .unwrap();
        let facts = ContainerFacts::from_inspect(&response);
        assert_eq!(facts.name, "sick");
        assert_eq!(facts.status, Some(ContainerStateStatusEnum::RUNNING));
        assert_eq!(facts.restart_count, 2);
        let health = facts.health.unwrap();
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatusEnum::UNHEALTHY, 5)
        );
        assert_eq!(health.last_exit_code, Some(1));
        assert_eq!(
            health.last_output.as_deref(),
            Some("wget: server returned error: HTTP/1.0 500")
        );

        let plain: ContainerInspectResponse = serde_json::from_value(json!({
            "Id": "abc", "Name": "/plain",
            "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": true,
                      "Health": {"Status": "none"}}
        }))
        .unwrap();
        let facts = ContainerFacts::from_inspect(&plain);
        assert_eq!(facts.health, None);
        assert!(facts.oom_killed);
        assert_eq!(facts.exit_code, Some(137));
    }
}
