//! The container rules on fixed facts, and the parameters.

use super::judge::{health_problem, judge_all_healthy, judge_container};
use super::params::{ContainerParams, ContainerState, HealthWanted};
use super::{AllContainers, Container, ContainerSeen};
use crate::checks::flapping::{FirstSeen, FlapPolicy, DEFAULT_FLAP_WINDOW};
use crate::checks::Check;
use crate::verdict::{Status, Verdict};
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

/// When the facts below were read: 2026-11-25T11:00:00Z.
const READ_AT_USEC: u64 = 1_795_604_400_000_000;
const SECOND_USEC: u64 = 1_000_000;

/// A running container, up for an hour when it was read, never restarted.
fn running(name: &str, health: Option<(&str, u64)>) -> ContainerFacts {
    ContainerFacts {
        name: name.to_string(),
        id: "0123456789abcdef0123".to_string(),
        status: Some(ContainerStateStatusEnum::RUNNING),
        exit_code: Some(0),
        oom_killed: false,
        restart_count: 0,
        started_at_usec: Some(READ_AT_USEC - 3600 * SECOND_USEC),
        finished_at_usec: None,
        read_at_usec: READ_AT_USEC,
        health: health.map(|(status, failing_streak)| HealthFacts {
            status: status.parse().unwrap(),
            failing_streak,
            last_exit_code: None,
            last_output: None,
        }),
    }
}

/// The facts as the run's first reading of the container.
fn first(facts: &ContainerFacts) -> ContainerSeen {
    seen_since(facts, facts.restart_count, 0)
}

/// The facts with a first reading `earlier_usec` before them that counted `restarts`.
fn seen_since(facts: &ContainerFacts, restarts: u64, earlier_usec: u64) -> ContainerSeen {
    ContainerSeen {
        facts: facts.clone(),
        first: FirstSeen {
            restarts,
            read_at_usec: facts.read_at_usec - earlier_usec,
        },
    }
}

fn judge(spec: &ContainerParams, facts: &ContainerFacts) -> Verdict {
    judge_container(spec, &first(facts))
}

fn judge_all(live: &[ContainerFacts]) -> Verdict {
    let seen: Vec<ContainerSeen> = live.iter().map(first).collect();
    judge_all_healthy(&seen, FlapPolicy::Fail, DEFAULT_FLAP_WINDOW)
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
    let out = judge(&spec(json!("web")), &running("web", Some(("healthy", 0))));
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(
        out.message,
        "container 'web': running, healthy, 0 restarts, up 1h"
    );
    assert_eq!(out.details["id"], "0123456789ab");

    let plain = running("plain", None);
    let out = judge(&spec(json!("plain")), &plain);
    assert_eq!(out.status, Status::Pass);
    assert_eq!(
        out.message,
        "container 'plain': running, no healthcheck, 0 restarts, up 1h"
    );
    let strict = spec(json!({"container": "plain", "require_healthcheck": true}));
    let out = judge(&strict, &plain);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'plain': no healthcheck (require_healthcheck is set) (0 restarts, up 1h)"
    );
}

#[test]
fn unhealthy_names_the_streak_and_last_output() {
    let mut facts = running("sick", Some(("unhealthy", 4)));
    if let Some(h) = facts.health.as_mut() {
        h.last_exit_code = Some(1);
        h.last_output = Some(one_line("  wget: can't connect\n to remote host  \n"));
    }
    let out = judge(&spec(json!("sick")), &facts);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'sick': unhealthy, FailingStreak 4, last check exit code 1: \"wget: \
             can't connect to remote host\" (0 restarts, up 1h)"
    );
    assert_eq!(
        out.observed,
        "running, unhealthy (FailingStreak 4), 0 restarts, up 1h"
    );
    let any = spec(json!({"container": "sick", "health": "any"}));
    assert_eq!(judge(&any, &facts).status, Status::Pass);

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
    let out = judge(
        &spec(json!("slow")),
        &running("slow", Some(("starting", 0))),
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'slow': health: starting (0 restarts, up 1h)"
    );
}

