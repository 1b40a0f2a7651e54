"""The health_check benchmark: one health_check run of a 40-check suite against a real fleet
machine and Docker engine, and the same 40 checks done with Ansible's own modules.

The parts, in the order a run uses them:

    environment   host prerequisites, the baseline's Ansible (.cache/bench-venv), the booted
                  systemd-nspawn machine with its units, the private dockerd with its healthy
                  containers, and the TCP/HTTP endpoints on 127.0.0.1 (all from `testbed`)
    suite         the 40 checks, as the module's args and as the baseline playbook's vars,
                  and the inventory; the playbooks themselves are files in playbooks/
    measurement   the module runs (wall time, peak RSS) and the interleaved playbook runs
    report        the JSON document (ci-artifacts/bench/health_check.json), written
                  atomically, and the table on stdout

The entry point is scripts/bench_health_check.py (`make bench`).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
MODULE_BINARY = REPO_ROOT / "roles" / "ops" / "health_check" / "library" / "health_check"
ANSIBLE_CONFIG = REPO_ROOT / "ansible.cfg"
CACHE_DIR = REPO_ROOT / ".cache"
RESULT_PATH = REPO_ROOT / "ci-artifacts" / "bench" / "health_check.json"
PLAYBOOK_DIR = Path(__file__).resolve().parent / "playbooks"


class BenchmarkError(RuntimeError):
    """Setup failed or a run was not all healthy: the figures would mean nothing."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def display_path(path: Path) -> str:
    """`path` relative to the repository when it lies inside it, else as given."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
