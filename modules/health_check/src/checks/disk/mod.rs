//! `disk`: space and inode headroom of the filesystem holding a path, through statvfs.

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::disk::Usage;
use host_probe::ProbeError;
use params::DiskParams;
use std::time::SystemTime;

/// The disk check; it shares nothing between entries.
#[derive(Debug, Clone, Copy)]
pub struct Disk;

impl Check for Disk {
    const KIND: Kind = Kind::Disk;
    type Params = DiskParams;
    type Observation = Usage;

    fn expected(spec: &DiskParams) -> String {
        let mut parts = vec![
            format!("used <= {}", spec.max_used_percent),
            format!("inodes used <= {}", spec.max_inodes_used_percent),
        ];
        if let Some(min_free) = spec.min_free {
            parts.push(format!("free >= {min_free}"));
        }
        parts.join(", ")
    }

    async fn observe(&self, spec: &DiskParams) -> Result<Usage, ProbeError> {
        Ok(host_probe::disk::usage_blocking(spec.path.clone().into()).await?)
    }

    fn judge(spec: &DiskParams, usage: &Usage, _now: SystemTime) -> Verdict {
        judge::judge(spec, usage)
    }
}
