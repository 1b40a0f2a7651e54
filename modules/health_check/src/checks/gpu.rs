//! NVIDIA GPU health through NVML (`nvml-wrapper`), with `nvidia-smi` as the fallback where
//! NVML cannot be loaded.
//!
//! NVML is the driver's `libnvidia-ml.so.1`, loaded at run time. A statically linked module
//! (the musl build this project ships) cannot load shared libraries at all, so there the same
//! readings come from the driver's own `nvidia-smi`; a dynamically linked build uses NVML
//! directly. Either way the readings are judged by one function. A host without the driver gets
//! one clear `skip` (or `fail` with `required: true`), never a crash.

use crate::args::GpuCheck;
use crate::check::{CheckMeta, Outcome, Planned, Status};
use serde_json::{json, Value};

/// How far below the driver's slowdown threshold a GPU may run when `max_temperature_c` is not
/// set.
pub const DEFAULT_MARGIN_C: u32 = 5;

/// What one GPU reported. `None` where the device or driver does not support the reading.
#[derive(Debug, Clone, Default, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub source: &'static str,
    pub driver_version: String,
    pub gpus: Vec<Reading>,
}

/// Why no reading could be taken: no driver library, or a library but no driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

pub fn plan(spec: GpuCheck, meta: CheckMeta) -> Planned {
    let work = async move {
        // NVML and nvidia-smi both block, NVML for up to seconds while it wakes the devices.
        match tokio::task::spawn_blocking(read_inventory).await {
            Ok(Ok(inventory)) => judge(&spec, &inventory),
            Ok(Err(Unavailable(why))) => unavailable(&spec, why),
            Err(err) => Outcome::fail("no reading", format!("GPU probe failed: {err}")),
        }
    };
    Planned {
        meta,
        work: Box::pin(work),
    }
}

pub fn expected(spec: &GpuCheck) -> String {
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

/// The outcome for a host where no driver answered.
pub fn unavailable(spec: &GpuCheck, why: String) -> Outcome {
    let status = if spec.required {
        Status::Fail
    } else {
        Status::Skip
    };
    let message = if spec.required {
        format!("{why}; gpus.required is true")
    } else {
        format!("{why}; skipped (set gpus.required: true to fail instead)")
    };
    Outcome::new(status, "no NVIDIA driver", message)
}

/// Reads every GPU through NVML, or through nvidia-smi when NVML cannot be loaded.
pub fn read_inventory() -> Result<Inventory, Unavailable> {
    if cfg!(target_feature = "crt-static") {
        // A static binary has no dynamic loader: NVML's library cannot be loaded, ever.
        return smi::read().map_err(|smi_error| {
            Unavailable(format!(
                "no NVIDIA driver found: {smi_error} (this static build reads GPUs through nvidia-smi)"
            ))
        });
    }
    match nvml::read() {
        Ok(inventory) => Ok(inventory),
        Err(nvml::Failure::CannotLoad(load_error)) => smi::read().map_err(|smi_error| {
            Unavailable(format!(
                "no NVIDIA driver found: NVML {load_error}; {smi_error}"
            ))
        }),
        Err(nvml::Failure::Driver(why)) => Err(Unavailable(why)),
    }
}

/// Compares the readings with the check's limits.
pub fn judge(spec: &GpuCheck, inventory: &Inventory) -> Outcome {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let count = inventory.gpus.len();
    if count < spec.min_count as usize {
        problems.push(format!(
            "{count} GPU(s) found, expected at least {}",
            spec.min_count
        ));
    }
    if let Some(min) = &spec.min_driver_version {
        if compare_versions(&inventory.driver_version, &min.0) == std::cmp::Ordering::Less {
            problems.push(format!(
                "driver {} is older than {min}",
                inventory.driver_version
            ));
        }
    }
    let mut devices = Vec::new();
    for gpu in &inventory.gpus {
        let label = format!("GPU {} ({})", gpu.index, gpu.name);
        let limit = spec.max_temperature_c.or_else(|| {
            gpu.slowdown_c
                .map(|slowdown| slowdown.saturating_sub(DEFAULT_MARGIN_C))
        });
        if let (Some(temperature), Some(limit)) = (gpu.temperature_c, limit) {
            if temperature > limit {
                problems.push(format!("{label}: temperature {temperature}C > {limit}C"));
            }
        }
        match gpu.ecc_uncorrected_volatile {
            Some(errors) if errors > 0 => {
                problems.push(format!(
                    "{label}: {errors} uncorrected ECC error(s) since boot"
                ));
            }
            _ => {}
        }
        if gpu.retired_pages_pending == Some(true) {
            problems.push(format!("{label}: page retirement pending (reset the GPU)"));
        }
        if gpu.remapped_rows_pending == Some(true) {
            problems.push(format!("{label}: row remapping pending (reset the GPU)"));
        }
        if gpu.remapped_rows_failed == Some(true) {
            problems.push(format!("{label}: row remapping failed"));
        }
        if !gpu.throttle.is_empty() {
            notes.push(format!("{label}: throttled ({})", gpu.throttle.join(", ")));
        }
        devices.push(json!({
            "index": gpu.index,
            "name": gpu.name,
            "uuid": gpu.uuid,
            "temperature_c": gpu.temperature_c,
            "temperature_limit_c": limit,
            "slowdown_c": gpu.slowdown_c,
            "ecc_uncorrected_volatile": gpu.ecc_uncorrected_volatile,
            "retired_pages_pending": gpu.retired_pages_pending,
            "remapped_rows_pending": gpu.remapped_rows_pending,
            "remapped_rows_failed": gpu.remapped_rows_failed,
            "throttle_reasons": gpu.throttle,
        }));
    }
    let temperatures: Vec<String> = inventory
        .gpus
        .iter()
        .map(|g| {
            g.temperature_c
                .map_or_else(|| "?".into(), |t| format!("{t}C"))
        })
        .collect();
    let observed = format!(
        "{count} GPU(s), driver {}, temperatures [{}] (via {})",
        inventory.driver_version,
        temperatures.join(", "),
        inventory.source
    );
    let (status, message) = if !problems.is_empty() {
        let mut all = problems;
        all.extend(notes);
        (Status::Fail, all.join("; "))
    } else if !notes.is_empty() {
        (Status::Warn, notes.join("; "))
    } else {
        (Status::Pass, format!("{count} GPU(s) healthy"))
    };
    Outcome::new(status, observed, message)
        .detail("source", inventory.source)
        .detail("driver_version", inventory.driver_version.clone())
        .detail("count", count)
        .detail("devices", Value::Array(devices))
}

/// Compares dotted versions numerically ("535.104.05" > "535.54").
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| p.trim().parse().unwrap_or(0))
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let ordering = a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0));
        if ordering != std::cmp::Ordering::Equal {
            return ordering;
        }
    }
    std::cmp::Ordering::Equal
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

