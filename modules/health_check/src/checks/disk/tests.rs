//! The disk rules and parameters, without a filesystem.

use super::judge::judge;
use super::params::DiskParams;
use super::Disk;
use crate::checks::Check;
use crate::verdict::Status;
use ansible_module::types::{Percent, StrOrMap};
use host_probe::disk::{DiskObservation, Mount, Usage};
use std::path::PathBuf;

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

/// `resolved` lies on the mount at `mount_point`.
fn mount(resolved: &str, mount_point: &str, fstype: &str, options: &str) -> Mount {
    Mount {
        resolved_path: PathBuf::from(resolved),
        mount_point: PathBuf::from(mount_point),
        fstype: fstype.into(),
        source: "/dev/sdb1".into(),
        root: PathBuf::from("/"),
        mount_options: options.split(',').map(str::to_string).collect(),
        super_options: vec!["rw".into()],
    }
}

fn seen(usage: Usage, mount: Mount) -> DiskObservation {
    DiskObservation {
        usage,
        mount: Ok(mount),
    }
}

fn healthy(resolved: &str, mount_point: &str, fstype: &str, options: &str) -> DiskObservation {
    seen(
        usage_of(50.0, 20 << 30, Some(10.0)),
        mount(resolved, mount_point, fstype, options),
    )
}

#[test]
fn each_limit_can_fail() {
    let s = spec(
        serde_json::json!({"path": "/data", "max_used_percent": 80, "min_free": "10GiB", "max_inodes_used_percent": 50}),
    );
    let on_data = mount("/data", "/data", "xfs", "rw");
    let judged = |usage| judge(&s, &seen(usage, on_data.clone()));
    assert_eq!(
        judged(usage_of(50.0, 20 << 30, Some(10.0))).status,
        Status::Pass
    );
    let out = judged(usage_of(85.0, 20 << 30, Some(10.0)));
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.message, "/data: used 85.0% > 80%");
    let out = judged(usage_of(50.0, 5 << 30, Some(10.0)));
    assert_eq!(out.message, "/data: free 5.0 GiB < 10.0 GiB");
    let out = judged(usage_of(50.0, 20 << 30, Some(60.0)));
    assert_eq!(out.message, "/data: inodes used 60.0% > 50%");
    // No inode figures (btrfs): not judged.
    assert_eq!(judged(usage_of(50.0, 20 << 30, None)).status, Status::Pass);
}

#[test]
fn shorthand_uses_defaults() {
    let s = spec(serde_json::json!("/"));
    assert_eq!(s.max_used_percent, Percent(90.0));
    assert_eq!(s.mount, None);
    assert_eq!(expected(&s), "used <= 90%, inodes used <= 90%");
}

#[test]
fn a_path_that_must_be_a_mount_point_fails_when_it_lies_on_another_filesystem() {
    let s = spec(serde_json::json!({"path": "/data", "mount": true}));
    assert_eq!(
        expected(&s),
        "used <= 90%, inodes used <= 90%, a mount point"
    );
    let out = judge(&s, &healthy("/data", "/", "ext4", "rw,relatime"));
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "'/data' is not a mount point: it lies on / (ext4)"
    );
    assert_eq!(out.details["is_mount_point"], false);
    assert_eq!(out.details["mount_point"], "/");
    let out = judge(&s, &healthy("/data", "/data", "xfs", "rw"));
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(out.message, "/data within limits");
    // A symlink to a mount point is judged by where it leads.
    let s = spec(serde_json::json!({"path": "/srv/link", "mount": "yes"}));
    assert_eq!(
        judge(&s, &healthy("/data", "/data", "xfs", "rw")).status,
        Status::Pass
    );
}

#[test]
fn the_filesystem_type_is_one_of_those_given() {
    let s = spec(serde_json::json!({"path": "/data", "fstype": "xfs"}));
    let out = judge(&s, &healthy("/data", "/data", "ext4", "rw"));
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "'/data' is ext4 (mounted on /data), expected xfs"
    );
    let s = spec(serde_json::json!({"path": "/data", "fstype": ["xfs", "btrfs"]}));
    assert_eq!(
        expected(&s),
        "used <= 90%, inodes used <= 90%, fstype xfs or btrfs"
    );
    let out = judge(&s, &healthy("/data/pg", "/data", "ext4", "rw"));
    assert_eq!(
        out.message,
        "'/data' is ext4 (mounted on /data), expected one of xfs, btrfs"
    );
    assert_eq!(
        judge(&s, &healthy("/data", "/data", "btrfs", "rw")).status,
        Status::Pass
    );
}

