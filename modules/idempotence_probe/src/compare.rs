//! Drift: every difference between a snapshot and the host now, judged by rules that keep the
//! verdict honest.
//!
//! - atime is never state (it is not even recorded), and ctime is not reported on its own;
//! - a file whose content changed has moved its mtime too: that is one `content` drift, not two;
//! - mtime-only drift (and an entry replaced by an identical one) is kind `mtime` (`replaced`),
//!   with its own severity from the `mtime` setting;
//! - a directory's mtime moves whenever an entry in it is added, removed or renamed over; when
//!   a tracked entry inside explains it, the directory's mtime is attributed to that entry
//!   (`parent_mtime` on its drift) and not reported as a fault of its own.
//!
//! Paths are compared by a streaming merge of the snapshot's path entries with the live walk,
//! both in the same order; the [`PathJudge`] holds only the directories on the current path.

use crate::args::{IgnoreRule, MtimePolicy};
use crate::glob::{match_name, match_path};
use crate::store::{Keyed, Section};
use host_probe::files::{EntryType, FileObservation};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every drift kind, for documentation and for validating `ignore[].kinds`.
pub const KINDS: &[&str] = &[
    "added",
    "removed",
    "type",
    "content",
    "mode",
    "owner",
    "target",
    "device",
    "mtime",
    "replaced",
    "unreadable",
    "unit_state",
    "version",
    "status",
    "architecture",
    "value",
    "uid",
    "gid",
    "gecos",
    "home",
    "shell",
    "members",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warn,
    Fail,
}

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub section: Section,
    pub subject: String,
    pub kind: &'static str,
    pub before: Value,
    pub after: Value,
    pub severity: Severity,
    pub note: Option<String>,
    /// The parent directory's mtime change that this entry explains.
    pub parent_mtime: Option<Value>,
}

impl Drift {
    fn new(
        section: Section,
        subject: impl Into<String>,
        kind: &'static str,
        before: Value,
        after: Value,
    ) -> Self {
        Drift {
            section,
            subject: subject.into(),
            kind,
            before,
            after,
            severity: Severity::Fail,
            note: None,
            parent_mtime: None,
        }
    }

    /// The result's form: `{"path": ..., "kind": ..., "before": ..., "after": ...}`, keyed by
    /// the section's own word (`path`, `unit`, `package`, `sysctl`, `user`, `group`).
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            self.section.as_str().into(),
            Value::String(self.subject.clone()),
        );
        out.insert("kind".into(), Value::String(self.kind.into()));
        out.insert("before".into(), self.before.clone());
        out.insert("after".into(), self.after.clone());
        out.insert(
            "severity".into(),
            Value::String(
                match self.severity {
                    Severity::Warn => "warn",
                    Severity::Fail => "fail",
                }
                .into(),
            ),
        );
        if let Some(note) = &self.note {
            out.insert("note".into(), Value::String(note.clone()));
        }
        if let Some(parent) = &self.parent_mtime {
            out.insert("parent_mtime".into(), parent.clone());
        }
        Value::Object(out)
    }

    /// One line for Ansible's `--diff` output.
    pub fn diff_line(&self, side: &Value) -> String {
        let shown = match side {
            Value::Null => "(absent)".to_string(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        format!(
            "{} {} [{}]: {shown}",
            self.section.as_str(),
            self.subject,
            self.kind
        )
    }
}

/// Drift and ignores collected by a compare.
#[derive(Debug, Default)]
pub struct Findings {
    pub drift: Vec<Drift>,
    pub ignored: Vec<(Drift, String)>,
    /// Listed drift beyond the cap (still counted).
    pub drift_not_listed: u64,
    pub failing: u64,
    pub warning: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Entries whose content could not be compared (unreadable both times).
    pub not_compared: Vec<String>,
}

/// The most drift entries listed in a result; a run that drifts more is broken in an obvious
/// way already, and the counts stay exact.
pub const MAX_LISTED: usize = 5000;

/// Applies the policy and the ignore rules to each drift and files it.
pub struct Judge<'a> {
    pub mtime: MtimePolicy,
    pub ignore: &'a [IgnoreRule],
    pub findings: Findings,
}

