//! Writing artifacts so that a reader sees the old file or the new one, never half of one.
//!
//! Everything written here is masked like stdout ([`crate::secrets`]): an artifact never holds
//! a secret the result would hide. Temp files are registered while they exist, so that a
//! module interrupted by a signal or a panic removes them before it exits
//! ([`remove_temp_files`]): both paths exit the process without running destructors.

use crate::Error;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` through a temp file in the same directory: write, set `mode`,
/// fsync, rename over `path`, fsync the directory. On any error the temp file is removed and
/// `path` is untouched. Missing parent directories are an error, not created.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let masked = crate::secrets::mask_bytes(contents);
    replace_through_temp(path, mode, |mut file| {
        file.write_all(&masked)?;
        Ok((file, ()))
    })
}

/// Like [`write`], for contents made piece by piece and too large to hold in memory (a snapshot
/// of a big tree): `fill` writes into a buffered writer over the temp file. When `fill` fails,
/// the temp file is removed and `path` is untouched; its error is returned as a write error.
pub fn write_with<T>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
) -> Result<T, Error> {
    replace_through_temp(path, mode, |file| {
        let mut out = MaskingWriter {
            inner: std::io::BufWriter::with_capacity(256 * 1024, file),
            pending: Vec::new(),
        };
        let value = fill(&mut out)?;
        out.finish()?;
        let file = out.inner.into_inner().map_err(|err| err.into_error())?;
        Ok((file, value))
    })
}

/// The steps [`write`] and [`write_with`] share: a temp file beside `path`, filled by `fill`
/// (which hands the file back), then mode, fsync, rename over `path` and an fsync of the
/// directory. On any error the temp file is removed and `path` is untouched.
fn replace_through_temp<T>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(File) -> std::io::Result<(File, T)>,
) -> Result<T, Error> {
    let wrap = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| wrap(std::io::Error::other("path has no file name")))?;
    let (file, temp) = create_temp(&dir, &file_name.to_string_lossy()).map_err(wrap)?;
    let guard = TempGuard(Some(temp));
    let result = (|| {
        let (file, value) = fill(file)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        drop(file);
        if let Some(temp) = &guard.0 {
            fs::rename(temp, path)?;
        }
        Ok(value)
    })();
    let value = result.map_err(wrap)?;
    guard.disarm();
    // The rename is durable only once the directory entry is; a failure here leaves the new
    // file in place, so it is not reported as a failed write.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(value)
}

/// Masks what passes through, a line at a time (a secret never spans lines of an artifact).
struct MaskingWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> MaskingWriter<W> {
    fn finish(&mut self) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.pending);
        self.inner.write_all(&crate::secrets::mask_bytes(&rest))?;
        self.inner.flush()
    }
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') {
            let rest = self.pending.split_off(last_newline + 1);
            let lines = std::mem::replace(&mut self.pending, rest);
            self.inner.write_all(&crate::secrets::mask_bytes(&lines))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn temp_files() -> &'static std::sync::Mutex<Vec<PathBuf>> {
    static TEMPS: std::sync::OnceLock<std::sync::Mutex<Vec<PathBuf>>> = std::sync::OnceLock::new();
    TEMPS.get_or_init(Default::default)
}

fn track(temp: &Path, live: bool) {
    let mut temps = match temp_files().lock() {
        Ok(temps) => temps,
        Err(poisoned) => poisoned.into_inner(),
    };
    if live {
        temps.push(temp.to_path_buf());
    } else {
        temps.retain(|t| t != temp);
    }
}

/// Removes every temp file of a write still in progress (for a process about to exit on a
/// signal); returns how many were removed.
pub fn remove_temp_files() -> usize {
    let temps = match temp_files().lock() {
        Ok(mut temps) => std::mem::take(&mut *temps),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    remove_all(&temps)
}

/// [`remove_temp_files`] for the panic hook, which exits the process without unwinding (the
/// release builds abort on panic, so no destructor runs): it never waits for the registry
/// longer than a moment, since the panicking thread may be the one holding it.
pub(crate) fn remove_temp_files_on_panic() -> usize {
    for _ in 0..100 {
        match temp_files().try_lock() {
            Ok(mut temps) => return remove_all(&std::mem::take(&mut *temps)),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                return remove_all(&std::mem::take(&mut *poisoned.into_inner()))
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
    0
}

fn remove_all(temps: &[PathBuf]) -> usize {
    temps
        .iter()
        .filter(|temp| fs::remove_file(temp).is_ok())
        .count()
}

fn create_temp(dir: &Path, name: &str) -> std::io::Result<(File, PathBuf)> {
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last_err = None;
    for attempt in 0..16u32 {
        let temp = dir.join(format!(".{name}.{pid}.{nanos:x}{attempt}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => {
                track(&temp, true);
                return Ok((file, temp));
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("cannot create a temp file")))
}

/// Removes the temp file unless the rename happened.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        if let Some(temp) = self.0.take() {
            track(&temp, false);
        }
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(temp) = self.0.take() {
            let _ = fs::remove_file(&temp);
            track(&temp, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_file_with_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        fs::write(&path, b"old").unwrap();
        write(&path, b"{\"new\": true}", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"new\": true}");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
    }

    #[test]
    fn streamed_write_replaces_file_and_a_failed_fill_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.jsonl");
        let lines = write_with(&path, 0o600, |out| {
            for i in 0..3 {
                writeln!(out, "line {i}")?;
            }
            Ok(3)
        })
        .unwrap();
        assert_eq!(lines, 3);
        assert_eq!(fs::read(&path).unwrap(), b"line 0\nline 1\nline 2\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let err = write_with(&path, 0o600, |out| {
            out.write_all(b"half")?;
            Err::<(), _>(std::io::Error::other("source went away"))
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("source went away"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"line 0\nline 1\nline 2\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/out.json");
        let err = write(&path, b"x", 0o644).unwrap_err().to_string();
        assert!(err.contains("out.json"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn failed_rename_keeps_old_content_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the target's place makes the rename fail after the temp is written.
        let path = dir.path().join("busy");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"keep").unwrap();
        assert!(write(&path, b"new", 0o644).is_err());
        assert!(path.is_dir());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("busy")]);
    }
}
