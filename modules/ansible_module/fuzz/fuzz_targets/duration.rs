//! Durations read back what they print: for any text the parser accepts, the printed form
//! parses again to the same length of time (to the microsecond), since results and artifacts
//! echo durations that users copy back into their tasks.
#![no_main]

use ansible_module::types::Duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = text.parse::<Duration>() else {
        return;
    };
    let printed = parsed.to_string();
    let again: Duration = match printed.parse() {
        Ok(again) => again,
        Err(error) => panic!("{text:?} printed as {printed:?}, which does not parse: {error}"),
    };
    let drift = again.get().abs_diff(parsed.get());
    assert!(
        drift <= std::time::Duration::from_micros(1),
        "{text:?} printed as {printed:?} reads back {drift:?} off"
    );
});
