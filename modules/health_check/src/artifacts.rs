//! The run's artifacts: the summary document, JUnit XML and a node_exporter textfile, each
//! written through the contract's atomic writer so a reader never sees half a file.

use crate::summary::Summary;
use crate::verdict::{CheckResult, Status};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The document `summary_path` receives; its schema is in docs/health-summary-schema.md.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub schema_version: u32,
    pub summary: &'a Summary,
    pub checks: &'a [CheckResult],
}

/// One artifact the run was asked for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Artifact {
    pub format: &'static str,
    pub path: PathBuf,
    /// False in check mode: what would have been written.
    pub written: bool,
}

/// Which artifacts to write, from the task's parameters.
#[derive(Debug, Clone, Default)]
pub struct Requested<'a> {
    pub summary_path: Option<&'a Path>,
    pub junit_path: Option<&'a Path>,
    pub prometheus_path: Option<&'a Path>,
}

/// Turns a run into one artifact's text.
type Renderer = fn(&Summary, &[CheckResult]) -> String;

/// Renders and writes every requested artifact (or only lists them in check mode). The error
/// names the parameter whose path could not be written.
pub fn write_all(
    requested: &Requested<'_>,
    summary: &Summary,
    results: &[CheckResult],
    check_mode: bool,
) -> Result<Vec<Artifact>, String> {
    let mut artifacts = Vec::new();
    let jobs: [(&str, &'static str, Option<&Path>, Renderer); 3] = [
        ("summary_path", "json", requested.summary_path, render_json),
        ("junit_path", "junit", requested.junit_path, render_junit),
        (
            "prometheus_path",
            "prometheus",
            requested.prometheus_path,
            render_prometheus,
        ),
    ];
    for (parameter, format, path, render) in jobs {
        let Some(path) = path else { continue };
        if !check_mode {
            let contents = render(summary, results);
            ansible_module::atomic::write(path, contents.as_bytes(), 0o644)
                .map_err(|err| format!("parameter '{parameter}': {err}"))?;
        }
        artifacts.push(Artifact {
            format,
            path: path.to_path_buf(),
            written: !check_mode,
        });
    }
    Ok(artifacts)
}

pub fn render_json(summary: &Summary, results: &[CheckResult]) -> String {
    let document = Document {
        schema_version: summary.schema_version,
        summary,
        checks: results,
    };
    // Serializing plain structs of strings and numbers cannot fail; an empty object would
    // still be valid JSON if it somehow did.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// JUnit XML, one testcase per check, for CI dashboards. A failed mandatory check is a
/// `<failure>`; a failed advisory check does not fail the build, so it is `<skipped>` with its
/// message (as is a check that could not apply here); warnings carry a `<system-out>` line.
pub fn render_junit(summary: &Summary, results: &[CheckResult]) -> String {
    let seconds = |ms: f64| format!("{:.3}", ms / 1000.0);
    let failures = results
        .iter()
        .filter(|r| r.status == Status::Fail && r.mandatory)
        .count();
    let skipped = results
        .iter()
        .filter(|r| r.status == Status::Skip || (r.status == Status::Fail && !r.mandatory))
        .count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"health_check\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\" time=\"{}\">",
        results.len(),
        seconds(summary.duration_ms)
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"health_check.{host}\" hostname=\"{host}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\" time=\"{}\" timestamp=\"{}\">",
        results.len(),
        seconds(summary.duration_ms),
        xml_escape(summary.started_at.trim_end_matches('Z')),
        host = xml_escape(&summary.host),
    );
    for result in results {
        let _ = writeln!(
            xml,
            "    <testcase classname=\"health_check.{}\" name=\"{}\" time=\"{}\">",
            xml_escape(result.kind.as_str()),
            xml_escape(&result.name),
            seconds(result.duration_ms)
        );
        let detail = xml_escape(&format!(
            "expected: {}\nobserved: {}\nmessage: {}\nstatus: {}{}",
            result.expected,
            result.observed,
            result.message,
            result.status.as_str(),
            if result.mandatory { "" } else { " (advisory)" }
        ));
        let message = xml_escape(&result.message);
        match (result.status, result.mandatory) {
            (Status::Fail, true) => {
                let _ = writeln!(
                    xml,
                    "      <failure type=\"mandatory\" message=\"{message}\">{detail}</failure>"
                );
            }
            (Status::Fail, false) => {
                let _ = writeln!(
                    xml,
                    "      <skipped message=\"advisory check failed: {message}\"/>\n      <system-out>{detail}</system-out>"
                );
            }
            (Status::Skip, _) => {
                let _ = writeln!(xml, "      <skipped message=\"{message}\"/>");
            }
            (Status::Pass | Status::Warn, _) => {
                let _ = writeln!(xml, "      <system-out>{detail}</system-out>");
            }
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// The states a check or a run can be in, in the order the textfile lists them.
const STATES: [Status; 4] = [Status::Pass, Status::Warn, Status::Fail, Status::Skip];

/// A node_exporter textfile-collector file in the style of node_exporter and
/// systemd_exporter: one series per state with the current one at 1 (so an alert is
/// `health_check_status{state="fail"} == 1`), base units, and an info metric with the version.
/// Check names are unique within a run, so no two series collide.
pub fn render_prometheus(summary: &Summary, results: &[CheckResult]) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "# HELP health_check_info The health_check module that wrote this file.\n\
         # TYPE health_check_info gauge\n\
         health_check_info{{version=\"{}\"}} 1\n",
        label_escape(env!("CARGO_PKG_VERSION"))
    );
    text.push_str(
        "# HELP health_check_status Whether a health check is in this state (1) or not (0).\n\
         # TYPE health_check_status gauge\n",
    );
    for r in results {
        for state in STATES {
            let _ = writeln!(
                text,
                "health_check_status{{kind=\"{}\",name=\"{}\",mandatory=\"{}\",state=\"{}\"}} {}",
                label_escape(r.kind.as_str()),
                label_escape(&r.name),
                r.mandatory,
                state.as_str(),
                u8::from(r.status == state)
            );
        }
    }
    text.push_str(
        "# HELP health_check_duration_seconds How long the last attempt of a health check took.\n\
         # TYPE health_check_duration_seconds gauge\n",
    );
    for r in results {
        let _ = writeln!(
            text,
            "health_check_duration_seconds{{kind=\"{}\",name=\"{}\"}} {}",
            label_escape(r.kind.as_str()),
            label_escape(&r.name),
            r.duration_ms / 1000.0
        );
    }
    text.push_str(
        "# HELP health_check_host_status Whether the host's overall result is in this state (1) or not (0).\n\
         # TYPE health_check_host_status gauge\n",
    );
    for state in [Status::Pass, Status::Warn, Status::Fail] {
        let _ = writeln!(
            text,
            "health_check_host_status{{state=\"{}\"}} {}",
            state.as_str(),
            u8::from(summary.status == state)
        );
    }
    text.push_str(
        "# HELP health_check_checks Checks of the last run, by state.\n\
         # TYPE health_check_checks gauge\n",
    );
    for (state, count) in [
        (Status::Pass, summary.pass),
        (Status::Warn, summary.warn),
        (Status::Fail, summary.fail),
        (Status::Skip, summary.skip),
    ] {
        let _ = writeln!(
            text,
            "health_check_checks{{state=\"{}\"}} {count}",
            state.as_str()
        );
    }
    let _ = write!(
        text,
        "# HELP health_check_attempts How many times the last run ran its failing checks.\n\
         # TYPE health_check_attempts gauge\n\
         health_check_attempts {}\n\
         # HELP health_check_run_duration_seconds How long the last run took.\n\
         # TYPE health_check_run_duration_seconds gauge\n\
         health_check_run_duration_seconds {}\n\
         # HELP health_check_last_run_timestamp_seconds When the last run finished, in seconds since the epoch.\n\
         # TYPE health_check_last_run_timestamp_seconds gauge\n\
         health_check_last_run_timestamp_seconds {}\n",
        summary.attempts,
        summary.duration_ms / 1000.0,
        ansible_module::time::unix_now()
    );
    text
}

/// Escapes text for an XML attribute or element. Characters XML 1.0 cannot carry at all,
/// escaped or not (C0 controls other than tab, newline and carriage return; U+FFFE, U+FFFF),
/// become U+FFFD, so any check name gives a document every parser accepts.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn label_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Kind;
    use serde_json::Map;

    fn result(kind: Kind, name: &str, status: Status, mandatory: bool) -> CheckResult {
        CheckResult {
            kind,
            name: name.into(),
            status,
            mandatory,
            expected: "used <= 90%".into(),
            observed: "used 95% <&>".into(),
            message: format!("{name} \"quoted\""),
            duration_ms: 1.5,
            details: Map::new(),
        }
    }

    fn fixture() -> (Summary, Vec<CheckResult>) {
        let results = vec![
            result(Kind::Disk, "/", Status::Pass, true),
            result(Kind::Tcp, "db\"x", Status::Fail, true),
            result(Kind::Http, "metrics", Status::Fail, false),
        ];
        let summary = Summary::new(&results, "web1".into(), "2026-11-25T10:50:00Z".into(), 12.0);
        (summary, results)
    }

    #[test]
    fn junit_is_escaped_and_advisory_failures_are_skipped() {
        let (summary, results) = fixture();
        let xml = render_junit(&summary, &results);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"db&quot;x\""));
        assert!(xml.contains("<failure type=\"mandatory\""));
        assert!(!xml.contains("<failure type=\"advisory\""));
        assert!(xml
            .contains("<skipped message=\"advisory check failed: metrics &quot;quoted&quot;\"/>"));
        assert!(xml.contains("used 95% &lt;&amp;&gt;"));
        assert!(!xml.contains("<&>"));
    }

    #[test]
    fn junit_replaces_characters_xml_cannot_carry() {
        let (summary, mut results) = fixture();
        results[0].name = "a\u{1}b\u{b}c\u{FFFE}d\te".into();
        let xml = render_junit(&summary, &results);
        assert!(
            xml.contains("name=\"a\u{FFFD}b\u{FFFD}c\u{FFFD}d\te\""),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}') && !xml.contains('\u{b}') && !xml.contains('\u{FFFE}'));
    }

    #[test]
    fn prometheus_textfile_has_one_series_per_state_and_an_info_metric() {
        let (summary, results) = fixture();
        let text = render_prometheus(&summary, &results);
        assert!(text.contains(
            "health_check_status{kind=\"disk\",name=\"/\",mandatory=\"true\",state=\"pass\"} 1\n"
        ));
        assert!(text.contains(
            "health_check_status{kind=\"disk\",name=\"/\",mandatory=\"true\",state=\"fail\"} 0\n"
        ));
        assert!(text.contains(
            "health_check_status{kind=\"tcp\",name=\"db\\\"x\",mandatory=\"true\",state=\"fail\"} 1\n"
        ));
        assert!(text.contains(&format!(
            "health_check_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.contains("health_check_host_status{state=\"fail\"} 1\n"));
        assert!(!text.contains("_summary_"), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn check_mode_writes_nothing_and_errors_name_the_parameter() {
        let (summary, results) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let requested = Requested {
            summary_path: Some(&path),
            ..Requested::default()
        };
        let artifacts = write_all(&requested, &summary, &results, true).unwrap();
        assert!(!artifacts[0].written);
        assert!(!path.exists());
        write_all(&requested, &summary, &results, false).unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["summary"]["mandatory_failed"][0], "tcp:db\"x");
        let missing = dir.path().join("no/dir/junit.xml");
        let requested = Requested {
            junit_path: Some(&missing),
            ..Requested::default()
        };
        let err = write_all(&requested, &summary, &results, false).unwrap_err();
        assert!(
            err.starts_with("parameter 'junit_path': cannot write"),
            "{err}"
        );
    }
}
