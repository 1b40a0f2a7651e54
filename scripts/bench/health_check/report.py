"""The benchmark's JSON document (schema_version 1, read by the README's figures table) and
the table on stdout. Missing a target is reported, not hidden."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import ANSIBLE_CONFIG, MODULE_BINARY, REPO_ROOT, display_path
from .environment import CONTAINER_HEALTH_INTERVAL
from .measurement import Measurements
from .suite import (
    CONTAINER_COUNT,
    DISK_COUNT,
    DISK_MAX_INODES_USED_PERCENT,
    DISK_MAX_USED_PERCENT,
    HTTP_COUNT,
    TCP_COUNT,
    TOTAL_CHECKS,
    UNIT_COUNT,
)

TARGET_MODULE_WALL_MS = 150.0
TARGET_SPEEDUP = 20.0
TARGET_RSS_BYTES = 20_000_000  # 20 MB, decimal: the stricter reading of "20 MB"


def machine_info() -> dict[str, Any]:
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    os_release = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                os_release[key] = value.strip('"')
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_total_kib": int(meminfo["MemTotal"].split()[0]),
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", "unknown"),
        "hostname": socket.gethostname(),
    }


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def stats(values: list[float], digits: int) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "each": [round(value, digits) for value in values],
    }


def build_report(measured: Measurements) -> dict[str, Any]:
    module_wall = [run.wall_ms for run in measured.module_runs]
    module_rss = [run.max_rss_kib for run in measured.module_runs]
    module_median_s = statistics.median(module_wall) / 1000
    baseline_median_s = statistics.median(measured.baseline_s)
    speedup_module = baseline_median_s / module_median_s
    speedup_playbook = baseline_median_s / statistics.median(measured.playbook_module_s)
    binary_bytes = MODULE_BINARY.read_bytes()
    last_result = measured.module_runs[-1].result
    return {
        "schema_version": 1,
        "benchmark": "health_check",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_info(),
        "machine": machine_info(),
        "load_average": {"before": measured.load_before, "after": measured.load_after},
        "suite": {
            "total": TOTAL_CHECKS,
            "systemd": UNIT_COUNT,
            "containers": CONTAINER_COUNT,
            "tcp": TCP_COUNT,
            "http": HTTP_COUNT,
            "disks": DISK_COUNT,
            "disk_paths": measured.suite.disks,
            "disk_limits_percent": {
                "used": DISK_MAX_USED_PERCENT,
                "inodes_used": DISK_MAX_INODES_USED_PERCENT,
            },
            "module_check_kinds": measured.check_kinds,
            "all_healthy": True,
        },
        "binary": {
            "path": display_path(MODULE_BINARY),
            "size_bytes": len(binary_bytes),
            "sha256": hashlib.sha256(binary_bytes).hexdigest(),
        },
        "module": {
            "warmup_runs": measured.module_warmup_runs,
            "runs": len(measured.module_runs),
            "wall_ms": stats(module_wall, 2),
            "peak_rss_kib": {
                "max": max(module_rss),
                "median": statistics.median(module_rss),
                "each": module_rss,
            },
            "summary_duration_ms_last_run": (last_result.get("summary") or {}).get("duration_ms"),
            "how": "binary run by hand (health_check ARGS.json) under /usr/bin/time -f %M; wall "
            "from the parent, including about 1 ms for time's own fork and exec",
        },
        "ansible_playbook_with_module": {
            "wall_s": stats(measured.playbook_module_s, 3),
            "warmup_s": round(measured.warmup_module_s, 3),
            "how": "ansible-playbook, one play on localhost (connection local), one health_check task",
        },
        "baseline": {
            "wall_s": stats(measured.baseline_s, 3),
            "warmup_s": round(measured.warmup_baseline_s, 3),
            "how": "ansible-playbook with Ansible's own modules: service_facts over SSH on the "
            "machine + assert; community.docker.docker_container_info per container + "
            "assert; wait_for per tcp port; uri per URL; setup (mounts) + assert",
            "versions": measured.versions,
        },
        "speedup": {
            "baseline_over_module": round(speedup_module, 1),
            "baseline_over_ansible_playbook_with_module": round(speedup_playbook, 2),
        },
        "targets": [
            {
                "name": "module_wall_ms_median",
                "target": f"< {TARGET_MODULE_WALL_MS:g} ms",
                "value": round(statistics.median(module_wall), 2),
                "pass": statistics.median(module_wall) < TARGET_MODULE_WALL_MS,
            },
            {
                "name": "speedup_baseline_over_module",
                "target": f">= {TARGET_SPEEDUP:g}x",
                "value": round(speedup_module, 1),
                "pass": speedup_module >= TARGET_SPEEDUP,
            },
            {
                "name": "module_peak_rss",
                "target": f"< {TARGET_RSS_BYTES} bytes (20 MB), max over runs",
                "value": max(module_rss) * 1024,
                "pass": max(module_rss) * 1024 < TARGET_RSS_BYTES,
            },
            {
                "name": "speedup_baseline_over_ansible_playbook_with_module",
                "target": f">= {TARGET_SPEEDUP:g}x",
                "value": round(speedup_playbook, 2),
                "pass": speedup_playbook >= TARGET_SPEEDUP,
                "informational": True,
                "note": "end to end: both sides pay ansible-playbook's own start-up and play cost",
            },
        ],
        "setup_s": {key: round(value, 2) for key, value in measured.setup_s.items()},
        "conditions": {
            "ansible_config": display_path(ANSIBLE_CONFIG),
            "ansible_home": "fresh per run (no SSH ControlPersist connection reused across runs)",
            "order": "module runs first; then the two playbooks interleaved, one warm-up each",
            "systemd_access": "module: the machine's D-Bus socket on the host; baseline: SSH to "
            "the machine (sshd on 127.0.0.1), as Ansible reaches a fleet host",
            "container_health_interval": CONTAINER_HEALTH_INTERVAL,
        },
    }


def missed_targets(report: dict[str, Any]) -> list[str]:
    """The targets that count (not informational) and were missed."""
    return [
        target["name"]
        for target in report["targets"]
        if not target["pass"] and not target.get("informational")
    ]


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def print_table(report: dict[str, Any], written: Path) -> None:
    module = report["module"]
    playbook = report["ansible_playbook_with_module"]
    baseline = report["baseline"]
    machine = report["machine"]
    targets = {target["name"]: target for target in report["targets"]}

    def verdict(name: str) -> str:
        target = targets[name]
        text = "pass" if target["pass"] else "FAIL"
        return f"{text} (informational)" if target.get("informational") else text

    suite = report["suite"]
    print()
    print(
        f"health_check benchmark: {suite['total']} checks ({suite['systemd']} systemd, "
        f"{suite['containers']} containers, {suite['tcp']} tcp, {suite['http']} http, "
        f"{suite['disks']} disks), all healthy"
    )
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_total_kib'] / 1024 / 1024:.1f} GiB, kernel {machine['kernel']}, "
        f"load {report['load_average']['before']} -> {report['load_average']['after']}"
    )
    rows = [
        ("metric", "value", "target", "result"),
        (
            f"module wall, median of {module['runs']}",
            f"{module['wall_ms']['median']:.1f} ms",
            f"< {TARGET_MODULE_WALL_MS:g} ms",
            verdict("module_wall_ms_median"),
        ),
        (
            "module wall, min / max",
            f"{module['wall_ms']['min']:.1f} / {module['wall_ms']['max']:.1f} ms",
            "",
            "",
        ),
        (
            "module peak RSS, max of runs",
            f"{module['peak_rss_kib']['max']} KiB ({module['peak_rss_kib']['max'] / 1024:.1f} MiB)",
            f"< {TARGET_RSS_BYTES / 1e6:g} MB",
            verdict("module_peak_rss"),
        ),
        ("module binary size", f"{report['binary']['size_bytes'] / 1024 / 1024:.1f} MiB", "", ""),
        (
            f"ansible-playbook + module, median of {len(playbook['wall_s']['each'])}",
            f"{playbook['wall_s']['median']:.2f} s",
            "",
            "",
        ),
        (
            "ansible-playbook + module, min / max",
            f"{playbook['wall_s']['min']:.2f} / {playbook['wall_s']['max']:.2f} s",
            "",
            "",
        ),
        (
            f"baseline ansible-playbook, median of {len(baseline['wall_s']['each'])}",
            f"{baseline['wall_s']['median']:.2f} s",
            "",
            "",
        ),
        (
            "baseline ansible-playbook, min / max",
            f"{baseline['wall_s']['min']:.2f} / {baseline['wall_s']['max']:.2f} s",
            "",
            "",
        ),
        (
            "speedup baseline / module",
            f"{report['speedup']['baseline_over_module']:.0f}x",
            f">= {TARGET_SPEEDUP:g}x",
            verdict("speedup_baseline_over_module"),
        ),
        (
            "speedup baseline / playbook+module",
            f"{report['speedup']['baseline_over_ansible_playbook_with_module']:.1f}x",
            f">= {TARGET_SPEEDUP:g}x",
            verdict("speedup_baseline_over_ansible_playbook_with_module"),
        ),
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(f"written: {display_path(written)}")