#[test]
fn state_restarts_and_oom() {
    let mut facts = running("job", None);
    facts.status = Some(ContainerStateStatusEnum::RESTARTING);
    facts.restart_count = 7;
    let out = judge(
        &spec(json!({"container": "job", "max_restarts": 3})),
        &facts,
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'job': state restarting, expected running; restarted 7 times, max 3; in a \
         restart loop: restarted 7 times, not up (7 restarts, not up)"
    );

    facts.status = Some(ContainerStateStatusEnum::EXITED);
    facts.exit_code = Some(137);
    facts.oom_killed = true;
    facts.restart_count = 0;
    let out = judge(
        &spec(json!({"container": "job", "state": "exited"})),
        &facts,
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'job': OOM-killed; exit code 137, expected 0 (0 restarts, not up)"
    );
    assert_eq!(
        out.observed,
        "exited (exit code 137), no healthcheck, 0 restarts, not up, OOM-killed"
    );
    let out = judge(&spec(json!("job")), &facts);
    assert_eq!(
        out.message,
        "container 'job': OOM-killed; state exited (exit code 137), expected running (0 \
         restarts, not up)"
    );

    facts.oom_killed = false;
    facts.exit_code = Some(0);
    let done = spec(json!({"container": "job", "state": "exited", "max_restarts": 0}));
    assert_eq!(judge(&done, &facts).status, Status::Pass);
}

#[test]
fn all_healthy_lists_offenders() {
    let out = judge_all(&[]);
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
    let out = judge_all(&fleet);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "2 of 4 containers not healthy: sick (unhealthy, FailingStreak 3), slow \
             (health: starting)"
    );
    assert_eq!(
        out.observed,
        "4 running: 1 healthy, 1 unhealthy, 1 starting, 1 without healthcheck"
    );
    assert_eq!(out.details["not_healthy"], json!(["sick", "slow"]));
    let out = judge_all(&fleet[..2]);
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
        "state running, healthy or no healthcheck, not OOM-killed, not in a restart loop"
    );
    assert_eq!(
        Container::expected(&spec(
            json!({"container": "w", "require_healthcheck": true, "max_restarts": 2})
        )),
        "state running, healthy, at most 2 restarts, not OOM-killed, not in a restart loop"
    );
    assert_eq!(
        Container::expected(&spec(json!({"container": "w", "state": "exited"}))),
        "state exited, exit code 0, not OOM-killed, not in a restart loop"
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

/// `--restart always` with a failing command: caught in its few running milliseconds.
fn in_its_running_window(restarts: u64) -> ContainerFacts {
    let mut facts = running("loop", None);
    facts.restart_count = restarts;
    facts.started_at_usec = Some(READ_AT_USEC - 3_000);
    facts
}

#[test]
fn a_restart_loop_caught_running_fails_by_default() {
    let facts = in_its_running_window(138);
    let out = judge(&spec(json!("loop")), &facts);
    assert_eq!(out.status, Status::Fail, "{out:?}");
    assert_eq!(
        out.message,
        "container 'loop': in a restart loop: restarted 138 times, up 3ms (less than \
         flap_window 10s) (138 restarts, up 3ms)"
    );
    assert_eq!(
        out.observed,
        "running, no healthcheck, 138 restarts, up 3ms"
    );
    assert_eq!(out.details["uptime_s"], json!(0.0));
    assert_eq!(out.details["started_at"], "2026-11-25T10:59:59Z");
    assert_eq!(
        out.details["flapping"],
        "restarted 138 times, up 3ms (less than flap_window 10s)"
    );
}

#[test]
fn restarts_during_the_observation_fail_even_when_up_long_enough() {
    // First read 5 s ago with 132 restarts; now 138 and up for 12 s (past flap_window).
    let mut facts = in_its_running_window(138);
    facts.started_at_usec = Some(READ_AT_USEC - 12 * SECOND_USEC);
    let seen = seen_since(&facts, 132, 5 * SECOND_USEC);
    let out = judge_container(&spec(json!("loop")), &seen);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'loop': in a restart loop: restarted 6 times in 5s, up 12s (138 restarts, \
         up 12s)"
    );
    assert_eq!(out.details["first_seen_restarts"], 132);
}

