//! Any bytes as a stored snapshot (a damaged, truncated or foreign file in `snapshot_dir`): the
//! reader answers with lines or an error, never a panic, however the file is cut.
#![no_main]

use idempotence_probe::store::{snapshot_path, SnapshotReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(snapshot_path(dir.path(), "fuzz"), data).is_err() {
        return;
    }
    let Ok(mut reader) = SnapshotReader::open(dir.path(), "fuzz") else {
        return;
    };
    for _ in 0..100_000 {
        match reader.next_line() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
