//! systemd over D-Bus (`org.freedesktop.systemd1`): the system bus, the proxies, and the
//! queries for one unit and for the manager's overall state.
//!
//! All queries of a run share one connection to the system bus ([`Bus`]), made by whichever
//! caller needs it first. States come back as enums ([`LoadState`], [`ActiveState`],
//! [`SubState`], [`UnitFileState`]); a state this code does not know yet (systemd adds some)
//! is kept as `Other` rather than refused.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use zbus::proxy::CacheProperties;
use zbus::Connection;
use zbus::{OwnedObjectPath, OwnedVariant};

/// Where libdbus and zbus look for the system bus when `DBUS_SYSTEM_BUS_ADDRESS` is unset.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/var/run/dbus/system_bus_socket";

const SYSTEMD: &str = "org.freedesktop.systemd1";

/// Declares an enum of the strings systemd reports, with an `Other` variant for the ones it may
/// add later; it converts from and displays as systemd's spelling and serializes as a string.
macro_rules! systemd_states {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)*
            /// A spelling this code does not know (or an empty one).
            Other(String),
        }

        impl $name {
            /// systemd's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self::from(text.as_str())
            }
        }

        impl From<$name> for String {
            fn from(state: $name) -> String {
                state.as_str().to_string()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

systemd_states! {
    /// A unit's LoadState.
    LoadState {
        Stub => "stub",
        Loaded => "loaded",
        NotFound => "not-found",
        BadSetting => "bad-setting",
        Error => "error",
        Merged => "merged",
        Masked => "masked",
    }
}

systemd_states! {
    /// A unit's ActiveState.
    ActiveState {
        Active => "active",
        Reloading => "reloading",
        Inactive => "inactive",
        Failed => "failed",
        Activating => "activating",
        Deactivating => "deactivating",
        Maintenance => "maintenance",
        Refreshing => "refreshing",
    }
}

impl ActiveState {
    /// `active` or `reloading`: both mean the unit is up.
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Active | Self::Reloading)
    }
}

systemd_states! {
    /// A unit's SubState; the set depends on the unit type, the common ones are named.
    SubState {
        Dead => "dead",
        Running => "running",
        Exited => "exited",
        Failed => "failed",
        Start => "start",
        StartPre => "start-pre",
        StartPost => "start-post",
        AutoRestart => "auto-restart",
        Reload => "reload",
        Stop => "stop",
        StopSigterm => "stop-sigterm",
        StopSigkill => "stop-sigkill",
        Listening => "listening",
        Waiting => "waiting",
        Elapsed => "elapsed",
        Mounted => "mounted",
        Plugged => "plugged",
        Active => "active",
    }
}

systemd_states! {
    /// A unit's UnitFileState (`systemctl is-enabled`); empty (`Other("")`) for units without
    /// a unit file.
    UnitFileState {
        Enabled => "enabled",
        EnabledRuntime => "enabled-runtime",
        Linked => "linked",
        LinkedRuntime => "linked-runtime",
        Alias => "alias",
        Masked => "masked",
        MaskedRuntime => "masked-runtime",
        Static => "static",
        Disabled => "disabled",
        Invalid => "invalid",
        Indirect => "indirect",
        Generated => "generated",
        Transient => "transient",
        Bad => "bad",
    }
}

impl UnitFileState {
    /// What `systemctl is-enabled` answers with exit status 0.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self,
            Self::Enabled
                | Self::EnabledRuntime
                | Self::Static
                | Self::Alias
                | Self::Indirect
                | Self::Generated
                | Self::Transient
        )
    }

    /// What cannot start at boot by itself.
    pub fn is_not_enabled(&self) -> bool {
        matches!(
            self,
            Self::Disabled
                | Self::Masked
                | Self::MaskedRuntime
                | Self::Linked
                | Self::LinkedRuntime
        )
    }

    /// No unit file state at all (devices, scopes, missing units).
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    /// Loads the unit from disk if it is not loaded yet, so inactive units are found too;
    /// GetUnit only knows loaded ones.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Units whose load, active or sub state is one of `states`.
    fn list_units_filtered(&self, states: &[&str]) -> zbus::Result<Vec<ListedUnit>>;

    #[zbus(property)]
    fn system_state(&self) -> zbus::Result<String>;
}

