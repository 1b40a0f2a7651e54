//! The module's top-level parameters, the settings every check entry shares, and the
//! helpers the check kinds' `params.rs` files use. Each kind's own parameters are in
//! `checks/<kind>/params.rs`.

use crate::checks::container::params::{AllHealthyParams, ContainerParams, DockerHost};
use crate::checks::disk::params::DiskParams;
use crate::checks::gpu::params::GpuParams;
use crate::checks::http::params::HttpParams;
use crate::checks::load::params::LoadParams;
use crate::checks::memory::params::MemoryParams;
use crate::checks::systemd::params::{SystemStateParams, SystemdParams};
use crate::checks::tcp::params::TcpParams;
use ansible_module::types::{Duration, List, StrOrMap};
use serde::Deserialize;
use std::fmt;

/// Every top-level parameter, for `--help` and the `unsupported parameter` message.
pub const PARAMETERS: &[&str] = &[
    "disks",
    "memory",
    "load",
    "tcp",
    "http",
    "gpus",
    "systemd",
    "system_state",
    "systemd_bus",
    "containers",
    "containers_all_healthy",
    "docker_host",
    "timeout",
    "deadline",
    "wait_timeout",
    "interval",
    "summary_path",
    "junit_path",
    "prometheus_path",
];

/// Header values may carry credentials (`Authorization`), `secret_query` values are tokens:
/// never echoed back.
pub const NO_LOG: &[&str] = &["headers", "secret_query"];

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub disks: Option<List<StrOrMap<DiskParams>>>,
    #[serde(default)]
    pub memory: Option<MemoryParams>,
    #[serde(default)]
    pub load: Option<LoadParams>,
    #[serde(default)]
    pub tcp: Option<List<StrOrMap<TcpParams>>>,
    #[serde(default)]
    pub http: Option<List<StrOrMap<HttpParams>>>,
    #[serde(default)]
    pub gpus: Option<GpuParams>,
    #[serde(default)]
    pub systemd: Option<List<StrOrMap<SystemdParams>>>,
    #[serde(default)]
    pub system_state: Option<StrOrMap<SystemStateParams>>,
    /// The D-Bus address of the system bus the systemd checks use.
    #[serde(default)]
    pub systemd_bus: Option<String>,
    #[serde(default)]
    pub containers: Option<List<StrOrMap<ContainerParams>>>,
    #[serde(default)]
    pub containers_all_healthy: Option<Toggle<AllHealthyParams>>,
    /// The container engine's unix socket; defaults to `DOCKER_HOST` or /var/run/docker.sock.
    #[serde(default)]
    pub docker_host: Option<DockerHost>,
    /// The per-check timeout for checks that set none.
    #[serde(default)]
    #[schemars(extend("default" = "5s"))]
    pub timeout: Option<Duration>,
    /// The limit for the whole run, waiting included. Defaults to 60s plus `wait_timeout`.
    #[serde(default)]
    #[schemars(extend("default" = "60s"))]
    pub deadline: Option<Duration>,
    /// How long to keep re-running failed checks until every mandatory one passes.
    #[serde(default)]
    pub wait_timeout: Option<Duration>,
    /// The pause between attempts while waiting.
    #[serde(default)]
    #[schemars(extend("default" = "2s"))]
    pub interval: Option<Duration>,
    /// Where to write the host's summary document (JSON).
    #[serde(default)]
    pub summary_path: Option<std::path::PathBuf>,
    /// Where to write JUnit XML, one testcase per check.
    #[serde(default)]
    pub junit_path: Option<std::path::PathBuf>,
    /// Where to write a node_exporter textfile-collector file.
    #[serde(default)]
    pub prometheus_path: Option<std::path::PathBuf>,
}

/// Declares a check's parameter struct with the settings every check kind shares appended:
/// `name`, `mandatory` (default true; false with a leading `advisory`) and `timeout`. (serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, hence a macro.)
macro_rules! check_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $crate::args::check_params!(@mandatory_by_default "crate::args::yes" $(#[$meta])* pub struct $name { $($body)* });
    };
    // Resource checks (memory, load) are advice unless asked: see docs/deployment/health-checks.md.
    (advisory $(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $crate::args::check_params!(@mandatory_by_default "crate::args::no" $(#[$meta])* pub struct $name { $($body)* });
    };
    (@mandatory_by_default $default:literal $(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($body)*
            /// How the check is named in the results; defaults to what it checks.
            #[serde(default)]
            pub name: Option<String>,
            /// A failed mandatory check fails the task; an advisory one only warns.
            #[serde(default = $default, deserialize_with = "ansible_module::types::boolean")]
            pub mandatory: bool,
            #[serde(default)]
            pub timeout: Option<ansible_module::types::Duration>,
        }

        impl $name {
            pub fn common(&self) -> $crate::args::Common<'_> {
                $crate::args::Common { name: self.name.as_deref(), mandatory: self.mandatory, timeout: self.timeout }
            }
        }
    };
}

/// The shared settings of one check entry.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    pub name: Option<&'a str>,
    pub mandatory: bool,
    pub timeout: Option<Duration>,
}

pub(crate) use check_params;

/// `true`, for `#[serde(default = "crate::args::yes")]`.
pub(crate) fn yes() -> bool {
    true
}

/// `false`, for the advisory-by-default checks' `mandatory`.
pub(crate) fn no() -> bool {
    false
}

/// A check that is switched on by `true` (with its defaults) or by a mapping of its settings,
/// and off by `false` or `null`; Ansible's boolean spellings (`yes`, `"on"`, ...) are accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Toggle<T>(pub Option<T>);

impl<T: schemars::JsonSchema> schemars::JsonSchema for Toggle<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Toggle_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// The settings' mapping, marked `raw`: `true`/`false` switch the check with defaults.
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ansible_module::types::raw_schema_of::<T>(generator)
    }
}

impl<T> Toggle<T> {
    pub fn enabled(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: Default + Deserialize<'de>> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ToggleVisitor<T>(std::marker::PhantomData<T>);

        impl<T> ToggleVisitor<T> {
            fn switch<E: serde::de::Error>(value: serde_json::Value) -> Result<Toggle<T>, E>
            where
                T: Default,
            {
                ansible_module::types::parse_bool_value(&value)
                    .map(|on| Toggle(on.then(T::default)))
                    .map_err(E::custom)
            }
        }

        impl<'de, T: Default + Deserialize<'de>> serde::de::Visitor<'de> for ToggleVisitor<T> {
            type Value = Toggle<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or a mapping")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Toggle<T>, E> {
                Ok(Toggle(v.then(T::default)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Toggle<T>, E> {
                Self::switch(v.into())
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Toggle<T>, E> {
                Self::switch(v.into())
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Toggle<T>, E> {
                Self::switch(v.into())
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Toggle<T>, E> {
                Ok(Toggle(None))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Toggle<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|settings| Toggle(Some(settings)))
            }
        }

        deserializer.deserialize_any(ToggleVisitor(std::marker::PhantomData))
    }
}
