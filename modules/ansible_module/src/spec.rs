//! A module's parameters as Ansible's argument spec, derived from its `Args` type's JSON schema
//! (schemars): `MODULE --parameters` prints it, the `unsupported parameter` message lists its
//! names, and the documentation tests compare it with the sidecar doc and the role.
//!
//! Types map as Ansible names them: `str`, `bool`, `int`, `float`, `list` (with `elements`),
//! `dict` (with `suboptions`), and `raw` for values of several shapes (a string or a mapping,
//! a duration as `5s` or `5`). A schema may name its Ansible type with `x-ansible-type` (and
//! `x-ansible-elements`). Defaults, `choices` and `required` come along.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde_json::{Map, Value};

/// The field names of a struct `T`, read from its `Deserialize` impl (serde introspection):
/// no schema needed, in declaration order. Empty for types that are not structs.
pub fn field_names<'de, T: serde::Deserialize<'de>>() -> Vec<&'static str> {
    let mut found = None;
    let _ = T::deserialize(FieldProbe(&mut found));
    found.unwrap_or_default().to_vec()
}

/// An argument spec that knows only the names (for modules without a schema).
pub fn names_only<'de, T: serde::Deserialize<'de>>() -> Map<String, Value> {
    field_names::<T>()
        .into_iter()
        .map(|name| (name.to_string(), Value::Object(Map::new())))
        .collect()
}

/// A deserializer that records the fields a struct asks for, then stops.
struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The argument spec of `T`: option name to `{type, required, default, choices, elements,
/// suboptions}`.
pub fn argument_spec<T: JsonSchema>() -> Map<String, Value> {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    options(schema.as_value())
}

/// The top-level parameter names of `T`, sorted.
pub fn parameter_names<T: JsonSchema>() -> Vec<String> {
    argument_spec::<T>().keys().cloned().collect()
}

fn options(schema: &Value) -> Map<String, Value> {
    let schema = without_null(schema);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            out.insert(
                name.clone(),
                option(property, required.contains(&name.as_str())),
            );
        }
    }
    out
}

/// `T` out of `Option<T>`'s `anyOf: [T, null]` or `type: [t, "null"]`.
fn without_null(schema: &Value) -> &Value {
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        let real: Vec<&Value> = variants
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [only] = real.as_slice() {
            if schema.get("x-ansible-type").is_none() {
                return only;
            }
        }
    }
    schema
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    }
}

fn ansible_type(schema: &Value) -> &'static str {
    if let Some(named) = schema.get("x-ansible-type").and_then(Value::as_str) {
        return match named {
            "str" => "str",
            "bool" => "bool",
            "int" => "int",
            "float" => "float",
            "list" => "list",
            "dict" => "dict",
            "path" => "path",
            _ => "raw",
        };
    }
    match types(schema).as_slice() {
        ["string"] => "str",
        ["boolean"] => "bool",
        ["integer"] => "int",
        ["number"] => "float",
        ["array"] => "list",
        ["object"] => "dict",
        [] if schema.get("properties").is_some() => "dict",
        _ => "raw",
    }
}

fn option(schema: &Value, required: bool) -> Value {
    let default = schema.get("default").cloned();
    let schema = without_null(schema);
    let mut out = Map::new();
    let kind = ansible_type(schema);
    out.insert("type".into(), kind.into());
    if required {
        out.insert("required".into(), true.into());
    }
    if let Some(default) = default.or_else(|| schema.get("default").cloned()) {
        if !default.is_null() {
            out.insert("default".into(), default);
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        out.insert("choices".into(), Value::Array(choices.clone()));
    }
    if kind == "list" {
        if let Some(items) = schema.get("items") {
            let items = without_null(items);
            let elements = items
                .get("x-ansible-elements")
                .and_then(Value::as_str)
                .unwrap_or_else(|| ansible_type(items));
            out.insert("elements".into(), elements.into());
            let sub = options(items);
            if !sub.is_empty() {
                out.insert("suboptions".into(), Value::Object(sub));
            }
        }
    } else {
        let sub = options(schema);
        if !sub.is_empty() {
            out.insert("suboptions".into(), Value::Object(sub));
        }
    }
    Value::Object(out)
}
