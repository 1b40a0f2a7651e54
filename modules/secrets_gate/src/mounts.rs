//! Mounts that may never answer: a FUSE or network file system whose server went away blocks
//! every `stat`, `open` or `readdir` under it, and a thread blocked there cannot even be killed
//! (the kernel waits for the server's answer), so it would keep the whole process alive after
//! the result is printed. The scan therefore never touches another file system inside the
//! scanned tree, nor a file parameter on a network or FUSE mount, before a throw-away child
//! process (`secrets_gate __probe PATH`, stdio on /dev/null) has looked at it within the
//! `timeout`. A look that times out is reported and the path is not entered; the stuck child is
//! left behind, holding none of our pipes, and goes away when the mount does.
//!
//! Mount points come from `/proc/self/mountinfo`, which the kernel answers without asking any
//! file system.

use mountinfo::{mount_holding, MountEntry};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden first argument that makes the binary a probe.
pub const PROBE_COMMAND: &str = "__probe";

/// The default time a mount has to answer its first look.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// File system types served over a network or by a user-space process: the ones whose
/// server can go away and leave every request unanswered.
fn may_hang(fstype: &str) -> bool {
    fstype.starts_with("fuse")
        || fstype.starts_with("nfs")
        || fstype.starts_with("smb")
        || matches!(
            fstype,
            "cifs" | "9p" | "ceph" | "glusterfs" | "afs" | "davfs" | "sshfs" | "lustre" | "gfs2"
        )
}

/// The process's mounts, or none when `/proc` is not there (then nothing is probed).
pub fn mounts() -> Vec<MountEntry> {
    mountinfo::read_mountinfo().unwrap_or_default()
}

/// The mount points strictly inside `root`, outermost first.
pub fn mount_points_inside(mounts: &[MountEntry], root: &Path) -> Vec<PathBuf> {
    let mut inside: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.mount_point != root && m.mount_point.starts_with(root))
        .map(|m| m.mount_point.clone())
        .collect();
    inside.sort();
    inside.dedup();
    inside
}

/// Whether `path` (absolute, not resolved: resolving it would touch the mount) lies on a
/// file system that may never answer.
pub fn on_mount_that_may_hang(mounts: &[MountEntry], path: &Path) -> bool {
    mount_holding(mounts, path).is_some_and(|m| may_hang(&m.fstype))
}

/// The child side: looks at `path` (a directory's first entry, or a file's first byte) and
/// exits 0 when it answered, 1 when it answered with an error.
pub fn probe_main(path: &str) -> i32 {
    let path = Path::new(path);
    let answered = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path).map(|mut d| {
            let _ = d.next();
        }),
        Ok(meta) if meta.is_file() => {
            let mut byte = [0u8; 1];
            std::fs::File::open(path).and_then(|mut f| f.read(&mut byte).map(|_| ()))
        }
        Ok(_) => Ok(()),
        Err(err) => Err(err),
    };
    i32::from(answered.is_err())
}

/// Looks at each path in its own child process, all at once, and returns the paths that did
/// not answer within `timeout` (their children are killed, and left to the kernel), each with
/// `None`, and the paths whose probe could not be started at all (no executable, a process
/// limit), each with why: those are not trusted to answer either (fail closed: the walk would
/// block on them if they hang).
pub fn unanswered(paths: &[PathBuf], timeout: Duration) -> Vec<(PathBuf, Option<String>)> {
    if paths.is_empty() {
        return Vec::new();
    }
    match std::env::current_exe() {
        Ok(program) => probe_with(&program, paths, timeout),
        Err(err) => {
            let why = format!("cannot start the probe that looks at it: {err}");
            paths
                .iter()
                .map(|p| (p.clone(), Some(why.clone())))
                .collect()
        }
    }
}

/// [`unanswered`] with `program` as the probe.
fn probe_with(
    program: &Path,
    paths: &[PathBuf],
    timeout: Duration,
) -> Vec<(PathBuf, Option<String>)> {
    let mut unstarted = Vec::new();
    let mut running: Vec<(PathBuf, Child)> = Vec::new();
    for path in paths {
        let spawned = Command::new(program)
            .arg(PROBE_COMMAND)
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => running.push((path.clone(), child)),
            Err(err) => unstarted.push((
                path.clone(),
                Some(format!("cannot start the probe that looks at it: {err}")),
            )),
        }
    }
    let started = Instant::now();
    loop {
        running.retain_mut(|(_, child)| !matches!(child.try_wait(), Ok(Some(_)) | Err(_)));
        if running.is_empty() || started.elapsed() >= timeout {
            break;
        }
        std::thread::sleep(
            Duration::from_millis(5)
                .min(timeout / 20)
                .max(Duration::from_millis(1)),
        );
    }
    let timed_out = running.into_iter().map(|(path, mut child)| {
        // SIGKILL: the child dies as soon as the kernel lets go of it; never waited for.
        let _ = child.kill();
        (path, None)
    });
    unstarted.into_iter().chain(timed_out).collect()
}