/// One row of ListUnits: name, description, load state, active state, sub state, followed
/// unit, object path, queued job id, job type, job path.
type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[zbus::proxy(
    interface = "org.freedesktop.DBus.Properties",
    default_service = "org.freedesktop.systemd1"
)]
trait Properties {
    /// Every property of one interface in one round trip.
    fn get_all(&self, interface: &str) -> zbus::Result<HashMap<String, OwnedVariant>>;
}

/// At most this many unit queries are in flight on the one connection. Each query has at most
/// one call pending at a time, and dbus-daemon's stock configuration allows 128 pending replies
/// per connection (`max_replies_per_connection`): more would fail with LimitsExceeded.
pub const MAX_UNIT_QUERIES_IN_FLIGHT: usize = 32;

/// Why systemd could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    #[error("invalid D-Bus address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("cannot connect to the system bus at {address}: {reason}")]
    Connect { address: String, reason: String },
    /// `what` is the unit's name or "the system state".
    #[error("cannot read {what} from systemd: {reason}")]
    Call { what: String, reason: String },
}

impl SystemdError {
    /// A word or two for a result's `observed` field.
    pub fn observed(&self) -> &'static str {
        match self {
            Self::InvalidAddress { .. } | Self::Connect { .. } => "no bus",
            Self::Call { .. } => "no answer",
        }
    }
}

/// The system bus, connected to at most once per run and shared by every query. A failed
/// connection is kept too: each caller gets it instead of trying again.
#[derive(Clone)]
pub struct Bus {
    address: Arc<str>,
    connection: Arc<tokio::sync::OnceCell<Result<Connection, SystemdError>>>,
    /// Bounds the unit queries in flight (see [`MAX_UNIT_QUERIES_IN_FLIGHT`]).
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Bus {
    /// The bus at `address`, or else at `DBUS_SYSTEM_BUS_ADDRESS`, or else the standard system
    /// bus socket. Nothing connects until a query asks; the error is for a malformed `address`.
    pub fn new(address: Option<&str>) -> Result<Self, SystemdError> {
        let address = match address.map(str::trim) {
            Some(given) => {
                zbus::Address::try_from(given).map_err(|err| SystemdError::InvalidAddress {
                    address: given.to_string(),
                    reason: err.to_string(),
                })?;
                given.to_string()
            }
            None => std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                .ok()
                .filter(|from_env| !from_env.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_SYSTEM_BUS.to_string()),
        };
        Ok(Self {
            address: address.into(),
            connection: Arc::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_UNIT_QUERIES_IN_FLIGHT)),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The shared connection, made on first use.
    pub async fn connection(&self) -> Result<Connection, SystemdError> {
        self.connection
            .get_or_init(|| async {
                zbus::connection::Builder::address(&*self.address)
                    .build()
                    .await
                    .map_err(|err| SystemdError::Connect {
                        address: self.address.to_string(),
                        reason: connect_reason(&err),
                    })
            })
            .await
            .clone()
    }

    /// The bound on unit queries in flight, for a caller whose own timeout must not count the
    /// wait for a place (health_check's runner): it holds a permit of this while it calls
    /// [`Bus::unit_holding_slot`].
    pub fn query_slots(&self) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(&self.in_flight)
    }

    /// What systemd says about one unit (a full unit name such as `nginx.service`).
    pub async fn unit(&self, unit: &str) -> Result<UnitObservation, SystemdError> {
        // The semaphore is never closed; were it, the query would simply go unbounded.
        let _permit = self.in_flight.acquire().await.ok();
        self.unit_holding_slot(unit).await
    }

    /// [`Bus::unit`] for a caller that already holds a permit of [`Bus::query_slots`].
    pub async fn unit_holding_slot(&self, unit: &str) -> Result<UnitObservation, SystemdError> {
        let connection = self.connection().await?;
        query_unit(&connection, unit)
            .await
            .map_err(|err| SystemdError::Call {
                what: unit.to_string(),
                reason: call_reason(&err, self.address()),
            })
    }

    /// The manager's SystemState and, when degraded, its failed units.
    pub async fn system_state(&self) -> Result<SystemStateObservation, SystemdError> {
        let connection = self.connection().await?;
        query_system_state(&connection)
            .await
            .map_err(|err| SystemdError::Call {
                what: "the system state".to_string(),
                reason: call_reason(&err, self.address()),
            })
    }
}

/// What systemd says about one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitObservation {
    pub load_state: LoadState,
    /// LoadError's message, when loading failed.
    pub load_error: Option<String>,
    pub active_state: ActiveState,
    pub sub_state: SubState,
    /// Empty for units without a unit file (devices, scopes) and for missing ones.
    pub unit_file_state: UnitFileState,
    /// CLOCK_REALTIME microseconds of the last entry into `active`; 0 if never.
    pub active_enter_usec: u64,
    /// CLOCK_REALTIME microseconds when the properties were read: uptime is judged at this
    /// instant, not when the judge runs.
    pub read_at_usec: u64,
    /// Only for `.service` units.
    pub service: Option<ServiceObservation>,
}

