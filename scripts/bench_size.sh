#!/usr/bin/env bash
# Size of every module binary per architecture (as `make install-all` installed them), and what
# each crate costs in the x86_64 build (cargo-bloat, installed with `cargo install` on first use;
# not a CI tool). cargo-bloat needs symbols, so it measures an unstripped build of the same
# release profile in its own target dir (target/bloat), leaving the shipped build alone.
#
#   scripts/bench_size.sh            (make bench-size)   writes ci-artifacts/bench/size.txt
#   OPT_LEVEL=s scripts/bench_size.sh                    the same with another opt-level
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

modules="$(sed -n 's/^MODULES[[:space:]]*:=[[:space:]]*//p' Makefile)"
library=roles/ops/health_check/library
out=ci-artifacts/bench/size.txt
mkdir -p "$(dirname "$out")"

if ! command -v cargo-bloat >/dev/null 2>&1; then
    echo "bench_size: installing cargo-bloat" >&2
    cargo install --locked cargo-bloat
fi

profile_env=(CARGO_PROFILE_RELEASE_STRIP=false)
target_dir=target/bloat
if [[ -n "${OPT_LEVEL:-}" ]]; then
    profile_env+=(CARGO_PROFILE_RELEASE_OPT_LEVEL="$OPT_LEVEL")
    target_dir="target/bloat-opt-$OPT_LEVEL"
fi

{
    echo "# Module sizes ($(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%M:%SZ))"
    printf '%-20s %14s %14s\n' module "x86_64 bytes" "aarch64 bytes"
    for module in $modules; do
        printf '%-20s %14s %14s\n' "$module" \
            "$(stat -c %s "$library/$module" 2>/dev/null || echo -)" \
            "$(stat -c %s "$library/../binaries/aarch64/$module" 2>/dev/null || echo -)"
    done
    for module in $modules; do
        echo
        echo "# cargo bloat --crates: $module (x86_64, unstripped${OPT_LEVEL:+, opt-level $OPT_LEVEL})"
        env "${profile_env[@]}" CARGO_TARGET_DIR="$target_dir" cargo bloat --release --locked \
            --target x86_64-unknown-linux-musl -p "$module" --bin "$module" --crates -n 15 2>/dev/null
    done
} | tee "$out.tmp"
mv -f "$out.tmp" "$out"
