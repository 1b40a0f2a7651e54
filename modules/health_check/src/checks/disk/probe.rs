//! Measuring `disks` paths without ever being held by them.
//!
//! statvfs (and every stat or lookup) on a filesystem whose server stopped answering (NFS, sshfs,
//! any FUSE filesystem) blocks in the kernel, out of reach of signals. A thread stuck there keeps
//! the whole process alive after the module has printed its result, so Ansible would never get
//! its answer. So a path whose lookup may enter such a filesystem ([`host_probe::disk::reach`])
//! is measured in a separate process: the module's own binary, started with [`SUBCOMMAND`],
//! which prints one JSON line per path as soon as that path is measured. The module never waits
//! for that process beyond the check's timeout, and never reaps one that is still measuring: a
//! process blocked in the kernel cannot be reaped before the filesystem answers. The probe
//! process exits by itself when the module does (its standard input, a pipe from the module,
//! ends), at once if it is idle, or as soon as its blocked call returns.
//!
//! Paths on local filesystems, the common case, are measured in this process, on the blocking
//! pool, at the cost of one read of `/proc/self/mountinfo` per attempt. The disk checks of one
//! attempt share that read and at most one probe process; a path still being measured from an
//! earlier attempt is not measured again (a wait-until-healthy run on a hung mount starts one
//! probe process, not one per attempt).

use host_probe::disk::{self, DiskError, DiskObservation, Reach};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use tokio::sync::watch;

/// The first argument that makes the module binary the probe process (`health_check
/// --disk-probe-process PATH...`). Not a parameter: Ansible always passes an arguments file.
pub const SUBCOMMAND: &str = "--disk-probe-process";

/// What measuring one path gave.
pub type Answer = Result<DiskObservation, DiskError>;

/// One line of the probe process's output.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    index: usize,
    answer: WireAnswer,
}

/// An [`Answer`] as the probe process sends it.
#[derive(Debug, Serialize, Deserialize)]
enum WireAnswer {
    Observed(DiskObservation),
    Statvfs { errno: i32 },
    Failed { reason: String },
}

impl WireAnswer {
    fn from_answer(answer: Answer) -> Self {
        match answer {
            Ok(seen) => Self::Observed(seen),
            Err(DiskError::Statvfs { source, .. }) => Self::Statvfs {
                errno: disk::errno_number(source),
            },
            Err(other) => Self::Failed {
                reason: other.to_string(),
            },
        }
    }

    fn into_answer(self, path: &Path) -> Answer {
        match self {
            Self::Observed(seen) => Ok(seen),
            Self::Statvfs { errno } => Err(DiskError::Statvfs {
                path: path.to_path_buf(),
                source: disk::Errno::from_raw(errno),
            }),
            Self::Failed { reason } => Err(DiskError::Isolated {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }
}

/// The probe process: measures every path in a thread of its own (one hung path must not hold
/// back the others) and prints one [`Line`] per path as soon as it is measured. Returns the exit
/// code.
pub fn serve(paths: Vec<OsString>) -> i32 {
    // Standard input is a pipe from the module that is never written to: its end means the
    // module has exited, and then nobody waits for these answers. Exiting here ends the process
    // even while a thread is blocked in the kernel (it dies as soon as the call returns).
    let _watch = std::thread::Builder::new().spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let mounts = disk::read_mountinfo();
    let stdout = std::io::stdout();
    let measure = |index: usize, path: &Path| {
        let resolved = std::fs::canonicalize(path).map_err(|err| {
            format!(
                "cannot resolve {}: {}",
                path.display(),
                host_probe::error::plain_io(&err)
            )
        });
        let answer = WireAnswer::from_answer(disk::observe(path, resolved, &mounts));
        if let Ok(text) = serde_json::to_string(&Line { index, answer }) {
            let mut out = stdout.lock();
            // The reader may be gone (the module finished): nothing left to tell.
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        }
    };
    std::thread::scope(|scope| {
        for (index, path) in paths.iter().enumerate() {
            let path = Path::new(path);
            let spawned = std::thread::Builder::new().spawn_scoped(scope, move || {
                measure(index, path);
            });
            if spawned.is_err() {
                measure(index, path);
            }
        }
    });
    0
}

/// The run's disk prober, shared by every disk check and attempt of this process.
pub fn shared() -> &'static Prober {
    static SHARED: OnceLock<Prober> = OnceLock::new();
    // The running binary itself, even if its file was removed since it started.
    SHARED.get_or_init(|| Prober::new(PathBuf::from("/proc/self/exe")))
}

/// Measures paths in this process when that cannot hang, in a probe process otherwise.
#[derive(Debug, Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The binary that serves [`SUBCOMMAND`].
    program: PathBuf,
    isolate_every_path: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Paths being measured, each with the channel its answer will come on.
    in_flight: HashMap<PathBuf, watch::Sender<Option<Answer>>>,
    /// Paths waiting for the next batch.
    queued: Vec<PathBuf>,
    batch_scheduled: bool,
    /// Probe processes that have not exited yet.
    children: Vec<Child>,
    processes_started: usize,
}

impl Prober {
    /// A prober whose probe process is `program` (a binary that serves [`SUBCOMMAND`]).
    pub fn new(program: PathBuf) -> Self {
        Self::with(program, false)
    }

    /// A prober that measures every path in a probe process, local ones too (for tests of the
    /// probe process on hosts without a hung mount).
    pub fn isolating_every_path(program: PathBuf) -> Self {
        Self::with(program, true)
    }

