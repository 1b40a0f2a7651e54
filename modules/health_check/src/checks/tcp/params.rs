//! The `tcp` entries: `host:port` addresses that must accept a connection.

use crate::args::check_params;
use ansible_module::types::Shorthand;
use std::fmt;

check_params! {
pub struct TcpParams {
    pub address: HostPort,
}
}

impl Shorthand for TcpParams {
    const FIELD: &'static str = "address";
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

ansible_module::deserialize_from_str!(HostPort);
ansible_module::string_schema!(HostPort);
