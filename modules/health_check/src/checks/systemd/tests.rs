//! The systemd rules on fixed observations, the parameters, and a bus that is missing or
//! silent.

use super::judge::judge_system_state;
use super::params::{SystemStateParams, SystemdParams, UnitName, UnitStateWanted};
use super::UnitSeen;
use super::{validate, SystemState, Unit};
use crate::checks::flapping::FirstSeen;
use crate::checks::{plan, Kind};
use crate::verdict::{CheckMeta, Status};
use ansible_module::types::{Duration, StrOrMap};
use host_probe::systemd::{Bus, FailedUnits, ServiceObservation, UnitObservation};
use serde_json::json;

fn spec(value: serde_json::Value) -> SystemdParams {
    serde_json::from_value::<StrOrMap<SystemdParams>>(value)
        .unwrap()
        .0
}

fn spec_error(value: serde_json::Value) -> String {
    serde_json::from_value::<StrOrMap<SystemdParams>>(value)
        .unwrap_err()
        .to_string()
}

const NOW: u64 = 1_700_000_000_000_000;

/// Judges a reading that is the run's first one (no earlier attempt).
fn judge_unit(
    spec: &SystemdParams,
    seen: &UnitObservation,
    now_usec: u64,
) -> crate::verdict::Verdict {
    let first = FirstSeen {
        restarts: seen.service.as_ref().map_or(0, |s| u64::from(s.n_restarts)),
        read_at_usec: seen.read_at_usec,
    };
    judge_after(spec, seen, first, now_usec)
}

fn judge_after(
    spec: &SystemdParams,
    seen: &UnitObservation,
    first: FirstSeen,
    now_usec: u64,
) -> crate::verdict::Verdict {
    let seen = UnitSeen {
        unit: seen.clone(),
        first,
    };
    super::judge::judge_unit(spec, &seen, now_usec)
}

fn looping_service(n_restarts: u32, up_ms: u64) -> UnitObservation {
    UnitObservation {
        active_enter_usec: NOW - up_ms * 1000,
        service: Some(ServiceObservation {
            n_restarts,
            result: "exit-code".into(),
        }),
        ..running_service()
    }
}

#[test]
fn a_restart_loop_caught_running_fails_with_its_restarts_and_uptime() {
    let out = judge_unit(&spec(json!("loop.service")), &looping_service(138, 3), NOW);
    assert_eq!(out.status, Status::Fail, "{out:?}");
    assert_eq!(
        out.message,
        "loop.service is in a restart loop: restarted 138 times, up 3ms (less than flap_window 10s)"
    );
}

#[test]
fn restarts_during_the_observation_are_a_restart_loop() {
    let first = FirstSeen {
        restarts: 10,
        read_at_usec: NOW - 5_000_000,
    };
    let out = judge_after(
        &spec(json!("loop.service")),
        &looping_service(16, 3),
        first,
        NOW,
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "loop.service is in a restart loop: restarted 6 times in 5s, up 3ms"
    );
}

#[test]
fn a_unit_that_restarted_once_long_ago_passes() {
    let out = judge_unit(
        &spec(json!("once.service")),
        &looping_service(1, 600_000),
        NOW,
    );
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(
        out.message,
        "once.service is active (running), 1 restart, up 10m"
    );
}

#[test]
fn flapping_can_warn_or_be_ignored() {
    let seen = looping_service(40, 5);
    let out = judge_unit(
        &spec(json!({"unit": "l.service", "flapping": "warn"})),
        &seen,
        NOW,
    );
    assert_eq!(out.status, Status::Warn, "{out:?}");
    let out = judge_unit(
        &spec(json!({"unit": "l.service", "flapping": "ignore"})),
        &seen,
        NOW,
    );
    assert_eq!(out.status, Status::Pass, "{out:?}");
    let out = judge_unit(
        &spec(json!({"unit": "l.service", "flap_window": "1ms"})),
        &seen,
        NOW,
    );
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert!(spec_error(json!({"unit": "l.service", "flapping": "maybe"})).contains("flapping"));
}

#[test]
fn uptime_is_judged_when_the_properties_were_read() {
    // Read 3 ms after it started; judged a minute later it must still count as 3 ms up.
    let mut seen = looping_service(5, 3);
    seen.read_at_usec = NOW;
    let out = judge_unit(&spec(json!("loop.service")), &seen, NOW + 60_000_000);
    assert_eq!(out.status, Status::Fail, "{out:?}");
}

fn running_service() -> UnitObservation {
    UnitObservation {
        load_state: "loaded".into(),
        load_error: None,
        active_state: "active".into(),
        sub_state: "running".into(),
        unit_file_state: "enabled".into(),
        active_enter_usec: NOW - 120_000_000,
        read_at_usec: NOW,
        service: Some(ServiceObservation {
            n_restarts: 0,
            result: "success".into(),
        }),
    }
}

