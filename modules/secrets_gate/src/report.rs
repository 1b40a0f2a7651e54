//! Findings and the report: fingerprints, baselines, allow comments, and the three output
//! formats (text, JSON, SARIF 2.1.0 for code scanning). Nothing here ever holds a secret value;
//! the optional hint is already masked.

use crate::rules::Rule;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// One finding: where, which rule, and a fingerprint; never the value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key_path: String,
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip)]
    pub plaintext: bool,
}

/// The fingerprint of a finding: sha256 over a fixed domain, the file path, the key path and the
/// rule, never over the value, so a baseline reveals nothing and survives a value change only
/// when the location is the same.
pub fn fingerprint(file: &str, key_path: &str, rule: Rule) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"secrets_gate/v1\0");
    hasher.update(file.as_bytes());
    hasher.update(b"\0");
    hasher.update(key_path.as_bytes());
    hasher.update(b"\0");
    hasher.update(rule.id().as_bytes());
    let digest = hasher.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A committed baseline: accepted fingerprints.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub fingerprints: BTreeSet<String>,
}

impl Baseline {
    /// Reads a baseline: `{"fingerprints": ["..."|{"fingerprint": "..."}]}`, or a previous JSON
    /// report (`{"findings": [{"fingerprint": ...}]}`), or a plain list.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let list = match &value {
            Value::Array(items) => items.clone(),
            Value::Object(map) => match map.get("fingerprints").or_else(|| map.get("findings")) {
                Some(Value::Array(items)) => items.clone(),
                _ => return Err("expected a 'fingerprints' or 'findings' list".into()),
            },
            _ => return Err("expected a JSON object or list".into()),
        };
        let mut fingerprints = BTreeSet::new();
        for (i, item) in list.iter().enumerate() {
            let fp = match item {
                Value::String(s) => s.clone(),
                Value::Object(o) => match o.get("fingerprint") {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(format!("entry {i} has no 'fingerprint' string")),
                },
                _ => return Err(format!("entry {i} is neither a string nor an object")),
            };
            if fp.len() != 16 || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "entry {i}: fingerprint '{fp}' is not 16 hex digits"
                ));
            }
            fingerprints.insert(fp.to_ascii_lowercase());
        }
        Ok(Self { fingerprints })
    }
}

/// A file that was not judged, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// A file that did not parse in its format and was line-scanned instead.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fallback {
    pub file: String,
    pub format: String,
    pub line: usize,
    pub error: String,
}

/// Per-file counts for the migration report.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FileMigration {
    pub file: String,
    pub environment: String,
    pub vault: usize,
    pub sops: usize,
    pub plaintext: usize,
    pub status: String,
}

/// Per-environment totals for the migration report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EnvironmentMigration {
    pub files: usize,
    pub vault_files: usize,
    pub sops_files: usize,
    pub plaintext_files: usize,
    pub vault: usize,
    pub sops: usize,
    pub plaintext: usize,
    pub sops_percent: f64,
}

/// The whole result of a scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub provider: String,
    pub files_scanned: usize,
    pub bytes_scanned: u64,
    pub findings: Vec<Finding>,
    pub counts: BTreeMap<String, usize>,
    pub baselined: usize,
    pub allowed: usize,
    pub skipped: Vec<Skipped>,
    pub fallback: Vec<Fallback>,
    pub migration: Migration,
    pub warnings: Vec<String>,
}

/// The migration report: per environment and per file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Migration {
    pub environments: BTreeMap<String, EnvironmentMigration>,
    pub files: Vec<FileMigration>,
}

impl Report {
    /// One line: how many findings, in how many files, per rule.
    pub fn summary(&self) -> String {
        let files: BTreeSet<&str> = self.findings.iter().map(|f| f.file.as_str()).collect();
        let per_rule: Vec<String> = self
            .counts
            .iter()
            .map(|(rule, n)| format!("{rule}: {n}"))
            .collect();
        let mut line = format!(
            "secrets_gate: {} finding{} in {} file{}",
            self.findings.len(),
            if self.findings.len() == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" },
        );
        if !per_rule.is_empty() {
            line.push_str(&format!(" ({})", per_rule.join(", ")));
        }
        line.push_str(&format!("; {} files scanned", self.files_scanned));
        if !self.skipped.is_empty() {
            line.push_str(&format!(", {} skipped", self.skipped.len()));
        }
        if !self.fallback.is_empty() {
            line.push_str(&format!(
                ", {} line-scanned after a parse error",
                self.fallback.len()
            ));
        }
        if self.baselined + self.allowed > 0 {
            line.push_str(&format!(
                ", {} baselined, {} allowed inline",
                self.baselined, self.allowed
            ));
        }
        line
    }

