"""The action plugin in front of every binary module (roles/ops/health_check/plugin_utils/
cached_binary.py) against real Python-free machines over SSH: the binary is sent once and kept
under /var/cache/fleetverify.ops/<module>-<sha256>, a warm run copies nothing, a damaged or
unusable cache is noticed, and the binary is picked by the host's architecture.

Transfers are counted in ansible-playbook's -vvv output, where the ssh connection logs every
`PUT <local> TO <remote>`.

The aarch64 host is a test shim: an `uname` in /usr/local/bin of an x86_64 machine that answers
`aarch64` to `-m`. The kernel's binfmt_misc is global to the machine running the tests, so
registering qemu there would change every other process's view of foreign binaries; with the
shim, the plugin must pick the aarch64 binary (its hash names the cached file), and the host
then cannot execute it, which is exactly the "module could not run" case that must come back
as a failed result with the reason. That the aarch64 binary itself works is shown under
qemu-aarch64-static in test_aarch64.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, ROLE_LIBRARY, venv_tool
from testbed.machines import ssh_command, ssh_fleet
from testbed.machines import host_vars as machine_vars

CACHE_DIR = "/var/cache/fleetverify.ops"
AARCH64_BINARY = ROLE_LIBRARY.parent / "binaries" / "aarch64" / "health_check"
UNAME_SHIM = """#!/bin/sh
# test shim: this machine claims to be an aarch64 host
if [ "$1" = -m ]; then echo aarch64; else exec /usr/bin/uname "$@"; fi
"""

PLAYBOOK = """\
- name: Run health_check through its action plugin
  hosts: "{{ target | default('fleet') }}"
  gather_facts: false
  tasks:
    - name: Check the root disk
      health_check:
        disks: [{path: /, max_used_percent: 100, max_inodes_used_percent: 100}]
      register: result
      ignore_errors: true

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ results_dir }}/{{ inventory_hostname }}.json"
        mode: "0644"
      delegate_to: localhost
      vars:
        ansible_connection: local
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""

ACTION_PLUGINS = REPO_ROOT / "roles" / "ops" / "health_check" / "action_plugins"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fleet():
    with ssh_fleet(2, prefix="hccache") as machines:
        yield machines


@pytest.fixture
def aarch64_binary() -> Path:
    if not AARCH64_BINARY.is_file():
        pytest.fail(f"{AARCH64_BINARY} is missing: run `make install-all`", pytrace=False)
    return AARCH64_BINARY


def ssh(machine, command: str) -> str:
    proc = subprocess.run(ssh_command(machine, command), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{command}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def clean_cache(fleet):
    """Every test starts from hosts without a cache and with a real uname."""
    for machine in fleet:
        for mount in (CACHE_DIR, "/root/.ansible/tmp"):
            machine.run("umount", mount)
        ssh(machine, f"rm -rf {CACHE_DIR} /usr/local/bin/uname; userdel -r alice 2>/dev/null; true")
    yield fleet


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, results_dir: Path):
        self.returncode = proc.returncode
        self.output = proc.stdout
        self.results = {
            path.stem: json.loads(path.read_text()) for path in results_dir.glob("*.json")
        }

    def binary_puts(self) -> list[str]:
        """The `PUT` lines that sent a module binary (not the args file, not the result copy)."""
        return re.findall(r"PUT (\S+/health_check) TO (\S+)", self.output)


