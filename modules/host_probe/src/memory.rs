//! Memory in use, from /proc/meminfo: MemTotal - MemAvailable is the figure `free` shows as
//! used. [`ProcError`] is shared with [`crate::load`]: both read small /proc files.

use serde::{Deserialize, Serialize};

/// What /proc/meminfo says, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

/// Why a /proc file could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unexpected(String),
}

/// Reads /proc/meminfo.
pub fn read() -> Result<MemInfo, ProcError> {
    const PATH: &str = "/proc/meminfo";
    let text =
        std::fs::read_to_string(PATH).map_err(|source| ProcError::Read { path: PATH, source })?;
    parse_meminfo(&text)
        .ok_or_else(|| ProcError::Unexpected("/proc/meminfo has no MemTotal".into()))
}

/// Parses the fields we need; `None` when MemTotal is missing.
pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kib.saturating_mul(1024))
        })
    };
    let total_bytes = field("MemTotal")?;
    // Kernels before 3.14 have no MemAvailable; this is its usual approximation.
    let available_bytes = field("MemAvailable").unwrap_or_else(|| {
        field("MemFree").unwrap_or(0) + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0)
    });
    Some(MemInfo {
        total_bytes,
        available_bytes,
        swap_total_bytes: field("SwapTotal").unwrap_or(0),
        swap_free_bytes: field("SwapFree").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        1000000 kB\nMemFree:          100000 kB\n\
        MemAvailable:     250000 kB\nBuffers:           1000 kB\nSwapTotal:             0 kB\n";

    #[test]
    fn meminfo_is_parsed_in_bytes() {
        let info = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(info.total_bytes, 1_024_000_000);
        assert_eq!(info.available_bytes, 256_000_000);
        assert!(parse_meminfo("garbage").is_none());
    }

    #[test]
    fn this_host_has_memory() {
        assert!(read().unwrap().total_bytes > 0);
    }
}