mod smi {
    use super::{Inventory, Reading};
    use std::process::Command;

    const QUERY: &str = "index,name,uuid,driver_version,temperature.gpu,\
        ecc.errors.uncorrected.volatile.total,retired_pages.pending,\
        clocks_throttle_reasons.hw_slowdown,clocks_throttle_reasons.hw_thermal_slowdown,\
        clocks_throttle_reasons.hw_power_brake_slowdown,clocks_throttle_reasons.sw_thermal_slowdown";

    pub fn read() -> Result<Inventory, String> {
        let output = Command::new("nvidia-smi")
            .args(["--query-gpu", QUERY, "--format=csv,noheader,nounits"])
            .output()
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
        if let Ok(out) = Command::new("nvidia-smi")
            .args(["-q", "-d", "TEMPERATURE"])
            .output()
        {
            let thresholds = parse_slowdown(&String::from_utf8_lossy(&out.stdout));
            for (gpu, threshold) in inventory.gpus.iter_mut().zip(thresholds) {
                gpu.slowdown_c = threshold;
            }
        }
        if let Ok(out) = Command::new("nvidia-smi")
            .args([
                "--query-remapped-rows=remapped_rows.pending,remapped_rows.failure",
                "--format=csv,noheader",
            ])
            .output()
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

    fn spec(json: Value) -> GpuCheck {
        serde_json::from_value(json).unwrap()
    }

    const SMI: &str = "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 550.54.15, 41, 0, No, Not Active, Not Active, Not Active, Not Active\n\
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

    #[test]
    fn judging_finds_each_problem() {
        let mut inv = smi::parse_query(SMI).unwrap();
        inv.gpus[0].slowdown_c = Some(87);
        inv.gpus[1].slowdown_c = Some(87);
        let out = judge(&spec(json!({})), &inv);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.message,
            "GPU 1 (NVIDIA H100 80GB HBM3): temperature 86C > 82C; \
             GPU 1 (NVIDIA H100 80GB HBM3): 2 uncorrected ECC error(s) since boot; \
             GPU 1 (NVIDIA H100 80GB HBM3): page retirement pending (reset the GPU); \
             GPU 1 (NVIDIA H100 80GB HBM3): throttled (hw_slowdown)"
        );
        inv.gpus.truncate(1);
        assert_eq!(judge(&spec(json!({})), &inv).status, Status::Pass);
        let out = judge(
            &spec(json!({"min_count": 2, "min_driver_version": "555.1"})),
            &inv,
        );
        assert_eq!(
            out.message,
            "1 GPU(s) found, expected at least 2; driver 550.54.15 is older than 555.1"
        );
        let out = judge(&spec(json!({"max_temperature_c": 40})), &inv);
        assert_eq!(
            out.message,
            "GPU 0 (NVIDIA H100 80GB HBM3): temperature 41C > 40C"
        );
    }

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("535.104.05", "535.54"), Greater);
        assert_eq!(compare_versions("535", "535.0"), Equal);
        assert_eq!(compare_versions("470.1", "535"), Less);
    }

    /// The real NVML path on this host: no GPU here, so the answer must be a clear "no
    /// driver" (library missing, or Debian's libnvidia-ml1 without a kernel driver), never a
    /// panic or a hang.
    #[test]
    fn no_driver_is_a_clear_skip_or_fail() {
        let lib_present = [
            "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
            "/usr/lib64/libnvidia-ml.so.1",
        ]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
        let why = match read_inventory() {
            Err(Unavailable(why)) => why,
            Ok(inv) => {
                // A GPU host running the tests: the readings must at least be complete.
                assert!(!inv.driver_version.is_empty());
                return;
            }
        };
        if lib_present {
            assert!(why.contains("DriverNotLoaded"), "{why}");
        } else {
            assert!(
                why.starts_with("no NVIDIA driver found: NVML library libnvidia-ml.so.1"),
                "{why}"
            );
        }
        let skip = unavailable(&spec(json!({})), why.clone());
        assert_eq!(skip.status, Status::Skip);
        let fail = unavailable(&spec(json!({"required": true})), why);
        assert_eq!(fail.status, Status::Fail);
        assert!(fail.message.ends_with("; gpus.required is true"));
    }
}