def run_play(tmp_path: Path, ansible_env, machines, *, pipelining: bool, host_vars=None,
             extra: tuple[str, ...] = (), playbook: str = PLAYBOOK) -> Run:
    inventory = tmp_path / "inventory.json"
    hosts = {}
    for index, machine in enumerate(machines):
        name = f"node{index + 1}"
        hosts[name] = {
            **machine_vars(machine),
            **(host_vars or {}).get(name, {}),
        }
    inventory.write_text(json.dumps({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    playbook_path = tmp_path / "play.yml"
    playbook_path.write_text(playbook)
    results_dir = tmp_path / "results"
    results_dir.mkdir(exist_ok=True)
    for old in results_dir.glob("*.json"):
        old.unlink()
    env = {
        **ansible_env,
        "ANSIBLE_PIPELINING": str(pipelining),
        "ANSIBLE_LIBRARY": str(ROLE_LIBRARY),
        "ANSIBLE_ACTION_PLUGINS": str(ACTION_PLUGINS),
    }
    proc = subprocess.run(
        [str(venv_tool("ansible-playbook")), "-vvv", "-i", str(inventory), str(playbook_path),
         "-e", f"results_dir={results_dir}", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=300,
    )
    return Run(proc, results_dir)


def cached_files(machine) -> list[str]:
    return ssh(machine, f"ls -A {CACHE_DIR} 2>/dev/null || true").split()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_the_binary_is_sent_once_and_a_warm_run_copies_nothing(
    clean_cache, tmp_path, ansible_env, module_binary, pipelining
):
    fleet = clean_cache
    cold = run_play(tmp_path, ansible_env, fleet, pipelining=pipelining)
    assert cold.returncode == 0, cold.output
    assert len(cold.binary_puts()) == 2, cold.binary_puts()
    digest = sha256(module_binary)
    for node, machine in zip(("node1", "node2"), fleet):
        result = cold.results[node]
        assert not result.get("failed"), result
        assert result["summary"]["status"] == "pass", result
        assert result["binary_cache"]["state"] == "installed", result["binary_cache"]
        assert cached_files(machine) == [f"health_check-{digest}"]
        mode = ssh(machine, f"stat -c '%a %U' {CACHE_DIR} {CACHE_DIR}/health_check-{digest}").split("\n")
        assert mode[:2] == ["755 root", "755 root"], mode
        # The args file and Ansible's tmp dirs are gone.
        assert ssh(machine, "ls -A /root/.ansible/tmp 2>/dev/null || true").strip() == ""

    warm = run_play(tmp_path, ansible_env, fleet, pipelining=pipelining)
    assert warm.returncode == 0, warm.output
    assert warm.binary_puts() == [], warm.binary_puts()
    for node in ("node1", "node2"):
        assert warm.results[node]["binary_cache"] == {
            "state": "hit", "arch": "x86_64", "transferred": False,
            "path": f"{CACHE_DIR}/health_check-{digest}",
        }
        assert warm.results[node]["summary"]["status"] == "pass"
    if pipelining:
        # One SSH command per host: check the cache and run the module, args on stdin.
        assert warm.output.count("SSH: EXEC") == 2, warm.output.count("SSH: EXEC")
    for machine in fleet:
        assert ssh(machine, "ls -A /root/.ansible/tmp 2>/dev/null || true").strip() == ""


def test_a_corrupt_cached_binary_is_detected_by_its_hash_and_replaced(
    clean_cache, tmp_path, ansible_env, module_binary
):
    fleet = clean_cache[:1]
    digest = sha256(module_binary)
    cached = f"{CACHE_DIR}/health_check-{digest}"
    # A file of the right name but other content (a truncated copy, a tampered one).
    ssh(fleet[0], f"mkdir -p {CACHE_DIR} && printf '#!/bin/sh\\necho forged\\n' >{cached} && chmod 0755 {cached}")
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True)
    assert run.returncode == 0, run.output
    assert run.results["node1"]["binary_cache"]["state"] == "installed"
    assert "forged" not in run.output
    assert len(run.binary_puts()) == 1
    assert ssh(fleet[0], f"sha256sum {cached}").split()[0] == digest


def test_a_cache_dir_writable_by_others_is_not_trusted(clean_cache, tmp_path, ansible_env, module_binary):
    fleet = clean_cache[:1]
    ssh(fleet[0], f"mkdir -p {CACHE_DIR} && chmod 0777 {CACHE_DIR}")
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True)
    assert run.returncode == 0, run.output
    result = run.results["node1"]
    assert result["summary"]["status"] == "pass", result
    assert result["binary_cache"]["state"] == "untrusted"
    assert result["binary_cache"]["transferred"] is True
    assert "binary cache" in run.output and "is untrusted" in run.output
    assert cached_files(fleet[0]) == []


@pytest.mark.parametrize("options,state", [("noexec", "noexec"), ("ro", "unwritable")])
def test_a_noexec_or_read_only_cache_falls_back_to_sending_the_binary_with_a_warning(
    clean_cache, tmp_path, ansible_env, module_binary, options, state
):
    fleet = clean_cache[:1]
    ssh(fleet[0], f"mkdir -p {CACHE_DIR}")
    mounted = fleet[0].run("mount", "-t", "tmpfs", "-o", f"{options},mode=0755", "tmpfs", CACHE_DIR)
    assert mounted.returncode == 0, mounted.stderr
    for _ in range(2):
        run = run_play(tmp_path, ansible_env, fleet, pipelining=True)
        assert run.returncode == 0, run.output
        result = run.results["node1"]
        assert result["summary"]["status"] == "pass", result
        assert result["binary_cache"]["state"] == state, result["binary_cache"]
        assert f"is {state}; sending the module with every run instead" in run.output
        assert run.binary_puts(), "the fallback sends the binary each time"
    assert ssh(fleet[0], "ls -A /root/.ansible/tmp 2>/dev/null || true").strip() == ""


def test_a_host_that_cannot_execute_the_module_gets_a_failed_result_with_the_reason(
    clean_cache, tmp_path, ansible_env, module_binary
):
    fleet = clean_cache[:1]
    ssh(fleet[0], f"mkdir -p {CACHE_DIR} /root/.ansible/tmp")
    for path in (CACHE_DIR, "/root/.ansible/tmp"):
        mounted = fleet[0].run("mount", "-t", "tmpfs", "-o", "noexec,mode=0755", "tmpfs", path)
        assert mounted.returncode == 0, mounted.stderr
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True)
    result = run.results["node1"]
    assert result["failed"] is True
    assert "health_check could not run on this host (x86_64)" in result["msg"], result
    assert "Permission denied" in result["msg"], result


def test_become_runs_the_cached_binary_as_the_become_user(clean_cache, tmp_path, ansible_env, module_binary):
    fleet = clean_cache[:1]
    ssh(fleet[0], "useradd -m -s /bin/sh alice")
    digest = sha256(module_binary)
    become = {"node1": {"ansible_become": True, "ansible_become_method": "su", "ansible_become_user": "alice"}}
    for pipelining in (True, False):
        run = run_play(tmp_path, ansible_env, fleet, pipelining=pipelining, host_vars=become)
        assert run.returncode == 0, run.output
        cache = run.results["node1"]["binary_cache"]
        assert cache["path"] == f"/home/alice/.cache/fleetverify.ops/health_check-{digest}", cache
    assert ssh(fleet[0], "stat -c '%U %a' /home/alice/.cache/fleetverify.ops").split() == ["alice", "755"]
    # root's own runs keep their own cache.
    assert cached_files(fleet[0]) == []
    become_root = {"node1": {"ansible_become": True, "ansible_become_method": "su"}}
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True, host_vars=become_root)
    assert run.results["node1"]["binary_cache"]["path"] == f"{CACHE_DIR}/health_check-{digest}"