#[test]
fn flapping_warn_and_ignore_and_a_wider_window() {
    let facts = in_its_running_window(4);
    let warn = spec(json!({"container": "loop", "flapping": "warn"}));
    let out = judge(&warn, &facts);
    assert_eq!(out.status, Status::Warn);
    assert_eq!(
        out.message,
        "container 'loop': in a restart loop: restarted 4 times, up 3ms (less than flap_window \
         10s) (4 restarts, up 3ms)"
    );
    let ignore = spec(json!({"container": "loop", "flapping": "ignore"}));
    let out = judge(&ignore, &facts);
    assert_eq!(out.status, Status::Pass);
    assert_eq!(
        out.message,
        "container 'loop': running, no healthcheck, 4 restarts, up 3ms"
    );
    // Up for an hour after a restart: a wider window than that still calls it a loop.
    let mut settled = running("loop", None);
    settled.restart_count = 1;
    let wide = spec(json!({"container": "loop", "flap_window": "2h"}));
    assert_eq!(judge(&wide, &settled).status, Status::Fail);
}

#[test]
fn a_container_that_restarted_once_long_ago_passes() {
    let mut facts = running("web", Some(("healthy", 0)));
    facts.restart_count = 1;
    let out = judge(&spec(json!("web")), &facts);
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(
        out.message,
        "container 'web': running, healthy, 1 restart, up 1h"
    );
    assert!(out.details.get("flapping").is_none());
}

#[test]
fn a_restarting_container_is_a_restart_loop_not_only_a_wrong_state() {
    let mut facts = in_its_running_window(12);
    facts.status = Some(ContainerStateStatusEnum::RESTARTING);
    facts.exit_code = Some(1);
    let ignore = spec(json!({"container": "loop", "flapping": "ignore"}));
    assert_eq!(
        judge(&ignore, &facts).message,
        "container 'loop': state restarting, expected running (12 restarts, not up)"
    );
    // Expecting a loop is asking for one.
    let looping = spec(json!({"container": "loop", "state": "restarting"}));
    assert_eq!(judge(&looping, &facts).status, Status::Pass);
}

#[test]
fn exited_judges_the_exit_code() {
    let mut facts = running("job", None);
    facts.status = Some(ContainerStateStatusEnum::EXITED);
    facts.exit_code = Some(1);
    let out = judge(
        &spec(json!({"container": "job", "state": "exited"})),
        &facts,
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "container 'job': exit code 1, expected 0 (0 restarts, not up)"
    );
    let some = spec(json!({"container": "job", "state": "exited", "exit_code": [0, 1]}));
    assert_eq!(judge(&some, &facts).status, Status::Pass);
    assert_eq!(
        Container::expected(&some),
        "state exited, exit code one of 0, 1, not OOM-killed, not in a restart loop"
    );
    let other = spec(json!({"container": "job", "state": "exited", "exit_code": "143, 2"}));
    assert_eq!(
        judge(&other, &facts).message,
        "container 'job': exit code 1, expected one of 143, 2 (0 restarts, not up)"
    );
    let one = spec(json!({"container": "job", "state": "exited", "exit_code": "1"}));
    assert_eq!(judge(&one, &facts).status, Status::Pass);
    facts.exit_code = None;
    assert_eq!(
        judge(
            &spec(json!({"container": "job", "state": "exited"})),
            &facts
        )
        .message,
        "container 'job': no exit code reported, expected exit code 0 (0 restarts, not up)"
    );
    // A job that failed twice and then succeeded before the run began is done, not looping;
    // one that restarted during the run is not.
    facts.exit_code = Some(0);
    facts.restart_count = 2;
    let done = spec(json!({"container": "job", "state": "exited"}));
    assert_eq!(judge(&done, &facts).status, Status::Pass);
    let out = judge_container(&done, &seen_since(&facts, 1, 3 * SECOND_USEC));
    assert_eq!(
        out.message,
        "container 'job': in a restart loop: restarted 1 time in 3s, not up (2 restarts, not up)"
    );
}