fn failed_service() -> UnitObservation {
    UnitObservation {
        active_state: "failed".into(),
        sub_state: "failed".into(),
        active_enter_usec: 0,
        service: Some(ServiceObservation {
            n_restarts: 0,
            result: "exit-code".into(),
        }),
        ..running_service()
    }
}

#[test]
fn unit_names_are_validated() {
    for good in [
        "nginx.service",
        "getty@tty1.service",
        "dev-sda1.device",
        "var-lib\\x2ddocker.mount",
        "proc-sys-fs-binfmt_misc.automount",
        "user:1000.slice",
        "fstrim.timer",
    ] {
        assert_eq!(good.parse::<UnitName>().unwrap().as_str(), good);
    }
    for (bad, why) in [
        ("", "empty"),
        ("nginx", "unknown unit type suffix"),
        ("nginx.servce", "unknown unit type suffix"),
        ("ngi nx.service", "character ' ' is not allowed"),
        ("a/b.service", "character '/' is not allowed"),
        ("$(reboot).service", "character '$' is not allowed"),
        (".service", "nothing before the suffix"),
        ("@x.service", "nothing before the suffix"),
        ("getty@.service", "a template"),
        ("a@b@c.service", "more than one '@'"),
    ] {
        let err = bad.parse::<UnitName>().unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    assert!(format!("{}.service", "x".repeat(250))
        .parse::<UnitName>()
        .is_err());
}

#[test]
fn parameters_parse_with_defaults_and_ansible_spellings() {
    let s = spec(json!("nginx.service"));
    assert_eq!(s.unit.as_str(), "nginx.service");
    assert_eq!(s.state, UnitStateWanted::Active);
    assert_eq!(
        (s.enabled, s.max_restarts, s.min_uptime),
        (None, None, None)
    );
    assert!(s.mandatory);

    let s = spec(json!({
        "unit": "db.service", "state": "Inactive", "enabled": "yes",
        "max_restarts": "3", "min_uptime": "1m", "mandatory": false
    }));
    assert_eq!(s.state, UnitStateWanted::Inactive);
    assert_eq!(s.enabled, Some(true));
    assert_eq!(s.max_restarts, Some(3));
    assert_eq!(s.min_uptime, Some(Duration::from_secs(60)));
    assert!(!s.mandatory);
    assert_eq!(
        spec(json!({"unit": "a.socket", "enabled": null})).enabled,
        None
    );

    assert!(spec_error(json!({"unit": "a.service", "state": "up"}))
        .contains("invalid state \"up\" (expected active, inactive or any)"));
    assert!(
        spec_error(json!({"unit": "a.service", "enabled": "maybe"})).contains("expected a boolean")
    );
    assert!(spec_error(json!({"unit": "a.service", "max_restarts": -1})).contains("-1"));
    assert!(spec_error(json!({"unit": "a.service", "colour": 1})).contains("colour"));
    assert!(spec_error(json!({"state": "active"})).contains("missing field `unit`"));
}

#[test]
fn errors_name_the_parameter_path() {
    let params = json!({"systemd": ["ok.service", {"unit": "bad name.service"}]});
    let serde_json::Value::Object(params) = params else {
        unreachable!()
    };
    let err =
        ansible_module::args::parse_params::<crate::args::Args>(params, crate::args::PARAMETERS)
            .unwrap_err()
            .to_string();
    assert!(
        err.starts_with("parameter 'systemd[1].unit': invalid unit name \"bad name.service\""),
        "{err}"
    );
}

#[test]
fn system_state_parameter() {
    let parse =
        |value| serde_json::from_value::<StrOrMap<SystemStateParams>>(value).map(|entry| entry.0);
    assert_eq!(parse(json!("running")).unwrap().state.as_str(), "running");
    assert_eq!(parse(json!({})).unwrap().state.as_str(), "running");
    let s = parse(json!({"state": "Degraded", "mandatory": "no", "name": "boot"})).unwrap();
    assert_eq!((s.state.as_str(), s.mandatory), ("degraded", false));
    let err = parse(json!("fine")).unwrap_err().to_string();
    assert!(err.contains("invalid system state \"fine\""), "{err}");
}

fn meta() -> CheckMeta {
    CheckMeta {
        kind: Kind::Systemd,
        name: "x".into(),
        mandatory: true,
        timeout: std::time::Duration::from_secs(1),
        expected: String::new(),
    }
}

#[test]
fn combinations_are_checked_when_planning() {
    let err = validate(
        &spec(json!({"unit": "a.socket", "max_restarts": 1})),
        "systemd[0]",
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "parameter 'systemd[0].max_restarts': only .service units count restarts, not a.socket"
    );
    let err = validate(
        &spec(json!({"unit": "a.service", "state": "any", "min_uptime": "5s"})),
        "systemd[3]",
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "parameter 'systemd[3].min_uptime': needs state active, not any"
    );
    let err = crate::bus(Some("nonsense")).err().unwrap().to_string();
    assert!(
        err.starts_with("parameter 'systemd_bus': invalid D-Bus address \"nonsense\""),
        "{err}"
    );
}

#[test]
fn active_unit_passes() {
    let out = judge_unit(&spec(json!("web.service")), &running_service(), NOW);
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(
        out.message,
        "web.service is active (running), 0 restarts, up 2m"
    );
    assert_eq!(out.observed, "active (running), enabled, 0 restarts, up 2m");
    assert_eq!(out.details["uptime_s"], json!(120.0));
    assert_eq!(out.details["n_restarts"], json!(0));
}

#[test]
fn failed_unit_names_sub_state_and_result() {
    let out = judge_unit(&spec(json!("job.service")), &failed_service(), NOW);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "job.service is failed (sub-state failed, result exit-code), expected active \
         (0 restarts, not up)"
    );
    assert_eq!(
        out.observed,
        "failed (failed), result exit-code, enabled, 0 restarts"
    );
    // A failed unit is not inactive either.
    let out = judge_unit(
        &spec(json!({"unit": "job.service", "state": "inactive"})),
        &failed_service(),
        NOW,
    );
    assert_eq!(out.status, Status::Fail);
    let out = judge_unit(
        &spec(json!({"unit": "job.service", "state": "any"})),
        &failed_service(),
        NOW,
    );
    assert_eq!(out.status, Status::Pass);
}

