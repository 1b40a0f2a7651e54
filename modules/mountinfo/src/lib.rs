//! `/proc/self/mountinfo` (proc(5)): the mount table as the kernel writes it, which it answers
//! without asking any filesystem (so reading it never blocks on a hung NFS or FUSE mount).
//! One parser for the modules that look at mounts: health_check's disk checks (through
//! host_probe) and secrets_gate's hung-mount probe.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo` (proc(5)), with its escapes (`\040` for a space) undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u64,
    pub parent_id: u64,
    /// The directory of the filesystem that is mounted: `/` unless it is a bind mount of a
    /// subdirectory.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `nosuid`, `noexec`, `relatime`, ...).
    pub mount_options: Vec<String>,
    /// `ext4`, `xfs`, `fuse.sshfs`, ...
    pub fstype: String,
    /// The device or server (`/dev/sda1`, `server:/export`), as the filesystem names it.
    pub source: String,
    /// The filesystem's own options (`rw`, `errors=remount-ro`, `size=64k`, ...).
    pub super_options: Vec<String>,
}

/// Parses the text of `/proc/self/mountinfo`; a line that does not have the documented shape is
/// skipped rather than trusted.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let mut fields = line.split(' ');
    let mount_id = fields.next()?.parse().ok()?;
    let parent_id = fields.next()?.parse().ok()?;
    let _major_minor = fields.next()?;
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let mount_options = split_options(fields.next()?);
    // Optional fields (`shared:1`, `master:2`, ...) up to the lone "-".
    fields.by_ref().find(|field| *field == "-")?;
    let fstype = fields.next()?.to_string();
    let source = unescape(fields.next()?).to_string_lossy().into_owned();
    let super_options = split_options(fields.next().unwrap_or(""));
    Some(MountEntry {
        mount_id,
        parent_id,
        root,
        mount_point,
        mount_options,
        fstype,
        source,
        super_options,
    })
}

fn split_options(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|option| !option.is_empty())
        .map(str::to_string)
        .collect()
}

/// Undoes the kernel's octal escapes: it writes a space as `\040`, a tab as `\011`, a newline as
/// `\012` and a backslash as `\134` in paths. Bytes that are not UTF-8 stay as they are.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let is_octal = |digits: &&[u8]| digits.iter().all(|d| (b'0'..=b'7').contains(d));
        let octal = match bytes[i] {
            b'\\' => bytes.get(i + 1..i + 4).filter(is_octal),
            _ => None,
        };
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                // Three octal digits can exceed a byte (\777); such a sequence is not an escape.
                match u8::try_from(value) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 4;
                    }
                    Err(_) => {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Reads and parses this process's mount table.
pub fn read_mountinfo() -> std::io::Result<Vec<MountEntry>> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|text| parse_mountinfo(&text))
}

/// The mount a resolved (absolute, symlink-free) path lies on: the one with the longest mount
/// point that contains the path and, where several are stacked on that mount point, the one
/// mounted last (on top).
pub fn mount_holding<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let deepest = mounts
        .iter()
        .filter(|entry| path.starts_with(&entry.mount_point))
        .map(|entry| entry.mount_point.components().count())
        .max()?;
    let stacked: Vec<&MountEntry> = mounts
        .iter()
        .filter(|entry| {
            path.starts_with(&entry.mount_point)
                && entry.mount_point.components().count() == deepest
        })
        .collect();
    // The top of a stack is the mount no other mount on the same point was mounted over.
    stacked
        .iter()
        .find(|entry| {
            !stacked
                .iter()
                .any(|other| other.parent_id == entry.mount_id)
        })
        .or(stacked.last())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escape_that_is_not_one_stays_as_written() {
        assert_eq!(unescape("/a\\777b"), Path::new("/a\\777b"));
        assert_eq!(unescape("/a\\04"), Path::new("/a\\04"));
        assert_eq!(unescape("/tab\\011end"), Path::new("/tab\tend"));
        assert_eq!(unescape("/nl\\012end"), Path::new("/nl\nend"));
    }

    #[test]
    fn this_process_has_a_mount_table_with_a_root() {
        let mounts = read_mountinfo().unwrap_or_default();
        assert!(
            mount_holding(&mounts, Path::new("/")).is_some(),
            "{mounts:?}"
        );
    }
}
