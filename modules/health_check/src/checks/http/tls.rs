//! TLS for the HTTP check: the client configuration (the system's CA certificates only when a
//! client may meet TLS), a verifier that says in words why a certificate was rejected
//! ("self-signed certificate", "certificate expired 3 days ago on 2026-11-22"), and just
//! enough DER to read a certificate's notAfter and names: no X.509 crate for a few fields.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// The rustls configuration of one client. `tls_roots`: load the system's CA certificates
/// (only clients that may meet an `https` URL do). `validate_certs: false` accepts any
/// certificate (the handshake's signatures are still checked).
pub fn client_config(tls_roots: bool, validate_certs: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if tls_roots && validate_certs {
        // Unreadable files are skipped: the verifier then says "unknown issuer".
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
    }
    let webpki = if validate_certs {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .ok()
    } else {
        None
    };
    let verifier = PlainVerifier {
        webpki,
        validate_certs,
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        });
    match config {
        Ok(config) => config,
        // ring supports the default versions; this cannot happen, and a config without a
        // verifier would be worse than one that rejects everything.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    }
}

/// A certificate rejection in a person's words, carried through rustls and hyper to the
/// check's message.
#[derive(Debug)]
pub struct Rejected(pub String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejected {}

/// The verifier's words for a request error, when a certificate was rejected.
pub fn rejection(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let verifier_words = |err: &(dyn std::error::Error + 'static)| match err.downcast_ref() {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => other
            .0
            .downcast_ref::<Rejected>()
            .map(|rejected| rejected.0.clone()),
        _ => None,
    };
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(words) = verifier_words(err) {
            return Some(words);
        }
        // An io::Error's source() skips the error it wraps (hyper wraps rustls's error in two
        // of them): unwrap those by hand.
        let mut wrapped = err;
        while let Some(inner) = wrapped
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            wrapped = inner;
            if let Some(words) = verifier_words(wrapped) {
                return Some(words);
            }
        }
        current = err.source();
    }
    None
}

/// webpki's verdict, with its rejections explained.
#[derive(Debug)]
struct PlainVerifier {
    /// `None` with `validate_certs`: no usable CA certificate on this host.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    validate_certs: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PlainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.validate_certs {
            return Ok(ServerCertVerified::assertion());
        }
        let verdict = match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        verdict.map_err(|err| {
            let why = explain(&err, end_entity, server_name, now.as_secs());
            rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                Arc::new(Rejected(why)),
            )))
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why webpki rejected `cert` for `server_name` at `now` (Unix seconds), in words.
fn explain(err: &rustls::Error, cert: &[u8], server_name: &ServerName<'_>, now: u64) -> String {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let host = match server_name {
        ServerName::DnsName(name) => name.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => "the requested host".to_string(),
    };
    let rustls::Error::InvalidCertificate(why) = err else {
        return format!("certificate rejected: {err}");
    };
    match why {
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. }
        | CertificateError::NotValidForName
        | CertificateError::NotValidForNameContext { .. } => {}
        // Whatever webpki tripped on first (unknown issuer, a CA certificate served as the
        // server's own, as `openssl req -x509` makes them), this is what the operator must know.
        _ if self_signed(cert) => {
            return "self-signed certificate (not issued by a trusted CA)".to_string()
        }
        _ => {}
    }
    match why {
        CertificateError::UnknownIssuer => {
            "unknown issuer: the certificate is not signed by a CA this host trusts".to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            match not_after(cert) {
                Some(end) => format!("certificate {}", life(end, now)),
                None => "certificate expired".to_string(),
            }
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet (its notBefore is in the future: check the host's clock)"
                .to_string()
        }
        CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
            let names: Vec<&str> = presented.iter().map(|name| bare_name(name)).collect();
            format!("certificate is for {}, not {host}", names.join(", "))
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("certificate is not for {host}")
        }
        CertificateError::Revoked => "certificate revoked".to_string(),
        CertificateError::BadSignature => "certificate signature is invalid".to_string(),
        CertificateError::BadEncoding => "certificate is malformed".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for TLS servers (extended key usage)".to_string()
        }
        CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            "a CA certificate is served as the server's own certificate".to_string()
        }
        _ => "certificate rejected (unsupported algorithm, key usage or extension)".to_string(),
    }
}

/// `other.example` from webpki's `DnsName("other.example")` (its names come Debug-formatted),
/// `10.0.0.1` from `IpAddress(10.0.0.1)`; anything else as it is.
fn bare_name(presented: &str) -> &str {
    let inner = match (presented.find('('), presented.rfind(')')) {
        (Some(open), Some(close)) if open < close => &presented[open + 1..close],
        _ => presented,
    };
    inner.trim_matches('"')
}

/// "expires in 1 day 23 h on 2026-12-09" or "expired 3 days ago on 2026-11-22": a certificate's
/// life left at `now` (both Unix seconds), as precise as it matters.
pub fn life(not_after: i64, now: i64) -> String {
    let date: String = ansible_module::time::rfc3339_from_unix(not_after)
        .chars()
        .take(10)
        .collect();
    let left = not_after - now;
    let span = span(left.unsigned_abs());
    if left >= 0 {
        format!("expires in {span} on {date}")
    } else {
        format!("expired {span} ago on {date}")
    }
}

/// Whole days from 3 days on, days and hours below, hours and minutes below a day.
fn span(seconds: u64) -> String {
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (days, hours) {
        (3.., _) => plural(days, "day", "days"),
        (1.., 0) => plural(days, "day", "days"),
        (1.., _) => format!("{} {hours} h", plural(days, "day", "days")),
        (0, 1..) => format!("{hours} h {minutes} min"),
        (0, 0) => format!("{minutes} min"),
    }
}

