//! The contract seen from a module: every bad input becomes a failed result naming the
//! parameter, `_ansible_*` keys become the context, and `no_log` values never come back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ansible_module::types::{boolean, ByteSize, Duration, List, Percent, Shorthand, StrOrMap};
use ansible_module::{Context, Error, Module, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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
ansible_module::string_schema!(Host);

struct Probe;

impl Module for Probe {
    type Args = Args;
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "1.0.0";
    const SUMMARY: &'static str = "A module for the contract's tests.";
    const SUPPORTS_CHECK_MODE: bool = true;

    fn argument_spec() -> serde_json::Map<String, Value> {
        ansible_module::spec::argument_spec::<Args>()
    }
    const NO_LOG: &'static [&'static str] = &["password"];

    fn run(args: Args, ctx: &Context) -> Result<Response, Error> {
        if args.name == "error" {
            return Err(Error::Failed("the module gave up".into()));
        }
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
        Ok(response)
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

/// A module that cannot run in check mode.
struct Changer;

impl Module for Changer {
    type Args = Args;
    const NAME: &'static str = "changer";
    const VERSION: &'static str = "1.0.0";
    const SUMMARY: &'static str = "Changes things.";
    const SUPPORTS_CHECK_MODE: bool = false;

    fn run(args: Args, _ctx: &Context) -> Result<Response, Error> {
        let mut response = Response::ok(format!("changed {}", args.name));
        response
            .set_changed(true)
            .set_diff(json!({"state": "absent"}), json!({"state": "present"}))
            .warn("the old setting is gone")
            .deprecate("parameter 'size' will be removed", "2.0.0");
        Ok(response)
    }
}

#[test]
fn a_module_without_check_mode_is_skipped_with_ansibles_message() {
    let out =
        ansible_module::run_value::<Changer>(json!({"name": "x", "_ansible_check_mode": true}))
            .to_value();
    assert_eq!(out["skipped"], true, "{out}");
    assert_eq!(out["changed"], false);
    assert_eq!(out["failed"], false);
    assert_eq!(
        out["msg"],
        "remote module (changer) does not support check mode"
    );
    // Outside check mode it runs.
    let out = ansible_module::run_value::<Changer>(json!({"name": "x"})).to_value();
    assert_eq!(out["msg"], "changed x");
    assert!(out.get("skipped").is_none());
}

#[test]
fn diff_changed_warnings_and_deprecations_reach_the_result() {
    let out = ansible_module::run_value::<Changer>(json!({"name": "x"})).to_value();
    assert_eq!(out["changed"], true);
    assert_eq!(
        out["diff"],
        json!({"before": {"state": "absent"}, "after": {"state": "present"}})
    );
    assert_eq!(out["warnings"], json!(["the old setting is gone"]));
    assert_eq!(
        out["deprecations"],
        json!([{"msg": "parameter 'size' will be removed", "version": "2.0.0"}])
    );
}

#[test]
fn an_error_from_run_is_a_failed_result_with_its_message() {
    let out = run(json!({"name": "error"}));
    assert_eq!(out["failed"], true);
    assert_eq!(out["msg"], "the module gave up");
}

#[test]
fn parameter_names_come_from_the_args_type_through_serde() {
    assert_eq!(
        ansible_module::spec::field_names::<Args>(),
        ["name", "timeout", "size", "limit", "enabled", "password", "items"]
    );
    assert_eq!(
        ansible_module::spec::names_only::<Item>()
            .keys()
            .collect::<Vec<_>>(),
        ["host", "port"]
    );
}

#[test]
fn the_argument_spec_comes_from_the_args_type() {
    let spec = ansible_module::spec::argument_spec::<Args>();
    let names: Vec<&String> = spec.keys().collect();
    assert_eq!(
        names,
        ["enabled", "items", "limit", "name", "password", "size", "timeout"]
    );
    assert_eq!(spec["name"], json!({"type": "str", "required": true}));
    assert_eq!(spec["enabled"], json!({"type": "bool", "default": true}));
    assert_eq!(spec["timeout"]["type"], "raw");
    assert_eq!(spec["limit"]["type"], "float");
    assert_eq!(spec["items"]["type"], "list");
    assert_eq!(spec["items"]["elements"], "raw");
    assert_eq!(
        spec["items"]["suboptions"],
        json!({"host": {"type": "str", "required": true}, "port": {"type": "int"}})
    );
}

#[test]
fn short_secrets_are_not_masked_inside_other_strings() {
    let out = run(json!({"name": "1 and 1", "password": "1"}));
    // The value itself is hidden wherever it stands alone...
    assert_eq!(
        out["invocation"]["module_args"]["password"],
        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    );
    // ...but a one-character secret does not blank every "1" of the output.
    assert_eq!(out["msg"], "hello 1 and 1");
}

#[test]
fn url_passwords_never_leave_the_process() {
    let out = run(json!({"name": "http://admin:Pa55word@db.internal/"}));
    let text = out.to_string();
    assert!(!text.contains("Pa55word"), "{text}");
    assert_eq!(out["msg"], "hello http://admin:********@db.internal/");
}

#[test]
fn artifacts_are_masked_like_stdout() {
    let dir = tempfile::tempdir().unwrap();
    ansible_module::secrets::register("artifact-secret-42");
    let path = dir.path().join("report.json");
    ansible_module::atomic::write(
        &path,
        b"{\"token\": \"artifact-secret-42\", \"url\": \"https://u:pw12@h/\"}",
        0o644,
    )
    .unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        written,
        "{\"token\": \"********\", \"url\": \"https://u:********@h/\"}"
    );
    let streamed = dir.path().join("streamed.txt");
    ansible_module::atomic::write_with(&streamed, 0o644, |out| {
        out.write_all(b"line one artifact-sec")?;
        out.write_all(b"ret-42 split across writes\nline two\n")
    })
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&streamed).unwrap(),
        "line one ******** split across writes\nline two\n"
    );
}

#[test]
fn invocation_echoes_long_values_cut_short() {
    let long = "x".repeat(5000);
    let many: Vec<String> = (0..150).map(|i| format!("h{i}")).collect();
    let out = run(json!({"name": long, "items": many}));
    let echoed = out["invocation"]["module_args"]["name"].as_str().unwrap();
    assert!(
        echoed.ends_with("... (3976 characters not shown)"),
        "{echoed}"
    );
    let items = out["invocation"]["module_args"]["items"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 101);
    assert_eq!(items[100], "... (50 more items not shown)");
}

#[test]
fn an_oversized_arguments_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(ansible_module::args::MAX_ARGS_FILE_BYTES + 1)
        .unwrap();
    let out = ansible_module::run_file::<Probe>(&path).to_value();
    assert_eq!(out["failed"], true);
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "is {} bytes, more than the {} bytes a module reads",
            ansible_module::args::MAX_ARGS_FILE_BYTES + 1,
            ansible_module::args::MAX_ARGS_FILE_BYTES
        )),
        "{msg}"
    );
}
