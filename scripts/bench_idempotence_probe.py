#!/usr/bin/env python3
"""Benchmark: idempotence_probe's snapshot of a large tree against other tools reading and
hashing the same files, in one run, on a warm page cache.

The tree is generated once into .cache/bench-idempotence/ (git-ignored): by default 20,000
files totalling 1 GiB in directories of 100, with sizes spread from a few bytes to a few MiB,
plus a second tree of 100,000 small files to show that memory does not grow with the number of
entries. Each round runs every tool once, in turn, so that all of them see the same machine
state; the script prints min/median/max wall time and peak RSS per tool and the ratio of each
median to `cat`'s, and writes the figures to ci-artifacts/bench/idempotence_probe.json.

Tools (a missing one is installed with apt-get when running as root, else skipped and said so):
  probe        idempotence_probe state=snapshot (the shipped static binary), snapshot written
  cat          xargs cat of the same files, output to /dev/null (reading only)
  sha256sum    xargs sha256sum of the same files
  tar          GNU tar of the tree into a pipe (tar skips reading when it writes to /dev/null)
  bsdtar-mtree bsdtar --format=mtree with sha256 (what `mtree -c` records)
  aide-init    aide --init with sha256 on the tree

    scripts/bench_idempotence_probe.py [--files 20000] [--size-mib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / ".cache" / "bench-idempotence"
PROBE = REPO_ROOT / "roles" / "ops" / "health_check" / "library" / "idempotence_probe"
RESULT = REPO_ROOT / "ci-artifacts" / "bench" / "idempotence_probe.json"
PACKAGES = {"bsdtar": "libarchive-tools", "aide": "aide"}


def generate(tree: Path, files: int, total_bytes: int, seed: int) -> None:
    """Writes `files` files of random sizes summing to about `total_bytes` (lognormal, as real
    trees are: many small files, a few large ones). Content is pseudo-random (incompressible),
    cut from one random block so that generating 1 GiB takes seconds."""
    stamp = tree / ".stamp"
    wanted = f"{files} {total_bytes} {seed}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 1.6) for _ in range(files)]
    scale = total_bytes / sum(weights)
    block = rng.randbytes(8 << 20)
    for index, weight in enumerate(weights):
        directory = tree / f"d{index // 100:04d}"
        if index % 100 == 0:
            directory.mkdir()
        size = max(1, int(weight * scale))
        offset = rng.randrange(0, len(block) - 1)
        data = bytearray()
        while len(data) < size:
            chunk = block[offset:offset + size - len(data)]
            data += chunk
            offset = 0
        # A unique prefix: no two files share content.
        (directory / f"f{index:06d}.dat").write_bytes(index.to_bytes(8, "little") + data[8:])
    stamp.write_text(wanted)


def file_list(tree: Path, out: Path) -> int:
    paths = sorted(str(p) for p in tree.rglob("*.dat"))
    out.write_bytes(b"\0".join(p.encode() for p in paths) + b"\0")
    return len(paths)


def run_measured(command: list[str] | str, shell: bool = False) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in KiB and exit status. The RSS comes from GNU time, which runs
    the command as its own child: a child forked from this Python process would inherit
    Python's RSS as its floor."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        argv = ["bash", "-c", command] if shell else list(command)
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *argv],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{command!r} exited {proc.returncode}: {proc.stderr[-2000:]}")
        rss_kib = int(rss_file.read().strip().splitlines()[-1])
    return elapsed, rss_kib, proc.returncode


def ensure_tool(name: str) -> bool:
    if shutil.which(name):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGES[name]],
                   env=env, capture_output=True)
    return shutil.which(name) is not None


def commands(tree: Path, listing: Path, work: Path) -> dict[str, list[str] | str]:
    args = work / "args.json"
    args.write_text(json.dumps({
        "state": "snapshot", "name": "bench", "paths": [str(tree)],
        "snapshot_dir": str(work / "snapshots"),
    }))
    tools: dict[str, list[str] | str] = {
        "probe": [str(PROBE), str(args)],
        "cat": f"xargs -0 -a {listing} cat > /dev/null",
        "sha256sum": f"xargs -0 -a {listing} sha256sum > /dev/null",
        "tar": f"tar -cf - -C {tree} . | cat > /dev/null",
    }
    if ensure_tool("bsdtar"):
        tools["bsdtar-mtree"] = (
            f"bsdtar -cf - --format=mtree --options='sha256' -C {tree} . > /dev/null")
    if ensure_tool("aide"):
        config = work / "aide.conf"
        config.write_text(
            f"database_out=file:{work}/aide.db.new\n"
            "gzip_dbout=no\n"
            f"{tree} p+u+g+s+m+sha256\n"
        )
        tools["aide-init"] = ["aide", "--init", "--config", str(config)]
    return tools


def summarize(times: list[float], rss: list[int]) -> dict[str, float]:
    return {
        "min_s": round(min(times), 3),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "peak_rss_mib_max": round(max(rss) / 1024, 1),
        "peak_rss_mib_median": round(statistics.median(rss) / 1024, 1),
    }


def bench_tree(name: str, tree: Path, rounds: int, only: set[str] | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ip-") as workdir:
        work = Path(workdir)
        listing = work / "files.list"
        count = file_list(tree, listing)
        total = sum(p.stat().st_size for p in tree.rglob("*.dat"))
        tools = commands(tree, listing, work)
        if only:
            tools = {k: v for k, v in tools.items() if k in only or k == "cat"}
        # Warm the page cache, and check that the probe works, before timing anything.
        run_measured(tools["cat"], shell=True)
        run_measured(tools["probe"])
        results: dict[str, dict[str, list]] = {tool: {"times": [], "rss": []} for tool in tools}
        for _ in range(rounds):
            for tool, command in tools.items():
                elapsed, rss, _ = run_measured(command, shell=isinstance(command, str))
                results[tool]["times"].append(elapsed)
                results[tool]["rss"].append(rss)
        cat_median = statistics.median(results["cat"]["times"])
        summary = {}
        print(f"\n{name}: {count} files, {total / 2**20:.0f} MiB, {rounds} rounds, warm cache")
        print(f"{'tool':<14}{'min s':>9}{'median s':>10}{'max s':>9}{'x cat':>8}{'peak RSS MiB':>14}")
        for tool, data in results.items():
            figures = summarize(data["times"], data["rss"])
            figures["ratio_to_cat_median"] = round(figures["median_s"] / cat_median, 2)
            summary[tool] = figures
            print(f"{tool:<14}{figures['min_s']:>9.3f}{figures['median_s']:>10.3f}"
                  f"{figures['max_s']:>9.3f}{figures['ratio_to_cat_median']:>8.2f}"
                  f"{figures['peak_rss_mib_max']:>14.1f}")
        snapshot = next((work / "snapshots").glob("*.jsonl"))
        return {"files": count, "bytes": total, "rounds": rounds, "tools": summary,
                "snapshot_bytes": snapshot.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=100_000,
                        help="files of the second tree (100 bytes each); 0 to skip it")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated tools (cat always runs)")
    parser.add_argument("--output", type=Path, default=RESULT)
    options = parser.parse_args()
    if not Path("/usr/bin/time").is_file():
        print("error: /usr/bin/time (GNU time, Debian package `time`) is missing", file=sys.stderr)
        return 2
    if not (PROBE.is_file() and os.access(PROBE, os.X_OK)):
        print(f"error: {PROBE} is missing: run `make install` first", file=sys.stderr)
        return 2
    only = {t for t in options.only.split(",") if t} or None
    big = CACHE / f"tree-{options.files}-{options.size_mib}m"
    generate(big, options.files, options.size_mib << 20, seed=1)
    report = {
        "benchmark": "idempotence_probe snapshot vs reading and hashing tools",
        "probe": str(PROBE.relative_to(REPO_ROOT)),
        "probe_sha256": hashlib.sha256(PROBE.read_bytes()).hexdigest(),
        "cpus": os.cpu_count(),
        "trees": {"large": bench_tree("large tree", big, options.rounds, only)},
    }
    if options.small_files:
        small = CACHE / f"tree-{options.small_files}-small"
        generate(small, options.small_files, options.small_files * 100, seed=2)
        report["trees"]["many_small"] = bench_tree(
            "many small files", small, max(1, options.rounds // 2 + 1), only)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {options.output.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
