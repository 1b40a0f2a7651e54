//! Walks the watched trees in a fixed order and hashes their files on several threads.
//!
//! The walk is depth-first with each directory's names sorted bytewise, so entries come out in
//! `Path`'s component order: the same host state always gives the same sequence, and a
//! snapshot can be compared with the live tree by a streaming merge, without holding either in
//! memory. One walker thread lists and `lstat`s; worker threads hash regular files; the
//! caller's thread receives entries strictly in walk order through a bounded queue, so memory
//! stays flat however many entries there are.
//!
//! Rules that keep the walk safe on a real host: symlinks are recorded, never followed (so no
//! symlink loop can trap it); another file system is not entered unless asked (and, known from
//! the mount table, not even `stat`ed, since `stat` on a hung mount never returns); when asked
//! to cross mounts, the first look at each one has a timeout; FIFOs, sockets and devices are
//! recorded without being opened; bind-mount loops are caught by the device and inode of the
//! directories above.

use crate::glob::Exclude;
use host_probe::files::{self, EntryType, FileObservation};
use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::Metadata;
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to walk and how.
#[derive(Debug, Clone)]
pub struct WalkPlan {
    /// Every path to record (listed paths and the matches of patterns), absolute.
    pub explicit: BTreeSet<PathBuf>,
    pub exclude: Vec<Exclude>,
    pub one_file_system: bool,
    /// Mount points from the mount table; `None` when it could not be read.
    pub mounts: Option<HashSet<PathBuf>>,
    /// How long the first look at another file system may take when crossing mounts.
    pub mount_timeout: Duration,
    /// Hashing threads.
    pub workers: usize,
}

/// Counts for the result.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WalkStats {
    pub entries: u64,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    pub special_files: u64,
    pub mountpoints_not_entered: u64,
    pub errors: u64,
    /// The first few entries with errors, as `path: error`.
    pub error_samples: Vec<String>,
}

const ERROR_SAMPLES: usize = 10;
const ORDERED_QUEUE: usize = 4096;
const HASH_BUFFER: usize = 256 * 1024;

enum Pending {
    // Boxed: the queue holds thousands of these, most of them waiting on a hash.
    Ready(Box<FileObservation>),
    Hashing(Receiver<FileObservation>),
}

struct Job {
    observation: FileObservation,
    reply: SyncSender<FileObservation>,
}

/// Walks `plan` and hands each entry to `sink` in walk order. Stops at the first error `sink`
/// returns and returns it; a thread that cannot be started is an I/O error.
pub fn walk<E: From<std::io::Error>>(
    plan: &WalkPlan,
    sink: &mut dyn FnMut(FileObservation) -> Result<(), E>,
) -> Result<WalkStats, E> {
    let workers = plan.workers.max(1);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * 64);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (ordered_tx, ordered_rx) = mpsc::sync_channel::<Pending>(ORDERED_QUEUE);
    let mut stats = WalkStats::default();
    std::thread::scope(|scope| {
        let mut started = 0;
        let mut spawn_error = None;
        for index in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            match std::thread::Builder::new()
                .name(format!("hash-{index}"))
                .spawn_scoped(scope, move || hash_worker(&job_rx))
            {
                Ok(_) => started += 1,
                Err(err) => spawn_error = Some(err),
            }
        }
        if started == 0 {
            return Err(E::from(spawn_error.unwrap_or_else(|| {
                std::io::Error::other("no hashing thread could be started")
            })));
        }
        // The walk recurses once per directory level; paths of 4096 bytes allow ~2000 levels.
        let walker_thread = std::thread::Builder::new()
            .name("walker".into())
            .stack_size(64 * 1024 * 1024);
        let spawned = walker_thread.spawn_scoped(scope, move || {
            let mut walker = Walker {
                plan,
                jobs: job_tx,
                out: ordered_tx,
                ancestors: Vec::new(),
            };
            // A closed queue means the caller stopped reading; nothing more to do.
            let _ = walker.run();
        });
        if let Err(err) = spawned {
            return Err(E::from(err));
        }
        for pending in ordered_rx {
            let observation = match pending {
                Pending::Ready(observation) => *observation,
                Pending::Hashing(reply) => match reply.recv() {
                    Ok(observation) => observation,
                    // Cannot happen while a worker holds the job; treat it as a read error.
                    Err(_) => continue,
                },
            };
            count(&mut stats, &observation);
            sink(observation)?;
        }
        Ok(())
    })?;
    Ok(stats)
}

