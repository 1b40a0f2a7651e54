//! A panic inside a module still produces exactly one JSON object on stdout, and a panic in the
//! middle of an atomic write leaves no temp file behind (the release build aborts on panic, so
//! no destructor would remove it). Runs without the test harness: the same binary is the module
//! (child) and the test (parent), so the harness's own output cannot mix into stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ansible_module::{Context, Error, Module, Response};
use std::process::Command;

struct Panics;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    /// When given, the panic comes while an artifact is being written there.
    artifact: Option<String>,
}

impl Module for Panics {
    type Args = Args;
    const NAME: &'static str = "panics";
    const VERSION: &'static str = "0.0.0";
    const SUMMARY: &'static str = "Panics on purpose.";
    const SUPPORTS_CHECK_MODE: bool = true;

    fn run(args: Args, _ctx: &Context) -> Result<Response, Error> {
        if let Some(artifact) = args.artifact {
            ansible_module::atomic::write_with(
                std::path::Path::new(&artifact),
                0o644,
                |out| -> std::io::Result<()> {
                    out.write_all(b"half an artifact")?;
                    panic!("deliberate failure while writing");
                },
            )?;
        }
        let thread = std::thread::spawn(|| -> u32 { panic!("deliberate failure in a worker") });
        let _ = thread.join();
        unreachable!("the panic hook exits the process first")
    }
}

fn main() {
    if std::env::var_os("PANIC_TO_JSON_CHILD").is_some() {
        ansible_module::main::<Panics>();
    }
    let dir = tempfile::tempdir().unwrap();
    let args = dir.path().join("args");
    std::fs::write(&args, "{}").unwrap();
    let exe = std::env::current_exe().unwrap();

    let out = Command::new(&exe)
        .arg(&args)
        .env("PANIC_TO_JSON_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stdout:?}");
    let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(value["failed"], true);
    let msg = value["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("internal error: deliberate failure in a worker"),
        "{msg}"
    );
    assert_eq!(out.status.code(), Some(1));

    // No argument at all: one failed JSON object too.
    let out = Command::new(&exe)
        .env("PANIC_TO_JSON_CHILD", "1")
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["failed"], true);
    assert!(value["msg"]
        .as_str()
        .unwrap()
        .contains("no arguments file given"));

    // A panic while the atomic writer holds a temp file: the file goes, the target never
    // appears, and the result is still one failed JSON object.
    let artifact = dir.path().join("report.json");
    std::fs::write(
        &args,
        serde_json::json!({"artifact": artifact.display().to_string()}).to_string(),
    )
    .unwrap();
    let out = Command::new(&exe)
        .arg(&args)
        .env("PANIC_TO_JSON_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stdout:?}");
    let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(value["failed"], true);
    let msg = value["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("internal error: deliberate failure while writing"),
        "{msg}"
    );
    assert_eq!(out.status.code(), Some(1));
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["args".to_string()],
        "left behind after the panic"
    );

    println!("test panic_to_json ... ok");
    println!("3 passed, 0 failed");
}
