//! The contract's errors: everything that can go wrong before, around or (as [`Error::Failed`])
//! inside a module's own work; each becomes a failed result whose `msg` is its `Display`.

use std::path::PathBuf;

/// Everything that can go wrong before or around a module's own work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read arguments file '{path}': {source}")]
    ReadArgs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "arguments file '{path}' is {size} bytes, more than the {max} bytes a module reads \
         (pass large data as a file path instead)"
    )]
    ArgsTooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("arguments file '{path}' is not valid JSON: {source}")]
    ArgsNotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("module arguments must be a JSON object, got {found}")]
    ArgsNotObject { found: &'static str },
    #[error("unsupported parameter '{name}'; supported: {supported}")]
    UnsupportedParameter { name: String, supported: String },
    #[error("missing required parameter '{name}'")]
    MissingParameter { name: String },
    #[error("parameter '{name}': {message}")]
    InvalidParameter { name: String, message: String },
    #[error("invalid internal parameter '{name}': {message}")]
    InvalidContext { name: String, message: String },
    /// A module's own failure, in its words.
    #[error("{0}")]
    Failed(String),
    #[error("cannot write '{path}': {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
