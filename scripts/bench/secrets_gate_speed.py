#!/usr/bin/env python3
"""Throughput of secrets_gate on a generated inventory tree (YAML, INI, JSON, dotenv), next to
`cat` over the same files; min/median/max of several runs, files/s and MiB/s.

    scripts/bench/secrets_gate_speed.py [--files 10000] [--runs 5] [--binary PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def generate(root: Path, count: int) -> int:
    rng = random.Random(11)
    total = 0
    for i in range(count):
        d = root / "inventories" / f"env{i % 4}" / "group_vars" / f"g{i // 100}"
        d.mkdir(parents=True, exist_ok=True)
        kind = i % 4
        if kind == 0:
            body = "---\n" + "".join(f"setting_{j}: \"{{{{ vault_setting_{j} }}}}\"\nport_{j}: {8000 + j}\n" for j in range(20))
            name = f"vars{i}.yml"
        elif kind == 1:
            body = "[web]\n" + "".join(f"web{j} ansible_host=10.0.{j}.{i % 250} ansible_user=deploy\n" for j in range(20))
            name = f"hosts{i}.ini"
        elif kind == 2:
            body = json.dumps({f"feature_{j}": {"enabled": bool(j % 2), "rollout": rng.randint(0, 100)} for j in range(20)}, indent=1)
            name = f"flags{i}.json"
        else:
            body = "".join(f"SERVICE_{j}_HOST=svc{j}.internal\n" for j in range(20))
            name = f"app{i}.env"
        (d / name).write_text(body)
        total += len(body)
    return total


def timed(cmd: list[str], runs: int) -> tuple[list[float], list[float], int]:
    """Wall seconds and CPU seconds (user + system, children included) per run, and the peak RSS
    in KiB: on a shared machine the CPU time says more than the wall time."""
    walls, cpus, peak = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss)
    return walls, cpus, peak


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", default=str(REPO / "roles/ops/health_check/library/secrets_gate"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = generate(root, args.files)
        files = [str(p) for p in root.rglob("*") if p.is_file()]
        mib = size / 2**20
        print(f"tree: {len(files)} files, {mib:.1f} MiB")
        subprocess.run(["cat", *files[:10]], stdout=subprocess.DEVNULL, check=False)  # warm the page cache
        for name, cmd in (
            ("secrets_gate", [args.binary, "scan", str(root), "--format", "json"]),
            ("cat", ["sh", "-c", f"find {root} -type f -print0 | xargs -0 cat > /dev/null"]),
        ):
            walls, cpus, peak = timed(cmd, args.runs)
            lo, med, hi = min(walls), statistics.median(walls), max(walls)
            cpu = statistics.median(cpus)
            print(f"{name:13s} wall s min {lo:.3f} median {med:.3f} max {hi:.3f}; "
                  f"median {len(files) / med:,.0f} files/s, {mib / med:.1f} MiB/s; "
                  f"CPU s median {cpu:.3f} ({len(files) / cpu:,.0f} files per CPU-second); "
                  f"peak RSS {peak / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
