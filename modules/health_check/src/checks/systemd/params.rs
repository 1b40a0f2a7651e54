//! The `systemd` entries (one unit each) and the `system_state` setting.

use crate::args::check_params;
use crate::checks::flapping::FlapPolicy;
use ansible_module::types::Duration;
use ansible_module::types::Shorthand;
use std::fmt;

check_params! {
/// One systemd unit: by name alone (it must be active) or with what else must hold.
pub struct SystemdParams {
    pub unit: UnitName,
    #[serde(default)]
    pub state: UnitStateWanted,
    #[serde(default, deserialize_with = "ansible_module::types::optional_boolean")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    pub max_restarts: Option<u32>,
    #[serde(default)]
    pub min_uptime: Option<Duration>,
    /// A restart loop fails the check (`fail`), only warns (`warn`) or is not judged (`ignore`).
    #[serde(default)]
    pub flapping: FlapPolicy,
    /// A service that restarted by itself and has been up for less than this is flapping.
    #[serde(default)]
    pub flap_window: Option<Duration>,
}
}

impl SystemdParams {
    /// `flap_window`, or its default.
    pub fn flap_window(&self) -> std::time::Duration {
        self.flap_window
            .map_or(crate::checks::flapping::DEFAULT_FLAP_WINDOW, Duration::get)
    }
}

impl Shorthand for SystemdParams {
    const FIELD: &'static str = "unit";
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

ansible_module::deserialize_from_str!(UnitName);

ansible_module::keyword_enum! {
    /// Which ActiveState a unit must be in: `active` (or `reloading`, which is active too),
    /// `inactive` exactly (a `failed` unit is not inactive), or `any` (only that the unit
    /// exists, with whatever else is asked).
    pub enum UnitStateWanted("state") {
        #[default]
        Active => "active",
        Inactive => "inactive",
        Any => "any",
    }
}

check_params! {
/// The manager's overall state (`systemctl is-system-running`).
pub struct SystemStateParams {
    #[serde(default)]
    pub state: SystemState,
}
}

impl Shorthand for SystemStateParams {
    const FIELD: &'static str = "state";
}

ansible_module::keyword_enum! {
    /// The states systemd's Manager.SystemState reports; `running` by default.
    pub enum SystemState("system state") {
        Initializing => "initializing",
        Starting => "starting",
        #[default]
        Running => "running",
        Degraded => "degraded",
        Maintenance => "maintenance",
        Stopping => "stopping",
        Offline => "offline",
        Unknown => "unknown",
    }
}
ansible_module::string_schema!(UnitName);
