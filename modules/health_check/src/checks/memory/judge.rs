//! The memory rule: used memory against `max_used_percent`.

use super::params::MemoryParams;
use crate::checks::{percent, round2};
use crate::verdict::{Status, Verdict};
use ansible_module::types::ByteSize;
use host_probe::memory::MemInfo;

/// Compares used memory with the limit.
pub fn judge(spec: &MemoryParams, info: &MemInfo) -> Verdict {
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
    Verdict::new(status, observed, message)
        .detail("total_bytes", info.total_bytes)
        .detail("available_bytes", info.available_bytes)
        .detail("used_percent", round2(used_percent))
        .detail("swap_total_bytes", info.swap_total_bytes)
        .detail("swap_free_bytes", info.swap_free_bytes)
}
