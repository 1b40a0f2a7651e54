//! Space and inode usage of a mounted filesystem, as `df` computes them, through statvfs; and the
//! mount that holds a path (its mount point, type and options), from `/proc/self/mountinfo`.
//!
//! A filesystem served over the network or by a userspace process (NFS, CIFS, sshfs and every
//! other FUSE filesystem, an automount point) can stop answering, and then statvfs, stat and every
//! path lookup through it block in the kernel, where no signal reaches them. [`reach`] tells,
//! without touching any such filesystem, whether measuring a path could block that way, so that a
//! caller can measure it in a process it is free to abandon:
//!
//! ```no_run
//! use host_probe::disk::{observe, reach, read_mountinfo, Reach};
//! use std::path::Path;
//!
//! let mounts = read_mountinfo();
//! let path = Path::new("/var/lib/postgresql");
//! match reach(path, mounts.as_deref().unwrap_or_default()) {
//!     Reach::Local(resolved) => {
//!         let resolved = resolved.ok_or_else(|| "the lookup stops early".to_string());
//!         println!("{:?}", observe(path, resolved, &mounts));
//!     }
//!     Reach::MayBlock { fstype } => println!("{fstype}: measure it in a child process"),
//! }
//! ```

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

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

/// An OS error number as statvfs reports it (re-exported: a caller that carries an error between
/// processes rebuilds it with `Errno::from_raw`).
pub use nix::errno::Errno;

/// The number of an OS error, for carrying it between processes.
pub fn errno_number(errno: Errno) -> i32 {
    errno as i32
}

/// Why a filesystem could not be measured.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The process that measured the path on the caller's behalf gave no answer.
    #[error("cannot measure {}: {reason}", path.display())]
    Isolated { path: PathBuf, reason: String },
    #[error("cannot read /proc/self/mountinfo: {reason}")]
    Mountinfo { reason: String },
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

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

pub use mountinfo::{mount_holding, parse_mountinfo, MountEntry};

/// Reads and parses this process's mount table.
pub fn read_mountinfo() -> Result<Vec<MountEntry>, DiskError> {
    mountinfo::read_mountinfo().map_err(|err| DiskError::Mountinfo {
        reason: crate::error::plain_io(&err),
    })
}

/// Filesystems that live in the kernel and on local devices: statvfs and lookups on them return
/// without waiting for a server. Anything else (NFS, CIFS, 9p, Ceph, every FUSE filesystem,
/// autofs, virtiofs, a type this list does not know) may block for ever.
pub fn is_local_fstype(fstype: &str) -> bool {
    matches!(
        fstype,
        "ext2"
            | "ext3"
            | "ext4"
            | "xfs"
            | "btrfs"
            | "bcachefs"
            | "zfs"
            | "f2fs"
            | "jfs"
            | "reiserfs"
            | "nilfs2"
            | "erofs"
            | "squashfs"
            | "iso9660"
            | "udf"
            | "vfat"
            | "msdos"
            | "exfat"
            | "ntfs3"
            | "hfsplus"
            | "ubifs"
            | "jffs2"
            | "cramfs"
            | "romfs"
            | "ecryptfs"
            | "overlay"
            | "rootfs"
            | "tmpfs"
            | "ramfs"
            | "devtmpfs"
            | "devpts"
            | "proc"
            | "sysfs"
            | "cgroup"
            | "cgroup2"
            | "mqueue"
            | "hugetlbfs"
            | "debugfs"
            | "tracefs"
            | "securityfs"
            | "pstore"
            | "efivarfs"
            | "bpf"
            | "configfs"
            | "fusectl"
            | "binfmt_misc"
            | "nsfs"
            | "rpc_pipefs"
            | "selinuxfs"
            | "nfsd"
    )
}

/// Whether measuring a path could block on a filesystem that does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every filesystem the lookup of the path touches is local, so statvfs cannot hang on it.
    /// The path as the kernel resolves it (absolute, symlinks followed), where the lookup
    /// completes; `None` where it stops early (a missing component, a symlink loop), as the
    /// kernel's own lookup will, at once.
    Local(Option<PathBuf>),
    /// The lookup enters a filesystem of this type, which may not answer.
    MayBlock { fstype: String },
}

/// Follows `path` as the kernel would (component by component, symlinks included) using only
/// `lstat` and `readlink` on local filesystems, and stops before the first step that would enter a
/// filesystem that may block (see [`is_local_fstype`]). A relative path starts at the current
/// directory.
pub fn reach(path: &Path, mounts: &[MountEntry]) -> Reach {
    // The kernel gives up after 40 symlinks (ELOOP); the walk follows the same links.
    const MAX_LINKS: usize = 40;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => return may_block("unknown (no current directory)"),
        }
    };
    let mut resolved = PathBuf::from("/");
    if let Some(blocking) = blocking_fstype(mounts, &resolved) {
        return may_block(&blocking);
    }
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &absolute);
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            // `resolved` has no symlinks, so its parent is the lexical one.
            resolved.pop();
            continue;
        }
        let next = resolved.join(&name);
        if let Some(blocking) = blocking_fstype(mounts, &next) {
            return may_block(&blocking);
        }
        match std::fs::symlink_metadata(&next) {
            // The kernel's lookup stops here too, with the same error.
            Err(_) => return Reach::Local(None),
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                let target = match std::fs::read_link(&next) {
                    Ok(target) if links <= MAX_LINKS => target,
                    _ => return Reach::Local(None),
                };
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => resolved = next,
        }
    }
    Reach::Local(Some(resolved))
}