#[test]
fn inactive_unit() {
    let seen = UnitObservation {
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        unit_file_state: "disabled".into(),
        active_enter_usec: 0,
        ..running_service()
    };
    let out = judge_unit(&spec(json!("idle.service")), &seen, NOW);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "idle.service is inactive (sub-state dead, result success), expected active \
         (0 restarts, not up)"
    );
    let out = judge_unit(
        &spec(json!({"unit": "idle.service", "state": "inactive", "enabled": false})),
        &seen,
        NOW,
    );
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(
        out.message,
        "idle.service is inactive (dead), 0 restarts, not up"
    );
    let out = judge_unit(
        &spec(json!({"unit": "idle.service", "state": "inactive", "enabled": true})),
        &seen,
        NOW,
    );
    assert_eq!(
        out.message,
        "idle.service is disabled, expected enabled (0 restarts, not up)"
    );
}

#[test]
fn missing_masked_and_broken_units() {
    let missing = UnitObservation {
        load_state: "not-found".into(),
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        unit_file_state: "".into(),
        active_enter_usec: 0,
        read_at_usec: NOW,
        service: None,
        load_error: Some("Unit nope.service not found.".into()),
    };
    for state in ["active", "inactive", "any"] {
        let out = judge_unit(
            &spec(json!({"unit": "nope.service", "state": state})),
            &missing,
            NOW,
        );
        assert_eq!(out.status, Status::Fail);
        assert_eq!(out.message, "nope.service not found (load state not-found)");
        assert_eq!(out.observed, "not-found");
    }

    let masked = UnitObservation {
        load_state: "masked".into(),
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        unit_file_state: "masked".into(),
        active_enter_usec: 0,
        ..running_service()
    };
    let out = judge_unit(&spec(json!("old.service")), &masked, NOW);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "old.service is masked and inactive (sub-state dead, result success), expected active \
         (0 restarts, not up)"
    );
    let out = judge_unit(
        &spec(json!({"unit": "old.service", "state": "inactive", "enabled": false})),
        &masked,
        NOW,
    );
    assert_eq!(out.status, Status::Pass, "{out:?}");

    let broken = UnitObservation {
        load_state: "bad-setting".into(),
        load_error: Some("Unit configuration has fatal error".into()),
        ..running_service()
    };
    let out = judge_unit(&spec(json!("broken.service")), &broken, NOW);
    assert_eq!(
            out.message,
            "broken.service could not be loaded (load state bad-setting): Unit configuration has fatal error"
        );
}

