//! One file system entry as it is now: type, mode, owner, size, mtime, inode, symlink target and
//! a streamed SHA-256 of a regular file's content. Reads only; atime is never read as state.
//!
//! Content is read with `O_NOATIME` where the kernel allows it (owner or root), so taking a
//! snapshot does not itself bump the access times that other tools look at, and with
//! `O_NONBLOCK | O_NOFOLLOW` so that an entry swapped for a FIFO or a symlink between `lstat`
//! and `open` can neither hang the reader nor lead it elsewhere.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What kind of entry a path is. `Absent` is a listed path that does not exist; `Mountpoint`
/// is another file system that was not entered (and not even `stat`ed, so a hung mount cannot
/// block the walk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Absent,
    Mountpoint,
    /// `lstat` itself failed (the reason is in `error`).
    Unknown,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Fifo => "fifo",
            EntryType::Socket => "socket",
            EntryType::CharDevice => "char_device",
            EntryType::BlockDevice => "block_device",
            EntryType::Absent => "absent",
            EntryType::Mountpoint => "mountpoint",
            EntryType::Unknown => "unknown",
        }
    }

    pub fn of(metadata: &Metadata) -> EntryType {
        let kind = metadata.file_type();
        if kind.is_symlink() {
            EntryType::Symlink
        } else if kind.is_dir() {
            EntryType::Dir
        } else if kind.is_file() {
            EntryType::File
        } else if kind.is_fifo() {
            EntryType::Fifo
        } else if kind.is_socket() {
            EntryType::Socket
        } else if kind.is_char_device() {
            EntryType::CharDevice
        } else {
            EntryType::BlockDevice
        }
    }
}

/// One entry's observed state. Paths that are not valid UTF-8 keep their exact bytes in
/// `path_bytes` (and `target_bytes`); `path` then holds a lossy rendering for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileObservation {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<Vec<u8>>,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Modification time as `seconds.nanoseconds` since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
    /// The inode number: a changed one with the same path means the entry was replaced
    /// (written elsewhere and renamed over), which also moves the parent directory's mtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// Birth time (`statx`), where the file system keeps one: with the inode number it tells a
    /// re-created entry from the same one, also when the inode number was reused. Not reported
    /// as state on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<String>,
    /// Lowercase hex SHA-256 of a regular file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_bytes: Option<Vec<u8>>,
    /// Device number of character and block devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    /// Why part of the entry could not be read (unreadable content, a file that kept changing
    /// while it was hashed, a directory that cannot be listed, a mount that did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileObservation {
    /// An entry of `entry_type` at `path` with nothing else known yet.
    pub fn bare(path: &Path, entry_type: EntryType) -> Self {
        let (path, path_bytes) = split_os(path.as_os_str().as_bytes());
        FileObservation {
            path,
            path_bytes,
            entry_type,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            mtime: None,
            ino: None,
            born: None,
            sha256: None,
            target: None,
            target_bytes: None,
            rdev: None,
            error: None,
        }
    }

    /// The entry described by `lstat` metadata; content and symlink target are not read yet.
    pub fn from_metadata(path: &Path, metadata: &Metadata) -> Self {
        let entry_type = EntryType::of(metadata);
        let mut observation = FileObservation::bare(path, entry_type);
        observation.mode = Some(metadata.mode() & 0o7777);
        observation.uid = Some(metadata.uid());
        observation.gid = Some(metadata.gid());
        observation.ino = Some(metadata.ino());
        observation.mtime = Some(format_mtime(metadata.mtime(), metadata.mtime_nsec()));
        observation.born = metadata
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| format_mtime(d.as_secs() as i64, i64::from(d.subsec_nanos())));
        match entry_type {
            EntryType::File => observation.size = Some(metadata.size()),
            EntryType::CharDevice | EntryType::BlockDevice => {
                observation.rdev = Some(metadata.rdev())
            }
            _ => {}
        }
        observation
    }

    /// The exact path, also when it is not valid UTF-8.
    pub fn path_buf(&self) -> PathBuf {
        match &self.path_bytes {
            Some(bytes) => PathBuf::from(std::ffi::OsStr::from_bytes(bytes)),
            None => PathBuf::from(&self.path),
        }
    }

    pub fn set_target(&mut self, target: &Path) {
        let (text, bytes) = split_os(target.as_os_str().as_bytes());
        self.target = Some(text);
        self.target_bytes = bytes;
    }

    /// The exact symlink target, when there is one.
    pub fn target_raw(&self) -> Option<Vec<u8>> {
        match (&self.target_bytes, &self.target) {
            (Some(bytes), _) => Some(bytes.clone()),
            (None, Some(text)) => Some(text.as_bytes().to_vec()),
            (None, None) => None,
        }
    }
}

/// `path` as a string, plus the raw bytes when they are not UTF-8.
fn split_os(bytes: &[u8]) -> (String, Option<Vec<u8>>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(bytes.to_vec()),
        ),
    }
}

pub fn format_mtime(seconds: i64, nanoseconds: i64) -> String {
    format!("{seconds}.{nanoseconds:09}")
}

/// Reads the symlink target into the observation, or notes why it could not.
pub fn read_target(observation: &mut FileObservation, path: &Path) {
    match std::fs::read_link(path) {
        Ok(target) => observation.set_target(&target),
        Err(err) => {
            observation.error = Some(format!("cannot read symlink target: {}", reason(&err)))
        }
    }
}

/// How many times a file that changes while it is hashed is read again before giving up.
const HASH_ATTEMPTS: usize = 3;