fn may_block(fstype: &str) -> Reach {
    Reach::MayBlock {
        fstype: fstype.to_string(),
    }
}

/// Pushes a path's components so that its first one is popped first (`.` and `/` dropped).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for component in path.components() {
        match component {
            Component::Normal(name) => pending.push(name.to_os_string()),
            Component::ParentDir => pending.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending[start..].reverse();
}

/// The type of the filesystem holding `path` when it may block; `None` when it is local.
fn blocking_fstype(mounts: &[MountEntry], path: &Path) -> Option<String> {
    match mount_holding(mounts, path) {
        Some(entry) if is_local_fstype(&entry.fstype) => None,
        Some(entry) => Some(entry.fstype.clone()),
        None => Some("unknown (not in the mount table)".to_string()),
    }
}

/// The mount that holds a path, as a check reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The path as the kernel resolves it (symlinks followed).
    pub resolved_path: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// `/` unless this is a bind mount of a subdirectory.
    pub root: PathBuf,
    pub mount_options: Vec<String>,
    pub super_options: Vec<String>,
}

impl Mount {
    fn new(entry: &MountEntry, resolved_path: PathBuf) -> Self {
        Self {
            resolved_path,
            mount_point: entry.mount_point.clone(),
            fstype: entry.fstype.clone(),
            source: entry.source.clone(),
            root: entry.root.clone(),
            mount_options: entry.mount_options.clone(),
            super_options: entry.super_options.clone(),
        }
    }

    /// Whether the path is itself a mount point (bind mounts included), not a directory on the
    /// filesystem of one above it.
    pub fn is_mount_point(&self) -> bool {
        self.resolved_path == self.mount_point
    }

    /// Read-only when either the mount or the filesystem is (`mount -o remount,ro` sets the
    /// former, a filesystem that met errors the latter).
    pub fn read_only(&self) -> bool {
        self.mount_options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }

    /// Whether an option (`noexec`, `size=64k`) is in force, on the mount or the filesystem.
    /// `rw` and `ro` go by [`Self::read_only`].
    pub fn has_option(&self, option: &str) -> bool {
        match option {
            "ro" => self.read_only(),
            "rw" => !self.read_only(),
            _ => self
                .mount_options
                .iter()
                .chain(&self.super_options)
                .any(|o| o == option),
        }
    }
}

/// A measured path: its filesystem's usage and the mount that holds it (or why that mount is
/// not known; the usage is still judged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskObservation {
    pub usage: Usage,
    pub mount: Result<Mount, String>,
}

