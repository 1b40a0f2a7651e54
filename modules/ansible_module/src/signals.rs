//! SIGTERM, SIGINT and SIGHUP while a module runs (Ansible's task `timeout:` kills a module
//! with SIGTERM): the module still prints one JSON object, `failed`, saying which signal after
//! how long, with what the module's hook reports so far, and the atomic writer's temp files
//! are removed.

use crate::Response;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

type Hook = Box<dyn Fn() -> Response + Send + Sync>;

fn hook() -> &'static Mutex<Option<Hook>> {
    static HOOK: OnceLock<Mutex<Option<Hook>>> = OnceLock::new();
    HOOK.get_or_init(Mutex::default)
}

/// Registers what a module reports when a signal ends it: the results so far. The contract
/// sets `failed` and `msg` on it. A later call replaces the hook.
pub fn on_interrupt(report: impl Fn() -> Response + Send + Sync + 'static) {
    let mut slot = match hook().lock() {
        Ok(slot) => slot,
        Err(poisoned) => poisoned.into_inner(),
    };
    *slot = Some(Box::new(report));
}

/// The signal's name as a person reads it.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The result printed for `signal` after `elapsed`: the hook's report (or an empty one),
/// failed, with the interruption as `msg` (the report's own `msg` follows it).
pub fn interrupted(signal: i32, elapsed: std::time::Duration) -> Response {
    let report = match hook().try_lock() {
        Ok(slot) => slot.as_ref().map(|report| report()),
        // The hook is being replaced or ran into a panic: report without it.
        Err(_) => None,
    };
    let mut response = report.unwrap_or_else(|| Response::ok(""));
    let mut msg = format!(
        "interrupted by {} after {} s",
        signal_name(signal),
        elapsed.as_secs()
    );
    if !response.msg().is_empty() {
        msg.push_str(&format!("; {}", response.msg()));
    }
    response.set_failed(true).set_msg(msg);
    response
}

/// Starts the thread that waits for the signals. When one comes, the temp files are removed
/// and the result is printed (once) through [`crate::emit`], which exits.
pub fn install(started: Instant) {
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(signals) => signals,
        // Without the handler the default action (exit) stays: nothing better to do.
        Err(_) => return,
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                crate::atomic::remove_temp_files();
                let mut response = interrupted(signal, started.elapsed());
                crate::finish(&mut response);
                crate::emit(&response);
            }
        });
    drop(spawned);
}
