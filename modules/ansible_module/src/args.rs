//! Reading the args file Ansible writes, and turning it into typed parameters.

use crate::Error;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

/// The task settings Ansible passes as `_ansible_*` keys. Unknown ones are ignored: the set
/// changes between Ansible versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `--check`: report what would change, change nothing.
    pub check_mode: bool,
    /// `--diff`: include `diff` in the result.
    pub diff: bool,
    /// The task has `no_log: true`.
    pub no_log: bool,
    /// The number of `-v`.
    pub verbosity: u8,
    /// The controller's Ansible version, when it said.
    pub ansible_version: Option<String>,
    /// The remote temp directory Ansible made for this task, when it said.
    pub tmpdir: Option<String>,
}

/// The largest arguments file a module reads. Ansible's own limit is the controller's memory;
/// a task that passes more than this is better served by a file path.
pub const MAX_ARGS_FILE_BYTES: u64 = 16 << 20;

/// Reads `path` as a JSON value, with an error that says which step failed. A file larger
/// than [`MAX_ARGS_FILE_BYTES`] is refused before it is read.
pub fn read_args_file(path: &Path) -> Result<Value, Error> {
    let read_error = |source| Error::ReadArgs {
        path: path.to_path_buf(),
        source,
    };
    let size = regular_file_metadata(path).map_err(read_error)?.len();
    if size > MAX_ARGS_FILE_BYTES {
        return Err(Error::ArgsTooLarge {
            path: path.to_path_buf(),
            size,
            max: MAX_ARGS_FILE_BYTES,
        });
    }
    // Bounded even if the file grows between the size check and the read.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_ARGS_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_ARGS_FILE_BYTES {
        return Err(Error::ArgsTooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max: MAX_ARGS_FILE_BYTES,
        });
    }
    serde_json::from_slice(&bytes).map_err(|source| Error::ArgsNotJson {
        path: path.to_path_buf(),
        source,
    })
}

/// The metadata of `path` when it is a regular file; otherwise an `InvalidInput` error that
/// names what it is (`it is a FIFO, not a regular file`). A FIFO, a device such as /dev/zero or
/// a directory has no size to check against a cap: reading one would block forever or never
/// end, so a module reads only a regular file from a path it was given (the arguments file,
/// and file parameters such as a baseline).
pub fn regular_file_metadata(path: &Path) -> std::io::Result<std::fs::Metadata> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        let kind = file_kind(&metadata.file_type());
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ));
    }
    Ok(metadata)
}

/// Reads `path` when it is a regular file of at most `max_bytes` (refused by its size before
/// it is read, and bounded even if it grows meanwhile), with errors that say what it is.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let too_large = |size: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is larger than {max_bytes} bytes ({size} bytes)"),
        )
    };
    let size = regular_file_metadata(path)?.len();
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::open(path)?
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Names a file type in words, for the error about an arguments file that is not a file.
fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Splits the `_ansible_*` keys off the task's parameters.
pub fn split_context(raw: Value) -> Result<(Context, Map<String, Value>), Error> {
    let object = match raw {
        Value::Object(object) => object,
        other => {
            return Err(Error::ArgsNotObject {
                found: json_type_name(&other),
            })
        }
    };
    let mut ctx = Context::default();
    let mut params = Map::new();
    for (key, value) in object {
        let Some(setting) = key.strip_prefix("_ansible_") else {
            params.insert(key, value);
            continue;
        };
        match setting {
            "check_mode" => ctx.check_mode = context_bool(&key, &value)?,
            "diff" => ctx.diff = context_bool(&key, &value)?,
            "no_log" => ctx.no_log = context_bool(&key, &value)?,
            "verbosity" => {
                ctx.verbosity = match &value {
                    Value::Number(n) => n.as_u64().map(|v| v.min(u64::from(u8::MAX)) as u8),
                    Value::String(s) => s.trim().parse().ok(),
                    Value::Null => Some(0),
                    _ => None,
                }
                .ok_or_else(|| Error::InvalidContext {
                    name: key.clone(),
                    message: format!("expected an integer, got {}", json_type_name(&value)),
                })?
            }
            "version" => ctx.ansible_version = value.as_str().map(str::to_string),
            "tmpdir" => ctx.tmpdir = value.as_str().map(str::to_string),
            _ => {}
        }
    }
    Ok((ctx, params))
}

fn context_bool(key: &str, value: &Value) -> Result<bool, Error> {
    match value {
        Value::Null => Ok(false),
        other => crate::types::parse_bool_value(other).map_err(|message| Error::InvalidContext {
            name: key.to_string(),
            message,
        }),
    }
}

/// Deserializes the user parameters into `T`, with errors that name the parameter by its path
/// (`http[1].timeout`).
pub fn parse_params<T: DeserializeOwned>(
    params: Map<String, Value>,
    supported: &[&str],
) -> Result<T, Error> {
    // Checked here rather than left to serde so the message lists the module's own names in
    // the order a person reads them.
    let mut sorted: Vec<&str> = supported.to_vec();
    sorted.sort_unstable();
    for key in params.keys() {
        if !supported.contains(&key.as_str()) {
            return Err(Error::UnsupportedParameter {
                name: key.clone(),
                supported: sorted.join(", "),
            });
        }
    }
    let value = Value::Object(params);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        describe_error(&path, &message)
    })
}

/// Rewrites serde's wording into the module's: unknown fields become `unsupported parameter`,
/// missing fields `missing required parameter`, everything else names the parameter's path.
fn describe_error(path: &str, message: &str) -> Error {
    let parent = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let supported = tail
            .trim_start_matches(',')
            .trim()
            .trim_start_matches("expected one of")
            .trim_start_matches("expected")
            .replace("` or `", ", ")
            .replace('`', "")
            .trim()
            .to_string();
        let supported = if supported.starts_with("there are no fields") {
            "none".to_string()
        } else {
            supported
        };
        // serde_path_to_error's path already ends in the unknown key.
        return Error::UnsupportedParameter {
            name: if parent.ends_with(name) {
                parent.to_string()
            } else {
                join_path(parent, name)
            },
            supported,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return Error::MissingParameter {
            name: join_path(parent, name),
        };
    }
    Error::InvalidParameter {
        name: if parent.is_empty() {
            "(arguments)".to_string()
        } else {
            parent.to_string()
        },
        message: message.to_string(),
    }
}

fn join_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

pub use crate::types::json_type_name;
