"""The measurements, never including setup: the module binary run by hand (wall time from
this process, peak RSS from GNU time), then the two playbooks interleaved (one unmeasured
warm-up each) so that background load on a shared machine hits both alike. Every run must
pass all the checks; otherwise the benchmark stops and says which failed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ANSIBLE_CONFIG, MODULE_BINARY, BenchmarkError, log
from . import environment
from .suite import (
    BASELINE_PLAYBOOK,
    CONTAINER_COUNT,
    MODULE_PLAYBOOK,
    TOTAL_CHECKS,
    Suite,
    pick_disks,
    write_inventory,
    write_json,
)

PLAYBOOK_TIMEOUT_S = 600
MODULE_TIMEOUT_S = 120


@dataclass
class ModuleRun:
    wall_ms: float
    max_rss_kib: int
    result: dict[str, Any]


def _failing_checks(result: dict[str, Any]) -> str:
    lines = [
        f"  {check.get('kind')}:{check.get('name')}: {check.get('status')} - {check.get('message')}"
        for check in result.get("checks", [])
        if check.get("status") != "pass"
    ]
    return "\n".join(lines) or f"  (no failing check listed; msg: {result.get('msg')})"


def run_module(args_file: Path, rss_file: Path) -> ModuleRun:
    """One run of the binary. Its peak RSS comes from GNU time, which forks the module from its
    own small process: ru_maxrss taken here with os.wait4 would be this Python process's,
    because Linux carries the pre-exec high-water mark of the (v)forked parent over into the
    child. The wall time includes time's own fork and exec (about 1 ms here)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DBUS_SYSTEM_BUS_ADDRESS")
    }
    command = [
        str(environment.GNU_TIME),
        "-f",
        "%M",
        "-o",
        str(rss_file),
        str(MODULE_BINARY),
        str(args_file),
    ]
    started = time.perf_counter()
    proc = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=MODULE_TIMEOUT_S
    )
    wall_ms = (time.perf_counter() - started) * 1000
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as error:
        raise BenchmarkError(
            f"the module printed no JSON (rc={proc.returncode}): {proc.stdout[-2000:]!r} "
            f"stderr: {proc.stderr[-2000:]!r}"
        ) from error
    summary = result.get("summary") or {}
    if (
        summary.get("status") != "pass"
        or result.get("failed")
        or len(result.get("checks", [])) != TOTAL_CHECKS
    ):
        raise BenchmarkError(
            f"the module run was not all healthy (summary.status={summary.get('status')!r}, "
            f"{len(result.get('checks', []))} checks, want {TOTAL_CHECKS} passing):\n"
            f"{_failing_checks(result)}\nmsg: {result.get('msg')}"
        )
    max_rss_kib = int(rss_file.read_text().strip().splitlines()[-1])
    return ModuleRun(wall_ms, max_rss_kib, result)


@dataclass
class Ansible:
    venv: Path
    inventory: Path
    workdir: Path
    control_dirs: list[Path] = field(default_factory=list)

    def run_playbook(self, playbook: Path, label: str, extra_vars: Path) -> float:
        """One ansible-playbook run in a fresh ANSIBLE_HOME; its wall seconds. A failed run
        stops the benchmark with the end of its output."""
        home = Path(tempfile.mkdtemp(prefix="ansible-home-", dir=self.workdir))
        self.control_dirs.append(home / "cp")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(
            ANSIBLE_CONFIG=str(ANSIBLE_CONFIG),
            ANSIBLE_HOME=str(home),
            ANSIBLE_LIBRARY=str(MODULE_BINARY.parent),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        command = [
            str(self.venv / "bin" / "ansible-playbook"),
            "-i",
            str(self.inventory),
            "-e",
            f"@{extra_vars}",
            str(playbook),
        ]
        started = time.perf_counter()
        proc = subprocess.run(
            command,
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=PLAYBOOK_TIMEOUT_S,
        )
        elapsed = time.perf_counter() - started
        (self.workdir / f"{label}.log").write_text(proc.stdout)
        recap = proc.stdout[proc.stdout.rfind("PLAY RECAP") :]
        if proc.returncode != 0 or "failed=0" not in recap or "unreachable=0" not in recap:
            raise BenchmarkError(
                f"ansible-playbook ({label}) failed, rc={proc.returncode}:\n{proc.stdout[-6000:]}"
            )
        return elapsed

    def close_ssh_masters(self) -> None:
        """Ends the ControlPersist masters the SSH runs left (they would linger for 60 s)."""
        for control_dir in self.control_dirs:
            if not control_dir.is_dir():
                continue
            for control_socket in control_dir.iterdir():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={control_socket}", "-O", "exit", "bench"],
                    capture_output=True,
                    timeout=10,
                )


