//! The `containers` entries, `containers_all_healthy` and `docker_host`.

use crate::args::check_params;
use ansible_module::types::Shorthand;
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
/// `containers_all_healthy`: every running container is healthy or has no healthcheck.
pub struct AllHealthyParams {}
}

impl Default for AllHealthyParams {
    fn default() -> Self {
        Self {
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
