//! The `containers` entries, `containers_all_healthy` and `docker_host`.

use crate::args::check_params;
use crate::checks::flapping::{FlapPolicy, DEFAULT_FLAP_WINDOW};
use ansible_module::types::{Duration, Shorthand};
use serde::Deserialize;
use std::fmt;

check_params! {
/// One container, by name or ID: its state, its healthcheck and how often it restarted.
pub struct ContainerParams {
    pub container: ContainerName,
    #[serde(default)]
    pub state: ContainerState,
    #[serde(default)]
    pub health: HealthWanted,
    #[serde(default, deserialize_with = "ansible_module::types::boolean")]
    pub require_healthcheck: bool,
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    pub max_restarts: Option<u64>,
    /// A restart loop fails the check (`fail`), only warns (`warn`) or is not judged (`ignore`).
    #[serde(default)]
    pub flapping: FlapPolicy,
    /// A container that restarted by itself and has been up for less than this is flapping.
    #[serde(default)]
    pub flap_window: Option<Duration>,
    /// The exit codes a container in state `exited` or `dead` may have; `[0]` when not given.
    #[serde(default)]
    pub exit_code: Option<ExitCodes>,
}
}

impl ContainerParams {
    /// `flap_window`, or its default.
    pub fn flap_window(&self) -> std::time::Duration {
        self.flap_window.map_or(DEFAULT_FLAP_WINDOW, Duration::get)
    }

    /// The accepted exit codes of a stopped container: `exit_code`, or 0.
    pub fn exit_codes(&self) -> &[i64] {
        self.exit_code.as_ref().map_or(&[0], |codes| &codes.0)
    }
}

/// Checks the combinations serde cannot; the error names the parameter (`containers[2]`).
pub fn validate(spec: &ContainerParams, parameter: &str) -> Result<(), ansible_module::Error> {
    if spec.exit_code.is_some()
        && !matches!(spec.state, ContainerState::Exited | ContainerState::Dead)
    {
        return Err(ansible_module::Error::InvalidParameter {
            name: format!("{parameter}.exit_code"),
            message: format!(
                "needs state exited or dead, not {} (only a stopped container has an exit code)",
                spec.state.as_str()
            ),
        });
    }
    Ok(())
}

/// One exit code or several: `0`, `[0, 143]`, `"0, 143"`. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodes(pub Vec<i64>);

impl<'de> Deserialize<'de> for ExitCodes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        fn one(value: &Value) -> Result<i64, String> {
            match value {
                Value::Number(n) => n
                    .as_i64()
                    .ok_or_else(|| format!("expected a whole number, got {n}")),
                Value::String(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected a whole number, got {s:?}")),
                other => Err(format!(
                    "expected a whole number, got {}",
                    ansible_module::types::json_type_name(other)
                )),
            }
        }
        let codes = match Value::deserialize(deserializer)? {
            Value::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>(),
            Value::String(s) if s.contains(',') => s
                .split(',')
                .map(|part| one(&Value::String(part.to_string())))
                .collect(),
            value => one(&value).map(|code| vec![code]),
        }
        .map_err(serde::de::Error::custom)?;
        if codes.is_empty() {
            return Err(serde::de::Error::custom(
                "expected at least one exit code (for example 0 or [0, 143])",
            ));
        }
        Ok(Self(codes))
    }
}

impl schemars::JsonSchema for ExitCodes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExitCodes".into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// A list of integers; one integer or a comma-separated string is accepted too.
    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["array", "integer", "string"],
            "x-ansible-type": "list",
            "items": {"type": "integer"},
        })
    }
}

impl Shorthand for ContainerParams {
    const FIELD: &'static str = "container";
}

/// A container name or ID as Docker accepts it (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, optionally with
/// the leading `/` that `docker inspect` shows), kept without the slash. Checked when the
/// arguments are read, so that it is safe in an API path and a typo is a parameter error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerName(String);

impl ContainerName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ContainerName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let name = text.trim();
        let name = name.strip_prefix('/').unwrap_or(name);
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if valid {
            Ok(Self(name.to_string()))
        } else {
            Err(format!(
                "invalid container name {text:?} (expected a container name or ID: a letter or \
                 digit, then letters, digits, '_', '.' or '-')"
            ))
        }
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

