//! Disk space and inode usage of a mounted filesystem, as `df` computes them.

use crate::args::DiskCheck;
use crate::check::{CheckMeta, Outcome, Planned, Status};
use crate::checks::{percent, round2};
use ansible_module::types::ByteSize;
use std::path::PathBuf;

/// The figures `statvfs` gives for one filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub size_bytes: u64,
    /// Free to unprivileged users, as `df`'s "Avail".
    pub available_bytes: u64,
    pub used_percent: f64,
    pub inodes_total: u64,
    pub inodes_free: u64,
    /// `None` where the filesystem reports no inode limit (btrfs, some network filesystems).
    pub inodes_used_percent: Option<f64>,
}

pub fn plan(spec: DiskCheck, meta: CheckMeta) -> Planned {
    let path = PathBuf::from(&spec.path);
    let work = async move {
        // statvfs on a hung network mount blocks; on a blocking thread the timeout still fires.
        match tokio::task::spawn_blocking(move || usage(&path)).await {
            Ok(Ok(usage)) => judge(&spec, &usage),
            Ok(Err(err)) => {
                Outcome::fail("unreadable", format!("statvfs {} failed: {err}", spec.path))
            }
            Err(err) => Outcome::fail("unreadable", format!("statvfs {} failed: {err}", spec.path)),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
    }
}

pub fn expected(spec: &DiskCheck) -> String {
    let mut parts = vec![
        format!("used <= {}", spec.max_used_percent),
        format!("inodes used <= {}", spec.max_inodes_used_percent),
    ];
    if let Some(min_free) = spec.min_free {
        parts.push(format!("free >= {min_free}"));
    }
    parts.join(", ")
}

// statvfs's field types differ between targets (u32 on some 32-bit ones).
#[allow(clippy::useless_conversion)]
pub fn usage(path: &std::path::Path) -> Result<Usage, nix::Error> {
    let stat = nix::sys::statvfs::statvfs(path)?;
    let fragment = u64::from(stat.fragment_size());
    let blocks = u64::from(stat.blocks());
    let free = u64::from(stat.blocks_free());
    let available = u64::from(stat.blocks_available());
    let used = blocks.saturating_sub(free);
    // df's formula: used / (used + available), so the root-reserved blocks count as used.
    let used_percent = ratio(used, used + available);
    let inodes_total = u64::from(stat.files());
    let inodes_free = u64::from(stat.files_free());
    Ok(Usage {
        size_bytes: blocks.saturating_mul(fragment),
        available_bytes: available.saturating_mul(fragment),
        used_percent,
        inodes_total,
        inodes_free,
        inodes_used_percent: (inodes_total > 0)
            .then(|| ratio(inodes_total.saturating_sub(inodes_free), inodes_total)),
    })
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Compares one filesystem's usage with the check's limits.
pub fn judge(spec: &DiskCheck, usage: &Usage) -> Outcome {
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
    Outcome::new(status, observed, message)
        .detail("path", spec.path.clone())
        .detail("size_bytes", usage.size_bytes)
        .detail("available_bytes", usage.available_bytes)
        .detail("used_percent", round2(usage.used_percent))
        .detail("inodes_total", usage.inodes_total)
        .detail("inodes_free", usage.inodes_free)
        .detail("inodes_used_percent", usage.inodes_used_percent.map(round2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ansible_module::types::{Percent, StrOrMap};

    fn spec(json: serde_json::Value) -> DiskCheck {
        serde_json::from_value::<StrOrMap<DiskCheck>>(json)
            .unwrap()
            .0
    }

    fn usage_of(used_percent: f64, available: u64, inodes: Option<f64>) -> Usage {
        Usage {
            size_bytes: 100 << 30,
            available_bytes: available,
            used_percent,
            inodes_total: 1000,
            inodes_free: 500,
            inodes_used_percent: inodes,
        }
    }

    #[test]
    fn each_limit_can_fail() {
        let s = spec(
            serde_json::json!({"path": "/data", "max_used_percent": 80, "min_free": "10GiB", "max_inodes_used_percent": 50}),
        );
        assert_eq!(
            judge(&s, &usage_of(50.0, 20 << 30, Some(10.0))).status,
            Status::Pass
        );
        let out = judge(&s, &usage_of(85.0, 20 << 30, Some(10.0)));
        assert_eq!(out.status, Status::Fail);
        assert_eq!(out.message, "/data: used 85.0% > 80%");
        let out = judge(&s, &usage_of(50.0, 5 << 30, Some(10.0)));
        assert_eq!(out.message, "/data: free 5.0 GiB < 10.0 GiB");
        let out = judge(&s, &usage_of(50.0, 20 << 30, Some(60.0)));
        assert_eq!(out.message, "/data: inodes used 60.0% > 50%");
        // No inode figures (btrfs): not judged.
        assert_eq!(
            judge(&s, &usage_of(50.0, 20 << 30, None)).status,
            Status::Pass
        );
    }

    #[test]
    fn shorthand_uses_defaults() {
        let s = spec(serde_json::json!("/"));
        assert_eq!(s.max_used_percent, Percent(90.0));
        assert_eq!(expected(&s), "used <= 90%, inodes used <= 90%");
    }

    #[test]
    fn real_root_filesystem() {
        let u = usage(std::path::Path::new("/")).unwrap();
        assert!(u.size_bytes > 0);
        assert!((0.0..=100.0).contains(&u.used_percent));
        assert!(usage(std::path::Path::new("/no/such/path")).is_err());
    }
}
