//! The plaintext rules of the secrets policy: given a value and the key it sits under, is it a
//! credential written in plaintext? Pure functions, no I/O, so every rule is unit-tested.
//!
//! The order matters: references and encrypted material are never secrets; placeholders and
//! hashes are not plaintext credentials; then known token formats, private keys and URL
//! userinfo are secrets wherever they are; then the key decides (credential-like keys); then
//! long random strings under neutral keys.

use crate::text::{shannon_entropy, unquote};
use base64::Engine as _;
use regex::Regex;
use std::sync::LazyLock;

/// What kind of plaintext secret a rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    CredentialValue,
    KnownToken,
    PrivateKey,
    UrlCredentials,
    Base64Secret,
    JinjaLiteral,
    HighEntropy,
    SopsUnencryptedValue,
    SopsCoverage,
    ProviderMismatch,
    DataKeyAge,
    UnexpectedRecipient,
    MissingRecipient,
    KeyFilePermissions,
    KeyFileInRepo,
    UnreadableFile,
}

impl Rule {
    /// Every rule, for SARIF's rule table and the per-rule counts.
    pub const ALL: [Rule; 16] = [
        Rule::CredentialValue,
        Rule::KnownToken,
        Rule::PrivateKey,
        Rule::UrlCredentials,
        Rule::Base64Secret,
        Rule::JinjaLiteral,
        Rule::HighEntropy,
        Rule::SopsUnencryptedValue,
        Rule::SopsCoverage,
        Rule::ProviderMismatch,
        Rule::DataKeyAge,
        Rule::UnexpectedRecipient,
        Rule::MissingRecipient,
        Rule::KeyFilePermissions,
        Rule::KeyFileInRepo,
        Rule::UnreadableFile,
    ];

    /// The rule's stable id, as it appears in reports and baselines.
    pub fn id(self) -> &'static str {
        match self {
            Rule::CredentialValue => "credential-value",
            Rule::KnownToken => "known-token",
            Rule::PrivateKey => "private-key",
            Rule::UrlCredentials => "url-credentials",
            Rule::Base64Secret => "base64-secret",
            Rule::JinjaLiteral => "jinja-literal",
            Rule::HighEntropy => "high-entropy",
            Rule::SopsUnencryptedValue => "sops-unencrypted-value",
            Rule::SopsCoverage => "sops-coverage",
            Rule::ProviderMismatch => "provider-mismatch",
            Rule::DataKeyAge => "data-key-age",
            Rule::UnexpectedRecipient => "unexpected-recipient",
            Rule::MissingRecipient => "missing-recipient",
            Rule::KeyFilePermissions => "key-file-permissions",
            Rule::KeyFileInRepo => "key-file-in-repo",
            Rule::UnreadableFile => "unreadable-file",
        }
    }

    /// One sentence for SARIF's rule description and `--help`.
    pub fn description(self) -> &'static str {
        match self {
            Rule::CredentialValue => "A plaintext value under a credential-like key.",
            Rule::KnownToken => {
                "A token in a known provider format (AWS, GitHub, GitLab, Slack, Stripe, ...)."
            }
            Rule::PrivateKey => "A private key in plaintext.",
            Rule::UrlCredentials => "A URL whose userinfo holds a password or token.",
            Rule::Base64Secret => {
                "Base64 that decodes to a secret (Kubernetes Secret data, docker config)."
            }
            Rule::JinjaLiteral => "A secret literal inside a Jinja expression.",
            Rule::HighEntropy => "A long random string under a neutral key.",
            Rule::SopsUnencryptedValue => {
                "A plaintext value that the SOPS file's own rules say must be encrypted."
            }
            Rule::SopsCoverage => "A secrets file that no .sops.yaml creation rule covers.",
            Rule::ProviderMismatch => "Encrypted with a provider other than the active one.",
            Rule::DataKeyAge => "A SOPS data key older than max_data_key_age.",
            Rule::UnexpectedRecipient => {
                "A SOPS file encrypted to a recipient that is not expected."
            }
            Rule::MissingRecipient => "A SOPS file not encrypted to an expected recipient.",
            Rule::KeyFilePermissions => "A key file readable by group or others.",
            Rule::KeyFileInRepo => "A key file inside the scanned repository.",
            Rule::UnreadableFile => "A file that could not be read (fails closed in enforce mode).",
        }
    }

    /// Whether the rule reports plaintext secret material (counted as plaintext in the
    /// migration report).
    pub fn is_plaintext(self) -> bool {
        matches!(
            self,
            Rule::CredentialValue
                | Rule::KnownToken
                | Rule::PrivateKey
                | Rule::UrlCredentials
                | Rule::Base64Secret
                | Rule::JinjaLiteral
                | Rule::HighEntropy
                | Rule::SopsUnencryptedValue
        )
    }

    /// `high` for plaintext material, `medium` for key management and coverage.
    pub fn severity(self) -> &'static str {
        if self.is_plaintext() || self == Rule::UnreadableFile {
            "high"
        } else {
            "medium"
        }
    }
}

/// One rule hit inside a value. `line_offset` is the line within a multi-line value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: Rule,
    pub what: String,
    pub line_offset: usize,
    /// The matched secret itself, kept only long enough to build a masked hint.
    pub secret: String,
}

impl Hit {
    fn new(rule: Rule, what: impl Into<String>, secret: &str) -> Self {
        Self {
            rule,
            what: what.into(),
            line_offset: 0,
            secret: secret.to_string(),
        }
    }
}

/// Extra configuration of the rules.
#[derive(Debug, Clone, Default)]
pub struct RuleConfig {
    /// More key names (lowercase words) that mark a credential.
    pub extra_credential_words: Vec<String>,
}

static TOKEN_SET: LazyLock<regex::RegexSet> = LazyLock::new(|| {
    regex::RegexSet::new(TOKEN_FORMATS.iter().map(|(_, re)| re.as_str()))
        .unwrap_or_else(|_| unreachable!())
});