#[test]
fn exit_code_parameters_are_checked() {
    assert!(
        parse_error(json!({"container": "j", "state": "exited", "exit_code": []}))
            .contains("expected at least one exit code")
    );
    assert!(
        parse_error(json!({"container": "j", "state": "exited", "exit_code": "zero"}))
            .starts_with("parameter 'containers[0].exit_code': expected a whole number")
    );
    assert!(
        parse_error(json!({"container": "j", "state": "exited", "exit_code": 1.5}))
            .starts_with("parameter 'containers[0].exit_code'")
    );
    assert!(
        parse_error(json!({"container": "j", "flapping": "sometimes"}))
            .starts_with("parameter 'containers[0].flapping'")
    );
    assert!(
        parse_error(json!({"container": "j", "flap_window": "soon"}))
            .starts_with("parameter 'containers[0].flap_window'")
    );
    let running_with_code = spec(json!({"container": "j", "exit_code": 0}));
    assert_eq!(
        super::validate(&running_with_code, "containers[3]")
            .err()
            .unwrap()
            .to_string(),
        "parameter 'containers[3].exit_code': needs state exited or dead, not running (only a \
         stopped container has an exit code)"
    );
    let dead = spec(json!({"container": "j", "state": "dead", "exit_code": [0, 137]}));
    assert!(super::validate(&dead, "containers[0]").is_ok());
}

#[test]
fn all_healthy_counts_restarting_paused_dead_and_oom_loops() {
    let mut restarting = in_its_running_window(9);
    restarting.name = "loop".into();
    restarting.status = Some(ContainerStateStatusEnum::RESTARTING);
    let mut paused = running("frozen", None);
    paused.status = Some(ContainerStateStatusEnum::PAUSED);
    let mut dead = running("gone", None);
    dead.status = Some(ContainerStateStatusEnum::DEAD);
    dead.exit_code = Some(137);
    let mut oom = running("greedy", None);
    oom.oom_killed = true;
    oom.restart_count = 3;
    let fine = running("web", Some(("healthy", 0)));
    let fleet = [restarting, paused, dead, oom, fine];
    let out = judge_all(&fleet);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "4 of 5 containers not healthy: frozen (paused), gone (dead (exit code 137)), greedy \
         (OOM-looping: OOM-killed and restarted), loop (restarting; restart loop: restarted 9 \
         times, not up)"
    );
    assert_eq!(
        out.observed,
        "2 running: 1 healthy, 1 without healthcheck; 1 restarting; 1 paused; 1 dead"
    );
    assert_eq!(
        out.details["not_healthy"],
        json!(["frozen", "gone", "greedy", "loop"])
    );
    assert_eq!(out.details["restart_counts"]["loop"], 9);
}

#[test]
fn all_healthy_catches_a_loop_in_its_running_window_and_honours_the_policy() {
    let fleet = [in_its_running_window(5), running("web", None)];
    let out = judge_all(&fleet);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "1 of 2 containers not healthy: loop (restart loop: restarted 5 times, up 3ms (less \
         than flap_window 10s))"
    );
    let seen: Vec<ContainerSeen> = fleet.iter().map(first).collect();
    let out = judge_all_healthy(&seen, FlapPolicy::Warn, DEFAULT_FLAP_WINDOW);
    assert_eq!(out.status, Status::Warn);
    assert!(out
        .message
        .starts_with("1 of 2 containers in a restart loop: loop"));
    let out = judge_all_healthy(&seen, FlapPolicy::Ignore, DEFAULT_FLAP_WINDOW);
    assert_eq!(out.status, Status::Pass);
    let out = judge_all_healthy(&seen, FlapPolicy::Fail, std::time::Duration::from_millis(2));
    assert_eq!(out.status, Status::Pass, "a window below its uptime");
    assert_eq!(
        AllContainers::expected(&Default::default()),
        "every running, restarting, paused or dead container running, healthy or without a \
         healthcheck, not OOM-looping, not in a restart loop"
    );
}
