//! Durations read back what they print: for any text the parser accepts, the printed form
//! parses again to the same length of time (to the microsecond, or to f64's precision for
//! lengths of centuries), since results and artifacts
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
    // The parser reads decimal seconds through f64: a microsecond, or f64's own precision for
    // lengths so long that a microsecond is below it.
    let tolerance = std::time::Duration::from_micros(1)
        .max(std::time::Duration::from_secs_f64(parsed.get().as_secs_f64() * 1e-15));
    assert!(
        drift <= tolerance,
        "{text:?} printed as {printed:?} reads back {drift:?} off"
    );
});
