//! The real `health_check` binary, run as Ansible runs it: an args file in a temp directory,
//! one JSON object on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_health_check");

fn run_args(args: &Value) -> (Value, Output) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args");
    std::fs::write(&path, args.to_string()).unwrap();
    run_raw(&[path.as_os_str()])
}

fn run_raw(argv: &[&std::ffi::OsStr]) -> (Value, Output) {
    let out = Command::new(BIN).args(argv).output().unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "expected one line of JSON, got {stdout:?}"
    );
    let value: Value = serde_json::from_str(&stdout).unwrap();
    (value, out)
}

/// An HTTP server on 127.0.0.1 answering `/ok` with 200 and everything else with 500.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let answer = if request.starts_with("GET /ok ") {
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhealthy"
            } else {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nsick"
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    base
}

/// A server that accepts connections and never says a word.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    base
}

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn check<'a>(out: &'a Value, name: &str) -> &'a Value {
    out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {out}"))
}

#[test]
fn healthy_host_passes_with_every_kind() {
    let base = http_server();
    let tcp_port = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = tcp_port.local_addr().unwrap().to_string();
    let (out, status) = run_args(&json!({
        "disks": ["/"],
        "memory": {"max_used_percent": 100},
        "load": {"max_per_cpu": 1000},
        "tcp": [{"address": address, "name": "listener"}],
        "http": [{"url": format!("{base}/ok"), "body_contains": "healthy", "name": "api"}],
    }));
    assert_eq!(out["failed"], false, "{out}");
    assert_eq!(status.status.code(), Some(0));
    assert_eq!(out["changed"], false);
    assert_eq!(out["summary"]["status"], "pass");
    assert_eq!(out["summary"]["total"], 5);
    assert_eq!(out["summary"]["pass"], 5);
    assert_eq!(out["summary"]["schema_version"], 1);
    assert_eq!(out["msg"], "5 checks: 5 pass, 0 warn, 0 fail, 0 skip");
    let kinds: Vec<&str> = out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["disk", "memory", "load", "tcp", "http"]);
    let api = check(&out, "api");
    assert_eq!(api["details"]["status_code"], 200);
    assert!(api["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(check(&out, "listener")["status"], "pass");
}

#[test]
fn failed_mandatory_check_fails_the_task_and_names_it() {
    let base = http_server();
    let port = closed_port();
    let (out, status) = run_args(&json!({
        "tcp": [{"address": format!("127.0.0.1:{port}"), "name": "db"}],
        "http": [format!("{base}/broken")],
    }));
    assert_eq!(out["failed"], true);
    assert_eq!(status.status.code(), Some(1));
    let msg = out["msg"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "mandatory health checks failed: tcp:db (cannot connect to 127.0.0.1:{port}: connection refused), \
             http:{base}/broken (status 500, expected 2xx)"
        )
    );
    assert_eq!(
        out["summary"]["mandatory_failed"],
        json!(["tcp:db", format!("http:{base}/broken")])
    );
}

#[test]
fn advisory_failure_only_warns() {
    let port = closed_port();
    let (out, _) = run_args(&json!({
        "disks": ["/"],
        "tcp": [{"address": format!("127.0.0.1:{port}"), "name": "metrics", "mandatory": "no"}],
    }));
    assert_eq!(out["failed"], false, "{out}");
    assert_eq!(out["summary"]["status"], "warn");
    assert_eq!(out["summary"]["advisory_failed"], json!(["tcp:metrics"]));
    let warnings = out["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0]
        .as_str()
        .unwrap()
        .starts_with("advisory check tcp:metrics failed: cannot connect"));
}

#[test]
fn check_mode_still_runs_the_checks() {
    let (out, _) =
        run_args(&json!({"disks": ["/"], "_ansible_check_mode": true, "_ansible_diff": true}));
    assert_eq!(out["failed"], false, "{out}");
    assert_eq!(out["checks"][0]["status"], "pass");
}

#[test]
fn silent_server_times_out_within_the_check_timeout() {
    let base = silent_server();
    let started = Instant::now();
    let (out, _) = run_args(
        &json!({"http": [{"url": format!("{base}/"), "timeout": "1s", "name": "silent"}]}),
    );
    let took = started.elapsed();
    // The bound that matters: the 1s check timeout ends the run, long before the server would
    // answer; the margin absorbs a loaded 2-core CI machine.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "returned before the timeout: {took:?}"
    );
    let silent = check(&out, "silent");
    assert_eq!(silent["status"], "fail");
    assert_eq!(silent["message"], "timed out after 1s");
    assert_eq!(out["failed"], true);
}

#[test]
fn deadline_bounds_the_whole_run() {
    let base = silent_server();
    let started = Instant::now();
    let (out, _) = run_args(&json!({
        "http": [{"url": format!("{base}/a"), "name": "a"}, {"url": format!("{base}/b"), "name": "b"}],
        "timeout": "30s",
        "deadline": "500ms",
        "disks": ["/"],
    }));
    let took = started.elapsed();
    // The 500ms deadline, not the 30s timeout, ends the run (with margin for a loaded machine).
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(
        check(&out, "a")["message"],
        "deadline exceeded: the whole run is limited to 500ms"
    );
    assert_eq!(check(&out, "b")["status"], "fail");
    assert_eq!(check(&out, "/")["status"], "pass");
}

