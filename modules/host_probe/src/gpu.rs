//! NVIDIA GPU inventory through NVML (`nvml-wrapper`), with `nvidia-smi` as the fallback where
//! NVML cannot be loaded.
//!
//! NVML is the driver's `libnvidia-ml.so.1`, loaded at run time. A statically linked binary
//! (the musl build this project ships) cannot load shared libraries at all, so there the same
//! readings come from the driver's own `nvidia-smi`; a dynamically linked build uses NVML
//! directly. A host without the driver gives [`GpuError::Unavailable`] with the reason, never a
//! crash.
//!
//! `nvidia-smi` runs through [`crate::process::output`]: a caller that gives up (the check's
//! timeout) kills it and everything it forked, and a hung `nvidia-smi` is never left behind.

use serde::Serialize;

/// What one GPU reported. `None` where the device or driver does not support the reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reading {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub temperature_c: Option<u32>,
    pub slowdown_c: Option<u32>,
    pub ecc_uncorrected_volatile: Option<u64>,
    pub retired_pages_pending: Option<bool>,
    pub remapped_rows_pending: Option<bool>,
    pub remapped_rows_failed: Option<bool>,
    /// Active clock throttle reasons that mean trouble (HW slowdown, thermal, power brake).
    pub throttle: Vec<String>,
}

/// The host's GPUs as one driver saw them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    pub source: &'static str,
    pub driver_version: String,
    pub gpus: Vec<Reading>,
}

/// Why no inventory could be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// No driver library, or a library but no driver: a finding about the host.
    #[error("{0}")]
    Unavailable(String),
    /// The blocking task that read the GPUs did not finish.
    #[error("GPU probe failed: {0}")]
    Task(String),
}

/// Reads every GPU through NVML, or through nvidia-smi when NVML cannot be loaded. NVML runs
/// on the blocking pool (it blocks for up to seconds while it wakes the devices); nvidia-smi is
/// a child process that is killed and reaped when this future is dropped.
pub async fn read_inventory() -> Result<Inventory, GpuError> {
    if cfg!(target_feature = "crt-static") {
        // A static binary has no dynamic loader: NVML's library cannot be loaded, ever.
        return smi::read().await.map_err(|smi_error| {
            GpuError::Unavailable(format!(
                "no NVIDIA driver found: {smi_error} (this static build reads GPUs through nvidia-smi)"
            ))
        });
    }
    let nvml = tokio::task::spawn_blocking(nvml::read)
        .await
        .map_err(|err| GpuError::Task(err.to_string()))?;
    match nvml {
        Ok(inventory) => Ok(inventory),
        Err(nvml::Failure::CannotLoad(load_error)) => smi::read().await.map_err(|smi_error| {
            GpuError::Unavailable(format!(
                "no NVIDIA driver found: NVML {load_error}; {smi_error}"
            ))
        }),
        Err(nvml::Failure::Driver(why)) => Err(GpuError::Unavailable(why)),
    }
}

mod nvml {
    use super::{Inventory, Reading};
    use nvml_wrapper::bitmasks::device::ThrottleReasons;
    use nvml_wrapper::enum_wrappers::device::{
        EccCounter, MemoryError, TemperatureSensor, TemperatureThreshold,
    };
    use nvml_wrapper::enums::device::SampleValue;
    use nvml_wrapper::error::NvmlError;
    use nvml_wrapper::struct_wrappers::device::FieldValueSample;
    use nvml_wrapper::structs::device::FieldId;
    use nvml_wrapper::Nvml;

    /// NVML's field ids for row remapping (nvml.h: NVML_FI_DEV_REMAPPED_PENDING/FAILURE).
    const REMAPPED_PENDING: FieldId = FieldId(144);
    const REMAPPED_FAILURE: FieldId = FieldId(145);

    pub enum Failure {
        /// The library itself could not be loaded: the caller may try nvidia-smi.
        CannotLoad(String),
        /// The library loaded and said why it cannot help.
        Driver(String),
    }

