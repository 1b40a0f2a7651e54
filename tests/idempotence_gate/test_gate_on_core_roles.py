"""The gate's real job: every role under roles/core, each on a fresh gpu- and a fresh
plain-flavoured test machine, converged twice and compared. All must be idempotent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, GateRun, run_gate

CORE_ROLES = sorted(
    f"core/{p.name}" for p in (REPO_ROOT / "roles" / "core").iterdir() if (p / "tasks").is_dir()
)


@pytest.fixture(scope="module")
def core_run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    if os.geteuid() != 0:
        pytest.fail("fresh test machines are systemd-nspawn machines: run as root", pytrace=False)
    return run_gate("--jobs", "3", artifacts=tmp_path_factory.mktemp("gate-core") / "evidence",
                    timeout_s=1500)


def test_there_are_at_least_six_core_roles():
    assert len(CORE_ROLES) >= 6, CORE_ROLES


def test_every_core_role_is_idempotent_on_both_flavours(core_run):
    assert core_run.returncode == 0, core_run.describe()
    summary = core_run.summary()
    assert [row["role"] for row in summary["roles"]] == CORE_ROLES
    assert summary["roles_idempotent"] == len(CORE_ROLES), core_run.describe()
    for role in CORE_ROLES:
        doc = core_run.role(role.replace("/", "."))
        assert sorted(doc["hosts"].values()) == ["gpu", "plain"]
        assert doc["changed_tasks"] == [] and doc["drift"] == [], doc
        # The first run did the work the second run found done.
        assert doc["runs"][0]["tasks"] > 0 and doc["runs"][1]["changed"] == []
        # Something was watched and really compared on every machine.
        for host in doc["hosts"]:
            assert any(doc["watch"][host].values()), (role, doc["watch"])
            if doc["watch"][host]["paths"]:
                assert doc["probe_entries_compared"][host] > 0, (role, doc["probe_entries_compared"])


def test_the_gpu_runtime_configures_the_gpu_machine_and_skips_the_plain_one(core_run):
    doc = core_run.role("core.gpu_runtime")
    by_flavour = {flavour: host for host, flavour in doc["hosts"].items()}
    changed_hosts = {task["host"] for task in doc["runs"][0]["changed"]}
    assert by_flavour["gpu"] in changed_hosts, doc["runs"][0]
    assert by_flavour["plain"] not in changed_hosts, doc["runs"][0]
    assert "/etc/nvidia-container-runtime/config.toml" in doc["watch"][by_flavour["gpu"]]["paths"]
