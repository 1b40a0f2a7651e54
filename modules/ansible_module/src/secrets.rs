//! The secrets of a run, masked in every string that leaves the process: stdout (the result,
//! `msg`, `invocation`), and artifacts written through [`crate::atomic`].
//!
//! Secrets are the values of `no_log` parameters (registered by the contract before the module
//! runs) and whatever a module registers with [`register`] (a password found in a URL, a token
//! read from a file). Passwords in URL userinfo (`scheme://user:password@host`) are masked
//! wherever they appear, registered or not.
//!
//! Masking follows Ansible's rule: a string equal to a secret is replaced whole, whatever its
//! length; inside longer strings only secrets of at least [`MIN_EMBEDDED_LEN`] characters are
//! replaced, so that a secret `1` does not turn every `1` of the output into `********`.

use serde_json::Value;
use std::sync::{Mutex, OnceLock};

/// What a masked value or occurrence is replaced with.
pub const MASK: &str = "********";

/// Shorter secrets are masked only as whole values, never inside other strings.
pub const MIN_EMBEDDED_LEN: usize = 4;

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(Mutex::default)
}

fn snapshot() -> Vec<String> {
    match registry().lock() {
        Ok(secrets) => secrets.clone(),
        // A panic while holding the lock leaves the list intact; keep masking with it.
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Adds a secret for the rest of the process. Empty strings are ignored.
pub fn register(secret: impl Into<String>) {
    let secret = secret.into();
    if secret.is_empty() {
        return;
    }
    let mut secrets = match registry().lock() {
        Ok(secrets) => secrets,
        Err(poisoned) => poisoned.into_inner(),
    };
    if !secrets.contains(&secret) {
        secrets.push(secret);
        // Longest first: a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers every string (and number) under `no_log` keys of `params`, at any depth.
pub fn register_no_log_values(params: &Value, no_log: &[&str]) {
    let mut found = Vec::new();
    crate::response::collect_no_log_values(params, no_log, &mut found);
    for secret in found {
        register(secret);
    }
}

/// `text` with every secret masked.
pub fn mask(text: &str) -> String {
    mask_with(text, &snapshot())
}

fn mask_with(text: &str, secrets: &[String]) -> String {
    if secrets.iter().any(|s| s == text) {
        return MASK.to_string();
    }
    let mut out = mask_url_passwords(text);
    for secret in secrets {
        if secret.chars().count() >= MIN_EMBEDDED_LEN && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// Masks every string in `value` (keys included), in place.
pub fn mask_value(value: &mut Value) {
    let secrets = snapshot();
    mask_value_with(value, &secrets);
}

fn mask_value_with(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(s) => {
            let masked = mask_with(s, secrets);
            if masked != *s {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_value_with(v, secrets)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                mask_value_with(&mut item, secrets);
                map.insert(mask_with(&key, secrets), item);
            }
        }
        _ => {}
    }
}

/// Bytes with every secret masked; bytes that are not UTF-8 are masked where they are.
pub fn mask_bytes(bytes: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) => mask(text).into_bytes(),
        Err(_) => {
            let lossless = String::from_utf8_lossy(bytes);
            let masked = mask(&lossless);
            if masked == lossless {
                bytes.to_vec()
            } else {
                masked.into_bytes()
            }
        }
    }
}

/// `scheme://user:password@host` becomes `scheme://user:********@host`, anywhere in `text`.
pub fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let authority_start = start + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) if colon + 1 < userinfo.len() => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(MASK);
                        out.push_str(&authority[at..]);
                    }
                    _ => out.push_str(authority),
                }
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_and_the_rest_is_kept() {
        assert_eq!(
            mask_url_passwords("GET http://user:S3cretPW@db:80/x?y=1 failed"),
            "GET http://user:********@db:80/x?y=1 failed"
        );
        assert_eq!(
            mask_url_passwords("https://token@host/ and ftp://a:b@c"),
            "https://token@host/ and ftp://a:********@c"
        );
        assert_eq!(mask_url_passwords("no url here: a@b"), "no url here: a@b");
    }

    #[test]
    fn short_secrets_are_masked_only_as_whole_values() {
        let secrets = vec!["hunter22".to_string(), "1".to_string()];
        assert_eq!(mask_with("1", &secrets), MASK);
        assert_eq!(mask_with("took 1 ms", &secrets), "took 1 ms");
        assert_eq!(
            mask_with("password hunter22 sent", &secrets),
            "password ******** sent"
        );
    }

    #[test]
    fn keys_and_nested_strings_are_masked() {
        let secrets = vec!["topsecret".to_string()];
        let mut value = serde_json::json!({"topsecret": ["a topsecret b", 1], "x": "y"});
        mask_value_with(&mut value, &secrets);
        assert_eq!(
            value,
            serde_json::json!({"********": ["a ******** b", 1], "x": "y"})
        );
    }
}