    fn with(program: PathBuf, isolate_every_path: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                program,
                isolate_every_path,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Measures `path`. The disk checks that start together are measured as one batch; a path
    /// already being measured waits for that measurement. Cancelling (the check's timeout)
    /// abandons the wait, not the measurement.
    pub async fn observe(&self, path: &Path) -> Answer {
        let mut receiver = {
            let mut state = self.lock();
            match state.in_flight.get(path) {
                Some(sender) => sender.subscribe(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    state.in_flight.insert(path.to_path_buf(), sender);
                    state.queued.push(path.to_path_buf());
                    if !state.batch_scheduled {
                        state.batch_scheduled = true;
                        let prober = self.clone();
                        // A task of its own: the batch starts even if this check is cancelled.
                        drop(tokio::spawn(async move {
                            // The other disk checks started in this tick join the batch.
                            tokio::task::yield_now().await;
                            prober.start_batch();
                        }));
                    }
                    receiver
                }
            }
        };
        let answer = receiver
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|seen| seen.clone());
        answer.unwrap_or_else(|| {
            Err(DiskError::Isolated {
                path: path.to_path_buf(),
                reason: "the measurement was dropped".into(),
            })
        })
    }

    fn start_batch(&self) {
        let batch = {
            let mut state = self.lock();
            state.batch_scheduled = false;
            std::mem::take(&mut state.queued)
        };
        if batch.is_empty() {
            return;
        }
        let prober = self.clone();
        // Detached: a local statvfs returns at once, and the runtime does not wait for it.
        drop(tokio::task::spawn_blocking(move || prober.measure(batch)));
    }

    /// Sorts a batch into paths that may block (sent to one probe process) and local ones
    /// (measured here), and answers each.
    fn measure(&self, batch: Vec<PathBuf>) {
        let mounts = disk::read_mountinfo();
        let table = mounts.as_deref().unwrap_or_default();
        let mut local = Vec::new();
        let mut isolated = Vec::new();
        for path in batch {
            match disk::reach(&path, table) {
                Reach::Local(resolved) if !self.inner.isolate_every_path => {
                    local.push((path, resolved));
                }
                _ => isolated.push(path),
            }
        }
        if !isolated.is_empty() {
            self.start_probe_process(isolated);
        }
        for (path, resolved) in local {
            let resolved = resolved
                .ok_or_else(|| format!("the lookup of {} stops before its end", path.display()));
            let answer = disk::observe(&path, resolved, &mounts);
            self.answer(&path, answer);
        }
    }

    fn answer(&self, path: &Path, answer: Answer) {
        let sender = self.lock().in_flight.remove(path);
        if let Some(sender) = sender {
            // Kept even when no check waits any more: a later subscriber never comes, since
            // the path is no longer in flight.
            sender.send_replace(Some(answer));
        }
    }

    fn fail_all(&self, paths: &[PathBuf], reason: &str) {
        for path in paths {
            self.answer(
                path,
                Err(DiskError::Isolated {
                    path: path.clone(),
                    reason: reason.to_string(),
                }),
            );
        }
    }

    fn start_probe_process(&self, paths: Vec<PathBuf>) {
        let program = &self.inner.program;
        let spawned = Command::new(program)
            // What `ps` shows, rather than /proc/self/exe.
            .arg0("health_check")
            .arg(SUBCOMMAND)
            .args(&paths)
            // Closed only when this process exits: the probe process's cue to exit too.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                let reason = format!(
                    "cannot start the probe process {}: {}",
                    program.display(),
                    host_probe::error::plain_io(&err)
                );
                return self.fail_all(&paths, &reason);
            }
        };
        let output = child.stdout.take();
        let pid = child.id();
        {
            let mut state = self.lock();
            state.children.push(child);
            state.processes_started += 1;
        }
        let prober = self.clone();
        let for_reader = paths.clone();
        let reader = std::thread::Builder::new()
            .name("disk-probe-reader".into())
            .spawn(move || prober.read_answers(pid, output, &for_reader));
        if let Err(err) = reader {
            let child = {
                let mut state = self.lock();
                let at = state.children.iter().position(|child| child.id() == pid);
                at.map(|at| state.children.swap_remove(at))
            };
            // Dropping it closes its standard input: it exits once it can. Never waited for.
            drop(child);
            self.fail_all(
                &paths,
                &format!("cannot read the probe process's answers: {err}"),
            );
        }
    }

    /// Reads the probe process's lines until it exits; paths it did not answer fail.
    fn read_answers(&self, pid: u32, output: Option<ChildStdout>, paths: &[PathBuf]) {
        let mut answered = vec![false; paths.len()];
        for line in output
            .into_iter()
            .flat_map(|out| BufReader::new(out).lines())
        {
            let Ok(line) = line else { break };
            let Ok(Line { index, answer }) = serde_json::from_str::<Line>(&line) else {
                continue;
            };
            if let (Some(path), Some(done)) = (paths.get(index), answered.get_mut(index)) {
                *done = true;
                self.answer(path, answer.into_answer(path));
            }
        }
        // End of output: the process has exited, so waiting for it takes no time.
        let child = {
            let mut state = self.lock();
            let at = state.children.iter().position(|child| child.id() == pid);
            at.map(|at| state.children.swap_remove(at))
        };
        let status = child
            .and_then(|mut child| child.wait().ok())
            .map_or_else(|| "status unknown".to_string(), |status| status.to_string());
        let unanswered: Vec<PathBuf> = paths
            .iter()
            .zip(&answered)
            .filter(|(_, done)| !**done)
            .map(|(path, _)| path.clone())
            .collect();
        self.fail_all(
            &unanswered,
            &format!("the probe process ended without an answer ({status})"),
        );
    }

    /// How many probe processes this prober has started.
    pub fn processes_started(&self) -> usize {
        self.lock().processes_started
    }
}
