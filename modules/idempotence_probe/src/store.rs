//! The snapshot file: JSON Lines, streamed in and out so that memory stays flat.
//!
//! ```text
//! {"format":"idempotence_probe.snapshot","version":1,"name":...,"watch":{...}}   header
//! {"section":"path","path":"/etc","type":"dir","mode":493,...}                     walk order
//! {"section":"unit","key":"ssh.service","state":{...}}                             sorted by key
//! {"section":"package"|"sysctl"|"user"|"group",...}
//! {"section":"end","records":N,"body_sha256":"..."}                                footer
//! ```
//!
//! The footer's SHA-256 covers every line between header and footer, so a truncated or edited
//! file is refused instead of being compared. Files are written through the contract's atomic
//! writer (temp file, fsync, rename) with mode 0600: they list what the host contains.

use crate::error::Error;
use host_probe::files::{hex, FileObservation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "idempotence_probe.snapshot";
pub const VERSION: u32 = 1;
pub const SUFFIX: &str = ".snapshot.jsonl";

/// What a snapshot watches; compare walks the same set again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchSet {
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub one_file_system: bool,
    pub systemd_units: Vec<String>,
    pub packages: Vec<String>,
    pub sysctl: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub watch: WatchSet,
}

/// A unit, package, sysctl key, user or group: its fields as strings, `None` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyed {
    pub key: String,
    pub state: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Path,
    Unit,
    Package,
    Sysctl,
    User,
    Group,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Path => "path",
            Section::Unit => "unit",
            Section::Package => "package",
            Section::Sysctl => "sysctl",
            Section::User => "user",
            Section::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Footer {
    pub records: u64,
    pub body_sha256: String,
}

/// One line after the header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "section", rename_all = "snake_case")]
pub enum Line {
    Path(FileObservation),
    Unit(Keyed),
    Package(Keyed),
    Sysctl(Keyed),
    User(Keyed),
    Group(Keyed),
    End(Footer),
}

/// The file of snapshot `name` in `dir`.
pub fn snapshot_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SUFFIX}"))
}

/// Writes lines, hashing the body as it goes, into any writer (the atomic writer's temp file,
/// or a byte counter in check mode).
pub struct SnapshotWriter<W: Write> {
    out: W,
    body: Sha256,
    records: u64,
    bytes: u64,
    line: Vec<u8>,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(mut out: W, header: &Header) -> std::io::Result<Self> {
        let mut line = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        line.push(b'\n');
        out.write_all(&line)?;
        Ok(SnapshotWriter {
            out,
            body: Sha256::new(),
            records: 0,
            bytes: line.len() as u64,
            line: Vec::with_capacity(512),
        })
    }

    pub fn write(&mut self, line: &Line) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        self.body.update(&self.line);
        self.out.write_all(&self.line)?;
        self.records += 1;
        self.bytes += self.line.len() as u64;
        Ok(())
    }

    /// Writes the footer and flushes; returns (records, bytes).
    pub fn finish(mut self) -> std::io::Result<(u64, u64)> {
        let footer = Line::End(Footer {
            records: self.records,
            body_sha256: hex(&self.body.clone().finalize()),
        });
        let mut line = serde_json::to_vec(&footer).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok((self.records, self.bytes + line.len() as u64))
    }
}

/// A writer that only counts, for check mode.
#[derive(Default)]
pub struct Counter;

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a snapshot line by line, checking order and the footer's hash.
pub struct SnapshotReader {
    path: PathBuf,
    lines: BufReader<std::fs::File>,
    pub header: Header,
    body: Sha256,
    records: u64,
    line_number: u64,
    buffer: Vec<u8>,
    peeked: Option<Line>,
    last_path: Option<PathBuf>,
    finished: bool,
}