@dataclass
class Measurements:
    """What one benchmark run measured, for report.build_report."""

    suite: Suite
    module_warmup_runs: int
    module_runs: list[ModuleRun]
    check_kinds: dict[str, int]
    playbook_module_s: list[float]
    baseline_s: list[float]
    warmup_module_s: float
    warmup_baseline_s: float
    versions: dict[str, str]
    load_before: list[float]
    load_after: list[float]
    setup_s: dict[str, float]


def _load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def run_benchmark(
    *, runs: int, warmup: int, playbook_runs: int, keep_workdir: bool = False
) -> Measurements:
    """Sets up the environment, measures, and tears everything down again."""
    environment.check_prerequisites()
    venv = environment.ensure_bench_venv()
    versions = environment.bench_venv_versions(venv)
    load_before = _load_average()
    setup: dict[str, float] = {}

    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="hc-bench-", dir="/tmp"))
        if keep_workdir:
            cleanup.callback(log, f"kept {workdir}: args, playbook vars, inventory, run logs")
        else:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)

        log("booting the fleet machine (systemd-nspawn)")
        started = time.monotonic()
        machine = cleanup.enter_context(environment.fleet_machine())
        setup["machine_boot_s"] = time.monotonic() - started
        started = time.monotonic()
        units = environment.add_bench_units(machine)
        setup["units_start_s"] = time.monotonic() - started
        log(f"{len(units)} units active in {machine.name}; python3 for the baseline")
        setup["machine_python_install_s"] = environment.ensure_python(machine)

        log(f"starting a private dockerd and {CONTAINER_COUNT} containers, waiting until healthy")
        started = time.monotonic()
        engine = cleanup.enter_context(environment.bench_docker_engine())
        setup["containers_healthy_s"] = time.monotonic() - started

        tcp_ports, http_urls = cleanup.enter_context(environment.local_endpoints())
        suite = Suite(
            units,
            machine.bus_address,
            engine.containers,
            engine.docker_host,
            tcp_ports,
            http_urls,
            pick_disks(),
        )

        args_file = write_json(workdir / "args.json", suite.module_args())
        rss_file = workdir / "rss.txt"
        log(f"module: {warmup} warm-up + {runs} measured runs")
        for _ in range(warmup):
            run_module(args_file, rss_file)
        module_runs = [run_module(args_file, rss_file) for _ in range(runs)]
        write_json(workdir / "module-result.json", module_runs[-1].result)
        check_kinds: dict[str, int] = {}
        for check in module_runs[-1].result["checks"]:
            check_kinds[check["kind"]] = check_kinds.get(check["kind"], 0) + 1

        inventory = workdir / "inventory.json"
        write_inventory(inventory, machine)
        module_vars = write_json(workdir / "module-vars.json", suite.module_playbook_vars())
        baseline_vars = write_json(workdir / "baseline-vars.json", suite.baseline_vars())
        ansible = Ansible(venv, inventory, workdir)
        cleanup.callback(ansible.close_ssh_masters)

        log("ansible-playbook: one warm-up of each playbook (not measured)")
        warmup_module_s = ansible.run_playbook(MODULE_PLAYBOOK, "module-warmup", module_vars)
        warmup_baseline_s = ansible.run_playbook(
            BASELINE_PLAYBOOK, "baseline-warmup", baseline_vars
        )
        playbook_module_s: list[float] = []
        baseline_s: list[float] = []
        for index in range(playbook_runs):
            log(f"ansible-playbook: measured round {index + 1} of {playbook_runs}")
            playbook_module_s.append(
                ansible.run_playbook(MODULE_PLAYBOOK, f"module-{index + 1}", module_vars)
            )
            baseline_s.append(
                ansible.run_playbook(BASELINE_PLAYBOOK, f"baseline-{index + 1}", baseline_vars)
            )
        load_after = _load_average()

    return Measurements(
        suite=suite,
        module_warmup_runs=warmup,
        module_runs=module_runs,
        check_kinds=check_kinds,
        playbook_module_s=playbook_module_s,
        baseline_s=baseline_s,
        warmup_module_s=warmup_module_s,
        warmup_baseline_s=warmup_baseline_s,
        versions=versions,
        load_before=load_before,
        load_after=load_after,
        setup_s=setup,
    )
