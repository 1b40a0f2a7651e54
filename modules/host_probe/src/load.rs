//! The load average and the host's online CPUs, from /proc/loadavg and
//! /sys/devices/system/cpu/online.

use crate::memory::ProcError;
use serde::{Deserialize, Serialize};

/// The 1, 5 and 15 minute load averages and the CPUs they are shared by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub averages: [f64; 3],
    pub cpus: usize,
}

/// Reads /proc/loadavg and counts the online CPUs.
pub fn read() -> Result<LoadAverage, ProcError> {
    const PATH: &str = "/proc/loadavg";
    let text =
        std::fs::read_to_string(PATH).map_err(|source| ProcError::Read { path: PATH, source })?;
    let averages = parse_loadavg(&text)
        .ok_or_else(|| ProcError::Unexpected(format!("unexpected /proc/loadavg: {text:?}")))?;
    Ok(LoadAverage {
        averages,
        cpus: online_cpus(),
    })
}

/// The 1, 5 and 15 minute averages.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

/// CPUs the kernel runs, from /sys/devices/system/cpu/online ("0-3,6"). The load average counts
/// the whole host, so the divisor is the host's CPUs, not this process's affinity mask.
pub fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| count_cpu_list(&text))
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// Counts a kernel CPU list ("0-1,4,6-7"); `None` when it cannot be read.
pub fn count_cpu_list(text: &str) -> Option<usize> {
    let mut count = 0;
    for range in text.trim().split(',') {
        count += match range.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>()
                    .ok()?
                    .checked_sub(a.parse::<usize>().ok()?)?
                    + 1
            }
            None => {
                range.parse::<usize>().ok()?;
                1
            }
        };
    }
    (count > 0).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_is_parsed() {
        assert_eq!(
            parse_loadavg("0.50 3.00 1.00 2/300 1234\n"),
            Some([0.5, 3.0, 1.0])
        );
        assert_eq!(parse_loadavg("0.50 x"), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-3\n"), Some(4));
        assert_eq!(count_cpu_list("0-1,4,6-7"), Some(5));
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(count_cpu_list("3-1"), None);
    }
}