#[test]
fn every_option_given_must_be_in_force_and_read_only_is_named_as_such() {
    let s = spec(serde_json::json!({"path": "/data", "options": ["rw", "noexec"]}));
    assert_eq!(
        expected(&s),
        "used <= 90%, inodes used <= 90%, options rw,noexec"
    );
    let out = judge(&s, &healthy("/data", "/data", "xfs", "ro,noexec"));
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "'/data' is mounted read-only (ro), expected rw"
    );
    let out = judge(&s, &healthy("/data", "/data", "xfs", "rw,nosuid"));
    assert_eq!(
        out.message,
        "'/data' is mounted without noexec (in force: rw,nosuid), expected noexec"
    );
    assert_eq!(
        judge(&s, &healthy("/data", "/data", "xfs", "rw,noexec")).status,
        Status::Pass
    );
    // A filesystem that went read-only by itself (errors=remount-ro) is read-only too.
    let mut errored = mount("/data", "/data", "ext4", "rw");
    errored.super_options = vec!["ro".into(), "errors=remount-ro".into()];
    let out = judge(&s, &seen(usage_of(1.0, 1 << 30, None), errored));
    assert!(
        out.message.contains("mounted read-only (ro), expected rw"),
        "{out:?}"
    );
    // A comma-separated string is a list, as in Ansible.
    let s = spec(serde_json::json!({"path": "/data", "options": "ro, nodev"}));
    let out = judge(&s, &healthy("/data", "/data", "xfs", "rw,nodev"));
    assert_eq!(
        out.message,
        "'/data' is mounted read-write (rw), expected ro"
    );
}

#[test]
fn every_problem_is_named_in_one_message() {
    let s = spec(
        serde_json::json!({"path": "/data", "mount": true, "fstype": "xfs", "max_used_percent": 80}),
    );
    let out = judge(
        &s,
        &seen(
            usage_of(95.0, 1 << 30, None),
            mount("/data", "/", "ext4", "rw"),
        ),
    );
    assert_eq!(
        out.message,
        "'/data' is not a mount point: it lies on / (ext4); '/data' is ext4 (mounted on /), \
         expected xfs; /data: used 95.0% > 80%"
    );
}

#[test]
fn a_path_on_the_root_filesystem_passes_with_a_warning_unless_mount_is_set() {
    let unset = spec(serde_json::json!("/var/lib/app"));
    let out = judge(&unset, &healthy("/var/lib/app", "/", "ext4", "rw"));
    assert_eq!(out.status, Status::Pass);
    assert_eq!(
        out.message,
        "/var/lib/app within limits (measured on / (ext4): not a mount point)"
    );
    assert_eq!(
        out.details["warning"],
        "'/var/lib/app' is not a mount point: it is measured on / (ext4); set mount: true to \
         require a filesystem of its own, or mount: false to accept the root filesystem"
    );
    // Accepted on purpose: no warning.
    let accepted = spec(serde_json::json!({"path": "/var/lib/app", "mount": false}));
    let out = judge(&accepted, &healthy("/var/lib/app", "/", "ext4", "rw"));
    assert_eq!(out.message, "/var/lib/app within limits");
    assert!(!out.details.contains_key("warning"));
    // `/` itself, and a path on a filesystem of its own below a mount point, are what they seem.
    let root = spec(serde_json::json!("/"));
    assert!(!judge(&root, &healthy("/", "/", "ext4", "rw"))
        .details
        .contains_key("warning"));
    let below = spec(serde_json::json!("/data/pg"));
    assert!(!judge(&below, &healthy("/data/pg", "/data", "xfs", "rw"))
        .details
        .contains_key("warning"));
}

#[test]
fn an_unknown_mount_fails_only_the_checks_that_ask_about_it() {
    let unknown = DiskObservation {
        usage: usage_of(50.0, 20 << 30, None),
        mount: Err("cannot read /proc/self/mountinfo: No such file or directory".into()),
    };
    let plain = spec(serde_json::json!("/data"));
    let out = judge(&plain, &unknown);
    assert_eq!(out.status, Status::Pass);
    assert_eq!(
        out.details["mount_error"],
        "cannot read /proc/self/mountinfo: No such file or directory"
    );
    let asking = spec(serde_json::json!({"path": "/data", "options": "rw"}));
    let out = judge(&asking, &unknown);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.message,
        "cannot tell which mount holds '/data': cannot read /proc/self/mountinfo: No such file or \
         directory"
    );
}

#[test]
fn an_empty_or_mistyped_mount_requirement_is_refused_by_name() {
    let refused = |entry: serde_json::Value| {
        let serde_json::Value::Object(params) = serde_json::json!({"disks": [entry]}) else {
            unreachable!()
        };
        ansible_module::args::parse_params::<crate::args::Args>(params, crate::args::PARAMETERS)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused(serde_json::json!({"path": "/d", "fstype": []})),
        "parameter 'disks[0].fstype': expected a name or a list of names, without empty entries"
    );
    assert_eq!(
        refused(serde_json::json!({"path": "/d", "options": ["rw", " "]})),
        "parameter 'disks[0].options': expected a name or a list of names, without empty \
         entries"
    );
    assert!(refused(serde_json::json!({"path": "/d", "mount": "maybe"}))
        .starts_with("parameter 'disks[0].mount': expected a boolean"));
    assert!(
        refused(serde_json::json!({"path": "/d", "fstype": {"a": 1}}))
            .starts_with("parameter 'disks[0].fstype': invalid type: map")
    );
}
