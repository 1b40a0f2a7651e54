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

/// Answers each connection by `answer(request)`: the bytes to send, then whether to hold the
/// connection open (a stalled body) instead of closing it.
async fn serve_with(answer: fn(&str) -> (Vec<u8>, bool)) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let (bytes, hold) = answer(&String::from_utf8_lossy(&buf[..n]));
                let _ = socket.write_all(&bytes).await;
                if hold {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    url
}

/// 200 with the right Basic credentials (`user:S3cretPW`), 401 otherwise.
fn basic_auth(request: &str) -> (Vec<u8>, bool) {
    let answer = if request.contains("\r\nauthorization: Basic dXNlcjpTM2NyZXRQVw==\r\n") {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    } else {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    (answer.as_bytes().to_vec(), false)
}

#[tokio::test(flavor = "current_thread")]
async fn url_credentials_are_sent_as_basic_auth_and_never_shown() {
    let base = serve_with(basic_auth).await;
    let with = |userinfo: &str| base.replacen("http://", &format!("http://{userinfo}@"), 1);
    let right = spec(serde_json::json!(with("user:S3cretPW")));
    assert_eq!(
        right.url.0.as_str(),
        base,
        "the URL as shown has no userinfo"
    );
    assert!(!format!("{right:?}").contains("S3cretPW"));
    let out = run(right).await;
    assert_eq!(out.status, Status::Pass, "{out:?}");
    let wrong = run(spec(serde_json::json!(with("user:wrong-pw")))).await;
    assert_eq!(wrong.status, Status::Fail);
    assert_eq!(wrong.message, "status 401, expected 2xx");
    let none = run(spec(serde_json::json!(base))).await;
    assert_eq!(none.message, "status 401, expected 2xx");
    for verdict in [out, wrong] {
        let text = format!("{verdict:?}");
        assert!(
            !text.contains("S3cretPW") && !text.contains("wrong-pw") && !text.contains("user@"),
            "{text}"
        );
    }
}

#[test]
fn percent_encoded_userinfo_is_decoded_for_basic_auth() {
    let url: HttpUrl = "https://us%40er:p%3Ass%2Fw0rd@example.invalid:8443/x?y=1"
        .parse()
        .unwrap();
    assert_eq!(url.0.as_str(), "https://example.invalid:8443/x?y=1");
    let credentials = url.1.unwrap();
    assert_eq!(credentials.user, "us@er");
    assert_eq!(credentials.password.as_deref(), Some("p:ss/w0rd"));
    let err = "http://user:Hunter2Pw@exa mple/"
        .parse::<HttpUrl>()
        .unwrap_err();
    assert!(!err.contains("Hunter2Pw"), "{err}");
}

/// Echoes the request line in the body.
fn echo_request_line(request: &str) -> (Vec<u8>, bool) {
    let line = request.lines().next().unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{line}",
        line.len()
    );
    (answer.into_bytes(), false)
}

#[tokio::test(flavor = "current_thread")]
async fn secret_query_values_are_sent_and_never_shown() {
    let base = serve_with(echo_request_line).await;
    let s = spec(serde_json::json!({
        "url": format!("{base}?plain=1"),
        "secret_query": {"token": "q-s3cret-token"},
        "body_contains": "GET /health?plain=1&token=q-s3cret-token HTTP/1.1",
    }));
    let out = run(s).await;
    assert_eq!(
        out.status,
        Status::Pass,
        "the server saw the token: {out:?}"
    );
    assert_eq!(out.details["url"], format!("{base}?plain=1"));
}

/// Headers and 10 of 100 body bytes, then nothing.
fn stalled_body(_: &str) -> (Vec<u8>, bool) {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
    (answer.as_bytes().to_vec(), true)
}

/// Headers and 10 of 100 body bytes, then the connection is closed.
fn cut_body(_: &str) -> (Vec<u8>, bool) {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
    (answer.as_bytes().to_vec(), false)
}

/// A body of 3 MiB, more than is read.
fn huge_body(_: &str) -> (Vec<u8>, bool) {
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n".to_vec();
    answer.resize(answer.len() + 3 * 1024 * 1024, b'x');
    (answer, false)
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_that_stalls_after_the_headers_fails_within_the_timeout() {
    let url = serve_with(stalled_body).await;
    let started = std::time::Instant::now();
    let out = run(spec(serde_json::json!({"url": url, "timeout": "1s"}))).await;
    // The server holds its body for 30 s: well under that, the read was cut by the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status, Status::Fail, "{out:?}");
    assert!(
        out.message
            .starts_with("cannot read body: the body stalled: headers came in ")
            && out
                .message
                .ends_with(" ms, then 10 body bytes before the check's timeout"),
        "{}",
        out.message
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_cut_short_fails_and_a_huge_one_is_read_up_to_the_limit() {
    let out = run(spec(serde_json::json!(serve_with(cut_body).await))).await;
    assert_eq!(out.status, Status::Fail, "{out:?}");
    assert!(
        out.message
            .starts_with("cannot read body: 10 bytes read, then "),
        "{}",
        out.message
    );
    let out = run(spec(serde_json::json!(serve_with(huge_body).await))).await;
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert!(
        out.observed
            .contains(&format!("{} body bytes", super::MAX_BODY_BYTES)),
        "{}",
        out.observed
    );
}

#[test]
fn body_contains_with_head_is_refused_by_name() {
    let s = spec(
        serde_json::json!({"url": "http://127.0.0.1/", "method": "HEAD", "body_contains": "ok"}),
    );
    let err = Http::new(&s, &mut Clients::default(), "http[2]")
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "parameter 'http[2].body_contains': needs method GET: the answer to HEAD has no body"
    );
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
