//! Snapshot and compare on real temp trees, through the module's whole args-in, result-out path:
//! each drift kind, each trap that must not be flagged, and bad input.

// Test helpers outside #[test] functions unwrap too: a failed fixture step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ansible_module::run_value;
use idempotence_probe::IdempotenceProbe;
use serde_json::{json, Value};
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

struct Fixture {
    _dir: tempfile::TempDir,
    tree: PathBuf,
    snapshots: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("etc/app")).unwrap();
        fs::write(tree.join("etc/app/app.conf"), b"port = 80\n").unwrap();
        fs::write(tree.join("etc/app/other.conf"), b"x = 1\n").unwrap();
        fs::write(tree.join("etc/motd"), b"hello\n").unwrap();
        std::os::unix::fs::symlink("app/app.conf", tree.join("etc/current")).unwrap();
        let snapshots = dir.path().join("snapshots");
        // Every timestamp a second in the past, so that a change made by a test always moves
        // mtime even on file systems with coarse timestamps.
        age_tree(&tree);
        Fixture {
            _dir: dir,
            tree,
            snapshots,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.tree.join(relative)
    }

    fn args(&self, state: &str, extra: Value) -> Value {
        let mut args = json!({
            "state": state,
            "name": "run1",
            "snapshot_dir": self.snapshots,
        });
        if state == "snapshot" {
            args["paths"] = json!([self.tree]);
        }
        if let (Value::Object(args), Value::Object(extra)) = (&mut args, extra) {
            args.extend(extra);
        }
        args
    }

    fn snapshot(&self, extra: Value) -> Value {
        let result = run_value::<IdempotenceProbe>(self.args("snapshot", extra)).to_value();
        assert_eq!(result["failed"], false, "{result:#}");
        assert_eq!(result["changed"], false, "{result:#}");
        result
    }

    fn compare(&self, extra: Value) -> Value {
        let result = run_value::<IdempotenceProbe>(self.args("compare", extra)).to_value();
        assert_eq!(result["changed"], false, "{result:#}");
        result
    }
}

fn age_tree(root: &Path) {
    let past = SystemTime::now() - Duration::from_secs(100);
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            dirs.push(path);
        } else if meta.is_file() {
            set_mtime(&path, past);
        }
    }
    // Directories last: setting a file's times does not touch its directory, but be explicit.
    for dir in dirs {
        set_mtime(&dir, past);
    }
}

fn set_mtime(path: &Path, when: SystemTime) {
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(when))
        .unwrap();
}

/// `(subject, kind)` of each listed drift entry.
fn drift(result: &Value) -> Vec<(String, String)> {
    result["drift"]
        .as_array()
        .unwrap_or_else(|| panic!("no drift list: {result:#}"))
        .iter()
        .map(|d| {
            let subject = ["path", "unit", "package", "sysctl", "user", "group"]
                .iter()
                .find_map(|k| d.get(*k).and_then(Value::as_str))
                .unwrap_or("?")
                .to_string();
            (subject, d["kind"].as_str().unwrap_or("?").to_string())
        })
        .collect()
}

fn entry<'a>(result: &'a Value, subject: &str, kind: &str) -> &'a Value {
    result["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == subject && d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} drift for {subject}: {result:#}"))
}

fn s(path: PathBuf) -> String {
    path.to_string_lossy().into_owned()
}

#[test]
fn an_unchanged_tree_has_no_drift_even_after_reads_that_bump_atime() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    for file in ["etc/motd", "etc/app/app.conf"] {
        fs::read(f.path(file)).unwrap();
        File::open(f.path(file))
            .unwrap()
            .set_times(FileTimes::new().set_accessed(SystemTime::now()))
            .unwrap();
    }
    let result = f.compare(json!({"fail_on_drift": true}));
    assert_eq!(result["failed"], false, "{result:#}");
    assert_eq!(result["drift_count"], 0, "{result:#}");
    assert_eq!(result["msg"], "no drift from snapshot 'run1'");
    assert_eq!(result["entries_compared"], 7);
}

