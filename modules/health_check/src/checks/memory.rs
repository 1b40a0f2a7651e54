//! Memory in use, from /proc/meminfo: MemTotal - MemAvailable, the figure `free` shows as used.

use crate::args::MemoryCheck;
use crate::check::{CheckMeta, Outcome, Planned, Status};
use crate::checks::{percent, round2};
use ansible_module::types::ByteSize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

pub fn plan(spec: MemoryCheck, meta: CheckMeta) -> Planned {
    let work = async move {
        match std::fs::read_to_string("/proc/meminfo") {
            Ok(text) => match parse_meminfo(&text) {
                Some(info) => judge(&spec, &info),
                None => Outcome::fail("unreadable", "/proc/meminfo has no MemTotal"),
            },
            Err(err) => Outcome::fail("unreadable", format!("cannot read /proc/meminfo: {err}")),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
    }
}

pub fn expected(spec: &MemoryCheck) -> String {
    format!("used <= {}", spec.max_used_percent)
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

pub fn judge(spec: &MemoryCheck, info: &MemInfo) -> Outcome {
    let used = info.total_bytes.saturating_sub(info.available_bytes);
    let used_percent = if info.total_bytes == 0 {
        0.0
    } else {
        used as f64 * 100.0 / info.total_bytes as f64
    };
    let observed = format!(
        "used {} ({} available of {})",
        percent(used_percent),
        ByteSize(info.available_bytes),
        ByteSize(info.total_bytes)
    );
    let (status, message) = if used_percent > spec.max_used_percent.0 {
        (
            Status::Fail,
            format!(
                "memory used {} > {}",
                percent(used_percent),
                spec.max_used_percent
            ),
        )
    } else {
        (Status::Pass, "memory within limits".to_string())
    };
    Outcome::new(status, observed, message)
        .detail("total_bytes", info.total_bytes)
        .detail("available_bytes", info.available_bytes)
        .detail("used_percent", round2(used_percent))
        .detail("swap_total_bytes", info.swap_total_bytes)
        .detail("swap_free_bytes", info.swap_free_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        1000000 kB\nMemFree:          100000 kB\n\
        MemAvailable:     250000 kB\nBuffers:           1000 kB\nSwapTotal:             0 kB\n";

    #[test]
    fn parses_and_judges() {
        let info = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(info.total_bytes, 1_024_000_000);
        assert_eq!(info.available_bytes, 256_000_000);
        let spec: MemoryCheck =
            serde_json::from_value(serde_json::json!({"max_used_percent": 70})).unwrap();
        let out = judge(&spec, &info);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(out.message, "memory used 75.0% > 70%");
        let spec: MemoryCheck = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(judge(&spec, &info).status, Status::Pass);
        assert!(parse_meminfo("garbage").is_none());
    }

    #[test]
    fn reads_this_host() {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        assert!(parse_meminfo(&text).unwrap().total_bytes > 0);
    }
}
