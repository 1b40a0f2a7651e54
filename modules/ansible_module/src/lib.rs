//! The Ansible binary-module contract, shared by every module of this project.
//!
//! Ansible copies a binary module to the target host and runs it as `MODULE ARGS_FILE`, where
//! `ARGS_FILE` is a JSON object holding the task's parameters plus `_ansible_*` keys. The module
//! must print exactly one JSON object on stdout; its `failed` key decides the task's outcome.
//!
//! This crate owns that whole exchange so that module crates only see typed arguments and
//! return a typed [`Response`]:
//!
//! * [`args`] reads the file, splits the `_ansible_*` keys into a [`Context`] and deserializes
//!   the rest, turning every mistake into a message that names the parameter;
//! * [`types`] holds the lenient value types Ansible users expect (durations, byte sizes,
//!   percentages, `yes`/`no` booleans, comma-separated lists);
//! * [`Response`] is printed once, with `invocation.module_args` masked for `no_log` parameters
//!   and capped in size, and a panic or a signal anywhere still produces one JSON object
//!   ([`signals`]);
//! * [`secrets`] masks the run's secrets in every string that leaves the process, stdout and
//!   artifacts alike;
//! * [`spec`] reads the parameter names from the `Args` type (serde introspection) for the
//!   `unsupported parameter` message, and Ansible's argument spec from its JSON schema for
//!   `MODULE --parameters`;
//! * [`atomic`] writes artifacts with temp file, fsync and rename, so no reader ever sees a
//!   half-written file.
//!
//! A module that does not support check mode (`SUPPORTS_CHECK_MODE = false`) is not run in
//! check mode: the result is `skipped`, with Ansible's own message.
//!
//! ```no_run
//! use ansible_module::{Context, Error, Module, Response};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Args {
//!     greeting: String,
//! }
//!
//! struct Hello;
//!
//! impl Module for Hello {
//!     type Args = Args;
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const SUMMARY: &'static str = "Says hello.";
//!     const SUPPORTS_CHECK_MODE: bool = true;
//!
//!     fn run(args: Args, _ctx: &Context) -> Result<Response, Error> {
//!         Ok(Response::ok(format!("{}, world", args.greeting)))
//!     }
//! }
//!
//! fn main() {
//!     ansible_module::main::<Hello>()
//! }
//! ```

pub mod args;
pub mod atomic;
mod error;
mod response;
pub mod secrets;
pub mod signals;
pub mod spec;
pub mod time;
pub mod types;

pub use args::Context;
pub use error::Error;
pub use response::{mask_no_log, Response};
pub use signals::on_interrupt;

use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// A module: typed arguments in, one [`Response`] out.
pub trait Module {
    /// The module's parameters, usually a `#[serde(deny_unknown_fields)]` struct. Its field
    /// names are the parameter names (read through serde, no list to keep).
    type Args: serde::de::DeserializeOwned;
    /// The module's name, as a task calls it.
    const NAME: &'static str;
    /// The module's version, printed by `--version`.
    const VERSION: &'static str;
    /// One line saying what the module does, printed by `--help`.
    const SUMMARY: &'static str;
    /// Whether the module can run in check mode (changing nothing). When false, the contract
    /// answers a check-mode run with `skipped`, as Ansible does for Python modules.
    const SUPPORTS_CHECK_MODE: bool;
    /// Parameter names whose values are secret: masked in `invocation.module_args` wherever they
    /// occur, and their string values scrubbed from every string of the result and artifacts.
    const NO_LOG: &'static [&'static str] = &[];

    /// The parameters as Ansible's argument spec, printed by `MODULE --parameters`. By default
    /// only the names; a module whose `Args` derives `schemars::JsonSchema` returns
    /// `ansible_module::spec::argument_spec::<Self::Args>()` for types, defaults and
    /// suboptions.
    fn argument_spec() -> serde_json::Map<String, Value> {
        spec::names_only::<Self::Args>()
    }

    /// Does the work. Check mode and the other task settings are in `ctx`; an `Err` becomes a
    /// failed result whose `msg` is the error.
    fn run(args: Self::Args, ctx: &Context) -> Result<Response, Error>;
}

static PRINTED: AtomicBool = AtomicBool::new(false);

/// `invocation.module_args` of the running module, kept for the signal and panic paths.
static INVOCATION: OnceLock<Value> = OnceLock::new();

/// The longest string `invocation` echoes, in characters.
pub const MAX_ECHOED_STRING: usize = 1024;
/// The most list items `invocation` echoes per list.
pub const MAX_ECHOED_ITEMS: usize = 100;

