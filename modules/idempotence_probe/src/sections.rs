//! The small sections of a snapshot: systemd units, packages, sysctl keys, users and groups,
//! each turned into sorted [`Keyed`] entries (a key and its fields as strings, or `None` when
//! the thing does not exist). Names can be patterns (`*`, `?`, `[...]`) except for units, which
//! systemd loads by exact name.

use crate::error::Error;
use crate::glob::{is_pattern, match_name};
use crate::store::{Keyed, Section, WatchSet};
use host_probe::{accounts, packages, sysctl};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Reads every keyed section the watch set names, in section order.
pub fn read_all(
    watch: &WatchSet,
    systemd_bus: Option<&str>,
    timeout: Duration,
) -> Result<Vec<(Section, Vec<Keyed>)>, Error> {
    let mut sections = Vec::new();
    if !watch.systemd_units.is_empty() {
        sections.push((
            Section::Unit,
            units(&watch.systemd_units, systemd_bus, timeout)?,
        ));
    }
    if !watch.packages.is_empty() {
        let path = Path::new(packages::DPKG_STATUS);
        let installed = packages::read_status(path).map_err(|err| Error::Source {
            what: "dpkg's status database",
            path: path.to_path_buf(),
            reason: host_probe::files::reason(&err),
        })?;
        let installed = installed
            .into_iter()
            .map(|(key, p)| {
                let fields = BTreeMap::from([
                    ("version".to_string(), p.version),
                    ("architecture".to_string(), p.architecture),
                    ("status".to_string(), p.status),
                ]);
                (key, fields)
            })
            .collect();
        sections.push((Section::Package, select(&watch.packages, installed)));
    }
    if !watch.sysctl.is_empty() {
        sections.push((Section::Sysctl, sysctl_keys(&watch.sysctl)));
    }
    if !watch.users.is_empty() {
        let path = Path::new(accounts::PASSWD);
        let users = accounts::read_users(path).map_err(|err| Error::Source {
            what: "the user database",
            path: path.to_path_buf(),
            reason: host_probe::files::reason(&err),
        })?;
        let users = users
            .into_iter()
            .map(|(name, u)| {
                let fields = BTreeMap::from([
                    ("uid".to_string(), u.uid),
                    ("gid".to_string(), u.gid),
                    ("gecos".to_string(), u.gecos),
                    ("home".to_string(), u.home),
                    ("shell".to_string(), u.shell),
                ]);
                (name, fields)
            })
            .collect();
        sections.push((Section::User, select(&watch.users, users)));
    }
    if !watch.groups.is_empty() {
        let path = Path::new(accounts::GROUP);
        let groups = accounts::read_groups(path).map_err(|err| Error::Source {
            what: "the group database",
            path: path.to_path_buf(),
            reason: host_probe::files::reason(&err),
        })?;
        let groups = groups
            .into_iter()
            .map(|(name, g)| {
                let fields = BTreeMap::from([
                    ("gid".to_string(), g.gid),
                    ("members".to_string(), g.members.join(",")),
                ]);
                (name, fields)
            })
            .collect();
        sections.push((Section::Group, select(&watch.groups, groups)));
    }
    Ok(sections)
}

/// The entries of `all` that `wanted` names: a literal name is recorded whether it exists or
/// not (absent is state too), a pattern records its matches.
pub fn select(wanted: &[String], all: BTreeMap<String, BTreeMap<String, String>>) -> Vec<Keyed> {
    let mut chosen: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
    for want in wanted {
        if is_pattern(want) {
            for (key, fields) in &all {
                if match_name(want.as_bytes(), key.as_bytes()) {
                    chosen.insert(key.clone(), Some(fields.clone()));
                }
            }
        } else {
            chosen.insert(want.clone(), all.get(want).cloned());
        }
    }
    chosen
        .into_iter()
        .map(|(key, state)| Keyed {
            key,
            state,
            error: None,
        })
        .collect()
}

