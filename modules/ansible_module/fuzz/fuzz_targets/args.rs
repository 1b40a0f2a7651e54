//! Any bytes as a module's arguments file: the contract reads, splits and deserializes them into
//! a real module's parameters (health_check's, the richest: durations, sizes, percents,
//! shorthand lists). Every outcome is a value or an error; a panic is a finding.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let Ok(raw) = ansible_module::args::read_args_file(file.path()) else {
        return;
    };
    let Ok((_context, params)) = ansible_module::args::split_context(raw) else {
        return;
    };
    let _ = serde_json::from_value::<health_check::args::Args>(serde_json::Value::Object(params));
});
