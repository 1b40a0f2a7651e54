//! The memory rule on a fixed /proc/meminfo.

use super::judge::judge;
use super::params::MemoryParams;
use crate::verdict::Status;
use host_probe::memory::parse_meminfo;

const MEMINFO: &str = "MemTotal:        1000000 kB\nMemFree:          100000 kB\n\
        MemAvailable:     250000 kB\nBuffers:           1000 kB\nSwapTotal:             0 kB\n";

#[test]
fn parses_and_judges() {
    let info = parse_meminfo(MEMINFO).unwrap();
    assert_eq!(info.total_bytes, 1_024_000_000);
    assert_eq!(info.available_bytes, 256_000_000);
    let spec: MemoryParams =
        serde_json::from_value(serde_json::json!({"max_used_percent": 70})).unwrap();
    let out = judge(&spec, &info);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.message, "memory used 75.0% > 70%");
    let spec: MemoryParams = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(judge(&spec, &info).status, Status::Pass);
    assert!(parse_meminfo("garbage").is_none());
}
