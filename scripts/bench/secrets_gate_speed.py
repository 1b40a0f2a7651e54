#!/usr/bin/env python3
"""Speed of secrets_gate on a generated 200 MB Ansible repository (about 150,000 YAML, INI, JSON
and dotenv files; see secrets_gate_tree.py), next to ripsecrets, detect-secrets and `cat` over
the same files, in one run, on a warm page cache.

Each round runs every tool once, in turn, so that all of them see the same machine state; the
script prints min/median/max wall time, median CPU time (user + system), MB/s and files/s (from
the median wall time) and peak RSS per tool, checks the targets, and writes the figures to
ci-artifacts/bench/secrets_gate.json.

  secrets_gate    `secrets_gate scan TREE --format json` (the shipped static binary)
  ripsecrets      `ripsecrets TREE` (crates.io; `cargo install --locked` into .cache/bench-tools
                  on first use)
  cat             `find TREE -type f -print0 | xargs -0 cat > /dev/null`
  detect-secrets  `detect-secrets scan -n --all-files SUBSET`, run from the subset's parent
                  directory (PyPI, pinned in requirements-dev.txt). It runs at well under 1 MB/s,
                  so it is timed on a fixed subset (every 100th file of the tree, sorted by path:
                  the same mix) and its time for the whole tree is extrapolated per MB;
                  secrets_gate is timed on that subset too, for a like-for-like ratio.

The tree is generated once (deterministic, seeded) outside the repository, in
$TMPDIR/secrets_gate_bench (inside the repository the tools would honour its .gitignore).

    scripts/bench/secrets_gate_speed.py [--files 150000] [--megabytes 200] [--runs 3]
        [--quick] [--binary PATH] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import secrets_gate_tree  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".cache" / "bench-tools"
GNU_TIME = Path("/usr/bin/time")
RIPSECRETS_VERSION = "0.1.11"
TARGETS = {
    "x_detect_secrets": 50.0,  # at least this many times detect-secrets' throughput
    "x_ripsecrets": 3.0,  # at least this many times ripsecrets' throughput
    "x_cat_time": 3.0,  # at most this many times cat's time
    "peak_rss_mib": 64.0,  # less than this
}


def ripsecrets_binary(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    cached = TOOLS / "bin" / "ripsecrets"
    if cached.is_file():
        return str(cached)
    found = shutil.which("ripsecrets")
    if found:
        return found
    print(f"installing ripsecrets {RIPSECRETS_VERSION} into {TOOLS} (once)...", flush=True)
    proc = subprocess.run(["cargo", "install", "--locked", "--root", str(TOOLS),
                           "--version", RIPSECRETS_VERSION, "ripsecrets"], check=False)
    return str(cached) if proc.returncode == 0 and cached.is_file() else None


def run_once(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + system, children included), peak RSS in KiB, exit
    status. On a shared machine the CPU time says more than the wall time. The peak RSS comes
    from GNU time, the command's parent: ru_maxrss taken here with os.wait4 would count this
    Python process's pages, which a forked child holds until it executes the command."""
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.Popen([str(GNU_TIME), "-f", "%M", "-o", rss.name, *cmd], cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        peak = int(rss.read().split()[-1])
    return wall, usage.ru_utime + usage.ru_stime, peak, os.waitstatus_to_exitcode(status)


def planted_check(binary: str, repo: Path, root: Path) -> dict:
    """One untimed scan with its JSON report: are the planted secrets found, and what else?"""
    out = subprocess.run([binary, "scan", str(repo), "--format", "json"], capture_output=True,
                         text=True, check=False)
    report = json.loads(out.stdout)
    planted = json.loads((root / "planted.json").read_text())
    found: dict[str, list[int]] = {}
    for finding in report["findings"]:
        rel = os.path.relpath(finding["file"], repo)
        found.setdefault(rel, []).append(finding["line"])
    hit = sum(1 for rel, lines in planted.items() for line in lines
              if any(abs(f - line) <= 1 for f in found.get(rel, [])))
    other = sum(1 for rel, lines in found.items() for f in lines
                if not any(abs(f - line) <= 1 for line in planted.get(rel, [])))
    return {"planted": sum(len(v) for v in planted.values()), "found": hit,
            "other_findings": other, "files_scanned": report["files_scanned"],
            "bytes_scanned": report["bytes_scanned"], "fallback": len(report["fallback"]),
            "skipped": len(report["skipped"])}


def summarise(name: str, samples: list[tuple[float, float, int, int]], files: int,
              size: int) -> dict:
    walls = [s[0] for s in samples]
    cpus = [s[1] for s in samples]
    med = statistics.median(walls)
    return {
        "tool": name,
        "files": files,
        "bytes": size,
        "runs": len(samples),
        "wall_s": {"min": round(min(walls), 3), "median": round(med, 3), "max": round(max(walls), 3)},
        "cpu_s_median": round(statistics.median(cpus), 3),
        "mb_per_s": round(size / 1e6 / med, 2),
        "files_per_s": round(files / med),
        "mb_per_cpu_s": round(size / 1e6 / statistics.median(cpus), 2),
        "peak_rss_mib": round(max(s[2] for s in samples) / 1024, 1),
        "exit_codes": sorted({s[3] for s in samples}),
    }


def line(r: dict) -> str:
    w = r["wall_s"]
    return (f"{r['tool']:28s} {w['min']:8.3f} {w['median']:8.3f} {w['max']:8.3f} "
            f"{r['cpu_s_median']:8.3f} {r['mb_per_s']:8.1f} {r['files_per_s']:9,d} "
            f"{r['peak_rss_mib']:7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=150_000)
    parser.add_argument("--megabytes", type=float, default=200.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--subset-every", type=int, default=100,
                        help="detect-secrets' subset: every Nth file of the tree")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3,000 files, 4 MB, 2 runs (figures not comparable)")
    parser.add_argument("--tree-dir", default=str(Path(tempfile.gettempdir()) / "secrets_gate_bench"))
    parser.add_argument("--binary", default=str(REPO / "roles/ops/health_check/library/secrets_gate"))
    parser.add_argument("--ripsecrets")
    parser.add_argument("--skip", default="", help="comma-separated: ripsecrets, detect-secrets")
    parser.add_argument("--compare-binary",
                        help="another secrets_gate build timed beside it (before/after figures)")
    parser.add_argument("--detect-secrets", default=str(REPO / ".venv/bin/detect-secrets"))
    parser.add_argument("--output", default=str(REPO / "ci-artifacts/bench/secrets_gate.json"))
    args = parser.parse_args()
    if not GNU_TIME.is_file():
        print("error: /usr/bin/time (GNU time, Debian package `time`) is missing", file=sys.stderr)
        return 2
    if args.quick:
        args.files, args.megabytes, args.runs, args.subset_every = 3000, 4.0, 2, 10

    root = Path(args.tree_dir) / f"{args.files}-{args.megabytes:g}-{args.seed}"
    t0 = time.perf_counter()
    # The generator overshoots its per-file targets by about 9% (whole lines).
    tree = secrets_gate_tree.generate(root, args.files, int(args.megabytes * 1e6 / 1.09), args.seed)
    repo = root / "repo"
    subset, subset_files, subset_bytes = secrets_gate_tree.subset(root, args.subset_every)
    print(f"tree: {repo} ({tree['files']:,} files, {tree['bytes'] / 1e6:.1f} MB, "
          f"{tree['planted']} planted secrets; ready in {time.perf_counter() - t0:.0f} s); "
          f"detect-secrets subset: every {args.subset_every}th file, {subset_files:,} files, "
          f"{subset_bytes / 1e6:.2f} MB", flush=True)

    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    rip = None if "ripsecrets" in skip else ripsecrets_binary(args.ripsecrets)
    tools: list[tuple[str, list[str], Path | None, int, int]] = [
        ("secrets_gate", [args.binary, "scan", str(repo), "--format", "json"], None,
         tree["files"], tree["bytes"]),
        ("cat", ["sh", "-c", f"find '{repo}' -type f -print0 | xargs -0 cat > /dev/null"], None,
         tree["files"], tree["bytes"]),
    ]
    if args.compare_binary:
        tools.append(("secrets_gate (compared build)",
                      [args.compare_binary, "scan", str(repo), "--format", "json"], None,
                      tree["files"], tree["bytes"]))
    if rip:
        tools.append(("ripsecrets", [rip, str(repo)], None, tree["files"], tree["bytes"]))
    elif "ripsecrets" not in skip:
        print("ripsecrets: not available (cargo install failed); skipped")
    tools.append((f"secrets_gate (subset 1/{args.subset_every})",
                  [args.binary, "scan", subset.name, "--format", "json"], root,
                  subset_files, subset_bytes))
    if "detect-secrets" in skip:
        pass
    elif Path(args.detect_secrets).is_file():
        tools.append((f"detect-secrets (subset 1/{args.subset_every})",
                      [args.detect_secrets, "scan", "-n", "--all-files", subset.name], root,
                      subset_files, subset_bytes))
    else:
        print(f"detect-secrets: {args.detect_secrets} not found (scripts/bootstrap.sh installs "
              "it from requirements-dev.txt); skipped")

    accuracy = planted_check(args.binary, repo, root)
    print(f"secrets_gate on the tree: {accuracy['found']}/{accuracy['planted']} planted secrets "
          f"found, {accuracy['other_findings']} other findings, {accuracy['files_scanned']:,} "
          f"files scanned, {accuracy['fallback']} line-scanned, {accuracy['skipped']} skipped",
          flush=True)

    load_before = os.getloadavg()
    # Warm the page cache: cat reads every file of the tree (the subset is hard links to them),
    # and each tool's own files are cached after its first round.
    run_once(tools[1][1])
    samples: dict[str, list] = {name: [] for name, *_ in tools}
    for round_no in range(args.runs):
        for name, cmd, cwd, _, _ in tools:
            samples[name].append(run_once(cmd, cwd))
        print(f"round {round_no + 1}/{args.runs} done", flush=True)
    load_after = os.getloadavg()

    results = [summarise(name, samples[name], files, size) for name, _, _, files, size in tools]
    by = {r["tool"]: r for r in results}
    print(f"\n{'tool':28s} {'wall s':>8s} {'median':>8s} {'max':>8s} {'CPU s':>8s} "
          f"{'MB/s':>8s} {'files/s':>9s} {'RSS MiB':>7s}")
    for r in results:
        print(line(r))

    gate = by["secrets_gate"]
    ratios: dict[str, float | None] = {
        "x_cat_time": round(gate["wall_s"]["median"] / by["cat"]["wall_s"]["median"], 2),
        "x_cat_cpu": round(gate["cpu_s_median"] / by["cat"]["cpu_s_median"], 2),
        "x_ripsecrets": None, "x_ripsecrets_cpu": None,
        "x_detect_secrets": None, "x_detect_secrets_cpu": None,
        "detect_secrets_full_tree_s_extrapolated": None,
    }
    if "ripsecrets" in by:
        rip_r = by["ripsecrets"]
        ratios["x_ripsecrets"] = round(rip_r["wall_s"]["median"] / gate["wall_s"]["median"], 2)
        ratios["x_ripsecrets_cpu"] = round(rip_r["cpu_s_median"] / gate["cpu_s_median"], 2)
    ds_name = f"detect-secrets (subset 1/{args.subset_every})"
    if ds_name in by:
        ds, gs = by[ds_name], by[f"secrets_gate (subset 1/{args.subset_every})"]
        ratios["x_detect_secrets"] = round(ds["wall_s"]["median"] / gs["wall_s"]["median"], 1)
        ratios["x_detect_secrets_cpu"] = round(ds["cpu_s_median"] / gs["cpu_s_median"], 1)
        ratios["detect_secrets_full_tree_s_extrapolated"] = round(
            tree["bytes"] / 1e6 / ds["mb_per_s"], 1)
        ratios["x_detect_secrets_extrapolated"] = round(
            gate["mb_per_s"] / ds["mb_per_s"], 1)
    checks = {
        "x_detect_secrets": ratios["x_detect_secrets"] is not None
        and ratios["x_detect_secrets"] >= TARGETS["x_detect_secrets"],
        "x_ripsecrets": ratios["x_ripsecrets"] is not None
        and ratios["x_ripsecrets"] >= TARGETS["x_ripsecrets"],
        "x_cat_time": ratios["x_cat_time"] <= TARGETS["x_cat_time"],
        "peak_rss_mib": gate["peak_rss_mib"] < TARGETS["peak_rss_mib"],
    }
    print()
    print(f"secrets_gate vs cat: {ratios['x_cat_time']}x cat's wall time "
          f"({ratios['x_cat_cpu']}x its CPU time); target <= {TARGETS['x_cat_time']}x: "
          f"{'met' if checks['x_cat_time'] else 'MISSED'}")
    print(f"secrets_gate vs ripsecrets: {ratios['x_ripsecrets']}x faster by wall time "
          f"({ratios['x_ripsecrets_cpu']}x by CPU time); target >= {TARGETS['x_ripsecrets']}x: "
          f"{'met' if checks['x_ripsecrets'] else 'MISSED'}")
    print(f"secrets_gate vs detect-secrets (same subset): {ratios['x_detect_secrets']}x faster by "
          f"wall time ({ratios['x_detect_secrets_cpu']}x by CPU time; detect-secrets on the whole "
          f"tree, extrapolated per MB: {ratios['detect_secrets_full_tree_s_extrapolated']} s, "
          f"{ratios.get('x_detect_secrets_extrapolated')}x secrets_gate's time there); target >= "
          f"{TARGETS['x_detect_secrets']}x: {'met' if checks['x_detect_secrets'] else 'MISSED'}")
    print(f"secrets_gate peak RSS: {gate['peak_rss_mib']} MiB; target < "
          f"{TARGETS['peak_rss_mib']:g} MiB: {'met' if checks['peak_rss_mib'] else 'MISSED'}")
    print(f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on "
          f"{os.cpu_count()} CPUs")

    versions = {"ripsecrets": RIPSECRETS_VERSION if rip else None}
    if Path(args.detect_secrets).is_file():
        versions["detect-secrets"] = subprocess.run(
            [args.detect_secrets, "--version"], capture_output=True, text=True,
            check=False).stdout.strip()
    out = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in load_after]},
        "tree": {"files": tree["files"], "bytes": tree["bytes"], "seed": args.seed,
                 "generator_version": secrets_gate_tree.VERSION,
                 "subset_every": args.subset_every, "subset_files": subset_files,
                 "subset_bytes": subset_bytes},
        "planted_check": accuracy,
        "versions": versions,
        "results": results,
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": checks,
        "quick": args.quick,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2) + "\n")
    print(f"figures: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
