//! The scan: a parallel walk of the given paths (honouring `.gitignore` and excludes), each
//! file read in its format and judged, then the repository-level gates (provider, `.sops.yaml`
//! coverage, data-key age, recipients, key files), the baseline, and the migration report.

use crate::formats::{self, Leaf};
use crate::mounts;
use crate::report::{self, Baseline, Fallback, FileMigration, Finding, Migration, Report, Skipped};
use crate::rules::{self, Rule, RuleConfig};
use crate::sops::{self, SopsConfig, SopsMetadata};
use crate::text;
use regex::Regex;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The active secrets provider of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    Vault,
    Sops,
    #[default]
    Either,
}

impl Provider {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "vault" => Some(Self::Vault),
            "sops" => Some(Self::Sops),
            "either" => Some(Self::Either),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Vault => "vault",
            Self::Sops => "sops",
            Self::Either => "either",
        }
    }
}

/// Expected recipients for SOPS files whose path, relative to the fingerprint base (the
/// repository root; see `fingerprint_bases`), matches `path_regex`.
#[derive(Debug, Clone)]
pub struct RecipientRule {
    pub path_regex: Regex,
    pub recipients: BTreeSet<String>,
}

/// Everything a scan needs; built by the CLI and by the Ansible module.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub paths: Vec<PathBuf>,
    pub excludes: Vec<String>,
    pub provider: Provider,
    /// `true`: findings fail; `false` (audit): they are only reported.
    pub enforce: bool,
    pub baseline: Option<Baseline>,
    pub rules: RuleConfig,
    /// The `.sops.yaml` to check coverage against; a relative path is taken from the first scan
    /// root's directory (the command line makes it absolute from the working directory first).
    pub sops_config: Option<PathBuf>,
    pub max_data_key_age_secs: Option<u64>,
    pub recipients: Vec<RecipientRule>,
    pub key_files: Vec<PathBuf>,
    pub show_hint: bool,
    pub max_file_size: u64,
    pub honour_gitignore: bool,
    /// How long another file system inside the scanned tree (a network or FUSE mount) has to
    /// answer its first look before it is reported as unreadable and not entered.
    pub timeout: std::time::Duration,
    /// Unix seconds "now", for data-key ages.
    pub now: i64,
}

impl ScanConfig {
    /// Defaults: provider `either`, enforce, 1 MiB size limit, `.gitignore` honoured, 10 s for
    /// a mount to answer.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            excludes: Vec::new(),
            provider: Provider::Either,
            enforce: true,
            baseline: None,
            rules: RuleConfig::default(),
            sops_config: None,
            max_data_key_age_secs: None,
            recipients: Vec::new(),
            key_files: Vec::new(),
            show_hint: false,
            max_file_size: 1024 * 1024,
            honour_gitignore: true,
            timeout: mounts::DEFAULT_TIMEOUT,
            now: ansible_module::time::unix_now(),
        }
    }
}

/// Why a scan could not run at all (usage or I/O; exit code 2 on the command line).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("path '{path}' cannot be scanned: {source}")]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exclude pattern '{pattern}' is not a valid glob: {message}")]
    Exclude { pattern: String, message: String },
    #[error("SOPS config '{path}': {message}")]
    SopsConfig { path: PathBuf, message: String },
}

/// One plaintext or gate finding before baseline filtering.
struct RawFinding {
    line: usize,
    column: usize,
    key_path: String,
    rule: Rule,
    message: String,
    hint: Option<String>,
}

/// What one file contributed.
#[derive(Default)]
struct FileOutcome {
    display: String,
    relative: String,
    absolute: PathBuf,
    bytes: u64,
    findings: Vec<RawFinding>,
    vault: usize,
    vault_line: usize,
    sops: usize,
    sops_meta: Option<SopsMetadata>,
    allow_lines: BTreeSet<usize>,
    fallback: Option<Fallback>,
    skipped: Option<Skipped>,
    vault_password_files: Vec<PathBuf>,
}

impl FileOutcome {
    /// A file that adds nothing to the report but its count and size: no finding, no Vault or
    /// SOPS content, not skipped or line-scanned, no key file named. The scan keeps only the
    /// count and size of such files (most of a repository), so memory stays flat with the
    /// number of files. Every field that `finish` reads must be checked here.
    fn is_clean(&self) -> bool {
        self.findings.is_empty()
            && self.vault == 0
            && self.sops == 0
            && self.sops_meta.is_none()
            && self.fallback.is_none()
            && self.skipped.is_none()
            && self.vault_password_files.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
    Ini,
    Dotenv,
    Text,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Ini => "INI",
            Format::Dotenv => "dotenv",
            Format::Text => "text",
        }
    }
}

fn detect_format(path: &Path, text: &str) -> Format {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "yml" | "yaml" => return Format::Yaml,
        "json" => return Format::Json,
        "ini" | "cfg" => return Format::Ini,
        "env" => return Format::Dotenv,
        _ => {}
    }
    if name == ".env" || name.starts_with(".env.") || name == "envrc" || name == ".envrc" {
        return Format::Dotenv;
    }
    if text.starts_with("#!") {
        // A script: line-scanned, never read as YAML.
        return Format::Text;
    }
    if ext.is_empty() || name == "hosts" || name == "inventory" {
        let in_vars_dir = path.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c == "group_vars" || c == "host_vars" || c == "vars" || c == "defaults"
        });
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
        return match first {
            Some(l) if l.starts_with('[') && l.ends_with(']') => Format::Ini,
            Some(l) if in_vars_dir || l == "---" || l.contains(": ") || l.ends_with(':') => {
                Format::Yaml
            }
            _ => Format::Text,
        };
    }
    Format::Text
}

