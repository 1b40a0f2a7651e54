//! The `load` setting: the most load per CPU, over which window.

use crate::args::check_params;
use serde::Deserialize;

check_params! {
pub struct LoadParams {
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
