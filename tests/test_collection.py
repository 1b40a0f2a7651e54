"""The fleetverify.ops collection as a platform team meets it: built from this repository
(scripts/build_collection.py, what `make dist` runs), installed with the real
`ansible-galaxy collection install` into a separate user repository with its own ansible.cfg and
requirements.yml, linted there with `ansible-lint --profile production`, documented by the real
`ansible-doc`, and run with FQCNs against a Python-free nspawn machine over SSH."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, venv_tool
from test_aarch64 import makefile_modules, workspace_version
from testbed.machines import ssh_fleet, write_inventory

USER_PLAYBOOK = """\
---
- name: Verify the fleet after a deploy
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Check the root disk with the module
      fleetverify.ops.health_check:
        disks:
          - path: /
            max_used_percent: 100
            max_inodes_used_percent: 100
      register: disk_result

    - name: Keep the module's result
      ansible.builtin.copy:
        content: "{{ disk_result | to_json }}"
        dest: "{{ playbook_dir }}/disk_result.json"
        mode: "0644"
      delegate_to: localhost
      vars:
        ansible_connection: local
        ansible_python_interpreter: "{{ ansible_playbook_python }}"

    - name: Run the health check role
      ansible.builtin.include_role:
        name: fleetverify.ops.health_check
      vars:
        health_check_systemd:
          - dbus.service
          - ssh.service
        health_check_disks: []
        health_check_memory: null
        health_check_load: null
        health_check_system_state: null
        health_check_report_path: "{{ playbook_dir }}/reports/deployment-health.json"
"""

USER_ANSIBLE_CFG = """\
[defaults]
collections_path = ./collections
inventory = ./inventory.ini
interpreter_python = auto_silent
retry_files_enabled = False
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [str(venv_tool("python")), str(REPO_ROOT / "scripts" / "build_collection.py"),
         "--output-dir", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def user_env(home: Path) -> dict[str, str]:
    """A user's shell: none of this repository's ANSIBLE_* settings, .venv's tools on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(PATH=f"{venv_tool('ansible').parent}{os.pathsep}{env.get('PATH', '')}",
               ANSIBLE_HOME=str(home / ".ansible"), ANSIBLE_NOCOLOR="1", PY_COLORS="0")
    return env


def test_the_tarball_carries_every_module_for_both_architectures_with_checksums(collection):
    version = workspace_version()
    assert collection.name == f"fleetverify-ops-{version}.tar.gz"
    sums = (collection.parent / "SHA256SUMS").read_text()
    assert sums == f"{sha256(collection.read_bytes())}  {collection.name}\n"
    with tarfile.open(collection) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        inner_sums = tar.extractfile("SHA256SUMS").read().decode()
        changelog = tar.extractfile("CHANGELOG.md").read().decode()
        assert manifest["collection_info"]["version"] == version
        assert f"## {version}" in changelog
        listed = dict(reversed(line.split("  ", 1)) for line in inner_sums.splitlines())
        for module in makefile_modules():
            for path, machine in ((f"plugins/modules/{module}", "x86-64"),
                                  (f"plugins/binaries/aarch64/{module}", "aarch64")):
                member = tar.getmember(path)
                assert member.mode & 0o111, f"{path} is not executable"
                data = tar.extractfile(member).read()
                assert listed[path] == sha256(data), path
                assert data[:4] == b"\x7fELF", path
            assert f"plugins/modules/{module}.yml" in names
            assert f"plugins/action/{module}.py" in names
        assert "plugins/plugin_utils/cached_binary.py" in names
        # The shared doc fragment ships, and every module's docs extend it by its FQCN.
        assert "plugins/doc_fragments/binary_module.py" in names
        for module in makefile_modules():
            docs = tar.extractfile(f"plugins/modules/{module}.yml").read().decode()
            assert "- fleetverify.ops.binary_module\n" in docs, module
        assert "roles/health_check/tasks/main.yml" in names
        assert not [n for n in names if n.startswith("roles/health_check/library")], names


def test_make_dist_refuses_a_dirty_tree(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    clean = subprocess.run(["make", "-s", "dist-check-clean"], cwd=clone, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    (clone / "stray.txt").write_text("not committed\n")
    dirty = subprocess.run(["make", "-s", "dist"], cwd=clone, capture_output=True, text=True, timeout=120)
    assert dirty.returncode != 0
    assert "make dist builds only from a clean tree" in dirty.stderr, dirty.stderr
    assert "stray.txt" in dirty.stderr
    assert not (clone / "dist").exists()


def test_a_user_repository_installs_the_collection_and_runs_it_with_fqcns(collection, tmp_path):
    repo = tmp_path / "platform-repo"
    repo.mkdir()
    env = user_env(tmp_path)
    (repo / "ansible.cfg").write_text(USER_ANSIBLE_CFG)
    (repo / "requirements.yml").write_text(
        f"---\ncollections:\n  - name: {collection}\n    type: file\n    version: {workspace_version()}\n"
    )
    (repo / "site.yml").write_text(USER_PLAYBOOK)

    def run(*command: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=repo, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)

    installed = run(str(venv_tool("ansible-galaxy")), "collection", "install", "-r", "requirements.yml")
    assert installed.returncode == 0, installed.stdout
    assert f"fleetverify.ops:{workspace_version()} was installed successfully" in installed.stdout

    for module in makefile_modules():
        doc = run(str(venv_tool("ansible-doc")), "--json", f"fleetverify.ops.{module}")
        assert doc.returncode == 0, doc.stdout
        # stderr is merged into stdout here: the JSON document starts at its first line "{".
        start = re.search(r"^\{", doc.stdout, re.MULTILINE)
        assert start, doc.stdout
        documentation = json.loads(doc.stdout[start.start():])[f"fleetverify.ops.{module}"]["doc"]
        assert documentation["filename"].endswith(f"plugins/modules/{module}.yml"), documentation
        # From the shared fragment (plugins/doc_fragments/binary_module.py), merged with the
        # module's own attributes and notes.
        assert documentation["attributes"]["async"]["support"] == "partial", module
        assert documentation["attributes"]["action"]["support"] == "full", module
        assert documentation["attributes"]["check_mode"]["support"] == "full", module
        assert documentation["attributes"]["platform"]["platforms"] == "posix", module
        assert any("needs no Python" in note for note in documentation["notes"]), module
    doc = run(str(venv_tool("ansible-doc")), "fleetverify.ops.health_check")
    assert doc.returncode == 0, doc.stdout
    assert "plugins/modules/health_check.yml" in doc.stdout and "disks" in doc.stdout, doc.stdout
    assert "content-addressed path" in doc.stdout, doc.stdout

    with ssh_fleet(1, prefix="hccoll") as machines:
        write_inventory(machines, repo / "inventory.ini", python=False)
        lint = run(str(venv_tool("ansible-lint")), "--offline", "--profile", "production", "site.yml")
        assert lint.returncode == 0, lint.stdout
        assert re.search(r"Profile 'production' was required, and it passed", lint.stdout), lint.stdout

        play = run(str(venv_tool("ansible-playbook")), "site.yml")
        assert play.returncode == 0, play.stdout
    result = json.loads((repo / "disk_result.json").read_text())
    assert result["summary"]["status"] == "pass", result
    assert result["summary"]["host"] == machines[0].name
    # The binary came from the installed collection and now sits in the host's cache.
    assert result["binary_cache"]["state"] == "installed", result["binary_cache"]
    report = json.loads((repo / "reports" / "deployment-health.json").read_text())
    assert report["status"] == "pass", report
