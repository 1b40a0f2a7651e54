use serde::Serialize;
use serde_json::{Map, Value};

/// What replaces a `no_log` parameter's value in `invocation.module_args`, as Ansible writes it.
pub const NO_LOG_PLACEHOLDER: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// The one JSON object a module prints: Ansible's common keys plus the module's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    failed: bool,
    changed: bool,
    msg: String,
    warnings: Vec<String>,
    deprecations: Vec<Value>,
    diff: Option<Value>,
    data: Map<String, Value>,
    invocation: Option<Value>,
}

impl Response {
    /// A successful, unchanged result.
    pub fn ok(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            ..Self::default()
        }
    }

    /// A failed result.
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            failed: true,
            msg: msg.into(),
            ..Self::default()
        }
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }

    pub fn is_changed(&self) -> bool {
        self.changed
    }

    pub fn msg(&self) -> &str {
        &self.msg
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A module key, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    pub fn set_failed(&mut self, failed: bool) -> &mut Self {
        self.failed = failed;
        self
    }

    pub fn set_changed(&mut self, changed: bool) -> &mut Self {
        self.changed = changed;
        self
    }

    pub fn set_msg(&mut self, msg: impl Into<String>) -> &mut Self {
        self.msg = msg.into();
        self
    }

    /// Adds a line to `warnings`; Ansible shows each one after the task.
    pub fn warn(&mut self, warning: impl Into<String>) -> &mut Self {
        self.warnings.push(warning.into());
        self
    }

    /// Adds a deprecation notice.
    pub fn deprecate(&mut self, msg: impl Into<String>, version: impl Into<String>) -> &mut Self {
        let mut entry = Map::new();
        entry.insert("msg".into(), Value::String(msg.into()));
        entry.insert("version".into(), Value::String(version.into()));
        self.deprecations.push(Value::Object(entry));
        self
    }

    /// Sets `diff` (`{before, after}`), shown by `--diff`.
    pub fn set_diff(&mut self, before: Value, after: Value) -> &mut Self {
        let mut diff = Map::new();
        diff.insert("before".into(), before);
        diff.insert("after".into(), after);
        self.diff = Some(Value::Object(diff));
        self
    }

    /// Sets a module key. A value that cannot be serialized becomes a failed result rather than
    /// a panic.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Serialize) -> &mut Self {
        let key = key.into();
        match serde_json::to_value(value) {
            Ok(value) => {
                self.data.insert(key, value);
            }
            Err(err) => {
                self.failed = true;
                self.msg = format!("internal error: cannot serialize result key '{key}': {err}");
            }
        }
        self
    }

    pub(crate) fn set_invocation(&mut self, module_args: Value) {
        let mut invocation = Map::new();
        invocation.insert("module_args".into(), module_args);
        self.invocation = Some(Value::Object(invocation));
    }

    /// Masks every string of the result with the run's secrets ([`crate::secrets`]).
    pub(crate) fn scrub(&mut self) {
        self.msg = crate::secrets::mask(&self.msg);
        for warning in &mut self.warnings {
            *warning = crate::secrets::mask(warning);
        }
        for value in self.data.values_mut().chain(self.deprecations.iter_mut()) {
            crate::secrets::mask_value(value);
        }
        if let Some(diff) = &mut self.diff {
            crate::secrets::mask_value(diff);
        }
        if let Some(invocation) = &mut self.invocation {
            crate::secrets::mask_value(invocation);
        }
    }

    /// The result as Ansible reads it.
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        out.insert("changed".into(), Value::Bool(self.changed));
        out.insert("failed".into(), Value::Bool(self.failed));
        out.insert("msg".into(), Value::String(self.msg.clone()));
        out.insert(
            "warnings".into(),
            Value::Array(self.warnings.iter().cloned().map(Value::String).collect()),
        );
        if !self.deprecations.is_empty() {
            out.insert(
                "deprecations".into(),
                Value::Array(self.deprecations.clone()),
            );
        }
        if let Some(diff) = &self.diff {
            out.insert("diff".into(), diff.clone());
        }
        for (key, value) in &self.data {
            // The common keys above are the contract's; a module cannot shadow them.
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        if let Some(invocation) = &self.invocation {
            out.insert("invocation".into(), invocation.clone());
        }
        Value::Object(out)
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

/// A copy of `params` with the value of every key named in `no_log` replaced, at any depth.
pub fn mask_no_log(params: &Value, no_log: &[&str]) -> Value {
    match params {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let masked = if no_log.contains(&key.as_str()) && !value.is_null() {
                        Value::String(NO_LOG_PLACEHOLDER.into())
                    } else {
                        mask_no_log(value, no_log)
                    };
                    (key.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| mask_no_log(v, no_log)).collect()),
        other => other.clone(),
    }
}

/// Collects the string values found under `no_log` keys, at any depth.
pub(crate) fn collect_no_log_values(params: &Value, no_log: &[&str], out: &mut Vec<String>) {
    match params {
        Value::Object(map) => {
            for (key, value) in map {
                if no_log.contains(&key.as_str()) {
                    collect_strings(value, out);
                } else {
                    collect_no_log_values(value, no_log, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_no_log_values(v, no_log, out)),
        _ => {}
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
