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
    "gpus",
    "systemd",
    "system_state",
    "systemd_bus",
    "containers",
    "containers_all_healthy",
    "docker_host",
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
    #[serde(default)]
    pub gpus: Option<GpuCheck>,
    #[serde(default)]
    pub systemd: Option<List<StrOrMap<SystemdCheck>>>,
    #[serde(default)]
    pub system_state: Option<StrOrMap<SystemStateCheck>>,
    /// The D-Bus address of the system bus the systemd checks use.
    #[serde(default)]
    pub systemd_bus: Option<String>,
    #[serde(default)]
    pub containers: Option<List<StrOrMap<ContainerCheck>>>,
    #[serde(default)]
    pub containers_all_healthy: Option<Toggle<AllContainersHealthyCheck>>,
    /// The container engine's unix socket; defaults to `DOCKER_HOST` or /var/run/docker.sock.
    #[serde(default)]
    pub docker_host: Option<DockerHost>,
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

check_params! {
/// One systemd unit: by name alone (it must be active) or with what else must hold.
pub struct SystemdCheck {
    pub unit: UnitName,
    #[serde(default)]
    pub state: UnitStateWanted,
    #[serde(default, deserialize_with = "optional_boolean")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    pub max_restarts: Option<u32>,
    #[serde(default)]
    pub min_uptime: Option<Duration>,
}
}

impl Shorthand for SystemdCheck {
    fn from_shorthand(text: &str) -> Result<Self, String> {
        Ok(Self {
            unit: text.parse()?,
            state: UnitStateWanted::default(),
            enabled: None,
            max_restarts: None,
            min_uptime: None,
            name: None,
            mandatory: true,
            timeout: None,
        })
    }
}

/// `null` or absent is "no requirement"; otherwise Ansible's boolean spellings.
fn optional_boolean<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        value => ansible_module::types::parse_bool_value(&value)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// The unit types systemd knows, by the suffix of their names.
pub const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "timer",
    "target",
    "mount",
    "automount",
    "path",
    "slice",
    "scope",
    "swap",
    "device",
];

/// A full unit name such as `nginx.service` or `getty@tty1.service`, checked when the arguments
/// are read so that a typo is a parameter error rather than a "not found" at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitName(String);

impl UnitName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The type suffix without the dot: `service`, `socket`, ...
    pub fn suffix(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(_, suffix)| suffix)
    }
}

impl std::str::FromStr for UnitName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| {
            format!(
                "invalid unit name {text:?}: {why} (expected a full unit name such as \
                 \"nginx.service\" or \"getty@tty1.service\")"
            )
        };
        let name = text.trim();
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        // systemd's UNIT_NAME_MAX is 256 bytes including the terminating NUL.
        if name.len() > 255 {
            return Err(invalid("longer than 255 characters"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
        {
            return Err(invalid(&format!(
                "character {bad:?} is not allowed (letters, digits and \":-_.\\@\" are)"
            )));
        }
        let (prefix, suffix) = name.rsplit_once('.').unwrap_or((name, ""));
        if !UNIT_SUFFIXES.contains(&suffix) {
            return Err(invalid(&format!(
                "unknown unit type suffix (expected .{})",
                UNIT_SUFFIXES.join(", .")
            )));
        }
        if prefix.is_empty() || prefix.starts_with('@') {
            return Err(invalid("nothing before the suffix"));
        }
        match prefix.split_once('@') {
            Some((_, instance)) if instance.contains('@') => {
                return Err(invalid("more than one '@'"))
            }
            Some((_, "")) => return Err(invalid("a template: name an instance such as foo@bar")),
            _ => {}
        }
        Ok(Self(name.to_string()))
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UnitName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which ActiveState a unit must be in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnitStateWanted {
    /// `active` (or `reloading`, which is active too).
    #[default]
    Active,
    /// `inactive` exactly: a `failed` unit is not inactive.
    Inactive,
    /// No requirement: only that the unit exists (with whatever else is asked).
    Any,
}

impl UnitStateWanted {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Any => "any",
        }
    }
}

impl<'de> Deserialize<'de> for UnitStateWanted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            "any" => Ok(Self::Any),
            _ => Err(serde::de::Error::custom(format!(
                "invalid state {text:?} (expected active, inactive or any)"
            ))),
        }
    }
}