/// Source code and prose: judged by token formats, private keys and URLs only.
fn is_code_or_prose(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        name,
        "Makefile" | "Dockerfile" | "Containerfile" | "Vagrantfile" | "Jenkinsfile"
    ) || matches!(
        ext.as_str(),
        "rs" | "py"
            | "go"
            | "js"
            | "ts"
            | "java"
            | "c"
            | "h"
            | "cc"
            | "cpp"
            | "rb"
            | "pl"
            | "php"
            | "lua"
            | "md"
            | "rst"
            | "txt"
            | "adoc"
            | "html"
            | "css"
            | "svg"
            | "xml"
    )
}

/// Runs a scan.
pub fn scan(config: &ScanConfig) -> Result<Report, ScanError> {
    // A path on a network or FUSE mount that does not answer would block its first `stat`.
    if let Some((path, source)) = mounts::unanswered_paths(&config.paths, config.timeout)
        .into_iter()
        .next()
    {
        return Err(ScanError::Path { path, source });
    }
    let mut roots = Vec::new();
    for path in &config.paths {
        let canonical = std::fs::canonicalize(path).map_err(|source| ScanError::Path {
            path: path.clone(),
            source,
        })?;
        // A FIFO or a device given as a path is refused, not passed as "0 files scanned".
        if !canonical.is_dir() {
            ansible_module::args::regular_file_metadata(&canonical).map_err(|source| {
                ScanError::Path {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        roots.push((path.clone(), canonical));
    }
    let Some((first, _)) = roots.first() else {
        return Ok(Report::default());
    };
    let mut builder = ignore::WalkBuilder::new(first);
    for (path, _) in roots.iter().skip(1) {
        builder.add(path);
    }
    let mut overrides = ignore::overrides::OverrideBuilder::new(first);
    for pattern in &config.excludes {
        overrides
            .add(&format!("!{pattern}"))
            .map_err(|e| ScanError::Exclude {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
    }
    let overrides = overrides.build().map_err(|e| ScanError::Exclude {
        pattern: config.excludes.join(", "),
        message: e.to_string(),
    })?;
    let hung = hung_mounts(&roots, &overrides, config.timeout);
    // The walker meets a hung mount point as the path it was reached by (given root + rest).
    let hung_as_walked: Vec<PathBuf> = hung.iter().map(|(walked, _)| walked.clone()).collect();
    builder
        .hidden(false)
        .git_ignore(config.honour_gitignore)
        .git_exclude(config.honour_gitignore)
        .git_global(false)
        .ignore(config.honour_gitignore)
        .parents(config.honour_gitignore)
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .threads(
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(8),
        )
        .filter_entry(move |entry| {
            entry.file_name() != ".git"
                && (hung_as_walked.is_empty() || !hung_as_walked.iter().any(|h| h == entry.path()))
        });
    let outcomes: Mutex<Vec<FileOutcome>> = Mutex::new(Vec::new());
    let walk_errors: Mutex<Vec<WalkProblem>> = Mutex::new(Vec::new());
    let clean_files = AtomicUsize::new(0);
    let clean_bytes = AtomicU64::new(0);
    builder.build_parallel().run(|| {
        let outcomes = &outcomes;
        let walk_errors = &walk_errors;
        let roots = &roots;
        let (clean_files, clean_bytes) = (&clean_files, &clean_bytes);
        Box::new(move |entry| {
            match entry {
                Ok(entry) => {
                    if entry.file_type().is_some_and(|t| t.is_file()) {
                        let outcome = scan_file(entry.path(), roots, config);
                        if outcome.is_clean() {
                            clean_files.fetch_add(1, Ordering::Relaxed);
                            clean_bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
                        } else if let Ok(mut all) = outcomes.lock() {
                            all.push(outcome);
                        }
                    }
                }
                Err(err) => {
                    if let Ok(mut errors) = walk_errors.lock() {
                        errors.extend(walk_problems(&err));
                    }
                }
            }
            ignore::WalkState::Continue
        })
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    outcomes.sort_by(|a, b| a.display.cmp(&b.display));
    let mut walk_errors = walk_errors.into_inner().unwrap_or_else(|p| p.into_inner());
    walk_errors.extend(hung.into_iter().map(|(walked, why)| WalkProblem {
        error: match why {
            None => format!(
                "timed out reading {} after {} (a mount that does not answer?); not entered",
                walked.to_string_lossy().trim_start_matches("./"),
                ansible_module::types::Duration(config.timeout)
            ),
            Some(why) => format!(
                "{}: {why}; a mount point, not entered",
                walked.to_string_lossy().trim_start_matches("./")
            ),
        },
        path: Some(walked),
    }));
    walk_errors.sort_by(|a, b| a.path.cmp(&b.path));
    let mut report = finish(config, &roots, outcomes, walk_errors)?;
    report.files_scanned += clean_files.into_inner();
    report.bytes_scanned += clean_bytes.into_inner();
    Ok(report)
}

/// A path the walk could not enter or read (a directory nobody may list, a mount that does not
/// answer), and the error; `path` is `None` only for an error that names no path.
struct WalkProblem {
    path: Option<PathBuf>,
    error: String,
}

/// The walker's error as (path, error text) pairs: the path for `file`, the text for the message.
fn walk_problems(err: &ignore::Error) -> Vec<WalkProblem> {
    match err {
        ignore::Error::WithPath { path, err } => walk_problems(err)
            .into_iter()
            .map(|p| WalkProblem {
                path: Some(p.path.unwrap_or_else(|| path.clone())),
                error: p.error,
            })
            .collect(),
        ignore::Error::Io(io) => vec![WalkProblem {
            path: None,
            error: format!("cannot walk it: {io}"),
        }],
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_problems(err)
        }
        ignore::Error::Partial(errors) => errors.iter().flat_map(walk_problems).collect(),
        ignore::Error::Loop { child, .. } => vec![WalkProblem {
            path: Some(child.clone()),
            error: err.to_string(),
        }],
        other => vec![WalkProblem {
            path: None,
            error: other.to_string(),
        }],
    }
}

/// The mount points inside the scanned directories that did not answer a probe within the
/// timeout, or whose probe could not be started, as (path as the walker reaches it, `None` for
/// a timeout or why the probe did not start); a mount inside a hung one is left out (it is
/// not reached).
fn hung_mounts(
    roots: &[(PathBuf, PathBuf)],
    overrides: &ignore::overrides::Override,
    timeout: std::time::Duration,
) -> Vec<(PathBuf, Option<String>)> {
    let all = mounts::mounts();
    // A mount that `exclude` leaves out is not walked, so it is not looked at either.
    let mut inside: Vec<PathBuf> = roots
        .iter()
        .filter(|(_, canonical)| canonical.is_dir())
        .flat_map(|(given, canonical)| {
            mounts::mount_points_inside(&all, canonical)
                .into_iter()
                .filter(move |m| {
                    let walked = m.strip_prefix(canonical).map(|rest| given.join(rest));
                    !walked.is_ok_and(|w| overrides.matched(&w, true).is_ignore())
                })
        })
        .collect();
    if inside.is_empty() {
        return Vec::new();
    }
    inside.sort();
    inside.dedup();
    let mut hung = mounts::unanswered(&inside, timeout);
    hung.sort();
    let mut outermost: Vec<(PathBuf, Option<String>)> = Vec::new();
    for (path, why) in hung {
        if !outermost.iter().any(|(outer, _)| path.starts_with(outer)) {
            outermost.push((path, why));
        }
    }
    let mut out = Vec::new();
    for (absolute, why) in outermost {
        for (given, canonical) in roots {
            if let Ok(rest) = absolute.strip_prefix(canonical) {
                out.push((given.join(rest), why.clone()));
            }
        }
    }
    out
}

/// The path relative to the scan root it was reached from, and its absolute path (the
/// canonical root joined with that: no system call per file).
fn relative_to_root(path: &Path, roots: &[(PathBuf, PathBuf)]) -> (String, PathBuf) {
    for (given, canonical) in roots {
        if let Ok(rest) = path.strip_prefix(given) {
            if rest.as_os_str().is_empty() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                return (name, canonical.clone());
            }
            return (rest.to_string_lossy().to_string(), canonical.join(rest));
        }
    }
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    (path.to_string_lossy().to_string(), absolute)
}

fn scan_file(path: &Path, roots: &[(PathBuf, PathBuf)], config: &ScanConfig) -> FileOutcome {
    let display = path.to_string_lossy().trim_start_matches("./").to_string();
    let (relative, absolute) = relative_to_root(path, roots);
    let mut outcome = FileOutcome {
        display: display.clone(),
        relative,
        absolute,
        ..FileOutcome::default()
    };
    // One open and one fstat per file, read into the thread's reusable buffer.
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) => return unreadable(outcome, &err.to_string(), config),
    };
    let size = match file.metadata() {
        Ok(meta) => meta.len(),
        Err(err) => return unreadable(outcome, &err.to_string(), config),
    };
    if size > config.max_file_size {
        outcome.skipped = Some(Skipped {
            file: display,
            reason: format!(
                "larger than max_file_size ({size} > {} bytes)",
                config.max_file_size
            ),
        });
        return outcome;
    }
    READ_BUFFER.with_borrow_mut(|bytes| {
        bytes.clear();
        if bytes.capacity() > READ_BUFFER_KEEP {
            // Not kept after a large file (max_file_size may be raised far above the default).
            *bytes = Vec::new();
        }
        bytes.reserve(usize::try_from(size).unwrap_or(0).saturating_add(1));
        // Read to the end as std::fs::read does; through `take` because File's own
        // read_to_end asks the size again (fstat, lseek), which the fstat above has given.
        if let Err(err) = (&mut file).take(u64::MAX).read_to_end(bytes) {
            return unreadable(outcome, &err.to_string(), config);
        }
        outcome.bytes = bytes.len() as u64;
        if bytes[..bytes.len().min(8192)].contains(&0) {
            outcome.skipped = Some(Skipped {
                file: display,
                reason: "binary file (NUL byte)".into(),
            });
            return outcome;
        }
        let raw = String::from_utf8_lossy(bytes);
        let text = text::normalize_line_breaks(&raw);
        judge_text(&mut outcome, path, &text, config);
        outcome
    })
}

thread_local! {
    /// The walker thread's file buffer: no allocation per file for the bytes read.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most buffer capacity a walker thread keeps between files.
const READ_BUFFER_KEEP: usize = 2 << 20;

fn unreadable(mut outcome: FileOutcome, error: &str, config: &ScanConfig) -> FileOutcome {
    if config.enforce {
        outcome.findings.push(RawFinding {
            line: 1,
            column: 1,
            key_path: String::new(),
            rule: Rule::UnreadableFile,
            message: format!("cannot read the file ({error}); failing closed"),
            hint: None,
        });
    } else {
        outcome.skipped = Some(Skipped {
            file: outcome.display.clone(),
            reason: format!("unreadable: {error}"),
        });
    }
    outcome
}

fn judge_text(outcome: &mut FileOutcome, path: &Path, text: &str, config: &ScanConfig) {
    if text.starts_with("$ANSIBLE_VAULT;") {
        outcome.vault = 1;
        outcome.vault_line = 1;
        return;
    }
    let format = detect_format(path, text);
    let parsed: Result<Vec<Leaf>, formats::ParseFailure> = match format {
        Format::Yaml | Format::Json => formats::parse_yaml(text),
        Format::Ini => Ok(formats::parse_ini(text)),
        Format::Dotenv => Ok(formats::parse_dotenv(text)),
        Format::Text => Err(formats::ParseFailure {
            line: 0,
            message: String::new(),
        }),
    };
    collect_allow_lines(outcome, text);
    let leaves = match parsed {
        Ok(leaves) => leaves,
        Err(failure) => {
            if format != Format::Text {
                outcome.fallback = Some(Fallback {
                    file: outcome.display.clone(),
                    format: format.name().into(),
                    line: failure.line,
                    error: failure.message,
                });
            }
            let hits = if format == Format::Text && is_code_or_prose(path) {
                rules::scan_lines_formats_only(text)
            } else {
                rules::scan_lines(text, &config.rules, 0)
            };
            for hit in hits {
                let line = 1 + hit.line_offset;
                push_hit(outcome, hit, line, 1, String::new(), config);
            }
            return;
        }
    };
    if let Some(meta) = sops::metadata(&leaves) {
        if meta.is_encrypted() {
            judge_sops(outcome, &leaves, meta, config);
            return;
        }
    }
    if format == Format::Ini
        && path
            .file_name()
            .is_some_and(|n| n == "ansible.cfg" || n.to_string_lossy().ends_with(".cfg"))
    {
        let base = path.parent().unwrap_or(Path::new("."));
        for leaf in &leaves {
            if leaf.key() == "vault_password_file" || leaf.key() == "vault_identity_list" {
                for item in leaf.value.split(',') {
                    let file = item.rsplit('@').next().unwrap_or(item).trim();
                    if !file.is_empty() && !rules::is_reference(file) {
                        outcome.vault_password_files.push(expand_path(file, base));
                    }
                }
            }
        }
    }
    for leaf in &leaves {
        if sops::is_metadata_leaf(leaf) {
            continue;
        }
        let value = leaf.value.trim();
        if leaf.tag.as_deref() == Some("!vault") || value.starts_with("$ANSIBLE_VAULT;") {
            if outcome.vault == 0 {
                outcome.vault_line = leaf.line;
            }
            outcome.vault += 1;
            continue;
        }
        if sops::is_sops_ciphertext(value) {
            outcome.sops += 1;
            continue;
        }
        let mut hits = rules::classify(leaf.key(), &leaf.value, &config.rules);
        for alias_key in &leaf.alias_keys {
            if hits.is_empty() {
                hits = rules::classify(alias_key, &leaf.value, &config.rules);
            }
        }
        for hit in hits {
            let line = if leaf.literal_block {
                leaf.line + hit.line_offset
            } else {
                leaf.line
            };
            let column = if line == leaf.line { leaf.column } else { 1 };
            push_hit(outcome, hit, line, column, leaf.key_path(), config);
        }
    }
    // Comments: `# password: ...` in YAML, INI and dotenv (`;` too in INI; a file with neither
    // character has none, which one search over the text settles).
    let has_comments = text.contains('#') || format == Format::Ini && text.contains(';');
    if has_comments && matches!(format, Format::Yaml | Format::Ini | Format::Dotenv) {
        for (index, line) in text.split('\n').enumerate() {
            if let Some(comment) = comment_of(line, format) {
                for hit in rules::scan_line(comment, &config.rules, 0) {
                    push_hit(outcome, hit, index + 1, 1, "(comment)".into(), config);
                }
            }
        }
    }
}

/// The comment part of a line: from a `#` at the start or after whitespace (`;` too in INI).
fn comment_of(line: &str, format: Format) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || format == Format::Ini && trimmed.starts_with(';') {
        return Some(&trimmed[1..]);
    }
    if format == Format::Dotenv {
        return None;
    }
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'#' && i > 0 && bytes[i - 1].is_ascii_whitespace() => {
                return Some(&line[i + 1..])
            }
            None => {}
        }
    }
    None
}

fn collect_allow_lines(outcome: &mut FileOutcome, text: &str) {
    if !text.contains("secrets_gate: allow") {
        return;
    }
    for (index, line) in text.split('\n').enumerate() {
        if line.contains("secrets_gate: allow") {
            outcome.allow_lines.insert(index + 1);
            if line.trim_start().starts_with('#') {
                // A comment on its own line allows the line below it.
                outcome.allow_lines.insert(index + 2);
            }
        }
    }
}

fn push_hit(
    outcome: &mut FileOutcome,
    hit: rules::Hit,
    line: usize,
    column: usize,
    key_path: String,
    config: &ScanConfig,
) {
    let hint = config.show_hint.then(|| text::masked_hint(&hit.secret));
    let line = if line == 0 { 1 } else { line };
    outcome.findings.push(RawFinding {
        line,
        column,
        key_path,
        rule: hit.rule,
        message: hit.what,
        hint,
    });
}

fn judge_sops(outcome: &mut FileOutcome, leaves: &[Leaf], meta: SopsMetadata, config: &ScanConfig) {
    for leaf in leaves {
        if sops::is_metadata_leaf(leaf) {
            continue;
        }
        let value = leaf.value.trim();
        if sops::is_sops_ciphertext(value) {
            outcome.sops += 1;
            continue;
        }
        let empty = value.is_empty() || value == "~" || value == "null";
        if !empty && meta.must_encrypt(&leaf.path) {
            let hint = config.show_hint.then(|| text::masked_hint(value));
            outcome.findings.push(RawFinding {
                line: leaf.line,
                column: leaf.column,
                key_path: leaf.key_path(),
                rule: Rule::SopsUnencryptedValue,
                message: "plaintext value in a SOPS file whose own rules say it must be encrypted (hand-edited?)".into(),
                hint,
            });
        }
    }
    outcome.sops_meta = Some(meta);
}

fn expand_path(file: &str, base: &Path) -> PathBuf {
    if let Some(rest) = file.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let p = PathBuf::from(file);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// The directory a fingerprint's path (and the path a `recipients` rule's `path_regex` is
/// matched against) is relative to, per scan root: the repository root (the
/// nearest directory above the root holding `.git`), else the directory of `.sops.yaml` when it
/// is above the root, else the root's own directory. So the same finding has the same
/// fingerprint whether the repository is scanned as `repo/`, `./` or `/abs/repo`, and, in a
/// git checkout, whichever of its directories is scanned.
fn fingerprint_bases(
    roots: &[(PathBuf, PathBuf)],
    sops_config: Option<&SopsConfig>,
) -> Vec<PathBuf> {
    let sops_dir = sops_config
        .and_then(|sc| sc.path.parent())
        .and_then(|p| std::fs::canonicalize(p).ok());
    roots
        .iter()
        .filter_map(|(_, canonical)| {
            let dir = if canonical.is_dir() {
                canonical.as_path()
            } else {
                canonical.parent()?
            };
            let base = dir
                .ancestors()
                .find(|d| d.join(".git").exists())
                .or_else(|| sops_dir.as_deref().filter(|s| dir.starts_with(s)))
                .unwrap_or(dir);
            Some(base.to_path_buf())
        })
        .collect()
}

/// A file's path for its fingerprint: relative to the innermost base that holds it.
fn fingerprint_path(absolute: &Path, bases: &[PathBuf]) -> String {
    bases
        .iter()
        .filter_map(|base| absolute.strip_prefix(base).ok())
        .min_by_key(|rest| rest.as_os_str().len())
        .map_or_else(
            || absolute.to_string_lossy().into_owned(),
            |rest| rest.to_string_lossy().into_owned(),
        )
}

/// The largest file parameter (`baseline`, `sops_config`) read.
pub const MAX_PARAMETER_FILE_BYTES: u64 = ansible_module::args::MAX_ARGS_FILE_BYTES;

fn find_sops_config(
    config: &ScanConfig,
    roots: &[(PathBuf, PathBuf)],
) -> Result<Option<SopsConfig>, ScanError> {
    let candidate = match &config.sops_config {
        Some(path) if path.is_relative() => {
            // Relative to the first scan root's directory (the module's documented rule).
            let base = roots.first().and_then(|(_, canonical)| {
                if canonical.is_dir() {
                    Some(canonical.clone())
                } else {
                    canonical.parent().map(Path::to_path_buf)
                }
            });
            Some(base.map_or_else(|| path.clone(), |b| b.join(path)))
        }
        Some(path) => Some(path.clone()),
        None => roots.iter().find_map(|(_, canonical)| {
            let start = if canonical.is_dir() {
                canonical.as_path()
            } else {
                canonical.parent()?
            };
            start
                .ancestors()
                .map(|dir| dir.join(".sops.yaml"))
                .find(|p| p.is_file())
        }),
    };
    let Some(path) = candidate else {
        return Ok(None);
    };
    let text = mounts::read_parameter_file(&path, MAX_PARAMETER_FILE_BYTES, config.timeout)
        .map_err(|message| ScanError::SopsConfig {
            path: path.clone(),
            message,
        })?;
    SopsConfig::parse(&path, &text)
        .map(Some)
        .map_err(|message| ScanError::SopsConfig { path, message })
}

fn environment_of(relative: &str) -> String {
    let parts: Vec<&str> = relative.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if matches!(*part, "inventories" | "inventory" | "environments" | "envs")
            && i + 2 < parts.len()
        {
            return parts[i + 1].to_string();
        }
    }
    "default".to_string()
}

fn finish(
    config: &ScanConfig,
    roots: &[(PathBuf, PathBuf)],
    mut outcomes: Vec<FileOutcome>,
    walk_errors: Vec<WalkProblem>,
) -> Result<Report, ScanError> {
    let sops_config = if config.provider == Provider::Vault {
        None
    } else {
        find_sops_config(config, roots)?
    };
    let bases = fingerprint_bases(roots, sops_config.as_ref());
    let mut report = Report {
        mode: if config.enforce { "enforce" } else { "audit" }.into(),
        provider: config.provider.name().into(),
        ..Report::default()
    };
    for problem in walk_errors {
        let Some(path) = problem.path else {
            // No path to point at: the run cannot say what it missed.
            report.warnings.push(problem.error);
            continue;
        };
        let display = path.to_string_lossy().trim_start_matches("./").to_string();
        if !config.enforce {
            report
                .warnings
                .push(format!("{display}: {}", problem.error));
            continue;
        }
        let (_, absolute) = relative_to_root(&path, roots);
        let fingerprint = report::fingerprint(
            &fingerprint_path(&absolute, &bases),
            "",
            Rule::UnreadableFile,
        );
        if config
            .baseline
            .as_ref()
            .is_some_and(|b| b.fingerprints.contains(&fingerprint))
        {
            report.baselined += 1;
            continue;
        }
        *report
            .counts
            .entry(Rule::UnreadableFile.id().to_string())
            .or_insert(0) += 1;
        report.findings.push(Finding {
            file: display,
            line: 1,
            column: 1,
            key_path: String::new(),
            rule: Rule::UnreadableFile.id().into(),
            severity: Rule::UnreadableFile.severity().into(),
            message: format!("{}; failing closed", problem.error),
            fingerprint,
            hint: None,
            plaintext: false,
        });
    }
    if config.provider == Provider::Sops && sops_config.is_none() {
        report.warnings.push(
            "provider is sops but no .sops.yaml was found: every secrets file is uncovered".into(),
        );
    }
    let mut key_files: Vec<PathBuf> = config.key_files.clone();
    // The directory of .sops.yaml, resolved once: creation rules match paths relative to it.
    let sops_base = sops_config
        .as_ref()
        .and_then(|sc| sc.path.parent().and_then(|p| std::fs::canonicalize(p).ok()));
    for outcome in &mut outcomes {
        key_files.append(&mut outcome.vault_password_files);
        repository_gates(
            outcome,
            config,
            sops_config.as_ref(),
            sops_base.as_deref(),
            &bases,
        );
    }
    for outcome in outcomes {
        report.files_scanned += usize::from(outcome.skipped.is_none());
        report.bytes_scanned += outcome.bytes;
        if let Some(s) = outcome.skipped {
            report.skipped.push(s);
        }
        if let Some(f) = outcome.fallback {
            report.fallback.push(f);
        }
        let mut plaintext = 0usize;
        let mut seen_lines = BTreeSet::new();
        let mut findings = outcome.findings;
        findings.sort_by_key(|f| (f.line, f.column));
        for raw in findings {
            // Two findings on one line are one finding; the first (by column) names it.
            if raw.rule.is_plaintext() && !seen_lines.insert(raw.line) {
                continue;
            }
            let fingerprint = report::fingerprint(
                &fingerprint_path(&outcome.absolute, &bases),
                &key_path_for_fp(&raw),
                raw.rule,
            );
            if raw.rule.is_plaintext() && outcome.allow_lines.contains(&raw.line) {
                report.allowed += 1;
                continue;
            }
            if config
                .baseline
                .as_ref()
                .is_some_and(|b| b.fingerprints.contains(&fingerprint))
            {
                report.baselined += 1;
                continue;
            }
            if raw.rule.is_plaintext() {
                plaintext += 1;
            }
            *report.counts.entry(raw.rule.id().to_string()).or_insert(0) += 1;
            report.findings.push(Finding {
                file: outcome.display.clone(),
                line: raw.line,
                column: raw.column,
                key_path: raw.key_path,
                rule: raw.rule.id().into(),
                severity: raw.rule.severity().into(),
                message: raw.message,
                fingerprint,
                hint: raw.hint,
                plaintext: raw.rule.is_plaintext(),
            });
        }
        let is_sops = outcome.sops > 0 || outcome.sops_meta.is_some();
        if outcome.vault + outcome.sops + plaintext > 0 || is_sops {
            let status = match (outcome.vault > 0, is_sops, plaintext > 0) {
                (true, false, false) => "vault",
                (false, true, false) => "sops",
                (false, false, true) => "plaintext",
                _ => "mixed",
            };
            report.migration.files.push(FileMigration {
                environment: environment_of(&outcome.relative.replace('\\', "/")),
                file: outcome.display.clone(),
                vault: outcome.vault,
                sops: outcome.sops,
                plaintext,
                status: status.into(),
            });
        }
    }
    key_file_gates(&mut report, &key_files, roots, config.timeout);
    summarise_migration(&mut report.migration);
    report.findings.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.column).cmp(&(b.file.as_str(), b.line, b.column))
    });
    Ok(report)
}

