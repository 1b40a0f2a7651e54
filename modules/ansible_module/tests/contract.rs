//! The contract seen from a module: every bad input becomes a failed result naming the
//! parameter, `_ansible_*` keys become the context, and `no_log` values never come back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ansible_module::types::{boolean, ByteSize, Duration, List, Percent, Shorthand, StrOrMap};
use ansible_module::{Context, Module, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    name: String,
    #[serde(default)]
    timeout: Option<Duration>,
    #[serde(default)]
    size: Option<ByteSize>,
    #[serde(default)]
    limit: Option<Percent>,
    #[serde(default = "yes", deserialize_with = "boolean")]
    enabled: bool,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    items: Option<List<StrOrMap<Item>>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    host: Host,
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    port: Option<u16>,
}

impl Shorthand for Item {
    const FIELD: &'static str = "host";
}

/// A host name: no spaces.
#[derive(Debug)]
struct Host(String);

impl std::str::FromStr for Host {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.contains(' ') {
            return Err(format!("invalid item {text:?} (expected a host name)"));
        }
        Ok(Host(text.into()))
    }
}

ansible_module::deserialize_from_str!(Host);

struct Probe;

impl Module for Probe {
    type Args = Args;
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "1.0.0";
    const SUMMARY: &'static str = "A module for the contract's tests.";
    const PARAMETERS: &'static [&'static str] = &[
        "name", "timeout", "size", "limit", "enabled", "password", "items",
    ];
    const NO_LOG: &'static [&'static str] = &["password"];

    fn run(args: Args, ctx: &Context) -> Response {
        let mut response = Response::ok(format!("hello {}", args.name));
        response
            .insert("check_mode", ctx.check_mode)
            .insert("verbosity", ctx.verbosity)
            .insert("enabled", args.enabled)
            .insert(
                "timeout_ms",
                args.timeout.map(|t| t.get().as_millis() as u64),
            )
            .insert("size", args.size.map(|s| s.0))
            .insert("limit", args.limit.map(|p| p.0))
            .insert(
                "items",
                args.items.map(|l| {
                    l.into_iter()
                        .map(|i| (i.0.host.0, i.0.port))
                        .collect::<Vec<_>>()
                }),
            );
        if let Some(password) = args.password {
            response.warn(format!("the password is {password}"));
        }
        response
    }
}

fn run(args: Value) -> Value {
    ansible_module::run_value::<Probe>(args).to_value()
}

fn failure(args: Value) -> String {
    let out = run(args);
    assert_eq!(out["failed"], true, "expected a failure, got {out}");
    out["msg"].as_str().unwrap().to_string()
}

#[test]
fn good_arguments_and_context() {
    let out = run(json!({
        "name": "x", "timeout": "1m30s", "size": "10GiB", "limit": "90%", "enabled": "no",
        "items": "a, b", "_ansible_check_mode": true, "_ansible_verbosity": 3,
        "_ansible_some_future_key": {"x": 1}
    }));
    assert_eq!(out["failed"], false, "{out}");
    assert_eq!(out["changed"], false);
    assert_eq!(out["msg"], "hello x");
    assert_eq!(out["check_mode"], true);
    assert_eq!(out["verbosity"], 3);
    assert_eq!(out["enabled"], false);
    assert_eq!(out["timeout_ms"], 90_000);
    assert_eq!(out["size"], 10u64 * 1024 * 1024 * 1024);
    assert_eq!(out["limit"], 90.0);
    assert_eq!(out["items"], json!([["a", null], ["b", null]]));
    assert_eq!(out["warnings"], json!([]));
    // Ansible's own keys never reach invocation.module_args.
    assert_eq!(out["invocation"]["module_args"]["name"], "x");
    assert!(out["invocation"]["module_args"]
        .get("_ansible_check_mode")
        .is_none());
}

#[test]
fn unknown_parameter_lists_supported_ones() {
    let msg = failure(json!({"name": "x", "colour": "red"}));
    assert_eq!(
        msg,
        "unsupported parameter 'colour'; supported: enabled, items, limit, name, password, size, timeout"
    );
}

#[test]
fn unknown_nested_parameter_names_its_path() {
    let msg = failure(json!({"name": "x", "items": ["a", {"host": "b", "prot": 1}]}));
    assert!(
        msg.starts_with("unsupported parameter 'items[1].prot'; supported: host, port"),
        "{msg}"
    );
}

#[test]
fn missing_required_parameter() {
    assert_eq!(failure(json!({})), "missing required parameter 'name'");
    let msg = failure(json!({"name": "x", "items": [{"port": 1}]}));
    assert_eq!(msg, "missing required parameter 'items[0].host'");
}