check_params! {
/// The manager's overall state (`systemctl is-system-running`).
pub struct SystemStateCheck {
    #[serde(default)]
    pub state: SystemState,
}
}

impl Shorthand for SystemStateCheck {
    fn from_shorthand(text: &str) -> Result<Self, String> {
        Ok(Self {
            state: text.parse()?,
            name: None,
            mandatory: true,
            timeout: None,
        })
    }
}

/// The states systemd's Manager.SystemState reports.
pub const SYSTEM_STATES: &[&str] = &[
    "initializing",
    "starting",
    "running",
    "degraded",
    "maintenance",
    "stopping",
    "offline",
    "unknown",
];

/// One of [`SYSTEM_STATES`]; `running` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemState(String);

impl SystemState {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SystemState {
    fn default() -> Self {
        Self("running".to_string())
    }
}

impl std::str::FromStr for SystemState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let state = text.trim().to_ascii_lowercase();
        if SYSTEM_STATES.contains(&state.as_str()) {
            Ok(Self(state))
        } else {
            Err(format!(
                "invalid system state {text:?} (expected one of {})",
                SYSTEM_STATES.join(", ")
            ))
        }
    }
}

impl<'de> Deserialize<'de> for SystemState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

check_params! {
/// One container, by name or ID: its state, its healthcheck and how often it restarted.
pub struct ContainerCheck {
    pub container: ContainerName,
    #[serde(default)]
    pub state: ContainerState,
    #[serde(default)]
    pub health: HealthWanted,
    #[serde(default, deserialize_with = "boolean")]
    pub require_healthcheck: bool,
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    pub max_restarts: Option<u64>,
}
}

impl Shorthand for ContainerCheck {
    fn from_shorthand(text: &str) -> Result<Self, String> {
        Ok(Self {
            container: text.parse()?,
            state: ContainerState::default(),
            health: HealthWanted::default(),
            require_healthcheck: false,
            max_restarts: None,
            name: None,
            mandatory: true,
            timeout: None,
        })
    }
}

/// A container name or ID as Docker accepts it (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, optionally with
/// the leading `/` that `docker inspect` shows), kept without the slash. Checked when the
/// arguments are read, so that it is safe in an API path and a typo is a parameter error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerName(String);

impl ContainerName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ContainerName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let name = text.trim();
        let name = name.strip_prefix('/').unwrap_or(name);
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if valid {
            Ok(Self(name.to_string()))
        } else {
            Err(format!(
                "invalid container name {text:?} (expected a container name or ID: a letter or \
                 digit, then letters, digits, '_', '.' or '-')"
            ))
        }
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContainerName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The states the Docker Engine API reports in `State.Status`.
pub const CONTAINER_STATES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

/// Which `State.Status` a container must be in; `running` by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    #[default]
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

impl std::str::FromStr for ContainerState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => {
                return Err(format!(
                    "invalid container state {text:?} (expected one of {})",
                    CONTAINER_STATES.join(", ")
                ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for ContainerState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a container's healthcheck must say: `healthy` (the default), or `any` to accept any
/// health status (the state and restarts are still checked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HealthWanted {
    #[default]
    Healthy,
    Any,
}

impl<'de> Deserialize<'de> for HealthWanted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "healthy" => Ok(Self::Healthy),
            "any" => Ok(Self::Any),
            _ => Err(serde::de::Error::custom(format!(
                "invalid health {text:?} (expected healthy or any)"
            ))),
        }
    }
}

check_params! {
/// `containers_all_healthy`: every running container is healthy or has no healthcheck.
pub struct AllContainersHealthyCheck {}
}

