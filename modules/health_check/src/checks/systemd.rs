//! systemd units and the manager's overall state, read over D-Bus from `org.freedesktop.systemd1`.
//!
//! All systemd checks of a run share one connection to the system bus, made by whichever check
//! needs it first. Reading is split from judging: [`query_unit`] and [`query_system_state`] talk
//! to the bus, [`judge_unit`] and [`judge_system_state`] decide, and only the latter are needed
//! to test the rules.

use crate::args::{SystemStateCheck, SystemdCheck, UnitName, UnitStateWanted};
use crate::check::{CheckMeta, Outcome, Planned, Status};
use ansible_module::types::Duration;
use std::sync::Arc;
use zbus::proxy::CacheProperties;
use zbus::Connection;
use zbus::OwnedObjectPath;

/// Where libdbus and zbus look for the system bus when `DBUS_SYSTEM_BUS_ADDRESS` is unset.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/var/run/dbus/system_bus_socket";

const SYSTEMD: &str = "org.freedesktop.systemd1";

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
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;

    /// The D-Bus error name and message of a failed load; empty when it loaded.
    #[zbus(property)]
    fn load_error(&self) -> zbus::Result<(String, String)>;

    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;

    /// CLOCK_REALTIME in microseconds of the last entry into `active`; 0 if never.
    #[zbus(property)]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
trait Service {
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;

    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
}

/// The system bus, connected to at most once per run and shared by every systemd check. A
/// failed connection is kept too: each check reports it instead of trying again.
#[derive(Clone)]
pub struct Bus {
    address: Arc<str>,
    connection: Arc<tokio::sync::OnceCell<Result<Connection, String>>>,
}