fn count(stats: &mut WalkStats, observation: &FileObservation) {
    stats.entries += 1;
    match observation.entry_type {
        EntryType::File if observation.sha256.is_some() => {
            stats.files_hashed += 1;
            stats.bytes_hashed += observation.size.unwrap_or(0);
        }
        EntryType::Fifo | EntryType::Socket | EntryType::CharDevice | EntryType::BlockDevice => {
            stats.special_files += 1
        }
        EntryType::Mountpoint => stats.mountpoints_not_entered += 1,
        _ => {}
    }
    if let Some(error) = &observation.error {
        stats.errors += 1;
        if stats.error_samples.len() < ERROR_SAMPLES {
            stats
                .error_samples
                .push(format!("{}: {}", observation.path, error));
        }
    }
}

fn hash_worker(jobs: &Mutex<Receiver<Job>>) {
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(Job {
            mut observation,
            reply,
        }) = job
        else {
            return;
        };
        let path = observation.path_buf();
        files::hash_into(&mut observation, &path, &mut buffer);
        // The caller may have stopped listening; the result is simply not needed then.
        let _ = reply.send(observation);
    }
}

/// The `Err` of the walker's steps: the caller stopped reading, so the walk ends.
struct Stopped;

struct Frame {
    path: PathBuf,
    names: Vec<OsString>,
    next: usize,
    /// The device of the file system this walk stays on below this directory.
    device: u64,
    /// `(device, inode)` of this directory, to catch bind-mount loops.
    identity: (u64, u64),
    /// Only passing through on the way to explicitly listed paths below: nothing in this
    /// directory is recorded except those.
    transit: bool,
}

struct Walker<'a> {
    plan: &'a WalkPlan,
    jobs: SyncSender<Job>,
    out: SyncSender<Pending>,
    /// `(device, inode)` of the directories being walked, outermost first.
    ancestors: Vec<(u64, u64)>,
}