static TOKEN_FORMATS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    let table: [(&str, &str); 15] = [
        (
            "AWS access key id",
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        ),
        ("GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
        (
            "GitHub fine-grained token",
            r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b",
        ),
        (
            "GitLab token",
            r"\bgl(?:pat|ptt|rt|dt|oas|cbt|imt|ft|agent)-[A-Za-z0-9_\-]{20,}",
        ),
        ("Slack token", r"\bxox[abposer]-[A-Za-z0-9-]{10,}"),
        (
            "Slack webhook",
            r"https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]{16,}",
        ),
        ("Stripe secret key", r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),
        (
            "SendGrid API key",
            r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}",
        ),
        ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
        ("Google API key", r"\bAIza[0-9A-Za-z_\-]{35}"),
        (
            "Azure storage account key",
            r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}",
        ),
        (
            "Azure shared access key",
            r"SharedAccessKey=[A-Za-z0-9+/]{30,}={0,2}",
        ),
        ("age secret key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
        (
            "JSON web token",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}",
        ),
        (
            "private key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        ),
    ];
    table
        .iter()
        .filter_map(|(name, re)| Regex::new(re).ok().map(|r| (*name, r)))
        .collect()
});

/// The shortest text any of [`TOKEN_FORMATS`] matches (a Slack token, `xoxb-` and ten
/// characters): shorter values, most of them, skip the regexes.
const MIN_TOKEN_LEN: usize = 15;

static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://([^\s/:@'\x22{}]*):([^\s/@'\x22]+)@[A-Za-z0-9\[\]._\-]",
    )
    .unwrap_or_else(|_| unreachable!())
});

static JINJA_LITERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:\{\{|\(|,)\s*(?:'([^']*)'|"([^"]*)")\s*\|\s*([a-z_.]+)"#)
        .unwrap_or_else(|_| unreachable!())
});

static JINJA_DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\|\s*(?:default|d)\(\s*(?:'([^']*)'|"([^"]*)")"#)
        .unwrap_or_else(|_| unreachable!())
});

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
        .unwrap_or_else(|_| unreachable!())
});

static PASSWORD_HASH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\$(?:1|2[abxy]?|5|6|7|y|gy|apr1|md5|sha1|argon2(?:id|i|d)?|scrypt|pbkdf2[a-z0-9\-]*)\$\S+|\{(?:SSHA|SHA|SSHA256|SSHA512|CRYPT|MD5|SMD5|PBKDF2[A-Z0-9\-]*|ARGON2)\}\S+|\*[0-9A-F]{40}|(?:pbkdf2_sha256|bcrypt|argon2)\$\S+|md5[0-9a-f]{32}|SCRAM-SHA-256\$\S+)$")
        .unwrap_or_else(|_| unreachable!())
});

/// A key/value pair on one line of text: `key: value`, `key = value`, `"key": "value",`,
/// `export KEY=value`.
static LINE_KV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*(?:export\s+|-\s+)?["']?([A-Za-z_][A-Za-z0-9_.\-]*)["']?\s*(?::|=|:=)\s*(.*?)\s*,?\s*$"#)
        .unwrap_or_else(|_| unreachable!())
});

/// A comment that names a credential in words: `# old admin password: x`, `# api key = x`.
static COMMENT_KV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^([a-z][a-z ]{0,40}?\b(?:password|passwd|passphrase|pw|secret|token|api key))\s*(?::|=|\bis\b)\s*(\S+)\s*$")
        .unwrap_or_else(|_| unreachable!())
});

/// `key=value` pairs on an INI inventory host line.
static HOST_VARS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S+)"#)
        .unwrap_or_else(|_| unreachable!())
});

const AWS_EXAMPLES: [&str; 2] = [
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
];

/// Words that make a key credential-like wherever they appear in it.
const STRONG_WORDS: [&str; 14] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
    "authkey",
    "credential",
    "clientsecret",
    "signingkey",
    "encryptionkey",
];

/// Words that make a key credential-like only as a whole segment.
const SEGMENT_WORDS: [&str; 8] = [
    "pwd",
    "pass",
    "pw",
    "psk",
    "auth",
    "rootpw",
    "masterkey",
    "pin",
];

/// A last key segment that says the value is about a credential, not the credential itself.
const NON_SECRET_SUFFIXES: [&str; 66] = [
    "file",
    "files",
    "path",
    "dir",
    "directory",
    "length",
    "len",
    "min",
    "max",
    "minlen",
    "maxlen",
    "policy",
    "ttl",
    "expiry",
    "expires",
    "expiration",
    "age",
    "lifetime",
    "id",
    "ids",
    "name",
    "names",
    "user",
    "username",
    "usernames",
    "login",
    "header",
    "type",
    "enabled",
    "enable",
    "disabled",
    "required",
    "url",
    "uri",
    "endpoint",
    "env",
    "var",
    "variable",
    "prompt",
    "mode",
    "owner",
    "group",
    "format",
    "algorithm",
    "algo",
    "cmd",
    "command",
    "rotation",
    "days",
    "count",
    "retries",
    "version",
    "regex",
    "pattern",
    "fingerprint",
    "checksum",
    "digest",
    "hash",
    "hashed",
    "recipient",
    "recipients",
    "location",
    "source",
    "method",
    "scheme",
    "description",
];

/// Key words under which a long random-looking value is an identifier or a digest.
const NEUTRAL_NON_SECRET_WORDS: [&str; 36] = [
    "sha",
    "sha1",
    "sha256",
    "sha512",
    "md5",
    "checksum",
    "digest",
    "hash",
    "commit",
    "rev",
    "revision",
    "version",
    "uuid",
    "guid",
    "id",
    "fingerprint",
    "integrity",
    "etag",
    "public",
    "pub",
    "pubkey",
    "publickey",
    "recipient",
    "recipients",
    "cert",
    "certificate",
    "ca",
    "crt",
    "serial",
    "thumbprint",
    "arn",
    "image",
    "peer",
    "peers",
    "keyid",
    "gpg",
];