fn key_path_for_fp(raw: &RawFinding) -> String {
    if raw.key_path.is_empty() || raw.key_path == "(comment)" {
        // Line-scanned findings have no key path: the line stands in for it.
        format!("{}@{}", raw.key_path, raw.line)
    } else {
        raw.key_path.clone()
    }
}

fn repository_gates(
    outcome: &mut FileOutcome,
    config: &ScanConfig,
    sops_config: Option<&SopsConfig>,
    sops_base: Option<&Path>,
    bases: &[PathBuf],
) {
    let is_sops = outcome.sops_meta.is_some();
    let has_plaintext = outcome.findings.iter().any(|f| f.rule.is_plaintext());
    let is_secrets_file = is_sops || outcome.vault > 0 || has_plaintext;
    match config.provider {
        Provider::Vault if is_sops => outcome.findings.push(gate_finding(
            outcome.sops_meta.as_ref().map_or(1, |m| m.line),
            "sops",
            Rule::ProviderMismatch,
            "SOPS-encrypted file while the active provider is vault: the deploy cannot decrypt it"
                .into(),
        )),
        Provider::Sops if outcome.vault > 0 => outcome.findings.push(gate_finding(
            outcome.vault_line.max(1),
            "",
            Rule::ProviderMismatch,
            format!(
                "Ansible Vault content ({} value{}) while the active provider is sops: migrate it",
                outcome.vault,
                if outcome.vault == 1 { "" } else { "s" }
            ),
        )),
        _ => {}
    }
    let coverage_required = config.provider == Provider::Sops
        || config.provider == Provider::Either && sops_config.is_some();
    // Only the SOPS configuration itself is exempt; `secrets.sops.yaml` is a secrets file.
    let is_sops_config = outcome
        .absolute
        .file_name()
        .is_some_and(|n| n == ".sops.yaml" || n == ".sops.yml");
    if coverage_required && is_secrets_file && !is_sops_config {
        let covered = sops_config.is_some_and(|sc| {
            let rel = sops_base
                .and_then(|base| outcome.absolute.strip_prefix(base).ok())
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_else(|| outcome.display.clone());
            sc.covers(&rel, &outcome.absolute.to_string_lossy())
        });
        if !covered {
            let message = match sops_config {
                Some(sc) => format!(
                    "secrets file matches no creation_rules path_regex in {}",
                    sc.path.display()
                ),
                None => "secrets file but no .sops.yaml was found (provider sops)".into(),
            };
            outcome
                .findings
                .push(gate_finding(1, "", Rule::SopsCoverage, message));
        }
    }
    let Some(meta) = outcome.sops_meta.clone() else {
        return;
    };
    if let Some(max) = config.max_data_key_age_secs {
        match meta.lastmodified.as_deref().and_then(sops::parse_rfc3339) {
            Some(modified) => {
                let age = config.now - modified;
                if age > max as i64 {
                    outcome.findings.push(gate_finding(
                        meta.line,
                        "sops.lastmodified",
                        Rule::DataKeyAge,
                        format!(
                            "SOPS data key is {} old (lastmodified {}), older than max_data_key_age {}; rotate it with `sops rotate -i`",
                            sops::describe_age(age),
                            meta.lastmodified.as_deref().unwrap_or(""),
                            sops::describe_age(max as i64)
                        ),
                    ));
                }
            }
            None => outcome.findings.push(gate_finding(meta.line, "sops.lastmodified", Rule::DataKeyAge, "SOPS lastmodified is missing or not an RFC 3339 time: the data key's age is unknown".into())),
        }
    }
    // The same path the fingerprint uses (relative to the repository root), so one
    // `path_regex` gives one verdict whether `repo/`, `./`, `/abs/repo` or a directory inside
    // the repository is scanned.
    let rel = fingerprint_path(&outcome.absolute, bases).replace('\\', "/");
    if let Some(rule) = config
        .recipients
        .iter()
        .find(|r| r.path_regex.is_match(&rel))
    {
        let actual: BTreeSet<String> = meta
            .recipients
            .iter()
            .map(|r| r.trim().to_string())
            .collect();
        for extra in actual.difference(&rule.recipients) {
            outcome.findings.push(gate_finding(meta.line, "sops", Rule::UnexpectedRecipient, format!("encrypted to recipient {extra}, which is not in the expected list for path_regex '{}'", rule.path_regex.as_str())));
        }
        for missing in rule.recipients.difference(&actual) {
            outcome.findings.push(gate_finding(
                meta.line,
                "sops",
                Rule::MissingRecipient,
                format!(
                    "not encrypted to expected recipient {missing} (path_regex '{}')",
                    rule.path_regex.as_str()
                ),
            ));
        }
    }
}

