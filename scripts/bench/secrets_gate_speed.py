#!/usr/bin/env python3
"""Throughput of secrets_gate on a generated inventory tree (YAML, INI, JSON, dotenv), next to
`cat` over the same files; min/median/max of several runs, files/s and MiB/s.

    scripts/bench/secrets_gate_speed.py [--files 10000] [--runs 5] [--binary PATH]
"""

from __future__ import annotations

import argparse
import json
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


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - start)
    return out


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
            times = timed(cmd, args.runs)
            lo, med, hi = min(times), statistics.median(times), max(times)
            print(f"{name:13s} wall s min {lo:.3f} median {med:.3f} max {hi:.3f}; "
                  f"median {len(files) / med:,.0f} files/s, {mib / med:.1f} MiB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