/// Hashes a regular file's content into `observation`, refreshing its metadata from the open
/// file (the entry may have been replaced since `lstat`). A file that keeps changing while it
/// is read, that became something else, or that cannot be read gets `error` instead of a hash.
/// `buffer` is reused between calls so that hashing allocates nothing per file.
pub fn hash_into(observation: &mut FileObservation, path: &Path, buffer: &mut [u8]) {
    for _ in 0..HASH_ATTEMPTS {
        match hash_once(path, buffer) {
            Ok(Hashed::Stable { digest, metadata }) => {
                refresh(observation, path, &metadata);
                observation.sha256 = Some(digest);
                observation.error = None;
                return;
            }
            Ok(Hashed::Changed) => continue,
            Ok(Hashed::NotAFile(metadata)) => {
                // Replaced by a directory, FIFO... between the walk and the read.
                let mut replaced = FileObservation::from_metadata(path, &metadata);
                replaced.error = Some("replaced by another kind of entry while read".into());
                *observation = replaced;
                return;
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {
                observation.error = Some("removed while read".into());
                return;
            }
            Err(err) => {
                observation.error = Some(format!("cannot read content: {}", reason(&err)));
                return;
            }
        }
    }
    observation.error = Some(format!(
        "content changed while read, {HASH_ATTEMPTS} times in a row"
    ));
}

enum Hashed {
    Stable { digest: String, metadata: Metadata },
    Changed,
    NotAFile(Metadata),
}

fn hash_once(path: &Path, buffer: &mut [u8]) -> std::io::Result<Hashed> {
    let mut file = open_for_hashing(path)?;
    let before = file.metadata()?;
    if !before.file_type().is_file() {
        return Ok(Hashed::NotAFile(before));
    }
    let mut hasher = Sha256::new();
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    let after = file.metadata()?;
    // ctime catches in-place writes that restore mtime; it is only a stability check here,
    // never reported as state.
    let stable = before.size() == after.size()
        && before.mtime() == after.mtime()
        && before.mtime_nsec() == after.mtime_nsec()
        && before.ctime() == after.ctime()
        && before.ctime_nsec() == after.ctime_nsec();
    if !stable {
        return Ok(Hashed::Changed);
    }
    Ok(Hashed::Stable {
        digest: hex(&hasher.finalize()),
        metadata: after,
    })
}

fn open_for_hashing(path: &Path) -> std::io::Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    match OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NOATIME)
        .open(path)
    {
        // O_NOATIME is refused (EPERM) on files of other users for non-root callers.
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
            OpenOptions::new().read(true).custom_flags(flags).open(path)
        }
        other => other,
    }
}

fn refresh(observation: &mut FileObservation, path: &Path, metadata: &Metadata) {
    let fresh = FileObservation::from_metadata(path, metadata);
    observation.mode = fresh.mode;
    observation.uid = fresh.uid;
    observation.gid = fresh.gid;
    observation.size = fresh.size;
    observation.mtime = fresh.mtime;
    observation.ino = fresh.ino;
    observation.born = fresh.born;
}

/// The SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// An I/O error in plain words, without Rust's `(os error 13)` suffix.
pub fn reason(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".into(),
        Some(libc::ELOOP) => "too many levels of symbolic links".into(),
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::ENOTDIR) => "not a directory".into(),
        Some(libc::EIO) => "I/O error".into(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// The mount points listed in `/proc/self/mountinfo` (octal escapes decoded), so that a walk
/// can stop at another file system without `stat`ing it: `stat` on a hung network or FUSE mount
/// never returns. `None` when the table cannot be read.
pub fn mount_points() -> Option<std::collections::HashSet<PathBuf>> {
    let text = std::fs::read("/proc/self/mountinfo").ok()?;
    Some(parse_mountinfo(&text))
}

pub fn parse_mountinfo(text: &[u8]) -> std::collections::HashSet<PathBuf> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape_octal(field))))
        .collect()
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 4 <= field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_content_like_sha256sum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").unwrap();
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        let mut observation = FileObservation::from_metadata(&path, &metadata);
        hash_into(&mut observation, &path, &mut [0u8; 7]);
        assert_eq!(
            observation.sha256.as_deref(),
            Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        );
        assert_eq!(observation.size, Some(6));
        assert_eq!(observation.error, None);
    }

    #[test]
    fn unreadable_file_gets_an_error_not_a_hash() {
        // /proc/self/mem is a regular file whose read at offset 0 fails (EIO), even for root.
        let path = Path::new("/proc/self/mem");
        let metadata = std::fs::symlink_metadata(path).unwrap();
        let mut observation = FileObservation::from_metadata(path, &metadata);
        hash_into(&mut observation, path, &mut [0u8; 64]);
        assert_eq!(observation.sha256, None);
        assert_eq!(
            observation.error.as_deref(),
            Some("cannot read content: I/O error")
        );
    }

    #[test]
    fn non_utf8_names_keep_their_bytes() {
        let raw = std::ffi::OsStr::from_bytes(b"/tmp/caf\xe9");
        let observation = FileObservation::bare(Path::new(raw), EntryType::Absent);
        assert_eq!(observation.path, "/tmp/caf\u{fffd}");
        assert_eq!(observation.path_buf(), PathBuf::from(raw));
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        let text =
            b"36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                     37 35 0:5 / /proc rw - proc proc rw\n";
        let mounts = parse_mountinfo(text);
        assert!(mounts.contains(Path::new("/mnt/with space")), "{mounts:?}");
        assert!(mounts.contains(Path::new("/proc")));
    }
}
