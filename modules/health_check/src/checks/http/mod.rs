//! `http`: HTTP(S) endpoints: status code, optional body text, and the certificate's remaining
//! life. Observing sends the request and reads the answer; the rules are in [`judge`].

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;
pub mod tls;

use super::{Check, Kind};
use crate::verdict::{round_ms, Verdict};
use host_probe::error::error_chain;
use host_probe::ProbeError;
use params::{HttpMethod, HttpParams};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

/// How much of a body is read (and searched for `body_contains`): health endpoints answer in
/// bytes, and an endpoint streaming forever must not hold the check. Reading stops here and the
/// check is judged on what came.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// One entry's client and headers, checked when planning.
#[derive(Clone)]
pub struct Http {
    client: Result<reqwest::Client, String>,
    headers: HeaderMap,
}

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HttpObservation {
    /// No answer: why, in a person's words ("cannot connect: connection refused").
    NoResponse(String),
    Response(HttpResponse),
}

/// An answer: its status, the body when it was read, and the certificate's end of validity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResponse {
    pub status_code: u16,
    /// Read for GET (not HEAD); at most [`MAX_BODY_BYTES`]. `Err`: why not all of it.
    pub body: Option<Result<Vec<u8>, String>>,
    /// Unix seconds of the peer certificate's notAfter, for https.
    pub cert_not_after: Option<i64>,
    pub response_ms: f64,
}

impl Http {
    /// Checks the headers (the error names the parameter) and takes this entry's client.
    pub fn new(
        spec: &HttpParams,
        clients: &mut Clients,
        parameter: &str,
    ) -> Result<Self, ansible_module::Error> {
        let invalid = |message: String| ansible_module::Error::InvalidParameter {
            name: format!("{parameter}.headers"),
            message,
        };
        if spec.body_contains.is_some() && spec.method == HttpMethod::Head {
            return Err(ansible_module::Error::InvalidParameter {
                name: format!("{parameter}.body_contains"),
                message: "needs method GET: the answer to HEAD has no body".into(),
            });
        }
        let mut headers = HeaderMap::new();
        for value in spec.secret_query.values() {
            ansible_module::secrets::register(value.clone());
        }
        for (name, value) in &spec.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("invalid header name {name:?}")))?;
            // The value is never shown: headers carry credentials.
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("invalid value for header {name:?}")))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        Ok(Self {
            client: clients.get(spec),
            headers,
        })
    }
}

impl Check for Http {
    const KIND: Kind = Kind::Http;
    type Params = HttpParams;
    type Observation = HttpObservation;

