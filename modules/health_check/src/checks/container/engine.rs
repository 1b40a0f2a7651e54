//! The connection to the container engine over its unix socket: Docker, or Podman's
//! Docker-compatible socket. Made once per run and shared by every container check.

use crate::args::DockerHost;
use bollard::errors::Error as BollardError;
use bollard::{ClientVersion, Docker};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The socket to use without a `docker_host` parameter: `DOCKER_HOST` when it names a unix
/// socket (a `tcp://` or `ssh://` one is not ours to use), else Docker's standard
/// /var/run/docker.sock.
pub fn default_docker_host(docker_host_env: Option<&str>) -> DockerHost {
    docker_host_env
        .filter(|value| value.trim_start().starts_with("unix://"))
        .and_then(|value| value.parse().ok())
        .unwrap_or_default()
}

/// One engine connection for a run's container checks. The first check to need it connects
/// (and agrees on the API version); the others wait for that and share the outcome, failure
/// included, so an unreachable engine is asked once, not once per container.
pub struct Engine {
    socket: DockerHost,
    request_timeout: Duration,
    client: OnceCell<Result<Docker, String>>,
}

impl Engine {
    /// `longest_check_timeout` is the longest timeout of the checks that use the engine: the
    /// client's own request timeout is set past it, so the runner's per-check timeout is the one
    /// that fires ("timed out after 5s"), never a vaguer client error first.
    pub fn shared(socket: DockerHost, longest_check_timeout: Duration) -> Arc<Self> {
        let whole_seconds =
            longest_check_timeout.as_secs() + u64::from(longest_check_timeout.subsec_nanos() > 0);
        Arc::new(Self {
            socket,
            request_timeout: Duration::from_secs(whole_seconds + 1),
            client: OnceCell::new(),
        })
    }

    pub fn socket(&self) -> &DockerHost {
        &self.socket
    }

    /// The connected client, or why there is none (a message naming the socket).
    pub async fn client(&self) -> Result<&Docker, String> {
        self.client
            .get_or_init(|| connect(&self.socket, self.request_timeout))
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Connects and settles the API version with `negotiate_version` (`GET /version`), which
/// lowers the client's version to the engine's when the engine is older (Docker 20.10: 1.41).
/// bollard 0.21 sends its requests without the `/vX.Y` path prefix (its URL join drops it), so
/// every engine answers them at its own API version. Should a bollard release send the prefix,
/// an older engine refuses the newer version with a 400 naming the highest it supports
/// ("client version 1.53 is too new. Maximum supported API version is 1.41"): the client is
/// then rebuilt at that version.
async fn connect(socket: &DockerHost, request_timeout: Duration) -> Result<Docker, String> {
    let unreachable =
        |reason: String| format!("cannot reach the container engine at {socket}: {reason}");
    let timeout_secs = request_timeout.as_secs();
    let at_version = |version: &ClientVersion| {
        Docker::connect_with_unix(socket.path(), timeout_secs, version)
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
        other => innermost(other),
    }
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound => "no such socket".to_string(),
        Some(io) => crate::checks::tcp::io_reason(io),
        None => current.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_socket_follows_a_unix_docker_host_only() {
        let path = |env: Option<&str>| default_docker_host(env).path().to_string();
        assert_eq!(path(None), "/var/run/docker.sock");
        assert_eq!(
            path(Some("unix:///run/user/1000/podman/podman.sock")),
            "/run/user/1000/podman/podman.sock"
        );
        assert_eq!(path(Some("tcp://10.0.0.1:2375")), "/var/run/docker.sock");
        assert_eq!(path(Some("/plain/path.sock")), "/var/run/docker.sock");
        assert_eq!(path(Some("unix://relative.sock")), "/var/run/docker.sock");
    }

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
        let socket: DockerHost = format!("{}/docker.sock", dir.path().display())
            .parse()
            .unwrap();
        let engine = Engine::shared(socket.clone(), Duration::from_millis(1500));
        assert_eq!(engine.request_timeout, Duration::from_secs(3));
        let err = engine.client().await.err().unwrap();
        assert_eq!(
            err,
            format!(
                "cannot reach the container engine at {socket}: no such socket (is dockerd or \
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
        let socket: DockerHost = path.display().to_string().parse().unwrap();
        let engine = Engine::shared(socket.clone(), Duration::from_secs(1));
        let err = engine.client().await.err().unwrap();
        assert_eq!(
            err,
            format!("cannot reach the container engine at {socket}: connection refused")
        );
    }
}
