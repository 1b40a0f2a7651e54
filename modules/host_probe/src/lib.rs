//! `host_probe`: reads the state of a host into plain, serializable observations.
//!
//! This crate only reads; it never decides whether what it read is good. The checks of
//! `health_check` judge these observations, and `idempotence_probe` snapshots the same ones
//! before and after a run. Each backend has its own error type whose `Display` says in plain
//! words what went wrong ("no such socket", not a library's debug text), and [`ProbeError`]
//! gathers them for callers that use several backends.
//!
//! - [`systemd`]: the system bus, systemd's D-Bus proxies and the unit / manager queries;
//! - [`engine`] and [`containers`]: the container engine connection and container facts;
//! - [`disk`], [`memory`], [`load`]: statvfs, /proc/meminfo, /proc/loadavg;
//! - [`gpu`]: NVIDIA GPU inventory through NVML or `nvidia-smi`;
//! - [`process`]: this process: its child tools (killed and reaped when given up on) and its
//!   open-files limit.

pub mod accounts;
pub mod containers;
pub mod disk;
pub mod engine;
pub mod error;
pub mod files;
pub mod gpu;
pub mod load;
pub mod memory;
pub mod packages;
pub mod process;
pub mod sysctl;
pub mod systemd;

pub use error::ProbeError;