#[test]
fn changed_content_is_one_content_drift_with_hashes_not_bytes() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    fs::write(f.path("etc/motd"), b"secret-ish new text\n").unwrap();
    let result = f.compare(json!({}));
    assert_eq!(
        drift(&result),
        vec![(s(f.path("etc/motd")), "content".into())]
    );
    let content = entry(&result, &s(f.path("etc/motd")), "content");
    assert_eq!(
        content["before"]["sha256"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    assert_eq!(content["after"]["size"], 20);
    assert!(!result.to_string().contains("secret-ish"));
    assert_eq!(content["severity"], "fail");
}

#[test]
fn same_bytes_rewritten_in_place_is_mtime_drift_that_warns_by_default() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    fs::write(f.path("etc/motd"), b"hello\n").unwrap();
    let result = f.compare(json!({"fail_on_drift": true}));
    assert_eq!(
        drift(&result),
        vec![(s(f.path("etc/motd")), "mtime".into())]
    );
    assert_eq!(
        entry(&result, &s(f.path("etc/motd")), "mtime")["severity"],
        "warn"
    );
    assert_eq!(
        result["failed"], false,
        "warn-level drift must not fail: {result:#}"
    );
    assert_eq!(result["drift_warning"], 1);
    assert!(result["warnings"][0]
        .as_str()
        .unwrap()
        .contains("metadata-only drift (mtime: warn)"));

    let strict = f.compare(json!({"fail_on_drift": true, "mtime": "fail"}));
    assert_eq!(strict["failed"], true, "{strict:#}");
    assert_eq!(strict["drift"][0]["severity"], "fail");

    let relaxed = f.compare(json!({"fail_on_drift": true, "mtime": "ignore"}));
    assert_eq!(relaxed["drift_count"], 0, "{relaxed:#}");
    assert_eq!(relaxed["ignored"][0]["kind"], "mtime");
    assert!(relaxed["ignored"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("mtime: ignore"));
}

#[test]
fn an_atomic_replace_with_the_same_bytes_explains_its_directorys_mtime() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    // What a careless template task does: write a temp file beside it, rename over.
    let temp = f.path("etc/app/.app.conf.tmp");
    fs::write(&temp, b"port = 80\n").unwrap();
    fs::rename(&temp, f.path("etc/app/app.conf")).unwrap();
    let result = f.compare(json!({}));
    let conf = s(f.path("etc/app/app.conf"));
    assert_eq!(
        drift(&result),
        vec![(conf.clone(), "mtime".into())],
        "{result:#}"
    );
    let attributed = entry(&result, &conf, "mtime");
    assert_eq!(attributed["parent_mtime"]["path"], s(f.path("etc/app")));
    assert!(attributed["note"].as_str().unwrap().contains("new inode"));
}

#[test]
fn a_directory_mtime_no_tracked_entry_explains_is_reported_on_the_directory() {
    let f = Fixture::new();
    f.snapshot(json!({"exclude": ["*.swp"]}));
    // A scratch file made and removed again, and an excluded file: the directory's mtime moved
    // and nothing tracked inside explains it.
    fs::write(f.path("etc/app/scratch"), b"").unwrap();
    fs::remove_file(f.path("etc/app/scratch")).unwrap();
    fs::write(f.path("etc/app/x.swp"), b"").unwrap();
    let result = f.compare(json!({}));
    assert_eq!(
        drift(&result),
        vec![(s(f.path("etc/app")), "mtime".into())],
        "{result:#}"
    );
}

#[test]
fn added_and_removed_entries_claim_their_directorys_mtime() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    fs::write(f.path("etc/app/new.conf"), b"n\n").unwrap();
    fs::remove_file(f.path("etc/app/other.conf")).unwrap();
    let result = f.compare(json!({}));
    assert_eq!(
        drift(&result),
        vec![
            (s(f.path("etc/app/new.conf")), "added".into()),
            (s(f.path("etc/app/other.conf")), "removed".into()),
        ],
        "{result:#}"
    );
    let added = entry(&result, &s(f.path("etc/app/new.conf")), "added");
    assert_eq!(added["before"], Value::Null);
    assert_eq!(added["after"]["type"], "file");
    assert_eq!(added["parent_mtime"]["path"], s(f.path("etc/app")));
    let removed = entry(&result, &s(f.path("etc/app/other.conf")), "removed");
    assert_eq!(removed["after"], Value::Null);
}

