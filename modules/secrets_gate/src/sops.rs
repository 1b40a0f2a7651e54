//! SOPS: recognising an encrypted file from its metadata, deciding which of its values its own
//! rules (`encrypted_regex`, `unencrypted_regex`, `encrypted_suffix`, `unencrypted_suffix`) say
//! must be encrypted, and reading `.sops.yaml` creation rules. The reading agrees with
//! `sops filestatus`: a file is SOPS-encrypted when it carries `sops` metadata with a version
//! and a MAC.

use crate::formats::{Leaf, Segment};
use regex::Regex;

/// The `sops` metadata of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SopsMetadata {
    pub version: Option<String>,
    pub mac: Option<String>,
    pub lastmodified: Option<String>,
    pub encrypted_regex: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_suffix: Option<String>,
    /// age recipients and PGP fingerprints the data key is encrypted to.
    pub recipients: Vec<String>,
    /// Line of the `sops` key (for metadata findings).
    pub line: usize,
}

impl SopsMetadata {
    /// What `sops filestatus` calls encrypted: metadata with a version and a MAC.
    pub fn is_encrypted(&self) -> bool {
        self.version.as_deref().is_some_and(|v| !v.is_empty())
            && self.mac.as_deref().is_some_and(|m| !m.is_empty())
    }

    /// Whether the value at `path` must be encrypted under this file's rules, as sops decides
    /// it: a rule on any key along the path applies to everything below that key.
    pub fn must_encrypt(&self, path: &[Segment]) -> bool {
        let keys = path.iter().filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        });
        let keys: Vec<&str> = keys.collect();
        if let Some(suffix) = self.unencrypted_suffix.as_deref().filter(|s| !s.is_empty()) {
            return !keys.iter().any(|k| k.ends_with(suffix));
        }
        if let Some(suffix) = self.encrypted_suffix.as_deref().filter(|s| !s.is_empty()) {
            return keys.iter().any(|k| k.ends_with(suffix));
        }
        if let Some(re) = self
            .unencrypted_regex
            .as_deref()
            .and_then(|r| Regex::new(r).ok())
        {
            return !keys.iter().any(|k| re.is_match(k));
        }
        if let Some(re) = self
            .encrypted_regex
            .as_deref()
            .and_then(|r| Regex::new(r).ok())
        {
            return keys.iter().any(|k| re.is_match(k));
        }
        // sops's default: everything but keys ending in `_unencrypted`.
        !keys.iter().any(|k| k.ends_with("_unencrypted"))
    }
}

/// Whether a value is SOPS ciphertext.
pub fn is_sops_ciphertext(value: &str) -> bool {
    value.trim_start().starts_with("ENC[AES256_GCM,data:")
}

/// Reads `sops` metadata from the leaves of a YAML/JSON document (the top-level `sops` key of
/// the first document), or from dotenv/INI leaves (`sops_version=`, `[sops]` section).
pub fn metadata(leaves: &[Leaf]) -> Option<SopsMetadata> {
    let mut meta = SopsMetadata::default();
    let mut found = false;
    for leaf in leaves.iter().filter(|l| l.document == 0) {
        let (field, nested): (String, &[Segment]) = match leaf.path.as_slice() {
            [Segment::Key(top), rest @ ..] if top == "sops" && !rest.is_empty() => match &rest[0] {
                Segment::Key(k) => (k.clone(), &rest[1..]),
                Segment::Index(_) => continue,
            },
            [Segment::Key(flat)] if flat.starts_with("sops_") => {
                (flat["sops_".len()..].to_string(), &[])
            }
            _ => continue,
        };
        if !found {
            meta.line = leaf.line;
        }
        found = true;
        let value = Some(leaf.value.clone());
        match field.as_str() {
            "version" => meta.version = value,
            "mac" => meta.mac = value,
            "lastmodified" => meta.lastmodified = value,
            "encrypted_regex" => meta.encrypted_regex = value,
            "unencrypted_regex" => meta.unencrypted_regex = value,
            "encrypted_suffix" => meta.encrypted_suffix = value,
            "unencrypted_suffix" => meta.unencrypted_suffix = value,
            "age" | "pgp" | "key_groups" => {
                let last = nested.iter().rev().find_map(|s| match s {
                    Segment::Key(k) => Some(k.as_str()),
                    Segment::Index(_) => None,
                });
                if matches!(last, Some("recipient" | "fp")) {
                    meta.recipients.push(leaf.value.clone());
                }
            }
            other if other.starts_with("age__list_") && other.ends_with("__map_recipient") => {
                meta.recipients.push(leaf.value.clone());
            }
            other if other.starts_with("pgp__list_") && other.ends_with("__map_fp") => {
                meta.recipients.push(leaf.value.clone());
            }
            _ => {}
        }
    }
    found.then_some(meta)
}

/// Whether a leaf is part of the `sops` metadata itself.
pub fn is_metadata_leaf(leaf: &Leaf) -> bool {
    match leaf.path.first() {
        Some(Segment::Key(k)) => {
            leaf.document == 0
                && (k == "sops" && leaf.path.len() > 1
                    || k.starts_with("sops_") && leaf.path.len() == 1)
        }
        _ => false,
    }
}