/// Whether the certificate names itself as its issuer.
fn self_signed(der: &[u8]) -> bool {
    names(der).is_some_and(|(issuer, subject)| issuer == subject)
}

/// The fields of a certificate's TBSCertificate from its serialNumber on (the version, when
/// there is one, skipped), or `None` when the bytes are not a certificate.
fn tbs_fields(der: &[u8]) -> Option<&[u8]> {
    let (tag, certificate, _) = read_tlv(der)?;
    expect(tag, 0x30)?;
    let (tag, tbs, _) = read_tlv(certificate)?;
    expect(tag, 0x30)?;
    let (tag, _, after) = read_tlv(tbs)?;
    // [0] EXPLICIT version, present from X.509 v2 on.
    Some(if tag == 0xA0 { after } else { tbs })
}

/// The raw issuer and subject names of a certificate.
fn names(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut rest = tbs_fields(der)?;
    // serialNumber, signature: skipped.
    for _ in 0..2 {
        rest = read_tlv(rest)?.2;
    }
    let (_, issuer, rest) = read_tlv(rest)?;
    // validity: skipped.
    let rest = read_tlv(rest)?.2;
    let (_, subject, _) = read_tlv(rest)?;
    Some((issuer, subject))
}

/// The certificate's notAfter as seconds since the Unix epoch, or `None` when the bytes are not
/// a certificate this reader understands.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let mut rest = tbs_fields(der)?;
    // serialNumber, signature, issuer: skipped.
    for _ in 0..3 {
        rest = read_tlv(rest)?.2;
    }
    let (tag, validity, _) = read_tlv(rest)?;
    expect(tag, 0x30)?;
    let (_, _, after_not_before) = read_tlv(validity)?;
    let (tag, not_after, _) = read_tlv(after_not_before)?;
    let text = std::str::from_utf8(not_after).ok()?;
    match tag {
        0x17 => parse_time(text, true),
        0x18 => parse_time(text, false),
        _ => None,
    }
}

fn expect(tag: u8, wanted: u8) -> Option<()> {
    (tag == wanted).then_some(())
}

/// One tag-length-value: (tag, contents, the bytes after it). Single-byte tags only, which is
/// all a certificate uses up to its validity.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let mut len = 0usize;
        for &byte in &rest[..octets] {
            len = (len << 8) | usize::from(byte);
        }
        rest = &rest[octets..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`, UTC only (RFC 5280 4.1.2.5).
fn parse_time(text: &str, two_digit_year: bool) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = if two_digit_year {
        let yy: i64 = digits.get(..2)?.parse().ok()?;
        (
            if yy >= 50 { 1900 + yy } else { 2000 + yy },
            digits.get(2..)?,
        )
    } else {
        (digits.get(..4)?.parse().ok()?, digits.get(4..)?)
    };
    if rest.len() != 10 {
        return None;
    }
    let field = |range: std::ops::Range<usize>| rest.get(range)?.parse::<u32>().ok();
    let (month, day) = (field(0..2)?, field(2..4)?);
    let (hour, minute, second) = (field(4..6)?, field(6..8)?, field(8..10)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = ansible_module::time::days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate made with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=fixture -days 3650`;
    /// `openssl x509 -enddate` says notAfter=Nov 22 10:58:00 2036 GMT.
    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/cert.der");

    #[test]
    fn reads_not_after_of_a_real_certificate() {
        let secs = not_after(FIXTURE).unwrap();
        assert_eq!(
            ansible_module::time::rfc3339_from_unix(secs),
            "2036-11-22T10:58:00Z"
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(b"\x30\x84\xff\xff\xff\xff"), None);
        for cut in 0..FIXTURE.len().min(200) {
            let _ = not_after(&FIXTURE[..cut]);
        }
    }

    #[test]
    fn webpki_names_are_shown_bare() {
        assert_eq!(bare_name("DnsName(\"other.example\")"), "other.example");
        assert_eq!(bare_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(bare_name("plain.example"), "plain.example");
    }

    #[test]
    fn a_self_signed_certificate_is_recognised() {
        assert!(self_signed(FIXTURE));
        assert!(!self_signed(b"\x30\x00"));
    }

    #[test]
    fn certificate_life_reads_as_words() {
        let now = 1_800_000_000;
        assert_eq!(
            life(now + 86_400 + 23 * 3600 + 59, now),
            "expires in 1 day 23 h on 2027-01-17"
        );
        assert_eq!(
            life(now - 3 * 86_400 - 7200, now),
            "expired 3 days ago on 2027-01-12"
        );
        assert_eq!(
            life(now + 30 * 86_400, now),
            "expires in 30 days on 2027-02-14"
        );
        assert_eq!(
            life(now + 2 * 86_400, now),
            "expires in 2 days on 2027-01-17"
        );
        assert_eq!(
            life(now + 5 * 3600 + 120, now),
            "expires in 5 h 2 min on 2027-01-15"
        );
        assert_eq!(life(now - 59, now), "expired 0 min ago on 2027-01-15");
    }

    #[test]
    fn both_time_forms() {
        assert_eq!(parse_time("500101000000Z", true), Some(-631_152_000));
        assert_eq!(parse_time("20500101000000Z", false), Some(2_524_608_000));
        assert_eq!(parse_time("20501301000000Z", false), None);
    }
}
