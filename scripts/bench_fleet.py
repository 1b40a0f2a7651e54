#!/usr/bin/env python3
"""Fleet benchmark: whole ansible-playbook runs against 1, 4, 8 and 16 nspawn machines over
SSH (forks = hosts), the same checks done five ways on the same hosts:

    module-cold     health_check through its action plugin, host cache emptied first: the
                    binary is sent once per host
    module-warm     the same play again: the cached binary is checked by hash and run
    builtins        Ansible's own modules doing the same checks over the same SSH:
                    systemd_service (status only) + assert per unit
                    (service_facts takes 5 s a host here: not used), command df + assert (disk; setup's
                    mount facts leave out the machines' overlay root),
                    wait_for (TCP)
    mitogen         the same built-ins play under Mitogen (`strategy: mitogen_linear`)
    noop            a do-nothing static binary module (sent normally by Ansible): the floor

The checks: 3 systemd units active (dbus, ssh, journald), / under 95 % used, TCP connect to
the machine's own sshd. Hosts are the testbed's `python` flavour (the built-ins and Mitogen need
python3 there; the binary modules do not use it). Every run uses the same ansible.cfg
(pipelining on, the default ssh connection with ControlPersist) and starts without an SSH
connection to reuse: each run gets its own, new control path dir (ANSIBLE_SSH_CONTROL_PATH_DIR;
ansible-core 2.19 would otherwise use ~/.ansible/cp, whatever ANSIBLE_HOME says).

Controller CPU is user+sys of the whole ansible-playbook process tree, from the kernel's
rusage of waited-for children: this process is made a child subreaper, so the ssh
ControlPersist masters, which detach from ansible-playbook, are reparented here and are waited
for (and their CPU counted) at the end of each run.

Figures: min/median/max wall and CPU per (hosts, variant), per-host cost, ratios; printed and
written to ci-artifacts/bench/fleet.json.

    make bench-fleet            (builds and installs the modules first)
    .venv/bin/python scripts/bench_fleet.py [--sizes 1 4 8 16] [--runs 3]

Needs root (systemd-nspawn), and PyPI on a first run (mitogen, pinned below, into .venv).
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from testbed.machines import ssh_command, ssh_fleet, write_inventory  # noqa: E402

VENV_BIN = REPO_ROOT / ".venv" / "bin"
MITOGEN = "mitogen==0.3.54"
ROLE = REPO_ROOT / "roles" / "ops" / "health_check"
OUT = REPO_ROOT / "ci-artifacts" / "bench" / "fleet.json"
UNITS = ["dbus.service", "ssh.service", "systemd-journald.service"]
VARIANTS = ["module-cold", "module-warm", "builtins", "mitogen", "noop"]
PR_SET_CHILD_SUBREAPER = 36

NOOP_C = r"""
#include <stdio.h>
int main(void) { puts("{\"changed\": false, \"failed\": false, \"msg\": \"nothing done\"}"); return 0; }
"""

MODULE_PLAY = """\
- name: Fleet checks with the binary module
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Check units, disk and TCP
      health_check:
        systemd: {units}
        disks: [{{path: /, max_used_percent: 95}}]
        tcp: ["127.0.0.1:{{{{ ansible_port }}}}"]
      register: result
      failed_when: result.failed or result.summary.status != 'pass'
"""

BUILTINS_PLAY = """\
- name: Fleet checks with Ansible's own modules
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Read the units
      ansible.builtin.systemd_service:
        name: "{{{{ item }}}}"
      loop: {units}
      register: units

    - name: Units are active
      ansible.builtin.assert:
        that: "item.status.ActiveState == 'active'"
        quiet: true
      loop: "{{{{ units.results }}}}"
      loop_control:
        label: "{{{{ item.item }}}}"

    - name: Read the root disk's usage
      ansible.builtin.command: df --output=pcent /
      register: root_disk
      changed_when: false

    - name: Root disk under 95 %
      ansible.builtin.assert:
        that: "root_disk.stdout_lines[-1] | trim | replace('%', '') | int < 95"
        quiet: true

    - name: TCP connect
      ansible.builtin.wait_for:
        host: 127.0.0.1
        port: "{{{{ ansible_port }}}}"
        timeout: 5