impl Walker<'_> {
    fn run(&mut self) -> Result<(), Stopped> {
        let explicit = &self.plan.explicit;
        // Listed paths below another listed path are reached by walking that one.
        let mut top: Vec<&PathBuf> = Vec::new();
        for path in explicit {
            if !top.last().is_some_and(|last| path.starts_with(last)) {
                top.push(path);
            }
        }
        for root in top {
            self.visit(root, None, true)?;
        }
        Ok(())
    }

    fn emit(&self, observation: FileObservation) -> Result<(), Stopped> {
        self.out
            .send(Pending::Ready(Box::new(observation)))
            .map_err(|_| Stopped)
    }

    fn emit_hashed(&self, observation: FileObservation) -> Result<(), Stopped> {
        let (reply, result) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { observation, reply })
            .map_err(|_| Stopped)?;
        self.out.send(Pending::Hashing(result)).map_err(|_| Stopped)
    }

    fn is_explicit(&self, path: &Path) -> bool {
        self.plan.explicit.contains(path)
    }

    /// Whether an explicitly listed path lies strictly below `path`.
    fn leads_to_explicit(&self, path: &Path) -> bool {
        self.plan
            .explicit
            .range::<Path, _>((Bound::Excluded(path), Bound::Unbounded))
            .next()
            .is_some_and(|next| next.starts_with(path))
    }

    fn explicit_below(&self, path: &Path) -> Vec<PathBuf> {
        self.plan
            .explicit
            .range::<Path, _>((Bound::Excluded(path), Bound::Unbounded))
            .take_while(|p| p.starts_with(path))
            .cloned()
            .collect()
    }

    fn excluded(&self, path: &Path) -> bool {
        self.plan.exclude.iter().any(|e| e.matches(path))
    }

    fn is_mountpoint(&self, path: &Path) -> bool {
        self.plan.mounts.as_ref().is_some_and(|m| m.contains(path))
    }

    /// Every explicitly listed path at or below `path` is absent (or unreachable).
    fn emit_absent_below(&self, path: &Path, including_self: bool) -> Result<(), Stopped> {
        if including_self && self.is_explicit(path) {
            self.emit(FileObservation::bare(path, EntryType::Absent))?;
        }
        for below in self.explicit_below(path) {
            self.emit(FileObservation::bare(&below, EntryType::Absent))?;
        }
        Ok(())
    }

    /// Records `path` and, for a directory, everything below it. `parent` is the directory
    /// frame it was found in (`None` for a top-level root). `record` is false when `path` is
    /// only passed through on the way to listed paths below it.
    fn visit(&mut self, path: &Path, parent: Option<&Frame>, record: bool) -> Result<(), Stopped> {
        let crossing = self.is_mountpoint(path) && parent.is_some();
        let looked = if crossing {
            look_with_timeout(path, self.plan.mount_timeout)
        } else {
            look(path)
        };
        let (metadata, listing) = match looked {
            Look::Seen(metadata, listing) => (metadata, listing),
            Look::Missing => return self.emit_absent_below(path, record),
            Look::Failed(reason) => {
                if record {
                    let mut observation = FileObservation::bare(path, EntryType::Unknown);
                    observation.error = Some(reason);
                    self.emit(observation)?;
                }
                return self.emit_absent_below(path, false);
            }
            Look::TimedOut => {
                if record {
                    let mut observation = FileObservation::bare(path, EntryType::Mountpoint);
                    observation.error = Some(format!(
                        "the file system mounted here did not answer within {:?}; not walked",
                        self.plan.mount_timeout
                    ));
                    self.emit(observation)?;
                }
                return self.emit_absent_below(path, false);
            }
        };
        // A file system boundary that the mount table did not show (or could not be read):
        // recorded as a mount point, not entered, unless asked for. Only a directory counts:
        // on overlayfs (containers, nspawn machines) a file from a lower layer reports that
        // layer's device, not its directory's, without being a mount point; a file that really
        // is a bind-mount target is in the mount table.
        let other_fs = metadata.is_dir() && parent.is_some_and(|p| p.device != metadata.dev());
        if other_fs && self.plan.one_file_system && !self.is_explicit(path) {
            if record {
                self.emit(FileObservation::bare(path, EntryType::Mountpoint))?;
            }
            return self.pass_through(path);
        }
        let mut observation = FileObservation::from_metadata(path, &metadata);
        let entry_type = observation.entry_type;
        match entry_type {
            EntryType::Symlink => {
                files::read_target(&mut observation, path);
                if record {
                    self.emit(observation)?;
                }
                return self.pass_through(path);
            }
            EntryType::File => {
                if record {
                    self.emit_hashed(observation)?;
                }
                return self.emit_absent_below(path, false);
            }
            EntryType::Dir => {}
            _ => {
                if record {
                    self.emit(observation)?;
                }
                return self.emit_absent_below(path, false);
            }
        }
        let identity = (metadata.dev(), metadata.ino());
        let looped = self.ancestors.contains(&identity);
        let names = match listing {
            Some(Ok(names)) if !looped => names,
            Some(Ok(_)) => {
                observation.error =
                    Some("directory loop (a bind mount of a directory above); not walked".into());
                Vec::new()
            }
            Some(Err(reason)) => {
                observation.error = Some(format!("cannot list directory: {reason}"));
                Vec::new()
            }
            None => Vec::new(),
        };
        if record {
            self.emit(observation)?;
        }
        let frame = Frame {
            path: path.to_path_buf(),
            names: self.with_explicit_children(path, names),
            next: 0,
            device: metadata.dev(),
            identity,
            transit: !record,
        };
        if looped {
            return Ok(());
        }
        self.ancestors.push(identity);
        let walked = self.walk_frame(frame);
        self.ancestors.pop();
        walked
    }

    /// A symlink, a mount point not entered or an excluded directory may still lead to paths
    /// listed below it: go there without recording anything else on the way.
    fn pass_through(&mut self, path: &Path) -> Result<(), Stopped> {
        if !self.leads_to_explicit(path) {
            return Ok(());
        }
        // Follows a symlink here on purpose: the listed path below names it that way.
        let names = match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect(),
            Err(_) => return self.emit_absent_below(path, false),
        };
        let metadata = std::fs::metadata(path).ok();
        let frame = Frame {
            path: path.to_path_buf(),
            names: self.with_explicit_children(path, names),
            next: 0,
            device: metadata.as_ref().map_or(0, MetadataExt::dev),
            identity: metadata.as_ref().map_or((0, 0), |m| (m.dev(), m.ino())),
            transit: true,
        };
        if frame.identity != (0, 0) && self.ancestors.contains(&frame.identity) {
            return Ok(());
        }
        self.ancestors.push(frame.identity);
        let walked = self.walk_frame(frame);
        self.ancestors.pop();
        walked
    }

    /// `names` plus the listed paths directly in `dir` (so a listed path that does not exist
    /// is still recorded, as absent), sorted bytewise and without duplicates.
    fn with_explicit_children(&self, dir: &Path, mut names: Vec<OsString>) -> Vec<OsString> {
        for below in self.explicit_below(dir) {
            if let Ok(relative) = below.strip_prefix(dir) {
                if let Some(first) = relative.components().next() {
                    names.push(first.as_os_str().to_os_string());
                }
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names.dedup();
        names
    }

    /// Walks a directory's entries depth-first. Deep trees are walked with recursion bounded by
    /// the tree depth; each level holds only its own sorted names.
    fn walk_frame(&mut self, mut frame: Frame) -> Result<(), Stopped> {
        while frame.next < frame.names.len() {
            let name = frame.names[frame.next].clone();
            frame.next += 1;
            let child = frame.path.join(&name);
            let explicit = self.is_explicit(&child);
            let leads = self.leads_to_explicit(&child);
            if frame.transit && !explicit && !leads {
                continue;
            }
            let record = explicit || !frame.transit;
            if !explicit && self.excluded(&child) {
                if leads {
                    self.visit(&child, Some(&frame), false)?;
                }
                continue;
            }
            if !explicit && self.plan.one_file_system && self.is_mountpoint(&child) {
                if record {
                    self.emit(FileObservation::bare(&child, EntryType::Mountpoint))?;
                }
                if leads {
                    self.pass_through(&child)?;
                }
                continue;
            }
            self.visit(&child, Some(&frame), record)?;
        }
        Ok(())
    }
}

enum Look {
    /// The metadata, and for a directory its sorted listing (or why it could not be listed).
    Seen(Metadata, Option<Result<Vec<OsString>, String>>),
    Missing,
    Failed(String),
    TimedOut,
}

fn look(path: &Path) -> Look {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => {
            let listing = metadata.is_dir().then(|| list(path));
            Look::Seen(metadata, listing)
        }
        Err(err)
            if err.kind() == std::io::ErrorKind::NotFound
                || err.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Look::Missing
        }
        Err(err) => Look::Failed(format!("cannot stat: {}", files::reason(&err))),
    }
}

