//! The disk rules: used space, free space and inodes against the entry's limits.

use super::params::DiskParams;
use crate::checks::{percent, round2};
use crate::verdict::{Status, Verdict};
use ansible_module::types::ByteSize;
use host_probe::disk::Usage;

/// Compares one filesystem's usage with the check's limits.
pub fn judge(spec: &DiskParams, usage: &Usage) -> Verdict {
    let mut problems = Vec::new();
    if usage.used_percent > spec.max_used_percent.0 {
        problems.push(format!(
            "used {} > {}",
            percent(usage.used_percent),
            spec.max_used_percent
        ));
    }
    if let Some(min_free) = spec.min_free {
        if usage.available_bytes < min_free.0 {
            problems.push(format!(
                "free {} < {min_free}",
                ByteSize(usage.available_bytes)
            ));
        }
    }
    if let Some(inodes) = usage.inodes_used_percent {
        if inodes > spec.max_inodes_used_percent.0 {
            problems.push(format!(
                "inodes used {} > {}",
                percent(inodes),
                spec.max_inodes_used_percent
            ));
        }
    }
    let observed = format!(
        "used {} ({} free of {}), inodes used {}",
        percent(usage.used_percent),
        ByteSize(usage.available_bytes),
        ByteSize(usage.size_bytes),
        usage
            .inodes_used_percent
            .map_or_else(|| "n/a".to_string(), percent),
    );
    let (status, message) = if problems.is_empty() {
        (Status::Pass, format!("{} within limits", spec.path))
    } else {
        (
            Status::Fail,
            format!("{}: {}", spec.path, problems.join(", ")),
        )
    };
    Verdict::new(status, observed, message)
        .detail("path", spec.path.clone())
        .detail("size_bytes", usage.size_bytes)
        .detail("available_bytes", usage.available_bytes)
        .detail("used_percent", round2(usage.used_percent))
        .detail("inodes_total", usage.inodes_total)
        .detail("inodes_free", usage.inodes_free)
        .detail("inodes_used_percent", usage.inodes_used_percent.map(round2))
}
