"""The gate in its default mode: every role on fresh systemd-nspawn machines of both flavours
(gpu: nvidia-smi stand-in and /dev/nvidia* nodes; plain: without). A fault seen on one flavour
only is reported as environment-specific; declared extra state is watched; handlers that fire
on run 1 only are not flagged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import FIXTURE_ROLES, GateRun, run_gate, task_location

ROLES = ("fault_gpu_only", "fault_declared_side_effect", "trap_handler_once")


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    if os.geteuid() != 0:
        pytest.fail("fresh test machines are systemd-nspawn machines: run as root", pytrace=False)
    workdir = tmp_path_factory.mktemp("gate-machines")
    return run_gate(
        "--roles-path", str(FIXTURE_ROLES), "--jobs", "3", *ROLES,
        artifacts=workdir / "evidence",
    )


def flavour_hosts(doc: dict) -> dict[str, str]:
    return {flavour: host for host, flavour in doc["hosts"].items()}


def test_each_role_ran_on_a_gpu_and_a_plain_machine(batch):
    assert batch.returncode == 1, batch.describe()
    for role in ROLES:
        doc = batch.role(role)
        assert sorted(doc["hosts"].values()) == ["gpu", "plain"], batch.describe()
        assert doc["errors"] == [], doc["errors"]
        facts = doc["facts"]
        assert {f["distribution"] for f in facts.values()} == {"Debian"}, facts


def test_a_fault_seen_on_the_gpu_flavour_only_is_environment_specific(batch):
    doc = batch.role("fault_gpu_only")
    hosts = flavour_hosts(doc)
    assert doc["verdict"] == "not idempotent"
    assert [(d["path"], d["kind"], d["hosts"], d["environment_specific"]) for d in doc["drift"]] == [
        ("/var/tmp/idempotence-fixtures/fault_gpu_only/gpu-inventory", "content", [hosts["gpu"]], ["gpu"])
    ], json.dumps(doc["drift"], indent=1)
    assert doc["environment_specific"] == doc["drift"]
    assert "only on gpu (environment-specific)" in batch.output
    row = next(r for r in batch.summary()["roles"] if r["role"] == "fault_gpu_only")
    assert row["drift"][0]["environment_specific"] == ["gpu"]
    assert "(only gpu)" in (batch.artifacts / "summary.md").read_text()


def test_declared_extra_state_is_watched_and_its_drift_caught_on_both_flavours(batch):
    doc = batch.role("fault_declared_side_effect")
    assert doc["verdict"] == "not idempotent"
    for host in doc["hosts"]:
        assert "/var/lib/fixture-side-effect" in doc["watch"][host]["paths"]
    drift = {(d["path"], d["kind"]): d for d in doc["drift"]}
    entry = drift[("/var/lib/fixture-side-effect/last-run", "content")]
    assert sorted(entry["hosts"]) == sorted(doc["hosts"])
    assert "environment_specific" not in entry
    assert doc["changed_tasks"] == []


def test_a_handler_that_fires_on_run_1_only_is_not_flagged_on_either_flavour(batch):
    doc = batch.role("trap_handler_once")
    assert doc["verdict"] == "idempotent", batch.describe()
    handlers = [t for t in doc["runs"][0]["changed"] if t["handler"]]
    assert sorted(t["host"] for t in handlers) == sorted(doc["hosts"])
    assert {t["location"] for t in handlers} == {
        task_location("trap_handler_once", "Reload the service", "handlers/main.yml")
    }
    assert doc["runs"][1]["changed"] == []