/// Measures `path` and finds its mount in `mounts`; `resolved` is the path as the kernel resolves
/// it (from [`reach`] or `canonicalize`), or why it is not known.
pub fn observe(
    path: &Path,
    resolved: Result<PathBuf, String>,
    mounts: &Result<Vec<MountEntry>, DiskError>,
) -> Result<DiskObservation, DiskError> {
    let usage = usage(path)?;
    let mount = resolved.and_then(|resolved| {
        let mounts = mounts.as_ref().map_err(ToString::to_string)?;
        mount_holding(mounts, &resolved)
            .map(|entry| Mount::new(entry, resolved.clone()))
            .ok_or_else(|| {
                format!(
                    "no mount in /proc/self/mountinfo holds {}",
                    resolved.display()
                )
            })
    });
    Ok(DiskObservation { usage, mount })
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

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 27 0:40 / /srv/my\\040data rw,nosuid,nodev,noexec shared:5 master:2 - tmpfs tmp\\040fs rw,size=64k
31 27 8:1 /srv/export /data ro,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
40 31 0:50 / /data rw - xfs /dev/sdb1 rw,attr2
41 27 0:60 / /mnt/remote rw,nosuid - fuse.sshfs user@host:/ rw,user_id=0
42 27 0:61 / /back\\134slash rw - nfs4 server:/export rw,vers=4.2
not a mountinfo line
";

    #[test]
    fn mountinfo_lines_are_parsed_with_escapes_undone_and_optional_fields_skipped() {
        let mounts = parse_mountinfo(SAMPLE);
        assert_eq!(mounts.len(), 7, "the malformed line is skipped");
        let spaced = &mounts[2];
        assert_eq!(spaced.mount_point, Path::new("/srv/my data"));
        assert_eq!(spaced.source, "tmp fs");
        assert_eq!(spaced.fstype, "tmpfs");
        assert_eq!(spaced.mount_options, ["rw", "nosuid", "nodev", "noexec"]);
        assert_eq!(spaced.super_options, ["rw", "size=64k"]);
        let bind = &mounts[3];
        assert_eq!(bind.root, Path::new("/srv/export"));
        assert_eq!(bind.parent_id, 27);
        assert_eq!(mounts[6].mount_point, Path::new("/back\\slash"));
        assert_eq!(mounts[5].fstype, "fuse.sshfs");
    }

    #[test]
    fn the_mount_holding_a_path_is_the_deepest_and_the_top_of_a_stack() {
        let mounts = parse_mountinfo(SAMPLE);
        let at = |path: &str| mount_holding(&mounts, Path::new(path)).map(|m| m.mount_id);
        assert_eq!(at("/"), Some(27));
        assert_eq!(at("/var/lib"), Some(27));
        assert_eq!(at("/srv/my data/x"), Some(30));
        // "/srv/my" is a prefix of the string, not of the path.
        assert_eq!(at("/srv/my"), Some(27));
        // xfs (40) was mounted over the bind mount (31) on /data.
        assert_eq!(at("/data"), Some(40));
        assert_eq!(at("/data/sub"), Some(40));
        assert_eq!(at("/proc/1"), Some(22));
    }

    #[test]
    fn a_mount_knows_whether_the_path_is_its_mount_point_and_its_options() {
        let mounts = parse_mountinfo(SAMPLE);
        let bind = Mount::new(&mounts[3], PathBuf::from("/data"));
        assert!(bind.is_mount_point());
        assert!(
            bind.read_only(),
            "the mount is ro although the filesystem is rw"
        );
        assert!(bind.has_option("ro") && !bind.has_option("rw"));
        assert!(bind.has_option("errors=remount-ro"));
        let below = Mount::new(&mounts[1], PathBuf::from("/var/lib"));
        assert!(!below.is_mount_point());
        assert!(below.has_option("rw") && !below.has_option("noexec"));
    }

    #[test]
    fn network_fuse_and_unknown_filesystems_may_block_and_kernel_ones_do_not() {
        for local in ["ext4", "xfs", "btrfs", "tmpfs", "overlay", "proc", "rootfs"] {
            assert!(is_local_fstype(local), "{local}");
        }
        for remote in [
            "nfs",
            "nfs4",
            "cifs",
            "fuse",
            "fuse.sshfs",
            "fuseblk",
            "autofs",
            "9p",
            "ceph",
            "virtiofs",
            "some-new-fs",
        ] {
            assert!(!is_local_fstype(remote), "{remote}");
        }
    }

    #[test]
    fn the_walk_stops_before_a_filesystem_that_may_block_and_follows_local_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink("real", base.join("link")).unwrap();
        std::os::unix::fs::symlink(base.join("remote"), base.join("to-remote")).unwrap();
        std::os::unix::fs::symlink("loop-b", base.join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", base.join("loop-b")).unwrap();
        let mut mounts = read_mountinfo().unwrap();
        mounts.push(MountEntry {
            mount_id: u64::MAX,
            parent_id: 0,
            root: PathBuf::from("/"),
            mount_point: base.join("remote"),
            mount_options: vec!["rw".into()],
            fstype: "nfs4".into(),
            source: "server:/export".into(),
            super_options: vec![],
        });
        assert_eq!(
            reach(&base.join("link/./x/.."), &mounts),
            Reach::Local(None),
            "real/x does not exist: the lookup stops there"
        );
        assert_eq!(
            reach(&base.join("link/../link"), &mounts),
            Reach::Local(Some(base.join("real")))
        );
        assert_eq!(
            reach(&base.join("to-remote/x"), &mounts),
            Reach::MayBlock {
                fstype: "nfs4".into()
            }
        );
        assert_eq!(reach(&base.join("loop-a"), &mounts), Reach::Local(None));
    }

    #[test]
    fn observing_a_path_names_its_mount_or_why_it_is_unknown() {
        let mounts = read_mountinfo();
        let seen = observe(Path::new("/"), Ok(PathBuf::from("/")), &mounts).unwrap();
        let mount = seen.mount.unwrap();
        assert_eq!(mount.mount_point, Path::new("/"));
        assert!(mount.is_mount_point());
        let unknown = observe(Path::new("/"), Err("not resolved".into()), &mounts).unwrap();
        assert_eq!(unknown.mount, Err("not resolved".to_string()));
        let no_table = Err(DiskError::Mountinfo {
            reason: "No such file or directory".into(),
        });
        let seen = observe(Path::new("/"), Ok(PathBuf::from("/")), &no_table).unwrap();
        assert_eq!(
            seen.mount,
            Err("cannot read /proc/self/mountinfo: No such file or directory".to_string())
        );
    }
}
