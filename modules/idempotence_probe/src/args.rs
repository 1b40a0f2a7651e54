//! The module's parameters as a task writes them, and the checks serde cannot do.

use ansible_module::types::{boolean, Duration, List};
use ansible_module::Error as ParamError;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// Where snapshots go when the task does not say.
pub const DEFAULT_SNAPSHOT_DIR: &str = "/var/lib/idempotence_probe";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Snapshot,
    Compare,
}

/// What to do with drift that is only a moved mtime (or only a new inode with the same
/// content and mtime).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MtimePolicy {
    Fail,
    #[default]
    Warn,
    Ignore,
}

impl MtimePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MtimePolicy::Fail => "fail",
            MtimePolicy::Warn => "warn",
            MtimePolicy::Ignore => "ignore",
        }
    }
}

/// One deliberate exception: drift matching it is not counted but listed under `ignored`,
/// with its reason.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Only these drift kinds; all kinds when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Required: an ignore without a written reason is refused (see `validate_ignore`).
    pub reason: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub state: State,
    pub name: String,
    #[serde(default)]
    #[schemars(extend("default" = "/var/lib/idempotence_probe"))]
    pub snapshot_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "string_list")]
    pub paths: Option<Vec<String>>,
    #[serde(default, deserialize_with = "string_list")]
    pub exclude: Option<Vec<String>>,
    #[serde(default, deserialize_with = "ansible_module::types::optional_boolean")]
    #[schemars(extend("default" = true))]
    pub one_file_system: Option<bool>,
    #[serde(default)]
    pub systemd_units: Option<List<String>>,
    #[serde(default)]
    pub systemd_bus: Option<String>,
    #[serde(default)]
    pub packages: Option<List<String>>,
    #[serde(default)]
    pub sysctl: Option<List<String>>,
    #[serde(default)]
    pub users: Option<List<String>>,
    #[serde(default)]
    pub groups: Option<List<String>>,
    #[serde(default)]
    #[schemars(extend("default" = "warn"))]
    pub mtime: MtimePolicy,
    #[serde(default)]
    pub ignore: Option<Vec<IgnoreRule>>,
    #[serde(default, deserialize_with = "boolean")]
    pub fail_on_drift: bool,
    #[serde(default)]
    #[schemars(extend("default" = "10s"))]
    pub timeout: Option<Duration>,
}

/// A list of strings, or one string as a one-item list. Unlike [`List`], a string is not split
/// at commas: a path may contain one.
fn string_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => match serde_json::from_value::<OneOrMany>(value) {
            Ok(OneOrMany::One(one)) => Ok(Some(vec![one])),
            Ok(OneOrMany::Many(many)) => Ok(Some(many)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a list of strings or one string",
            )),
        },
    }
}

fn invalid(name: impl Into<String>, message: impl Into<String>) -> ParamError {
    ParamError::InvalidParameter {
        name: name.into(),
        message: message.into(),
    }
}

/// A snapshot name becomes a file name in `snapshot_dir`: letters, digits, `.`, `_`, `-`, not
/// starting with `.`, so it can never climb out of the directory or hide.
pub fn validate_name(name: &str) -> Result<(), ParamError> {
    if name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if name.len() > 128 {
        return Err(invalid("name", "must be at most 128 characters"));
    }
    if name.contains('/') || name.contains("..") || name.starts_with('.') {
        return Err(invalid(
            "name",
            format!("{name:?} is not a plain file name: no '/', no '..', no leading '.'"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(
            "name",
            format!("{name:?} contains {bad:?}; use letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

/// A watched path or pattern: absolute, normalised (no trailing `/`, no `.` components), never
/// with `..` (whose meaning depends on symlinks).
pub fn normalize_watch_path(index: usize, raw: &str) -> Result<String, ParamError> {
    let name = format!("paths[{index}]");
    if !raw.starts_with('/') {
        return Err(invalid(name, format!("{raw:?} must be an absolute path")));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(invalid(
                    name,
                    format!("{raw:?} contains '..'; write the path without it"),
                ))
            }
            other => parts.push(other),
        }
    }
    if raw.contains('\0') {
        return Err(invalid(name, "contains a NUL byte"));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Checks the ignore rules: exactly one subject key each, and a written reason.
pub fn validate_ignore(rules: &[IgnoreRule]) -> Result<(), ParamError> {
    for (index, rule) in rules.iter().enumerate() {
        let subjects = [
            &rule.path,
            &rule.unit,
            &rule.package,
            &rule.sysctl,
            &rule.user,
            &rule.group,
        ]
        .iter()
        .filter(|s| s.is_some())
        .count();
        if subjects != 1 {
            return Err(invalid(
                format!("ignore[{index}]"),
                "give exactly one of path, unit, package, sysctl, user, group",
            ));
        }
        if rule.reason.trim().len() < 3 {
            return Err(invalid(
                format!("ignore[{index}].reason"),
                "every ignore needs a written reason (why this drift is expected)",
            ));
        }
        for kind in &rule.kinds {
            if !crate::compare::KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    format!("ignore[{index}].kinds"),
                    format!(
                        "unknown kind {kind:?}; known: {}",
                        crate::compare::KINDS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_snapshot_dir_are_refused() {
        for bad in ["../x", "a/b", "..", ".hidden", "", "a b", "x\0y"] {
            let err = validate_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("parameter 'name'"), "{bad:?}: {err}");
        }
        validate_name("run-1_before.v2").unwrap();
    }

    #[test]
    fn watch_paths_are_absolute_and_normalised() {
        assert_eq!(normalize_watch_path(0, "/etc//ssh/./").unwrap(), "/etc/ssh");
        assert_eq!(normalize_watch_path(0, "/").unwrap(), "/");
        let err = normalize_watch_path(2, "etc/ssh").unwrap_err().to_string();
        assert_eq!(
            err,
            "parameter 'paths[2]': \"etc/ssh\" must be an absolute path"
        );
        assert!(normalize_watch_path(0, "/etc/../root").is_err());
    }

    #[test]
    fn ignore_rules_need_one_subject_and_a_reason() {
        let rule = |path: Option<&str>, unit: Option<&str>, reason: &str| IgnoreRule {
            path: path.map(str::to_string),
            unit: unit.map(str::to_string),
            package: None,
            sysctl: None,
            user: None,
            group: None,
            kinds: vec![],
            reason: reason.into(),
        };
        let err = validate_ignore(&[rule(Some("/var/log/**"), None, "")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("parameter 'ignore[0].reason'"), "{err}");
        let err = validate_ignore(&[rule(Some("/x"), Some("a.service"), "because")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("parameter 'ignore[0]'"), "{err}");
        validate_ignore(&[rule(Some("/var/log/**"), None, "logs grow")]).unwrap();
    }
}
