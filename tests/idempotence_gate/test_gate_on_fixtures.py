"""The gate on the fixture roles, on localhost (ansible_connection=local, scratch dirs only):
every fault class of fixtures/roles is caught and named (task with file:line, drifted path
and kind), and every clean trap passes. One gate run for all of them, three roles at a time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import (
    FIXTURE_ROLES,
    LOCAL_FAULTS,
    LOCAL_TRAPS,
    GateRun,
    local_inventory,
    run_gate,
    task_location,
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[GateRun, Path]:
    workdir = tmp_path_factory.mktemp("gate-local")
    scratch = workdir / "scratch"
    run = run_gate(
        "-i", str(local_inventory(workdir / "local.yml")),
        "--roles-path", str(FIXTURE_ROLES),
        "-e", f"fixture_root={scratch}",
        "--no-facts",
        "--jobs", "3",
        *LOCAL_FAULTS, *LOCAL_TRAPS,
        artifacts=workdir / "evidence",
    )
    return run, scratch


def changed_locations(doc: dict) -> set[str]:
    return {t["location"] for t in doc["changed_tasks"]}


def drift_of(doc: dict) -> set[tuple[str, str]]:
    return {(d.get("path"), d["kind"]) for d in doc["drift"]}


# fault role -> (tasks that must be reported changed on run 2, (file, drift kind) that must be
# reported). Paths are relative to the role's scratch dir.
EXPECTED_FAULTS = {
    "fault_always_changed": (["Render the config with a generated-at stamp"], [("app.conf", "content")]),
    "fault_command_without_changed_when": (["Read the kernel release"], []),
    "fault_hidden_content": ([], [("deployed-at", "content")]),
    "fault_hidden_mode": ([], [("hook.sh", "mode")]),
    "fault_counter_script": ([], [("state/deploys", "content")]),
    "fault_mtime_touch": (["Make sure the ready marker exists"], [("ready", "mtime")]),
    "fault_mtime_sort": ([], [("allow.list", "mtime")]),
}


def test_the_gate_fails_and_names_every_faulty_role(batch):
    run, _ = batch
    assert run.returncode == 1, run.describe()
    summary = run.summary()
    verdicts = {row["role"]: row["verdict"] for row in summary["roles"]}
    assert verdicts == {
        **{role: "not idempotent" for role in LOCAL_FAULTS},
        **{role: "idempotent" for role in LOCAL_TRAPS},
    }, run.describe()
    # The final message names every faulty role; no trap is named.
    last_line = run.output.strip().splitlines()[-1]
    assert last_line.startswith("verify_idempotence: not idempotent:"), run.describe()
    for role in LOCAL_FAULTS:
        assert f"{role} (" in last_line
    for role in LOCAL_TRAPS:
        assert f"{role} (" not in last_line


@pytest.mark.parametrize("role", sorted(EXPECTED_FAULTS))
def test_each_fault_is_caught_and_localised(batch, role):
    run, scratch = batch
    doc = run.role(role)
    tasks, drifts = EXPECTED_FAULTS[role]
    assert doc["verdict"] == "not idempotent", run.describe()
    assert changed_locations(doc) == {task_location(role, t) for t in tasks}, json.dumps(doc["changed_tasks"], indent=1)
    expected_drift = {(str(scratch / role / name), kind) for name, kind in drifts}
    assert drift_of(doc) == expected_drift, json.dumps(doc["drift"], indent=1)
    for entry in doc["drift"]:
        assert entry["before"] != entry["after"], entry
        assert entry["hosts"] == ["localhost"] and entry["runs"] == [2]
    # The terminal output names the same tasks and paths.
    for task in tasks:
        assert task_location(role, task) in run.output
    for name, _ in drifts:
        assert str(scratch / role / name) in run.output


def test_the_faults_molecule_would_miss_are_reported_ok_by_ansible(batch):
    """Run 2 of the hidden faults reports nothing changed: only the drift gives them away."""
    run, _ = batch
    for role in ("fault_hidden_content", "fault_hidden_mode", "fault_counter_script", "fault_mtime_sort"):
        doc = run.role(role)
        assert doc["runs"][1]["changed"] == [], (role, doc["runs"][1])
        assert doc["drift"], role


@pytest.mark.parametrize("role", LOCAL_TRAPS)
def test_each_clean_trap_passes(batch, role):
    run, _ = batch
    doc = run.role(role)
    assert doc["verdict"] == "idempotent", run.describe()
    assert doc["changed_tasks"] == [] and doc["drift"] == [] and doc["errors"] == []
    # The trap really did something on run 1, and the probe watched it.
    assert doc["runs"][0]["changed"], doc["runs"][0]
    assert doc["watch"]["localhost"]["paths"], doc["watch"]


def test_the_watch_set_comes_from_run_1s_results(batch):
    run, scratch = batch
    doc = run.role("trap_atime_reads")
    paths = set(doc["watch"]["localhost"]["paths"])
    # file's path, copy's dest, slurp's src is not a target but stat's path is.
    assert {str(scratch / "trap_atime_reads"), str(scratch / "trap_atime_reads" / "nodes")} <= paths


def test_a_declared_ignore_is_applied_and_listed_with_its_reason(batch):
    run, scratch = batch
    doc = run.role("trap_declared_volatile")
    assert doc["ignores"] == [{
        "path": "**/trap_declared_volatile/cache",
        "reason": "the lookup cache is rebuilt on every run by design; it holds no configuration",
        "declared_in": "tests/idempotence_gate/fixtures/roles/trap_declared_volatile/meta/idempotence.yml",
    }]
    ignored = {(d["path"], d["kind"]) for d in doc["ignored_drift"]}
    assert (str(scratch / "trap_declared_volatile" / "cache" / "lookup.db"), "content") in ignored, doc["ignored_drift"]
    assert all(d["reason"] for d in doc["ignored_drift"])
    summary_md = (run.artifacts / "summary.md").read_text()
    assert "**/trap_declared_volatile/cache" in summary_md and "rebuilt on every run" in summary_md


def test_the_evidence_has_runs_durations_commit_and_progress_lines(batch):
    run, _ = batch
    summary = run.summary()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=FIXTURE_ROLES).stdout.strip()
    assert summary["git_commit"] == head
    assert summary["roles_total"] == len(LOCAL_FAULTS) + len(LOCAL_TRAPS)
    for role in (*LOCAL_FAULTS, *LOCAL_TRAPS):
        doc = run.role(role)
        assert [r["run"] for r in doc["runs"]] == [1, 2]
        assert all(r["duration_s"] > 0 and r["returncode"] == 0 for r in doc["runs"])
        assert f"{role}: start" in run.output
        assert any(line.endswith("s)") and f"{role}: {doc['verdict'].upper()} (" in line
                   for line in run.output.splitlines())
    history = (run.artifacts / "history.md").read_text()
    for role in LOCAL_FAULTS:
        assert f"| {role} |" in history
    for role in LOCAL_TRAPS:
        assert f"| {role} |" not in history