    fn expected(spec: &HttpParams) -> String {
        let mut parts = vec![format!("status {}", judge::expected_status(spec))];
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

    async fn observe(&self, spec: &HttpParams) -> Result<HttpObservation, ProbeError> {
        let client = self.client.as_ref().map_err(|message| ProbeError::Setup {
            observed: "no client",
            message: message.clone(),
        })?;
        Ok(fetch(client, spec, self.headers.clone()).await)
    }

    fn judge(spec: &HttpParams, seen: &HttpObservation, now: SystemTime) -> Verdict {
        judge::judge(spec, seen, now)
    }
}

/// The connection settings one client serves: `(tls_roots, validate_certs, follow_redirects,
/// use_proxy)`.
type ClientKey = (bool, bool, bool, bool);

/// One client per combination of connection settings, shared by the checks that use it. Only a
/// client that may meet TLS (an `https` URL, or redirects that may lead to one) loads the
/// system's CA certificates: reading every CA file costs more than a TCP check, and plain
/// `http://` checks never need them.
#[derive(Default)]
pub struct Clients {
    built: HashMap<ClientKey, Result<reqwest::Client, String>>,
}

impl Clients {
    /// The client for an entry's settings, built on first use.
    pub fn get(&mut self, spec: &HttpParams) -> Result<reqwest::Client, String> {
        let tls_roots = spec.url.0.scheme() == "https" || spec.follow_redirects;
        let key = (
            tls_roots,
            spec.validate_certs,
            spec.follow_redirects,
            spec.use_proxy,
        );
        self.built
            .entry(key)
            .or_insert_with(|| build_client(key))
            .clone()
    }
}

fn build_client(
    (tls_roots, validate_certs, follow_redirects, use_proxy): ClientKey,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("health_check/", env!("CARGO_PKG_VERSION")))
        // Our own verifier: it explains a rejected certificate in words.
        .use_preconfigured_tls(tls::client_config(tls_roots, validate_certs))
        .tls_info(true)
        // One request per check: a connection kept idle in the pool would hold a file
        // descriptor past its check's slot of the open-files budget (runner.rs).
        .pool_max_idle_per_host(0)
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

/// The URL requested: `url` with `secret_query` appended.
fn request_url(spec: &HttpParams) -> reqwest::Url {
    let mut url = spec.url.0.clone();
    if !spec.secret_query.is_empty() {
        url.query_pairs_mut().extend_pairs(&spec.secret_query);
    }
    url
}

/// Sends the request and reads what the rules need: status, certificate and body. The body is
/// read for every GET (at most [`MAX_BODY_BYTES`]): an endpoint that sends its headers and then
/// stalls is not healthy. Reading stops a little before the check's timeout, so that the
/// message can say what came.
pub async fn fetch(
    client: &reqwest::Client,
    spec: &HttpParams,
    headers: HeaderMap,
) -> HttpObservation {
    let started = Instant::now();
    let method = match spec.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
    };
    let mut request = client.request(method, request_url(spec)).headers(headers);
    if let Some(credentials) = &spec.url.1 {
        request = request.basic_auth(&credentials.user, credentials.password.as_ref());
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        // Without the URL: it carries `secret_query`.
        Err(err) => return HttpObservation::NoResponse(request_failure(err.without_url())),
    };
    let headers_ms = round_ms(started.elapsed());
    let status_code = response.status().as_u16();
    let cert_not_after = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .and_then(tls::not_after);
    let body = match spec.method {
        HttpMethod::Head => None,
        HttpMethod::Get => {
            let until = spec.timeout.map(|timeout| {
                let timeout = timeout.get();
                started + timeout - (timeout / 10).min(std::time::Duration::from_millis(200))
            });
            Some(read_body(&mut response, until, headers_ms).await)
        }
    };
    HttpObservation::Response(HttpResponse {
        status_code,
        body,
        cert_not_after,
        response_ms: round_ms(started.elapsed()),
    })
}

/// Reads at most [`MAX_BODY_BYTES`] of the body, giving up at `until`.
async fn read_body(
    response: &mut reqwest::Response,
    until: Option<Instant>,
    headers_ms: f64,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        let next = response.chunk();
        let chunk = match until {
            Some(until) => {
                match tokio::time::timeout_at(tokio::time::Instant::from_std(until), next).await {
                    Ok(chunk) => chunk,
                    Err(_) => {
                        return Err(format!(
                            "the body stalled: headers came in {headers_ms} ms, then {} body \
                             bytes before the check's timeout",
                            body.len()
                        ))
                    }
                }
            }
            None => next.await,
        };
        match chunk {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(err) => {
                return Err(format!(
                    "{} bytes read, then {}",
                    body.len(),
                    host_probe::error::innermost(&err.without_url(), None)
                ))
            }
        }
    }
    body.truncate(MAX_BODY_BYTES);
    Ok(body)
}

/// A person's reading of a request error: the innermost cause (which says "connection
/// refused"), prefixed with the stage; a rejected certificate in the verifier's words.
fn request_failure(err: reqwest::Error) -> String {
    if let Some(why) = tls::rejection(&err) {
        return format!("TLS handshake failed: {why}");
    }
    let cause = host_probe::error::innermost(&err, None);
    if err.is_timeout() {
        format!("timed out: {cause}")
    } else if err.is_connect() {
        format!("cannot connect: {cause}")
    } else if err.is_redirect() {
        format!("too many redirects: {cause}")
    } else {
        format!("request failed: {}", error_chain(&err))
    }
}
