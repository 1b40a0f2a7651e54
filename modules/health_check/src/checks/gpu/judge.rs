//! The GPU rules: count, driver version, temperature against the limit or the slowdown
//! threshold, ECC errors, page retirement, row remapping, throttling.

use super::params::GpuParams;
use super::DEFAULT_MARGIN_C;
use crate::verdict::{Status, Verdict};
use host_probe::gpu::Inventory;
use serde_json::{json, Value};

/// The verdict for a host where no driver answered.
pub fn unavailable(spec: &GpuParams, why: String) -> Verdict {
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
    Verdict::new(status, "no NVIDIA driver", message)
}

/// Compares the readings with the check's limits.
pub fn judge(spec: &GpuParams, inventory: &Inventory) -> Verdict {
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
    Verdict::new(status, observed, message)
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
