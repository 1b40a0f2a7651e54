#!/usr/bin/env bash
# Runs every cargo-fuzz target of the project for a bounded time (make fuzz).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60; FUZZ_JOBS=N for parallel jobs)
#
# Needs a nightly toolchain (libFuzzer's instrumentation is a nightly -Z flag) and cargo-fuzz,
# which is installed from crates.io when missing. Each target starts from its corpus under
# modules/<crate>/fuzz/corpus/<target>/ (git-ignored, kept between runs) plus the seeds named
# below. A crash leaves its input under modules/<crate>/fuzz/artifacts/<target>/ and fails the
# run: turn that input into a test in modules/<crate>/tests/fuzz_regressions.rs, then fix it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
seconds="${1:-60}"
jobs="${FUZZ_JOBS:-1}"

# crate:target:seed-directory (relative to the repository root; empty for none)
targets=(
    "ansible_module:args:modules/ansible_module/fuzz/seeds/args"
    "ansible_module:duration:modules/ansible_module/fuzz/seeds/duration"
    "secrets_gate:readers:tests/secrets_gate/corpus"
    "idempotence_probe:snapshot_reader:modules/idempotence_probe/fuzz/seeds/snapshot_reader"
)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly Rust toolchain; trying: rustup toolchain install nightly" >&2
    rustup toolchain install nightly --profile minimal || {
        echo "fuzz: error: cargo fuzz needs a nightly toolchain, and none could be installed" >&2
        exit 2
    }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

failed=()
for entry in "${targets[@]}"; do
    IFS=: read -r crate target seeds <<<"$entry"
    corpus="modules/$crate/fuzz/corpus/$target"
    mkdir -p "$corpus"
    dirs=("$repo_root/$corpus")
    [[ -n "$seeds" && -d "$seeds" ]] && dirs+=("$repo_root/$seeds")
    echo "== fuzz $crate/$target for ${seconds}s"
    parallel=()
    # libFuzzer's -jobs mode sends each job's output to fuzz-N.log; one job stays on stdout.
    [[ "$jobs" -gt 1 ]] && parallel=(-jobs="$jobs" -workers="$jobs")
    if ! (cd "modules/$crate/fuzz" && cargo +nightly fuzz run -O "$target" "${dirs[@]}" -- \
            -max_total_time="$seconds" "${parallel[@]}" -print_final_stats=1 \
            -max_len=65536 -rss_limit_mb=2048); then
        failed+=("$crate/$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: crashes in: ${failed[*]} (inputs under modules/<crate>/fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crashes"
