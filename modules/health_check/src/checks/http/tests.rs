//! The HTTP check against canned servers, and its rules on fixed answers.

use super::judge::judge;
use super::params::{HttpParams, HttpUrl};
use super::{fetch, Clients, Http, HttpObservation, HttpResponse};
use crate::verdict::{Status, Verdict};
use ansible_module::types::StrOrMap;
use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn spec(json: serde_json::Value) -> HttpParams {
    serde_json::from_value::<StrOrMap<HttpParams>>(json)
        .unwrap()
        .0
}

/// Serves one canned answer per connection, as many times as asked.
async fn serve(answer: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    url
}

async fn run(spec: HttpParams) -> Verdict {
    let client = Clients::default().get(&spec).unwrap();
    let seen = fetch(&client, &spec, HeaderMap::new()).await;
    judge(&spec, &seen, SystemTime::now())
}

#[tokio::test(flavor = "current_thread")]
async fn status_and_body() {
    let ok =
        serve("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nstatus=ok").await;
    let out = run(spec(serde_json::json!(ok))).await;
    assert_eq!(out.status, Status::Pass, "{out:?}");
    let out = run(spec(
        serde_json::json!({"url": ok, "body_contains": "status=ok"}),
    ))
    .await;
    assert_eq!(out.status, Status::Pass, "{out:?}");
    let out = run(spec(
        serde_json::json!({"url": ok, "body_contains": "degraded"}),
    ))
    .await;
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.message, "body does not contain \"degraded\"");
    let out = run(spec(serde_json::json!({"url": ok, "status": [204, 301]}))).await;
    assert_eq!(out.message, "status 200, expected 204 or 301");

    let broken =
        serve("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    let out = run(spec(serde_json::json!(broken))).await;
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.message, "status 503, expected 2xx");
    let out = run(spec(serde_json::json!({"url": broken, "status": "503"}))).await;
    assert_eq!(out.status, Status::Pass);
}

#[tokio::test(flavor = "current_thread")]
async fn redirects_are_not_followed_unless_asked() {
    let moved = serve("HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    let out = run(spec(serde_json::json!(moved))).await;
    assert_eq!(out.message, "status 301, expected 2xx");
}

#[tokio::test(flavor = "current_thread")]
async fn refused_connection_is_explained() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let out = run(spec(serde_json::json!(url))).await;
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.message, "cannot connect: connection refused");
}

#[test]
fn bad_headers_name_the_parameter() {
    let s = spec(serde_json::json!({"url": "http://127.0.0.1/", "headers": {"bad name": "x"}}));
    let err = Http::new(&s, &mut Clients::default(), "http[0]")
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "parameter 'http[0].headers': invalid header name \"bad name\""
    );
}

fn answer(status_code: u16, cert_not_after: Option<i64>) -> HttpObservation {
    HttpObservation::Response(HttpResponse {
        status_code,
        body: None,
        cert_not_after,
        response_ms: 1.5,
    })
}

#[test]
fn certificates_warn_before_they_expire_and_after() {
    let s =
        spec(serde_json::json!({"url": "https://example.invalid/", "cert_expiry_warn_days": 14}));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let in_days = |days: i64| Some(1_800_000_000 + days * 86_400 + 60);
    assert_eq!(
        judge(&s, &answer(200, in_days(30)), now).status,
        Status::Pass
    );
    let soon = judge(&s, &answer(200, in_days(3)), now);
    assert_eq!(soon.status, Status::Warn);
    assert!(
        soon.message.starts_with("certificate expires in 3 days"),
        "{}",
        soon.message
    );
    let gone = judge(&s, &answer(200, in_days(-2)), now);
    assert!(
        gone.message.starts_with("certificate expired "),
        "{}",
        gone.message
    );
    assert_eq!(gone.details["cert_days_left"], -2);
}

#[test]
fn a_missing_answer_and_an_unreadable_body_fail() {
    let s = spec(serde_json::json!({"url": "http://example.invalid/", "body_contains": "ok"}));
    let none = judge(
        &s,
        &HttpObservation::NoResponse("cannot connect: connection refused".into()),
        SystemTime::now(),
    );
    assert_eq!(
        (none.status, none.observed.as_str()),
        (Status::Fail, "no response")
    );
    let cut = HttpObservation::Response(HttpResponse {
        status_code: 200,
        body: Some(Err("connection reset".into())),
        cert_not_after: None,
        response_ms: 1.0,
    });
    assert_eq!(
        judge(&s, &cut, SystemTime::now()).message,
        "cannot read body: connection reset"
    );
}

#[test]
fn urls_must_be_http() {
    assert!("https://example.invalid/health".parse::<HttpUrl>().is_ok());
    assert!("ftp://example.invalid/".parse::<HttpUrl>().is_err());
    assert!("not a url".parse::<HttpUrl>().is_err());
}
