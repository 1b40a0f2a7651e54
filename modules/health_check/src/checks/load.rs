//! Load average per online CPU, from /proc/loadavg.

use crate::args::LoadCheck;
use crate::check::{CheckMeta, Outcome, Planned, Status};
use crate::checks::round2;

pub fn plan(spec: LoadCheck, meta: CheckMeta) -> Planned {
    let work = async move {
        let text = match std::fs::read_to_string("/proc/loadavg") {
            Ok(text) => text,
            Err(err) => {
                return Outcome::fail("unreadable", format!("cannot read /proc/loadavg: {err}"))
            }
        };
        let Some(averages) = parse_loadavg(&text) else {
            return Outcome::fail("unreadable", format!("unexpected /proc/loadavg: {text:?}"));
        };
        judge(&spec, averages, online_cpus())
    };
    Planned {
        meta,
        work: Box::pin(work),
    }
}

pub fn expected(spec: &LoadCheck) -> String {
    format!(
        "{}-minute load per CPU <= {}",
        spec.window.minutes(),
        spec.max_per_cpu
    )
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

fn count_cpu_list(text: &str) -> Option<usize> {
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

pub fn judge(spec: &LoadCheck, averages: [f64; 3], cpus: usize) -> Outcome {
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
    Outcome::new(status, observed, message)
        .detail("load1", averages[0])
        .detail("load5", averages[1])
        .detail("load15", averages[2])
        .detail("cpus", cpus)
        .detail("per_cpu", round2(per_cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_judges() {
        let avg = parse_loadavg("0.50 3.00 1.00 2/300 1234\n").unwrap();
        let spec: LoadCheck =
            serde_json::from_value(serde_json::json!({"max_per_cpu": "1.0"})).unwrap();
        let out = judge(&spec, avg, 2);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(out.message, "5-minute load 1.50 per CPU > 1");
        let spec: LoadCheck =
            serde_json::from_value(serde_json::json!({"max_per_cpu": 1, "window": 1})).unwrap();
        assert_eq!(judge(&spec, avg, 2).status, Status::Pass);
        assert!(serde_json::from_value::<LoadCheck>(serde_json::json!({"window": 3})).is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-3\n"), Some(4));
        assert_eq!(count_cpu_list("0-1,4,6-7"), Some(5));
        assert_eq!(count_cpu_list("x"), None);
        assert!(online_cpus() >= 1);
    }
}
