//! The connection to the container engine over its unix socket: Docker, or Podman's
//! Docker-compatible socket. Made once per run and shared by every caller.

use bollard::errors::Error as BollardError;
use bollard::{ClientVersion, Docker};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Docker's standard socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Why the engine could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No connection: `reason` already names the socket.
    #[error("{0}")]
    Unreachable(String),
    #[error("container '{name}' not found")]
    NotFound { name: String, api_version: String },
    #[error("cannot inspect container '{name}': {}", describe(source))]
    Inspect {
        name: String,
        api_version: String,
        #[source]
        source: BollardError,
    },
    #[error("cannot list containers: {}", describe(source))]
    List {
        api_version: String,
        #[source]
        source: BollardError,
    },
    #[error("cannot inspect containers: {reason}")]
    InspectAll { api_version: String, reason: String },
}

impl EngineError {
    /// A word or two for a result's `observed` field.
    pub fn observed(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "engine unreachable",
            Self::NotFound { .. } => "not found",
            Self::Inspect { .. } | Self::List { .. } | Self::InspectAll { .. } => "no answer",
        }
    }

    /// The API version agreed with the engine, when a connection was made.
    pub fn api_version(&self) -> Option<&str> {
        match self {
            Self::Unreachable(_) => None,
            Self::NotFound { api_version, .. }
            | Self::Inspect { api_version, .. }
            | Self::List { api_version, .. }
            | Self::InspectAll { api_version, .. } => Some(api_version),
        }
    }
}

/// One engine connection for a run. The first caller to need it connects (and agrees on the
/// API version); the others wait for that and share the outcome, failure included, so an
/// unreachable engine is asked once, not once per container.
pub struct Engine {
    socket: String,
    request_timeout: Duration,
    client: OnceCell<Result<Docker, String>>,
}

impl Engine {
    /// `socket` is the unix socket's path. `longest_check_timeout` is the longest timeout of the
    /// callers: the client's own request timeout is set past it, so the caller's timeout is the
    /// one that fires ("timed out after 5s"), never a vaguer client error first.
    pub fn shared(socket: impl Into<String>, longest_check_timeout: Duration) -> Arc<Self> {
        let whole_seconds =
            longest_check_timeout.as_secs() + u64::from(longest_check_timeout.subsec_nanos() > 0);
        Arc::new(Self {
            socket: socket.into(),
            request_timeout: Duration::from_secs(whole_seconds + 1),
            client: OnceCell::new(),
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// The connected client, or why there is none (a message naming the socket).
    pub async fn client(&self) -> Result<&Docker, EngineError> {
        self.client
            .get_or_init(|| connect(&self.socket, self.request_timeout))
            .await
            .as_ref()
            .map_err(|message| EngineError::Unreachable(message.clone()))
    }
}

/// Connects and settles the API version with `negotiate_version` (`GET /version`), which
/// lowers the client's version to the engine's when the engine is older (Docker 20.10: 1.41).
/// bollard 0.21 sends its requests without the `/vX.Y` path prefix (its URL join drops it), so
/// every engine answers them at its own API version. Should a bollard release send the prefix,
/// an older engine refuses the newer version with a 400 naming the highest it supports
/// ("client version 1.53 is too new. Maximum supported API version is 1.41"): the client is
/// then rebuilt at that version.
async fn connect(socket: &str, request_timeout: Duration) -> Result<Docker, String> {
    let unreachable =
        |reason: String| format!("cannot reach the container engine at unix://{socket}: {reason}");
    let timeout_secs = request_timeout.as_secs();
    let at_version = |version: &ClientVersion| {
        Docker::connect_with_unix(socket, timeout_secs, version)
            .map_err(|err| unreachable(describe(&err)))
    };
    let docker = at_version(bollard::API_DEFAULT_VERSION)?;
    match docker.negotiate_version().await {
        Ok(docker) => Ok(docker),
        Err(BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        }) => match supported_version(&message) {
            Some(version) => at_version(&version),
            None => Err(unreachable(format!(
                "the engine refused the API version: {message}"
            ))),
        },
        Err(err) => Err(unreachable(describe(&err))),
    }
}

/// The API version an engine names when it refuses the client's: "... Maximum supported API
/// version is 1.41" (or "Minimum supported API version is 1.44, please upgrade ...").
pub fn supported_version(message: &str) -> Option<ClientVersion> {
    const MARKER: &str = "supported API version is ";
    let start = message.find(MARKER)? + MARKER.len();
    let version: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (major, minor) = version.trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// A person's reading of a bollard error: "no such socket", "connection refused", "permission
/// denied", the engine's own message for an error status.
pub fn describe(err: &BollardError) -> String {
    match err {
        BollardError::SocketNotFoundError(_) => {
            "no such socket (is dockerd or podman running? docker_host selects the socket)"
                .to_string()
        }
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => format!("the engine answered {status_code}: {}", message.trim()),
        BollardError::RequestTimeoutError => "no answer in time".to_string(),
        BollardError::JsonDataError { message, .. } => {
            format!("unexpected answer from the engine: {message}")
        }
        BollardError::APIVersionParseError {} => {
            "the engine reported an API version that cannot be read".to_string()
        }
        other => crate::error::innermost(other, Some("no such socket")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_supported_version() {
        let v = supported_version(
            "client version 1.53 is too new. Maximum supported API version is 1.41",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        let v = supported_version(
            "client version 1.41 is too old. Minimum supported API version is 1.44, please \
             upgrade your client to a newer version",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 44));
        assert!(supported_version("page not found").is_none());
        assert!(supported_version("Maximum supported API version is x").is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_socket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("{}/docker.sock", dir.path().display());
        let engine = Engine::shared(socket.clone(), Duration::from_millis(1500));
        assert_eq!(engine.request_timeout, Duration::from_secs(3));
        let err = engine.client().await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot reach the container engine at unix://{socket}: no such socket (is dockerd or \
                 podman running? docker_host selects the socket)"
            )
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dead_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        // Bound, then closed: the file stays and connecting is refused.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let socket = path.display().to_string();
        let engine = Engine::shared(socket.clone(), Duration::from_secs(1));
        let err = engine.client().await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("cannot reach the container engine at unix://{socket}: connection refused")
        );
    }
}