fn gate_finding(line: usize, key_path: &str, rule: Rule, message: String) -> RawFinding {
    RawFinding {
        line: line.max(1),
        column: 1,
        key_path: key_path.into(),
        rule,
        message,
        hint: None,
    }
}

fn key_file_gates(
    report: &mut Report,
    key_files: &[PathBuf],
    roots: &[(PathBuf, PathBuf)],
    timeout: std::time::Duration,
) {
    let mut seen = BTreeSet::new();
    // Key files often live in a home directory, which may be a network mount.
    let unanswered: BTreeMap<PathBuf, std::io::Error> =
        mounts::unanswered_paths(key_files, timeout)
            .into_iter()
            .collect();
    for path in key_files {
        if !seen.insert(path.clone()) {
            continue;
        }
        let display = path.to_string_lossy().to_string();
        if let Some(err) = unanswered.get(path) {
            report
                .warnings
                .push(format!("key file {display} cannot be checked: {err}"));
            continue;
        }
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(err) => {
                report
                    .warnings
                    .push(format!("key file {display} cannot be checked: {err}"));
                continue;
            }
        };
        let mut push = |rule: Rule, message: String| {
            *report.counts.entry(rule.id().to_string()).or_insert(0) += 1;
            report.findings.push(Finding {
                file: display.clone(),
                line: 1,
                column: 1,
                key_path: String::new(),
                rule: rule.id().into(),
                severity: rule.severity().into(),
                message,
                fingerprint: report::fingerprint(&display, "", rule),
                hint: None,
                plaintext: false,
            });
        };
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            push(Rule::KeyFilePermissions, format!("key file mode is {mode:04o}; it must be 0600 or stricter (chmod 600 {display})"));
        }
        if let Ok(canonical) = std::fs::canonicalize(path) {
            if let Some((_, root)) = roots
                .iter()
                .find(|(_, root)| root.is_dir() && canonical.starts_with(root))
            {
                push(
                    Rule::KeyFileInRepo,
                    format!(
                        "key file is inside the scanned tree {}; keep it outside the repository",
                        root.display()
                    ),
                );
            }
        }
    }
}

