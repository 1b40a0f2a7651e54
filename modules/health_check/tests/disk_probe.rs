//! The disk probe process (`health_check --disk-probe-process PATH...`) and the prober that
//! starts it, run as the module runs them: the real binary, real paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use health_check::checks::disk::probe::{Prober, SUBCOMMAND};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_health_check"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_probe_process_answers_one_json_line_per_path_then_exits() {
    let mut child = Command::new(binary())
        .args([SUBCOMMAND, "/", "/no/such/path"])
        // Kept open while the answers are read: its end tells the process its module is gone.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(lines.len(), 2, "{lines:?}");
    let answer = |index: u64| {
        lines
            .iter()
            .find(|line| line["index"] == index)
            .map(|line| line["answer"].clone())
            .unwrap()
    };
    let root = answer(0);
    assert_eq!(
        root["Observed"]["mount"]["Ok"]["mount_point"], "/",
        "{root}"
    );
    assert!(root["Observed"]["usage"]["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(answer(1), serde_json::json!({"Statvfs": {"errno": 2}}));
}

#[test]
fn an_idle_probe_process_exits_when_its_module_does() {
    // Standard input at its end from the start: the module that started it is gone.
    let status = Command::new(binary())
        .args([SUBCOMMAND, "/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_path_measured_in_a_probe_process_reads_as_one_measured_here() {
    let isolated = Prober::isolating_every_path(binary());
    let here = Prober::new(PathBuf::from("/nonexistent/never-started"));
    runtime().block_on(async {
        let (far, near) = tokio::join!(
            isolated.observe(Path::new("/")),
            here.observe(Path::new("/"))
        );
        let (far, near) = (far.unwrap(), near.unwrap());
        assert_eq!(far.mount, near.mount);
        assert_eq!(far.usage.size_bytes, near.usage.size_bytes);
        let (far, near) = tokio::join!(
            isolated.observe(Path::new("/no/such/path")),
            here.observe(Path::new("/no/such/path"))
        );
        let message = "statvfs /no/such/path failed: ENOENT: No such file or directory";
        assert_eq!(far.unwrap_err().to_string(), message);
        assert_eq!(near.unwrap_err().to_string(), message);
    });
}

#[test]
fn the_disk_checks_that_start_together_share_one_probe_process() {
    let isolated = Prober::isolating_every_path(binary());
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let paths = ["/", "/tmp", "/proc"].map(PathBuf::from);
        let mut tasks = Vec::new();
        for path in paths.iter().chain([&dir.path().to_path_buf()]) {
            let prober = isolated.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move { prober.observe(&path).await }));
        }
        // The same path again while it is being measured: it waits for that measurement.
        let prober = isolated.clone();
        tasks.push(tokio::spawn(
            async move { prober.observe(Path::new("/")).await },
        ));
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
    });
    assert_eq!(isolated.processes_started(), 1, "one process for the batch");
}

#[test]
fn a_probe_process_that_cannot_start_fails_its_paths_with_the_reason() {
    let prober = Prober::isolating_every_path(PathBuf::from("/nonexistent/health_check"));
    let err = runtime()
        .block_on(prober.observe(Path::new("/")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot measure /: cannot start the probe process /nonexistent/health_check: No such file \
         or directory"
    );
}
