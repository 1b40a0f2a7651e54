//! Containers over the Docker Engine API (Docker, or Podman's compatible socket): one
//! container's state, healthcheck and restarts (`containers`), or the health of every running
//! container at once (`containers_all_healthy`).
//!
//! The API calls only gather [`ContainerFacts`]; judging them is separate and pure, so every
//! rule is tested without an engine. What counts as healthy is decided in one place
//! ([`health_problem`]) for both check kinds.

pub mod engine;

use crate::args::{ContainerCheck, ContainerState, HealthWanted};
use crate::check::{CheckMeta, Outcome, Planned};
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
pub use engine::{default_docker_host, Engine};
use std::collections::HashMap;
use std::sync::Arc;

/// How much of a healthcheck's output a message quotes.
const MAX_OUTPUT_CHARS: usize = 200;

/// What the engine says about one container, reduced to what the checks judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFacts {
    /// Without Docker's leading `/`.
    pub name: String,
    pub id: String,
    /// `State.Status`: created, running, paused, restarting, removing, exited or dead.
    pub status: String,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: u64,
    /// `None`: the container has no healthcheck.
    pub health: Option<HealthFacts>,
}

/// `State.Health` of a container that has a healthcheck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthFacts {
    /// starting, healthy or unhealthy.
    pub status: String,
    pub failing_streak: u64,
    /// The newest entry of the health log.
    pub last_exit_code: Option<i64>,
    pub last_output: Option<String>,
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
                status: status.to_string(),
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
                .map(|status| status.to_string())
                .unwrap_or_default(),
            exit_code: state.and_then(|s| s.exit_code),
            oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
            restart_count: non_negative(response.restart_count),
            health,
        }
    }

    fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// "exited (exit code 1)", "running".
    fn status_phrase(&self) -> String {
        match (self.status.as_str(), self.exit_code) {
            ("exited" | "dead", Some(code)) => format!("{} (exit code {code})", self.status),
            ("", _) => "unknown state".to_string(),
            (status, _) => status.to_string(),
        }
    }

    /// "healthy", "unhealthy (FailingStreak 3)", "health: starting", "no healthcheck".
    fn health_phrase(&self) -> String {
        match &self.health {
            None => "no healthcheck".to_string(),
            Some(h) if h.status == "unhealthy" => {
                format!("unhealthy (FailingStreak {})", h.failing_streak)
            }
            Some(h) if h.status == "healthy" => "healthy".to_string(),
            Some(h) => format!("health: {}", h.status),
        }
    }

    /// "running, healthy, 0 restarts" (and ", OOM-killed" when it was).
    fn observed(&self) -> String {
        let restarts = match self.restart_count {
            1 => "1 restart".to_string(),
            n => format!("{n} restarts"),
        };
        let mut parts = vec![self.status_phrase(), self.health_phrase(), restarts];
        if self.oom_killed {
            parts.push("OOM-killed".to_string());
        }
        parts.join(", ")
    }
}

