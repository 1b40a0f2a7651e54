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

/// JUnit XML, one testcase per check, for CI dashboards. Failed checks are `<failure>` with
/// `type` mandatory or advisory; skipped checks are `<skipped>`.
pub fn render_junit(summary: &Summary, results: &[CheckResult]) -> String {
    let seconds = |ms: f64| format!("{:.3}", ms / 1000.0);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"health_check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{}\">",
        summary.total,
        summary.fail,
        summary.skip,
        seconds(summary.duration_ms)
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"health_check.{}\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{}\" timestamp=\"{}\">",
        xml_escape(&summary.host),
        xml_escape(&summary.host),
        summary.total,
        summary.fail,
        summary.skip,
        seconds(summary.duration_ms),
        xml_escape(summary.started_at.trim_end_matches('Z')),
    );
    for result in results {
        let _ = write!(
            xml,
            "    <testcase classname=\"health_check.{}\" name=\"{}\" time=\"{}\"",
            xml_escape(result.kind.as_str()),
            xml_escape(&result.name),
            seconds(result.duration_ms)
        );
        let detail = xml_escape(&format!(
            "expected: {}\nobserved: {}\nmessage: {}",
            result.expected, result.observed, result.message
        ));
        match result.status {
            Status::Fail => {
                let _ = write!(
                    xml,
                    ">\n      <failure type=\"{}\" message=\"{}\">{detail}</failure>\n    </testcase>\n",
                    if result.mandatory { "mandatory" } else { "advisory" },
                    xml_escape(&result.message)
                );
            }
            Status::Skip => {
                let _ = write!(
                    xml,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(&result.message)
                );
            }
            Status::Pass | Status::Warn => {
                let _ = write!(
                    xml,
                    ">\n      <system-out>{}status: {}</system-out>\n    </testcase>\n",
                    detail + "\n",
                    result.status.as_str()
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// A node_exporter textfile-collector file.
pub fn render_prometheus(summary: &Summary, results: &[CheckResult]) -> String {
    let mut text = String::new();
    text.push_str(
        "# HELP health_check_status Result of one health check: 0 pass, 1 warn, 2 fail, 3 skip.\n\
         # TYPE health_check_status gauge\n",
    );
    for r in results {
        let _ = writeln!(
            text,
            "health_check_status{{kind=\"{}\",name=\"{}\",mandatory=\"{}\"}} {}",
            label_escape(r.kind.as_str()),
            label_escape(&r.name),
            r.mandatory,
            status_value(r.status)
        );
    }
    text.push_str(
        "# HELP health_check_duration_seconds How long one health check took.\n\
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
    let _ = write!(
        text,
        "# HELP health_check_summary_status The host's overall result: 0 pass, 1 warn, 2 fail.\n\
         # TYPE health_check_summary_status gauge\n\
         health_check_summary_status {}\n\
         # HELP health_check_last_run_timestamp_seconds When the last run finished.\n\
         # TYPE health_check_last_run_timestamp_seconds gauge\n\
         health_check_last_run_timestamp_seconds {}\n",
        status_value(summary.status),
        ansible_module::time::unix_now()
    );
    text
}

fn status_value(status: Status) -> u8 {
    match status {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 2,
        Status::Skip => 3,
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
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
    fn junit_is_escaped_and_counts_failures() {
        let (summary, results) = fixture();
        let xml = render_junit(&summary, &results);
        assert!(
            xml.contains("tests=\"3\" failures=\"2\" skipped=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"db&quot;x\""));
        assert!(xml.contains("<failure type=\"mandatory\""));
        assert!(xml.contains("<failure type=\"advisory\""));
        assert!(xml.contains("used 95% &lt;&amp;&gt;"));
        assert!(!xml.contains("<&>"));
    }

    #[test]
    fn prometheus_textfile_format() {
        let (summary, results) = fixture();
        let text = render_prometheus(&summary, &results);
        assert!(
            text.contains("health_check_status{kind=\"disk\",name=\"/\",mandatory=\"true\"} 0\n")
        );
        assert!(text
            .contains("health_check_status{kind=\"tcp\",name=\"db\\\"x\",mandatory=\"true\"} 2\n"));
        assert!(text.contains("health_check_summary_status 2\n"));
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
