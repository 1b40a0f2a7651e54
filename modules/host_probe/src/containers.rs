//! Container facts from the engine: one container by name or ID, or every live one (running,
//! restarting, paused or dead). The engine's typed states (`ContainerStateStatusEnum`,
//! `HealthStatusEnum`) are kept as they are; its timestamps become CLOCK_REALTIME microseconds,
//! with the instant the engine answered, so that a judge can tell how long a container has been
//! up when it was read (not when it is judged).

use crate::engine::{Engine, EngineError};
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::ListContainersOptions;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How much of a healthcheck's output is kept.
pub const MAX_OUTPUT_CHARS: usize = 200;

/// What the engine says about one container, reduced to what a check judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerFacts {
    /// Without Docker's leading `/`.
    pub name: String,
    pub id: String,
    /// `State.Status`; `None` when the engine did not say.
    pub status: Option<ContainerStateStatusEnum>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// Restarts by the restart policy (`RestartCount`); a manual `docker restart` is not one.
    pub restart_count: u64,
    /// `State.StartedAt` in CLOCK_REALTIME microseconds; `None` when it never started.
    pub started_at_usec: Option<u64>,
    /// `State.FinishedAt` in CLOCK_REALTIME microseconds; `None` when it never stopped.
    pub finished_at_usec: Option<u64>,
    /// When the engine answered, in CLOCK_REALTIME microseconds (0: unknown).
    pub read_at_usec: u64,
    /// `None`: the container has no healthcheck.
    pub health: Option<HealthFacts>,
}

/// `State.Health` of a container that has a healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthFacts {
    /// starting, healthy or unhealthy.
    pub status: HealthStatusEnum,
    pub failing_streak: u64,
    /// The newest entry of the health log.
    pub last_exit_code: Option<i64>,
    pub last_output: Option<String>,
}

/// One container as the engine answered, with the API version agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspected<T> {
    pub facts: T,
    pub api_version: String,
}