#[test]
fn enabled_follows_systemctl_is_enabled() {
    let with = |file_state: &str| UnitObservation {
        unit_file_state: file_state.into(),
        ..running_service()
    };
    let want = |enabled: bool| spec(json!({"unit": "a.service", "enabled": enabled}));
    for state in [
        "enabled",
        "enabled-runtime",
        "static",
        "alias",
        "indirect",
        "generated",
    ] {
        assert_eq!(
            judge_unit(&want(true), &with(state), NOW).status,
            Status::Pass,
            "{state}"
        );
        assert_eq!(
            judge_unit(&want(false), &with(state), NOW).status,
            Status::Fail,
            "{state}"
        );
    }
    for state in ["disabled", "masked", "linked"] {
        assert_eq!(
            judge_unit(&want(true), &with(state), NOW).status,
            Status::Fail,
            "{state}"
        );
        assert_eq!(
            judge_unit(&want(false), &with(state), NOW).status,
            Status::Pass,
            "{state}"
        );
    }
    let out = judge_unit(&want(true), &with(""), NOW);
    assert_eq!(
        out.message,
        "a.service has no unit file state, expected enabled (0 restarts, up 2m)"
    );
    assert_eq!(
        judge_unit(&want(true), &with("bad"), NOW).status,
        Status::Fail
    );
}

#[test]
fn restarts_and_uptime() {
    let restarting = UnitObservation {
        active_state: "activating".into(),
        sub_state: "auto-restart".into(),
        service: Some(ServiceObservation {
            n_restarts: 7,
            result: "exit-code".into(),
        }),
        ..running_service()
    };
    let out = judge_unit(
        &spec(json!({"unit": "flappy.service", "max_restarts": 1})),
        &restarting,
        NOW,
    );
    assert_eq!(
        out.message,
        "flappy.service is activating (sub-state auto-restart, result exit-code), expected \
             active; flappy.service restarted 7 times, more than max_restarts 1; flappy.service \
             is in a restart loop: restarted 7 times, not up"
    );
    let out = judge_unit(
        &spec(
            json!({"unit": "flappy.service", "state": "any", "max_restarts": 7,
                     "flapping": "ignore"}),
        ),
        &restarting,
        NOW,
    );
    assert_eq!(out.status, Status::Pass);

    let young = UnitObservation {
        active_enter_usec: NOW - 3_500_000,
        ..running_service()
    };
    let out = judge_unit(
        &spec(json!({"unit": "web.service", "min_uptime": "30s"})),
        &young,
        NOW,
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "web.service active for 3.5s, less than min_uptime 30s (0 restarts, up 3.5s)"
    );
    let out = judge_unit(
        &spec(json!({"unit": "web.service", "min_uptime": "1m"})),
        &running_service(),
        NOW,
    );
    assert_eq!(out.status, Status::Pass);
}

#[test]
fn system_state_judging() {
    let out = judge_system_state("running", "running", FailedUnits::Listed(vec![]));
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Pass, "system is running")
    );
    let failed = FailedUnits::Listed(vec!["a.service".into(), "b.mount".into()]);
    let out = judge_system_state("running", "degraded", failed.clone());
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "system is degraded, expected running; failed units: a.service, b.mount"
    );
    assert_eq!(out.observed, "degraded (failed units: a.service, b.mount)");
    assert_eq!(out.details["failed_units"], json!(["a.service", "b.mount"]));
    let out = judge_system_state("degraded", "degraded", failed);
    assert_eq!(out.status, Status::Pass);
    let out = judge_system_state("running", "starting", FailedUnits::Listed(vec![]));
    assert_eq!(out.message, "system is starting, expected running");
    let out = judge_system_state(
        "running",
        "degraded",
        FailedUnits::Unknown("access denied".into()),
    );
    assert_eq!(
        out.message,
        "system is degraded, expected running; failed units: cannot list them: access denied"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn missing_socket_is_reported_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}/system_bus_socket", dir.path().display());
    let bus = Bus::new(Some(&address)).unwrap();
    let planned = plan(Unit { bus: bus.clone() }, spec(json!("a.service")), meta());
    let out = planned.work.await;
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        format!("cannot connect to the system bus at {address}: No such file or directory")
    );
    // The failure is kept: the next check gets the same answer without a new attempt.
    let out = plan(
        SystemState { bus },
        serde_json::from_value::<StrOrMap<SystemStateParams>>(json!("running"))
            .unwrap()
            .0,
        meta(),
    )
    .work
    .await;
    assert_eq!(
        out.message,
        format!("cannot connect to the system bus at {address}: No such file or directory")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn silent_socket_does_not_block_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let bus = Bus::new(Some(&format!("unix:path={}", path.display()))).unwrap();
    let planned = plan(Unit { bus: bus.clone() }, spec(json!("a.service")), meta());
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(std::time::Duration::from_millis(300), planned.work).await;
    assert!(result.is_err(), "a silent bus answered: {result:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
