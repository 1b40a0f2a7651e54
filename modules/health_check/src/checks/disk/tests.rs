//! The disk rules and parameters, without a filesystem.

use super::judge::judge;
use super::params::DiskParams;
use super::Disk;
use crate::checks::Check;
use crate::verdict::Status;
use ansible_module::types::{Percent, StrOrMap};
use host_probe::disk::Usage;

fn expected(spec: &DiskParams) -> String {
    Disk::expected(spec)
}

fn spec(json: serde_json::Value) -> DiskParams {
    serde_json::from_value::<StrOrMap<DiskParams>>(json)
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
