//! The disk rules: used space, free space and inodes against the entry's limits, and the mount
//! that holds the path against `mount`, `fstype` and `options`.

use super::params::DiskParams;
use crate::checks::{percent, round2};
use crate::verdict::{Status, Verdict};
use ansible_module::types::ByteSize;
use host_probe::disk::{DiskObservation, Mount, Usage};
use std::path::Path;

/// Compares one filesystem's usage and mount with the check's requirements.
pub fn judge(spec: &DiskParams, seen: &DiskObservation) -> Verdict {
    let usage = &seen.usage;
    let mut problems = mount_problems(spec, &seen.mount);
    let usage_problems = usage_problems(spec, usage);
    if !usage_problems.is_empty() {
        problems.push(format!("{}: {}", spec.path, usage_problems.join(", ")));
    }
    let mut observed = format!(
        "used {} ({} free of {}), inodes used {}",
        percent(usage.used_percent),
        ByteSize(usage.available_bytes),
        ByteSize(usage.size_bytes),
        usage
            .inodes_used_percent
            .map_or_else(|| "n/a".to_string(), percent),
    );
    if let Ok(mount) = &seen.mount {
        observed.push_str(&format!(
            ", {} on {} ({})",
            mount.fstype,
            mount.mount_point.display(),
            options_in_force(mount)
        ));
    }
    let warning = root_filesystem_warning(spec, &seen.mount);
    let (status, message) = if !problems.is_empty() {
        (Status::Fail, problems.join("; "))
    } else if let (Some(_), Ok(mount)) = (&warning, &seen.mount) {
        (
            Status::Pass,
            format!(
                "{} within limits (measured on {} ({}): not a mount point)",
                spec.path,
                mount.mount_point.display(),
                mount.fstype
            ),
        )
    } else {
        (Status::Pass, format!("{} within limits", spec.path))
    };
    let mut verdict = Verdict::new(status, observed, message)
        .detail("path", spec.path.clone())
        .detail("size_bytes", usage.size_bytes)
        .detail("available_bytes", usage.available_bytes)
        .detail("used_percent", round2(usage.used_percent))
        .detail("inodes_total", usage.inodes_total)
        .detail("inodes_free", usage.inodes_free)
        .detail("inodes_used_percent", usage.inodes_used_percent.map(round2));
    verdict = match &seen.mount {
        Ok(mount) => verdict
            .detail("mount_point", display(&mount.mount_point))
            .detail("is_mount_point", mount.is_mount_point())
            .detail("fstype", mount.fstype.clone())
            .detail("mount_source", mount.source.clone())
            .detail("mount_options", mount.mount_options.clone())
            .detail("filesystem_options", mount.super_options.clone()),
        Err(reason) => verdict.detail("mount_error", reason.clone()),
    };
    if let Some(warning) = warning {
        verdict = verdict.detail("warning", warning);
    }
    verdict
}

fn usage_problems(spec: &DiskParams, usage: &Usage) -> Vec<String> {
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
    problems
}

/// What is wrong with the mount, one sentence each, naming the path, what was expected and what
/// is there.
fn mount_problems(spec: &DiskParams, mount: &Result<Mount, String>) -> Vec<String> {
    let path = &spec.path;
    let mount = match mount {
        Ok(mount) => mount,
        Err(reason) => {
            let asked = spec.mount == Some(true) || spec.fstype.is_some() || spec.options.is_some();
            return if asked {
                vec![format!("cannot tell which mount holds '{path}': {reason}")]
            } else {
                Vec::new()
            };
        }
    };
    let mut problems = Vec::new();
    if spec.mount == Some(true) && !mount.is_mount_point() {
        problems.push(format!(
            "'{path}' is not a mount point: it lies on {} ({})",
            mount.mount_point.display(),
            mount.fstype
        ));
    }
    if let Some(fstypes) = &spec.fstype {
        if !fstypes.iter().any(|wanted| *wanted == mount.fstype) {
            let wanted: Vec<&str> = fstypes.iter().map(String::as_str).collect();
            let expected = match wanted.as_slice() {
                [one] => (*one).to_string(),
                many => format!("one of {}", many.join(", ")),
            };
            problems.push(format!(
                "'{path}' is {} (mounted on {}), expected {expected}",
                mount.fstype,
                mount.mount_point.display()
            ));
        }
    }
    for option in spec.options.iter().flatten() {
        if mount.has_option(option) {
            continue;
        }
        problems.push(match option.as_str() {
            "rw" => format!("'{path}' is mounted read-only (ro), expected rw"),
            "ro" => format!("'{path}' is mounted read-write (rw), expected ro"),
            _ => format!(
                "'{path}' is mounted without {option} (in force: {}), expected {option}",
                options_in_force(mount)
            ),
        });
    }
    problems
}

/// The warning for a path other than `/` that lies on the root filesystem when `mount` is unset:
/// a data disk that failed to mount leaves its mount point as an empty directory on `/`, and the
/// check would measure `/` in its place.
fn root_filesystem_warning(spec: &DiskParams, mount: &Result<Mount, String>) -> Option<String> {
    let mount = mount.as_ref().ok()?;
    let on_root = mount.mount_point == Path::new("/") && mount.resolved_path != Path::new("/");
    (spec.mount.is_none() && on_root).then(|| {
        format!(
            "'{}' is not a mount point: it is measured on / ({}); set mount: true to require a \
             filesystem of its own, or mount: false to accept the root filesystem",
            spec.path, mount.fstype
        )
    })
}

/// The options of the mount and of its filesystem, without repeats, as `mount` lists them.
fn options_in_force(mount: &Mount) -> String {
    let mut all: Vec<&str> = Vec::new();
    for option in mount.mount_options.iter().chain(&mount.super_options) {
        if !all.contains(&option.as_str()) {
            all.push(option);
        }
    }
    all.join(",")
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
