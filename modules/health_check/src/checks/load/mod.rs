//! `load`: the load average per online CPU.

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::load::LoadAverage;
use host_probe::ProbeError;
use params::LoadParams;
use std::time::SystemTime;

/// The load check.
#[derive(Debug, Clone, Copy)]
pub struct Load;

impl Check for Load {
    const KIND: Kind = Kind::Load;
    type Params = LoadParams;
    type Observation = LoadAverage;

    fn expected(spec: &LoadParams) -> String {
        format!(
            "{}-minute load per CPU <= {}",
            spec.window.minutes(),
            spec.max_per_cpu
        )
    }

    async fn observe(&self, _spec: &LoadParams) -> Result<LoadAverage, ProbeError> {
        Ok(host_probe::load::read()?)
    }

    fn judge(spec: &LoadParams, load: &LoadAverage, _now: SystemTime) -> Verdict {
        judge::judge(spec, load.averages, load.cpus)
    }
}