/// Of `paths` (as given: relative to the working directory), those on a network or FUSE mount
/// that did not answer a probe within `timeout`, with the error to report for each. Paths on
/// other file systems are not probed (no child process in the common case). Call it before the
/// first `stat` of a path that the caller was given: resolving a path on a hung mount blocks.
pub fn unanswered_paths(paths: &[PathBuf], timeout: Duration) -> Vec<(PathBuf, std::io::Error)> {
    if paths.is_empty() {
        return Vec::new();
    }
    let all = mounts();
    let cwd = std::env::current_dir().unwrap_or_default();
    let suspect: Vec<(PathBuf, PathBuf)> = paths
        .iter()
        .map(|path| (path.clone(), cwd.join(path)))
        .filter(|(_, absolute)| on_mount_that_may_hang(&all, absolute))
        .collect();
    if suspect.is_empty() {
        return Vec::new();
    }
    let absolutes: Vec<PathBuf> = suspect.iter().map(|(_, a)| a.clone()).collect();
    let stuck = unanswered(&absolutes, timeout);
    suspect
        .into_iter()
        .filter_map(|(path, absolute)| {
            let (_, why) = stuck.iter().find(|(stuck, _)| *stuck == absolute)?;
            let err = match why {
                None => timed_out(timeout),
                Some(why) => std::io::Error::other(why.clone()),
            };
            Some((path, err))
        })
        .collect()
}

/// The error for a path that did not answer in time.
pub fn timed_out(timeout: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "timed out reading it after {} (a mount that does not answer?)",
            ansible_module::types::Duration(timeout)
        ),
    )
}

/// Reads a file parameter (`baseline`, `sops_config`): a regular file only (a FIFO would block
/// for ever), at most `max_bytes`, and when it lies on a network or FUSE mount only after a
/// probe saw it answer within `timeout`. The error says what went wrong, without the path (the
/// caller names the parameter and the path).
pub fn read_parameter_file(
    path: &Path,
    max_bytes: u64,
    timeout: Duration,
) -> Result<String, String> {
    if let Some((_, err)) = unanswered_paths(&[path.to_path_buf()], timeout).pop() {
        return Err(err.to_string());
    }
    let bytes =
        ansible_module::args::read_regular_file(path, max_bytes).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mountinfo::parse_mountinfo;

    #[test]
    fn a_path_whose_probe_cannot_start_is_not_trusted_to_answer() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-probe");
        let paths = vec![dir.path().to_path_buf()];
        let out = probe_with(&missing, &paths, Duration::from_secs(5));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, paths[0]);
        let why = out[0].1.as_deref().unwrap_or_default();
        assert!(
            why.starts_with("cannot start the probe that looks at it: "),
            "{why}"
        );
    }

    #[test]
    fn mountinfo_lines_give_mount_points_with_escapes_and_their_types() {
        let text = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                    40 22 0:50 / /srv/repo/my\\040mnt rw - fuse.sshfs host:/x rw\n\
                    41 22 0:51 / /srv/repo/nfs rw shared:1 - nfs4 server:/e rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[1].mount_point, PathBuf::from("/srv/repo/my mnt"));
        assert_eq!(mounts[2].fstype, "nfs4");
        assert_eq!(
            mount_points_inside(&mounts, Path::new("/srv/repo")),
            [
                PathBuf::from("/srv/repo/my mnt"),
                PathBuf::from("/srv/repo/nfs")
            ]
        );
        assert!(mount_points_inside(&mounts, Path::new("/srv/repo/nfs")).is_empty());
    }

    #[test]
    fn only_network_and_fuse_mounts_may_hang_and_the_innermost_mount_decides() {
        let mounts = parse_mountinfo(
            "1 0 0:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:2 / /mnt/nfs rw - nfs server:/e rw\n\
             3 2 0:3 / /mnt/nfs/tmp rw - tmpfs tmpfs rw\n",
        );
        assert!(on_mount_that_may_hang(
            &mounts,
            Path::new("/mnt/nfs/baseline.json")
        ));
        assert!(!on_mount_that_may_hang(
            &mounts,
            Path::new("/mnt/nfs/tmp/b.json")
        ));
        assert!(!on_mount_that_may_hang(&mounts, Path::new("/home/b.json")));
    }

    #[test]
    fn a_fifo_parameter_file_is_refused_by_what_it_is() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.path().join("baseline.json");
        let status = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        assert!(status.success());
        let err = read_parameter_file(&fifo, 1 << 20, DEFAULT_TIMEOUT).err();
        assert_eq!(err.as_deref(), Some("it is a FIFO, not a regular file"));
        let err = read_parameter_file(dir.path(), 1 << 20, DEFAULT_TIMEOUT).err();
        assert_eq!(
            err.as_deref(),
            Some("it is a directory, not a regular file")
        );
    }
}