def test_the_binary_is_picked_by_the_hosts_uname(
    clean_cache, tmp_path, ansible_env, module_binary, aarch64_binary
):
    fleet = clean_cache
    ssh(fleet[1], f"cat >/usr/local/bin/uname <<'EOF'\n{UNAME_SHIM}EOF\nchmod 0755 /usr/local/bin/uname")
    assert ssh(fleet[1], "uname -m").strip() == "aarch64"
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True)
    node1, node2 = run.results["node1"], run.results["node2"]
    assert node1["binary_cache"]["arch"] == "x86_64" and not node1.get("failed"), node1
    # node2 got the aarch64 binary (named by its hash) and, being x86_64 underneath, could not
    # execute it: a failed result that says why, not a lost host.
    assert node2["binary_cache"]["arch"] == "aarch64", node2
    assert node2["binary_cache"]["path"] == f"{CACHE_DIR}/health_check-{sha256(aarch64_binary)}"
    assert node2["failed"] is True
    assert "health_check could not run on this host (aarch64): " in node2["msg"], node2
    assert "Exec format error" in node2["msg"], node2



def test_delegate_to_picks_the_delegated_hosts_binary(clean_cache, tmp_path, ansible_env, module_binary):
    fleet = clean_cache
    ssh(fleet[1], f"cat >/usr/local/bin/uname <<'EOF'\n{UNAME_SHIM}EOF\nchmod 0755 /usr/local/bin/uname")
    # node2's task delegated to node1 runs node1's (x86_64) binary on node1.
    delegating = PLAYBOOK.replace("      register: result\n", "      register: result\n      delegate_to: node1\n")
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True, playbook=delegating,
                   extra=("-e", "target=node2"))
    assert run.returncode == 0, run.output
    result = run.results["node2"]
    assert result["binary_cache"]["arch"] == "x86_64", result
    assert result["summary"]["host"] == fleet[0].name, result