/// One `creation_rules` entry of `.sops.yaml`.
#[derive(Debug, Clone)]
pub struct CreationRule {
    pub path_regex: Option<Regex>,
    pub raw: String,
}

/// `.sops.yaml`: its creation rules, in order.
#[derive(Debug, Clone)]
pub struct SopsConfig {
    pub path: std::path::PathBuf,
    pub rules: Vec<CreationRule>,
}

impl SopsConfig {
    /// Parses `.sops.yaml` text. A rule with an invalid regex is an error naming it.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<Self, String> {
        let normalized = crate::text::normalize_line_breaks(text);
        let leaves = crate::formats::parse_yaml(&normalized)
            .map_err(|e| format!("line {}: {}", e.line, e.message))?;
        let mut rules: Vec<CreationRule> = Vec::new();
        let mut last_index = None;
        for leaf in &leaves {
            if let [Segment::Key(top), Segment::Index(i), Segment::Key(field), ..] =
                leaf.path.as_slice()
            {
                if top != "creation_rules" {
                    continue;
                }
                if last_index != Some(*i) {
                    rules.push(CreationRule {
                        path_regex: None,
                        raw: String::new(),
                    });
                    last_index = Some(*i);
                }
                if field == "path_regex" {
                    let re = Regex::new(&leaf.value).map_err(|e| {
                        format!("creation_rules[{i}].path_regex '{}': {e}", leaf.value)
                    })?;
                    if let Some(rule) = rules.last_mut() {
                        rule.path_regex = Some(re);
                        rule.raw = leaf.value.clone();
                    }
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            rules,
        })
    }

    /// Whether some creation rule applies to `relative` (the path relative to the directory of
    /// `.sops.yaml`). A rule without `path_regex` matches everything, as in sops.
    pub fn covers(&self, relative: &str, absolute: &str) -> bool {
        self.rules.iter().any(|rule| match &rule.path_regex {
            None => true,
            Some(re) => re.is_match(relative) || re.is_match(absolute),
        })
    }
}

/// Parses an RFC 3339 UTC-or-offset timestamp (`2026-12-07T09:00:00Z`,
/// `2026-12-07T09:00:00.123+01:00`) into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, rest) = t.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let time_end = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(time_end);
    let mut c = clock.split(':');
    let hour: i64 = c.next()?.parse().ok()?;
    let minute: i64 = c.next()?.parse().ok()?;
    let second: f64 = c.next().unwrap_or("0").parse().ok()?;
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return None;
    }
    let days = ansible_module::time::days_from_civil(year, month, day);
    Some(days * 86400 + hour * 3600 + minute * 60 + second as i64 - offset)
}

/// An age of `seconds` as a person reads it: hours below two days, then days and hours.
pub fn describe_age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let hours = seconds / 3600;
    if hours < 48 {
        return if hours == 1 {
            "1 hour".into()
        } else {
            format!("{hours} hours")
        };
    }
    let days = hours / 24;
    let rest = hours % 24;
    match rest {
        0 => format!("{days} days"),
        1 => format!("{days} days 1 hour"),
        r => format!("{days} days {r} hours"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(keys: &[&str]) -> Vec<Segment> {
        keys.iter()
            .map(|k| Segment::Key((*k).to_string()))
            .collect()
    }

    #[test]
    fn encrypted_regex_applies_to_everything_below_a_matching_key() {
        let meta = SopsMetadata {
            encrypted_regex: Some("^(data|password)$".into()),
            ..Default::default()
        };
        assert!(meta.must_encrypt(&path(&["data", "db", "user"])));
        assert!(meta.must_encrypt(&path(&["app", "password"])));
        assert!(!meta.must_encrypt(&path(&["app", "user"])));
    }

    #[test]
    fn unencrypted_suffix_and_regex_leave_their_keys_in_clear() {
        let suffix = SopsMetadata {
            unencrypted_suffix: Some("_plain".into()),
            ..Default::default()
        };
        assert!(!suffix.must_encrypt(&path(&["name_plain"])));
        assert!(suffix.must_encrypt(&path(&["password"])));
        let regex = SopsMetadata {
            unencrypted_regex: Some("^(name|port)$".into()),
            ..Default::default()
        };
        assert!(!regex.must_encrypt(&path(&["db", "port"])));
        assert!(regex.must_encrypt(&path(&["db", "password"])));
        let default = SopsMetadata::default();
        assert!(!default.must_encrypt(&path(&["x_unencrypted"])));
        assert!(default.must_encrypt(&path(&["x"])));
    }

    #[test]
    fn rfc3339_timestamps_with_offsets_and_fractions_parse() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86400));
        assert_eq!(parse_rfc3339("1970-01-02T01:00:00.5+01:00"), Some(86400));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("99999999999999999-01-01T00:00:00Z"), None);
    }

    #[test]
    fn ages_under_two_days_are_said_in_hours_never_as_zero_days() {
        assert_eq!(describe_age(23 * 3600 + 59 * 60), "23 hours");
        assert_eq!(describe_age(47 * 3600), "47 hours");
        assert_eq!(describe_age(91 * 86400 + 3 * 3600), "91 days 3 hours");
        assert_eq!(describe_age(90 * 86400), "90 days");
    }
}
