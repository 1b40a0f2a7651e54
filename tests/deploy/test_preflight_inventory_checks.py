"""The inventory sanity checks of playbooks/preflight_assertions.yml, with the real
ansible-playbook on inventories of local-connection hosts (and one SSH host nobody listens
for): a clean inventory passes; a missing required variable, a host in two environments and an
unreachable host each stop the preflight with a message naming the host and what is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, venv_tool
from testbed.machines import free_port

PREFLIGHT = REPO_ROOT / "playbooks" / "preflight_assertions.yml"
LOCAL = "ansible_connection=local ansible_python_interpreter=/usr/bin/python3"


def preflight(env, tmp_path: Path, hosts_ini: str, group_vars: str = "", *extra: str):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text(hosts_ini)
    (inventory / "group_vars" / "all.yml").write_text("---\n" + group_vars)
    return subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory / "hosts.ini"), str(PREFLIGHT), *extra],
        cwd=REPO_ROOT, env={**env, "ANSIBLE_TIMEOUT": "5"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=180,
    )


@pytest.mark.usefixtures("module_binary")
def test_a_clean_inventory_passes_every_inventory_check(ansible_env, tmp_path):
    run = preflight(ansible_env, tmp_path, f"[production]\nweb1 {LOCAL}\nweb2 {LOCAL}\n",
                    "preflight_required_vars:\n  production: [app_port]\napp_port: 8080\n")
    assert run.returncode == 0, run.stdout[-3000:]
    for task in ("Check the Ansible version", "Check the variables each group requires",
                 "Check that no host is in two environments", "Contact every host"):
        assert f"TASK [{task}]" in run.stdout


@pytest.mark.usefixtures("module_binary")
def test_a_missing_required_variable_stops_the_preflight_naming_host_and_variable(ansible_env, tmp_path):
    run = preflight(ansible_env, tmp_path,
                    f"[production]\nweb1 {LOCAL} app_port=8080\nweb2 {LOCAL}\n",
                    "preflight_required_vars:\n  production: [app_port]\n")
    assert run.returncode != 0
    assert "missing required variables" in run.stdout and "web2: app_port (production)" in run.stdout
    assert "web1: app_port" not in run.stdout


@pytest.mark.usefixtures("module_binary")
def test_a_host_in_two_environments_stops_the_preflight(ansible_env, tmp_path):
    run = preflight(ansible_env, tmp_path,
                    f"[production]\nweb1 {LOCAL}\nweb2 {LOCAL}\n[staging]\nweb2\n")
    assert run.returncode != 0
    assert "hosts in more than one environment: web2 (production and staging)" in run.stdout


@pytest.mark.usefixtures("module_binary")
def test_an_unreachable_host_stops_the_preflight_naming_it(ansible_env, tmp_path):
    closed = free_port()  # nothing listens on it
    run = preflight(ansible_env, tmp_path,
                    f"[production]\nweb1 {LOCAL}\n"
                    f"gone ansible_host=127.0.0.1 ansible_port={closed} ansible_user=root\n")
    assert run.returncode != 0, run.stdout[-3000:]
    assert "fatal: [gone]: UNREACHABLE!" in run.stdout, run.stdout[-3000:]
    assert "fatal: [web1]" not in run.stdout
