//! The Ansible side: typed parameters, validated with errors that name the parameter (through
//! the `ansible_module` contract), a scan, and one result object. Normally run on the
//! controller with `delegate_to: localhost` and `run_once`.

use crate::report::Baseline;
use crate::scan::{self, Provider, RecipientRule, ScanConfig};
use ansible_module::types::{ByteSize, Duration, List};
use ansible_module::{Context, Error, Response};
use serde::Deserialize;
use std::path::PathBuf;

fn default_true() -> bool {
    true
}

/// Expected recipients for the SOPS files under one path rule.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientArgs {
    pub path_regex: String,
    #[serde(default)]
    pub age: Option<List<String>>,
    #[serde(default)]
    pub pgp: Option<List<String>>,
}

/// The module's parameters (documented in `secrets_gate.yml`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub paths: List<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub baseline: Option<String>,
    #[serde(default)]
    pub exclude: Option<List<String>>,
    #[serde(default)]
    pub credential_keys: Option<List<String>>,
    #[serde(default)]
    pub sops_config: Option<String>,
    #[serde(default)]
    pub max_data_key_age: Option<Duration>,
    #[serde(default)]
    pub recipients: Option<Vec<RecipientArgs>>,
    #[serde(default)]
    pub key_files: Option<List<String>>,
    #[serde(default, deserialize_with = "ansible_module::types::boolean")]
    pub show_hint: bool,
    #[serde(default)]
    pub max_file_size: Option<ByteSize>,
    #[serde(
        default = "default_true",
        deserialize_with = "ansible_module::types::boolean"
    )]
    pub honour_gitignore: bool,
    #[serde(default)]
    #[schemars(extend("default" = "10s"))]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub output_format: Option<String>,
}

fn invalid(name: &str, message: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: name.into(),
        message: message.into(),
    }
}