#[test]
fn mode_owner_type_and_symlink_target_changes_each_have_their_kind() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    fs::set_permissions(f.path("etc/motd"), fs::Permissions::from_mode(0o600)).unwrap();
    let motd = fs::metadata(f.path("etc/motd")).unwrap();
    std::os::unix::fs::lchown(f.path("etc/app/other.conf"), Some(motd.uid() + 4242), None).unwrap();
    fs::remove_file(f.path("etc/current")).unwrap();
    std::os::unix::fs::symlink("app/other.conf", f.path("etc/current")).unwrap();
    let result = f.compare(json!({}));
    let kinds = drift(&result);
    assert!(
        kinds.contains(&(s(f.path("etc/motd")), "mode".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(s(f.path("etc/app/other.conf")), "owner".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(s(f.path("etc/current")), "target".into())),
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 3, "{result:#}");
    assert_eq!(
        entry(&result, &s(f.path("etc/motd")), "mode")["before"],
        "0644"
    );
    assert_eq!(
        entry(&result, &s(f.path("etc/motd")), "mode")["after"],
        "0600"
    );
    assert_eq!(
        entry(&result, &s(f.path("etc/current")), "target")["after"],
        "app/other.conf"
    );

    fs::remove_file(f.path("etc/motd")).unwrap();
    fs::create_dir(f.path("etc/motd")).unwrap();
    let result = f.compare(json!({}));
    let kind = entry(&result, &s(f.path("etc/motd")), "type");
    assert_eq!(
        (&kind["before"], &kind["after"]),
        (&json!("file"), &json!("dir"))
    );
}

#[test]
fn ignore_rules_need_a_reason_and_are_listed_with_it() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    fs::write(f.path("etc/motd"), b"changed\n").unwrap();
    let result = f.compare(json!({
        "fail_on_drift": true,
        "ignore": [{"path": s(f.path("etc/mo*")), "reason": "rewritten by the login banner job"}],
    }));
    assert_eq!(result["failed"], false, "{result:#}");
    assert_eq!(result["drift_count"], 0);
    assert_eq!(result["ignored"][0]["path"], s(f.path("etc/motd")));
    assert_eq!(
        result["ignored"][0]["reason"],
        "rewritten by the login banner job"
    );

    // No reason at all, and a reason that says nothing: both refused, naming the parameter.
    let missing = f.compare(json!({"ignore": [{"path": "/x"}]}));
    assert_eq!(missing["failed"], true);
    assert_eq!(
        missing["msg"], "missing required parameter 'ignore[0].reason'",
        "{missing:#}"
    );
    let empty = f.compare(json!({"ignore": [{"path": "/x", "reason": " "}]}));
    assert_eq!(empty["failed"], true);
    assert!(
        empty["msg"]
            .as_str()
            .unwrap()
            .starts_with("parameter 'ignore[0].reason'"),
        "{empty:#}"
    );
}

#[test]
fn fail_on_drift_fails_the_task_and_diff_mode_shows_before_and_after() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    fs::write(f.path("etc/app/app.conf"), b"port = 81\n").unwrap();
    let result = f.compare(json!({"fail_on_drift": true, "_ansible_diff": true}));
    assert_eq!(result["failed"], true);
    assert!(
        result["msg"]
            .as_str()
            .unwrap()
            .contains("app.conf [content]"),
        "{result:#}"
    );
    let before = result["diff"]["before"].as_str().unwrap();
    let after = result["diff"]["after"].as_str().unwrap();
    assert!(before.contains("app.conf [content]") && after.contains("app.conf [content]"));
    assert_ne!(before, after);
}

#[test]
fn the_snapshot_file_is_private_and_check_mode_writes_nothing() {
    let f = Fixture::new();
    let result =
        run_value::<IdempotenceProbe>(f.args("snapshot", json!({"_ansible_check_mode": true})))
            .to_value();
    assert_eq!(result["failed"], false, "{result:#}");
    assert_eq!(result["snapshot"]["written"], false);
    assert_eq!(result["snapshot"]["entries"]["paths"], 7);
    assert!(
        !f.snapshots.exists(),
        "check mode created {}",
        f.snapshots.display()
    );

    let result = f.snapshot(json!({}));
    let file = PathBuf::from(result["snapshot"]["path"].as_str().unwrap());
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(&f.snapshots).unwrap().mode() & 0o777, 0o700);
    let names: Vec<_> = fs::read_dir(&f.snapshots).unwrap().collect();
    assert_eq!(names.len(), 1, "temp files left behind: {names:?}");
}

