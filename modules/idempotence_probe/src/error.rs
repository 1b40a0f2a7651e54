//! Everything that stops a snapshot or a compare, each with the context a person needs.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, worded by the contract crate (`parameter 'name': ...`).
    #[error(transparent)]
    Parameter(#[from] ansible_module::Error),
    #[error(
        "snapshot '{name}' not found (no {path}): take it first with state=snapshot and the same \
         name and snapshot_dir"
    )]
    MissingSnapshot { name: String, path: PathBuf },
    #[error("cannot read snapshot file {path}: {source}")]
    ReadSnapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a snapshot of this module: {reason}")]
    ForeignSnapshot { path: PathBuf, reason: String },
    #[error("snapshot file {path} is corrupt: {reason}; take the snapshot again")]
    CorruptSnapshot { path: PathBuf, reason: String },
    #[error("cannot create snapshot_dir {path}: {source}")]
    SnapshotDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write snapshot {path}: {source}")]
    WriteSnapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A source of host state that could not be read at all (the dpkg database, passwd).
    #[error("cannot read {what} ({path}): {reason}")]
    Source {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("systemd_units: {0}")]
    Systemd(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