def test_an_architecture_without_a_binary_fails_clearly(clean_cache, tmp_path, ansible_env, module_binary, aarch64_binary):
    fleet = clean_cache[:1]
    # From facts (here set in the inventory as gathered facts would be): no connection needed.
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True,
                   host_vars={"node1": {"ansible_architecture": "riscv64"}})
    result = run.results["node1"]
    assert result["failed"] is True
    assert result["msg"] == (
        "health_check has no binary for this host's architecture 'riscv64' (have: aarch64, x86_64)"
    )
    assert "SSH: EXEC" not in run.output.split("TASK [Check the root disk]")[1].split("TASK [")[0]
    # From the host's own uname.
    ssh(fleet[0], "printf '#!/bin/sh\\necho riscv64\\n' >/usr/local/bin/uname && chmod 0755 /usr/local/bin/uname")
    run = run_play(tmp_path, ansible_env, fleet, pipelining=True)
    assert run.results["node1"]["msg"] == (
        "health_check has no binary for this host's architecture 'riscv64' (have: aarch64, x86_64)"
    )


ROLE_PLAYBOOK = """\
- name: Verify the fleet after a deploy
  hosts: fleet
  gather_facts: false
  roles:
    - role: ops/health_check
      vars:
        health_check_disks: [{path: /, max_used_percent: 100, max_inodes_used_percent: 100}]
        health_check_memory: null
        health_check_load: null
        health_check_system_state: null
        health_check_report_path: "{{ results_dir }}/deployment-health.json"
"""


def test_a_host_the_module_cannot_run_on_is_in_the_deployment_report_with_the_reason(
    clean_cache, tmp_path, ansible_env, module_binary, aarch64_binary
):
    fleet = clean_cache
    ssh(fleet[1], f"cat >/usr/local/bin/uname <<'EOF'\n{UNAME_SHIM}EOF\nchmod 0755 /usr/local/bin/uname")
    run_play(tmp_path, ansible_env, fleet, pipelining=True, playbook=ROLE_PLAYBOOK,
             extra=("-e", f"roles_path={REPO_ROOT / 'roles'}"))
    report = json.loads((tmp_path / "results" / "deployment-health.json").read_text())
    assert report["status"] == "fail", report
    assert report["hosts"]["node1"]["status"] == "pass", report["hosts"]["node1"]
    node2 = report["hosts"]["node2"]
    assert node2["status"] == "error", node2
    assert "health_check could not run on this host (aarch64)" in node2["msg"], node2
    assert "Exec format error" in node2["msg"], node2