"""

NOOP_PLAY = """\
- name: Do-nothing binary module
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Run it
      noop_module:
"""

ANSIBLE_CFG = """\
[defaults]
interpreter_python = /usr/bin/python3
retry_files_enabled = False
host_key_checking = False
forks = 50
library = {library}
action_plugins = {action_plugins}
stdout_callback = default

# Generous: a loaded controller must not turn slow connects into unreachable hosts.
timeout = 60

[ssh_connection]
pipelining = True
"""


def log(message: str) -> None:
    print(f"bench_fleet: {message}", file=sys.stderr, flush=True)


def ensure_mitogen() -> Path:
    try:
        import ansible_mitogen  # noqa: F401
    except ImportError:
        log(f"installing {MITOGEN} into .venv")
        subprocess.run([str(VENV_BIN / "pip"), "install", "-q", MITOGEN], check=True)
    found = subprocess.run(
        [str(VENV_BIN / "python"), "-c",
         "import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))"],
        capture_output=True, text=True, check=True,
    )
    return Path(found.stdout.strip()) / "plugins" / "strategy"


def build_noop(workdir: Path) -> Path:
    library = workdir / "noop_library"
    library.mkdir()
    source = workdir / "noop.c"
    source.write_text(NOOP_C)
    subprocess.run(["musl-gcc", "-static", "-Os", "-s", "-o", str(library / "noop_module"), str(source)],
                   check=True)
    return library


def reap_detached() -> None:
    """Ends the ssh masters that were reparented to this process and waits for each of them
    (their rusage lands in RUSAGE_CHILDREN). The machines are children too: left alone."""
    me = os.getpid()
    masters = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (proc / "stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == me and comm == "ssh":
                masters.append(int(proc.name))
    for pid in masters:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in masters:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def timed_run(command: list[str], env: dict, cwd: Path) -> tuple[float, float, str, int]:
    # A control path dir of its own for every run: no ControlPersist master of an earlier run
    # (or of another ansible-playbook on this machine) can be reused. ~/.ansible/cp, where
    # ansible-core 2.19 keeps them by default, is not touched: other runs may be using it.
    control_dir = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(command, env={**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir)},
                          cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - started
    reap_detached()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(control_dir, ignore_errors=True)
    return wall, cpu, proc.stdout, proc.returncode


def stats(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        log("needs root (systemd-nspawn)")
        return 1
    # SIGTERM ends the run through the finally blocks, which power the machines off.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("prctl(PR_SET_CHILD_SUBREAPER) failed: detached ssh masters would not be counted")
        return 1
    binary = ROLE / "library" / "health_check"
    if not binary.is_file():
        log(f"{binary} is missing: run `make install`")
        return 1
    strategy_dir = ensure_mitogen()

    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    noop_library = build_noop(workdir)
    plays = {
        "module": MODULE_PLAY.format(units=json.dumps(UNITS)),
        "builtins": BUILTINS_PLAY.format(units=json.dumps(UNITS)),
        "noop": NOOP_PLAY,
    }
    for name, text in plays.items():
        (workdir / f"{name}.yml").write_text(text)
    (workdir / "ansible.cfg").write_text(ANSIBLE_CFG.format(
        library=f"{ROLE / 'library'}:{noop_library}", action_plugins=ROLE / "action_plugins"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    base_env.update(ANSIBLE_CONFIG=str(workdir / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                    PATH=f"{VENV_BIN}{os.pathsep}{base_env.get('PATH', '')}")
    env_for = {
        "module-cold": base_env, "module-warm": base_env, "builtins": base_env, "noop": base_env,
        "mitogen": {**base_env, "ANSIBLE_STRATEGY_PLUGINS": str(strategy_dir),
                    "ANSIBLE_STRATEGY": "mitogen_linear"},
    }
    play_for = {"module-cold": "module", "module-warm": "module", "builtins": "builtins",
                "mitogen": "builtins", "noop": "noop"}

    results: dict = {}
    try:
        with ssh_fleet(max(args.sizes), prefix="bfleet", flavour="python") as machines:
            for size in args.sizes:
                fleet = machines[:size]
                inventory = write_inventory(fleet, workdir / f"hosts-{size}.ini", python=True)
                for variant in VARIANTS:
                    results.setdefault(str(size), {})[variant] = {"wall_s": [], "cpu_s": []}
                for repetition in range(args.runs + 1):  # the first round is a warm-up
                    for variant in VARIANTS:
                        if variant == "module-cold":
                            for machine in fleet:
                                subprocess.run(ssh_command(machine, "rm -rf /var/cache/fleetverify.ops"),
                                               check=True, capture_output=True, timeout=60)
                        command = [str(VENV_BIN / "ansible-playbook"), "-f", str(size), "-i",
                                   str(inventory), str(workdir / f"{play_for[variant]}.yml")]
                        wall, cpu, output, rc = timed_run(command, env_for[variant], workdir)
                        entry = results[str(size)][variant]
                        if rc != 0:
                            # Counted and shown, not timed: a failed run is no figure.
                            reasons = [line for line in output.splitlines()
                                       if "UNREACHABLE" in line or "FAILED!" in line]
                            log(f"{variant} on {size} hosts failed (rc {rc}): {reasons[:2]}")
                            entry.setdefault("failed_runs", 0)
                            entry["failed_runs"] += 1
                            continue
                        if repetition == 0:
                            continue
                        entry["wall_s"].append(wall)
                        entry["cpu_s"].append(cpu)
                        log(f"{size:2d} hosts {variant:12s} wall {wall:6.2f} s  cpu {cpu:6.2f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {}
    lines = [f"{'hosts':>5} {'variant':12} {'wall min/med/max s':>22} {'cpu min/med/max s':>22} "
             f"{'cpu/host':>9} {'wall/host':>9}"]
    for size, variants in results.items():
        summary[size] = {}
        for variant, entry in variants.items():
            if not entry["wall_s"]:
                summary[size][variant] = {"runs": entry}
                lines.append(f"{size:>5} {variant:12} no successful run")
                continue
            wall, cpu = stats(entry["wall_s"]), stats(entry["cpu_s"])
            summary[size][variant] = {
                "wall_s": wall, "cpu_s": cpu,
                "cpu_s_per_host": cpu["median"] / int(size),
                "wall_s_per_host": wall["median"] / int(size),
                "runs": entry,
            }
            lines.append(
                f"{size:>5} {variant:12} {wall['min']:6.2f}/{wall['median']:6.2f}/{wall['max']:6.2f} "
                f"{cpu['min']:6.2f}/{cpu['median']:6.2f}/{cpu['max']:6.2f} "
                f"{cpu['median'] / int(size):9.3f} {wall['median'] / int(size):9.3f}"
            )
        med = {v: summary[size][v] for v in variants}
        if any("wall_s" not in m for m in med.values()):
            continue
        noop_wall = med["noop"]["wall_s"]["median"]
        noop_cpu = med["noop"]["cpu_s"]["median"]
        summary[size]["ratios"] = {
            "warm_wall_over_noop": med["module-warm"]["wall_s"]["median"] / noop_wall,
            "warm_cpu_over_noop": med["module-warm"]["cpu_s"]["median"] / noop_cpu,
            "warm_cpu_over_mitogen": med["module-warm"]["cpu_s"]["median"] / med["mitogen"]["cpu_s"]["median"],
            "warm_cpu_over_builtins": med["module-warm"]["cpu_s"]["median"] / med["builtins"]["cpu_s"]["median"],
            "cold_wall_over_warm": med["module-cold"]["wall_s"]["median"] / med["module-warm"]["wall_s"]["median"],
            "mitogen_wall_over_warm": med["mitogen"]["wall_s"]["median"] / med["module-warm"]["wall_s"]["median"],
            "builtins_wall_over_warm": med["builtins"]["wall_s"]["median"] / med["module-warm"]["wall_s"]["median"],
        }
        lines.append("      ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in summary[size]["ratios"].items()))
    print("\n".join(lines))
    doc = {
        "kind": "bench_fleet",
        "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "runs_per_point": args.runs,
        "checks": {"systemd": UNITS, "disk": "/ < 95 %", "tcp": "the machine's sshd"},
        "results": summary,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.rename(OUT)
    log(f"wrote {OUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
