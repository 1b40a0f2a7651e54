//! The command line: `secrets_gate scan PATH... [--format text|json|sarif] [--baseline FILE]
//! [--output FILE] ...` for pre-commit hooks and CI. Exit codes: 0 clean, 1 findings, 2 usage or
//! I/O error. Every usage error names the option and what it expected.

use crate::report::Baseline;
use crate::scan::{self, Provider, ScanConfig};
use std::path::PathBuf;

/// The `scan` usage text.
pub const USAGE: &str = "usage: secrets_gate scan PATH... [--format text|json|sarif] [--baseline FILE] [--output FILE]
                          [--provider vault|sops|either] [--mode enforce|audit] [--exclude GLOB]...
                          [--sops-config FILE] [--max-data-key-age DURATION] [--key-file FILE]...
                          [--credential-key WORD]... [--max-file-size SIZE] [--show-hint] [--no-gitignore]
                          [--timeout DURATION]
exit codes: 0 clean, 1 findings, 2 usage or I/O error
as an Ansible module: secrets_gate ARGS_FILE (see --help)
";

/// Output format of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// A parsed `scan` command line.
#[derive(Debug)]
pub struct Command {
    pub config: ScanConfig,
    pub format: Format,
    pub output: Option<PathBuf>,
}

/// Parses the arguments after `scan`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut paths = Vec::new();
    let mut format = Format::Text;
    let mut output = None;
    let mut baseline_path: Option<PathBuf> = None;
    let mut config = ScanConfig::new(Vec::new());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .ok_or_else(|| format!("option '{name}' needs a value"))
        };
        match flag {
            "--format" => {
                format = match value("--format")?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    "sarif" => Format::Sarif,
                    other => {
                        return Err(format!(
                            "option '--format': expected one of text, json, sarif, got '{other}'"
                        ))
                    }
                }
            }
            "--output" | "-o" => output = Some(PathBuf::from(value("--output")?)),
            "--baseline" => baseline_path = Some(PathBuf::from(value("--baseline")?)),
            "--provider" => {
                let v = value("--provider")?;
                config.provider = Provider::parse(&v).ok_or_else(|| {
                    format!("option '--provider': expected one of vault, sops, either, got '{v}'")
                })?;
            }
            "--mode" => {
                config.enforce = match value("--mode")?.as_str() {
                    "enforce" => true,
                    "audit" => false,
                    other => {
                        return Err(format!(
                            "option '--mode': expected one of enforce, audit, got '{other}'"
                        ))
                    }
                }
            }
            "--exclude" => config.excludes.push(value("--exclude")?),
            "--sops-config" => {
                // Relative to the working directory, as any path on a command line.
                let path = PathBuf::from(value("--sops-config")?);
                config.sops_config = Some(match std::env::current_dir() {
                    Ok(cwd) if path.is_relative() => cwd.join(path),
                    _ => path,
                });
            }
            "--timeout" => {
                let v = value("--timeout")?;
                let d: ansible_module::types::Duration =
                    v.parse().map_err(|e| format!("option '--timeout': {e}"))?;
                if d.get().is_zero() {
                    return Err("option '--timeout': expected a duration above zero".into());
                }
                config.timeout = d.get();
            }
            "--max-data-key-age" => {
                let v = value("--max-data-key-age")?;
                let d: ansible_module::types::Duration = v
                    .parse()
                    .map_err(|e| format!("option '--max-data-key-age': {e}"))?;
                config.max_data_key_age_secs = Some(d.get().as_secs());
            }
            "--key-file" => config.key_files.push(PathBuf::from(value("--key-file")?)),
            "--credential-key" => config
                .rules
                .extra_credential_words
                .push(value("--credential-key")?.to_ascii_lowercase()),
            "--max-file-size" => {
                let v = value("--max-file-size")?;
                let size: ansible_module::types::ByteSize = v
                    .parse()
                    .map_err(|e| format!("option '--max-file-size': {e}"))?;
                config.max_file_size = size.0;
            }
            "--show-hint" => config.show_hint = true,
            "--no-gitignore" => config.honour_gitignore = false,
            "--" => paths.extend(iter.by_ref().map(PathBuf::from)),
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("unknown option '{other}'"))
            }
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    if paths.is_empty() {
        return Err("missing PATH: give at least one file or directory to scan".into());
    }
    if let Some(path) = baseline_path {
        let text = crate::mounts::read_parameter_file(
            &path,
            scan::MAX_PARAMETER_FILE_BYTES,
            config.timeout,
        )
        .map_err(|e| format!("option '--baseline': cannot read '{}': {e}", path.display()))?;
        config.baseline = Some(
            Baseline::parse(&text)
                .map_err(|e| format!("option '--baseline': '{}': {e}", path.display()))?,
        );
    }
    config.paths = paths;
    Ok(Command {
        config,
        format,
        output,
    })
}

/// Runs `secrets_gate scan ...` and returns the exit code.
pub fn run(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return 0;
    }
    let command = match parse(args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("secrets_gate: {message}\n{USAGE}");
            return 2;
        }
    };
    let report = match scan::scan(&command.config) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("secrets_gate: {err}");
            return 2;
        }
    };
    let rendered = match command.format {
        Format::Text => report.to_text(),
        Format::Json => report.to_json() + "\n",
        Format::Sarif => report.to_sarif() + "\n",
    };
    match &command.output {
        Some(path) => {
            if let Err(err) = ansible_module::atomic::write(path, rendered.as_bytes(), 0o644) {
                eprintln!("secrets_gate: option '--output': {err}");
                return 2;
            }
            println!(
                "{} (report written to {})",
                report.summary(),
                path.display()
            );
        }
        None => print!("{rendered}"),
    }
    i32::from(command.config.enforce && !report.findings.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn a_bad_format_names_the_option_and_the_choices() {
        let err = parse(&args(&["x", "--format", "xml"]))
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("--format") && err.contains("text, json, sarif"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_value_and_an_unknown_option_are_named() {
        assert!(parse(&args(&["x", "--baseline"]))
            .err()
            .unwrap_or_default()
            .contains("'--baseline' needs a value"));
        assert!(parse(&args(&["x", "--frobnicate"]))
            .err()
            .unwrap_or_default()
            .contains("'--frobnicate'"));
        assert!(parse(&args(&[]))
            .err()
            .unwrap_or_default()
            .contains("missing PATH"));
    }

    #[test]
    fn a_timeout_must_be_a_duration_above_zero() {
        let cmd = parse(&args(&["x", "--timeout", "250ms"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cmd.config.timeout, std::time::Duration::from_millis(250));
        for bad in ["0s", "soon"] {
            let err = parse(&args(&["x", "--timeout", bad]))
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("option '--timeout': "), "{err}");
        }
    }

    #[test]
    fn a_relative_sops_config_is_taken_from_the_working_directory() {
        let cmd = parse(&args(&["x", "--sops-config", "ops/.sops.yaml"]))
            .unwrap_or_else(|e| panic!("{e}"));
        let cwd = std::env::current_dir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cmd.config.sops_config, Some(cwd.join("ops/.sops.yaml")));
    }

    #[test]
    fn options_take_inline_values_too() {
        let cmd = parse(&args(&[
            "x",
            "--format=sarif",
            "--provider=sops",
            "--max-data-key-age=90d",
        ]));
        let cmd = cmd.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cmd.format, Format::Sarif);
        assert_eq!(cmd.config.provider, Provider::Sops);
        assert_eq!(cmd.config.max_data_key_age_secs, Some(90 * 86400));
    }
}
