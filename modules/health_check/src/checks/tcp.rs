//! TCP reachability: resolve, then connect to each address until one answers.

use crate::args::{HostPort, TcpCheck};
use crate::check::{round_ms, CheckMeta, Outcome, Planned};
use std::time::Instant;

pub fn plan(spec: TcpCheck, meta: CheckMeta) -> Planned {
    let address = spec.address;
    Planned {
        meta,
        work: Box::pin(async move { connect(&address).await }),
    }
}

pub fn expected(timeout: std::time::Duration) -> String {
    format!(
        "connect within {}",
        ansible_module::types::Duration(timeout)
    )
}

pub async fn connect(address: &HostPort) -> Outcome {
    let started = Instant::now();
    let resolved: Vec<std::net::SocketAddr> =
        match tokio::net::lookup_host((address.host.as_str(), address.port)).await {
            Ok(addrs) => addrs.collect(),
            Err(err) => {
                return Outcome::fail(
                    "unresolved",
                    format!("cannot resolve {}: {err}", address.host),
                )
            }
        };
    let mut failures = Vec::new();
    for candidate in &resolved {
        match tokio::net::TcpStream::connect(candidate).await {
            Ok(_) => {
                let took = round_ms(started.elapsed());
                return Outcome::pass(
                    format!("connected to {candidate} in {took} ms"),
                    format!("{address} reachable"),
                )
                .detail("peer", candidate.to_string())
                .detail("connect_ms", took);
            }
            Err(err) => failures.push((candidate, io_reason(&err))),
        }
    }
    let reasons = match failures.as_slice() {
        [] => {
            return Outcome::fail(
                "unresolved",
                format!("{} resolved to no address", address.host),
            )
        }
        // One address: the message already names it.
        [(_, reason)] => reason.clone(),
        many => many
            .iter()
            .map(|(candidate, reason)| format!("{candidate}: {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Outcome::fail(
        "unreachable",
        format!("cannot connect to {address}: {reasons}"),
    )
}

/// The short reason a person reads: "connection refused", not "Connection refused (os error 111)".
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[tokio::test(flavor = "current_thread")]
    async fn open_and_closed_ports() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open: HostPort = format!("127.0.0.1:{port}").parse().unwrap();
        let out = connect(&open).await;
        assert_eq!(out.status, Status::Pass, "{out:?}");
        drop(listener);
        let out = connect(&open).await;
        assert_eq!(out.status, Status::Fail);
        assert!(
            out.message.contains("connection refused"),
            "{}",
            out.message
        );
        let bad: HostPort = "no-such-host.invalid:80".parse().unwrap();
        let out = connect(&bad).await;
        assert_eq!(out.status, Status::Fail);
        assert!(
            out.message
                .starts_with("cannot resolve no-such-host.invalid"),
            "{}",
            out.message
        );
    }
}
