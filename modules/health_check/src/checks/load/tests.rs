//! The load rule on fixed averages.

use super::judge::judge;
use super::params::LoadParams;
use crate::verdict::Status;
use host_probe::load::parse_loadavg;

#[test]
fn parses_and_judges() {
    let avg = parse_loadavg("0.50 3.00 1.00 2/300 1234\n").unwrap();
    let spec: LoadParams =
        serde_json::from_value(serde_json::json!({"max_per_cpu": "1.0"})).unwrap();
    let out = judge(&spec, avg, 2);
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.message, "5-minute load 1.50 per CPU > 1");
    let spec: LoadParams =
        serde_json::from_value(serde_json::json!({"max_per_cpu": 1, "window": 1})).unwrap();
    assert_eq!(judge(&spec, avg, 2).status, Status::Pass);
    assert!(serde_json::from_value::<LoadParams>(serde_json::json!({"window": 3})).is_err());
}
