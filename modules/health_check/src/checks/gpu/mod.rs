//! `gpu`: NVIDIA GPUs (count, driver version, temperature, ECC errors, retired pages and row
//! remapping, throttling), read by `host_probe::gpu` through NVML or `nvidia-smi`. A host
//! without the driver gets one clear `skip` (or `fail` with `required: true`).

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::gpu::{GpuError, Inventory};
use host_probe::ProbeError;
use params::GpuParams;
use std::time::SystemTime;

/// How far below the driver's slowdown threshold a GPU may run when `max_temperature_c` is not
/// set.
pub const DEFAULT_MARGIN_C: u32 = 5;

/// The GPU check.
#[derive(Debug, Clone, Copy)]
pub struct Gpu;

impl Check for Gpu {
    const KIND: Kind = Kind::Gpu;
    type Params = GpuParams;
    type Observation = Inventory;

    fn expected(spec: &GpuParams) -> String {
        let mut parts = vec![format!("at least {} GPU(s)", spec.min_count)];
        parts.push(match spec.max_temperature_c {
            Some(max) => format!("temperature <= {max}C"),
            None => format!("temperature <= slowdown threshold - {DEFAULT_MARGIN_C}C"),
        });
        parts.push("no uncorrected ECC errors, no pending page retirement or row remapping".into());
        if let Some(min) = &spec.min_driver_version {
            parts.push(format!("driver >= {min}"));
        }
        parts.join(", ")
    }

    async fn observe(&self, _spec: &GpuParams) -> Result<Inventory, ProbeError> {
        Ok(host_probe::gpu::read_inventory().await?)
    }

    fn judge(spec: &GpuParams, inventory: &Inventory, _now: SystemTime) -> Verdict {
        judge::judge(spec, inventory)
    }

    /// No driver is a finding about the host: skip, or fail when GPUs are required.
    fn failure(spec: &GpuParams, error: &ProbeError) -> Verdict {
        match error {
            ProbeError::Gpu(GpuError::Unavailable(why)) => judge::unavailable(spec, why.clone()),
            other => Verdict::fail(other.observed(), other.to_string()),
        }
    }
}