/// `look` at a mount point that may hang, given up after `timeout`.
///
/// A thread stuck in a request to a dead FUSE or NFS server cannot be killed, and it keeps the
/// whole process from exiting. So the first touch of another file system happens in a
/// disposable child process (`stat`), which is left behind if it does not answer; only a mount
/// that answered is looked at from this process (on a thread, as a second guard).
fn look_with_timeout(path: &Path, timeout: Duration) -> Look {
    if mount_answers(path, timeout) == Some(false) {
        return Look::TimedOut;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let owned = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("mount-look".into())
        .spawn(move || {
            let _ = tx.send(look(&owned));
        });
    if spawned.is_err() {
        return look(path);
    }
    rx.recv_timeout(timeout).unwrap_or(Look::TimedOut)
}

/// Whether `stat PATH` in a child process finishes within `timeout`; `None` when no child
/// could be started (then only the thread guards the look).
fn mount_answers(path: &Path, timeout: Duration) -> Option<bool> {
    let mut child = std::process::Command::new("stat")
        .arg("--format=%i")
        .arg("--")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            // Any exit status is an answer: the file system responded.
            Ok(Some(_)) => return Some(true),
            Ok(None) if std::time::Instant::now() >= deadline => {
                // It may not die while the request is pending; it is not waited for.
                let _ = child.kill();
                return Some(false);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    }
}

fn list(path: &Path) -> Result<Vec<OsString>, String> {
    let entries = std::fs::read_dir(path).map_err(|err| files::reason(&err))?;
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => names.push(entry.file_name()),
            Err(err) => return Err(files::reason(&err)),
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Hashing threads: one per CPU, at least two (a read waits on the page cache or the disk
/// while another hashes), at most eight.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}
