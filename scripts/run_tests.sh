#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: the Rust tests and the end-to-end pytest
# suites side by side. pytest-xdist spreads the test files over PYTEST_WORKERS processes
# (--dist loadfile: one file's tests share a worker, so its session fixtures such as booted
# machines and the private dockerd are built once per file at most). Most of the suites wait on
# machines booting, engines settling and Ansible forking, not on the CPU, so 3 workers gain on a
# 2-core machine.
#
#   scripts/run_tests.sh [extra pytest args]     PYTEST_WORKERS=1 for a serial run
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

cargo="${CARGO:-cargo}"
workers="${PYTEST_WORKERS:-3}"
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

started=$SECONDS
"$cargo" test --workspace --locked >"$log_dir/cargo.log" 2>&1 &
cargo_pid=$!

pytest_args=(-q tests/)
if [[ "$workers" -gt 1 ]]; then
    pytest_args=(-n "$workers" --dist loadfile "${pytest_args[@]}")
fi
pytest_rc=0
.venv/bin/pytest "${pytest_args[@]}" "$@" || pytest_rc=$?

cargo_rc=0
wait "$cargo_pid" || cargo_rc=$?
echo "== cargo test (exit $cargo_rc)"
if [[ $cargo_rc -ne 0 ]]; then
    cat "$log_dir/cargo.log"
else
    grep -E '^test result:' "$log_dir/cargo.log" || true
fi
echo "== tests took $((SECONDS - started)) s (pytest exit $pytest_rc, cargo exit $cargo_rc)"
[[ $pytest_rc -eq 0 && $cargo_rc -eq 0 ]]