/// Splits a key into lowercase words: `dbPassword` -> `db`, `password`; `DB_PASSWD` -> `db`,
/// `passwd`; `db.password` -> `db`, `password`.
pub fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Calls `f` with the words of `key` (as [`key_words`] splits them) and their concatenation,
/// without allocating for keys of up to 128 bytes and 32 words: this runs for every value of
/// every scanned file.
fn with_key_words<R>(key: &str, f: impl FnOnce(&[&str], &str) -> R) -> R {
    const MAX_BYTES: usize = 128;
    const MAX_WORDS: usize = 32;
    let mut buf = [0u8; MAX_BYTES];
    // End offset in `buf` of each word; words are stored back to back, so `buf` is their
    // concatenation.
    let mut ends = [0usize; MAX_WORDS];
    let (mut len, mut count, mut word_start) = (0usize, 0usize, 0usize);
    let mut prev_lower = false;
    let mut fits = true;
    let mut end_word = |len: usize, count: &mut usize, word_start: &mut usize| {
        if len > *word_start {
            if *count == MAX_WORDS {
                return false;
            }
            ends[*count] = len;
            *count += 1;
            *word_start = len;
        }
        true
    };
    for &b in key.as_bytes() {
        if !b.is_ascii_alphanumeric() {
            fits = end_word(len, &mut count, &mut word_start);
            prev_lower = false;
        } else {
            if b.is_ascii_uppercase() && prev_lower {
                fits = end_word(len, &mut count, &mut word_start);
            }
            prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
            fits = fits && len < MAX_BYTES;
            if fits {
                buf[len] = b.to_ascii_lowercase();
                len += 1;
            }
        }
        if !fits {
            break;
        }
    }
    fits = fits && end_word(len, &mut count, &mut word_start);
    let joined = std::str::from_utf8(&buf[..len]);
    match joined {
        Ok(joined) if fits => {
            let mut words = [""; MAX_WORDS];
            let mut start = 0;
            for (word, &end) in words.iter_mut().zip(&ends[..count]) {
                *word = &joined[start..end];
                start = end;
            }
            f(&words[..count], joined)
        }
        _ => {
            let owned = key_words(key);
            let words: Vec<&str> = owned.iter().map(String::as_str).collect();
            f(&words, &owned.concat())
        }
    }
}

/// Whether any of `needles` occurs in `haystack`: one pass over a short key instead of a
/// substring search per needle.
fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    let bytes = haystack.as_bytes();
    (0..bytes.len()).any(|i| {
        needles.iter().any(|needle| {
            needle.as_bytes().first() == Some(&bytes[i])
                && bytes[i..].starts_with(needle.as_bytes())
        })
    })
}

/// Whether a key names a credential (its value is the secret), not something about one.
pub fn is_credential_key(key: &str, config: &RuleConfig) -> bool {
    with_key_words(key, |words, joined| credential_words(words, joined, config))
}

fn credential_words(words: &[&str], joined: &str, config: &RuleConfig) -> bool {
    let Some(last) = words.last() else {
        return false;
    };
    if NON_SECRET_SUFFIXES.contains(last) || words.iter().any(|w| *w == "public" || *w == "pub") {
        return false;
    }
    if contains_any(joined, &STRONG_WORDS) {
        // "secret" in "secretsmanager", "token" in "tokenizer" are not credentials.
        return !joined.contains("tokeniz") && !joined.contains("secretsmanager");
    }
    if words.iter().any(|w| SEGMENT_WORDS.contains(w)) {
        return true;
    }
    if words.windows(2).any(|pair| {
        matches!(
            (pair[0], pair[1]),
            ("api", "key")
                | ("private", "key")
                | ("access", "key")
                | ("secret", "key")
                | ("auth", "key")
                | ("client", "secret")
                | ("master", "key")
                | ("shared", "key")
                | ("preshared", "key")
                | ("pre", "shared")
                | ("signing", "key")
                | ("encryption", "key")
                | ("account", "key")
                | ("session", "key")
                | ("app", "key")
                | ("license", "key")
        )
    }) {
        return true;
    }
    config
        .extra_credential_words
        .iter()
        .any(|extra| words.contains(&extra.as_str()) || joined.contains(extra.as_str()))
}

/// A reference to a secret kept elsewhere: Jinja, lookups, `${ENV}`, `$ENV`.
pub fn is_reference(value: &str) -> bool {
    let v = value.trim();
    if v.contains("{{") || v.contains("{%") {
        return true;
    }
    if (v.starts_with("${") && v.ends_with('}')) || (v.starts_with("$(") && v.ends_with(')')) {
        return true;
    }
    if v.starts_with('$')
        && v.len() > 1
        && v[1..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return true;
    }
    if v.starts_with("%(") && v.ends_with(")s") {
        return true;
    }
    [
        "lookup(",
        "query(",
        "q(",
        "vault:",
        "secret/",
        "ssm:",
        "arn:aws:secretsmanager",
        "env:",
    ]
    .iter()
    .any(|p| starts_with_lower(v, p))
}

/// An obvious non-value standing in for a secret.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with('[') && v.ends_with(']') && !v.contains(','))
    {
        return true;
    }
    if v.chars()
        .all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '-' | '#' | '?' | '_' | '!' | '0'))
    {
        return true;
    }
    const WORDS: [&str; 18] = [
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "replace_me",
        "replaceme",
        "replace-me",
        "todo",
        "tbd",
        "fixme",
        "redacted",
        "placeholder",
        "your-",
        "your_",
        "yourpassword",
        "insert-",
        "dummy",
        "notset",
    ];
    if WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    if lower.ends_with("-here") || lower.ends_with("_here") || lower.contains("example") {
        return true;
    }
    if [
        "none",
        "null",
        "nil",
        "n/a",
        "na",
        "undefined",
        "unset",
        "empty",
        "secret",
        "password",
        "...",
        "~",
    ]
    .contains(&lower.as_str())
    {
        return true;
    }
    // `ghp_xxxx...`, `AGE-SECRET-KEY-1XXXX...`: a format prefix padded with one repeated char.
    longest_run(v) >= 6.max(v.chars().count() / 3)
}

