//! HTTP(S) endpoints: status code, optional body text, and the certificate's remaining life.

use crate::args::{HttpCheck, HttpMethod};
use crate::check::{round_ms, CheckMeta, Outcome, Planned, Status};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::time::Instant;

/// How much of a body is searched for `body_contains`: health endpoints answer in bytes, and an
/// endpoint streaming forever must not hold the check.
const MAX_BODY_BYTES: usize = 1 << 20;

/// One client per combination of connection settings, shared by the checks that use it (each
/// client loads the system's CA roots once).
#[derive(Default)]
pub struct Clients {
    built: HashMap<(bool, bool, bool), Result<reqwest::Client, String>>,
}

impl Clients {
    fn get(&mut self, spec: &HttpCheck) -> Result<reqwest::Client, String> {
        let key = (spec.validate_certs, spec.follow_redirects, spec.use_proxy);
        self.built
            .entry(key)
            .or_insert_with(|| build_client(key.0, key.1, key.2))
            .clone()
    }
}

fn build_client(
    validate_certs: bool,
    follow_redirects: bool,
    use_proxy: bool,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("health_check/", env!("CARGO_PKG_VERSION")))
        .tls_info(true)
        .danger_accept_invalid_certs(!validate_certs)
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !use_proxy {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|err| format!("cannot set up an HTTP client: {}", error_chain(&err)))
}

/// Validates what can be validated before anything runs; the error names the parameter.
pub fn plan(
    spec: HttpCheck,
    meta: CheckMeta,
    clients: &mut Clients,
    parameter: &str,
) -> Result<Planned, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            format!("parameter '{parameter}.headers': invalid header name {name:?}")
        })?;
        // The value is never shown: headers carry credentials.
        let value = HeaderValue::from_str(value).map_err(|_| {
            format!("parameter '{parameter}.headers': invalid value for header {name:?}")
        })?;
        headers.insert(header, value);
    }
    let client = clients.get(&spec);
    let work = async move {
        match client {
            Ok(client) => probe(&client, &spec, headers).await,
            Err(message) => Outcome::fail("no client", message),
        }
    };
    Ok(Planned {
        meta,
        work: Box::pin(work),
    })
}

pub fn expected(spec: &HttpCheck) -> String {
    let mut parts = vec![format!("status {}", expected_status(spec))];
    if let Some(text) = &spec.body_contains {
        parts.push(format!("body contains {text:?}"));
    }
    if spec.url.0.scheme() == "https" && spec.cert_expiry_warn_days > 0 {
        parts.push(format!(
            "certificate valid >= {} days",
            spec.cert_expiry_warn_days
        ));
    }
    parts.join(", ")
}

fn expected_status(spec: &HttpCheck) -> String {
    match &spec.status {
        Some(codes) if !codes.is_empty() => codes
            .iter()
            .map(|c| c.0.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "2xx".to_string(),
    }
}

fn status_ok(spec: &HttpCheck, code: u16) -> bool {
    match &spec.status {
        Some(codes) if !codes.is_empty() => codes.iter().any(|c| c.0 == code),
        _ => (200..300).contains(&code),
    }
}

async fn probe(client: &reqwest::Client, spec: &HttpCheck, headers: HeaderMap) -> Outcome {
    let started = Instant::now();
    let method = match spec.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
    };
    let mut response = match client
        .request(method, spec.url.0.clone())
        .headers(headers)
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => return Outcome::fail("no response", request_failure(&err)),
    };
    let code = response.status().as_u16();
    let cert_expiry = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .and_then(super::tls::not_after);

    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if !status_ok(spec, code) {
        problems.push(format!("status {code}, expected {}", expected_status(spec)));
    }
    let mut observed = vec![format!("HTTP {code}")];
    if let Some(text) = &spec.body_contains {
        match read_body(&mut response).await {
            Ok(body) if contains(&body, text.as_bytes()) => {
                observed.push(format!("body contains {text:?}"));
            }
            Ok(body) => {
                observed.push(format!("{} body bytes without {text:?}", body.len()));
                problems.push(format!("body does not contain {text:?}"));
            }
            Err(err) => problems.push(format!("cannot read body: {}", error_chain(&err))),
        }
    }
    let took = round_ms(started.elapsed());
    observed.push(format!("in {took} ms"));
    let mut outcome_details = Vec::new();
    if spec.url.0.scheme() == "https" {
        if let Some(expiry) = cert_expiry {
            let days_left = (expiry - ansible_module::time::unix_now()).div_euclid(86_400);
            let when = ansible_module::time::rfc3339_from_unix(expiry);
            observed.push(format!("certificate expires {when} ({days_left} days)"));
            if spec.cert_expiry_warn_days > 0 && days_left < i64::from(spec.cert_expiry_warn_days) {
                warnings.push(if days_left < 0 {
                    format!("certificate expired {when}")
                } else {
                    format!(
                        "certificate expires in {days_left} days ({when}), within {} days",
                        spec.cert_expiry_warn_days
                    )
                });
            }
            outcome_details.push(("cert_not_after", serde_json::Value::from(when)));
            outcome_details.push(("cert_days_left", serde_json::Value::from(days_left)));
        }
    }
    let (status, message) = if !problems.is_empty() {
        (Status::Fail, problems.join(", "))
    } else if !warnings.is_empty() {
        (Status::Warn, warnings.join(", "))
    } else {
        (Status::Pass, format!("{} answered as expected", spec.url.0))
    };
    let mut outcome = Outcome::new(status, observed.join(", "), message)
        .detail("url", spec.url.0.to_string())
        .detail("status_code", code)
        .detail("response_ms", took);
    for (key, value) in outcome_details {
        outcome = outcome.detail(key, value);
    }
    outcome
}

async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    body.truncate(MAX_BODY_BYTES);
    Ok(body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A person's reading of a request error: the innermost cause (which says "connection
/// refused" or "invalid peer certificate: UnknownIssuer"), prefixed with the stage.
fn request_failure(err: &reqwest::Error) -> String {
    let cause = innermost(err);
    if err.is_timeout() {
        format!("timed out: {cause}")
    } else if err.is_connect() {
        format!("cannot connect: {cause}")
    } else if err.is_redirect() {
        format!("too many redirects: {cause}")
    } else {
        format!("request failed: {}", error_chain(err))
    }
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) => super::tcp::io_reason(io),
        None => current.to_string(),
    }
}

/// Every message in an error's source chain, joined; reqwest's own top line repeats the URL.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(next) = current {
        parts.push(next.to_string());
        current = next.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ansible_module::types::StrOrMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn spec(json: serde_json::Value) -> HttpCheck {
        serde_json::from_value::<StrOrMap<HttpCheck>>(json)
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

    async fn run(spec: HttpCheck) -> Outcome {
        let client = Clients::default().get(&spec).unwrap();
        probe(&client, &spec, HeaderMap::new()).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn status_and_body() {
        let ok =
            serve("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nstatus=ok")
                .await;
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

        let broken = serve(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
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
        let meta = CheckMeta {
            kind: "http",
            name: "x".into(),
            mandatory: true,
            timeout: std::time::Duration::from_secs(1),
            expected: String::new(),
        };
        let err = plan(s, meta, &mut Clients::default(), "http[0]")
            .err()
            .unwrap();
        assert_eq!(
            err,
            "parameter 'http[0].headers': invalid header name \"bad name\""
        );
    }
}
