//! The `gpus` setting: how many NVIDIA GPUs, which driver, which temperature.

use crate::args::check_params;
use serde::Deserialize;
use std::fmt;

check_params! {
/// NVIDIA GPUs, all devices judged as one check.
pub struct GpuParams {
    #[serde(default = "one", deserialize_with = "ansible_module::types::number")]
    pub min_count: u32,
    /// Defaults to each device's slowdown threshold minus a margin.
    #[serde(default, deserialize_with = "ansible_module::types::optional_number")]
    pub max_temperature_c: Option<u32>,
    #[serde(default)]
    pub min_driver_version: Option<DriverVersion>,
    /// Without a driver: `fail` when true, `skip` when false.
    #[serde(default, deserialize_with = "ansible_module::types::boolean")]
    pub required: bool,
}
}

fn one() -> u32 {
    1
}

/// A dotted driver version such as `535.104.05`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion(pub String);

impl fmt::Display for DriverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DriverVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A YAML `535.54` arrives as a number.
        let text = match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(serde::de::Error::custom(
                    "expected a driver version such as \"535.104.05\"",
                ))
            }
        };
        let valid = !text.is_empty()
            && text
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if valid {
            Ok(Self(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid driver version {text:?} (expected digits and dots, e.g. \"535.104.05\")"
            )))
        }
    }
}
ansible_module::string_schema!(DriverVersion);
