//! `memory`: memory in use (MemTotal - MemAvailable, what `free` shows as used).

pub mod judge;
pub mod params;
#[cfg(test)]
mod tests;

use super::{Check, Kind};
use crate::verdict::Verdict;
use host_probe::memory::MemInfo;
use host_probe::ProbeError;
use params::MemoryParams;
use std::time::SystemTime;

/// The memory check.
#[derive(Debug, Clone, Copy)]
pub struct Memory;

impl Check for Memory {
    const KIND: Kind = Kind::Memory;
    type Params = MemoryParams;
    type Observation = MemInfo;

    fn expected(spec: &MemoryParams) -> String {
        format!("used <= {}", spec.max_used_percent)
    }

    async fn observe(&self, _spec: &MemoryParams) -> Result<MemInfo, ProbeError> {
        Ok(host_probe::memory::read()?)
    }

    fn judge(spec: &MemoryParams, info: &MemInfo, _now: SystemTime) -> Verdict {
        judge::judge(spec, info)
    }
}
