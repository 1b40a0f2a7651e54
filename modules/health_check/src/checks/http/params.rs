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

/// An `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub reqwest::Url);

impl std::str::FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text.trim()).map_err(|e| {
            format!("invalid URL {text:?}: {e} (expected http://host[:port]/path or https://...)")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "invalid URL {text:?}: expected an http:// or https:// URL with a host"
            ));
        }
        Ok(Self(url))
    }
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