impl<'a> Judge<'a> {
    pub fn new(mtime: MtimePolicy, ignore: &'a [IgnoreRule]) -> Self {
        Judge {
            mtime,
            ignore,
            findings: Findings::default(),
        }
    }

    pub fn record(&mut self, mut drift: Drift) {
        if matches!(drift.kind, "mtime" | "replaced") {
            match self.mtime {
                MtimePolicy::Fail => drift.severity = Severity::Fail,
                MtimePolicy::Warn => drift.severity = Severity::Warn,
                MtimePolicy::Ignore => {
                    let reason = "mtime: ignore (metadata-only drift is not counted)".to_string();
                    self.findings.ignored.push((drift, reason));
                    return;
                }
            }
        }
        if let Some(rule) = self.ignore.iter().find(|rule| rule_matches(rule, &drift)) {
            let reason = rule.reason.clone();
            self.findings.ignored.push((drift, reason));
            return;
        }
        *self.findings.by_kind.entry(drift.kind).or_default() += 1;
        match drift.severity {
            Severity::Fail => self.findings.failing += 1,
            Severity::Warn => self.findings.warning += 1,
        }
        if self.findings.drift.len() < MAX_LISTED {
            self.findings.drift.push(drift);
        } else {
            self.findings.drift_not_listed += 1;
        }
    }
}

fn rule_matches(rule: &IgnoreRule, drift: &Drift) -> bool {
    if !rule.kinds.is_empty() && !rule.kinds.iter().any(|k| k == drift.kind) {
        return false;
    }
    let pattern = match drift.section {
        Section::Path => rule.path.as_deref(),
        Section::Unit => rule.unit.as_deref(),
        Section::Package => rule.package.as_deref(),
        Section::Sysctl => rule.sysctl.as_deref(),
        Section::User => rule.user.as_deref(),
        Section::Group => rule.group.as_deref(),
    };
    let Some(pattern) = pattern else {
        return false;
    };
    match drift.section {
        Section::Path => match_path(pattern.as_bytes(), drift.subject.as_bytes()),
        _ => match_name(pattern.as_bytes(), drift.subject.as_bytes()),
    }
}

fn mode_text(mode: Option<u32>) -> Value {
    mode.map_or(Value::Null, |m| Value::String(format!("{m:04o}")))
}

fn content_value(observation: &FileObservation) -> Value {
    match (&observation.sha256, &observation.error) {
        (Some(sha), _) => json!({"sha256": sha, "size": observation.size}),
        (None, Some(error)) => json!({"error": error}),
        (None, None) => Value::Null,
    }
}

/// What an added or removed entry was, in brief.
fn summary(observation: &FileObservation) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(observation.entry_type.as_str()));
    if let Some(mode) = observation.mode {
        out.insert("mode".into(), mode_text(Some(mode)));
    }
    if let (Some(uid), Some(gid)) = (observation.uid, observation.gid) {
        out.insert("owner".into(), json!(format!("{uid}:{gid}")));
    }
    if let Some(sha) = &observation.sha256 {
        out.insert("sha256".into(), json!(sha));
        out.insert("size".into(), json!(observation.size));
    }
    if let Some(target) = &observation.target {
        out.insert("target".into(), json!(target));
    }
    if let Some(error) = &observation.error {
        out.insert("error".into(), json!(error));
    }
    Value::Object(out)
}

/// Compares the path entries of a snapshot and of the host in walk order, attributing
/// directory mtimes to the entries inside that explain them.
pub struct PathJudge<'j, 'a> {
    judge: &'j mut Judge<'a>,
    /// The directories on the current path, outermost first.
    open: Vec<OpenDir>,
}

struct OpenDir {
    path: PathBuf,
    /// This directory's mtime drift, held until its entries have been seen.
    pending: Option<Drift>,
    explained_by: Vec<String>,
}

impl<'j, 'a> PathJudge<'j, 'a> {
    pub fn new(judge: &'j mut Judge<'a>) -> Self {
        PathJudge {
            judge,
            open: Vec::new(),
        }
    }