impl SnapshotReader {
    /// Opens snapshot `name` in `dir` and reads its header.
    pub fn open(dir: &Path, name: &str) -> Result<Self, Error> {
        let path = snapshot_path(dir, name);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingSnapshot {
                    name: name.to_string(),
                    path,
                })
            }
            Err(source) => return Err(Error::ReadSnapshot { path, source }),
        };
        let mut lines = BufReader::with_capacity(256 * 1024, file);
        let mut buffer = Vec::new();
        let read = lines
            .read_until(b'\n', &mut buffer)
            .map_err(|source| Error::ReadSnapshot {
                path: path.clone(),
                source,
            })?;
        let foreign = |reason: String| Error::ForeignSnapshot {
            path: path.clone(),
            reason,
        };
        if read == 0 {
            return Err(foreign("the file is empty".into()));
        }
        let value: serde_json::Value = serde_json::from_slice(&buffer)
            .map_err(|_| foreign("its first line is not a JSON object".into()))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(foreign(format!(
                "its first line does not say format {FORMAT:?}"
            )));
        }
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(VERSION)) {
            return Err(foreign(format!(
                "it is format version {}, this module reads version {VERSION}",
                version.map_or_else(|| "(none)".to_string(), |v| v.to_string())
            )));
        }
        let header: Header =
            serde_json::from_value(value).map_err(|err| Error::CorruptSnapshot {
                path: path.clone(),
                reason: format!("header: {err}"),
            })?;
        if header.name != name {
            return Err(Error::CorruptSnapshot {
                path: path.clone(),
                reason: format!("it holds snapshot {:?}, not {name:?}", header.name),
            });
        }
        Ok(SnapshotReader {
            path,
            lines,
            header,
            body: Sha256::new(),
            records: 0,
            line_number: 1,
            buffer,
            peeked: None,
            last_path: None,
            finished: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::CorruptSnapshot {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn read_line(&mut self) -> Result<Option<Line>, Error> {
        if self.finished {
            return Ok(None);
        }
        self.buffer.clear();
        let read = self
            .lines
            .read_until(b'\n', &mut self.buffer)
            .map_err(|source| Error::ReadSnapshot {
                path: self.path.clone(),
                source,
            })?;
        self.line_number += 1;
        if read == 0 || self.buffer.last() != Some(&b'\n') {
            return Err(self.corrupt("it ends early (no end record): truncated"));
        }
        let line: Line = serde_json::from_slice(&self.buffer)
            .map_err(|err| self.corrupt(format!("line {}: {err}", self.line_number)))?;
        if let Line::End(footer) = &line {
            let digest = hex(&self.body.clone().finalize());
            if footer.records != self.records || footer.body_sha256 != digest {
                return Err(self.corrupt(
                    "its content does not match its end record's checksum: edited or damaged",
                ));
            }
            self.finished = true;
            return Ok(None);
        }
        self.body.update(&self.buffer);
        self.records += 1;
        if let Line::Path(observation) = &line {
            let path = observation.path_buf();
            if self.last_path.as_ref().is_some_and(|last| *last >= path) {
                return Err(self.corrupt(format!(
                    "line {}: path entries out of order",
                    self.line_number
                )));
            }
            self.last_path = Some(path);
        }
        Ok(Some(line))
    }

    pub fn peek(&mut self) -> Result<Option<&Line>, Error> {
        if self.peeked.is_none() {
            self.peeked = self.read_line()?;
        }
        Ok(self.peeked.as_ref())
    }

    pub fn next_line(&mut self) -> Result<Option<Line>, Error> {
        match self.peeked.take() {
            Some(line) => Ok(Some(line)),
            None => self.read_line(),
        }
    }

    /// The next path entry, if the path section has not ended.
    pub fn next_path(&mut self) -> Result<Option<FileObservation>, Error> {
        match self.peek()? {
            Some(Line::Path(_)) => match self.next_line()? {
                Some(Line::Path(observation)) => Ok(Some(observation)),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// The rest of the file (after the path entries), checked to the footer.
    pub fn rest(mut self) -> Result<BTreeMap<(Section, String), Keyed>, Error> {
        let mut keyed = BTreeMap::new();
        while let Some(line) = self.next_line()? {
            let (section, entry) = match line {
                Line::Path(_) => return Err(self.corrupt("a path entry after the path section")),
                Line::Unit(k) => (Section::Unit, k),
                Line::Package(k) => (Section::Package, k),
                Line::Sysctl(k) => (Section::Sysctl, k),
                Line::User(k) => (Section::User, k),
                Line::Group(k) => (Section::Group, k),
                Line::End(_) => break,
            };
            keyed.insert((section, entry.key.clone()), entry);
        }
        if !self.finished {
            return Err(self.corrupt("it ends early (no end record): truncated"));
        }
        Ok(keyed)
    }
}

/// The line of a keyed entry; `None` for [`Section::Path`], whose entries are not keyed.
pub fn keyed_line(section: Section, keyed: Keyed) -> Option<Line> {
    match section {
        Section::Path => None,
        Section::Unit => Some(Line::Unit(keyed)),
        Section::Package => Some(Line::Package(keyed)),
        Section::Sysctl => Some(Line::Sysctl(keyed)),
        Section::User => Some(Line::User(keyed)),
        Section::Group => Some(Line::Group(keyed)),
    }
}