    pub fn read() -> Result<Inventory, Failure> {
        let nvml = Nvml::init().map_err(|err| match err {
            NvmlError::LibloadingError(e) => {
                Failure::CannotLoad(format!("library libnvidia-ml.so.1 cannot be loaded: {e}"))
            }
            NvmlError::LibraryNotFound => {
                Failure::CannotLoad("library libnvidia-ml.so.1 not found".into())
            }
            NvmlError::DriverNotLoaded => Failure::Driver(
                "NVML is installed but the NVIDIA kernel driver is not loaded (DriverNotLoaded)"
                    .into(),
            ),
            NvmlError::NoPermission => {
                Failure::Driver("NVML: no permission to talk to the NVIDIA driver".into())
            }
            other => Failure::Driver(format!("NVML initialisation failed: {other}")),
        })?;
        let fail = |what: &str, err: NvmlError| Failure::Driver(format!("NVML {what}: {err}"));
        let driver_version = nvml
            .sys_driver_version()
            .map_err(|e| fail("driver version", e))?;
        let count = nvml.device_count().map_err(|e| fail("device count", e))?;
        let mut gpus = Vec::new();
        for index in 0..count {
            let device = nvml
                .device_by_index(index)
                .map_err(|e| fail(&format!("device {index}"), e))?;
            let remap = device
                .field_values_for(&[REMAPPED_PENDING, REMAPPED_FAILURE])
                .ok();
            let remap_flag = |i: usize| -> Option<bool> {
                let sample: &Result<FieldValueSample, NvmlError> = remap.as_ref()?.get(i)?;
                match sample.as_ref().ok()?.value.as_ref().ok()? {
                    SampleValue::U32(v) => Some(*v != 0),
                    SampleValue::U64(v) => Some(*v != 0),
                    SampleValue::I64(v) => Some(*v != 0),
                    SampleValue::F64(v) => Some(*v != 0.0),
                }
            };
            gpus.push(Reading {
                index,
                name: device.name().unwrap_or_else(|_| "unknown".into()),
                uuid: device.uuid().unwrap_or_default(),
                temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
                slowdown_c: device
                    .temperature_threshold(TemperatureThreshold::Slowdown)
                    .ok(),
                // NotSupported on GPUs without ECC: no reading, not a failure.
                ecc_uncorrected_volatile: device
                    .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
                    .ok(),
                retired_pages_pending: device.are_pages_pending_retired().ok(),
                remapped_rows_pending: remap_flag(0),
                remapped_rows_failed: remap_flag(1),
                throttle: device
                    .current_throttle_reasons()
                    .map(troubling_reasons)
                    .unwrap_or_default(),
            });
        }
        Ok(Inventory {
            source: "nvml",
            driver_version,
            gpus,
        })
    }

    fn troubling_reasons(reasons: ThrottleReasons) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, name) in [
            (ThrottleReasons::HW_SLOWDOWN, "hw_slowdown"),
            (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
            (
                ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
                "hw_power_brake_slowdown",
            ),
            (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        ] {
            if reasons.contains(flag) {
                out.push(name.to_string());
            }
        }
        out
    }
}

pub mod smi {
    use super::{Inventory, Reading};
    use crate::process;
    use std::process::Output;
    use tokio::process::Command;

    const QUERY: &str = "index,name,uuid,driver_version,temperature.gpu,\
        ecc.errors.uncorrected.volatile.total,retired_pages.pending,\
        clocks_throttle_reasons.hw_slowdown,clocks_throttle_reasons.hw_thermal_slowdown,\
        clocks_throttle_reasons.hw_power_brake_slowdown,clocks_throttle_reasons.sw_thermal_slowdown";

    /// Runs `nvidia-smi ARGS` as a child that dies with the caller's patience.
    async fn nvidia_smi(args: &[&str]) -> std::io::Result<Output> {
        let mut command = Command::new("nvidia-smi");
        command.args(args);
        process::output(command).await
    }

