//! The HTTP rules: status code, body text, certificate life. Pure: the answer and the clock
//! come in, the verdict goes out.

use super::params::HttpParams;
use super::{HttpObservation, HttpResponse};
use crate::verdict::{Status, Verdict};
use std::time::SystemTime;

/// "2xx", or the accepted codes joined with "or".
pub fn expected_status(spec: &HttpParams) -> String {
    match &spec.status {
        Some(codes) if !codes.is_empty() => codes
            .iter()
            .map(|c| c.0.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "2xx".to_string(),
    }
}

fn status_ok(spec: &HttpParams, code: u16) -> bool {
    match &spec.status {
        Some(codes) if !codes.is_empty() => codes.iter().any(|c| c.0 == code),
        _ => (200..300).contains(&code),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn unix_seconds(now: SystemTime) -> i64 {
    match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Decides an HTTP check from what the endpoint answered at `now`.
pub fn judge(spec: &HttpParams, seen: &HttpObservation, now: SystemTime) -> Verdict {
    let answer: &HttpResponse = match seen {
        HttpObservation::NoResponse(why) => return Verdict::fail("no response", why.clone()),
        HttpObservation::Response(answer) => answer,
    };
    let code = answer.status_code;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if !status_ok(spec, code) {
        problems.push(format!("status {code}, expected {}", expected_status(spec)));
    }
    let mut observed = vec![format!("HTTP {code}")];
    match &answer.body {
        Some(Ok(body)) => match &spec.body_contains {
            Some(text) if contains(body, text.as_bytes()) => {
                observed.push(format!("body contains {text:?}"));
            }
            Some(text) => {
                observed.push(format!("{} body bytes without {text:?}", body.len()));
                problems.push(format!("body does not contain {text:?}"));
            }
            None => observed.push(format!("{} body bytes", body.len())),
        },
        // A body cut short or stalled fails even when its text does not matter: the endpoint
        // did not answer in full.
        Some(Err(err)) => problems.push(format!("cannot read body: {err}")),
        None => {}
    }
    let took = answer.response_ms;
    observed.push(format!("in {took} ms"));
    let mut cert_details = Vec::new();
    if spec.url.0.scheme() == "https" {
        if let Some(expiry) = answer.cert_not_after {
            let now = unix_seconds(now);
            let days_left = (expiry - now).div_euclid(86_400);
            let when = ansible_module::time::rfc3339_from_unix(expiry);
            let life = super::tls::life(expiry, now);
            observed.push(format!("certificate {life}"));
            if spec.cert_expiry_warn_days > 0 && days_left < i64::from(spec.cert_expiry_warn_days) {
                warnings.push(if expiry < now {
                    format!("certificate {life}")
                } else {
                    format!(
                        "certificate {life}, within cert_expiry_warn_days ({})",
                        spec.cert_expiry_warn_days
                    )
                });
            }
            cert_details.push(("cert_not_after", serde_json::Value::from(when)));
            cert_details.push(("cert_days_left", serde_json::Value::from(days_left)));
        }
    }
    let (status, message) = if !problems.is_empty() {
        (Status::Fail, problems.join(", "))
    } else if !warnings.is_empty() {
        (Status::Warn, warnings.join(", "))
    } else {
        (Status::Pass, format!("{} answered as expected", spec.url.0))
    };
    let mut verdict = Verdict::new(status, observed.join(", "), message)
        .detail("url", spec.url.0.to_string())
        .detail("status_code", code)
        .detail("response_ms", took);
    for (key, value) in cert_details {
        verdict = verdict.detail(key, value);
    }
    verdict
}