fn summarise_migration(migration: &mut Migration) {
    let mut envs: BTreeMap<String, report::EnvironmentMigration> = BTreeMap::new();
    for file in &migration.files {
        let env = envs.entry(file.environment.clone()).or_default();
        env.files += 1;
        env.vault += file.vault;
        env.sops += file.sops;
        env.plaintext += file.plaintext;
        match file.status.as_str() {
            "vault" => env.vault_files += 1,
            "sops" => env.sops_files += 1,
            "plaintext" => env.plaintext_files += 1,
            _ => {
                env.vault_files += usize::from(file.vault > 0);
                env.sops_files +=
                    usize::from(file.sops > 0 && file.vault == 0 && file.plaintext == 0);
                env.plaintext_files += usize::from(file.plaintext > 0);
            }
        }
    }
    for env in envs.values_mut() {
        let pure_sops = env.sops_files as f64;
        env.sops_percent = if env.files == 0 {
            0.0
        } else {
            (pure_sops * 1000.0 / env.files as f64).round() / 10.0
        };
    }
    migration.environments = envs;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans one file with `text` and returns (line, rule, key path) of each finding.
    fn scan_one(name: &str, text: &str) -> Vec<(usize, String, String)> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let report = scan(&ScanConfig::new(vec![dir.path().to_path_buf()]))
            .unwrap_or_else(|e| panic!("{e}"));
        report
            .findings
            .into_iter()
            .map(|f| (f.line, f.rule, f.key_path))
            .collect()
    }

    #[test]
    fn clean_files_count_in_files_and_bytes_scanned_beside_files_with_findings() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clean = "name: web\nport: 8080\n# a comment\n";
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("c{i}.yml")), clean)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let dirty = "db_password: Qz8-mP2q-R7tY\n";
        std::fs::write(dir.path().join("d.yml"), dirty).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("v.yml"),
            "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let report = scan(&ScanConfig::new(vec![dir.path().to_path_buf()]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.files_scanned, 7);
        let expected = 5 * clean.len() + dirty.len() + "$ANSIBLE_VAULT;1.1;AES256\n6162\n".len();
        assert_eq!(report.bytes_scanned, expected as u64);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.migration.files.len(), 2);
    }

    #[test]
    fn an_aliased_secret_is_reported_once_at_its_anchor() {
        let got = scan_one(
            "a.yml",
            "base: &pw Qz8-mP2q-R7tY-long\nadmin_password: *pw\nother:\n  <<: *pw\n",
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
    }

    #[test]
    fn a_secret_in_the_second_document_names_that_document() {
        let got = scan_one("a.yml", "---\nname: x\n---\ndb_password: Qz8-mP2q-R7tY\n");
        assert_eq!(
            got,
            [(4, "credential-value".into(), "[doc 1].db_password".into())]
        );
    }

    #[test]
    fn ini_inside_a_yaml_block_scalar_points_at_the_secret_line() {
        let got = scan_one(
            "a.yml",
            "my_cnf: |\n  [client]\n  user = app\n  password = Qz8-mP2q-R7tY\n",
        );
        assert_eq!(got, [(4, "credential-value".into(), "my_cnf".into())]);
    }

    #[test]
    fn a_pem_block_scalar_is_one_finding_within_its_range() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vx3Jk8Yf2Qp9Lm4Rt6Zw1Xc5Vb8Nn3Mm0Kk2Jj7Hh4Gg";
        let text = format!("tls_key: |\n  -----BEGIN PRIVATE KEY-----\n  {body}\n  {body}\n  -----END PRIVATE KEY-----\n");
        let got = scan_one("a.yml", &text);
        assert_eq!(got.len(), 1);
        assert!((1..=5).contains(&got[0].0) && got[0].1 == "private-key");
    }

    #[test]
    fn a_one_line_json_private_key_with_escaped_newlines_is_found() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vx3Jk8Yf2Qp9Lm4Rt6Zw1Xc5Vb8Nn3Mm0Kk2Jj7Hh4Gg";
        let text = format!("{{\n  \"type\": \"service_account\",\n  \"private_key_id\": \"9c1f6b3e2d4a5f60718293a4b5c6d7e8f9012345\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\"\n}}\n");
        assert_eq!(
            scan_one("sa.json", &text),
            [(4, "private-key".into(), "private_key".into())]
        );
    }

    #[test]
    fn dotted_keys_vault_and_unsafe_tags_are_read_as_written() {
        let text = "\"db.password\": Qz8-mP2q-R7tY\nvaulted: !vault |\n  $ANSIBLE_VAULT;1.2;AES256;prod\n  3162\nraw: !unsafe '{{ not_a_reference }}'\n";
        assert_eq!(
            scan_one("a.yml", text),
            [(1, "credential-value".into(), "db.password".into())]
        );
    }

    #[test]
    fn crlf_and_lone_cr_files_report_editor_line_numbers() {
        assert_eq!(
            scan_one("a.yml", "a: 1\r\nb: 2\r\npassword: Qz8-mP2q-R7tY\r\n")[0].0,
            3
        );
        assert_eq!(
            scan_one("b.yml", "a: 1\rb: 2\rc: 3\rpassword: Qz8-mP2q-R7tY\r")[0].0,
            4
        );
        assert_eq!(
            scan_one(".env", "A=1\r\nB=2\r\nAPI_TOKEN=Zk8mP2qR7tY4wX9c\r\n")[0].0,
            3
        );
    }

    #[test]
    fn a_comment_pointing_at_the_vault_is_not_a_secret_but_a_password_in_a_comment_is() {
        assert!(scan_one("a.yml", "# password: set via vault\nname: x\n").is_empty());
        assert_eq!(
            scan_one("b.yml", "name: x  # password: Raven_Meadow1541*\n")[0].0,
            1
        );
    }

    #[test]
    fn vault_files_and_sops_ciphertext_give_no_findings() {
        assert!(scan_one("v.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162636465\n").is_empty());
        assert!(scan_one(
            "s.yml",
            "password: ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]\n"
        )
        .is_empty());
    }

    #[test]
    fn source_code_is_judged_by_token_formats_only() {
        assert!(scan_one(
            "plugin.py",
            "password = os.getenv('X')\nsecret_word = compute()\nDB_PASSWORD = \"x\"\n"
        )
        .is_empty());
        let token = "ghp_8fK2mQ9xLp3RtV7wZ1cY5nB0hJ4sD6gA2eUq";
        assert_eq!(
            scan_one("plugin.py", &format!("x = 1\nTOKEN = \"{token}\"\n"))[0].0,
            2
        );
    }

    /// (rule, fingerprint) of the recipients findings of a scan of `path`.
    fn recipient_findings(path: &Path, rules: &[RecipientRule]) -> Vec<(String, String)> {
        let mut config = ScanConfig::new(vec![path.to_path_buf()]);
        config.recipients = rules.to_vec();
        let report = scan(&config).unwrap_or_else(|e| panic!("{e}"));
        report
            .findings
            .into_iter()
            .filter(|f| f.rule.ends_with("-recipient"))
            .map(|f| (f.rule, f.fingerprint))
            .collect()
    }

    #[test]
    fn a_recipients_path_regex_gives_one_verdict_for_the_repository_and_its_subdirectory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = dir.path().join("repo");
        let group_vars = repo.join("inventories/prod/group_vars");
        std::fs::create_dir_all(&group_vars).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(repo.join(".git")).unwrap_or_else(|e| panic!("{e}"));
        let departed = "age1departedcustodian0000000000000000000000000000000000000000";
        let expected = "age1currentcustodian00000000000000000000000000000000000000000";
        std::fs::write(
            group_vars.join("secrets.yml"),
            format!(
                "db_password: ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]\n\
                 sops:\n    age:\n        - recipient: {departed}\n\
                 \x20   lastmodified: \"2026-12-01T00:00:00Z\"\n\
                 \x20   mac: ENC[AES256_GCM,data:bWFj,iv:x,tag:y,type:str]\n    version: 3.11.0\n"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let rules = [RecipientRule {
            path_regex: Regex::new("^inventories/prod/").unwrap_or_else(|e| panic!("{e}")),
            recipients: BTreeSet::from([expected.to_string()]),
        }];

        let whole = recipient_findings(&repo, &rules);
        let part = recipient_findings(&repo.join("inventories/prod"), &rules);

        let rules_found: Vec<&str> = whole.iter().map(|(rule, _)| rule.as_str()).collect();
        assert_eq!(rules_found, ["unexpected-recipient", "missing-recipient"]);
        assert_eq!(whole, part);
    }

    #[test]
    fn ansible_cfg_and_templates_are_scanned() {
        assert_eq!(
            scan_one(
                "ansible.cfg",
                "[defaults]\nremote_user = deploy\nbecome_password = Qz8-mP2q-R7tY\n"
            )[0]
            .0,
            3
        );
        assert_eq!(
            scan_one(
                "templates/app.conf.j2",
                "user={{ app_user }}\npassword=Qz8-mP2q-R7tY\n"
            )[0]
            .0,
            2
        );
    }
}
