//! The `load` setting: the most load per CPU, over which window.

use crate::args::check_params;
use serde::Deserialize;

check_params! {
advisory pub struct LoadParams {
    #[serde(
        default = "default_max_per_cpu",
        deserialize_with = "ansible_module::types::number"
    )]
    pub max_per_cpu: f64,
    #[serde(default)]
    pub window: LoadWindow,
}
}

fn default_max_per_cpu() -> f64 {
    2.0
}

/// Which load average: over 1, 5 or 15 minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadWindow {
    One,
    #[default]
    Five,
    Fifteen,
}

impl LoadWindow {
    pub fn minutes(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Five => 5,
            Self::Fifteen => 15,
        }
    }
}

impl<'de> Deserialize<'de> for LoadWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let minutes: u64 = ansible_module::types::number(deserializer)?;
        match minutes {
            1 => Ok(Self::One),
            5 => Ok(Self::Five),
            15 => Ok(Self::Fifteen),
            other => Err(serde::de::Error::custom(format!(
                "invalid load window {other} (expected 1, 5 or 15 minutes)"
            ))),
        }
    }
}

impl schemars::JsonSchema for LoadWindow {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LoadWindow".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "integer", "enum": [1, 5, 15]})
    }
}

impl serde::Serialize for LoadWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.minutes())
    }
}