fn longest_run(value: &str) -> usize {
    let mut best = 0usize;
    let mut run = 0usize;
    let mut last = None;
    for c in value.chars() {
        if Some(c) == last && c.is_ascii_alphanumeric() {
            run += 1;
        } else {
            run = 1;
            last = Some(c);
        }
        best = best.max(run);
    }
    best
}

/// A password hash (`$6$...`, bcrypt, LDAP `{SSHA}`): not plaintext.
pub fn is_password_hash(value: &str) -> bool {
    PASSWORD_HASH.is_match(value.trim())
}

fn is_path(value: &str) -> bool {
    let v = value.trim();
    // `roles/ops/files`, `certs/app.pem`: relative paths of lowercase words.
    let segments: Vec<&str> = v.trim_end_matches('/').split('/').collect();
    if segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
                })
        })
        && segments
            .iter()
            .any(|s| s.chars().filter(|c| c.is_ascii_lowercase()).count() >= 3)
    {
        return true;
    }
    (v.starts_with('/') || v.starts_with("~/") || v.starts_with("./") || v.starts_with("../"))
        && !v.contains(char::is_whitespace)
        && v.matches('/').count() >= 1
        && !v[1..].contains("//")
}

fn is_bool_or_number(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off"
    ) || (lower.parse::<f64>().is_ok() && lower.len() < 4)
}

fn is_duration(value: &str) -> bool {
    let v = value.trim();
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty()
        && digits.len() < v.len()
        && v.len() <= 8
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// `value.to_ascii_lowercase().starts_with(prefix)` for a lowercase `prefix`, without the copy.
fn starts_with_lower(value: &str, prefix: &str) -> bool {
    value
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn is_public_material(value: &str) -> bool {
    let v = value.trim();
    starts_with_lower(v, "ssh-rsa ")
        || starts_with_lower(v, "ssh-ed25519 ")
        || starts_with_lower(v, "ssh-dss ")
        || starts_with_lower(v, "ecdsa-sha2-")
        || starts_with_lower(v, "sk-ssh-")
        || starts_with_lower(v, "sk-ecdsa-")
        || v.contains("-----BEGIN CERTIFICATE-----")
        || v.contains("PUBLIC KEY")
        || (starts_with_lower(v, "age1") && v.len() >= 60 && !v.contains(char::is_whitespace))
        || v.starts_with("pk_live_")
        || v.starts_with("pk_test_")
}

fn is_digest_or_identifier(value: &str) -> bool {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if UUID.is_match(v) {
        return true;
    }
    for prefix in [
        "sha1:", "sha256:", "sha384:", "sha512:", "md5:", "sha256-", "sha384-", "sha512-", "sha1-",
        "arn:", "vpce-", "vpc-", "subnet-", "sg-", "ami-", "i-",
    ] {
        if lower.starts_with(prefix) {
            return true;
        }
    }
    if v.contains("@sha256:") {
        return true;
    }
    let hex = v.chars().all(|c| c.is_ascii_hexdigit());
    if hex && matches!(v.len(), 8 | 16 | 32 | 40 | 56 | 64 | 96 | 128) {
        return true;
    }
    // OAuth client ids are public.
    lower.ends_with(".apps.googleusercontent.com")
}

/// Code that computes a value rather than a literal: `os.environ["DB_PASSWORD"]`,
/// `getpass()`, `module.params['password']`, `config.db_password` (templates and plugins).
static CODE_EXPRESSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\s*[\(\[].*[\)\]]|[a-z_]{2,}(?:\.[a-z_]{2,})+)$")
        .unwrap_or_else(|_| unreachable!())
});

/// Whether a value under a credential-like key is a real plaintext value (not a reference,
/// placeholder, hash, path, flag, number or prose).
fn is_real_credential_value(value: &str) -> bool {
    let v = value.trim();
    if v.chars().count() < 3 || is_reference(v) || is_placeholder(v) || is_password_hash(v) {
        return false;
    }
    if is_path(v) || is_bool_or_number(v) || is_duration(v) || is_public_material(v) {
        return false;
    }
    if UUID.is_match(v) || v.starts_with("$ANSIBLE_VAULT;") || v.starts_with("ENC[") {
        return false;
    }
    if CODE_EXPRESSION.is_match(v) {
        return false;
    }
    // Prose ("set via vault", "Enter the admin password") is a description, not a password.
    if v.split_whitespace().count() >= 3 {
        return false;
    }
    !(v.contains(' ') && v.chars().all(|c| c.is_ascii_alphabetic() || c == ' '))
}

