//! The two states: `snapshot` records the watch set, `compare` reports drift from a snapshot.

use crate::args::{self, Args};
use crate::compare::{compare_keyed, Judge, PathJudge, Severity};
use crate::error::Error;
use crate::glob::{expand, is_pattern, Exclude};
use crate::sections;
use crate::store::{self, Header, Keyed, Line, Section, SnapshotReader, SnapshotWriter, WatchSet};
use crate::walk::{self, WalkPlan, WalkStats};
use ansible_module::{Context, Response};
use host_probe::files::{self, FileObservation};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SNAPSHOT_MODE: u32 = 0o600;
const SNAPSHOT_DIR_MODE: u32 = 0o700;
/// Warnings listed one by one before the rest are summarised.
const WARNINGS_LISTED: usize = 10;

fn invalid(name: &str, message: impl Into<String>) -> Error {
    Error::Parameter(ansible_module::Error::InvalidParameter {
        name: name.to_string(),
        message: message.into(),
    })
}

fn snapshot_dir(args: &Args) -> Result<PathBuf, Error> {
    let dir = args
        .snapshot_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(args::DEFAULT_SNAPSHOT_DIR));
    if !dir.is_absolute() {
        return Err(invalid(
            "snapshot_dir",
            format!("{} must be an absolute path", dir.display()),
        ));
    }
    Ok(dir)
}

fn timeout(args: &Args) -> Duration {
    args.timeout.unwrap_or(args::DEFAULT_TIMEOUT).0
}

