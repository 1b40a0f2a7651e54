#!/usr/bin/env python3
"""How health_check's systemd checks scale with the number of units: 50, 100, 250 and 500
healthy services in one systemd-nspawn machine with the stock dbus configuration (the system
bus allows 128 pending replies per connection), read over the machine's D-Bus socket.

One machine (testbed.machines, the minimal rootfs) is booted once with 500 units
`hc-scale-NNN.service` (`ExecStart=/bin/sleep infinity`, added under /run/systemd/system) that
all run before anything is measured. Each size gets one unmeasured warm-up run; then each round
runs every size once, in turn, so background load on a shared machine hits all sizes alike.
Every run must pass all its checks, or the benchmark stops and says which failed.

Printed per size: min/median/max wall time of `health_check ARGS.json` (the shipped static
binary, measured from this process) and the median time per unit; then a least-squares line
`time = fixed + per_unit * units` over all runs, its r², and the time per unit at 500 against
that at 50 (1.0 is perfectly linear; below 1 the fixed cost is being spread). The figures go to
ci-artifacts/bench/systemd_scale.json (written atomically; `--output` writes elsewhere).

    make bench-systemd-scale                     (builds and installs the module first)
    .venv/bin/python scripts/bench/systemd_scale.py [--runs 7] [--sizes 50,100,250,500]

Needs root (systemd-nspawn) and the test bed's minimal rootfs (debootstrapped from the Debian
mirror into .cache/ on a first run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# scripts/ on sys.path: the health_check benchmark's report helpers import as
# `bench.health_check`; the test bed is the `testbed` package installed into .venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.health_check import MODULE_BINARY, REPO_ROOT, BenchmarkError, display_path, log  # noqa: E402
from bench.health_check.report import git_info, machine_info, stats, write_json_atomically  # noqa: E402
from testbed import machines  # noqa: E402

RESULT_PATH = REPO_ROOT / "ci-artifacts" / "bench" / "systemd_scale.json"
SIZES = (50, 100, 250, 500)
UNIT = "[Service]\nExecStart=/bin/sleep infinity\n"


def unit_names(count: int) -> list[str]:
    return [f"hc-scale-{index:03}.service" for index in range(count)]


def start_units(machine: machines.Machine, count: int) -> None:
    """Writes `count` units into the machine, starts them and waits until all are active."""
    names = unit_names(count)
    script = [
        "mkdir -p /run/systemd/system",
        f"cat > /run/hc-scale.unit <<'UNIT'\n{UNIT}UNIT",
        f"for name in {' '.join(names)}; do cp /run/hc-scale.unit /run/systemd/system/$name; done",
        "systemctl daemon-reload",
        "systemctl start --no-block " + " ".join(names),
    ]
    result = machine.run("sh", "-c", "\n".join(script), timeout_s=180)
    if result.returncode != 0:
        raise BenchmarkError(f"cannot start the units: {result.stderr.strip()}")
    deadline = time.monotonic() + 120
    active = ""
    while time.monotonic() < deadline:
        active = machine.run(
            "sh", "-c", "systemctl list-units --state=active --no-legend 'hc-scale-*' | wc -l"
        ).stdout.strip()
        if active == str(count):
            return
        time.sleep(0.5)
    raise BenchmarkError(f"only {active} of {count} units became active")


def run_module(args_file: Path, expected: int) -> float:
    """One run of the shipped binary; its wall time in seconds. All checks must pass."""
    started = time.perf_counter()
    proc = subprocess.run([str(MODULE_BINARY), str(args_file)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    elapsed = time.perf_counter() - started
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise BenchmarkError(f"the module printed no JSON ({err}): {proc.stdout[:500]!r} "
                             f"{proc.stderr[:500]!r}") from None
    checks = result.get("checks", [])
    failing = [c for c in checks if c.get("status") != "pass"]
    if result.get("failed") or failing or len(checks) != expected:
        sample = "; ".join(f"{c['name']}: {c['message']}" for c in failing[:3])
        raise BenchmarkError(f"{len(failing)} of {expected} checks did not pass "
                             f"({len(checks)} reported): {sample or result.get('msg')}")
    return elapsed


def fit_line(points: list[tuple[int, float]]) -> dict[str, float]:
    """Least squares `seconds = fixed + per_unit * units`, with r²."""
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss_total = sum((y - mean_y) ** 2 for y in ys)
    ss_residual = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys))
    return {
        "fixed_ms": round(intercept * 1000, 2),
        "per_unit_ms": round(slope * 1000, 4),
        "r_squared": round(1 - ss_residual / ss_total, 4) if ss_total else 1.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per size (default 7)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="unit counts, comma-separated (default 50,100,250,500)")
    parser.add_argument("--output", type=Path, default=RESULT_PATH)
    options = parser.parse_args()
    sizes = sorted({int(size) for size in options.sizes.split(",")})
    if os.geteuid() != 0:
        print("error: the benchmark boots a systemd-nspawn machine: run it as root", file=sys.stderr)
        return 1
    if not os.access(MODULE_BINARY, os.X_OK):
        print(f"error: {display_path(MODULE_BINARY)} is missing: run `make install`", file=sys.stderr)
        return 1

    machines.ensure_host_tools()
    rootfs = machines.ensure_rootfs()
    times: dict[int, list[float]] = {size: [] for size in sizes}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="systemd-scale-") as scratch, \
            machines.booted(f"hc-scale-{os.getpid()}", rootfs) as machine:
        log(f"machine booted in {machine.boot_s:.2f}s; starting {max(sizes)} units")
        start_units(machine, max(sizes))
        args_files = {}
        for size in sizes:
            args_files[size] = Path(scratch) / f"args-{size}.json"
            args_files[size].write_text(json.dumps({
                "systemd_bus": machine.bus_address,
                "systemd": unit_names(size),
                "deadline": "240s",
            }))
            run_module(args_files[size], size)  # warm-up: page cache, the machine's dbus
        for round_number in range(options.runs):
            for size in sizes:
                times[size].append(run_module(args_files[size], size))
            log(f"round {round_number + 1}/{options.runs} done")

    per_size = {}
    for size in sizes:
        figures = stats(times[size], 4)
        figures["per_unit_ms"] = round(statistics.median(times[size]) / size * 1000, 3)
        per_size[str(size)] = figures
    fit = fit_line([(size, seconds) for size in sizes for seconds in times[size]])
    smallest, largest = str(sizes[0]), str(sizes[-1])
    report: dict[str, Any] = {
        "benchmark": "systemd_scale",
        "what": "health_check systemd checks of N healthy services in one systemd-nspawn machine, "
                "stock dbus configuration; wall time of one module run",
        "unit": "seconds",
        "runs_per_size": options.runs,
        "sizes": per_size,
        "linear_fit": fit,
        "per_unit_ratio_largest_to_smallest": round(
            per_size[largest]["per_unit_ms"] / per_size[smallest]["per_unit_ms"], 3),
        "machine": machine_info(),
        # A shared machine's load moves the absolute figures; the ratio between sizes is what
        # this benchmark is about (every size runs in every round, interleaved).
        "load_average_1m": {"before": round(load_before[0], 2),
                            "after": round(os.getloadavg()[0], 2)},
        "git": git_info(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomically(options.output, report)

    print(f"{'units':>6} {'min s':>8} {'median s':>9} {'max s':>8} {'ms/unit':>8}")
    for size in sizes:
        f = per_size[str(size)]
        print(f"{size:>6} {f['min']:>8.3f} {f['median']:>9.3f} {f['max']:>8.3f} {f['per_unit_ms']:>8.3f}")
    print(f"fit: {fit['fixed_ms']:.1f} ms + {fit['per_unit_ms']:.3f} ms/unit (r² {fit['r_squared']}); "
          f"ms/unit at {largest} vs {smallest}: {report['per_unit_ratio_largest_to_smallest']}x")
    print(f"load average (1 min): {report['load_average_1m']['before']} before, "
          f"{report['load_average_1m']['after']} after")
    print(f"written: {display_path(options.output)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
