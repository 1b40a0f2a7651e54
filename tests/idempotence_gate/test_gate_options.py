"""The gate's options: bad input gets a clear message naming the option (exit 2, nothing run),
--shard splits the roles, --baseline reports new and fixed findings, the history records
the remediation of a fault no longer found, and a role whose converge fails is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import FIXTURE_ROLES, local_inventory, run_gate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_role"], "role(s) not found: no_such_role"),
        (["--runs", "1", "trap_creates"], "--runs: expected a number >= 2"),
        (["--shard", "3/2", "trap_creates"], "--shard: expected I/N with 1 <= I <= N, got '3/2'"),
        (["--shard", "x", "trap_creates"], "--shard: expected I/N"),
        (["--jobs", "0", "trap_creates"], "--jobs: expected a number >= 1"),
        (["--flavours", "tpu", "trap_creates"], "--flavours: expected gpu, plain or gpu,plain"),
        (["--ignore", "/var/cache", "trap_creates"], "--ignore '/var/cache': expected PATH=REASON"),
        (["--watch", "relative/path", "trap_creates"], "--watch: expected an absolute path"),
        (["--limit", "web", "trap_creates"], "--limit: needs -i INVENTORY"),
        (["-i", "/nonexistent/inventory.yml", "trap_creates"], "-i: inventory '/nonexistent/inventory.yml' does not exist"),
        (["--baseline", "/nonexistent/summary.json", "-i", "localhost,", "trap_creates"], "--baseline: cannot read"),
    ],
)
def test_bad_options_are_refused_with_a_message_naming_the_option(tmp_path, args, message):
    run = run_gate("--roles-path", str(FIXTURE_ROLES), *args, artifacts=tmp_path / "evidence")
    assert run.returncode == 2, run.describe()
    assert f"verify_idempotence: {message}" in run.output, run.describe()
    assert not (tmp_path / "evidence").exists()


def test_a_baseline_that_is_not_a_summary_is_refused(tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text('{"schema_version": 1}')
    run = run_gate("-i", "localhost,", "--roles-path", str(FIXTURE_ROLES), "--baseline", str(baseline),
                   "trap_creates", artifacts=tmp_path / "evidence")
    assert run.returncode == 2 and "is not a gate summary.json" in run.output, run.describe()


def test_an_ignore_without_a_reason_in_meta_idempotence_is_an_error_naming_the_file(tmp_path):
    roles = tmp_path / "roles"
    role = roles / "careless"
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "tasks" / "main.yml").write_text("---\n- name: Nothing\n  ansible.builtin.debug:\n    msg: hi\n")
    (role / "meta" / "idempotence.yml").write_text("---\nignore:\n  - path: /var/cache\n")
    run = run_gate("-i", str(local_inventory(tmp_path / "local.yml")), "--roles-path", str(roles),
                   artifacts=tmp_path / "evidence")
    assert run.returncode == 2, run.describe()
    doc = json.loads((tmp_path / "evidence" / "careless.json").read_text())
    assert doc["verdict"] == "error"
    assert "careless/meta/idempotence.yml: ignore[0]: ignoring path '/var/cache' needs a written 'reason'" in doc["errors"][0]
    assert doc["runs"] == []  # nothing was converged


def test_a_role_whose_converge_fails_is_an_error_with_the_failed_task(tmp_path):
    roles = tmp_path / "roles"
    (roles / "broken" / "tasks").mkdir(parents=True)
    (roles / "broken" / "tasks" / "main.yml").write_text(
        "---\n- name: Fail on purpose\n  ansible.builtin.fail:\n    msg: this role is broken\n"
    )
    run = run_gate("-i", str(local_inventory(tmp_path / "local.yml")), "--roles-path", str(roles),
                   "--no-facts", artifacts=tmp_path / "evidence")
    assert run.returncode == 2, run.describe()
    doc = json.loads((tmp_path / "evidence" / "broken.json").read_text())
    assert doc["verdict"] == "error"
    assert doc["runs"][0]["failed"][0]["msg"] == "this role is broken"
    assert doc["runs"][0]["failed"][0]["location"].endswith("broken/tasks/main.yml:2")
    assert "BROKEN: ERROR" not in run.output and "broken: ERROR (" in run.output


def test_shards_split_the_roles_without_overlap(tmp_path):
    roles = sorted(p.name for p in FIXTURE_ROLES.iterdir() if (p / "tasks").is_dir())

    def listed(*args: str) -> list[str]:
        run = run_gate("--roles-path", str(FIXTURE_ROLES), "--list-roles", *args,
                       artifacts=tmp_path / "evidence")
        assert run.returncode == 0, run.describe()
        return run.output.split()

    assert listed() == roles
    shards = [listed("--shard", f"{i}/3") for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == roles
    assert all(len(shard) in (len(roles) // 3, len(roles) // 3 + 1) for shard in shards)


def test_baseline_reports_new_and_fixed_findings_and_history_records_the_fix(tmp_path):
    inventory = local_inventory(tmp_path / "local.yml")
    evidence = tmp_path / "evidence"
    common = ["-i", str(inventory), "--roles-path", str(FIXTURE_ROLES), "--no-facts",
              "-e", f"fixture_root={tmp_path / 'scratch'}", "--jobs", "2"]
    # An earlier state of the world: trap_creates once had a fault (now fixed), and
    # fault_hidden_content had none yet.
    baseline = {
        "schema_version": 1,
        "roles": [
            {"role": "trap_creates", "verdict": "not idempotent",
             "changed_tasks": [{"task": "trap_creates : Initialise the data directory once",
                                "location": "tests/idempotence_gate/fixtures/roles/trap_creates/tasks/main.yml:9"}],
             "drift": []},
            {"role": "fault_hidden_content", "verdict": "idempotent", "changed_tasks": [], "drift": []},
        ],
    }
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    evidence.mkdir()
    (evidence / "history.json").write_text(json.dumps({"schema_version": 1, "findings": [{
        "role": "trap_creates",
        "finding": "task tests/idempotence_gate/fixtures/roles/trap_creates/tasks/main.yml:9 "
                   "trap_creates : Initialise the data directory once",
        "found_in": "0123456789abcdef", "found_at": "2026-01-01T00:00:00Z",
        "fixed_in": None, "fixed_at": None, "detail": {}, "hosts": ["localhost"],
        "environment_specific": None,
    }]}))
    run = run_gate(*common, "--baseline", str(tmp_path / "baseline.json"),
                   "trap_creates", "fault_hidden_content", artifacts=evidence)
    assert run.returncode == 1, run.describe()
    baseline_doc = run.summary()["baseline"]
    assert [f["role"] for f in baseline_doc["new"]] == ["fault_hidden_content"]
    assert baseline_doc["new"][0]["finding"].startswith("drift path ") and baseline_doc["new"][0]["finding"].endswith("deployed-at content")
    assert [f["role"] for f in baseline_doc["fixed"]] == ["trap_creates"]
    assert "new since baseline: fault_hidden_content: drift path" in run.output
    assert "fixed since baseline: trap_creates: task" in run.output

    history = json.loads((evidence / "history.json").read_text())
    by_role = {f["role"]: f for f in history["findings"]}
    head = run.summary()["git_commit"]
    assert by_role["trap_creates"]["found_in"] == "0123456789abcdef"
    assert by_role["trap_creates"]["fixed_in"] == head
    assert by_role["fault_hidden_content"]["found_in"] == head
    assert by_role["fault_hidden_content"]["fixed_in"] is None
    history_md = (evidence / "history.md").read_text()
    assert f"`{head[:12]}`" in history_md and "`0123456789ab`" in history_md and "| open |" in history_md


def test_more_runs_compare_each_repeat_run_with_the_first_runs_snapshot(tmp_path):
    run = run_gate("-i", str(local_inventory(tmp_path / "local.yml")), "--roles-path", str(FIXTURE_ROLES),
                   "--no-facts", "--runs", "3", "-e", f"fixture_root={tmp_path / 'scratch'}",
                   "fault_counter_script", artifacts=tmp_path / "evidence")
    assert run.returncode == 1, run.describe()
    doc = run.role("fault_counter_script")
    assert [r["run"] for r in doc["runs"]] == [1, 2, 3]
    [drift] = doc["drift"]
    assert drift["path"] == str(tmp_path / "scratch" / "fault_counter_script" / "state" / "deploys")
    assert drift["kind"] == "content" and drift["runs"] == [2, 3]
    assert "changed on run" not in run.output  # the script says ok every time


def test_a_role_over_its_time_budget_is_stopped_and_reported(tmp_path):
    roles = tmp_path / "roles"
    (roles / "slow" / "tasks").mkdir(parents=True)
    (roles / "slow" / "tasks" / "main.yml").write_text(
        "---\n- name: Take far too long\n  ansible.builtin.command: sleep 120\n  changed_when: false\n"
    )
    run = run_gate("-i", str(local_inventory(tmp_path / "local.yml")), "--roles-path", str(roles),
                   "--no-facts", "--role-timeout", "10", artifacts=tmp_path / "evidence")
    assert run.returncode == 2, run.describe()
    assert run.elapsed_s < 60, run.describe()
    doc = run.role("slow")
    assert doc["verdict"] == "error"
    assert doc["errors"][0] == "run 1 ran out of the role's time budget (10 s)"
    assert doc["runs"][0]["timed_out"] is True
