"""`async:` on a binary-module task through its action plugin (plugin_utils/cached_binary.py):
Ansible's own async_wrapper starts the binary for the host's architecture, and both a polled
task and a fire-and-forget one followed by `async_status` return the module's result. Runs the
real ansible-playbook against localhost (local connection; async_wrapper needs Python on the
host, which localhost has)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import REPO_ROOT, ROLE_LIBRARY, venv_tool

ACTION_PLUGINS = REPO_ROOT / "roles" / "ops" / "health_check" / "action_plugins"

PLAYBOOK = """\
---
- name: Run the module asynchronously
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Polled by Ansible
      health_check:
        disks: ["/"]
      async: 60
      poll: 1
      register: polled

    - name: Started and left running
      health_check:
        disks: ["/"]
      async: 60
      poll: 0
      register: started

    - name: Wait for it with async_status
      ansible.builtin.async_status:
        jid: "{{ started.ansible_job_id }}"
      register: waited
      until: waited.finished
      retries: 60
      delay: 1

    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ {'polled': polled, 'started': started, 'waited': waited} | to_json }}"
        dest: "{{ results_path }}"
        mode: "0600"
"""


def run_playbook(ansible_env: dict, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "async.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(ansible_env, ANSIBLE_ACTION_PLUGINS=str(ACTION_PLUGINS), ANSIBLE_LIBRARY=str(ROLE_LIBRARY),
               ANSIBLE_LOCALHOST_WARNING="False")
    return subprocess.run(
        [str(venv_tool("ansible-playbook")), str(playbook), "-e", f"results_path={tmp_path / 'results.json'}",
         *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


def test_a_polled_and_a_fire_and_forget_task_both_return_the_module_result(module_binary, ansible_env, tmp_path):
    proc = run_playbook(ansible_env, tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    polled, started, waited = results["polled"], results["started"], results["waited"]
    assert polled["finished"] and polled["ansible_job_id"], polled
    assert polled["summary"]["status"] == "pass", polled
    assert [check["kind"] for check in polled["checks"]] == ["disk"], polled
    assert started["started"] and not started["finished"], started
    assert "summary" not in started, started
    assert waited["finished"] and waited["ansible_job_id"] == started["ansible_job_id"], waited
    assert waited["summary"]["status"] == "pass", waited


def test_an_architecture_without_a_binary_fails_before_anything_starts(module_binary, ansible_env, tmp_path):
    proc = run_playbook(ansible_env, tmp_path, "-e", "ansible_architecture=sparc64")

    assert proc.returncode != 0
    assert "sparc64" in proc.stdout, proc.stdout
    assert not (tmp_path / "results.json").exists()