impl ContainerFacts {
    /// The facts of one inspect answer, received at `read_at_usec` (CLOCK_REALTIME
    /// microseconds).
    pub fn from_inspect(response: &ContainerInspectResponse, read_at_usec: u64) -> Self {
        let state = response.state.as_ref();
        let health = state.and_then(|s| s.health.as_ref()).and_then(|health| {
            // "none" (or nothing) is what the engine says for a container without one.
            let status = health
                .status
                .filter(|s| !matches!(s, HealthStatusEnum::NONE | HealthStatusEnum::EMPTY))?;
            let last = health.log.as_ref().and_then(|log| log.last());
            Some(HealthFacts {
                status,
                failing_streak: non_negative(health.failing_streak),
                last_exit_code: last.and_then(|entry| entry.exit_code),
                last_output: last
                    .and_then(|entry| entry.output.as_deref())
                    .map(one_line)
                    .filter(|output| !output.is_empty()),
            })
        });
        Self {
            name: response
                .name
                .as_deref()
                .map(|name| name.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            id: response.id.clone().unwrap_or_default(),
            status: state
                .and_then(|s| s.status)
                .filter(|status| *status != ContainerStateStatusEnum::EMPTY),
            exit_code: state.and_then(|s| s.exit_code),
            oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
            restart_count: non_negative(response.restart_count),
            started_at_usec: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(unix_usec_from_rfc3339),
            finished_at_usec: state
                .and_then(|s| s.finished_at.as_deref())
                .and_then(unix_usec_from_rfc3339),
            read_at_usec,
            health,
        }
    }

    /// How long the container has been up at the instant it was read: from `StartedAt` to the
    /// answer, for a running or paused container; `None` for any other state.
    pub fn uptime(&self) -> Option<std::time::Duration> {
        use ContainerStateStatusEnum::{PAUSED, RUNNING};
        let started = self.started_at_usec?;
        (matches!(self.status, Some(RUNNING | PAUSED)) && self.read_at_usec > 0)
            .then(|| std::time::Duration::from_micros(self.read_at_usec.saturating_sub(started)))
    }

    /// The first 12 characters of the ID, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// CLOCK_REALTIME now, in microseconds.
pub fn realtime_now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An engine timestamp (`2026-11-25T11:00:00.123456789Z`, or with an offset such as `+01:00`
/// as Podman writes it) in microseconds since the epoch. `None` for Go's zero time
/// (`0001-01-01T00:00:00Z`, "never"), anything before 1970, or text that is not RFC 3339.
pub fn unix_usec_from_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let bytes = text.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 20
        || separators.iter().any(|&(at, c)| bytes[at] != c)
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept: String = fraction[..digits.min(6)].to_string();
        micros = kept.parse::<i64>().ok()? * 10i64.pow(6 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (hours, minutes) = rest[1..].split_once(':')?;
            if hours.len() != 2 || minutes.len() != 2 {
                return None;
            }
            sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs.checked_mul(1_000_000)?.checked_add(micros)?).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn non_negative(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// A healthcheck's output on one line: whitespace runs (newlines included) become one space,
/// and it is cut to [`MAX_OUTPUT_CHARS`].
pub fn one_line(output: &str) -> String {
    let joined = output.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Inspects one container by name or ID.
pub async fn inspect(
    engine: &Engine,
    name: &str,
) -> Result<Inspected<ContainerFacts>, EngineError> {
    let docker = engine.client().await?;
    let api_version = docker.client_version().to_string();
    match docker.inspect_container(name, None).await {
        Ok(response) => Ok(Inspected {
            facts: ContainerFacts::from_inspect(&response, realtime_now_usec()),
            api_version,
        }),
        Err(err) if is_not_found(&err) => Err(EngineError::NotFound {
            name: name.to_string(),
            api_version,
        }),
        Err(source) => Err(EngineError::Inspect {
            name: name.to_string(),
            api_version,
            source,
        }),
    }
}

/// The states [`live`] lists: a container that is meant to be up. Created, exited and
/// removing ones are not (a finished one-shot job is not unhealthy).
pub const LIVE_STATES: [&str; 4] = ["running", "restarting", "paused", "dead"];

/// Inspects every live container ([`LIVE_STATES`]), in no particular order.
pub async fn live(engine: &Engine) -> Result<Inspected<Vec<ContainerFacts>>, EngineError> {
    let docker = engine.client().await?;
    let api_version = docker.client_version().to_string();
    let options = ListContainersOptions {
        // Values of one filter are alternatives: any of these states.
        all: true,
        filters: Some(HashMap::from([(
            "status".to_string(),
            LIVE_STATES.iter().map(|s| s.to_string()).collect(),
        )])),
        ..Default::default()
    };
    let listed = match docker.list_containers(Some(options)).await {
        Ok(listed) => listed,
        Err(source) => {
            return Err(EngineError::List {
                api_version,
                source,
            })
        }
    };
    // The list's health summary is not in every API version; inspecting is.
    let mut inspections = tokio::task::JoinSet::new();
    for id in listed.into_iter().filter_map(|summary| summary.id) {
        let docker = docker.clone();
        inspections.spawn(async move {
            let answer = docker.inspect_container(&id, None).await;
            (answer, realtime_now_usec())
        });
    }
    let mut containers = Vec::new();
    while let Some(joined) = inspections.join_next().await {
        match joined.map(|(answer, read_at_usec)| answer.map(|response| (response, read_at_usec))) {
            Ok(Ok((response, read_at_usec))) => {
                containers.push(ContainerFacts::from_inspect(&response, read_at_usec))
            }
            // Removed since it was listed: no longer live, so not ours to judge.
            Ok(Err(err)) if is_not_found(&err) => {}
            Ok(Err(err)) => {
                return Err(EngineError::InspectAll {
                    api_version,
                    reason: crate::engine::describe(&err),
                })
            }
            Err(err) => {
                return Err(EngineError::InspectAll {
                    api_version,
                    reason: err.to_string(),
                })
            }
        }
    }
    Ok(Inspected {
        facts: containers,
        api_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_from_an_engine_answer() {
        // Trimmed from Docker 20.10's answer for a container with a failing healthcheck.
        let response: ContainerInspectResponse = serde_json::from_value(json!({
            "Id": "5f0c3e1d2b4a69788f1e2d3c4b5a69788f1e2d3c4b5a69788f1e2d3c4b5a6978",
            "Name": "/sick",
            "RestartCount": 2,
            "State": {
                "Status": "running", "Running": true, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
                "StartedAt": "2026-11-25T11:00:00.000000000Z",
                "FinishedAt": "0001-01-01T00:00:00Z",
                "Health": {
                    "Status": "unhealthy", "FailingStreak": 5,
                    "Log": [
                        {"Start": "2026-11-25T11:00:01.0Z", "End": "2026-11-25T11:00:01.1Z",
                         "ExitCode": 1, "Output": "old"},
                        {"Start": "2026-11-25T11:00:02.0Z", "End": "2026-11-25T11:00:02.1Z",
                         "ExitCode": 1, "Output": "wget: server returned error: HTTP/1.0 500\n"}
                    ]
                }
            }
        }))
        .unwrap();
        // Read 3.25 s after it started.
        let facts = ContainerFacts::from_inspect(&response, 1_795_604_403_250_000);
        assert_eq!(facts.name, "sick");
        assert_eq!(facts.status, Some(ContainerStateStatusEnum::RUNNING));
        assert_eq!(facts.restart_count, 2);
        assert_eq!(facts.started_at_usec, Some(1_795_604_400_000_000));
        assert_eq!(facts.finished_at_usec, None, "Go's zero time is never");
        assert_eq!(facts.uptime(), Some(std::time::Duration::from_millis(3250)));
        let health = facts.health.unwrap();
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatusEnum::UNHEALTHY, 5)
        );
        assert_eq!(health.last_exit_code, Some(1));
        assert_eq!(
            health.last_output.as_deref(),
            Some("wget: server returned error: HTTP/1.0 500")
        );

        let plain: ContainerInspectResponse = serde_json::from_value(json!({
            "Id": "abc", "Name": "/plain",
            "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": true,
                      "Health": {"Status": "none"}}
        }))
        .unwrap();
        let facts = ContainerFacts::from_inspect(&plain, 0);
        assert_eq!(facts.health, None);
        assert!(facts.oom_killed);
        assert_eq!(facts.exit_code, Some(137));
        assert_eq!(facts.uptime(), None, "an exited container is not up");
    }

    #[test]
    fn engine_timestamps_read_as_microseconds() {
        let read = unix_usec_from_rfc3339;
        assert_eq!(read("2026-11-25T11:00:00Z"), Some(1_795_604_400_000_000));
        assert_eq!(
            read("2026-11-25T11:00:00.123456789Z"),
            Some(1_795_604_400_123_456)
        );
        // Podman writes local time with its offset.
        assert_eq!(
            read("2026-11-25T12:00:00.5+01:00"),
            Some(1_795_604_400_500_000)
        );
        assert_eq!(read("2000-02-29T23:59:59Z"), Some(951_868_799_000_000));
        assert_eq!(read("1970-01-01T00:00:00Z"), Some(0));
        for never_or_bad in [
            "0001-01-01T00:00:00Z",
            "",
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-11-25T11:00:00",
            "2026-11-25T11:00:00.Z",
            "2026-11-25T11:00:00+0100",
            "2026-11-25T1a:00:00Z",
        ] {
            assert_eq!(read(never_or_bad), None, "{never_or_bad:?}");
        }
    }
}
