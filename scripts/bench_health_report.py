#!/usr/bin/env python3
"""Benchmark: what the controller-side deployment report costs per play.

Runs the ops/health_check role with the real ansible-playbook against localhost (one TCP
check, so the module itself is quick) and times the role's report tasks with a small callback
(task start to result on the controller). With --baseline REV it also times the report tasks
of the role as it was at that git revision (the set_fact + file + copy chain), with the same
module binary and the same checks: like with like.

    .venv/bin/python scripts/bench_health_report.py [--runs 7] [--baseline 8221873]

Prints min/median/max per variant and writes ci-artifacts/bench/health_report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
ROLE = REPO_ROOT / "roles" / "ops" / "health_check"
# Task names of the report step, old and new role.
REPORT_TASKS = (
    "Start the deployment health report",
    "Judge this host and write the deployment health report",
    "Merge all hosts into the deployment health summary",
    "Create the summary's directory",
    "Write the summary",
    "Fail the deployment when health checks failed",
)

CALLBACK = '''
import json, os, time
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_durations"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started = {}
        self.took = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.started[task._uuid] = (task.get_name(), time.monotonic())

    def _done(self, result):
        name, start = self.started.get(result._task._uuid, (result._task.get_name(), time.monotonic()))
        self.took[name] = max(self.took.get(name, 0.0), time.monotonic() - start)

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _done

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["TASK_DURATIONS_FILE"], "w") as handle:
            json.dump(self.took, handle)
'''

PLAYBOOK = """\
- name: Report benchmark
  hosts: localhost
  gather_facts: false
  roles:
    - role: ops/health_check
"""


def listener() -> int:
    server = socket.create_server(("127.0.0.1", 0))

    def accept():
        while True:
            conn, _ = server.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def time_variant(roles_dir: Path, work: Path, port: int, runs: int) -> list[float]:
    (work / "callbacks").mkdir(exist_ok=True)
    (work / "callbacks" / "task_durations.py").write_text(CALLBACK)
    playbook = work / "play.yml"
    playbook.write_text(PLAYBOOK)
    role_vars = {
        "health_check_disks": None, "health_check_memory": None, "health_check_load": None,
        "health_check_tcp": [f"127.0.0.1:{port}"],
        "health_check_report_path": str(work / "report" / "deployment-health.json"),
    }
    (work / "vars.json").write_text(json.dumps(role_vars))
    durations_file = work / "durations.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(roles_dir),
        ANSIBLE_CALLBACK_PLUGINS=str(work / "callbacks"), ANSIBLE_CALLBACKS_ENABLED="task_durations",
        TASK_DURATIONS_FILE=str(durations_file), PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        ANSIBLE_HOME=str(work / "ansible_home"),
    )
    samples = []
    for _ in range(runs):
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
             "-e", f"@{work / 'vars.json'}"],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0:
            raise SystemExit(f"playbook failed:\n{proc.stdout}\n{proc.stderr}")
        took = json.loads(durations_file.read_text())
        samples.append(sum(v for k, v in took.items() if k.split(" : ")[-1] in REPORT_TASKS))
    return samples


def stats(samples: list[float]) -> dict[str, float]:
    return {"min_s": min(samples), "median_s": statistics.median(samples), "max_s": max(samples), "runs": len(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", help="git revision of the role to compare with")
    options = parser.parse_args()
    port = listener()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp_path = Path(tmp)
        current = tmp_path / "current"
        current.mkdir()
        results["current"] = stats(time_variant(REPO_ROOT / "roles", current, port, options.runs))
        if options.baseline:
            base = tmp_path / "baseline"
            (base / "roles").mkdir(parents=True)
            archive = subprocess.run(["git", "archive", options.baseline, "roles/ops/health_check"],
                                     cwd=REPO_ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            shutil.copy2(ROLE / "library" / "health_check", base / "roles/ops/health_check/library/health_check")
            results[f"baseline {options.baseline}"] = stats(time_variant(base / "roles", base, port, options.runs))
    for name, row in results.items():
        print(f"{name:>20}: report tasks min {row['min_s'] * 1000:.0f} ms, median {row['median_s'] * 1000:.0f} ms, "
              f"max {row['max_s'] * 1000:.0f} ms ({row['runs']} runs)")
    out = REPO_ROOT / "ci-artifacts" / "bench" / "health_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