#[test]
fn bad_input_gives_one_failed_object() {
    let (out, status) = run_raw(&[]);
    assert_eq!(out["failed"], true);
    assert_eq!(status.status.code(), Some(1));
    let (out, _) = run_raw(&["/no/such/args/file".as_ref()]);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .starts_with("cannot read arguments file '/no/such/args/file'"));

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"\x00\x01 not json at all").unwrap();
    let (out, _) = run_raw(&[garbage.as_os_str()]);
    assert!(
        out["msg"].as_str().unwrap().contains("is not valid JSON"),
        "{out}"
    );

    let cases = [
        (json!({"tcp": ["127.0.0.1"]}), "parameter 'tcp[0]': invalid address \"127.0.0.1\": no port"),
        (json!({"disks": [{"path": "/", "max_used_percent": 120}]}), "parameter 'disks[0].max_used_percent': percentage 120 is out of range"),
        (json!({"http": [{"url": "http://x/", "timeout": "soon"}]}), "parameter 'http[0].timeout': invalid duration \"soon\""),
        (json!({"http": [{"url": "ftp://x/"}]}), "parameter 'http[0].url': invalid URL \"ftp://x/\""),
        (json!({"http": [{"url": "http://x/", "status": 999}]}), "parameter 'http[0].status': invalid HTTP status 999"),
        (json!({"load": {"max_per_cpu": "lots"}}), "parameter 'load.max_per_cpu': expected a number"),
        (json!({"memory": {"max_used": 5}}), "unsupported parameter 'memory.max_used'; supported: max_used_percent, name, mandatory, timeout"),
        (json!({"checks": []}), "unsupported parameter 'checks'; supported: "),
        (json!({}), "no checks given"),
        (json!([1, 2]), "module arguments must be a JSON object, got an array"),
    ];
    for (args, wanted) in cases {
        let (out, _) = run_args(&args);
        assert_eq!(out["failed"], true, "{args} accepted: {out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(
            msg.starts_with(wanted),
            "for {args}: {msg:?} does not start with {wanted:?}"
        );
    }
}

#[test]
fn header_values_never_come_back() {
    let base = http_server();
    let (out, _) = run_args(&json!({
        "http": [{"url": format!("{base}/ok"), "headers": {"Authorization": "Bearer tops3cret-value"}}],
    }));
    let text = out.to_string();
    assert!(!text.contains("tops3cret-value"), "{text}");
    assert_eq!(
        out["invocation"]["module_args"]["http"][0]["headers"],
        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    );
}

#[test]
fn help_and_version_are_for_people() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Parameters: disks, memory, load, tcp, http,"),
        "{text}"
    );
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("health_check {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn waits_until_a_late_service_comes_up() {
    let port = closed_port();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(listener);
    });
    let started = Instant::now();
    let (out, _) = run_args(&json!({
        "tcp": [format!("127.0.0.1:{port}")],
        "wait_timeout": "5s",
        "interval": "200ms",
    }));
    assert_eq!(out["failed"], false, "{out}");
    let attempts = out["summary"]["attempts"].as_u64().unwrap();
    assert!(attempts >= 2, "{out}");
    assert!(out["summary"]["waited_ms"].as_f64().unwrap() >= 200.0);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .contains(&format!("after {attempts} attempts")));
    // Well under the 5s wait_timeout: the run stopped waiting once the port opened.
    assert!(started.elapsed() < Duration::from_millis(4500));
    late.join().unwrap();
}

#[test]
fn waiting_gives_up_at_wait_timeout() {
    let port = closed_port();
    let started = Instant::now();
    let (out, _) = run_args(&json!({
        "tcp": [format!("127.0.0.1:{port}")],
        "wait_timeout": "1s",
        "interval": "300ms",
    }));
    let took = started.elapsed();
    assert_eq!(out["failed"], true);
    // The 1s wait_timeout ends the waiting (margin for a loaded machine).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(out["summary"]["attempts"].as_u64().unwrap() >= 3, "{out}");
    let (out, _) =
        run_args(&json!({"tcp": ["127.0.0.1:1"], "interval": "1ms", "wait_timeout": "1s"}));
    assert_eq!(
        out["msg"],
        "parameter 'interval': 1ms is too short (expected at least 10ms)"
    );
}

#[test]
fn artifacts_are_written_and_check_mode_writes_none() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let junit = dir.path().join("junit.xml");
    let prom = dir.path().join("health.prom");
    let args = json!({
        "disks": [{"path": "/", "name": "root"}],
        "tcp": [{"address": format!("127.0.0.1:{}", closed_port()), "name": "db", "mandatory": false}],
        "summary_path": summary, "junit_path": junit, "prometheus_path": prom,
    });
    let mut check_mode = args.clone();
    check_mode["_ansible_check_mode"] = json!(true);
    let (out, _) = run_args(&check_mode);
    assert_eq!(out["artifacts"][0]["written"], false, "{out}");
    assert!(!summary.exists() && !junit.exists() && !prom.exists());

    let (out, _) = run_args(&args);
    assert_eq!(out["failed"], false, "{out}");
    assert_eq!(out["artifacts"].as_array().unwrap().len(), 3);
    let doc: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["summary"], out["summary"]);
    assert_eq!(doc["checks"], out["checks"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testcase classname=\"health_check.disk\" name=\"root\""),
        "{xml}"
    );
    // An advisory failure does not fail a CI job: skipped, with its message.
    assert!(
        xml.contains("<skipped message=\"advisory check failed: "),
        "{xml}"
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains(
            "health_check_status{kind=\"tcp\",name=\"db\",mandatory=\"false\",state=\"fail\"} 1"
        ),
        "{text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}");

    let (out, _) =
        run_args(&json!({"disks": ["/"], "summary_path": dir.path().join("missing/s.json")}));
    assert_eq!(out["failed"], true);
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .starts_with("parameter 'summary_path': cannot write"),
        "{out}"
    );
}
