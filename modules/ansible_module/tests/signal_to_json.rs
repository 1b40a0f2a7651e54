//! SIGTERM while a module works still produces exactly one JSON object, with what the module's
//! hook reported so far, and the atomic writer's temp file is removed. Runs without the test
//! harness: the same binary is the module (child) and the test (parent).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ansible_module::{Context, Error, Module, Response};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Slow;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    out: String,
}

impl Module for Slow {
    type Args = Args;
    const NAME: &'static str = "slow";
    const VERSION: &'static str = "0.0.0";
    const SUMMARY: &'static str = "Writes an artifact slowly.";
    const SUPPORTS_CHECK_MODE: bool = true;

    fn run(args: Args, _ctx: &Context) -> Result<Response, Error> {
        ansible_module::on_interrupt(|| {
            let mut so_far = Response::ok("");
            so_far.insert("done", vec!["first"]);
            so_far
        });
        ansible_module::atomic::write_with(std::path::Path::new(&args.out), 0o644, |out| {
            out.write_all(b"partial")?;
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        })?;
        Ok(Response::ok("finished"))
    }
}

fn main() {
    if std::env::var_os("SIGNAL_TO_JSON_CHILD").is_some() {
        ansible_module::main::<Slow>();
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("artifact.txt");
    let args = dir.path().join("args");
    std::fs::write(
        &args,
        serde_json::json!({"out": target.display().to_string()}).to_string(),
    )
    .unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .arg(&args)
        .env("SIGNAL_TO_JSON_CHILD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the writer's temp file exists, so the signal lands mid-write.
    let temps = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    };
    let waiting = Instant::now();
    while temps() == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "no temp file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got {stdout:?}");
    let result: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(result["failed"], true, "{result}");
    let msg = result["msg"].as_str().unwrap();
    assert!(msg.starts_with("interrupted by SIGTERM after "), "{msg}");
    assert_eq!(result["done"], serde_json::json!(["first"]));
    assert!(result["invocation"]["module_args"]["out"].is_string());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(temps(), 0, "the temp file was left behind");
    assert!(!target.exists());
    println!("signal_to_json: ok");
}
