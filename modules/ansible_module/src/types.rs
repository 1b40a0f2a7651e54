//! Parameter value types with the spellings Ansible users write.
//!
//! Ansible hands binary modules whatever the task said, often as strings (`"5s"`, `"yes"`,
//! `"80"`, `"a,b"` from `key=value` arguments or templates), and validates nothing. These types
//! accept those spellings and reject everything else with a message that says what was expected;
//! [`crate::args::parse_params`] adds the parameter's name.

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, IntoDeserializer};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

/// The JSON type of a value, as a person says it.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Implements `Deserialize` for types that are read from one string through their `FromStr`
/// (whose error, a `String` or anything displayable, becomes the parameter's message).
///
/// ```
/// # use std::str::FromStr;
/// struct Port(u16);
/// impl FromStr for Port {
///     type Err = String;
///     fn from_str(text: &str) -> Result<Self, String> {
///         text.parse().map(Port).map_err(|_| format!("invalid port {text:?}"))
///     }
/// }
/// ansible_module::deserialize_from_str!(Port);
/// ```
#[macro_export]
macro_rules! deserialize_from_str {
    ($($type:ty),+ $(,)?) => {$(
        impl<'de> $crate::types::__serde::Deserialize<'de> for $type {
            fn deserialize<D: $crate::types::__serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <String as $crate::types::__serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err($crate::types::__serde::de::Error::custom)
            }
        }
    )+};
}

/// Declares an enum of keywords: parsed case-insensitively from a string (surrounding spaces
/// ignored), shown as its keyword, and refused with "invalid WHAT \"x\" (expected a, b or c)"
/// (or "expected one of a, b, ..." for longer lists). The first variant marked `#[default]`
/// is the default.
///
/// ```
/// ansible_module::keyword_enum! {
///     /// How to ask.
///     pub enum Method("method") {
///         #[default]
///         Get => "GET",
///         Head => "HEAD",
///     }
/// }
/// assert_eq!("head".parse::<Method>().unwrap(), Method::Head);
/// assert_eq!(
///     "PUT".parse::<Method>().unwrap_err(),
///     "invalid method \"PUT\" (expected GET or HEAD)"
/// );
/// ```
#[macro_export]
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every keyword, in declaration order.
            pub const KEYWORDS: &'static [&'static str] = &[$($text),+];

            /// The keyword as a task writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                let wanted = text.trim();
                $(if wanted.eq_ignore_ascii_case($text) {
                    return Ok(Self::$variant);
                })+
                Err(format!(
                    "invalid {} {text:?} (expected {})",
                    $what,
                    $crate::types::keyword_list(Self::KEYWORDS)
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::deserialize_from_str!($name);

        impl $crate::types::__serde::Serialize for $name {
            fn serialize<S: $crate::types::__serde::Serializer>(
                &self,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl $crate::types::__schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(
                _: &mut $crate::types::__schemars::SchemaGenerator,
            ) -> $crate::types::__schemars::Schema {
                $crate::types::__schemars::json_schema!({
                    "type": "string",
                    "enum": Self::KEYWORDS,
                })
            }
        }
    };
}

/// Implements `JsonSchema` for a parameter type read from one string (a name, an address): an
/// Ansible `str`.
#[macro_export]
macro_rules! string_schema {
    ($($type:ty),+ $(,)?) => {$(
        impl $crate::types::__schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(
                _: &mut $crate::types::__schemars::SchemaGenerator,
            ) -> $crate::types::__schemars::Schema {
                $crate::types::__schemars::json_schema!({"type": "string"})
            }
        }
    )+};
}

/// A schema for a value Ansible types as `raw` (several shapes accepted).
fn raw_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "number"],
        "x-ansible-type": "raw",
        "description": description,
    })
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        raw_schema("a duration such as 90s, 1m30s or 500ms; a bare number is seconds")
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        raw_schema("a size such as 10GiB or 500MB; a bare number is bytes")
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["number", "string"],
            "x-ansible-type": "float",
            "minimum": 0,
            "maximum": 100,
        })
    }
}

impl serde::Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for List<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("List_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// A list; a comma-separated string or a single item is accepted too.
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let items = generator.subschema_for::<T>();
        schemars::json_schema!({
            "type": ["array", "string"],
            "x-ansible-type": "list",
            "items": items,
        })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for StrOrMap<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("StrOrMap_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// The mapping's schema, marked `raw`: a string stands for its [`Shorthand::FIELD`].
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        raw_schema_of::<T>(generator)
    }
}

/// `T`'s schema marked with Ansible's type `raw`: for parameters that also take another shape
/// than `T`'s (a shorthand string, a boolean switch).
pub fn raw_schema_of<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    let mut schema = generator.subschema_for::<T>();
    schema.insert("x-ansible-type".into(), "raw".into());
    schema
}