/// Turns the parameters into a scan configuration, or the contract's parameter error naming
/// the parameter.
pub fn config_from_args(args: Args) -> Result<(ScanConfig, Option<(PathBuf, String)>), Error> {
    if args.paths.is_empty() {
        return Err(invalid("paths", "expected at least one path"));
    }
    let mut config = ScanConfig::new(args.paths.iter().map(PathBuf::from).collect());
    if let Some(p) = args.provider.as_deref() {
        config.provider = Provider::parse(p).ok_or_else(|| {
            invalid(
                "provider",
                format!("expected one of vault, sops, either, got '{p}'"),
            )
        })?;
    }
    config.enforce = match args.mode.as_deref() {
        None | Some("enforce") => true,
        Some("audit") => false,
        Some(other) => {
            return Err(invalid(
                "mode",
                format!("expected one of enforce, audit, got '{other}'"),
            ))
        }
    };
    if let Some(timeout) = args.timeout {
        if timeout.get().is_zero() {
            return Err(invalid("timeout", "expected a duration above zero"));
        }
        config.timeout = timeout.get();
    }
    if let Some(path) = &args.baseline {
        let text = crate::mounts::read_parameter_file(
            std::path::Path::new(path),
            scan::MAX_PARAMETER_FILE_BYTES,
            config.timeout,
        )
        .map_err(|e| invalid("baseline", format!("cannot read '{path}': {e}")))?;
        config.baseline = Some(
            Baseline::parse(&text).map_err(|e| invalid("baseline", format!("'{path}': {e}")))?,
        );
    }
    config.excludes = args.exclude.map(|l| l.0).unwrap_or_default();
    config.rules.extra_credential_words = args
        .credential_keys
        .map(|l| l.0.iter().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    config.sops_config = args.sops_config.map(PathBuf::from);
    config.max_data_key_age_secs = args.max_data_key_age.map(|d| d.get().as_secs());
    for (i, rule) in args.recipients.unwrap_or_default().into_iter().enumerate() {
        let path_regex = regex::Regex::new(&rule.path_regex).map_err(|e| {
            invalid(
                &format!("recipients[{i}].path_regex"),
                format!("not a valid regex: {e}"),
            )
        })?;
        let mut recipients: std::collections::BTreeSet<String> = rule
            .age
            .map(|l| l.0)
            .unwrap_or_default()
            .into_iter()
            .collect();
        recipients.extend(rule.pgp.map(|l| l.0).unwrap_or_default());
        if recipients.is_empty() {
            return Err(invalid(
                &format!("recipients[{i}]"),
                "expected at least one 'age' or 'pgp' recipient",
            ));
        }
        config.recipients.push(RecipientRule {
            path_regex,
            recipients,
        });
    }
    config.key_files = args
        .key_files
        .map(|l| l.0.iter().map(PathBuf::from).collect())
        .unwrap_or_default();
    config.show_hint = args.show_hint;
    if let Some(size) = args.max_file_size {
        config.max_file_size = size.0;
    }
    config.honour_gitignore = args.honour_gitignore;
    let output = match (args.output, args.output_format.as_deref()) {
        (Some(path), None | Some("json")) => Some((PathBuf::from(path), "json".to_string())),
        (Some(path), Some("sarif")) => Some((PathBuf::from(path), "sarif".to_string())),
        (Some(_), Some(other)) => {
            return Err(invalid(
                "output_format",
                format!("expected one of json, sarif, got '{other}'"),
            ))
        }
        (None, Some(_)) => return Err(invalid("output_format", "needs 'output' to be set")),
        (None, None) => None,
    };
    Ok((config, output))
}

/// The module's top-level parameters, for the `unsupported parameter` message and `--help`.
pub const PARAMETERS: &[&str] = &[
    "paths",
    "provider",
    "mode",
    "baseline",
    "exclude",
    "credential_keys",
    "sops_config",
    "max_data_key_age",
    "recipients",
    "key_files",
    "show_hint",
    "max_file_size",
    "honour_gitignore",
    "timeout",
    "output",
    "output_format",
];

/// The module on the contract: `secrets_gate ARGS_FILE`, `--parameters`, `--version`; one JSON
/// object on stdout, a panic or a signal (SIGTERM from a task `timeout:`) included.
pub struct SecretsGate;

impl ansible_module::Module for SecretsGate {
    type Args = Args;
    const NAME: &'static str = "secrets_gate";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = SUMMARY;
    const SUPPORTS_CHECK_MODE: bool = true;

    /// Types, defaults and choices from [`Args`]' schema, so that `--parameters` can be
    /// checked against the sidecar doc (tests/test_parameter_docs.py).
    fn argument_spec() -> serde_json::Map<String, serde_json::Value> {
        ansible_module::spec::argument_spec::<Args>()
    }

    fn run(args: Args, ctx: &Context) -> Result<Response, Error> {
        Ok(run(args, ctx))
    }
}

/// The module's whole life. `--help` is the module's own (it also explains the `scan`
/// command line); everything else is the contract's [`ansible_module::main`].
pub fn main(argv: &[String]) -> ! {
    if matches!(argv.first().map(String::as_str), Some("--help" | "-h")) {
        print!(
            "secrets_gate {} - {}\n\nAs an Ansible module: secrets_gate ARGS_FILE (a JSON object of parameters).\n\
             Parameters: {}\nFull reference: ansible-doc -M roles/ops/health_check/library secrets_gate\n\n{}",
            env!("CARGO_PKG_VERSION"),
            SUMMARY,
            PARAMETERS.join(", "),
            crate::cli::USAGE
        );
        std::process::exit(0)
    }
    ansible_module::main::<SecretsGate>()
}

/// One line saying what the module does.
pub const SUMMARY: &str = "Finds plaintext secrets and measures the Vault-to-SOPS migration.";

/// Validates the parameters, scans, and builds the result.
pub fn run(args: Args, ctx: &Context) -> Response {
    let (config, output) = match config_from_args(args) {
        Ok(parts) => parts,
        Err(err) => return Response::failed(err.to_string()),
    };
    let report = match scan::scan(&config) {
        Ok(report) => report,
        Err(err @ scan::ScanError::Path { .. }) => {
            return Response::failed(invalid("paths", err.to_string()).to_string())
        }
        Err(err @ scan::ScanError::Exclude { .. }) => {
            return Response::failed(invalid("exclude", err.to_string()).to_string())
        }
        Err(err @ scan::ScanError::SopsConfig { .. }) => {
            return Response::failed(invalid("sops_config", err.to_string()).to_string())
        }
    };
    let mut response = Response::ok(report.summary());
    if let Some((path, format)) = output {
        let body = if format == "sarif" {
            report.to_sarif()
        } else {
            report.to_json()
        };
        if ctx.check_mode {
            response.insert("output_written", false);
        } else {
            if let Err(err) = ansible_module::atomic::write(&path, body.as_bytes(), 0o644) {
                return Response::failed(invalid("output", err.to_string()).to_string());
            }
            response.insert("output_written", true);
            response.set_changed(true);
        }
    }
    for warning in &report.warnings {
        response.warn(warning.clone());
    }
    response
        .set_failed(config.enforce && !report.findings.is_empty())
        .insert("mode", &report.mode)
        .insert("provider", &report.provider)
        .insert("files_scanned", report.files_scanned)
        .insert("bytes_scanned", report.bytes_scanned)
        .insert("findings", &report.findings)
        .insert("counts", &report.counts)
        .insert("baselined", report.baselined)
        .insert("allowed", report.allowed)
        .insert("skipped", &report.skipped)
        .insert("fallback", &report.fallback)
        .insert("migration", &report.migration);
    response
}