ansible_module::deserialize_from_str!(ContainerName);

ansible_module::keyword_enum! {
    /// Which `State.Status` a container must be in; `running` by default.
    pub enum ContainerState("container state") {
        Created => "created",
        #[default]
        Running => "running",
        Paused => "paused",
        Restarting => "restarting",
        Removing => "removing",
        Exited => "exited",
        Dead => "dead",
    }
}

impl ContainerState {
    /// The engine's own value for this state.
    pub fn status(self) -> bollard::models::ContainerStateStatusEnum {
        use bollard::models::ContainerStateStatusEnum as Engine;
        match self {
            Self::Created => Engine::CREATED,
            Self::Running => Engine::RUNNING,
            Self::Paused => Engine::PAUSED,
            Self::Restarting => Engine::RESTARTING,
            Self::Removing => Engine::REMOVING,
            Self::Exited => Engine::EXITED,
            Self::Dead => Engine::DEAD,
        }
    }
}

ansible_module::keyword_enum! {
    /// What a container's healthcheck must say: `healthy` (the default), or `any` to accept any
    /// health status (the state and restarts are still checked).
    pub enum HealthWanted("health") {
        #[default]
        Healthy => "healthy",
        Any => "any",
    }
}

check_params! {
/// `containers_all_healthy`: every live container (running, restarting, paused or dead) is
/// running, not in a restart loop, not OOM-looping, and healthy or without a healthcheck.
pub struct AllHealthyParams {
    /// A restart loop fails the check (`fail`), only warns (`warn`) or is not judged (`ignore`).
    #[serde(default)]
    pub flapping: FlapPolicy,
    /// A container that restarted by itself and has been up for less than this is flapping.
    #[serde(default)]
    pub flap_window: Option<Duration>,
}
}

impl AllHealthyParams {
    /// `flap_window`, or its default.
    pub fn flap_window(&self) -> std::time::Duration {
        self.flap_window.map_or(DEFAULT_FLAP_WINDOW, Duration::get)
    }
}

impl Default for AllHealthyParams {
    fn default() -> Self {
        Self {
            flapping: FlapPolicy::default(),
            flap_window: None,
            name: None,
            mandatory: true,
            timeout: None,
        }
    }
}

/// The container engine's API socket: `unix:///var/run/docker.sock` or the plain path
/// (Podman's Docker-compatible socket works too). Only unix sockets: no TCP, no TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHost(String);

impl DockerHost {
    /// The socket's path.
    pub fn path(&self) -> &str {
        &self.0
    }
}

impl Default for DockerHost {
    /// Docker's standard socket.
    fn default() -> Self {
        Self("/var/run/docker.sock".to_string())
    }
}

impl std::str::FromStr for DockerHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let path = match trimmed.strip_prefix("unix://") {
            Some(path) => path,
            None if trimmed.contains("://") => {
                return Err(format!(
                    "unsupported engine address {text:?}: only unix sockets are supported \
                     (expected unix:///path/to/docker.sock or /path/to/docker.sock)"
                ))
            }
            None => trimmed,
        };
        if !path.starts_with('/') {
            return Err(format!(
                "invalid engine socket {text:?}: expected an absolute path \
                 (unix:///path/to/docker.sock or /path/to/docker.sock)"
            ));
        }
        Ok(Self(path.to_string()))
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix://{}", self.0)
    }
}

ansible_module::deserialize_from_str!(DockerHost);

/// The socket to use without a `docker_host` parameter: `DOCKER_HOST` when it names a unix
/// socket (a `tcp://` or `ssh://` one is not ours to use), else Docker's standard
/// /var/run/docker.sock.
pub fn default_docker_host(docker_host_env: Option<&str>) -> DockerHost {
    docker_host_env
        .filter(|value| value.trim_start().starts_with("unix://"))
        .and_then(|value| value.parse().ok())
        .unwrap_or_default()
}
ansible_module::string_schema!(ContainerName, DockerHost);
