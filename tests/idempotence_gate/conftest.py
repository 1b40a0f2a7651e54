"""Running the real idempotence gate (scripts/verify_idempotence.sh, real ansible-playbook, the
real idempotence_probe binary) on the fixture roles of fixtures/roles and reading its evidence.

Every fixture role works in `{{ fixture_root }}/<role>`; the tests point fixture_root at a temp
dir for localhost runs, so the CI machine itself only ever sees scratch files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GATE = REPO_ROOT / "scripts" / "verify_idempotence.sh"
FIXTURE_ROLES = Path(__file__).resolve().parent / "fixtures" / "roles"
PROBE_LIBRARY = Path(
    os.environ.get("IDEMPOTENCE_PROBE_LIBRARY")
    or REPO_ROOT / "roles" / "ops" / "health_check" / "library"
)

# Fault fixtures that only touch their scratch dir: run on localhost (ansible_connection=local).
LOCAL_FAULTS = (
    "fault_always_changed",
    "fault_command_without_changed_when",
    "fault_hidden_content",
    "fault_hidden_mode",
    "fault_counter_script",
    "fault_mtime_touch",
    "fault_mtime_sort",
)
LOCAL_TRAPS = (
    "trap_handler_once",
    "trap_creates",
    "trap_force_false",
    "trap_random_secret",
    "trap_readonly_command",
    "trap_atime_reads",
    "trap_declared_volatile",
)


@dataclass
class GateRun:
    returncode: int
    output: str
    artifacts: Path
    elapsed_s: float

    def summary(self) -> dict[str, Any]:
        return json.loads((self.artifacts / "summary.json").read_text())

    def role(self, name: str) -> dict[str, Any]:
        return json.loads((self.artifacts / f"{name}.json").read_text())

    def describe(self) -> str:
        return f"rc={self.returncode}\n--- gate output ---\n{self.output[-8000:]}"


def require_probe() -> None:
    if not (PROBE_LIBRARY / "idempotence_probe").is_file():
        pytest.fail(
            f"{PROBE_LIBRARY.relative_to(REPO_ROOT)}/idempotence_probe is missing: run "
            "`make install` first", pytrace=False,
        )


def run_gate(*args: str, artifacts: Path, timeout_s: float = 900) -> GateRun:
    require_probe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    started = time.monotonic()
    proc = subprocess.run(
        [str(GATE), "--artifacts", str(artifacts), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
    )
    return GateRun(proc.returncode, proc.stdout, artifacts, time.monotonic() - started)


def local_inventory(path: Path) -> Path:
    path.write_text(
        "all:\n"
        "  hosts:\n"
        "    localhost:\n"
        "      ansible_connection: local\n"
        '      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
    )
    return path


def task_location(role: str, task_name: str, tasks_file: str = "tasks/main.yml") -> str:
    """`tests/.../tasks/main.yml:N` of the task named `task_name` in a fixture role."""
    path = FIXTURE_ROLES / role / tasks_file
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if re.fullmatch(rf"\s*- name: {re.escape(task_name)}(\s+#.*)?", line):
            return f"{path.relative_to(REPO_ROOT)}:{number}"
    raise AssertionError(f"no task {task_name!r} in {path}")