/// The watch set a task gives, normalised and checked.
fn watch_set(args: &Args) -> Result<WatchSet, Error> {
    let mut paths = Vec::new();
    for (index, raw) in args.paths.iter().flatten().enumerate() {
        paths.push(args::normalize_watch_path(index, raw)?);
    }
    let exclude = args.exclude.clone().unwrap_or_default();
    for (index, pattern) in exclude.iter().enumerate() {
        Exclude::new(pattern).map_err(|message| invalid(&format!("exclude[{index}]"), message))?;
    }
    let list = |list: &Option<ansible_module::types::List<String>>| -> Vec<String> {
        list.iter()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let systemd_units = list(&args.systemd_units);
    for (index, unit) in systemd_units.iter().enumerate() {
        if is_pattern(unit) || !unit.contains('.') {
            return Err(invalid(
                &format!("systemd_units[{index}]"),
                format!("{unit:?} is not a full unit name such as ssh.service (no patterns)"),
            ));
        }
    }
    let sysctl = list(&args.sysctl);
    for (index, key) in sysctl.iter().enumerate() {
        if host_probe::sysctl::key_path(Path::new("/proc/sys"), key).is_none() {
            return Err(invalid(
                &format!("sysctl[{index}]"),
                format!("{key:?} is not a sysctl key such as net.ipv4.ip_forward"),
            ));
        }
    }
    Ok(WatchSet {
        paths,
        exclude,
        one_file_system: args.one_file_system.unwrap_or(true),
        systemd_units,
        packages: list(&args.packages),
        sysctl,
        users: list(&args.users),
        groups: list(&args.groups),
    })
}

fn plan(watch: &WatchSet, timeout: Duration) -> Result<(WalkPlan, Vec<Value>), Error> {
    let mounts = files::mount_points();
    let mut explicit = BTreeSet::new();
    let mut patterns = Vec::new();
    for path in &watch.paths {
        if is_pattern(path) {
            let skip = if watch.one_file_system {
                mounts.as_ref()
            } else {
                None
            };
            let found = expand(path, skip);
            patterns.push(json!({"pattern": path, "matches": found.len()}));
            explicit.extend(found);
        } else {
            explicit.insert(PathBuf::from(path));
        }
    }
    let exclude = watch
        .exclude
        .iter()
        .enumerate()
        .map(|(index, p)| Exclude::new(p).map_err(|m| invalid(&format!("exclude[{index}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        WalkPlan {
            explicit,
            exclude,
            one_file_system: watch.one_file_system,
            mounts,
            mount_timeout: timeout,
            workers: walk::default_workers(),
        },
        patterns,
    ))
}

fn require_something(watch: &WatchSet) -> Result<(), Error> {
    let empty = watch.paths.is_empty()
        && watch.systemd_units.is_empty()
        && watch.packages.is_empty()
        && watch.sysctl.is_empty()
        && watch.users.is_empty()
        && watch.groups.is_empty();
    if empty {
        return Err(invalid(
            "paths",
            "nothing to watch: give at least one of paths, systemd_units, packages, sysctl, \
             users, groups",
        ));
    }
    Ok(())
}

fn section_counts(sections: &[(Section, Vec<Keyed>)]) -> BTreeMap<&'static str, usize> {
    sections
        .iter()
        .map(|(section, entries)| (section.as_str(), entries.len()))
        .collect()
}

fn walk_warnings(response: &mut Response, stats: &WalkStats) {
    if stats.errors > 0 {
        response.warn(format!(
            "{} entries could not be read completely; their errors are recorded and compared: {}",
            stats.errors,
            stats.error_samples.join("; ")
        ));
    }
}

/// `state: snapshot`.
pub fn snapshot(args: &Args, ctx: &Context) -> Result<Response, Error> {
    let started = Instant::now();
    args::validate_name(&args.name)?;
    if let Some(rules) = &args.ignore {
        args::validate_ignore(rules)?;
    }
    let dir = snapshot_dir(args)?;
    let watch = watch_set(args)?;
    require_something(&watch)?;
    let timeout = timeout(args);
    // The small sections first: a bus that cannot be reached fails before a long walk.
    let keyed = sections::read_all(&watch, args.systemd_bus.as_deref(), timeout)?;
    let (plan, patterns) = plan(&watch, timeout)?;
    let header = Header {
        format: store::FORMAT.to_string(),
        version: store::VERSION,
        name: args.name.clone(),
        created: ansible_module::time::now_rfc3339(),
        watch: watch.clone(),
    };
    let path = store::snapshot_path(&dir, &args.name);
    let write_all = |out: &mut dyn std::io::Write| -> std::io::Result<(WalkStats, u64, u64)> {
        let mut writer = SnapshotWriter::new(out, &header)?;
        let stats = walk::walk::<std::io::Error>(&plan, &mut |observation| {
            writer.write(&Line::Path(observation))
        })?;
        for (section, entries) in &keyed {
            for entry in entries {
                if let Some(line) = store::keyed_line(*section, entry.clone()) {
                    writer.write(&line)?;
                }
            }
        }
        let (records, bytes) = writer.finish()?;
        Ok((stats, records, bytes))
    };
    let (stats, records, bytes) = if ctx.check_mode {
        write_all(&mut store::Counter).map_err(Error::Io)?
    } else {
        ensure_dir(&dir)?;
        ansible_module::atomic::write_with(&path, SNAPSHOT_MODE, write_all).map_err(
            |err| match err {
                ansible_module::Error::Write { source, .. } => Error::WriteSnapshot {
                    path: path.clone(),
                    source,
                },
                other => Error::Parameter(other),
            },
        )?
    };
    let mut response = Response::ok(if ctx.check_mode {
        format!(
            "check mode: snapshot '{}' would record {} entries ({} paths) in {}; nothing written",
            args.name,
            records,
            stats.entries,
            path.display()
        )
    } else {
        format!(
            "snapshot '{}' recorded {} entries ({} paths) in {}",
            args.name,
            records,
            stats.entries,
            path.display()
        )
    });
    let mut counts = section_counts(&keyed);
    counts.insert("paths", stats.entries as usize);
    response.insert(
        "snapshot",
        json!({
            "name": args.name,
            "path": path.to_string_lossy(),
            "written": !ctx.check_mode,
            "created": header.created,
            "records": records,
            "bytes": bytes,
            "entries": counts,
            "patterns": patterns,
            "files_hashed": stats.files_hashed,
            "bytes_hashed": stats.bytes_hashed,
            "special_files": stats.special_files,
            "mountpoints_not_entered": stats.mountpoints_not_entered,
            "errors": stats.errors,
            "duration_ms": started.elapsed().as_millis() as u64,
        }),
    );
    walk_warnings(&mut response, &stats);
    Ok(response)
}

/// Creates `snapshot_dir` (mode 0700, parents as needed) when it is missing.
fn ensure_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(SNAPSHOT_DIR_MODE)
        .create(dir)
        .and_then(|()| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SNAPSHOT_DIR_MODE))
        })
        .map_err(|source| Error::SnapshotDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// A compare takes its watch set from the snapshot; one given to the task too must be the
/// same, or the task would silently compare something else than it says.
fn check_same_watch(args: &Args, recorded: &WatchSet) -> Result<(), Error> {
    let given = watch_set(args)?;
    // An empty list counts as not given: playbooks often pass `[]` for a section they skip.
    let given_list = |list: &Option<ansible_module::types::List<String>>| {
        list.as_ref().is_some_and(|l| !l.is_empty())
    };
    let given_paths = |list: &Option<Vec<String>>| list.as_ref().is_some_and(|l| !l.is_empty());
    let checks: [(&str, bool, bool); 8] = [
        (
            "paths",
            given_paths(&args.paths),
            given.paths == recorded.paths,
        ),
        (
            "exclude",
            given_paths(&args.exclude),
            given.exclude == recorded.exclude,
        ),
        (
            "one_file_system",
            args.one_file_system.is_some(),
            given.one_file_system == recorded.one_file_system,
        ),
        (
            "systemd_units",
            given_list(&args.systemd_units),
            given.systemd_units == recorded.systemd_units,
        ),
        (
            "packages",
            given_list(&args.packages),
            given.packages == recorded.packages,
        ),
        (
            "sysctl",
            given_list(&args.sysctl),
            given.sysctl == recorded.sysctl,
        ),
        (
            "users",
            given_list(&args.users),
            given.users == recorded.users,
        ),
        (
            "groups",
            given_list(&args.groups),
            given.groups == recorded.groups,
        ),
    ];
    for (name, given_now, same) in checks {
        if given_now && !same {
            return Err(invalid(
                name,
                format!(
                    "differs from what snapshot '{}' recorded; compare uses the snapshot's \
                     watch set: leave {name} out or give the same value",
                    args.name
                ),
            ));
        }
    }
    Ok(())
}

/// `state: compare`.
pub fn compare(args: &Args, ctx: &Context) -> Result<Response, Error> {
    let started = Instant::now();
    args::validate_name(&args.name)?;
    let ignore = args.ignore.clone().unwrap_or_default();
    args::validate_ignore(&ignore)?;
    let dir = snapshot_dir(args)?;
    let timeout = timeout(args);
    let mut reader = SnapshotReader::open(&dir, &args.name)?;
    let header = reader.header.clone();
    check_same_watch(args, &header.watch)?;
    let (plan, patterns) = plan(&header.watch, timeout)?;
    let keyed_now = sections::read_all(&header.watch, args.systemd_bus.as_deref(), timeout)?;

    let mut judge = Judge::new(args.mtime, &ignore);
    let stats = {
        let mut paths = PathJudge::new(&mut judge);
        let stats = walk::walk::<Error>(&plan, &mut |now: FileObservation| {
            let now_path = now.path_buf();
            loop {
                let ordering = match reader.peek()? {
                    Some(Line::Path(old)) => old.path_buf().cmp(&now_path),
                    _ => std::cmp::Ordering::Greater,
                };
                match ordering {
                    std::cmp::Ordering::Less => {
                        let old = reader.next_path()?;
                        paths.entry(old.as_ref(), None);
                    }
                    std::cmp::Ordering::Equal => {
                        let old = reader.next_path()?;
                        paths.entry(old.as_ref(), Some(&now));
                        return Ok(());
                    }
                    std::cmp::Ordering::Greater => {
                        paths.entry(None, Some(&now));
                        return Ok(());
                    }
                }
            }
        })?;
        while let Some(old) = reader.next_path()? {
            paths.entry(Some(&old), None);
        }
        paths.finish();
        stats
    };
    let keyed_before = reader.rest()?;
    let keyed_after: BTreeMap<(Section, String), Keyed> = keyed_now
        .into_iter()
        .flat_map(|(section, entries)| {
            entries
                .into_iter()
                .map(move |entry| ((section, entry.key.clone()), entry))
        })
        .collect();
    compare_keyed(&mut judge, &keyed_before, &keyed_after);
    let findings = judge.findings;

    let total = findings.failing + findings.warning;
    let failed = args.fail_on_drift && findings.failing > 0;
    let mut response = Response::ok(summary_message(&args.name, &findings));
    response.set_failed(failed);
    response.insert(
        "drift",
        findings
            .drift
            .iter()
            .map(|d| d.to_value())
            .collect::<Vec<_>>(),
    );
    response.insert("drift_count", total);
    response.insert("drift_failing", findings.failing);
    response.insert("drift_warning", findings.warning);
    response.insert("drift_not_listed", findings.drift_not_listed);
    response.insert("drift_by_kind", &findings.by_kind);
    response.insert(
        "ignored",
        findings
            .ignored
            .iter()
            .map(|(drift, reason)| {
                let mut value = drift.to_value();
                if let Value::Object(map) = &mut value {
                    map.remove("severity");
                    map.insert("reason".into(), Value::String(reason.clone()));
                }
                value
            })
            .collect::<Vec<_>>(),
    );
    response.insert("not_compared", &findings.not_compared);
    response.insert("mtime", args.mtime.as_str());
    response.insert(
        "snapshot",
        json!({
            "name": header.name,
            "path": store::snapshot_path(&dir, &args.name).to_string_lossy(),
            "created": header.created,
            "watch": header.watch,
            "patterns": patterns,
        }),
    );
    response.insert("entries_compared", stats.entries);
    response.insert("duration_ms", started.elapsed().as_millis() as u64);
    for drift in findings
        .drift
        .iter()
        .filter(|d| d.severity == Severity::Warn)
        .take(WARNINGS_LISTED)
    {
        response.warn(format!(
            "metadata-only drift (mtime: {}): {} {} [{}]",
            args.mtime.as_str(),
            drift.section.as_str(),
            drift.subject,
            drift.kind
        ));
    }
    if findings.warning as usize > WARNINGS_LISTED {
        response.warn(format!(
            "... and {} more metadata-only drifts",
            findings.warning as usize - WARNINGS_LISTED
        ));
    }
    if !findings.not_compared.is_empty() {
        response.warn(format!(
            "not compared (unreadable in the snapshot and now): {}",
            findings.not_compared.join(", ")
        ));
    }
    walk_warnings(&mut response, &stats);
    if ctx.diff && total > 0 {
        let side = |before: bool| -> String {
            findings
                .drift
                .iter()
                .map(|d| d.diff_line(if before { &d.before } else { &d.after }) + "\n")
                .collect()
        };
        response.set_diff(Value::String(side(true)), Value::String(side(false)));
    }
    Ok(response)
}

fn summary_message(name: &str, findings: &crate::compare::Findings) -> String {
    let total = findings.failing + findings.warning;
    if total == 0 {
        let ignored = if findings.ignored.is_empty() {
            String::new()
        } else {
            format!(" ({} ignored, see 'ignored')", findings.ignored.len())
        };
        return format!("no drift from snapshot '{name}'{ignored}");
    }
    let named: Vec<String> = findings
        .drift
        .iter()
        .take(5)
        .map(|d| format!("{} [{}]", d.subject, d.kind))
        .collect();
    let more = if total > 5 {
        format!(", and {} more", total - 5)
    } else {
        String::new()
    };
    format!(
        "{total} drift from snapshot '{name}' ({} failing, {} metadata-only): {}{more}",
        findings.failing,
        findings.warning,
        named.join(", ")
    )
}