#[test]
fn bad_input_gets_a_clear_failed_result_naming_the_parameter() {
    let f = Fixture::new();
    let run = |args: Value| run_value::<IdempotenceProbe>(args).to_value();
    let cases = [
        (
            json!({"state": "snapshot", "name": "../../etc/x", "paths": ["/tmp"]}),
            "parameter 'name'",
        ),
        (
            json!({"state": "snapshot", "name": "a/b", "paths": ["/tmp"]}),
            "parameter 'name'",
        ),
        (
            json!({"state": "destroy", "name": "x"}),
            "parameter 'state'",
        ),
        (
            json!({"state": "snapshot", "name": "x", "paths": ["relative/path"]}),
            "parameter 'paths[0]'",
        ),
        (
            json!({"state": "snapshot", "name": "x"}),
            "nothing to watch",
        ),
        (
            json!({"state": "snapshot", "name": "x", "paths": ["/tmp"], "snapshot_dir": "rel"}),
            "parameter 'snapshot_dir'",
        ),
        (
            json!({"state": "snapshot", "name": "x", "systemd_units": ["ssh"]}),
            "parameter 'systemd_units[0]'",
        ),
        (
            json!({"state": "snapshot", "name": "x", "paths": ["/tmp"], "mtime": "sometimes"}),
            "parameter 'mtime'",
        ),
        (
            json!({"state": "snapshot", "name": "x", "paths": ["/tmp"], "bogus": 1}),
            "unsupported parameter 'bogus'",
        ),
        (
            json!({"state": "snapshot", "name": "x", "paths": ["/tmp"], "exclude": ["rel/x"]}),
            "parameter 'exclude[0]'",
        ),
    ];
    for (args, expected) in cases {
        let result = run(args.clone());
        assert_eq!(result["failed"], true, "{args}: {result:#}");
        assert!(
            result["msg"].as_str().unwrap().contains(expected),
            "{args}: {}",
            result["msg"]
        );
    }
    let missing = f.compare(json!({}));
    assert_eq!(missing["failed"], true);
    assert!(
        missing["msg"]
            .as_str()
            .unwrap()
            .starts_with("snapshot 'run1' not found"),
        "{missing:#}"
    );
}

