//! Inputs found by fuzzing the contract (`make fuzz`, modules/ansible_module/fuzz/) and by the
//! fault survey (docs/reliability.md), kept as tests so that they stay fixed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration as StdDuration;

use ansible_module::args::read_args_file;
use ansible_module::types::Duration;

/// Fuzz target `duration`: a length under a millisecond printed as `500us`, which the parser
/// did not accept; `0.133335` printed as `133ms`, a third of a millisecond short; `1m3us`
/// printed as `1m`: a duration echoed in a result must read back as itself.
#[test]
fn a_duration_reads_back_what_it_prints() {
    for text in [
        "0.0005", "0.000001", "500us", "1µs", "999us", "0.133335", "1.5", "0.25",
    ] {
        let parsed: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = parsed.to_string();
        let again: Duration = printed
            .parse()
            .unwrap_or_else(|e| panic!("{text} printed as {printed}: {e}"));
        assert!(
            again.get().abs_diff(parsed.get()) <= StdDuration::from_micros(1),
            "{text} -> {printed} -> {again:?}"
        );
    }
}

/// Fault survey: an arguments file that is a FIFO has size 0, passed the size cap, and the
/// module then blocked forever reading it. Anything but a regular file is refused by name.
#[test]
fn an_arguments_file_that_is_a_fifo_or_a_directory_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let fifo = dir.path().join("args.json");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("mkfifo: {e}"));
    assert!(status.success());

    let error = read_args_file(&fifo).expect_err("a FIFO must be refused");
    let message = error.to_string();
    assert!(message.contains("a FIFO, not a regular file"), "{message}");
    assert!(message.contains(&fifo.display().to_string()), "{message}");

    let error = read_args_file(dir.path()).expect_err("a directory must be refused");
    assert!(
        error
            .to_string()
            .contains("a directory, not a regular file"),
        "{error}"
    );
}

/// Fault survey: /dev/zero reports size 0 too; it must be refused, not read until memory ends.
#[test]
fn an_arguments_file_that_is_a_device_is_refused() {
    let error = read_args_file(std::path::Path::new("/dev/zero")).expect_err("refused");
    assert!(error.to_string().contains("a character device"), "{error}");
}
