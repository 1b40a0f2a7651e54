//! secrets_gate finds plaintext secrets in Ansible repositories and measures the move from
//! Ansible Vault to SOPS, to the rules of the project's secrets policy.
//!
//! It walks the given paths in parallel (honouring `.gitignore` and excludes), reads YAML,
//! JSON, INI inventories, `ansible.cfg` and dotenv files into key paths and values, and judges
//! each value with [`rules::classify`]. Files that do not parse are line-scanned and reported
//! as such. Ansible Vault and SOPS-encrypted content is recognised and counted, never judged,
//! except SOPS values that the file's own rules say must be encrypted.
//!
//! A finding never holds the secret: only its location, the rule, and a fingerprint made from
//! the file path, key path and rule.
//!
//! ```no_run
//! let config = secrets_gate::scan::ScanConfig::new(vec!["inventories".into()]);
//! let report = secrets_gate::scan::scan(&config).unwrap_or_else(|e| panic!("{e}"));
//! println!("{} findings", report.findings.len());
//! ```

pub mod cli;
pub mod formats;
pub mod module;
pub mod mounts;
pub mod report;
pub mod rules;
pub mod scan;
pub mod sops;
pub mod text;