#[doc(hidden)]
pub use schemars as __schemars;
#[doc(hidden)]
pub use serde as __serde;

/// "a or b", "a, b or c", and "one of a, b, c, d" from four keywords on.
pub fn keyword_list(keywords: &[&str]) -> String {
    match keywords {
        [] => String::new(),
        [only] => (*only).to_string(),
        [head @ .., last] if keywords.len() <= 3 => format!("{} or {last}", head.join(", ")),
        all => format!("one of {}", all.join(", ")),
    }
}

/// Parses a boolean the way Ansible does: `true`/`false`, `yes`/`no`, `on`/`off`, `y`/`n`,
/// `t`/`f`, `1`/`0`, any case.
pub fn parse_bool_value(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" | "t" | "1" => Ok(true),
            "false" | "no" | "off" | "n" | "f" | "0" => Ok(false),
            _ => Err(format!(
                "expected a boolean (true/false, yes/no), got {s:?}"
            )),
        },
        other => Err(format!(
            "expected a boolean (true/false, yes/no), got {}",
            json_type_name(other)
        )),
    }
}

/// `#[serde(deserialize_with = "ansible_module::types::boolean")]` for `bool` fields.
pub fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(deserializer)?;
    parse_bool_value(&value).map_err(de::Error::custom)
}

/// Like [`boolean`], for `Option<bool>` fields (with `#[serde(default)]`): `null` or absent is
/// "no requirement"; otherwise Ansible's boolean spellings.
pub fn optional_boolean<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => parse_bool_value(&value)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

/// `#[serde(deserialize_with = "ansible_module::types::number")]`: a JSON number or a string
/// holding one, for any numeric field.
pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + DeserializeOwned,
    T::Err: fmt::Display,
{
    let value = Value::deserialize(deserializer)?;
    parse_number(&value).map_err(de::Error::custom)
}

/// Like [`number`], for `Option` fields (with `#[serde(default)]`); `null` is `None`.
pub fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + DeserializeOwned,
    T::Err: fmt::Display,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => parse_number(&value).map(Some).map_err(de::Error::custom),
    }
}

fn parse_number<T>(value: &Value) -> Result<T, String>
where
    T: FromStr + DeserializeOwned,
    T::Err: fmt::Display,
{
    match value {
        Value::Number(n) => T::deserialize(Value::Number(n.clone()))
            .map_err(|e| format!("{n} is out of range: {e}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|e| format!("expected a number, got {s:?} ({e})")),
        other => Err(format!("expected a number, got {}", json_type_name(other))),
    }
}

/// A length of time: `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"1m30s"`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self(std::time::Duration::from_millis(millis))
    }

    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

const DURATION_HINT: &str =
    "expected e.g. \"250ms\", \"5s\", \"2m\", \"1h\" or a number of seconds";

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid duration {text:?} ({DURATION_HINT})");
        let s = text.trim();
        if s.is_empty() {
            return Err(invalid());
        }
        if let Ok(secs) = s.parse::<f64>() {
            return seconds(secs).ok_or_else(invalid);
        }
        let mut total = 0f64;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(invalid)?;
            if digits == 0 {
                return Err(invalid());
            }
            let amount: f64 = rest[..digits].parse().map_err(|_| invalid())?;
            let after = &rest[digits..];
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let scale = match after[..unit_len].trim() {
                // Printed for lengths under a millisecond (see Display), so read back too.
                "us" | "µs" => 0.000_001,
                "ms" => 0.001,
                "s" | "sec" | "secs" => 1.0,
                "m" | "min" | "mins" => 60.0,
                "h" | "hr" | "hrs" => 3600.0,
                "d" => 86400.0,
                _ => return Err(invalid()),
            };
            total += amount * scale;
            rest = &after[unit_len..];
        }
        seconds(total).ok_or_else(invalid)
    }
}

fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..1e12).contains(&secs))
        .then(|| Duration(std::time::Duration::from_secs_f64(secs)))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not a whole number of milliseconds: microseconds under a second, fractional seconds
        // above, so that what is printed reads back as the same length (the forms below would
        // drop the rest).
        if !self.0.subsec_nanos().is_multiple_of(1_000_000) {
            if self.0 < std::time::Duration::from_secs(1) {
                return write!(f, "{}us", self.0.as_micros());
            }
            return write!(f, "{}s", self.0.as_secs_f64());
        }
        let millis = self.0.as_millis();
        if !millis.is_multiple_of(1000) || millis == 0 {
            if millis < 1000 {
                return write!(f, "{millis}ms");
            }
            return write!(f, "{}s", self.0.as_secs_f64());
        }
        let secs = millis / 1000;
        match (secs / 3600, secs % 3600 / 60, secs % 60) {
            (0, 0, s) => write!(f, "{s}s"),
            (0, m, 0) => write!(f, "{m}m"),
            (0, m, s) => write!(f, "{m}m{s}s"),
            (h, 0, 0) => write!(f, "{h}h"),
            (h, m, s) => write!(f, "{h}h{m}m{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n.as_f64().and_then(seconds).ok_or_else(|| {
                de::Error::custom(format!("invalid duration {n} ({DURATION_HINT})"))
            }),
            Value::String(s) => s.parse().map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "expected a duration ({DURATION_HINT}), got {}",
                json_type_name(&other)
            ))),
        }
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A size in bytes: an integer, or `"10GiB"`, `"1.5 TB"`, `"500M"`. `KiB`/`MiB`/`GiB`/`TiB` and
/// the bare `K`/`M`/`G`/`T` are powers of 1024; `KB`/`MB`/`GB`/`TB` are powers of 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

const BYTES_HINT: &str = "expected e.g. \"10GiB\", \"500MB\", \"2G\" or a number of bytes";

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid byte size {text:?} ({BYTES_HINT})");
        let s = text.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        if split == 0 {
            return Err(invalid());
        }
        let amount: f64 = s[..split].parse().map_err(|_| invalid())?;
        let unit = s[split..].trim();
        let scale: f64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kib" => 1024f64,
            "m" | "mib" => 1024f64.powi(2),
            "g" | "gib" => 1024f64.powi(3),
            "t" | "tib" => 1024f64.powi(4),
            "p" | "pib" => 1024f64.powi(5),
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            "pb" => 1e15,
            _ => return Err(invalid()),
        };
        let bytes = amount * scale;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(invalid());
        }
        Ok(Self(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n
                .as_u64()
                .map(Self)
                .ok_or_else(|| de::Error::custom(format!("invalid byte size {n} ({BYTES_HINT})"))),
            Value::String(s) => s.parse().map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "expected a byte size ({BYTES_HINT}), got {}",
                json_type_name(&other)
            ))),
        }
    }
}

/// A percentage from 0 to 100: a number, or a string such as `"90"` or `"90%"`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim().trim_end_matches('%').trim();
        let value: f64 = s.parse().map_err(|_| {
            format!("invalid percentage {text:?} (expected a number from 0 to 100)")
        })?;
        Self::new(value)
    }
}

impl Percent {
    pub fn new(value: f64) -> Result<Self, String> {
        if value.is_finite() && (0.0..=100.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!(
                "percentage {value} is out of range (expected a number from 0 to 100)"
            ))
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", (self.0 * 10.0).round() / 10.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => {
                Self::new(n.as_f64().unwrap_or(f64::NAN)).map_err(de::Error::custom)
            }
            Value::String(s) => s.parse().map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "expected a percentage from 0 to 100, got {}",
                json_type_name(&other)
            ))),
        }
    }
}

/// A list that also accepts a comma-separated string (`"a, b"`), as Ansible's `type: list` does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List<T>(pub Vec<T>);

impl<T> List<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> IntoIterator for List<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for ListVisitor<T> {
            type Value = List<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list or a comma-separated string")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List(items))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<List<T>, E> {
                s.split(',')
                    .map(str::trim)
                    .filter(|part| !part.is_empty())
                    .map(|part| T::deserialize(part.into_deserializer()))
                    .collect::<Result<Vec<T>, E>>()
                    .map(List)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<List<T>, E> {
                T::deserialize(v.into_deserializer()).map(|item| List(vec![item]))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<List<T>, E> {
                T::deserialize(v.into_deserializer()).map(|item| List(vec![item]))
            }
        }

        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

/// An entry that can be written as one string (`"127.0.0.1:22"`) or as a full mapping. The
/// string fills [`Shorthand::FIELD`] and everything else takes the defaults of the mapping's own
/// `Deserialize` derive, so defaults are written once.
pub trait Shorthand: Sized {
    /// The field a one-string entry stands for (`path` for `"/"` meaning `{path: "/"}`).
    const FIELD: &'static str;
}

/// Deserializes `T` from either its shorthand string or its mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct StrOrMap<T>(pub T);

impl<'de, T: Shorthand + Deserialize<'de>> Deserialize<'de> for StrOrMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor<T>(PhantomData<T>);

        impl<'de, T: Shorthand + Deserialize<'de>> de::Visitor<'de> for EntryVisitor<T> {
            type Value = StrOrMap<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a mapping")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrOrMap<T>, E> {
                let entry = std::iter::once((T::FIELD, s));
                T::deserialize(de::value::MapDeserializer::new(entry)).map(StrOrMap)
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<StrOrMap<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOrMap)
            }
        }

        deserializer.deserialize_any(EntryVisitor(PhantomData))
    }
}
