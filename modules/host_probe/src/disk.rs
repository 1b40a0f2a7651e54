//! Space and inode usage of a mounted filesystem, as `df` computes them, through statvfs.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The figures `statvfs` gives for one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// Why a filesystem could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("statvfs {} failed: {source}", path.display())]
    Statvfs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// The blocking task that ran statvfs did not finish (the runtime shut down under it).
    #[error("statvfs {} failed: {reason}", path.display())]
    Task { path: PathBuf, reason: String },
}

/// Measures the filesystem holding `path`.
// statvfs's field types differ between targets (u32 on some 32-bit ones).
#[allow(clippy::useless_conversion)]
pub fn usage(path: &Path) -> Result<Usage, DiskError> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(|source| DiskError::Statvfs {
        path: path.to_path_buf(),
        source,
    })?;
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

/// [`usage`] on the blocking pool: statvfs on a hung network mount blocks, and on a blocking
/// thread the caller's timeout still fires.
pub async fn usage_blocking(path: PathBuf) -> Result<Usage, DiskError> {
    let for_error = path.clone();
    tokio::task::spawn_blocking(move || usage(&path))
        .await
        .unwrap_or_else(|err| {
            Err(DiskError::Task {
                path: for_error,
                reason: err.to_string(),
            })
        })
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_filesystem_is_measured_and_a_missing_path_is_an_error() {
        let u = usage(Path::new("/")).unwrap();
        assert!(u.size_bytes > 0);
        assert!((0.0..=100.0).contains(&u.used_percent));
        let err = usage(Path::new("/no/such/path")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "statvfs /no/such/path failed: ENOENT: No such file or directory"
        );
    }
}
