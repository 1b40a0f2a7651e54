//! Restart loops across the attempts of one run: what a unit or container looked like when the
//! run first read it, so that a later attempt can tell that it restarted in between.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The first reading of one unit or container in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FirstSeen {
    pub restarts: u64,
    /// CLOCK_REALTIME microseconds of that reading.
    pub read_at_usec: u64,
}

/// First readings by `kind:name`, for the whole run. The checks are planned afresh for each
/// attempt of a `wait_timeout` run, and one run is one process, so the process keeps them.
static HISTORY: OnceLock<Mutex<HashMap<String, FirstSeen>>> = OnceLock::new();

/// The run's first reading of `key`, recording `now` as the first one if there was none.
pub fn first_seen(key: &str, now: FirstSeen) -> FirstSeen {
    match HISTORY.get_or_init(Mutex::default).lock() {
        Ok(mut seen) => *seen.entry(key.to_string()).or_insert(now),
        // A poisoned lock only means another check panicked: judge this reading alone.
        Err(_) => now,
    }
}

ansible_module::keyword_enum! {
    /// What a restart loop does to the check: `fail` (the default), `warn`, or `ignore`.
    pub enum FlapPolicy("flapping") {
        #[default]
        Fail => "fail",
        Warn => "warn",
        Ignore => "ignore",
    }
}

/// The default `flap_window`: a unit or container that restarted by itself and has been up
/// for less than this is in a restart loop.
pub const DEFAULT_FLAP_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a unit or container is flapping, or `None`.
///
/// - its restart count rose during the run's observation (between the first reading and this
///   one): "restarted 6 times in 5s, up 3ms";
/// - or it restarted by itself (count > 0) and has been up for less than `window` at the
///   instant it was read, or is not up at all: "restarted 138 times, up 3ms (less than
///   flap_window 10s)".
///
/// A unit that restarted once long ago and has been up since is not flapping.
pub fn flapping(
    restarts: u64,
    up: Option<std::time::Duration>,
    first: FirstSeen,
    read_at_usec: u64,
    window: std::time::Duration,
) -> Option<String> {
    let up_text = up.map_or_else(|| "not up".to_string(), |up| format!("up {}", readable(up)));
    let rose = restarts.saturating_sub(first.restarts);
    if rose > 0 {
        let over =
            std::time::Duration::from_micros(read_at_usec.saturating_sub(first.read_at_usec));
        return Some(format!(
            "restarted {rose} time{} in {}, {up_text}",
            if rose == 1 { "" } else { "s" },
            readable(over)
        ));
    }
    let times = if restarts == 1 { "time" } else { "times" };
    match up {
        _ if restarts == 0 => None,
        None => Some(format!("restarted {restarts} {times}, not up")),
        Some(up) if up < window => Some(format!(
            "restarted {restarts} {times}, {up_text} (less than flap_window {})",
            ansible_module::types::Duration(window)
        )),
        Some(_) => None,
    }
}

/// Whole seconds from ten seconds up, milliseconds below; nobody reads "3h2m1.532s".
pub fn readable(duration: std::time::Duration) -> ansible_module::types::Duration {
    if duration.as_secs() >= 10 {
        ansible_module::types::Duration::from_secs(duration.as_secs())
    } else {
        ansible_module::types::Duration(std::time::Duration::from_millis(
            duration.as_millis() as u64
        ))
    }
}
