//! This process: the child processes it runs, which never outlive the caller's patience, and
//! its open-files limit.
//!
//! A probe that runs a tool (`nvidia-smi`) is cancelled by dropping its future when its check
//! times out. [`output`] runs the tool in a process group of its own, so that dropping the
//! future kills the whole group (the tool and anything it forked) at once; the killed child is
//! kept until [`reap_abandoned`] waits for it, so that no zombie is left behind while the module
//! runs, and none is handed to an init that may never reap it.
//!
//! [`raise_open_files_limit`] lifts the soft `RLIMIT_NOFILE` to the hard one, so that a run with
//! many network checks is limited by what the host allows, not by a shell's default of 1024.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mut command = tokio::process::Command::new("nvidia-smi");
//! command.arg("-L");
//! let listed = tokio::time::timeout(
//!     std::time::Duration::from_secs(5),
//!     host_probe::process::output(command),
//! )
//! .await; // on timeout the group is already killed
//! host_probe::process::reap_abandoned(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// The open-files limit after trying to raise the soft limit to the hard one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    /// The soft limit now in force: what this process may open.
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the limit in force. `None`
/// where the limit cannot be read at all; a refused raise keeps the old soft limit.
pub fn raise_open_files_limit() -> Option<OpenFilesLimit> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // An unlimited hard limit is still capped by the kernel's fs.nr_open.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1 << 20);
    let wanted = hard.min(nr_open);
    if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return Some(OpenFilesLimit { soft: wanted, hard });
    }
    Some(OpenFilesLimit { soft, hard })
}

/// Children killed because their caller gave up on them, not yet waited for.
static ABANDONED: Mutex<Vec<Child>> = Mutex::new(Vec::new());
/// Process groups of the children running now, for [`kill_running`].
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Runs `command` to completion with stdin closed and stdout/stderr captured, like
/// [`std::process::Command::output`]. Dropping the returned future before it completes (a
/// timeout) kills the child's whole process group with `SIGKILL` and leaves the child for
/// [`reap_abandoned`].
pub async fn output(mut command: Command) -> std::io::Result<Output> {
    command
        .process_group(0)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // The child leads its own group: its pid is the group id, even after it was reaped.
    let group = child.id().and_then(|pid| i32::try_from(pid).ok());
    if let (Some(group), Ok(mut running)) = (group, RUNNING.lock()) {
        running.push(group);
    }
    let mut guard = Guard {
        group,
        child: Some(child),
    };
    let (status, stdout, stderr) =
        tokio::try_join!(guard.wait(), read_all(stdout), read_all(stderr))?;
    guard.finished();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Kills the process group of every child still running (`SIGKILL`), without waiting: for a
/// module that is about to exit on a signal, so that no tool it started runs on after it.
pub fn kill_running() {
    // try_lock: the signal path must not wait for a lock held by the thread it interrupts.
    if let Ok(running) = RUNNING.try_lock() {
        for &group in running.iter() {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
    }
}

/// Waits up to `grace` for every child killed so far and returns how many are still not
/// reaped (a process stuck in the kernel, in state D, dies only when the kernel lets it).
pub async fn reap_abandoned(grace: Duration) -> usize {
    let children = match ABANDONED.lock() {
        Ok(mut abandoned) => std::mem::take(&mut *abandoned),
        Err(_) => return 0,
    };
    let until = tokio::time::Instant::now() + grace;
    let mut unreaped = Vec::new();
    for mut child in children {
        if tokio::time::timeout_at(until, child.wait()).await.is_err() {
            unreaped.push(child);
        }
    }
    let left = unreaped.len();
    if let Ok(mut abandoned) = ABANDONED.lock() {
        abandoned.extend(unreaped);
    }
    left
}

async fn read_all<R: AsyncRead + Unpin>(pipe: Option<R>) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes).await?;
    }
    Ok(bytes)
}

/// Kills the child's process group when dropped before [`Guard::finished`].
struct Guard {
    group: Option<i32>,
    child: Option<Child>,
}

impl Guard {
    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => Err(std::io::Error::other("the child was already given up")),
        }
    }

    fn finished(&mut self) {
        self.child = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let (Some(group), Ok(mut running)) = (self.group, RUNNING.lock()) {
            running.retain(|&g| g != group);
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(group) = self.group {
            // ESRCH: the group is gone already. Nothing else can fail for our own child.
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
        let _ = child.start_kill();
        if let Ok(mut abandoned) = ABANDONED.lock() {
            abandoned.push(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn alive(pid: i32) -> bool {
        // A zombie still has a /proc entry: state Z counts as not reaped.
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let limit = raise_open_files_limit().unwrap();
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(limit.soft, limit.hard.min(nr_open));
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, hard), (limit.soft, limit.hard));
    }

    #[test]
    fn a_finished_command_gives_its_output_and_status() {
        let out = runtime()
            .block_on(async {
                let mut command = Command::new("sh");
                command.args(["-c", "echo out; echo err >&2; exit 3"]);
                output(command).await
            })
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_command_given_up_on_is_killed_with_its_children_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "echo $$ > {0}.tmp; sleep 300 & echo $! >> {0}.tmp; mv {0}.tmp {0}; wait",
            pids.display()
        );
        runtime().block_on(async {
            let mut command = Command::new("sh");
            command.args(["-c", &script]);
            // Given up on once its script has forked and listed both pids (however long a
            // loaded machine takes to get there): dropping the future is what a timeout does.
            let mut run = Box::pin(output(command));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let finished = loop {
                tokio::select! {
                    result = &mut run => break Some(result.is_ok()),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if pids.exists() || std::time::Instant::now() > deadline {
                            break None;
                        }
                    }
                }
            };
            assert_eq!(finished, None, "the command should still be running");
            drop(run);
            let listed = std::fs::read_to_string(&pids).unwrap();
            let pids: Vec<i32> = listed.lines().map(|l| l.parse().unwrap()).collect();
            assert_eq!(pids.len(), 2, "{listed}");
            assert_eq!(reap_abandoned(Duration::from_secs(5)).await, 0);
            // The forked sleep is not our child: init or a subreaper reaps it, once dead.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while pids.iter().any(|&p| alive(p) && !zombie(p))
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(!alive(pids[0]), "the shell was not reaped");
            assert!(
                !alive(pids[1]) || zombie(pids[1]),
                "the forked sleep still runs"
            );
        });
    }

    fn zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }
}
