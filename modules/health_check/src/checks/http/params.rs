//! The `http` entries: a URL and what its answer must be.

use crate::args::check_params;
use ansible_module::types::List;
use ansible_module::types::Shorthand;
use serde::Deserialize;
use std::collections::BTreeMap;

check_params! {
pub struct HttpParams {
    pub url: HttpUrl,
    #[serde(default)]
    pub status: Option<List<StatusCode>>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub method: HttpMethod,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters whose values are secrets (API tokens): appended to `url` when the
    /// request is sent, shown as `********` nowhere else.
    #[serde(default)]
    pub secret_query: BTreeMap<String, String>,
    #[serde(default = "crate::args::yes", deserialize_with = "ansible_module::types::boolean")]
    pub validate_certs: bool,
    #[serde(
        default = "default_cert_expiry_warn_days",
        deserialize_with = "ansible_module::types::number"
    )]
    pub cert_expiry_warn_days: u32,
    #[serde(default, deserialize_with = "ansible_module::types::boolean")]
    pub follow_redirects: bool,
    #[serde(default, deserialize_with = "ansible_module::types::boolean")]
    pub use_proxy: bool,
}
}

fn default_cert_expiry_warn_days() -> u32 {
    14
}

impl Shorthand for HttpParams {
    const FIELD: &'static str = "url";
}

/// An `http://` or `https://` URL with a host. The userinfo (`user:password@`) is taken out
/// when parsing: `.0` is the URL as shown (check name, messages, details) and requested,
/// `.1` the credentials, sent as HTTP Basic authentication and never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub reqwest::Url, pub Option<Credentials>);

/// User and password from a URL's userinfo, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(********)")
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // The error messages show the URL with its userinfo masked: a typo in a URL with a
        // password must not print the password.
        let shown = ansible_module::secrets::mask_url_passwords(text);
        let mut url = reqwest::Url::parse(text.trim()).map_err(|e| {
            format!("invalid URL {shown:?}: {e} (expected http://host[:port]/path or https://...)")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "invalid URL {shown:?}: expected an http:// or https:// URL with a host"
            ));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let credentials = Credentials {
                user: percent_decode(url.username()),
                password: url.password().map(percent_decode),
            };
            // Both spellings are secrets: the encoded one stands in the echoed arguments. A
            // user name without a password is a token (`https://TOKEN@host/`).
            match url.password() {
                Some(password) => {
                    ansible_module::secrets::register(password);
                    ansible_module::secrets::register(
                        credentials.password.clone().unwrap_or_default(),
                    );
                }
                None => {
                    ansible_module::secrets::register(url.username());
                    ansible_module::secrets::register(credentials.user.clone());
                }
            }
            // Cannot fail for a URL with a host (checked above).
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some(credentials)
        };
        Ok(Self(url, credentials))
    }
}

/// `%XX` escapes decoded (userinfo is percent-encoded in URLs); bytes that do not form UTF-8
/// are replaced, as a server would see garbage either way.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

ansible_module::deserialize_from_str!(HttpUrl);

/// An HTTP status code from 100 to 599.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode(pub u16);

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code: u16 = ansible_module::types::number(deserializer)?;
        if (100..=599).contains(&code) {
            Ok(Self(code))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid HTTP status {code} (expected 100-599)"
            )))
        }
    }
}

ansible_module::keyword_enum! {
    /// The request method: GET, or HEAD for endpoints whose body does not matter.
    pub enum HttpMethod("method") {
        #[default]
        Get => "GET",
        Head => "HEAD",
    }
}
ansible_module::string_schema!(HttpUrl);

impl schemars::JsonSchema for StatusCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusCode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "integer", "minimum": 100, "maximum": 599})
    }
}