    /// One path, as it was (`before`) and is (`after`); `None` where a side has no entry.
    pub fn entry(&mut self, before: Option<&FileObservation>, after: Option<&FileObservation>) {
        let Some(any) = before.or(after) else {
            return;
        };
        let path = any.path_buf();
        self.close_until_ancestor_of(&path);
        let absent =
            |o: Option<&FileObservation>| o.is_none_or(|o| o.entry_type == EntryType::Absent);
        let subject = any.path.clone();
        let mut drifts = Vec::new();
        let mut structural = false;
        let mut pending = None;
        match (absent(before), absent(after)) {
            (true, true) => {}
            (true, false) => {
                if let Some(after) = after {
                    drifts.push(Drift::new(
                        Section::Path,
                        &subject,
                        "added",
                        Value::Null,
                        summary(after),
                    ));
                }
                structural = true;
            }
            (false, true) => {
                if let Some(before) = before {
                    drifts.push(Drift::new(
                        Section::Path,
                        &subject,
                        "removed",
                        summary(before),
                        Value::Null,
                    ));
                }
                structural = true;
            }
            (false, false) => {
                if let (Some(before), Some(after)) = (before, after) {
                    structural =
                        compare_present(&subject, before, after, &mut drifts, &mut pending);
                }
            }
        }
        if structural {
            let parent = path.parent().map(Path::to_path_buf);
            if let Some(open) = self.open.last_mut() {
                if Some(&open.path) == parent.as_ref() {
                    if let Some(dir_drift) = &open.pending {
                        let explanation = json!({
                            "path": open.path.to_string_lossy(),
                            "before": dir_drift.before,
                            "after": dir_drift.after,
                        });
                        for drift in &mut drifts {
                            drift.parent_mtime = Some(explanation.clone());
                        }
                        open.explained_by.push(subject.clone());
                    }
                }
            }
        }
        for drift in drifts {
            self.judge.record(drift);
        }
        let is_dir =
            |o: Option<&FileObservation>| o.is_some_and(|o| o.entry_type == EntryType::Dir);
        if is_dir(before) || is_dir(after) {
            self.open.push(OpenDir {
                path,
                pending,
                explained_by: Vec::new(),
            });
        } else if let Some(drift) = pending {
            self.judge.record(drift);
        }
    }

    fn close_until_ancestor_of(&mut self, path: &Path) {
        while let Some(open) = self.open.last() {
            if path.starts_with(&open.path) && path != open.path {
                return;
            }
            self.close_one();
        }
    }

    fn close_one(&mut self) {
        if let Some(open) = self.open.pop() {
            if let Some(drift) = open.pending {
                if open.explained_by.is_empty() {
                    self.judge.record(drift);
                }
            }
        }
    }

    /// Reports the directories still held.
    pub fn finish(mut self) {
        while !self.open.is_empty() {
            self.close_one();
        }
    }
}