fn non_negative(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// A healthcheck's output on one line: whitespace runs (newlines included) become one space,
/// and it is cut to [`MAX_OUTPUT_CHARS`].
fn one_line(output: &str) -> String {
    let joined = output.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

/// "unhealthy, FailingStreak 3" or "health: starting": the short form, for lists.
fn health_summary(h: &HealthFacts) -> String {
    match h.status.as_str() {
        "unhealthy" => format!("unhealthy, FailingStreak {}", h.failing_streak),
        other => format!("health: {other}"),
    }
}

/// Why a container's healthcheck is not acceptable, or `None` when it is healthy or has none.
/// "unhealthy, FailingStreak 3, last check exit code 1: \"...\"" or "health: starting".
pub fn health_problem(health: Option<&HealthFacts>) -> Option<String> {
    let h = health?;
    match h.status.as_str() {
        "healthy" => None,
        "unhealthy" => {
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

pub fn expected(spec: &ContainerCheck) -> String {
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

/// Judges one container against its check. The healthcheck is judged only when the container
/// should be and is running: a stopped container's health status is stale.
pub fn judge_container(spec: &ContainerCheck, facts: &ContainerFacts) -> Outcome {
    let mut problems = Vec::new();
    if facts.oom_killed {
        problems.push("OOM-killed".to_string());
    }
    if facts.status != spec.state.as_str() {
        problems.push(format!(
            "state {}, expected {}",
            facts.status_phrase(),
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
    let observed = facts.observed();
    let outcome = if problems.is_empty() {
        Outcome::pass(observed.clone(), format!("container '{name}': {observed}"))
    } else {
        Outcome::fail(
            observed,
            format!("container '{name}': {}", problems.join("; ")),
        )
    };
    let health = facts.health.as_ref();
    outcome
        .detail("id", facts.short_id())
        .detail("status", facts.status.as_str())
        .detail("health", health.map(|h| h.status.as_str()))
        .detail("failing_streak", health.map(|h| h.failing_streak))
        .detail(
            "last_health_output",
            health.and_then(|h| h.last_output.as_deref()),
        )
        .detail("restart_count", facts.restart_count)
        .detail("oom_killed", facts.oom_killed)
        .detail("exit_code", facts.exit_code)
}

pub fn all_healthy_expected() -> String {
    "every running container healthy or without a healthcheck".to_string()
}

/// Judges the running containers together: each must be healthy or have no healthcheck.
pub fn judge_all_healthy(running: &[ContainerFacts]) -> Outcome {
    let mut sorted: Vec<&ContainerFacts> = running.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let count = |status: Option<&str>| {
        sorted
            .iter()
            .filter(|f| f.health.as_ref().map(|h| h.status.as_str()) == status)
            .count()
    };
    let (healthy, without) = (count(Some("healthy")), count(None));
    let offenders: Vec<&ContainerFacts> = sorted
        .iter()
        .copied()
        .filter(|f| health_problem(f.health.as_ref()).is_some())
        .collect();
    let total = sorted.len();
    let mut observed = vec![format!("{healthy} healthy")];
    for status in ["unhealthy", "starting"] {
        let n = count(Some(status));
        if n > 0 {
            observed.push(format!("{n} {status}"));
        }
    }
    observed.push(format!("{without} without healthcheck"));
    let observed = format!("{total} running: {}", observed.join(", "));
    let outcome = if total == 0 {
        Outcome::pass("0 running", "no running containers")
    } else if offenders.is_empty() {
        Outcome::pass(
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
        Outcome::fail(
            observed,
            format!(
                "{} of {total} running containers not healthy: {}",
                offenders.len(),
                listed.join(", ")
            ),
        )
    };
    outcome
        .detail("running", total)
        .detail("healthy", healthy)
        .detail("without_healthcheck", without)
        .detail(
            "not_healthy",
            offenders.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        )
}

pub fn plan(spec: ContainerCheck, meta: CheckMeta, engine: &Arc<Engine>) -> Planned {
    let engine = Arc::clone(engine);
    let work = async move {
        match engine.client().await {
            Ok(docker) => check_container(docker, &spec)
                .await
                .detail("engine_api_version", docker.client_version().to_string()),
            Err(message) => Outcome::fail("engine unreachable", message),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
    }
}

pub fn plan_all_healthy(meta: CheckMeta, engine: &Arc<Engine>) -> Planned {
    let engine = Arc::clone(engine);
    let work = async move {
        match engine.client().await {
            Ok(docker) => check_all_healthy(docker)
                .await
                .detail("engine_api_version", docker.client_version().to_string()),
            Err(message) => Outcome::fail("engine unreachable", message),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
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

async fn check_container(docker: &Docker, spec: &ContainerCheck) -> Outcome {
    let name = spec.container.as_str();
    match docker.inspect_container(name, None).await {
        Ok(response) => judge_container(spec, &ContainerFacts::from_inspect(&response)),
        Err(err) if is_not_found(&err) => {
            Outcome::fail("not found", format!("container '{name}' not found"))
        }
        Err(err) => Outcome::fail(
            "no answer",
            format!(
                "cannot inspect container '{name}': {}",
                engine::describe(&err)
            ),
        ),
    }
}

async fn check_all_healthy(docker: &Docker) -> Outcome {
    let options = ListContainersOptions {
        filters: Some(HashMap::from([(
            "status".to_string(),
            vec!["running".to_string()],
        )])),
        ..Default::default()
    };
    let listed = match docker.list_containers(Some(options)).await {
        Ok(listed) => listed,
        Err(err) => {
            return Outcome::fail(
                "no answer",
                format!("cannot list containers: {}", engine::describe(&err)),
            )
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
                return Outcome::fail(
                    "no answer",
                    format!("cannot inspect containers: {}", engine::describe(&err)),
                )
            }
            Err(err) => {
                return Outcome::fail("no answer", format!("cannot inspect containers: {err}"))
            }
        }
    }
    judge_all_healthy(&running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use ansible_module::types::StrOrMap;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ContainerCheck {
        serde_json::from_value::<StrOrMap<ContainerCheck>>(value)
            .unwrap()
            .0
    }

    fn parse_error(value: serde_json::Value) -> String {
        let params = json!({ "containers": [value] });
        let serde_json::Value::Object(params) = params else {
            unreachable!()
        };
        ansible_module::args::parse_params::<crate::args::Args>(params, crate::args::PARAMETERS)
            .err()
            .unwrap()
            .to_string()
    }

    fn running(name: &str, health: Option<(&str, u64)>) -> ContainerFacts {
        ContainerFacts {
            name: name.to_string(),
            id: "0123456789abcdef0123".to_string(),
            status: "running".to_string(),
            exit_code: Some(0),
            oom_killed: false,
            restart_count: 0,
            health: health.map(|(status, failing_streak)| HealthFacts {
                status: status.to_string(),
                failing_streak,
                last_exit_code: None,
                last_output: None,
            }),
        }
    }

    #[test]
    fn shorthand_and_mapping() {
        let s = spec(json!("/web"));
        assert_eq!(s.container.as_str(), "web");
        assert_eq!(s.state, ContainerState::Running);
        assert_eq!(s.health, HealthWanted::Healthy);
        assert!(!s.require_healthcheck);
        assert_eq!(s.max_restarts, None);
        let s = spec(json!({
            "container": "db-1.internal_x", "state": "Exited", "health": "any",
            "require_healthcheck": "yes", "max_restarts": "3", "mandatory": false
        }));
        assert_eq!(s.container.as_str(), "db-1.internal_x");
        assert_eq!(s.state, ContainerState::Exited);
        assert_eq!(s.health, HealthWanted::Any);
        assert!(s.require_healthcheck);
        assert_eq!(s.max_restarts, Some(3));
        assert!(!s.mandatory);
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(
            parse_error(json!({"container": "bad name"})),
            "parameter 'containers[0].container': invalid container name \"bad name\" (expected \
             a container name or ID: a letter or digit, then letters, digits, '_', '.' or '-')"
        );
        for bad in [
            "", "/", "-web", "_web", ".web", "web/x", "../x", "we b", "wéb",
        ] {
            assert!(
                bad.parse::<crate::args::ContainerName>().is_err(),
                "{bad:?}"
            );
        }
        assert!(parse_error(json!("x y")).starts_with("parameter 'containers[0]': invalid"));
        assert_eq!(
            parse_error(json!({"container": "web", "state": "up"})),
            "parameter 'containers[0].state': invalid container state \"up\" (expected one of \
             created, running, paused, restarting, removing, exited, dead)"
        );
        assert_eq!(
            parse_error(json!({"container": "web", "health": "unhealthy"})),
            "parameter 'containers[0].health': invalid health \"unhealthy\" (expected healthy or \
             any)"
        );
        assert!(parse_error(json!({"container": "web", "max_restarts": -1}))
            .starts_with("parameter 'containers[0].max_restarts'"));
        assert!(parse_error(json!({"state": "running"}))
            .contains("missing required parameter 'containers[0].container'"));
    }

    #[test]
    fn toggles_and_docker_host() {
        use crate::args::{AllContainersHealthyCheck, DockerHost, Toggle};
        let toggle = |v| serde_json::from_value::<Toggle<AllContainersHealthyCheck>>(v);
        assert!(toggle(json!(true)).unwrap().enabled().unwrap().mandatory);
        assert!(toggle(json!("yes")).unwrap().enabled().is_some());
        assert!(toggle(json!("off")).unwrap().enabled().is_none());
        assert!(toggle(json!(false)).unwrap().enabled().is_none());
        let on = toggle(json!({"mandatory": "no", "name": "fleet", "timeout": "2s"})).unwrap();
        let on = on.enabled().unwrap();
        assert_eq!((on.mandatory, on.name.as_deref()), (false, Some("fleet")));
        assert!(toggle(json!({"bogus": 1})).is_err());
        assert!(toggle(json!("maybe")).is_err());

        let host: DockerHost = "unix:///run/podman/podman.sock".parse().unwrap();
        assert_eq!(host.path(), "/run/podman/podman.sock");
        assert_eq!(host.to_string(), "unix:///run/podman/podman.sock");
        assert_eq!(
            "/var/run/docker.sock".parse::<DockerHost>().unwrap().path(),
            "/var/run/docker.sock"
        );
        for bad in [
            "tcp://127.0.0.1:2375",
            "ssh://host",
            "docker.sock",
            "unix://x.sock",
            "",
        ] {
            assert!(bad.parse::<DockerHost>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn healthy_and_no_healthcheck_pass() {
        let out = judge_container(&spec(json!("web")), &running("web", Some(("healthy", 0))));
        assert_eq!(out.status, Status::Pass, "{out:?}");
        assert_eq!(out.message, "container 'web': running, healthy, 0 restarts");
        assert_eq!(out.details["id"], "0123456789ab");

        let plain = running("plain", None);
        let out = judge_container(&spec(json!("plain")), &plain);
        assert_eq!(out.status, Status::Pass);
        assert_eq!(
            out.message,
            "container 'plain': running, no healthcheck, 0 restarts"
        );
        let strict = spec(json!({"container": "plain", "require_healthcheck": true}));
        let out = judge_container(&strict, &plain);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "container 'plain': no healthcheck (require_healthcheck is set)"
        );
    }

    #[test]
    fn unhealthy_names_the_streak_and_last_output() {
        let mut facts = running("sick", Some(("unhealthy", 4)));
        if let Some(h) = facts.health.as_mut() {
            h.last_exit_code = Some(1);
            h.last_output = Some(one_line("  wget: can't connect\n to remote host  \n"));
        }
        let out = judge_container(&spec(json!("sick")), &facts);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "container 'sick': unhealthy, FailingStreak 4, last check exit code 1: \"wget: \
             can't connect to remote host\""
        );
        assert_eq!(
            out.observed,
            "running, unhealthy (FailingStreak 4), 0 restarts"
        );
        let any = spec(json!({"container": "sick", "health": "any"}));
        assert_eq!(judge_container(&any, &facts).status, Status::Pass);

        let quiet = running("quiet", Some(("unhealthy", 2)));
        assert_eq!(
            health_problem(quiet.health.as_ref()).unwrap(),
            "unhealthy, FailingStreak 2"
        );
        let long = one_line(&"x".repeat(500));
        assert_eq!(long.chars().count(), MAX_OUTPUT_CHARS + 3);
    }

    #[test]
    fn starting_fails_until_settled() {
        let out = judge_container(
            &spec(json!("slow")),
            &running("slow", Some(("starting", 0))),
        );
        assert_eq!(out.status, Status::Fail);
        assert_eq!(out.message, "container 'slow': health: starting");
    }

    #[test]
    fn state_restarts_and_oom() {
        let mut facts = running("job", None);
        facts.status = "restarting".into();
        facts.restart_count = 7;
        let out = judge_container(
            &spec(json!({"container": "job", "max_restarts": 3})),
            &facts,
        );
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "container 'job': state restarting, expected running; restarted 7 times, max 3"
        );

        facts.status = "exited".into();
        facts.exit_code = Some(137);
        facts.oom_killed = true;
        facts.restart_count = 0;
        let out = judge_container(
            &spec(json!({"container": "job", "state": "exited"})),
            &facts,
        );
        assert_eq!(out.status, Status::Fail);
        assert_eq!(out.message, "container 'job': OOM-killed");
        assert_eq!(
            out.observed,
            "exited (exit code 137), no healthcheck, 0 restarts, OOM-killed"
        );
        let out = judge_container(&spec(json!("job")), &facts);
        assert_eq!(
            out.message,
            "container 'job': OOM-killed; state exited (exit code 137), expected running"
        );

        facts.oom_killed = false;
        facts.exit_code = Some(0);
        let done = spec(json!({"container": "job", "state": "exited", "max_restarts": 0}));
        assert_eq!(judge_container(&done, &facts).status, Status::Pass);
    }

    #[test]
    fn all_healthy_lists_offenders() {
        let out = judge_all_healthy(&[]);
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Pass, "no running containers")
        );
        let fleet = [
            running("web", Some(("healthy", 0))),
            running("plain", None),
            running("sick", Some(("unhealthy", 3))),
            running("slow", Some(("starting", 0))),
        ];
        let out = judge_all_healthy(&fleet);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "2 of 4 running containers not healthy: sick (unhealthy, FailingStreak 3), slow \
             (health: starting)"
        );
        assert_eq!(
            out.observed,
            "4 running: 1 healthy, 1 unhealthy, 1 starting, 1 without healthcheck"
        );
        assert_eq!(out.details["not_healthy"], json!(["sick", "slow"]));
        let out = judge_all_healthy(&fleet[..2]);
        assert_eq!(out.status, Status::Pass);
        assert_eq!(
            out.message,
            "all 2 running containers healthy or without healthcheck (1 healthy, 1 without)"
        );
    }

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
        assert_eq!(facts.status, "running");
        assert_eq!(facts.restart_count, 2);
        let health = facts.health.unwrap();
        assert_eq!(
            (health.status.as_str(), health.failing_streak),
            ("unhealthy", 5)
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

    #[test]
    fn expected_says_what_is_judged() {
        assert_eq!(
            expected(&spec(json!("web"))),
            "state running, healthy or no healthcheck, not OOM-killed"
        );
        assert_eq!(
            expected(&spec(
                json!({"container": "w", "require_healthcheck": true, "max_restarts": 2})
            )),
            "state running, healthy, at most 2 restarts, not OOM-killed"
        );
        assert_eq!(
            expected(&spec(json!({"container": "w", "state": "exited"}))),
            "state exited, not OOM-killed"
        );
    }
}