fn sysctl_keys(wanted: &[String]) -> Vec<Keyed> {
    let root = Path::new(sysctl::PROC_SYS);
    let mut chosen: BTreeMap<String, Keyed> = BTreeMap::new();
    for want in wanted {
        let Some(path) = sysctl::key_path(root, want) else {
            continue;
        };
        let paths = if is_pattern(want) {
            crate::glob::expand(&path.to_string_lossy(), None)
        } else {
            vec![path]
        };
        for path in paths {
            let Some(key) = sysctl::path_key(root, &path) else {
                continue;
            };
            let entry = match sysctl::read_value(&path) {
                Ok(value) => Keyed {
                    key: key.clone(),
                    state: value.map(|v| BTreeMap::from([("value".to_string(), v)])),
                    error: None,
                },
                Err(err) => Keyed {
                    key: key.clone(),
                    state: None,
                    error: Some(host_probe::files::reason(&err)),
                },
            };
            chosen.insert(key, entry);
        }
    }
    chosen.into_values().collect()
}

/// LoadState, ActiveState and UnitFileState of each unit, over D-Bus through host_probe's
/// systemd client (the one health_check uses). A bus that cannot be reached fails the whole
/// task: a snapshot without the units it was asked for would prove nothing.
fn units(wanted: &[String], address: Option<&str>, timeout: Duration) -> Result<Vec<Keyed>, Error> {
    let bus =
        host_probe::systemd::Bus::new(address).map_err(|err| Error::Systemd(err.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    let mut names: Vec<&String> = wanted.iter().collect();
    names.sort();
    names.dedup();
    runtime.block_on(async {
        let connected = tokio::time::timeout(timeout, bus.connection()).await;
        match connected {
            Err(_) => {
                return Err(Error::Systemd(format!(
                    "no answer from the system bus at {} within {timeout:?}",
                    bus.address()
                )))
            }
            Ok(Err(err)) => return Err(Error::Systemd(err.to_string())),
            Ok(Ok(_)) => {}
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let entry = match tokio::time::timeout(timeout, bus.unit(name)).await {
                Ok(Ok(unit)) => Keyed {
                    key: name.clone(),
                    state: Some(BTreeMap::from([
                        (
                            "load_state".to_string(),
                            unit.load_state.as_str().to_string(),
                        ),
                        (
                            "active_state".to_string(),
                            unit.active_state.as_str().to_string(),
                        ),
                        (
                            "unit_file_state".to_string(),
                            unit.unit_file_state.as_str().to_string(),
                        ),
                    ])),
                    error: None,
                },
                Ok(Err(err)) => Keyed {
                    key: name.clone(),
                    state: None,
                    error: Some(err.to_string()),
                },
                Err(_) => Keyed {
                    key: name.clone(),
                    state: None,
                    error: Some(format!("systemd did not answer within {timeout:?}")),
                },
            };
            out.push(entry);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn literal_names_are_recorded_even_when_absent_and_patterns_only_match() {
        let all = BTreeMap::from([
            ("libc6".to_string(), fields(&[("version", "2.36")])),
            ("libssl3".to_string(), fields(&[("version", "3.0")])),
            ("bash".to_string(), fields(&[("version", "5.2")])),
        ]);
        let chosen = select(
            &["lib*".to_string(), "chrony".to_string(), "zz*".to_string()],
            all,
        );
        let keys: Vec<_> = chosen.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["chrony", "libc6", "libssl3"]);
        assert_eq!(chosen[0].state, None);
    }

    #[test]
    fn sysctl_keys_read_proc_sys() {
        let read = sysctl_keys(&[
            "kernel.ostype".to_string(),
            "kernel.no_such_key".to_string(),
        ]);
        assert_eq!(read.len(), 2);
        let ostype = read.iter().find(|k| k.key == "kernel.ostype").unwrap();
        assert_eq!(ostype.state.as_ref().unwrap()["value"], "Linux");
        let missing = read.iter().find(|k| k.key == "kernel.no_such_key").unwrap();
        assert_eq!(missing.state, None);
    }
}