    /// `file:line:col: [severity] rule key_path (fingerprint) message` per finding, then the
    /// skipped and line-scanned files, then the summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!(
                "{}:{}:{}: [{}] {} {} (fingerprint {}){}: {}\n",
                f.file,
                f.line,
                f.column,
                f.severity,
                f.rule,
                if f.key_path.is_empty() {
                    "-"
                } else {
                    &f.key_path
                },
                f.fingerprint,
                f.hint
                    .as_deref()
                    .map(|h| format!(" hint {h}"))
                    .unwrap_or_default(),
                f.message
            ));
        }
        for s in &self.skipped {
            out.push_str(&format!("{}: skipped: {}\n", s.file, s.reason));
        }
        for fb in &self.fallback {
            out.push_str(&format!(
                "{}:{}: not valid {} ({}); line-scanned instead\n",
                fb.file, fb.line, fb.format, fb.error
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize report: {e}\"}}"))
    }

    /// SARIF 2.1.0 with what GitHub code scanning reads: tool.driver rules with ids and
    /// descriptions, results with ruleId, ruleIndex, level, message, a relative artifact URI,
    /// region lines, and partialFingerprints.
    pub fn to_sarif(&self) -> String {
        let rules: Vec<Value> = Rule::ALL
            .iter()
            .map(|r| {
                json!({
                    "id": r.id(),
                    "name": r.id().replace('-', "_"),
                    "shortDescription": {"text": r.description()},
                    "fullDescription": {"text": r.description()},
                    "defaultConfiguration": {"level": if r.severity() == "high" { "error" } else { "warning" }},
                    "properties": {"tags": ["security", "secrets"], "security-severity": if r.severity() == "high" { "8.0" } else { "5.0" }},
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let index = Rule::ALL.iter().position(|r| r.id() == f.rule).unwrap_or(0);
                json!({
                    "ruleId": f.rule,
                    "ruleIndex": index,
                    "level": if f.severity == "high" { "error" } else { "warning" },
                    "message": {"text": format!("{} at {}", f.message, if f.key_path.is_empty() { "-" } else { &f.key_path })},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": sarif_uri(&f.file), "uriBaseId": "%SRCROOT%"},
                            "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)}
                        }
                    }],
                    "partialFingerprints": {"secretsGate/v1": f.fingerprint},
                })
            })
            .collect();
        let doc = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "secrets_gate",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/fleet-verify",
                    "rules": rules,
                }},
                "results": results,
            }]
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

/// A relative, forward-slash, percent-encoded URI for SARIF.
fn sarif_uri(file: &str) -> String {
    let trimmed = file.trim_start_matches("./").trim_start_matches('/');
    let mut out = String::new();
    for b in trimmed.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_depends_on_location_and_rule_only() {
        let a = fingerprint("group_vars/all.yml", "db.password", Rule::CredentialValue);
        assert_eq!(a.len(), 16);
        assert_eq!(
            a,
            fingerprint("group_vars/all.yml", "db.password", Rule::CredentialValue)
        );
        assert_ne!(
            a,
            fingerprint("group_vars/all.yml", "db.password", Rule::HighEntropy)
        );
    }

    #[test]
    fn a_baseline_is_read_from_a_list_an_object_or_a_previous_report() {
        assert_eq!(
            Baseline::parse(r#"["0123456789abcdef"]"#).map(|b| b.fingerprints.len()),
            Ok(1)
        );
        assert_eq!(
            Baseline::parse(r#"{"findings": [{"fingerprint": "0123456789abcdef"}]}"#)
                .map(|b| b.fingerprints.len()),
            Ok(1)
        );
        assert!(
            Baseline::parse(r#"{"fingerprints": ["nothex"]}"#).is_err_and(|e| e.contains("16 hex"))
        );
    }

    #[test]
    fn sarif_uris_are_relative_and_encoded() {
        assert_eq!(sarif_uri("./group vars/all.yml"), "group%20vars/all.yml");
    }
}
