//! [`ProbeError`], the union of every backend's error, and the plain-words helpers the
//! backends share.

/// Why a reading could not be taken, from any backend.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Disk(#[from] crate::disk::DiskError),
    #[error(transparent)]
    Proc(#[from] crate::memory::ProcError),
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error(transparent)]
    Systemd(#[from] crate::systemd::SystemdError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// A probe outside this crate (a network client) that could not be set up.
    #[error("{message}")]
    Setup {
        observed: &'static str,
        message: String,
    },
}

impl ProbeError {
    /// A word or two for a result's `observed` field: what the check saw instead of a reading.
    pub fn observed(&self) -> &'static str {
        match self {
            Self::Disk(_) | Self::Proc(_) => "unreadable",
            Self::Gpu(_) => "no reading",
            Self::Systemd(err) => err.observed(),
            Self::Engine(err) => err.observed(),
            Self::Setup { observed, .. } => observed,
        }
    }
}

/// The short reason a person reads: "connection refused", not "Connection refused (os error
/// 111)".
pub fn io_reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut => "timed out".into(),
        ErrorKind::HostUnreachable => "host unreachable".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string(),
    }
}

/// The innermost cause of an error chain in plain words: I/O errors through [`io_reason`] (or
/// `not_found` for a missing file or socket, when given), anything else as it displays.
pub fn innermost(err: &(dyn std::error::Error + 'static), not_found: Option<&str>) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound && not_found.is_some() => {
            not_found.unwrap_or_default().to_string()
        }
        Some(io) => io_reason(io),
        None => current.to_string(),
    }
}

/// Every message in an error's source chain, joined with ": ".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(next) = current {
        parts.push(next.to_string());
        current = next.source();
    }
    parts.join(": ")
}

/// An OS error's text without the " (os error N)" suffix.
pub fn plain_io(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if text.ends_with(')') => text[..cut].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_suffix_is_dropped() {
        let err = std::io::Error::from_raw_os_error(2);
        assert_eq!(plain_io(&err), "No such file or directory");
    }

    #[test]
    fn innermost_names_a_missing_socket_only_when_asked() {
        let err = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(innermost(&err, Some("no such socket")), "no such socket");
        assert_eq!(innermost(&err, None), err.to_string());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(innermost(&refused, None), "connection refused");
    }
}