#[test]
fn corrupt_truncated_and_foreign_snapshot_files_are_refused() {
    let f = Fixture::new();
    let result = f.snapshot(json!({}));
    let file = PathBuf::from(result["snapshot"]["path"].as_str().unwrap());
    let good = fs::read_to_string(&file).unwrap();

    fs::write(&file, good.replace("\"mode\":420", "\"mode\":511")).unwrap();
    let edited = f.compare(json!({}));
    assert!(
        edited["msg"].as_str().unwrap().contains("is corrupt"),
        "{edited:#}"
    );

    let lines: Vec<&str> = good.lines().collect();
    fs::write(&file, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    let truncated = f.compare(json!({}));
    assert!(
        truncated["msg"].as_str().unwrap().contains("truncated"),
        "{truncated:#}"
    );

    fs::write(&file, "{\"some\": \"other tool's file\"}\n").unwrap();
    let foreign = f.compare(json!({}));
    assert!(
        foreign["msg"]
            .as_str()
            .unwrap()
            .contains("is not a snapshot of this module"),
        "{foreign:#}"
    );
    for result in [edited, truncated, foreign] {
        assert_eq!(result["failed"], true);
    }
}

#[test]
fn symlink_loops_fifos_and_sockets_are_recorded_without_hanging() {
    let f = Fixture::new();
    std::os::unix::fs::symlink("loop-b", f.path("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", f.path("loop-b")).unwrap();
    std::os::unix::fs::symlink("..", f.path("etc/up")).unwrap();
    let fifo = f.path("etc/fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let socket = std::os::unix::net::UnixListener::bind(f.path("etc/sock")).unwrap();
    let result = f.snapshot(json!({}));
    assert_eq!(result["snapshot"]["special_files"], 2, "{result:#}");
    assert_eq!(result["snapshot"]["errors"], 0, "{result:#}");
    let compared = f.compare(json!({}));
    assert_eq!(compared["drift_count"], 0, "{compared:#}");
    drop(socket);
}

#[test]
fn an_unreadable_file_is_recorded_with_its_error_and_warned_about() {
    let f = Fixture::new();
    // Reading /proc/self/mem at offset 0 fails with EIO, even for root.
    let result = f.snapshot(json!({"paths": ["/proc/self/mem"]}));
    assert_eq!(result["snapshot"]["errors"], 1, "{result:#}");
    assert!(result["warnings"][0]
        .as_str()
        .unwrap()
        .contains("/proc/self/mem: cannot read content: I/O error"));
    let compared = f.compare(json!({}));
    assert_eq!(compared["failed"], false, "{compared:#}");
}

#[test]
fn patterns_find_new_matches_and_excludes_hide_changes() {
    let f = Fixture::new();
    let pattern = s(f.path("etc/app/*.conf"));
    let result = f.snapshot(json!({"paths": [pattern], "exclude": ["other.conf"]}));
    assert_eq!(result["snapshot"]["patterns"][0]["matches"], 2);
    fs::write(f.path("etc/app/other.conf"), b"x = 2\n").unwrap();
    fs::write(f.path("etc/app/third.conf"), b"").unwrap();
    fs::write(f.path("etc/motd"), b"not watched\n").unwrap();
    let result = f.compare(json!({}));
    // other.conf is a match of the pattern itself, and a listed path is never excluded.
    assert_eq!(
        drift(&result),
        vec![
            (s(f.path("etc/app/other.conf")), "content".into()),
            (s(f.path("etc/app/third.conf")), "added".into()),
        ],
        "{result:#}"
    );
}

#[test]
fn excluded_names_inside_a_tree_are_not_recorded() {
    let f = Fixture::new();
    f.snapshot(json!({"exclude": ["other.conf", s(f.path("etc/app/cache"))]}));
    let app_mtime = fs::metadata(f.path("etc/app")).unwrap().modified().unwrap();
    fs::write(f.path("etc/app/other.conf"), b"x = 2\n").unwrap();
    fs::create_dir(f.path("etc/app/cache")).unwrap();
    // The directory's own mtime is state; put it back to see that nothing else is reported.
    set_mtime(&f.path("etc/app"), app_mtime);
    let result = f.compare(json!({}));
    assert_eq!(result["drift_count"], 0, "{result:#}");
}

#[test]
fn listed_paths_that_do_not_exist_are_state_too() {
    let f = Fixture::new();
    let absent = f.path("etc/app/not-yet.conf");
    f.snapshot(json!({"paths": [s(absent.clone()), s(f.path("nothing/below"))]}));
    fs::write(&absent, b"created\n").unwrap();
    let result = f.compare(json!({}));
    assert_eq!(
        drift(&result),
        vec![(s(absent), "added".into())],
        "{result:#}"
    );
}

#[test]
fn names_that_are_not_utf8_and_tricky_orders_compare_cleanly() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    let odd = f.tree.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    fs::write(&odd, b"bytes").unwrap();
    // "a", "a.b", "a/b": bytewise and component order differ; the walk and the merge agree.
    fs::create_dir(f.path("a")).unwrap();
    fs::write(f.path("a/b"), b"").unwrap();
    fs::write(f.path("a.b"), b"").unwrap();
    fs::write(f.path("a-"), b"").unwrap();
    age_tree(&f.tree);
    f.snapshot(json!({}));
    assert_eq!(f.compare(json!({}))["drift_count"], 0);
    fs::write(&odd, b"other bytes").unwrap();
    let result = f.compare(json!({}));
    assert_eq!(result["drift_count"], 1, "{result:#}");
    assert_eq!(result["drift"][0]["kind"], "content");
}

#[test]
fn compare_uses_the_snapshots_watch_set_and_refuses_a_different_one() {
    let f = Fixture::new();
    f.snapshot(json!({}));
    let same = f.compare(json!({"paths": [f.tree], "packages": []}));
    assert_eq!(same["failed"], false, "{same:#}");
    let other = f.compare(json!({"paths": ["/etc"]}));
    assert_eq!(other["failed"], true);
    assert!(
        other["msg"]
            .as_str()
            .unwrap()
            .starts_with("parameter 'paths'"),
        "{other:#}"
    );
}

#[test]
fn host_packages_accounts_and_sysctl_compare_cleanly_with_themselves() {
    let f = Fixture::new();
    let watch = json!({
        "paths": [],
        "packages": ["*"],
        "users": ["root", "no-such-user-here"],
        "groups": ["root"],
        "sysctl": ["kernel.ostype", "kernel.pid_max", "net.ipv4.conf.lo.*"],
    });
    let result = f.snapshot(watch);
    assert!(
        result["snapshot"]["entries"]["package"].as_u64().unwrap() > 10,
        "{result:#}"
    );
    assert_eq!(result["snapshot"]["entries"]["user"], 2);
    let snapshot = fs::read_to_string(result["snapshot"]["path"].as_str().unwrap()).unwrap();
    assert!(
        snapshot.contains("\"section\":\"package\",\"key\":\"dpkg\""),
        "dpkg not recorded"
    );
    assert!(
        !snapshot.contains("$6$") && !snapshot.contains("$y$"),
        "a password hash was recorded"
    );
    let compared = f.compare(json!({"fail_on_drift": true}));
    assert_eq!(compared["failed"], false, "{compared:#}");
    assert_eq!(compared["drift_count"], 0, "{compared:#}");
}
