//! The GPU rules on nvidia-smi output, and the real no-driver path of this host.

use super::judge::{compare_versions, judge, unavailable};
use super::params::GpuParams;
use crate::verdict::Status;
use host_probe::gpu::GpuError;
use serde_json::{json, Value};

fn spec(json: Value) -> GpuParams {
    serde_json::from_value(json).unwrap()
}

const SMI: &str = "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 550.54.15, 41, 0, No, Not Active, Not Active, Not Active, Not Active\n\
                       1, NVIDIA H100 80GB HBM3, GPU-bbbb, 550.54.15, 86, 2, Yes, Active, Not Active, Not Active, Not Active\n";

#[test]
fn judging_finds_each_problem() {
    let mut inv = host_probe::gpu::smi::parse_query(SMI).unwrap();
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let why = match runtime.block_on(host_probe::gpu::read_inventory()) {
        Err(GpuError::Unavailable(why)) => why,
        Err(other) => panic!("{other}"),
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