/// A random-looking token of 32 characters or more: mixed classes, high entropy, no structure.
fn is_random_string(value: &str) -> bool {
    let v = value.trim();
    if v.len() < 32 || v.len() > 4096 {
        return false;
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-'))
    {
        return false;
    }
    if is_digest_or_identifier(v) || is_placeholder(v) {
        return false;
    }
    // Identifiers built from words: `hmac-sha2-512-etm`, `my-service-name-production-eu-west`.
    let separators = v.chars().filter(|c| matches!(c, '-' | '_')).count();
    if separators >= 2 && v.split(['-', '_']).all(|part| part.len() < 16) {
        return false;
    }
    let upper = v.chars().any(|c| c.is_ascii_uppercase());
    let lower = v.chars().any(|c| c.is_ascii_lowercase());
    let digit = v.chars().any(|c| c.is_ascii_digit());
    let classes = usize::from(upper) + usize::from(lower) + usize::from(digit);
    let hex = v.chars().all(|c| c.is_ascii_hexdigit());
    if hex {
        return shannon_entropy(v) > 3.0;
    }
    classes >= 3 && shannon_entropy(v) > 4.0 || classes == 2 && digit && shannon_entropy(v) > 4.2
}

fn key_is_neutral_non_secret(key: &str) -> bool {
    with_key_words(key, |words, _| {
        words.iter().any(|w| NEUTRAL_NON_SECRET_WORDS.contains(w))
    })
}

/// Known token formats and private keys anywhere in `value`.
fn token_hits(value: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    if value.len() < MIN_TOKEN_LEN {
        return hits;
    }
    // One pass of the combined set first: most values match no format at all.
    let matched = TOKEN_SET.matches(value);
    if !matched.matched_any() {
        return hits;
    }
    for (index, (name, re)) in TOKEN_FORMATS.iter().enumerate() {
        if !matched.matched(index) {
            continue;
        }
        for m in re.find_iter(value) {
            let text = m.as_str();
            if AWS_EXAMPLES.contains(&text)
                || is_placeholder(text.trim_start_matches("AGE-SECRET-KEY-1"))
            {
                continue;
            }
            if *name == "private key" {
                if private_key_has_body(&value[m.start()..]) {
                    hits.push(Hit::new(Rule::PrivateKey, "private key", text));
                }
                continue;
            }
            hits.push(Hit::new(Rule::KnownToken, *name, text));
        }
    }
    hits
}

/// A PEM block with a real body, not `-----BEGIN PRIVATE KEY-----\n...\n-----END`.
fn private_key_has_body(from_begin: &str) -> bool {
    let body: String = from_begin
        .lines()
        .skip(1)
        .take_while(|l| !l.contains("-----END"))
        .collect::<Vec<_>>()
        .join("");
    let body = if body.is_empty() {
        // One-line forms keep the body after the header on the same line (`\n` escapes).
        from_begin
            .split("-----")
            .nth(2)
            .unwrap_or("")
            .replace("\\n", "")
    } else {
        body
    };
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 40 && !is_placeholder(&compact) && shannon_entropy(&compact) > 4.0
}

fn url_hits(value: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    if !value.contains("://") {
        // What the regex needs first: most values are no URL.
        return hits;
    }
    for caps in URL_USERINFO.captures_iter(value) {
        let password = caps.get(2).map_or("", |m| m.as_str());
        let lower = password.to_ascii_lowercase();
        if is_reference(password)
            || is_placeholder(password)
            || ["pass", "pw", "pwd", "passwd"].contains(&lower.as_str())
            || password.starts_with('$')
            || password.starts_with('%')
        {
            continue;
        }
        hits.push(Hit::new(
            Rule::UrlCredentials,
            "password in URL userinfo",
            password,
        ));
    }
    hits
}

fn jinja_hits(key: &str, value: &str, config: &RuleConfig) -> Vec<Hit> {
    let mut hits = Vec::new();
    if !value.contains('|') || !value.contains(['\'', '"']) {
        // Both regexes need a quoted literal and a filter: a plain reference has neither.
        return hits;
    }
    let credential = is_credential_key(key, config);
    for caps in JINJA_LITERAL.captures_iter(value) {
        let literal = caps
            .get(1)
            .or_else(|| caps.get(2))
            .map_or("", |m| m.as_str());
        let filter = caps.get(3).map_or("", |m| m.as_str());
        let secret_filter = matches!(
            filter,
            "password_hash" | "hash" | "b64encode" | "vault" | "encrypt" | "checksum"
        );
        if (secret_filter || credential) && is_real_credential_value(literal) {
            hits.push(Hit::new(
                Rule::JinjaLiteral,
                format!("literal piped to '{filter}' in a Jinja expression"),
                literal,
            ));
        }
    }
    if credential {
        for caps in JINJA_DEFAULT.captures_iter(value) {
            let literal = caps
                .get(1)
                .or_else(|| caps.get(2))
                .map_or("", |m| m.as_str());
            if is_real_credential_value(literal) {
                hits.push(Hit::new(
                    Rule::JinjaLiteral,
                    "literal default() of a credential in a Jinja expression",
                    literal,
                ));
            }
        }
    }
    hits
}

/// Decodes standard or URL-safe base64 of at least 8 characters into text, when it is text.
fn decode_base64_text(value: &str) -> Option<String> {
    let v = value.trim();
    if v.len() < 8
        || !v.len().is_multiple_of(4)
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
    {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(v))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let printable = text.chars().all(|c| !c.is_control() || c.is_whitespace());
    printable.then_some(text)
}

/// Whether `value` decodes (base64) to text at all; such values are judged by what they decode
/// to, never by their own entropy.
pub fn is_base64_text(value: &str) -> bool {
    decode_base64_text(value).is_some()
}

/// Classifies one scalar value found under `key` (the nearest mapping key; empty for none).
/// Multi-line values are also scanned line by line, with `line_offset` set on each hit.
pub fn classify(key: &str, value: &str, config: &RuleConfig) -> Vec<Hit> {
    classify_depth(key, value, config, 0)
}

fn classify_depth(key: &str, value: &str, config: &RuleConfig, depth: usize) -> Vec<Hit> {
    let v = value.trim();
    if v.is_empty() || v.starts_with("$ANSIBLE_VAULT;") || v.starts_with("ENC[AES256_GCM,") {
        return Vec::new();
    }
    let mut hits = token_hits(v);
    hits.extend(url_hits(v));
    if !hits.is_empty() {
        if hits.iter().any(|h| h.rule == Rule::PrivateKey) {
            // A PEM block is one secret: one finding, at the value's first line.
            hits.retain(|h| h.rule == Rule::PrivateKey);
            hits.truncate(1);
            return hits;
        }
        return locate_lines(v, hits);
    }
    if v.contains('\n') {
        // A block of text: INI or dotenv inside a YAML block scalar, a script, a JSON document.
        let mut inner = scan_lines(v, config, depth + 1);
        if inner.is_empty()
            && is_credential_key(key, config)
            && is_real_credential_value(v)
            && !v.contains(' ')
        {
            inner.push(Hit::new(
                Rule::CredentialValue,
                format!("plaintext value under '{key}'"),
                v,
            ));
        }
        return inner;
    }
    if v.contains("{{") {
        return jinja_hits(key, v, config);
    }
    if is_public_material(v) {
        return Vec::new();
    }
    if is_credential_key(key, config) {
        if let Some(decoded) = decode_base64_text(v).filter(|d| d.len() >= 4 && depth < 2) {
            if !is_real_credential_value(&decoded) {
                return Vec::new();
            }
        }
        if is_real_credential_value(v) {
            return vec![Hit::new(
                Rule::CredentialValue,
                format!("plaintext value under credential-like key '{key}'"),
                v,
            )];
        }
        return Vec::new();
    }
    if depth < 2 {
        if let Some(decoded) = decode_base64_text(v) {
            let structured =
                decoded.trim_start().starts_with('{') || decoded.trim_start().starts_with('[');
            let inner = if structured {
                crate::formats::parse_yaml(&decoded)
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|leaf| classify_depth(leaf.key(), &leaf.value, config, depth + 1))
                    .collect()
            } else if decoded.contains('\n') || decoded.contains('=') || decoded.contains(':') {
                let mut found = classify_depth(key, &decoded, config, depth + 1);
                if found.is_empty() && (decoded.contains(':') || decoded.contains('=')) {
                    found = scan_lines(&decoded, config, depth + 1);
                }
                found
            } else {
                classify_depth(key, &decoded, config, depth + 1)
            };
            return match inner.first() {
                Some(first) => vec![Hit::new(
                    Rule::Base64Secret,
                    format!("base64 of a secret ({})", first.what),
                    v,
                )],
                None => Vec::new(),
            };
        }
    }
    if is_random_string(v) && !key_is_neutral_non_secret(key) {
        return vec![Hit::new(Rule::HighEntropy, "long random string", v)];
    }
    Vec::new()
}