/// The whole life of a module process: parses argv, runs the module, prints one JSON object and
/// exits (1 when the result is failed). Never returns.
pub fn main<M: Module>() -> ! {
    let started = std::time::Instant::now();
    install_panic_hook();
    signals::install(started);
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match argv.get(1).and_then(|a| a.to_str()) {
        Some("--help" | "-h") => {
            print_plain(&help_text::<M>());
            std::process::exit(0);
        }
        Some("--version" | "-V") => {
            print_plain(&format!("{} {}\n", M::NAME, M::VERSION));
            std::process::exit(0);
        }
        Some("--parameters") => {
            let spec = Value::Object(M::argument_spec());
            print_plain(&format!("{spec:#}\n"));
            std::process::exit(0);
        }
        _ => {}
    }
    let mut response = match argv.get(1) {
        None => Response::failed(format!(
            "no arguments file given; usage: {} ARGS_FILE (a JSON object of parameters), \
             --parameters, or --help",
            M::NAME
        )),
        Some(path) => run_file::<M>(std::path::Path::new(path)),
    };
    finish(&mut response);
    emit(&response)
}

/// Reads and parses an args file, then runs the module. Separate from [`main`] so tests can
/// drive a module without a process.
pub fn run_file<M: Module>(path: &std::path::Path) -> Response {
    let raw = match args::read_args_file(path) {
        Ok(raw) => raw,
        Err(err) => return Response::failed(err.to_string()),
    };
    run_value::<M>(raw)
}

/// Parses an already-read JSON value as the module's arguments, then runs the module.
pub fn run_value<M: Module>(raw: Value) -> Response {
    let (ctx, params) = match args::split_context(raw) {
        Ok(split) => split,
        Err(err) => return Response::failed(err.to_string()),
    };
    let params = Value::Object(params);
    secrets::register_no_log_values(&params, M::NO_LOG);
    let invocation = cap_echo(&mask_no_log(&params, M::NO_LOG));
    let _ = INVOCATION.set(invocation.clone());
    let Value::Object(params) = params else {
        return Response::failed("internal error: the parameters are not an object");
    };
    let mut response = if ctx.check_mode && !M::SUPPORTS_CHECK_MODE {
        let mut skipped = Response::ok(format!(
            "remote module ({}) does not support check mode",
            M::NAME
        ));
        skipped.insert("skipped", true);
        skipped
    } else {
        let names = spec::field_names::<M::Args>();
        match args::parse_params::<M::Args>(params, &names) {
            Ok(typed) => {
                M::run(typed, &ctx).unwrap_or_else(|err| Response::failed(err.to_string()))
            }
            Err(err) => Response::failed(err.to_string()),
        }
    };
    response.set_invocation(invocation);
    response.scrub();
    response
}

/// Adds what every printed result carries (the invocation, when the module got that far) and
/// masks it.
pub fn finish(response: &mut Response) {
    if response.get("invocation").is_none() {
        if let Some(invocation) = INVOCATION.get() {
            response.set_invocation(invocation.clone());
        }
    }
    response.scrub();
}

/// A copy of `value` cut to what a result should echo: long strings and lists are shortened,
/// with a note saying how much was left out.
pub fn cap_echo(value: &Value) -> Value {
    match value {
        Value::String(text) => match text.char_indices().nth(MAX_ECHOED_STRING) {
            Some((cut, _)) => Value::String(format!(
                "{}... ({} characters not shown)",
                &text[..cut],
                text.chars().count() - MAX_ECHOED_STRING
            )),
            None => value.clone(),
        },
        Value::Array(items) => {
            let mut kept: Vec<Value> = items.iter().take(MAX_ECHOED_ITEMS).map(cap_echo).collect();
            if items.len() > MAX_ECHOED_ITEMS {
                kept.push(Value::String(format!(
                    "... ({} more items not shown)",
                    items.len() - MAX_ECHOED_ITEMS
                )));
            }
            Value::Array(kept)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), cap_echo(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Prints the response as the process's one JSON object and exits.
pub fn emit(response: &Response) -> ! {
    let code = i32::from(response.is_failed());
    if !PRINTED.swap(true, Ordering::SeqCst) {
        let mut value = response.to_value();
        secrets::mask_value(&mut value);
        let mut out = std::io::stdout().lock();
        // Nothing sensible is left to do when stdout itself is gone.
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }
    std::process::exit(code)
}

fn print_plain(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn help_text<M: Module>() -> String {
    format!(
        "{name} {version} - {summary}\n\n\
         An Ansible binary module. Ansible runs it as `{name} ARGS_FILE`; you can too:\n\n    \
         echo '{{\"...\": \"...\"}}' > args.json && {name} args.json\n\n\
         It prints one JSON object and exits 1 when the result is failed.\n\
         Parameters: {params}\n\
         `{name} --parameters` prints them with types and defaults as JSON;\n\
         `ansible-doc -M DIR {name}` shows the full reference, DIR being the directory that\n\
         holds {name} and its {name}.yml.\n",
        name = M::NAME,
        version = M::VERSION,
        summary = M::SUMMARY,
        params = spec::field_names::<M::Args>().join(", "),
    )
}

/// Turns a panic anywhere (any thread) into the one JSON object Ansible expects, after removing
/// the atomic writer's temp files. The hook runs before unwinding or aborting and exits the
/// process itself, so it behaves the same with `panic = "abort"` (the release profile): no
/// destructor runs on either path, hence the explicit clean-up.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        atomic::remove_temp_files_on_panic();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut response = Response::failed(format!("internal error: {payload}{location}"));
        finish(&mut response);
        emit(&response);
    }));
}