#[test]
fn wrong_type_names_the_parameter() {
    let msg = failure(json!({"name": ["not", "a", "string"]}));
    assert!(msg.starts_with("parameter 'name': invalid type"), "{msg}");
    let msg = failure(json!({"name": "x", "enabled": "perhaps"}));
    assert_eq!(
        msg,
        "parameter 'enabled': expected a boolean (true/false, yes/no), got \"perhaps\""
    );
    let msg = failure(json!({"name": "x", "items": [{"host": "h", "port": "eighty"}]}));
    assert!(
        msg.starts_with("parameter 'items[0].port': expected a number"),
        "{msg}"
    );
    let msg = failure(json!({"name": "x", "items": [{"host": "h", "port": 70000}]}));
    assert!(
        msg.starts_with("parameter 'items[0].port': 70000 is out of range"),
        "{msg}"
    );
}

#[test]
fn bad_duration() {
    let msg = failure(json!({"name": "x", "timeout": "5x"}));
    assert!(
        msg.starts_with("parameter 'timeout': invalid duration \"5x\""),
        "{msg}"
    );
    assert!(failure(json!({"name": "x", "timeout": -1})).contains("invalid duration -1"));
    assert!(failure(json!({"name": "x", "timeout": true})).contains("parameter 'timeout'"));
}

#[test]
fn out_of_range_percent() {
    let msg = failure(json!({"name": "x", "limit": 101}));
    assert_eq!(
        msg,
        "parameter 'limit': percentage 101 is out of range (expected a number from 0 to 100)"
    );
    assert!(failure(json!({"name": "x", "limit": "ninety"})).contains("parameter 'limit'"));
}

#[test]
fn bad_byte_size_and_shorthand() {
    let msg = failure(json!({"name": "x", "size": "10 parsecs"}));
    assert!(
        msg.starts_with("parameter 'size': invalid byte size"),
        "{msg}"
    );
    let msg = failure(json!({"name": "x", "items": ["ok", "not ok"]}));
    assert!(
        msg.starts_with("parameter 'items[1]': invalid item"),
        "{msg}"
    );
}

#[test]
fn not_an_object() {
    assert_eq!(
        failure(json!(["name", "x"])),
        "module arguments must be a JSON object, got an array"
    );
    assert!(failure(json!("x")).contains("got a string"));
}

#[test]
fn bad_context_value_is_reported() {
    let msg = failure(json!({"name": "x", "_ansible_check_mode": "sometimes"}));
    assert!(
        msg.starts_with("invalid internal parameter '_ansible_check_mode'"),
        "{msg}"
    );
}

#[test]
fn no_log_values_are_masked_and_scrubbed() {
    let out = run(json!({"name": "x", "password": "hunter2-secret"}));
    assert_eq!(
        out["invocation"]["module_args"]["password"],
        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    );
    let text = out.to_string();
    assert!(!text.contains("hunter2-secret"), "secret leaked: {text}");
    assert_eq!(out["warnings"], json!(["the password is ********"]));
    // Masked even when parsing fails later on.
    let out = run(json!({"password": "hunter2-secret", "limit": 900}));
    assert_eq!(out["failed"], true);
    assert!(!out.to_string().contains("hunter2-secret"));
}

#[test]
fn args_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = ansible_module::run_file::<Probe>(&missing).to_value();
    assert_eq!(out["failed"], true);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .starts_with("cannot read arguments file"));

    let garbage = dir.path().join("garbage");
    std::fs::File::create(&garbage)
        .unwrap()
        .write_all(b"name=x \x00\xff")
        .unwrap();
    let out = ansible_module::run_file::<Probe>(&garbage).to_value();
    assert_eq!(out["failed"], true);
    assert!(out["msg"].as_str().unwrap().contains("is not valid JSON"));

    let good = dir.path().join("args");
    std::fs::write(&good, br#"{"name": "file"}"#).unwrap();
    let out = ansible_module::run_file::<Probe>(&good).to_value();
    assert_eq!(out["msg"], "hello file");
}

#[test]
fn value_types_parse_what_users_write() {
    let d = |s: &str| s.parse::<Duration>().unwrap().get().as_millis();
    assert_eq!(d("250ms"), 250);
    assert_eq!(d("5s"), 5000);
    assert_eq!(d("2m"), 120_000);
    assert_eq!(d("1h"), 3_600_000);
    assert_eq!(d("1.5"), 1500);
    assert_eq!(d(" 3 "), 3000);
    assert!("".parse::<Duration>().is_err());
    assert!("s".parse::<Duration>().is_err());
    assert!("5 fortnights".parse::<Duration>().is_err());
    assert_eq!(Duration::from_millis(250).to_string(), "250ms");
    assert_eq!(Duration::from_secs(90).to_string(), "1m30s");
    assert_eq!(Duration::from_secs(5).to_string(), "5s");

    let b = |s: &str| s.parse::<ByteSize>().unwrap().0;
    assert_eq!(b("1024"), 1024);
    assert_eq!(b("1KiB"), 1024);
    assert_eq!(b("1 kB"), 1000);
    assert_eq!(b("2G"), 2 * 1024 * 1024 * 1024);
    assert_eq!(b("1.5 GB"), 1_500_000_000);
    assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");

    assert_eq!("90%".parse::<Percent>().unwrap().0, 90.0);
    assert!("-1".parse::<Percent>().is_err());
}