/// Sets `line_offset` of each hit to the line of `text` that holds its secret.
fn locate_lines(text: &str, mut hits: Vec<Hit>) -> Vec<Hit> {
    for hit in &mut hits {
        if let Some(pos) = text.find(hit.secret.as_str()) {
            hit.line_offset = text[..pos].matches('\n').count();
        }
    }
    hits
}

/// Scans free text line by line: `key: value` / `key=value` pairs (also inside comments),
/// INI host lines, token formats, URLs. Used for templates, unparseable files, comments and
/// multi-line values.
pub fn scan_lines(text: &str, config: &RuleConfig, depth: usize) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let mut found = scan_line(line, config, depth);
        if found.iter().any(|h| h.rule == Rule::PrivateKey) {
            // Skip the PEM body so its lines are not judged one by one.
            for (_, next) in lines.by_ref() {
                if next.contains("-----END") {
                    break;
                }
            }
            found.retain(|h| h.rule == Rule::PrivateKey);
            found.truncate(1);
            if !private_key_has_body(&text[text.find(line).unwrap_or(0)..]) {
                found.clear();
            }
        }
        for mut hit in found {
            hit.line_offset = index;
            hits.push(hit);
        }
    }
    hits
}

/// Source code and prose (plugins, docs): only what is a secret wherever it stands (known token
/// formats, private keys, URL userinfo); key/value guesses there would mostly hit code.
pub fn scan_lines_formats_only(text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        if line.contains("secrets_gate: allow") {
            continue;
        }
        let mut found = token_hits(line);
        if found.iter().any(|h| h.rule == Rule::PrivateKey) {
            let rest = text.split('\n').skip(index).collect::<Vec<_>>().join("\n");
            found.retain(|h| h.rule != Rule::PrivateKey);
            if private_key_has_body(&rest) || rest.contains("\\n") && private_key_has_body(line) {
                found.push(Hit::new(Rule::PrivateKey, "private key", line.trim()));
            }
        }
        found.extend(url_hits(line));
        for mut hit in found.into_iter().take(1) {
            hit.line_offset = index;
            hits.push(hit);
        }
    }
    hits
}

/// One line of free text.
pub fn scan_line(line: &str, config: &RuleConfig, depth: usize) -> Vec<Hit> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.contains("secrets_gate: allow") {
        return Vec::new();
    }
    if trimmed.contains("-----BEGIN") && trimmed.contains("PRIVATE KEY") {
        return vec![Hit::new(Rule::PrivateKey, "private key", trimmed)];
    }
    let mut hits: Vec<Hit> = token_hits(trimmed);
    hits.extend(url_hits(trimmed));
    if !hits.is_empty() {
        return hits;
    }
    let body = trimmed
        .trim_start_matches(['#', ';'])
        .trim_start_matches("//")
        .trim();
    if body.starts_with('[') && body.ends_with(']') {
        return Vec::new();
    }
    if let Some(caps) = LINE_KV.captures(body) {
        let key = caps.get(1).map_or("", |m| m.as_str());
        let raw = caps.get(2).map_or("", |m| m.as_str());
        let value = strip_trailing_comment(raw);
        let value = unquote(value.trim_end_matches(',').trim());
        let is_host_line = !body.starts_with(key)
            || value.contains(' ') && HOST_VARS.find_iter(value).count() >= 1;
        if !is_host_line {
            let value = value.replace("\\n", "\n");
            return classify_depth(key, &value, config, depth)
                .into_iter()
                .take(1)
                .collect();
        }
    }
    if let Some(caps) = COMMENT_KV.captures(body) {
        let key = caps.get(1).map_or("", |m| m.as_str()).replace(' ', "_");
        let value = unquote(caps.get(2).map_or("", |m| m.as_str()));
        return classify_depth(&key, value, config, depth)
            .into_iter()
            .take(1)
            .collect();
    }
    // An INI inventory host line: `web1 ansible_host=10.0.0.1 ansible_password=secret`.
    for caps in HOST_VARS.captures_iter(body) {
        let key = caps.get(1).map_or("", |m| m.as_str());
        let value = unquote(caps.get(2).map_or("", |m| m.as_str()));
        hits.extend(classify_depth(key, value, config, depth));
    }
    hits
}

