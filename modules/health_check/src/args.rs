//! The module's parameters, as a task writes them.

use ansible_module::types::{boolean, ByteSize, Duration, List, Percent, Shorthand, StrOrMap};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Every top-level parameter, for `--help` and the `unsupported parameter` message.
pub const PARAMETERS: &[&str] = &[
    "disks",
    "memory",
    "load",
    "tcp",
    "http",
    "timeout",
    "deadline",
    "wait_timeout",
    "interval",
    "summary_path",
    "junit_path",
    "prometheus_path",
];

/// Header values may carry credentials (`Authorization`): never echoed back.
pub const NO_LOG: &[&str] = &["headers"];

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub disks: Option<List<StrOrMap<DiskCheck>>>,
    #[serde(default)]
    pub memory: Option<MemoryCheck>,
    #[serde(default)]
    pub load: Option<LoadCheck>,
    #[serde(default)]
    pub tcp: Option<List<StrOrMap<TcpCheck>>>,
    #[serde(default)]
    pub http: Option<List<StrOrMap<HttpCheck>>>,
    /// The per-check timeout for checks that set none.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// The limit for the whole run, waiting included. Defaults to 60s plus `wait_timeout`.
    #[serde(default)]
    pub deadline: Option<Duration>,
    /// How long to keep re-running failed checks until every mandatory one passes.
    #[serde(default)]
    pub wait_timeout: Option<Duration>,
    /// The pause between attempts while waiting.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// Where to write the host's summary document (JSON).
    #[serde(default)]
    pub summary_path: Option<std::path::PathBuf>,
    /// Where to write JUnit XML, one testcase per check.
    #[serde(default)]
    pub junit_path: Option<std::path::PathBuf>,
    /// Where to write a node_exporter textfile-collector file.
    #[serde(default)]
    pub prometheus_path: Option<std::path::PathBuf>,
}

/// Declares a check's parameter struct with the settings every check kind shares appended:
/// `name`, `mandatory` (default true) and `timeout`. (serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, hence a macro.)
macro_rules! check_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($body)*
            /// How the check is named in the results; defaults to what it checks.
            #[serde(default)]
            pub name: Option<String>,
            /// A failed mandatory check fails the task; an advisory one only warns.
            #[serde(default = "yes", deserialize_with = "boolean")]
            pub mandatory: bool,
            #[serde(default)]
            pub timeout: Option<Duration>,
        }

        impl $name {
            pub fn common(&self) -> Common<'_> {
                Common { name: self.name.as_deref(), mandatory: self.mandatory, timeout: self.timeout }
            }
        }
    };
}

/// The shared settings of one check entry.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    pub name: Option<&'a str>,
    pub mandatory: bool,
    pub timeout: Option<Duration>,
}

fn yes() -> bool {
    true
}

check_params! {
pub struct DiskCheck {
    pub path: String,
    #[serde(default = "default_disk_percent")]
    pub max_used_percent: Percent,
    #[serde(default)]
    pub min_free: Option<ByteSize>,
    #[serde(default = "default_disk_percent")]
    pub max_inodes_used_percent: Percent,
}
}

fn default_disk_percent() -> Percent {
    Percent(90.0)
}

impl Shorthand for DiskCheck {
    fn from_shorthand(text: &str) -> Result<Self, String> {
        Ok(Self {
            path: text.to_string(),
            max_used_percent: default_disk_percent(),
            min_free: None,
            max_inodes_used_percent: default_disk_percent(),
            name: None,
            mandatory: true,
            timeout: None,
        })
    }
}

check_params! {
pub struct MemoryCheck {
    #[serde(default = "default_memory_percent")]
    pub max_used_percent: Percent,
}
}

fn default_memory_percent() -> Percent {
    Percent(90.0)
}

check_params! {
pub struct LoadCheck {
    #[serde(
        default = "default_max_per_cpu",
        deserialize_with = "ansible_module::types::number"
    )]
    pub max_per_cpu: f64,
    #[serde(default)]
    pub window: LoadWindow,
}
}

fn default_max_per_cpu() -> f64 {
    2.0
}

/// Which load average: over 1, 5 or 15 minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadWindow {
    One,
    #[default]
    Five,
    Fifteen,
}

impl LoadWindow {
    pub fn minutes(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Five => 5,
            Self::Fifteen => 15,
        }
    }
}

impl<'de> Deserialize<'de> for LoadWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let minutes: u64 = ansible_module::types::number(deserializer)?;
        match minutes {
            1 => Ok(Self::One),
            5 => Ok(Self::Five),
            15 => Ok(Self::Fifteen),
            other => Err(serde::de::Error::custom(format!(
                "invalid load window {other} (expected 1, 5 or 15 minutes)"
            ))),
        }
    }
}

check_params! {
pub struct TcpCheck {
    pub address: HostPort,
}
}

impl Shorthand for TcpCheck {
    fn from_shorthand(text: &str) -> Result<Self, String> {
        Ok(Self {
            address: text.parse()?,
            name: None,
            mandatory: true,
            timeout: None,
        })
    }
}

/// `host:port` or `[v6]:port`, checked when the arguments are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for HostPort {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| {
            format!(
                "invalid address {text:?}: {why} (expected \"host:port\" or \"[v6 address]:port\")"
            )
        };
        let s = text.trim();
        let (host, port) = s.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .ok_or_else(|| invalid("unclosed '['"))?,
            None if host.contains(':') => return Err(invalid("IPv6 addresses need brackets")),
            None => host,
        };
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid("bad character in host"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("port must be 1-65535"))?;
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

check_params! {
pub struct HttpCheck {
    pub url: HttpUrl,
    #[serde(default)]
    pub status: Option<List<StatusCode>>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub method: HttpMethod,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "yes", deserialize_with = "boolean")]
    pub validate_certs: bool,
    #[serde(
        default = "default_cert_expiry_warn_days",
        deserialize_with = "ansible_module::types::number"
    )]
    pub cert_expiry_warn_days: u32,
    #[serde(default, deserialize_with = "boolean")]
    pub follow_redirects: bool,
    #[serde(default, deserialize_with = "boolean")]
    pub use_proxy: bool,
}
}

fn default_cert_expiry_warn_days() -> u32 {
    14
}

impl Shorthand for HttpCheck {
    fn from_shorthand(text: &str) -> Result<Self, String> {
        Ok(Self {
            url: text.parse()?,
            status: None,
            body_contains: None,
            method: HttpMethod::default(),
            headers: BTreeMap::new(),
            validate_certs: true,
            cert_expiry_warn_days: default_cert_expiry_warn_days(),
            follow_redirects: false,
            use_proxy: false,
            name: None,
            mandatory: true,
            timeout: None,
        })
    }
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

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_uppercase().as_str() {
            "GET" => Ok(Self::Get),
            "HEAD" => Ok(Self::Head),
            _ => Err(serde::de::Error::custom(format!(
                "invalid method {text:?} (expected GET or HEAD)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn urls_must_be_http() {
        assert!("https://example.invalid/health".parse::<HttpUrl>().is_ok());
        assert!("ftp://example.invalid/".parse::<HttpUrl>().is_err());
        assert!("not a url".parse::<HttpUrl>().is_err());
    }
}