impl Default for AllContainersHealthyCheck {
    fn default() -> Self {
        Self {
            name: None,
            mandatory: true,
            timeout: None,
        }
    }
}

/// A check that is switched on by `true` (with its defaults) or by a mapping of its settings,
/// and off by `false` or `null`; Ansible's boolean spellings (`yes`, `"on"`, ...) are accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Toggle<T>(pub Option<T>);

impl<T> Toggle<T> {
    pub fn enabled(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: Default + Deserialize<'de>> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ToggleVisitor<T>(std::marker::PhantomData<T>);

        impl<T> ToggleVisitor<T> {
            fn switch<E: serde::de::Error>(value: serde_json::Value) -> Result<Toggle<T>, E>
            where
                T: Default,
            {
                ansible_module::types::parse_bool_value(&value)
                    .map(|on| Toggle(on.then(T::default)))
                    .map_err(E::custom)
            }
        }

        impl<'de, T: Default + Deserialize<'de>> serde::de::Visitor<'de> for ToggleVisitor<T> {
            type Value = Toggle<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or a mapping")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Toggle<T>, E> {
                Ok(Toggle(v.then(T::default)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Toggle<T>, E> {
                Self::switch(v.into())
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Toggle<T>, E> {
                Self::switch(v.into())
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Toggle<T>, E> {
                Self::switch(v.into())
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Toggle<T>, E> {
                Ok(Toggle(None))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Toggle<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|settings| Toggle(Some(settings)))
            }
        }

        deserializer.deserialize_any(ToggleVisitor(std::marker::PhantomData))
    }
}

/// The container engine's API socket: `unix:///var/run/docker.sock` or the plain path
/// (Podman's Docker-compatible socket works too). Only unix sockets: no TCP, no TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHost(String);

impl DockerHost {
    /// The socket's path.
    pub fn path(&self) -> &str {
        &self.0
    }
}

impl Default for DockerHost {
    /// Docker's standard socket.
    fn default() -> Self {
        Self("/var/run/docker.sock".to_string())
    }
}

impl std::str::FromStr for DockerHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let path = match trimmed.strip_prefix("unix://") {
            Some(path) => path,
            None if trimmed.contains("://") => {
                return Err(format!(
                    "unsupported engine address {text:?}: only unix sockets are supported \
                     (expected unix:///path/to/docker.sock or /path/to/docker.sock)"
                ))
            }
            None => trimmed,
        };
        if !path.starts_with('/') {
            return Err(format!(
                "invalid engine socket {text:?}: expected an absolute path \
                 (unix:///path/to/docker.sock or /path/to/docker.sock)"
            ));
        }
        Ok(Self(path.to_string()))
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix://{}", self.0)
    }
}

impl<'de> Deserialize<'de> for DockerHost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
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

check_params! {
/// NVIDIA GPUs, all devices judged as one check.
pub struct GpuCheck {
    #[serde(default = "one", deserialize_with = "ansible_module::types::number")]
    pub min_count: u32,
    /// Defaults to each device's slowdown threshold minus a margin.
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    pub max_temperature_c: Option<u32>,
    #[serde(default)]
    pub min_driver_version: Option<DriverVersion>,
    /// Without a driver: `fail` when true, `skip` when false.
    #[serde(default, deserialize_with = "boolean")]
    pub required: bool,
}
}

fn one() -> u32 {
    1
}

/// A dotted driver version such as `535.104.05`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion(pub String);

impl fmt::Display for DriverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DriverVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A YAML `535.54` arrives as a number.
        let text = match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(serde::de::Error::custom(
                    "expected a driver version such as \"535.104.05\"",
                ))
            }
        };
        let valid = !text.is_empty()
            && text
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if valid {
            Ok(Self(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid driver version {text:?} (expected digits and dots, e.g. \"535.104.05\")"
            )))
        }
    }
}
