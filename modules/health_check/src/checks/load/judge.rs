//! The load rule: the chosen window's load per CPU against `max_per_cpu`.

use super::params::LoadParams;
use crate::checks::round2;
use crate::verdict::{Status, Verdict};

/// Compares the load per CPU with the limit.
pub fn judge(spec: &LoadParams, averages: [f64; 3], cpus: usize) -> Verdict {
    let load = match spec.window.minutes() {
        1 => averages[0],
        5 => averages[1],
        _ => averages[2],
    };
    let per_cpu = load / cpus.max(1) as f64;
    let observed = format!(
        "{load:.2} on {cpus} CPU(s) = {per_cpu:.2} per CPU (1/5/15 min: {:.2} {:.2} {:.2})",
        averages[0], averages[1], averages[2]
    );
    let (status, message) = if per_cpu > spec.max_per_cpu {
        (
            Status::Fail,
            format!(
                "{}-minute load {per_cpu:.2} per CPU > {}",
                spec.window.minutes(),
                spec.max_per_cpu
            ),
        )
    } else {
        (Status::Pass, "load within limits".to_string())
    };
    Verdict::new(status, observed, message)
        .detail("load1", averages[0])
        .detail("load5", averages[1])
        .detail("load15", averages[2])
        .detail("cpus", cpus)
        .detail("per_cpu", round2(per_cpu))
}