    pub async fn read() -> Result<Inventory, String> {
        let output = nvidia_smi(&["--query-gpu", QUERY, "--format=csv,noheader,nounits"])
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => "nvidia-smi not found on PATH".to_string(),
                _ => format!("nvidia-smi cannot run: {e}"),
            })?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stdout);
            let err = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "nvidia-smi failed: {}",
                first_line(&format!("{said}{err}"))
            ));
        }
        let mut inventory = parse_query(&String::from_utf8_lossy(&output.stdout))?;
        // Slowdown thresholds and row remapping are not in --query-gpu on every driver.
        if let Ok(out) = nvidia_smi(&["-q", "-d", "TEMPERATURE"]).await {
            let thresholds = parse_slowdown(&String::from_utf8_lossy(&out.stdout));
            for (gpu, threshold) in inventory.gpus.iter_mut().zip(thresholds) {
                gpu.slowdown_c = threshold;
            }
        }
        if let Ok(out) = nvidia_smi(&[
            "--query-remapped-rows=remapped_rows.pending,remapped_rows.failure",
            "--format=csv,noheader",
        ])
        .await
        {
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                for (gpu, line) in inventory.gpus.iter_mut().zip(text.lines()) {
                    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
                    gpu.remapped_rows_pending = fields.first().and_then(|f| flag(f));
                    gpu.remapped_rows_failed = fields.get(1).and_then(|f| flag(f));
                }
            }
        }
        Ok(inventory)
    }

    fn first_line(text: &str) -> String {
        text.lines().next().unwrap_or("").trim().to_string()
    }

    /// Parses `--query-gpu ... --format=csv,noheader,nounits`.
    pub fn parse_query(text: &str) -> Result<Inventory, String> {
        let mut gpus = Vec::new();
        let mut driver_version = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 11 {
                return Err(format!("nvidia-smi printed an unexpected line: {line:?}"));
            }
            driver_version = f[3].to_string();
            let throttle = [
                (f[7], "hw_slowdown"),
                (f[8], "hw_thermal_slowdown"),
                (f[9], "hw_power_brake_slowdown"),
                (f[10], "sw_thermal_slowdown"),
            ]
            .iter()
            .filter(|(value, _)| *value == "Active")
            .map(|(_, name)| name.to_string())
            .collect();
            gpus.push(Reading {
                index: f[0]
                    .parse()
                    .map_err(|_| format!("bad GPU index {:?}", f[0]))?,
                name: f[1].to_string(),
                uuid: f[2].to_string(),
                temperature_c: f[4].parse().ok(),
                slowdown_c: None,
                ecc_uncorrected_volatile: f[5].parse().ok(),
                retired_pages_pending: flag(f[6]),
                remapped_rows_pending: None,
                remapped_rows_failed: None,
                throttle,
            });
        }
        Ok(Inventory {
            source: "nvidia-smi",
            driver_version,
            gpus,
        })
    }

    /// `GPU Slowdown Temp : 87 C` per GPU, in order, from `nvidia-smi -q -d TEMPERATURE`.
    pub fn parse_slowdown(text: &str) -> Vec<Option<u32>> {
        text.lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "GPU Slowdown Temp")
                    .then(|| value.trim().trim_end_matches('C').trim().parse().ok())
            })
            .collect()
    }

    fn flag(value: &str) -> Option<bool> {
        match value {
            "Yes" | "yes" | "1" | "Active" => Some(true),
            "No" | "no" | "0" | "Not Active" => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SMI: &str = "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 550.54.15, 41, 0, No, Not Active, Not Active, Not Active, Not Active\n\
                       1, NVIDIA H100 80GB HBM3, GPU-bbbb, 550.54.15, 86, 2, Yes, Active, Not Active, Not Active, Not Active\n";

    #[test]
    fn nvidia_smi_output_is_parsed() {
        let inv = smi::parse_query(SMI).unwrap();
        assert_eq!(inv.driver_version, "550.54.15");
        assert_eq!(inv.gpus.len(), 2);
        assert_eq!(inv.gpus[1].temperature_c, Some(86));
        assert_eq!(inv.gpus[1].ecc_uncorrected_volatile, Some(2));
        assert_eq!(inv.gpus[1].retired_pages_pending, Some(true));
        assert_eq!(inv.gpus[1].throttle, vec!["hw_slowdown".to_string()]);
        assert!(smi::parse_query("garbage").is_err());
        let thresholds = smi::parse_slowdown(
            "    GPU Shutdown Temp                 : 92 C\n    GPU Slowdown Temp                 : 87 C\n    GPU Slowdown Temp : N/A\n",
        );
        assert_eq!(thresholds, vec![Some(87), None]);
    }
}