impl Bus {
    /// The bus at `address`, or else at `DBUS_SYSTEM_BUS_ADDRESS`, or else the standard system
    /// bus socket. Nothing connects until a check asks; the error is for a malformed `address`.
    pub fn new(address: Option<&str>) -> Result<Self, String> {
        let address = match address.map(str::trim) {
            Some(given) => {
                zbus::Address::try_from(given).map_err(|err| {
                    format!("parameter 'systemd_bus': invalid D-Bus address {given:?}: {err}")
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
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    async fn connection(&self) -> Result<Connection, String> {
        self.connection
            .get_or_init(|| async {
                zbus::connection::Builder::address(&*self.address)
                    .build()
                    .await
                    .map_err(|err| {
                        format!(
                            "cannot connect to the system bus at {}: {}",
                            self.address,
                            connect_reason(&err)
                        )
                    })
            })
            .await
            .clone()
    }
}

pub fn expected(spec: &SystemdCheck) -> String {
    let mut parts = vec![match spec.state {
        UnitStateWanted::Active => "active".to_string(),
        UnitStateWanted::Inactive => "inactive".to_string(),
        UnitStateWanted::Any => "loaded, any state".to_string(),
    }];
    match spec.enabled {
        Some(true) => parts.push("enabled".into()),
        Some(false) => parts.push("not enabled".into()),
        None => {}
    }
    if let Some(max) = spec.max_restarts {
        parts.push(format!("at most {max} restarts"));
    }
    if let Some(min) = spec.min_uptime {
        parts.push(format!("up for at least {min}"));
    }
    parts.join(", ")
}

pub fn expected_system_state(spec: &SystemStateCheck) -> String {
    format!("system state {}", spec.state.as_str())
}

/// Checks the combinations serde cannot; the error names the parameter (`systemd[2]`).
pub fn plan(
    spec: SystemdCheck,
    meta: CheckMeta,
    bus: &Bus,
    parameter: &str,
) -> Result<Planned, String> {
    if spec.max_restarts.is_some() && spec.unit.suffix() != "service" {
        return Err(format!(
            "parameter '{parameter}.max_restarts': only .service units count restarts, \
             not {}",
            spec.unit
        ));
    }
    if spec.min_uptime.is_some() && spec.state != UnitStateWanted::Active {
        return Err(format!(
            "parameter '{parameter}.min_uptime': needs state active, not {}",
            spec.state.as_str()
        ));
    }
    let bus = bus.clone();
    let work = async move {
        let connection = match bus.connection().await {
            Ok(connection) => connection,
            Err(message) => return Outcome::fail("no bus", message),
        };
        match query_unit(&connection, &spec.unit).await {
            Ok(seen) => judge_unit(&spec, &seen, realtime_usec()),
            Err(err) => Outcome::fail(
                "no answer",
                format!(
                    "cannot read {} from systemd: {}",
                    spec.unit,
                    call_reason(&err, bus.address())
                ),
            ),
        }
    };
    Ok(Planned {
        meta,
        work: Box::pin(work),
    })
}

pub fn plan_system_state(spec: SystemStateCheck, meta: CheckMeta, bus: &Bus) -> Planned {
    let bus = bus.clone();
    let work = async move {
        let connection = match bus.connection().await {
            Ok(connection) => connection,
            Err(message) => return Outcome::fail("no bus", message),
        };
        match query_system_state(&connection).await {
            Ok((state, failed_units)) => {
                judge_system_state(spec.state.as_str(), &state, failed_units)
            }
            Err(err) => Outcome::fail(
                "no answer",
                format!(
                    "cannot read the system state from systemd: {}",
                    call_reason(&err, bus.address())
                ),
            ),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
    }
}

/// What systemd says about one unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitObservation {
    pub load_state: String,
    /// LoadError's message, when loading failed.
    pub load_error: Option<String>,
    pub active_state: String,
    pub sub_state: String,
    /// Empty for units without a unit file (devices, scopes) and for missing ones.
    pub unit_file_state: String,
    /// CLOCK_REALTIME microseconds of the last entry into `active`; 0 if never.
    pub active_enter_usec: u64,
    /// Only for `.service` units.
    pub service: Option<ServiceObservation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceObservation {
    pub n_restarts: u32,
    /// `success`, `exit-code`, `signal`, `timeout`, `start-limit-hit`, ...
    pub result: String,
}

pub async fn query_unit(connection: &Connection, unit: &UnitName) -> zbus::Result<UnitObservation> {
    let manager = ManagerProxy::builder(connection)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let path = manager.load_unit(unit.as_str()).await?;
    let proxy = UnitProxy::builder(connection)
        .destination(SYSTEMD)
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    // One round trip's worth of waiting: the calls go out together on the one connection.
    let (load_state, load_error, active_state, sub_state, unit_file_state, active_enter) = tokio::join!(
        proxy.load_state(),
        proxy.load_error(),
        proxy.active_state(),
        proxy.sub_state(),
        proxy.unit_file_state(),
        proxy.active_enter_timestamp(),
    );
    let load_state = load_state?;
    let service = if unit.suffix() == "service" && load_state != "not-found" {
        let proxy = ServiceProxy::builder(connection)
            .destination(SYSTEMD)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let (n_restarts, result) = tokio::join!(proxy.n_restarts(), proxy.result());
        Some(ServiceObservation {
            // systemd before v235 has no NRestarts: count none rather than fail the check.
            n_restarts: n_restarts.unwrap_or(0),
            result: result?,
        })
    } else {
        None
    };
    Ok(UnitObservation {
        load_state,
        load_error: load_error
            .ok()
            .map(|(_, message)| message)
            .filter(|message| !message.is_empty()),
        active_state: active_state?,
        sub_state: sub_state?,
        unit_file_state: unit_file_state.unwrap_or_default(),
        active_enter_usec: active_enter.unwrap_or(0),
        service,
    })
}

/// The manager's SystemState and, when it is `degraded`, the failed units (sorted).
pub async fn query_system_state(connection: &Connection) -> zbus::Result<(String, FailedUnits)> {
    let manager = ManagerProxy::builder(connection)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let state = manager.system_state().await?;
    let failed = if state == "degraded" {
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
    Ok((state, failed))
}

/// The failed units of a degraded system, or why they could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedUnits {
    Listed(Vec<String>),
    Unknown(String),
}

/// `enabled: true` accepts what `systemctl is-enabled` answers with exit status 0.
const ENABLED_STATES: &[&str] = &[
    "enabled",
    "enabled-runtime",
    "static",
    "alias",
    "indirect",
    "generated",
    "transient",
];

/// `enabled: false` accepts what cannot start at boot by itself.
const NOT_ENABLED_STATES: &[&str] = &[
    "disabled",
    "masked",
    "masked-runtime",
    "linked",
    "linked-runtime",
];

/// Decides a unit check. `now_usec` is CLOCK_REALTIME in microseconds, for `min_uptime`.
pub fn judge_unit(spec: &SystemdCheck, seen: &UnitObservation, now_usec: u64) -> Outcome {
    let unit = &spec.unit;
    let outcome = |status, observed: String, message: String| {
        with_details(
            Outcome::new(status, observed, message),
            unit,
            seen,
            now_usec,
        )
    };
    match seen.load_state.as_str() {
        "not-found" => {
            return outcome(
                Status::Fail,
                "not-found".into(),
                format!("{unit} not found (load state not-found)"),
            )
        }
        "loaded" | "masked" => {}
        other => {
            let why = seen
                .load_error
                .as_deref()
                .map(|message| format!(": {message}"))
                .unwrap_or_default();
            return outcome(
                Status::Fail,
                format!("load state {other}"),
                format!("{unit} could not be loaded (load state {other}){why}"),
            );
        }
    }

    let mut problems = Vec::new();
    let state_ok = match spec.state {
        UnitStateWanted::Active => matches!(seen.active_state.as_str(), "active" | "reloading"),
        UnitStateWanted::Inactive => seen.active_state == "inactive",
        UnitStateWanted::Any => true,
    };
    if !state_ok {
        problems.push(format!(
            "{unit} is {}{} ({}), expected {}",
            if seen.load_state == "masked" {
                "masked and "
            } else {
                ""
            },
            seen.active_state,
            state_detail(seen),
            spec.state.as_str()
        ));
    }
    if let Some(want_enabled) = spec.enabled {
        let file_state = seen.unit_file_state.as_str();
        let wanted = if want_enabled {
            "enabled"
        } else {
            "not enabled"
        };
        let ok = if want_enabled {
            ENABLED_STATES.contains(&file_state)
        } else {
            NOT_ENABLED_STATES.contains(&file_state)
        };
        if !ok && file_state.is_empty() {
            problems.push(format!("{unit} has no unit file state, expected {wanted}"));
        } else if !ok {
            problems.push(format!("{unit} is {file_state}, expected {wanted}"));
        }
    }
    if let (Some(max), Some(service)) = (spec.max_restarts, &seen.service) {
        if service.n_restarts > max {
            problems.push(format!(
                "{unit} restarted {} times, more than max_restarts {max}",
                service.n_restarts
            ));
        }
    }
    if let Some(min) = spec.min_uptime {
        // Only reached with state active; a unit that is not active already failed above.
        if let Some(up) = uptime(seen, now_usec) {
            if up < min.get() {
                problems.push(format!(
                    "{unit} active for {}, less than min_uptime {min}",
                    readable(up)
                ));
            }
        }
    }

    let observed = observed_unit(seen, now_usec);
    if problems.is_empty() {
        outcome(
            Status::Pass,
            observed,
            format!("{unit} is {} ({})", seen.active_state, seen.sub_state),
        )
    } else {
        outcome(Status::Fail, observed, problems.join("; "))
    }
}

/// "sub-state dead, result exit-code": the sub-state, and for services how they last ended.
fn state_detail(seen: &UnitObservation) -> String {
    match &seen.service {
        Some(service) => format!("sub-state {}, result {}", seen.sub_state, service.result),
        None => format!("sub-state {}", seen.sub_state),
    }
}

/// How long the unit has been active, when it is.
fn uptime(seen: &UnitObservation, now_usec: u64) -> Option<std::time::Duration> {
    let active = matches!(seen.active_state.as_str(), "active" | "reloading");
    (active && seen.active_enter_usec > 0)
        .then(|| std::time::Duration::from_micros(now_usec.saturating_sub(seen.active_enter_usec)))
}

/// Whole seconds from ten seconds up; nobody reads "3h2m1.532s".
fn readable(duration: std::time::Duration) -> Duration {
    if duration.as_secs() >= 10 {
        Duration::from_secs(duration.as_secs())
    } else {
        Duration(std::time::Duration::from_millis(duration.as_millis() as u64))
    }
}

fn observed_unit(seen: &UnitObservation, now_usec: u64) -> String {
    let mut parts = vec![format!("{} ({})", seen.active_state, seen.sub_state)];
    if seen.load_state == "masked" {
        parts.insert(0, "masked".into());
    }
    if let Some(service) = &seen.service {
        if service.result != "success" {
            parts.push(format!("result {}", service.result));
        }
    }
    if !seen.unit_file_state.is_empty() && seen.load_state != "masked" {
        parts.push(seen.unit_file_state.clone());
    }
    if let Some(service) = &seen.service {
        parts.push(match service.n_restarts {
            1 => "1 restart".to_string(),
            n => format!("{n} restarts"),
        });
    }
    if let Some(up) = uptime(seen, now_usec) {
        parts.push(format!("up {}", readable(up)));
    }
    parts.join(", ")
}

fn with_details(
    mut outcome: Outcome,
    unit: &UnitName,
    seen: &UnitObservation,
    now_usec: u64,
) -> Outcome {
    outcome = outcome
        .detail("unit", unit.as_str())
        .detail("load_state", seen.load_state.as_str());
    if seen.load_state == "not-found" {
        return outcome;
    }
    outcome = outcome
        .detail("active_state", seen.active_state.as_str())
        .detail("sub_state", seen.sub_state.as_str())
        .detail("unit_file_state", seen.unit_file_state.as_str());
    if let Some(service) = &seen.service {
        outcome = outcome
            .detail("result", service.result.as_str())
            .detail("n_restarts", service.n_restarts);
    }
    if seen.active_enter_usec > 0 {
        let secs = i64::try_from(seen.active_enter_usec / 1_000_000).unwrap_or(i64::MAX);
        outcome = outcome.detail(
            "active_enter_timestamp",
            ansible_module::time::rfc3339_from_unix(secs),
        );
    }
    if let Some(up) = uptime(seen, now_usec) {
        outcome = outcome.detail("uptime_s", crate::checks::round2(up.as_secs_f64()));
    }
    outcome
}

/// Decides the system-state check.
pub fn judge_system_state(expected: &str, state: &str, failed: FailedUnits) -> Outcome {
    let failed_text = match &failed {
        FailedUnits::Listed(names) if names.is_empty() => "none listed".to_string(),
        FailedUnits::Listed(names) => names.join(", "),
        FailedUnits::Unknown(why) => format!("cannot list them: {why}"),
    };
    let degraded = state == "degraded";
    let observed = if degraded {
        format!("degraded (failed units: {failed_text})")
    } else {
        state.to_string()
    };
    let mut outcome = if state == expected {
        Outcome::pass(observed, format!("system is {state}"))
    } else if degraded {
        Outcome::fail(
            observed,
            format!("system is degraded, expected {expected}; failed units: {failed_text}"),
        )
    } else {
        Outcome::fail(observed, format!("system is {state}, expected {expected}"))
    };
    outcome = outcome.detail("system_state", state);
    if let FailedUnits::Listed(names) = failed {
        if degraded {
            outcome = outcome.detail("failed_units", names);
        }
    }
    outcome
}

fn realtime_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Why a connection failed, in a person's words: "No such file or directory", not
/// "failed to connect to `unix:path=...`: No such file or directory (os error 2)".
fn connect_reason(err: &zbus::Error) -> String {
    match err {
        zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io) => plain_io(io),
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
        zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io) => plain_io(io),
        zbus::Error::MethodError(name, Some(detail), _) => format!("{detail} ({})", name.as_str()),
        other => other.to_string(),
    }
}

fn plain_io(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if text.ends_with(')') => text[..cut].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ansible_module::types::StrOrMap;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> SystemdCheck {
        serde_json::from_value::<StrOrMap<SystemdCheck>>(value)
            .unwrap()
            .0
    }

    fn spec_error(value: serde_json::Value) -> String {
        serde_json::from_value::<StrOrMap<SystemdCheck>>(value)
            .unwrap_err()
            .to_string()
    }

    const NOW: u64 = 1_700_000_000_000_000;

    fn running_service() -> UnitObservation {
        UnitObservation {
            load_state: "loaded".into(),
            load_error: None,
            active_state: "active".into(),
            sub_state: "running".into(),
            unit_file_state: "enabled".into(),
            active_enter_usec: NOW - 120_000_000,
            service: Some(ServiceObservation {
                n_restarts: 0,
                result: "success".into(),
            }),
        }
    }

    fn failed_service() -> UnitObservation {
        UnitObservation {
            active_state: "failed".into(),
            sub_state: "failed".into(),
            active_enter_usec: 0,
            service: Some(ServiceObservation {
                n_restarts: 0,
                result: "exit-code".into(),
            }),
            ..running_service()
        }
    }

    #[test]
    fn unit_names_are_validated() {
        for good in [
            "nginx.service",
            "getty@tty1.service",
            "dev-sda1.device",
            "var-lib\\x2ddocker.mount",
            "proc-sys-fs-binfmt_misc.automount",
            "user:1000.slice",
            "fstrim.timer",
        ] {
            assert_eq!(good.parse::<UnitName>().unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("", "empty"),
            ("nginx", "unknown unit type suffix"),
            ("nginx.servce", "unknown unit type suffix"),
            ("ngi nx.service", "character ' ' is not allowed"),
            ("a/b.service", "character '/' is not allowed"),
            ("$(reboot).service", "character '$' is not allowed"),
            (".service", "nothing before the suffix"),
            ("@x.service", "nothing before the suffix"),
            ("getty@.service", "a template"),
            ("a@b@c.service", "more than one '@'"),
        ] {
            let err = bad.parse::<UnitName>().unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(format!("{}.service", "x".repeat(250))
            .parse::<UnitName>()
            .is_err());
    }

    #[test]
    fn parameters_parse_with_defaults_and_ansible_spellings() {
        let s = spec(json!("nginx.service"));
        assert_eq!(s.unit.as_str(), "nginx.service");
        assert_eq!(s.state, UnitStateWanted::Active);
        assert_eq!(
            (s.enabled, s.max_restarts, s.min_uptime),
            (None, None, None)
        );
        assert!(s.mandatory);

        let s = spec(json!({
            "unit": "db.service", "state": "Inactive", "enabled": "yes",
            "max_restarts": "3", "min_uptime": "1m", "mandatory": false
        }));
        assert_eq!(s.state, UnitStateWanted::Inactive);
        assert_eq!(s.enabled, Some(true));
        assert_eq!(s.max_restarts, Some(3));
        assert_eq!(s.min_uptime, Some(Duration::from_secs(60)));
        assert!(!s.mandatory);
        assert_eq!(
            spec(json!({"unit": "a.socket", "enabled": null})).enabled,
            None
        );

        assert!(spec_error(json!({"unit": "a.service", "state": "up"}))
            .contains("invalid state \"up\" (expected active, inactive or any)"));
        assert!(spec_error(json!({"unit": "a.service", "enabled": "maybe"}))
            .contains("expected a boolean"));
        assert!(spec_error(json!({"unit": "a.service", "max_restarts": -1})).contains("-1"));
        assert!(spec_error(json!({"unit": "a.service", "colour": 1})).contains("colour"));
        assert!(spec_error(json!({"state": "active"})).contains("missing field `unit`"));
    }

    #[test]
    fn errors_name_the_parameter_path() {
        let params = json!({"systemd": ["ok.service", {"unit": "bad name.service"}]});
        let serde_json::Value::Object(params) = params else {
            unreachable!()
        };
        let err = ansible_module::args::parse_params::<crate::args::Args>(
            params,
            crate::args::PARAMETERS,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("parameter 'systemd[1].unit': invalid unit name \"bad name.service\""),
            "{err}"
        );
    }

    #[test]
    fn system_state_parameter() {
        let parse = |value| {
            serde_json::from_value::<StrOrMap<SystemStateCheck>>(value).map(|entry| entry.0)
        };
        assert_eq!(parse(json!("running")).unwrap().state.as_str(), "running");
        assert_eq!(parse(json!({})).unwrap().state.as_str(), "running");
        let s = parse(json!({"state": "Degraded", "mandatory": "no", "name": "boot"})).unwrap();
        assert_eq!((s.state.as_str(), s.mandatory), ("degraded", false));
        let err = parse(json!("fine")).unwrap_err().to_string();
        assert!(err.contains("invalid system state \"fine\""), "{err}");
    }

    fn meta() -> CheckMeta {
        CheckMeta {
            kind: "systemd",
            name: "x".into(),
            mandatory: true,
            timeout: std::time::Duration::from_secs(1),
            expected: String::new(),
        }
    }

    #[test]
    fn combinations_are_checked_when_planning() {
        let bus = Bus::new(Some("unix:path=/nonexistent")).unwrap();
        let err = plan(
            spec(json!({"unit": "a.socket", "max_restarts": 1})),
            meta(),
            &bus,
            "systemd[0]",
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            "parameter 'systemd[0].max_restarts': only .service units count restarts, not a.socket"
        );
        let err = plan(
            spec(json!({"unit": "a.service", "state": "any", "min_uptime": "5s"})),
            meta(),
            &bus,
            "systemd[3]",
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            "parameter 'systemd[3].min_uptime': needs state active, not any"
        );
        let err = Bus::new(Some("nonsense")).err().unwrap();
        assert!(
            err.starts_with("parameter 'systemd_bus': invalid D-Bus address \"nonsense\""),
            "{err}"
        );
    }

    #[test]
    fn active_unit_passes() {
        let out = judge_unit(&spec(json!("web.service")), &running_service(), NOW);
        assert_eq!(out.status, Status::Pass, "{out:?}");
        assert_eq!(out.message, "web.service is active (running)");
        assert_eq!(out.observed, "active (running), enabled, 0 restarts, up 2m");
        assert_eq!(out.details["uptime_s"], json!(120.0));
        assert_eq!(out.details["n_restarts"], json!(0));
    }

    #[test]
    fn failed_unit_names_sub_state_and_result() {
        let out = judge_unit(&spec(json!("job.service")), &failed_service(), NOW);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "job.service is failed (sub-state failed, result exit-code), expected active"
        );
        assert_eq!(
            out.observed,
            "failed (failed), result exit-code, enabled, 0 restarts"
        );
        // A failed unit is not inactive either.
        let out = judge_unit(
            &spec(json!({"unit": "job.service", "state": "inactive"})),
            &failed_service(),
            NOW,
        );
        assert_eq!(out.status, Status::Fail);
        let out = judge_unit(
            &spec(json!({"unit": "job.service", "state": "any"})),
            &failed_service(),
            NOW,
        );
        assert_eq!(out.status, Status::Pass);
    }

    #[test]
    fn inactive_unit() {
        let seen = UnitObservation {
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            unit_file_state: "disabled".into(),
            active_enter_usec: 0,
            ..running_service()
        };
        let out = judge_unit(&spec(json!("idle.service")), &seen, NOW);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "idle.service is inactive (sub-state dead, result success), expected active"
        );
        let out = judge_unit(
            &spec(json!({"unit": "idle.service", "state": "inactive", "enabled": false})),
            &seen,
            NOW,
        );
        assert_eq!(out.status, Status::Pass, "{out:?}");
        assert_eq!(out.message, "idle.service is inactive (dead)");
        let out = judge_unit(
            &spec(json!({"unit": "idle.service", "state": "inactive", "enabled": true})),
            &seen,
            NOW,
        );
        assert_eq!(out.message, "idle.service is disabled, expected enabled");
    }

    #[test]
    fn missing_masked_and_broken_units() {
        let missing = UnitObservation {
            load_state: "not-found".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            unit_file_state: String::new(),
            active_enter_usec: 0,
            service: None,
            load_error: Some("Unit nope.service not found.".into()),
        };
        for state in ["active", "inactive", "any"] {
            let out = judge_unit(
                &spec(json!({"unit": "nope.service", "state": state})),
                &missing,
                NOW,
            );
            assert_eq!(out.status, Status::Fail);
            assert_eq!(out.message, "nope.service not found (load state not-found)");
            assert_eq!(out.observed, "not-found");
        }

        let masked = UnitObservation {
            load_state: "masked".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            unit_file_state: "masked".into(),
            active_enter_usec: 0,
            ..running_service()
        };
        let out = judge_unit(&spec(json!("old.service")), &masked, NOW);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "old.service is masked and inactive (sub-state dead, result success), expected active"
        );
        let out = judge_unit(
            &spec(json!({"unit": "old.service", "state": "inactive", "enabled": false})),
            &masked,
            NOW,
        );
        assert_eq!(out.status, Status::Pass, "{out:?}");

        let broken = UnitObservation {
            load_state: "bad-setting".into(),
            load_error: Some("Unit configuration has fatal error".into()),
            ..running_service()
        };
        let out = judge_unit(&spec(json!("broken.service")), &broken, NOW);
        assert_eq!(
            out.message,
            "broken.service could not be loaded (load state bad-setting): Unit configuration has fatal error"
        );
    }

    #[test]
    fn enabled_follows_systemctl_is_enabled() {
        let with = |file_state: &str| UnitObservation {
            unit_file_state: file_state.into(),
            ..running_service()
        };
        let want = |enabled: bool| spec(json!({"unit": "a.service", "enabled": enabled}));
        for state in [
            "enabled",
            "enabled-runtime",
            "static",
            "alias",
            "indirect",
            "generated",
        ] {
            assert_eq!(
                judge_unit(&want(true), &with(state), NOW).status,
                Status::Pass,
                "{state}"
            );
            assert_eq!(
                judge_unit(&want(false), &with(state), NOW).status,
                Status::Fail,
                "{state}"
            );
        }
        for state in ["disabled", "masked", "linked"] {
            assert_eq!(
                judge_unit(&want(true), &with(state), NOW).status,
                Status::Fail,
                "{state}"
            );
            assert_eq!(
                judge_unit(&want(false), &with(state), NOW).status,
                Status::Pass,
                "{state}"
            );
        }
        let out = judge_unit(&want(true), &with(""), NOW);
        assert_eq!(
            out.message,
            "a.service has no unit file state, expected enabled"
        );
        assert_eq!(
            judge_unit(&want(true), &with("bad"), NOW).status,
            Status::Fail
        );
    }

    #[test]
    fn restarts_and_uptime() {
        let restarting = UnitObservation {
            active_state: "activating".into(),
            sub_state: "auto-restart".into(),
            service: Some(ServiceObservation {
                n_restarts: 7,
                result: "exit-code".into(),
            }),
            ..running_service()
        };
        let out = judge_unit(
            &spec(json!({"unit": "flappy.service", "max_restarts": 1})),
            &restarting,
            NOW,
        );
        assert_eq!(
            out.message,
            "flappy.service is activating (sub-state auto-restart, result exit-code), expected \
             active; flappy.service restarted 7 times, more than max_restarts 1"
        );
        let out = judge_unit(
            &spec(json!({"unit": "flappy.service", "state": "any", "max_restarts": 7})),
            &restarting,
            NOW,
        );
        assert_eq!(out.status, Status::Pass);

        let young = UnitObservation {
            active_enter_usec: NOW - 3_500_000,
            ..running_service()
        };
        let out = judge_unit(
            &spec(json!({"unit": "web.service", "min_uptime": "30s"})),
            &young,
            NOW,
        );
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "web.service active for 3.5s, less than min_uptime 30s"
        );
        let out = judge_unit(
            &spec(json!({"unit": "web.service", "min_uptime": "1m"})),
            &running_service(),
            NOW,
        );
        assert_eq!(out.status, Status::Pass);
    }

    #[test]
    fn system_state_judging() {
        let out = judge_system_state("running", "running", FailedUnits::Listed(vec![]));
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Pass, "system is running")
        );
        let failed = FailedUnits::Listed(vec!["a.service".into(), "b.mount".into()]);
        let out = judge_system_state("running", "degraded", failed.clone());
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "system is degraded, expected running; failed units: a.service, b.mount"
        );
        assert_eq!(out.observed, "degraded (failed units: a.service, b.mount)");
        assert_eq!(out.details["failed_units"], json!(["a.service", "b.mount"]));
        let out = judge_system_state("degraded", "degraded", failed);
        assert_eq!(out.status, Status::Pass);
        let out = judge_system_state("running", "starting", FailedUnits::Listed(vec![]));
        assert_eq!(out.message, "system is starting, expected running");
        let out = judge_system_state(
            "running",
            "degraded",
            FailedUnits::Unknown("access denied".into()),
        );
        assert_eq!(
            out.message,
            "system is degraded, expected running; failed units: cannot list them: access denied"
        );
    }

    #[test]
    fn os_error_suffix_is_dropped() {
        let err = std::io::Error::from_raw_os_error(2);
        assert_eq!(plain_io(&err), "No such file or directory");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn missing_socket_is_reported_with_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}/system_bus_socket", dir.path().display());
        let bus = Bus::new(Some(&address)).unwrap();
        let planned = plan(spec(json!("a.service")), meta(), &bus, "systemd[0]").unwrap();
        let out = planned.work.await;
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            format!("cannot connect to the system bus at {address}: No such file or directory")
        );
        // The failure is kept: the next check gets the same answer without a new attempt.
        let out = plan_system_state(
            serde_json::from_value::<StrOrMap<SystemStateCheck>>(json!("running"))
                .unwrap()
                .0,
            meta(),
            &bus,
        )
        .work
        .await;
        assert_eq!(
            out.message,
            format!("cannot connect to the system bus at {address}: No such file or directory")
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn silent_socket_does_not_block_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let bus = Bus::new(Some(&format!("unix:path={}", path.display()))).unwrap();
        let planned = plan(spec(json!("a.service")), meta(), &bus, "systemd[0]").unwrap();
        let started = std::time::Instant::now();
        let result =
            tokio::time::timeout(std::time::Duration::from_millis(300), planned.work).await;
        assert!(result.is_err(), "a silent bus answered: {result:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