/// Drops a ` # comment` after a value (not a `#` inside it).
fn strip_trailing_comment(value: &str) -> &str {
    let v = value.trim();
    if v.starts_with('"') || v.starts_with('\'') {
        return v;
    }
    match v.find(" #") {
        Some(pos) => v[..pos].trim_end(),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(key: &str, value: &str) -> Vec<Rule> {
        classify(key, value, &RuleConfig::default())
            .into_iter()
            .map(|h| h.rule)
            .collect()
    }

    #[test]
    fn a_weak_human_password_under_a_credential_key_is_a_secret() {
        assert_eq!(
            rules("db_password", "Raven_Meadow1541*"),
            [Rule::CredentialValue]
        );
        assert_eq!(
            rules("ansible_become_pass", "hunter22"),
            [Rule::CredentialValue]
        );
        assert_eq!(rules("dbPassword", "s3cr3t!"), [Rule::CredentialValue]);
        assert_eq!(
            rules("mysql.root.passwd", "toor-toor"),
            [Rule::CredentialValue]
        );
    }

    #[test]
    fn references_lookups_and_env_interpolation_are_not_secrets() {
        for value in [
            "{{ vault_db_password }}",
            "{{ lookup('env', 'DB_PASSWORD') }}",
            "{{ lookup('community.sops.sops', 'secrets.yml') }}",
            "{{ lookup('hashi_vault', 'secret=kv/db:password') }}",
            "{{ lookup('aws_ssm', '/prod/db') }}",
            "${DB_PASSWORD}",
            "$DB_PASSWORD",
        ] {
            assert!(rules("db_password", value).is_empty(), "{value}");
        }
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for value in [
            "CHANGEME",
            "changeme",
            "<redacted>",
            "********",
            "REPLACE_ME",
            "TODO",
            "your-api-key-here",
        ] {
            assert!(rules("api_key", value).is_empty(), "{value}");
        }
        assert!(rules("token", &format!("ghp_{}", "x".repeat(36))).is_empty());
        assert!(rules("age_key", &format!("AGE-SECRET-KEY-1{}", "X".repeat(58))).is_empty());
        assert!(rules("docs", "postgresql://user:password@host").is_empty());
    }

    #[test]
    fn code_that_computes_a_credential_is_not_a_literal() {
        assert!(rules("password", "os.environ[\"DB_PASSWORD\"]").is_empty());
        assert!(rules("token", "get_token()").is_empty());
        assert!(rules("password", "config.db_password").is_empty());
        assert!(rules("password", "module.params['password']").is_empty());
        assert_eq!(rules("password", "Pass.word1"), [Rule::CredentialValue]);
    }

    #[test]
    fn policy_numbers_paths_names_and_ttls_are_not_secrets() {
        assert!(rules("password_min_length", "12").is_empty());
        assert!(rules("vault_password_file", "~/.vault_pass").is_empty());
        assert!(rules("secrets_dir_of_role", "roles/ops/files").is_empty());
        assert!(rules("token_ttl", "30d").is_empty());
        assert!(rules("secret_name", "db-credentials").is_empty());
        assert!(rules("auth_header", "X-Auth-Token").is_empty());
        assert!(rules("db_password", "~").is_empty());
        assert!(rules("private_key_id", "9c1f6b3e2d4a5f60718293a4b5c6d7e8f9012345").is_empty());
    }

    #[test]
    fn password_hashes_are_not_plaintext() {
        assert!(rules(
            "password",
            "$6$rounds=5000$saltsalt$Vb7cQfOq0aQ0hK9F5tJ0o3JvM1rYqWf9vY8zB7mPq1x"
        )
        .is_empty());
        assert!(rules(
            "password",
            "$2b$12$KIXQJ1v8dI9r2CWgYQ0xUe0w6hZ5Yx9H7dJ3kQ1bT4f8s2mN6pL0a"
        )
        .is_empty());
        assert!(rules(
            "user_password",
            "{{ user_plain | password_hash('sha512') }}"
        )
        .is_empty());
    }

    #[test]
    fn a_literal_piped_to_password_hash_is_a_secret() {
        assert_eq!(
            rules(
                "user_password",
                "{{ 'Raven_Meadow1541*' | password_hash('sha512') }}"
            ),
            [Rule::JinjaLiteral]
        );
        assert_eq!(
            rules(
                "users_pw",
                "{{ lookup('env','X') | default('Fallback-Pass9') }}"
            ),
            [Rule::JinjaLiteral]
        );
        assert!(rules("name", "{{ 'web' | upper }}").is_empty());
    }

    #[test]
    fn known_token_formats_are_secrets_under_any_key() {
        for value in [
            "AKIAZ3MKQ7XGJ4PLW2RT",
            "ghp_8fK2mQ9xLp3RtV7wZ1cY5nB0hJ4sD6gA2eUq",
            "glpat-Zk8mP2qR7tY4wX9cV3bN",
            "xoxb-2048617391-5829103847261-Kq8mZ2pL7xR4tY9w",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "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",
            "npm_K8mZ2pL7xR4tY9wQ3vB6nC1dF5gH0jS2aE4u",
            "AIzaSyD4kZ8mP2qR7tY4wX9cV3bN6mL1kJ5hG2f",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zk8mP2qR7tY4wX9cV3bN6mL1kJ5hG2fD8sA0qW3eR6tY9uI1oP4aS7dF0gH3jK6lZ9xC2vB5nM8==;",
            "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS9MGW5U",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ] {
            assert_eq!(rules("value", value), [Rule::KnownToken], "{value}");
        }
    }

    #[test]
    fn the_aws_documentation_examples_and_public_stripe_keys_are_not_secrets() {
        assert!(rules("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE").is_empty());
        assert!(rules(
            "aws_secret_access_key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        )
        .is_empty());
        assert!(rules(
            "stripe_publishable",
            "pk_live_51H8mZ2pL7xR4tY9wQ3vB6nC1dF5gH0jS2aE4u"
        )
        .is_empty());
    }

    #[test]
    fn private_keys_in_any_encoding_are_secrets_and_public_material_is_not() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDk0F3n4n2mR8f7qZ1xV6tY3wB9cL5dH2jK8sN0pQ4rTg==\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(rules("ssh_key", pem), [Rule::PrivateKey]);
        let one_line = pem.replace('\n', "\\n");
        assert_eq!(rules("key", &one_line), [Rule::PrivateKey]);
        assert!(rules(
            "ssh_key",
            "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"
        )
        .is_empty());
        assert!(rules("authorized_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example").is_empty());
        assert!(rules(
            "recipient",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
        )
        .is_empty());
        assert!(rules(
            "wg_public_key",
            "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
        )
        .is_empty());
        assert_eq!(
            rules(
                "wg_private_key",
                "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
            ),
            [Rule::CredentialValue]
        );
    }

    #[test]
    fn urls_with_a_password_in_their_userinfo_are_secrets() {
        assert_eq!(
            rules(
                "database_url",
                "postgres://app:Tr0ub4dor3x@db.internal:5432/app"
            ),
            [Rule::UrlCredentials]
        );
        assert_eq!(
            rules(
                "repo",
                "https://deploy:glq8Zk2mP7tY4wX9cV3b@git.example.org/x.git"
            ),
            [Rule::UrlCredentials]
        );
        assert!(rules("database_url", "postgres://app@db.internal/app").is_empty());
        assert!(rules("database_url", "postgres://app:{{ db_password }}@db/app").is_empty());
    }

    #[test]
    fn base64_of_a_secret_is_a_secret_and_base64_of_text_is_not() {
        // {"auths":{"r.io":{"auth":"dXNlcjpTM2NyZXQtUGFzcw=="}}}
        let docker = base64::engine::general_purpose::STANDARD.encode(
            r#"{"auths":{"registry.example.org":{"username":"ci","password":"Qz8-mP2q-R7tY"}}}"#,
        );
        assert_eq!(rules(".dockerconfigjson", &docker), [Rule::Base64Secret]);
        let banner = base64::engine::general_purpose::STANDARD
            .encode("Authorized use only. All activity is logged.");
        assert!(rules("motd", &banner).is_empty());
        let flags = base64::engine::general_purpose::STANDARD
            .encode(r#"{"feature_x": true, "rollout": 25}"#);
        assert!(rules("flags", &flags).is_empty());
    }

    #[test]
    fn long_random_strings_under_neutral_keys_are_secrets_but_digests_and_ids_are_not() {
        assert_eq!(
            rules("cookie", "Zk8mP2qR7tY4wX9cV3bN6mL1kJ5hG2fD8sA0"),
            [Rule::HighEntropy]
        );
        assert!(rules(
            "image_digest",
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        )
        .is_empty());
        assert!(rules("commit", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b").is_empty());
        assert!(rules(
            "value",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        )
        .is_empty());
        assert!(rules("instance", "123e4567-e89b-12d3-a456-426614174000").is_empty());
        assert!(rules(
            "integrity",
            "sha512-Zk8mP2qR7tY4wX9cV3bN6mL1kJ5hG2fD8sA0qW3eR6tY9uI1oP4aS7dF0gH3jK6lZ9xC2vB5nM8=="
        )
        .is_empty());
        assert!(rules(
            "role",
            "arn:aws:iam::123456789012:role/deploy-production-eu-west-1"
        )
        .is_empty());
    }

    #[test]
    fn ssh_algorithm_names_under_neutral_keys_are_not_random_secrets() {
        for value in [
            "ecdh-sha2-nistp256",
            "hmac-sha2-512-etm@openssh.com",
            "chacha20-poly1305@openssh.com",
            "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512",
        ] {
            assert!(rules("kex_algorithms", value).is_empty(), "{value}");
            assert!(rules("value", value).is_empty(), "{value}");
        }
    }

    #[test]
    fn a_comment_that_says_where_the_password_lives_is_not_a_secret() {
        assert!(scan_line("# password: set via vault", &RuleConfig::default(), 0).is_empty());
        assert_eq!(
            scan_line("# password: Raven_Meadow1541*", &RuleConfig::default(), 0).len(),
            1
        );
    }

    #[test]
    fn ini_inside_a_block_scalar_points_at_the_secret_line() {
        let ini = "[client]\nuser = app\npassword = Qz8-mP2q-R7tY\nhost = db\n";
        let hits = classify("my_cnf", ini, &RuleConfig::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line_offset, 2);
    }

    #[test]
    fn ini_inventory_host_lines_are_split_into_variables() {
        let hits = scan_line(
            "web1 ansible_host=10.0.0.5 ansible_password='Qz8-mP2q-R7tY' ansible_user=deploy",
            &RuleConfig::default(),
            0,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, Rule::CredentialValue);
    }

    #[test]
    fn extra_credential_words_extend_the_key_list() {
        let config = RuleConfig {
            extra_credential_words: vec!["shibboleth".into()],
        };
        assert_eq!(classify("shibboleth", "opensesame", &config).len(), 1);
        assert!(classify("shibboleth", "opensesame", &RuleConfig::default()).is_empty());
    }

    #[test]
    fn key_words_without_allocation_split_every_key_as_key_words_does() {
        let long = format!("{}_password", "a".repeat(130));
        let many = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join("_");
        for key in [
            "",
            "_",
            "dbPassword",
            "DB_PASSWD",
            "db.password",
            "HTTPServerToken",
            "aws_secret_access_key",
            "x1Y2z3",
            "päss_wört",
            "--api--key--",
            "A",
            long.as_str(),
            many.as_str(),
        ] {
            let expected = key_words(key);
            let joined_expected = expected.concat();
            with_key_words(key, |words, joined| {
                assert_eq!(words, expected.as_slice(), "{key}");
                assert_eq!(joined, joined_expected, "{key}");
            });
        }
        assert!(is_credential_key(&long, &RuleConfig::default()));
    }

    #[test]
    fn the_shortest_token_format_is_still_found_after_the_length_prefilter() {
        let token = "xoxb-1234567890";
        assert_eq!(token.len(), MIN_TOKEN_LEN);
        assert_eq!(token_hits(token).len(), 1);
        assert!(token_hits(&token[1..]).is_empty());
    }
}
