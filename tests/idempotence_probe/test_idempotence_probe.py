"""idempotence_probe as operators meet it: real ansible-playbook runs of `state: snapshot` and
`state: compare` on temp trees, systemd units of a real systemd (an nspawn machine, over its
D-Bus), a hung FUSE mount, ansible-doc, and the binary run by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, ROLE_LIBRARY, venv_tool

PROBE = ROLE_LIBRARY / "idempotence_probe"
INVENTORY = REPO_ROOT / "inventory" / "localhost.yml"
TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def probe_binary() -> Path:
    if not (PROBE.is_file() and os.access(PROBE, os.X_OK)):
        pytest.fail(f"{PROBE.relative_to(REPO_ROOT)} is missing: run `make install` first",
                    pytrace=False)
    return PROBE


def code_parameters() -> list[str]:
    """The parameters the module accepts, as it states them (`--parameters`, from its Args)."""
    spec = subprocess.run([str(PROBE), "--parameters"], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    return sorted(json.loads(spec))


def make_tree(root: Path) -> Path:
    tree = root / "srv"
    (tree / "app" / "bin").mkdir(parents=True)
    (tree / "app" / "app.conf").write_text("port = 8080\n")
    (tree / "app" / "bin" / "run").write_text("#!/bin/sh\nexec true\n")
    (tree / "app" / "bin" / "run").chmod(0o755)
    (tree / "app" / "README").write_text("read me\n")
    # Timestamps in the past, in whole seconds: a change made during the test always moves
    # mtime, and Ansible's float timestamps (file: modification_time=preserve) keep them exact.
    past_ns = (int(os.stat(tree).st_mtime) - 100) * 1_000_000_000
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, ns=(past_ns, past_ns), follow_symlinks=False)
    return tree


def run_playbook(ansible_env: dict[str, str], workdir: Path, tasks: list[dict[str, Any]],
                 *extra_args: str) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """Runs `tasks` on localhost; each task that registers `r_<name>` is written to a JSON file,
    returned as {name: result}."""
    registered = [t["register"] for t in tasks if "register" in t]
    results_file = workdir / "results.json"
    collect = {
        "name": "Collect the registered results",
        "ansible.builtin.copy": {
            "dest": str(results_file),
            "content": "{{ {" + ", ".join(f"'{r}': {r} | default({{}})" for r in registered)
            + "} | to_json }}",
            "mode": "0600",
        },
        "check_mode": False,
    }
    playbook = [{
        "name": "idempotence_probe test",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [*tasks, collect],
    }]
    path = workdir / "playbook.yml"
    path.write_text(json.dumps(playbook))
    results_file.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(INVENTORY), str(path), *extra_args],
        cwd=REPO_ROOT, env=ansible_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300,
    )
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return proc, results


def probe_task(register: str, **params: Any) -> dict[str, Any]:
    return {"name": f"Probe {register}", "idempotence_probe": params, "register": register,
            "ignore_errors": True}


def kinds(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(entry.get("path") or entry.get("unit") or "?", entry["kind"])
            for entry in result.get("drift", [])}


def test_a_playbook_catches_ok_tasks_that_change_content_and_mode(
        probe_binary, ansible_env, tmp_path):
    tree = make_tree(tmp_path)
    snapshots = tmp_path / "snapshots"
    proc, results = run_playbook(ansible_env, tmp_path, [
        probe_task("r_snapshot", state="snapshot", name="after-run-1",
                   snapshot_dir=str(snapshots), paths=[str(tree)]),
        {"name": "A task that reports ok but appends to a file",
         "ansible.builtin.shell": f"echo more >> {tree}/app/app.conf", "changed_when": False},
        {"name": "A task that reports ok but flips a mode",
         "ansible.builtin.command": f"chmod 0700 {tree}/app/bin/run", "changed_when": False},
        probe_task("r_compare", state="compare", name="after-run-1",
                   snapshot_dir=str(snapshots), fail_on_drift=True),
    ], "--diff")
    assert "r_compare" in results, proc.stdout
    snapshot, compare = results["r_snapshot"], results["r_compare"]
    assert snapshot["failed"] is False and snapshot["changed"] is False, snapshot
    assert compare["failed"] is True, compare
    assert compare["changed"] is False
    assert kinds(compare) == {
        (f"{tree}/app/app.conf", "content"), (f"{tree}/app/bin/run", "mode")}, compare
    mode = next(d for d in compare["drift"] if d["kind"] == "mode")
    assert (mode["before"], mode["after"]) == ("0755", "0700")
    # --diff shows before and after in the play output.
    assert f"path {tree}/app/bin/run [mode]: 0755" in proc.stdout, proc.stdout
    assert f"path {tree}/app/bin/run [mode]: 0700" in proc.stdout, proc.stdout
    assert (snapshots / "after-run-1.snapshot.jsonl").stat().st_mode & 0o777 == 0o600


def test_clean_tasks_and_reads_that_bump_atime_are_not_flagged(
        probe_binary, ansible_env, tmp_path):
    tree = make_tree(tmp_path)
    snapshots = tmp_path / "snapshots"
    proc, results = run_playbook(ansible_env, tmp_path, [
        probe_task("r_snapshot", state="snapshot", name="s", snapshot_dir=str(snapshots),
                   paths=[str(tree)]),
        {"name": "Copy the content the file already has",
         "ansible.builtin.copy": {"dest": f"{tree}/app/app.conf", "content": "port = 8080\n",
                                  "mode": "0644"}},
        {"name": "A read-only command",
         "ansible.builtin.command": f"cat {tree}/app/README", "changed_when": False},
        {"name": "Bump the access time only",
         "ansible.builtin.file": {"path": f"{tree}/app/README", "state": "touch",
                                  "access_time": "now", "modification_time": "preserve"}},
        {"name": "Create only when missing",
         "ansible.builtin.command": {"cmd": f"touch {tree}/app/app.conf",
                                     "creates": f"{tree}/app/app.conf"}},
        probe_task("r_compare", state="compare", name="s", snapshot_dir=str(snapshots),
                   mtime="fail", fail_on_drift=True),
    ])
    compare = results.get("r_compare")
    assert compare, proc.stdout
    assert compare["failed"] is False, compare
    assert compare["drift"] == [] and compare["drift_count"] == 0, compare


def test_check_mode_snapshot_reports_and_writes_nothing(probe_binary, ansible_env, tmp_path):
    tree = make_tree(tmp_path)
    snapshots = tmp_path / "snapshots"
    proc, results = run_playbook(ansible_env, tmp_path, [
        probe_task("r_snapshot", state="snapshot", name="s", snapshot_dir=str(snapshots),
                   paths=[str(tree)]),
    ], "--check")
    snapshot = results.get("r_snapshot")
    assert snapshot, proc.stdout
    assert snapshot["failed"] is False, snapshot
    assert snapshot["snapshot"]["written"] is False
    assert snapshot["snapshot"]["entries"]["paths"] == 6, snapshot
    assert snapshot["msg"].startswith("check mode:"), snapshot
    assert not snapshots.exists()


def test_compare_without_a_snapshot_fails_clearly(probe_binary, ansible_env, tmp_path):
    proc, results = run_playbook(ansible_env, tmp_path, [
        probe_task("r_compare", state="compare", name="never-taken",
                   snapshot_dir=str(tmp_path / "none")),
        probe_task("r_bad_name", state="snapshot", name="../../etc/cron.d/x",
                   paths=[str(tmp_path)]),
    ])
    assert results["r_compare"]["failed"] is True, proc.stdout
    assert results["r_compare"]["msg"].startswith("snapshot 'never-taken' not found")
    assert results["r_bad_name"]["failed"] is True
    assert results["r_bad_name"]["msg"].startswith("parameter 'name':")


@pytest.fixture(scope="module")
def units_machine():
    from testbed import machines

    if os.geteuid() != 0:
        pytest.fail("booting an nspawn machine needs root", pytrace=False)
    machines.ensure_host_tools()
    rootfs = machines.ensure_rootfs()
    with machines.booted(f"ip-units-{os.getpid()}", rootfs) as machine:
        yield machine


def test_systemd_unit_state_drift_over_dbus(probe_binary, ansible_env, tmp_path, units_machine):
    units = ["hc-active.service", "hc-idle.service", "hc-no-such-unit.service"]
    common = {"snapshot_dir": str(tmp_path / "snapshots"), "name": "units",
              "systemd_bus": units_machine.bus_address}
    proc, results = run_playbook(ansible_env, tmp_path, [
        probe_task("r_snapshot", state="snapshot", systemd_units=units, **common),
        probe_task("r_clean", state="compare", fail_on_drift=True, **common),
    ])
    assert results["r_snapshot"]["failed"] is False, results["r_snapshot"]
    assert results["r_snapshot"]["snapshot"]["entries"]["unit"] == 3
    assert results["r_clean"]["failed"] is False and results["r_clean"]["drift"] == [], results
    started = units_machine.run("systemctl", "start", "hc-idle.service")
    assert started.returncode == 0, started.stderr
    try:
        proc, results = run_playbook(ansible_env, tmp_path, [
            probe_task("r_compare", state="compare", fail_on_drift=True, **common)])
    finally:
        units_machine.run("systemctl", "stop", "hc-idle.service")
    compare = results["r_compare"]
    assert compare["failed"] is True, proc.stdout
    assert kinds(compare) == {("hc-idle.service", "unit_state")}, compare
    (drift,) = compare["drift"]
    assert drift["before"]["active_state"] == "inactive"
    assert drift["after"]["active_state"] in ("active", "activating")
    assert drift["before"]["unit_file_state"] == drift["after"]["unit_file_state"] == "disabled"


def test_an_unreachable_bus_fails_the_snapshot_naming_it(probe_binary, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({
        "state": "snapshot", "name": "x", "snapshot_dir": str(tmp_path / "s"),
        "systemd_units": ["ssh.service"], "systemd_bus": f"unix:path={tmp_path}/no-bus",
        "timeout": "2s"}))
    proc = subprocess.run([str(probe_binary), str(args)], capture_output=True, text=True,
                          timeout=60)
    result = json.loads(proc.stdout)
    assert result["failed"] is True
    assert result["msg"].startswith("systemd_units: cannot connect to the system bus"), result
    assert not (tmp_path / "s").exists()


def run_under_hung_mount(probe_binary: Path, tree: Path, args: dict[str, Any],
                         tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-m",
         "testbed.hung_fuse", str(tree / "mnt"), "20", "--", str(probe_binary), str(args_file)],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    return run, json.loads(run["stdout"])


def test_a_hung_mount_inside_a_tree_neither_hangs_nor_breaks_the_snapshot(
        probe_binary, tmp_path):
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        pytest.fail("needs root and /dev/fuse (the FUSE kernel module)", pytrace=False)
    tree = Path(tempfile.mkdtemp(prefix="ip-hung-", dir="/tmp"))
    try:
        (tree / "mnt").mkdir()
        (tree / "file").write_text("x\n")
        base = {"state": "snapshot", "paths": [str(tree)],
                "snapshot_dir": str(tmp_path / "snapshots")}
        run, result = run_under_hung_mount(probe_binary, tree, {**base, "name": "stay"},
                                           tmp_path)
        assert run["hung"] is False and run["elapsed_s"] < 10, run
        assert result["failed"] is False, result
        assert result["snapshot"]["mountpoints_not_entered"] == 1, result
        lines = (tmp_path / "snapshots" / "stay.snapshot.jsonl").read_text()
        assert f'"path":"{tree}/mnt","type":"mountpoint"' in lines, lines

        # Asked to cross mounts: the look at the hung one is given up after the timeout.
        run, result = run_under_hung_mount(
            probe_binary, tree,
            {**base, "name": "cross", "one_file_system": False, "timeout": "1s"}, tmp_path)
        assert run["hung"] is False and run["elapsed_s"] < 10, run
        assert result["failed"] is False, result
        assert result["snapshot"]["errors"] == 1, result
        assert "did not answer within 1s" in result["warnings"][0], result
    finally:
        for leftover in sorted(tree.rglob("*"), reverse=True):
            (leftover.rmdir if leftover.is_dir() else leftover.unlink)()
        tree.rmdir()


def test_ansible_doc_documents_exactly_the_parameters_of_the_code(probe_binary, ansible_env):
    proc = subprocess.run(
        [str(venv_tool("ansible-doc")), "--json", "-M", str(ROLE_LIBRARY), "idempotence_probe"],
        cwd=REPO_ROOT, env=ansible_env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)["idempotence_probe"]
    options = doc["doc"]["options"]
    assert set(options) == set(code_parameters())
    assert options["state"]["choices"] == ["snapshot", "compare"]
    assert options["mtime"]["default"] == "warn"
    assert options["snapshot_dir"]["default"] == "/var/lib/idempotence_probe"
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert doc["doc"]["attributes"]["diff_mode"]["support"] == "full"
    assert {"drift", "ignored", "snapshot", "drift_count"} <= set(doc["return"])
    rendered = subprocess.run(
        [str(venv_tool("ansible-doc")), "idempotence_probe"],
        cwd=REPO_ROOT, env={**ansible_env, "ANSIBLE_LIBRARY": str(ROLE_LIBRARY)},
        capture_output=True, text=True, timeout=120,
    )
    assert rendered.returncode == 0 and "fail_on_drift" in rendered.stdout, rendered.stderr


def test_the_binary_by_hand_help_version_and_one_json_object(probe_binary, tmp_path):
    help_text = subprocess.run([str(probe_binary), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0, help_text.stderr
    parameters = help_text.stdout.split("Parameters: ", 1)[1].splitlines()[0]
    assert set(parameters.split(", ")) == set(code_parameters()), help_text.stdout
    version = subprocess.run([str(probe_binary), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("idempotence_probe ")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run([str(probe_binary), str(bad)], capture_output=True, text=True)
    result = json.loads(proc.stdout)
    assert result["failed"] is True and "not valid JSON" in result["msg"]
    assert proc.returncode == 1