/// Compares two existing entries. Returns whether the entry was replaced (a new inode, another
/// type), which is what moves the parent directory's mtime. A directory's own mtime-only drift
/// goes to `pending` so that its entries can explain it.
fn compare_present(
    subject: &str,
    before: &FileObservation,
    after: &FileObservation,
    drifts: &mut Vec<Drift>,
    pending: &mut Option<Drift>,
) -> bool {
    let drift = |kind, b, a| Drift::new(Section::Path, subject, kind, b, a);
    if before.entry_type != after.entry_type {
        drifts.push(drift(
            "type",
            json!(before.entry_type.as_str()),
            json!(after.entry_type.as_str()),
        ));
        return true;
    }
    // A freed inode number is often reused at once (rm, then create): the birth time tells.
    let mut replaced =
        known_and_differ(&before.ino, &after.ino) || known_and_differ(&before.born, &after.born);
    let mut explained_mtime = false;
    match before.entry_type {
        EntryType::File => match (&before.sha256, &after.sha256) {
            (Some(b), Some(a)) if b != a => {
                let mut d = drift("content", content_value(before), content_value(after));
                if replaced {
                    d.note = Some("replaced by a new file (new inode)".into());
                }
                drifts.push(d);
                explained_mtime = true;
            }
            (Some(_), Some(_)) => {}
            (None, None) => {}
            _ => {
                drifts.push(drift(
                    "unreadable",
                    content_value(before),
                    content_value(after),
                ));
                explained_mtime = true;
            }
        },
        EntryType::Symlink if before.target_raw() != after.target_raw() => {
            drifts.push(drift("target", json!(before.target), json!(after.target)));
            explained_mtime = true;
            // A symlink cannot be changed in place: a new target means a new symlink.
            replaced = true;
        }
        EntryType::CharDevice | EntryType::BlockDevice if before.rdev != after.rdev => {
            drifts.push(drift("device", json!(before.rdev), json!(after.rdev)));
        }
        EntryType::Unknown if before.error != after.error => {
            drifts.push(drift("unreadable", json!(before.error), json!(after.error)));
        }
        _ => {}
    }
    if before.entry_type != EntryType::File && before.error != after.error {
        // A directory that can no longer be listed, a mount that stopped answering.
        if before.entry_type != EntryType::Unknown {
            drifts.push(drift("unreadable", json!(before.error), json!(after.error)));
        }
    }
    if before.mode != after.mode {
        drifts.push(drift("mode", mode_text(before.mode), mode_text(after.mode)));
    }
    if before.uid != after.uid || before.gid != after.gid {
        let owner = |o: &FileObservation| match (o.uid, o.gid) {
            (Some(u), Some(g)) => json!(format!("{u}:{g}")),
            _ => Value::Null,
        };
        drifts.push(drift("owner", owner(before), owner(after)));
    }
    if !explained_mtime && before.mtime != after.mtime {
        let mut d = drift("mtime", json!(before.mtime), json!(after.mtime));
        if replaced {
            d.note = Some("replaced by a new entry with the same content (new inode)".into());
        }
        if before.entry_type == EntryType::Dir && !replaced {
            *pending = Some(d);
        } else {
            drifts.push(d);
        }
    } else if !explained_mtime && replaced {
        drifts.push(drift(
            "replaced",
            json!({"inode": before.ino, "born": before.born}),
            json!({"inode": after.ino, "born": after.born}),
        ));
    }
    replaced
}

fn known_and_differ<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    a.is_some() && b.is_some() && a != b
}

/// Compares the keyed sections.
pub fn compare_keyed(
    judge: &mut Judge<'_>,
    before: &BTreeMap<(Section, String), Keyed>,
    after: &BTreeMap<(Section, String), Keyed>,
) {
    let keys: std::collections::BTreeSet<&(Section, String)> =
        before.keys().chain(after.keys()).collect();
    for key in keys {
        let (section, name) = key;
        let was = before.get(key);
        let now = after.get(key);
        let drift = |kind, b, a| Drift::new(*section, name.clone(), kind, b, a);
        let was_error = was.and_then(|k| k.error.clone());
        let now_error = now.and_then(|k| k.error.clone());
        if was_error.is_some() || now_error.is_some() {
            if was_error != now_error {
                judge.record(drift("unreadable", keyed_side(was), keyed_side(now)));
            } else {
                judge
                    .findings
                    .not_compared
                    .push(format!("{} {name}", section.as_str()));
            }
            continue;
        }
        let was_state = was.and_then(|k| k.state.as_ref());
        let now_state = now.and_then(|k| k.state.as_ref());
        match (was_state, now_state) {
            (None, None) => {}
            (None, Some(now_state)) => judge.record(drift("added", Value::Null, json!(now_state))),
            (Some(was_state), None) => {
                judge.record(drift("removed", json!(was_state), Value::Null))
            }
            (Some(was_state), Some(now_state)) if *section == Section::Unit => {
                if was_state != now_state {
                    judge.record(drift("unit_state", json!(was_state), json!(now_state)));
                }
            }
            (Some(was_state), Some(now_state)) => {
                let fields: std::collections::BTreeSet<&String> =
                    was_state.keys().chain(now_state.keys()).collect();
                for field in fields {
                    let b = was_state.get(field);
                    let a = now_state.get(field);
                    if b != a {
                        let kind = KINDS
                            .iter()
                            .find(|k| **k == field.as_str())
                            .copied()
                            .unwrap_or("value");
                        judge.record(drift(kind, json!(b), json!(a)));
                    }
                }
            }
        }
    }
}

fn keyed_side(keyed: Option<&Keyed>) -> Value {
    match keyed {
        Some(Keyed {
            error: Some(error), ..
        }) => json!({ "error": error }),
        Some(Keyed { state, .. }) => json!(state),
        None => Value::Null,
    }
}