/// What only `.service` units report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceObservation {
    pub n_restarts: u32,
    /// `success`, `exit-code`, `signal`, `timeout`, `start-limit-hit`, ...
    pub result: String,
}

/// The manager's state and, when it is `degraded`, its failed units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStateObservation {
    /// initializing, starting, running, degraded, maintenance, stopping, offline or unknown.
    pub state: String,
    pub failed_units: FailedUnits,
}

/// The failed units of a degraded system (sorted), or why they could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailedUnits {
    Listed(Vec<String>),
    Unknown(String),
}

/// Reads one unit: LoadUnit, then GetAll of the Unit interface and, for services, GetAll of
/// the Service interface, one call after the other. `unit` is a full unit name.
pub async fn query_unit(connection: &Connection, unit: &str) -> zbus::Result<UnitObservation> {
    let manager = ManagerProxy::builder(connection)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let path = manager.load_unit(unit).await?;
    let properties = PropertiesProxy::builder(connection)
        .destination(SYSTEMD)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let unit_props = properties.get_all("org.freedesktop.systemd1.Unit").await?;
    // When the properties were read: uptime is judged at this instant, not when judged.
    let read_at_usec = realtime_now_usec();
    let load_state = LoadState::from(text(&unit_props, "LoadState")?);
    let is_service = unit
        .rsplit_once('.')
        .is_some_and(|(_, suffix)| suffix == "service");
    let service = if is_service && load_state != LoadState::NotFound {
        let service_props = properties
            .get_all("org.freedesktop.systemd1.Service")
            .await?;
        Some(ServiceObservation {
            // systemd before v235 has no NRestarts: count none rather than fail the check.
            n_restarts: number::<u32>(&service_props, "NRestarts").unwrap_or(0),
            result: text(&service_props, "Result")?,
        })
    } else {
        None
    };
    Ok(UnitObservation {
        load_state,
        load_error: load_error(&unit_props),
        active_state: text(&unit_props, "ActiveState")?.into(),
        sub_state: text(&unit_props, "SubState")?.into(),
        unit_file_state: text(&unit_props, "UnitFileState")
            .unwrap_or_default()
            .into(),
        active_enter_usec: number::<u64>(&unit_props, "ActiveEnterTimestamp").unwrap_or(0),
        read_at_usec,
        service,
    })
}

/// A string property of a GetAll answer; its absence is an error (systemd always sends it).
fn text(props: &HashMap<String, OwnedVariant>, name: &str) -> zbus::Result<String> {
    props
        .get(name)
        .and_then(|value| <&str>::try_from(&**value).ok())
        .map(str::to_string)
        .ok_or_else(|| zbus::Error::Failure(format!("systemd sent no {name} property")))
}

