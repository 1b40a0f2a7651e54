//! The TCP check against real sockets, and the address parser.

use super::judge::judge;
use super::params::HostPort;
use super::{connect, TcpObservation};
use crate::verdict::{Status, Verdict};

async fn run(address: &HostPort) -> Verdict {
    judge(address, &connect(address).await)
}

#[tokio::test(flavor = "current_thread")]
async fn open_and_closed_ports() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let open: HostPort = format!("127.0.0.1:{port}").parse().unwrap();
    let out = run(&open).await;
    assert_eq!(out.status, Status::Pass, "{out:?}");
    drop(listener);
    let out = run(&open).await;
    assert_eq!(out.status, Status::Fail);
    assert!(
        out.message.contains("connection refused"),
        "{}",
        out.message
    );
    let bad: HostPort = "no-such-host.invalid:80".parse().unwrap();
    let out = run(&bad).await;
    assert_eq!(out.status, Status::Fail);
    assert!(
        out.message
            .starts_with("cannot resolve no-such-host.invalid"),
        "{}",
        out.message
    );
}

#[test]
fn several_refusing_addresses_are_each_named() {
    let address: HostPort = "db:5432".parse().unwrap();
    let seen = TcpObservation::Unreachable(vec![
        (
            "10.0.0.1:5432".parse().unwrap(),
            "connection refused".into(),
        ),
        ("10.0.0.2:5432".parse().unwrap(), "timed out".into()),
    ]);
    assert_eq!(
        judge(&address, &seen).message,
        "cannot connect to db:5432: 10.0.0.1:5432: connection refused; 10.0.0.2:5432: timed out"
    );
    let none = judge(&address, &TcpObservation::Unreachable(Vec::new()));
    assert_eq!(none.message, "db resolved to no address");
}

#[test]
fn host_port_forms() {
    let hp: HostPort = "db.internal:5432".parse().unwrap();
    assert_eq!((hp.host.as_str(), hp.port), ("db.internal", 5432));
    let hp: HostPort = "[::1]:22".parse().unwrap();
    assert_eq!((hp.host.as_str(), hp.port), ("::1", 22));
    assert_eq!(hp.to_string(), "[::1]:22");
    for bad in [
        "db", "db:", ":80", "db:0", "db:65536", "::1:22", "[::1:22", "a b:1",
    ] {
        assert!(bad.parse::<HostPort>().is_err(), "{bad} accepted");
    }
}
