//! Installed packages, read from dpkg's status database directly (`/var/lib/dpkg/status`):
//! no `dpkg-query` process, no Python, and the same answer apt would give.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where dpkg keeps the state of every package it knows.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// One package as dpkg records it. `status` is the third word of dpkg's `Status:` field
/// (`installed`, `config-files`, `half-configured`...); packages dpkg only remembers as
/// `not-installed` are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageObservation {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub status: String,
}

/// Every package in the status file, keyed by name, or by `name:arch` for the second and later
/// architectures of a multi-arch package.
pub fn read_status(path: &Path) -> std::io::Result<BTreeMap<String, PackageObservation>> {
    let text = std::fs::read(path)?;
    Ok(parse_status(&String::from_utf8_lossy(&text)))
}

pub fn parse_status(text: &str) -> BTreeMap<String, PackageObservation> {
    let mut packages = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = String::new();
        let mut architecture = String::new();
        let mut status = String::new();
        for line in stanza.lines() {
            // Continuation lines (descriptions, conffiles) start with a space.
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match field {
                "Package" => name = Some(value.to_string()),
                "Version" => version = value.to_string(),
                "Architecture" => architecture = value.to_string(),
                "Status" => status = value.split_whitespace().nth(2).unwrap_or("").to_string(),
                _ => {}
            }
        }
        let Some(name) = name else { continue };
        if status.is_empty() || status == "not-installed" {
            continue;
        }
        let key = if packages.contains_key(&name) {
            format!("{name}:{architecture}")
        } else {
            name.clone()
        };
        packages.insert(
            key,
            PackageObservation {
                name,
                version,
                architecture,
                status,
            },
        );
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: bash
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b7
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: nano
Status: deinstall ok config-files
Architecture: amd64
Version: 7.2-1
Conffiles:
 /etc/nanorc 123

Package: gone
Status: purge ok not-installed
Architecture: amd64

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9
";

    #[test]
    fn installed_and_config_files_packages_are_read_with_versions() {
        let packages = parse_status(STATUS);
        assert_eq!(packages["bash"].version, "5.2.15-2+b7");
        assert_eq!(packages["bash"].status, "installed");
        assert_eq!(packages["nano"].status, "config-files");
        assert!(!packages.contains_key("gone"));
    }

    #[test]
    fn a_second_architecture_gets_its_own_key() {
        let packages = parse_status(STATUS);
        assert_eq!(packages["libc6"].architecture, "amd64");
        assert_eq!(packages["libc6:i386"].architecture, "i386");
    }
}