fn number<T: for<'a> TryFrom<&'a zbus::Variant<'static>>>(
    props: &HashMap<String, OwnedVariant>,
    name: &str,
) -> Option<T> {
    props.get(name).and_then(|value| T::try_from(&**value).ok())
}

/// LoadError's message (a `(ss)` of error name and message); `None` when it loaded.
fn load_error(props: &HashMap<String, OwnedVariant>) -> Option<String> {
    let structure = <&zbus::Structure<'_>>::try_from(&**props.get("LoadError")?).ok()?;
    let message = <&str>::try_from(structure.fields().get(1)?).ok()?;
    (!message.is_empty()).then(|| message.to_string())
}

/// CLOCK_REALTIME in microseconds, as systemd's timestamps are.
pub fn realtime_now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The manager's SystemState and, when it is `degraded`, the failed units (sorted).
pub async fn query_system_state(connection: &Connection) -> zbus::Result<SystemStateObservation> {
    let manager = ManagerProxy::builder(connection)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let state = manager.system_state().await?;
    let failed_units = if state == "degraded" {
        match manager.list_units_filtered(&["failed"]).await {
            Ok(units) => {
                let mut names: Vec<String> = units.into_iter().map(|unit| unit.0).collect();
                names.sort();
                FailedUnits::Listed(names)
            }
            Err(err) => FailedUnits::Unknown(describe_error(&err)),
        }
    } else {
        FailedUnits::Listed(Vec::new())
    };
    Ok(SystemStateObservation {
        state,
        failed_units,
    })
}

/// Why a connection failed, in a person's words: "No such file or directory", not
/// "failed to connect to `unix:path=...`: No such file or directory (os error 2)".
fn connect_reason(err: &zbus::Error) -> String {
    match err {
        zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io) => crate::error::plain_io(io),
        other => describe_error(other),
    }
}

/// Why a call failed; systemd missing from a bus that answers gets its own words.
fn call_reason(err: &zbus::Error, address: &str) -> String {
    match err {
        zbus::Error::FDO(fdo) if matches!(**fdo, zbus::fdo::Error::ServiceUnknown(_)) => {
            format!("systemd is not on the bus at {address} ({fdo})")
        }
        other => describe_error(other),
    }
}

fn describe_error(err: &zbus::Error) -> String {
    match err {
        zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io) => crate::error::plain_io(io),
        zbus::Error::MethodError(name, Some(detail), _) => format!("{detail} ({})", name.as_str()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_spelling() {
        assert_eq!(LoadState::from("not-found"), LoadState::NotFound);
        assert_eq!(ActiveState::from("reloading").as_str(), "reloading");
        assert!(ActiveState::from("reloading").is_up());
        assert_eq!(SubState::from("auto-restart"), SubState::AutoRestart);
        assert_eq!(
            SubState::from("new-state"),
            SubState::Other("new-state".to_string())
        );
        assert!(UnitFileState::from("").is_empty());
        assert!(UnitFileState::from("static").is_enabled());
        assert!(UnitFileState::from("masked").is_not_enabled());
        let json = serde_json::to_string(&LoadState::Masked).unwrap();
        assert_eq!(json, "\"masked\"");
        assert_eq!(
            serde_json::from_str::<LoadState>(&json).unwrap(),
            LoadState::Masked
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_socket_is_reported_with_its_address_once() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}/system_bus_socket", dir.path().display());
        let bus = Bus::new(Some(&address)).unwrap();
        let expected =
            format!("cannot connect to the system bus at {address}: No such file or directory");
        let err = bus.unit("a.service").await.unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.observed(), "no bus");
        // The failure is kept: the next query gets the same answer without a new attempt.
        assert_eq!(bus.system_state().await.unwrap_err().to_string(), expected);
    }

    #[test]
    fn a_malformed_address_is_refused() {
        let err = Bus::new(Some("nonsense")).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("invalid D-Bus address \"nonsense\""),
            "{err}"
        );
    }
}
