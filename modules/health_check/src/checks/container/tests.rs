//! The container rules on fixed facts, and the parameters.

use super::judge::{health_problem, judge_all_healthy, judge_container};
use super::params::{ContainerParams, ContainerState, HealthWanted};
use super::Container;
use crate::checks::Check;
use crate::verdict::Status;
use ansible_module::types::StrOrMap;
use bollard::models::ContainerStateStatusEnum;
use host_probe::containers::{one_line, ContainerFacts, HealthFacts};
use serde_json::json;

fn spec(value: serde_json::Value) -> ContainerParams {
    serde_json::from_value::<StrOrMap<ContainerParams>>(value)
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
        status: Some(ContainerStateStatusEnum::RUNNING),
        exit_code: Some(0),
        oom_killed: false,
        restart_count: 0,
        health: health.map(|(status, failing_streak)| HealthFacts {
            status: status.parse().unwrap(),
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
            bad.parse::<super::params::ContainerName>().is_err(),
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
    use super::params::{AllHealthyParams, DockerHost};
    use crate::args::Toggle;
    let toggle = |v| serde_json::from_value::<Toggle<AllHealthyParams>>(v);
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
    assert_eq!(
        long.chars().count(),
        host_probe::containers::MAX_OUTPUT_CHARS + 3
    );
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
    facts.status = Some(ContainerStateStatusEnum::RESTARTING);
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

    facts.status = Some(ContainerStateStatusEnum::EXITED);
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
fn expected_says_what_is_judged() {
    assert_eq!(
        Container::expected(&spec(json!("web"))),
        "state running, healthy or no healthcheck, not OOM-killed"
    );
    assert_eq!(
        Container::expected(&spec(
            json!({"container": "w", "require_healthcheck": true, "max_restarts": 2})
        )),
        "state running, healthy, at most 2 restarts, not OOM-killed"
    );
    assert_eq!(
        Container::expected(&spec(json!({"container": "w", "state": "exited"}))),
        "state exited, not OOM-killed"
    );
}

#[test]
fn default_socket_follows_a_unix_docker_host_only() {
    let path = |env: Option<&str>| super::params::default_docker_host(env).path().to_string();
    assert_eq!(path(None), "/var/run/docker.sock");
    assert_eq!(
        path(Some("unix:///run/user/1000/podman/podman.sock")),
        "/run/user/1000/podman/podman.sock"
    );
    assert_eq!(path(Some("tcp://10.0.0.1:2375")), "/var/run/docker.sock");
    assert_eq!(path(Some("/plain/path.sock")), "/var/run/docker.sock");
    assert_eq!(path(Some("unix://relative.sock")), "/var/run/docker.sock");
}
