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
//! * [`Response`] is printed once, with `invocation.module_args` masked for `no_log` parameters,
//!   and a panic anywhere still produces one JSON object;
//! * [`atomic`] writes artifacts with temp file, fsync and rename, so no reader ever sees a
//!   half-written file.
//!
//! ```no_run
//! use ansible_module::{Context, Module, Response};
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
//!     const PARAMETERS: &'static [&'static str] = &["greeting"];
//!
//!     fn run(args: Args, _ctx: &Context) -> Response {
//!         Response::ok(format!("{}, world", args.greeting))
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
pub mod time;
pub mod types;

pub use args::Context;
pub use error::Error;
pub use response::{mask_no_log, Response};

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// A module: typed arguments in, one [`Response`] out.
pub trait Module {
    /// The module's parameters, usually a `#[serde(deny_unknown_fields)]` struct.
    type Args: serde::de::DeserializeOwned;
    /// The module's name, as a task calls it.
    const NAME: &'static str;
    /// The module's version, printed by `--version`.
    const VERSION: &'static str;
    /// One line saying what the module does, printed by `--help`.
    const SUMMARY: &'static str;
    /// The top-level parameter names, for `--help` and the `unsupported parameter` message.
    const PARAMETERS: &'static [&'static str];
    /// Parameter names whose values are secret: masked in `invocation.module_args` wherever they
    /// occur, and their string values scrubbed from every string of the result.
    const NO_LOG: &'static [&'static str] = &[];

    /// Does the work. Check mode and the other task settings are in `ctx`.
    fn run(args: Self::Args, ctx: &Context) -> Response;
}

static PRINTED: AtomicBool = AtomicBool::new(false);

/// The whole life of a module process: parses argv, runs the module, prints one JSON object and
/// exits (1 when the result is failed). Never returns.
pub fn main<M: Module>() -> ! {
    install_panic_hook();
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
        _ => {}
    }
    let response = match argv.get(1) {
        None => Response::failed(format!(
            "no arguments file given; usage: {} ARGS_FILE (a JSON object of parameters), or --help",
            M::NAME
        )),
        Some(path) => run_file::<M>(std::path::Path::new(path)),
    };
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
pub fn run_value<M: Module>(raw: serde_json::Value) -> Response {
    let (ctx, params) = match args::split_context(raw) {
        Ok(split) => split,
        Err(err) => return Response::failed(err.to_string()),
    };
    let invocation = mask_no_log(&serde_json::Value::Object(params.clone()), M::NO_LOG);
    let mut secrets = Vec::new();
    response::collect_no_log_values(
        &serde_json::Value::Object(params.clone()),
        M::NO_LOG,
        &mut secrets,
    );
    let mut response = match args::parse_params::<M::Args>(params, M::PARAMETERS) {
        Ok(typed) => M::run(typed, &ctx),
        Err(err) => Response::failed(err.to_string()),
    };
    response.set_invocation(invocation);
    response.scrub(&secrets);
    response
}

/// Prints the response as the process's one JSON object and exits.
pub fn emit(response: &Response) -> ! {
    let code = i32::from(response.is_failed());
    if !PRINTED.swap(true, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        // Nothing sensible is left to do when stdout itself is gone.
        let _ = writeln!(out, "{}", response.to_json());
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
         Full reference: ansible-doc -M roles/ops/health_check/library {name}\n",
        name = M::NAME,
        version = M::VERSION,
        summary = M::SUMMARY,
        params = M::PARAMETERS.join(", "),
    )
}

/// Turns a panic anywhere (any thread) into the one JSON object Ansible expects. Works with
/// `panic = "abort"` too, since the hook runs before unwinding or aborting.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
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
        let response = Response::failed(format!("internal error: {payload}{location}"));
        emit(&response);
    }));
}
