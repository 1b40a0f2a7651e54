//! `disk`: space and inode headroom of the filesystem holding a path (statvfs), and the mount
//! that holds it (/proc/self/mountinfo): a mount point of its own, its type and its options.
//! A path that may lie on a filesystem that never answers is measured in a probe process the
//! module can leave behind ([`probe`]), so that a hung mount cannot keep the module from exiting.

pub mod judge;
pub mod params;
pub mod probe;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::disk::DiskObservation;
use host_probe::ProbeError;
use params::DiskParams;
use std::path::Path;
use std::time::SystemTime;

/// The disk check; its entries share the run's [`probe::shared`] prober.
#[derive(Debug, Clone, Copy)]
pub struct Disk;

impl Check for Disk {
    const KIND: Kind = Kind::Disk;
    type Params = DiskParams;
    type Observation = DiskObservation;

    fn expected(spec: &DiskParams) -> String {
        let mut parts = vec![
            format!("used <= {}", spec.max_used_percent),
            format!("inodes used <= {}", spec.max_inodes_used_percent),
        ];
        if let Some(min_free) = spec.min_free {
            parts.push(format!("free >= {min_free}"));
        }
        if spec.mount == Some(true) {
            parts.push("a mount point".to_string());
        }
        if let Some(fstypes) = &spec.fstype {
            let wanted: Vec<&str> = fstypes.iter().map(String::as_str).collect();
            parts.push(format!("fstype {}", wanted.join(" or ")));
        }
        if let Some(options) = &spec.options {
            let wanted: Vec<&str> = options.iter().map(String::as_str).collect();
            parts.push(format!("options {}", wanted.join(",")));
        }
        parts.join(", ")
    }

    async fn observe(&self, spec: &DiskParams) -> Result<DiskObservation, ProbeError> {
        Ok(probe::shared().observe(Path::new(&spec.path)).await?)
    }

    fn judge(spec: &DiskParams, seen: &DiskObservation, _now: SystemTime) -> Verdict {
        judge::judge(spec, seen)
    }
}
