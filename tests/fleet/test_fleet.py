"""A real fleet: two Python-free Debian machines booted with systemd-nspawn, reached by the
real ansible-playbook over SSH. The role runs the static module on both (no Python there), the
controller merges both hosts into one deployment summary, and the play fails because one host
has a failed mandatory unit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, venv_tool
from testbed.machines import ssh_command, ssh_fleet
from testbed.machines import host_vars as machine_vars

PLAYBOOK = """\
- name: Verify the fleet after a deploy
  hosts: fleet
  gather_facts: false
  roles:
    - role: ops/health_check
"""


@pytest.fixture(scope="module")
def fleet():
    with ssh_fleet(2, prefix="hcfleet") as machines:
        yield machines


def write_inventory(path: Path, machines, host_vars: dict[str, dict]) -> None:
    hosts = {}
    for index, machine in enumerate(machines):
        name = f"node{index + 1}"
        hosts[name] = {
            **machine_vars(machine),
            # Checks that depend only on the machine under test, not on the CI host's load.
            "health_check_disks": None,
            "health_check_memory": None,
            "health_check_load": None,
            "health_check_system_state": None,
            **host_vars.get(name, {}),
        }
    path.write_text(json.dumps({"all": {"children": {"fleet": {"hosts": hosts}}}}))


def run_playbook(tmp_path: Path, ansible_env, inventory: Path, *extra: str):
    playbook = tmp_path / "fleet.yml"
    playbook.write_text(PLAYBOOK)
    return subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory), str(playbook), *extra],
        cwd=REPO_ROOT,
        env=ansible_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


def test_fleet_hosts_have_no_python(fleet):
    for machine in fleet:
        proc = subprocess.run(
            ssh_command(machine, "command -v python3 python || echo none"),
            capture_output=True, text=True, timeout=30,
        )
        assert proc.stdout.strip() == "none", proc.stdout


def test_role_over_ssh_merges_hosts_and_fails_on_a_failed_unit(fleet, tmp_path, module_binary, ansible_env):
    inventory = tmp_path / "inventory.json"
    report = tmp_path / "report" / "deployment-health.json"
    write_inventory(
        inventory,
        fleet,
        {
            "node1": {"health_check_systemd": ["hc-active.service", "ssh.service", "dbus.service"]},
            "node2": {"health_check_systemd": ["hc-active.service", "hc-failing.service"]},
        },
    )
    proc = run_playbook(tmp_path, ansible_env, inventory, "-e", f"health_check_report_path={report}")
    out = proc.stdout
    assert proc.returncode != 0, out
    # The failure names the host and the unit, and only that host.
    assert "Deployment health: fail (fail_on: mandatory)" in out, out
    assert "node2: systemd:hc-failing.service (hc-failing.service is failed" in out, out
    assert "node1: " not in out.split("Deployment health:")[1], out

    doc = json.loads(report.read_text())
    assert doc["hosts_total"] == 2 and doc["hosts_pass"] == 1 and doc["hosts_fail"] == 1, doc
    assert doc["failed_hosts"] == ["node2"], doc
    node1 = doc["hosts"]["node1"]
    assert node1["status"] == "pass"
    assert [c["name"] for c in node1["checks"]] == ["hc-active.service", "ssh.service", "dbus.service"]
    # Each host answered for itself: the summaries carry the machines' own host names.
    assert node1["summary"]["host"] == fleet[0].name
    assert doc["hosts"]["node2"]["summary"]["host"] == fleet[1].name
    assert doc["hosts"]["node2"]["summary"]["mandatory_failed"] == ["systemd:hc-failing.service"]


def test_role_over_ssh_passes_on_a_healthy_fleet(fleet, tmp_path, module_binary, ansible_env):
    inventory = tmp_path / "inventory.json"
    report = tmp_path / "deployment-health.json"
    write_inventory(
        inventory,
        fleet,
        {name: {"health_check_systemd": ["hc-active.service", "dbus.service"],
                "health_check_disks": [{"path": "/", "max_used_percent": 100, "max_inodes_used_percent": 100}]}
         for name in ("node1", "node2")},
    )
    proc = run_playbook(tmp_path, ansible_env, inventory, "-e", f"health_check_report_path={report}")
    assert proc.returncode == 0, proc.stdout
    doc = json.loads(report.read_text())
    assert doc["status"] == "pass" and doc["hosts_pass"] == 2, doc
