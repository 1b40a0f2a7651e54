"""The core roles (roles/core/*) through the real playbooks/core.yml on two fresh
python-flavoured systemd-nspawn machines over SSH: one plain host and one made to look like a
GPU host (a `/dev/nvidia0` node and a stand-in nvidia-smi). A `--check` run on the fresh
machines must report changes and make none; then the playbook converges both twice; the first
run must change something in every role, the second must change nothing (read from
our task_log callback and from the play recap). Then the tests look at the machines
themselves: the account logs in with its key and has sudo, sshd refuses passwords, sysctl
values are live, chrony runs, journald keeps logs on disk, and the GPU role skipped, saying
why, on the plain host only. Bad role input is refused by the roles' argument specs.

Both machines boot once for this file and both converges are shared by all its tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, venv_tool
from testbed.machines import (
    Machine,
    add_gpu_standin,
    ssh_command,
    ssh_fleet,
    write_inventory,
)

HERE = Path(__file__).resolve().parent
CORE_PLAYBOOK = REPO_ROOT / "playbooks" / "core.yml"
CORE_ROLES = sorted(f"core/{path.name}" for path in (REPO_ROOT / "roles" / "core").iterdir())
PLAYBOOK_TIMEOUT_S = 600
RECAP_LINE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def declared_state() -> dict[str, list[str]]:
    """The union of the roles' meta/idempotence.yml (the state each role declares it owns)."""
    union: dict[str, list[str]] = {"paths": [], "systemd_units": [], "sysctl": []}
    for role in CORE_ROLES:
        declaration = REPO_ROOT / "roles" / role / "meta" / "idempotence.yml"
        if declaration.is_file():
            for kind, values in (yaml.safe_load(declaration.read_text()) or {}).items():
                if kind in union:
                    union[kind] += values
    return union


def state_listing(machine: "Machine") -> str:
    """Type, mode, owner, size, mtime and content hash of every declared path (recursively),
    the declared units' states and the values of the declared sysctl keys that the machine may
    set: a text to compare between runs."""
    declared = declared_state()
    paths = " ".join(declared["paths"])
    units = " ".join(declared["systemd_units"])
    keys = " ".join(declared["sysctl"])
    script = (
        f"find {paths} -printf '%p %y %m %U:%G %s %T@\\n' 2>&1 | sort; "
        f"find {paths} -type f -exec sha256sum {{}} + 2>&1 | sort; "
        f"systemctl show -p Id,ActiveState,SubState,UnitFileState,MainPID {units}; "
        # Only the keys the machine owns: the read-only ones show the host kernel's values,
        # which the host may change at any time (not the role's state).
        f"for key in {keys}; do f=/proc/sys/$(echo $key | tr . /); "
        f"[ -w $f ] && sysctl $key; done; true"
    )
    result = subprocess.run(ssh_command(machine, script), capture_output=True, text=True, timeout=60)
    assert result.stdout.strip(), result.stderr
    return result.stdout


@dataclass
class Converge:
    returncode: int
    output: str
    elapsed_s: float
    tasks: list[dict] = field(default_factory=list)  # one task_log entry per task result
    state_after: dict[str, str] = field(default_factory=dict)  # machine -> state_listing()

    def recap(self) -> dict[str, dict[str, int]]:
        return {
            host: {"ok": int(ok), "changed": int(changed), "unreachable": int(unreach),
                   "failed": int(failed)}
            for host, ok, changed, unreach, failed in RECAP_LINE.findall(self.output)
        }

    def changed(self, host: str, role: str | None = None) -> list[str]:
        return [
            entry["task"] for entry in self.tasks
            if entry["host"] == host and entry["status"] == "changed"
            and (role is None or entry["role"] == role)
        ]

    def describe(self) -> str:
        problems = [e for e in self.tasks if e["status"] in ("failed", "unreachable")]
        return f"rc={self.returncode}; failed/unreachable: {problems}\n{self.output[-5000:]}"

    def messages(self, host: str, role: str) -> list[str]:
        return [e["msg"] for e in self.tasks if e["host"] == host and e["role"] == role and e["msg"]]


def _ansible_playbook(env, inventory: Path, playbook: Path, log: Path, *extra: str) -> Converge:
    log.unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory), str(playbook), *extra],
        cwd=REPO_ROOT,
        env={**env, "TASK_LOG_FILE": str(log)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=PLAYBOOK_TIMEOUT_S,
    )
    tasks = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Converge(proc.returncode, proc.stdout, time.monotonic() - started, tasks)


@pytest.fixture(scope="module")
def core_env(ansible_env):
    return {
        **ansible_env,
        "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "task_log",
        # One SSH round trip per task instead of three: the same modules, sooner.
        "ANSIBLE_PIPELINING": "1",
        # CI machines are small and busy: a new SSH connection may take more than Ansible's
        # default 10 s, and one that fails outright (exit 255) is tried again.
        "ANSIBLE_TIMEOUT": "30",
        "ANSIBLE_SSH_RETRIES": "3",
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("core_roles")


@pytest.fixture(scope="module")
def operator_key(workdir) -> Path:
    key = workdir / "operator_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator-test", "-f", str(key)],
        check=True, capture_output=True,
    )
    return key


@pytest.fixture(scope="module")
def fleet():
    """Two fresh python-flavoured machines: [plain host, stand-in GPU host]."""
    with ssh_fleet(2, prefix="core", flavour="python") as machines:
        add_gpu_standin(machines[1])
        yield machines


@pytest.fixture(scope="module")
def inventory(fleet, workdir) -> Path:
    return write_inventory(fleet, workdir / "hosts.ini")


@pytest.fixture(scope="module")
def role_vars(workdir, operator_key) -> Path:
    """The defaults, plus an operator key so that a real login can be tried."""
    path = workdir / "role_vars.json"
    path.write_text(json.dumps({
        # A busy CI machine may need more than the default 30 s to finish an SSH handshake;
        # also shows that the variable reaches sshd (see the sshd test).
        "ssh_hardening_login_grace_time": 120,
        "users_accounts": [{
            "name": "fleetops",
            "comment": "Fleet operations",
            "groups": ["fleet-admins"],
            "authorized_keys": [operator_key.with_suffix(".pub").read_text().strip()],
        }],
    }))
    return path


@pytest.fixture(scope="module")
def check_run(fleet, inventory, role_vars, core_env, workdir) -> Converge:
    """`--check` on the fresh machines, before anything converged them."""
    run = _ansible_playbook(
        core_env, inventory, CORE_PLAYBOOK, workdir / "check.jsonl", "-e", f"@{role_vars}", "--check"
    )
    run.state_after = {
        machine.name: on(machine, "ls -d /etc/docker /etc/chrony/chrony.conf /home/fleetops 2>&1").stdout
        for machine in fleet
    }
    print(f"check run: {run.elapsed_s:.1f} s")
    return run


@pytest.fixture(scope="module")
def converges(fleet, inventory, role_vars, core_env, workdir, check_run) -> list[Converge]:
    runs = []
    for number in (1, 2):
        run = _ansible_playbook(
            core_env, inventory, CORE_PLAYBOOK, workdir / f"run{number}.jsonl", "-e", f"@{role_vars}"
        )
        assert run.returncode == 0, f"converge {number} failed: {run.describe()}"
        run.state_after = {machine.name: state_listing(machine) for machine in fleet}
        print(f"converge {number}: {run.elapsed_s:.1f} s")
        runs.append(run)
    return runs


def on(machine: Machine, command: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_command(machine, command), capture_output=True, text=True, timeout=timeout_s)


# ---------------------------------------------------------------------------------------------
# Idempotence


def test_the_first_run_changes_every_role_on_a_fresh_machine(fleet, converges):
    first = converges[0]
    plain, gpu = (machine.name for machine in fleet)
    for role in CORE_ROLES:
        if role == "core/gpu_runtime":
            continue
        assert first.changed(plain, role), f"{role} changed nothing on a fresh machine"
    assert first.changed(gpu, "core/gpu_runtime"), "gpu_runtime changed nothing on the GPU host"


def test_the_second_run_changes_nothing_in_any_role(fleet, converges):
    second = converges[1]
    for machine in fleet:
        assert second.changed(machine.name) == [], (
            f"{machine.name}: tasks changed on the second run: {second.changed(machine.name)}"
        )
    recap = second.recap()
    assert set(recap) == {machine.name for machine in fleet}, second.output[-3000:]
    for host, counts in recap.items():
        assert counts["changed"] == 0 and counts["failed"] == 0, f"{host}: {counts}"
        assert counts["ok"] > 30, f"{host}: too few tasks ran: {counts}"


def test_the_second_run_leaves_the_declared_state_as_it_was(fleet, converges):
    """Catches what the recap cannot: a task that reports ok but rewrites a file, flips a mode,
    touches an mtime or restarts a service (MainPID)."""
    for machine in fleet:
        before = converges[0].state_after[machine.name].splitlines()
        after = converges[1].state_after[machine.name].splitlines()
        assert "/etc/docker/daemon.json f 644 0:0" in " ".join(before)
        assert "kernel.shmmni = 8192" in before
        drift = sorted(set(before) ^ set(after))
        assert drift == [], f"{machine.name}: state drifted between run 1 and run 2: {drift}"


def test_a_check_run_on_fresh_machines_reports_the_changes_and_makes_none(fleet, check_run):
    assert check_run.returncode == 0, check_run.describe()
    for machine in fleet:
        assert check_run.changed(machine.name, "core/users"), "check mode saw no account to create"
        assert check_run.changed(machine.name, "core/container_runtime")
        listing = check_run.state_after[machine.name]
        for path in ("/etc/docker", "/home/fleetops"):
            assert f"cannot access '{path}'" in listing, listing


def test_every_core_role_ran_on_both_hosts(fleet, converges):
    for machine in fleet:
        roles = {entry["role"] for entry in converges[1].tasks if entry["host"] == machine.name}
        assert roles >= set(CORE_ROLES), f"{machine.name}: missing {set(CORE_ROLES) - roles}"


# ---------------------------------------------------------------------------------------------
# What the roles did to the machines


def test_the_operator_logs_in_with_its_key_and_may_sudo(fleet, converges, operator_key):
    for machine in fleet:
        command = [
            "ssh", "-i", str(operator_key), "-p", str(machine.ssh_port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "ConnectTimeout=60",
            "-o", "UserKnownHostsFile=/dev/null", "fleetops@127.0.0.1", "id -nG; sudo -n id -u",
        ]
        for _attempt in range(3):  # a busy machine may drop a handshake; a refusal stays
            login = subprocess.run(command, capture_output=True, text=True, timeout=180)
            if login.returncode == 0 or "Permission denied" in login.stderr:
                break
        assert login.returncode == 0, login.stderr
        groups, root_uid = login.stdout.split("\n")[:2]
        assert "fleet-admins" in groups.split()
        assert root_uid == "0"
        keys = on(machine, "stat -c '%a %U' ~fleetops/.ssh ~fleetops/.ssh/authorized_keys")
        assert keys.stdout.split("\n")[:2] == ["700 fleetops", "600 fleetops"]
        sudoers = on(machine, "stat -c %a /etc/sudoers.d/fleet-admins && visudo -c")
        assert sudoers.returncode == 0 and sudoers.stdout.startswith("440"), sudoers


def test_sshd_accepts_its_config_and_refuses_passwords(fleet, converges):
    machine = fleet[0]
    check = on(machine, "sshd -t && sshd -T")
    assert check.returncode == 0, check.stderr
    effective = dict(line.split(" ", 1) for line in check.stdout.splitlines() if " " in line)
    assert effective["passwordauthentication"] == "no"
    assert effective["permitrootlogin"] == "without-password"  # sshd's name for prohibit-password
    assert effective["x11forwarding"] == "no"
    assert effective["maxauthtries"] == "3"
    assert effective["logingracetime"] == "120"
    # The running daemon was reloaded: a password login is not even offered.
    attempt = subprocess.run(
        ["ssh", "-p", str(machine.ssh_port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=60",
         "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "fleetops@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=180,
    )
    assert attempt.returncode == 255
    assert "Permission denied (publickey)" in attempt.stderr, attempt.stderr


def test_sysctl_values_are_in_the_file_and_live_where_the_machine_may_set_them(fleet, converges):
    machine = fleet[0]
    conf = on(machine, "cat /etc/sysctl.d/90-fleet.conf").stdout
    assert "vm.max_map_count = 262144" in conf and "kernel.shmmni = 8192" in conf
    # kernel.shmmni lives in the machine's own IPC namespace: set live.
    assert on(machine, "cat /proc/sys/kernel/shmmni").stdout.strip() == "8192"
    # vm.* belongs to the host's kernel: left alone, and the role says so.
    (message,) = [m for m in converges[0].messages(machine.name, "core/sysctl") if m.startswith("sysctl:")]
    assert "vm.max_map_count" in message and "read-only" in message
    assert "kernel.shmmni" not in message


def test_chrony_runs_without_touching_the_clock_of_the_container_host(fleet, converges):
    machine = fleet[0]
    assert on(machine, "systemctl is-active chrony").stdout.strip() == "active"
    assert on(machine, "systemctl is-enabled chrony").stdout.strip() == "enabled"
    command_line = on(machine, "tr '\\0' ' ' </proc/$(pidof chronyd | cut -d' ' -f1)/cmdline").stdout
    assert " -x" in command_line, command_line
    sources = on(machine, "chronyc -n sources")
    assert sources.returncode == 0, sources.stderr


def test_journald_keeps_the_journal_on_disk(fleet, converges):
    machine = fleet[0]
    dropin = on(machine, "cat /etc/systemd/journald.conf.d/50-fleet.conf").stdout
    assert "Storage=persistent" in dropin and "SystemMaxUse=2G" in dropin
    # journald, restarted by the handler, created the persistent journal itself.
    on(machine, "logger core-roles-test; journalctl --flush")
    files = on(machine, "ls /var/log/journal/$(cat /etc/machine-id)/")
    assert "system.journal" in files.stdout.split(), files


def test_daemon_json_holds_the_configured_settings(fleet, converges):
    config = json.loads(on(fleet[0], "cat /etc/docker/daemon.json").stdout)
    assert config["exec-opts"] == ["native.cgroupdriver=systemd"]
    assert config["log-opts"] == {"max-size": "100m", "max-file": "3"}
    assert config["live-restore"] is True


def test_gpu_runtime_skips_the_host_without_a_gpu_and_says_why(fleet, converges):
    plain = fleet[0]
    for run in converges:
        assert run.changed(plain.name, "core/gpu_runtime") == []
        assert any(
            m.startswith("gpu_runtime: skipped: no NVIDIA GPU on this host (/dev/nvidia0 is missing")
            for m in run.messages(plain.name, "core/gpu_runtime")
        ), run.messages(plain.name, "core/gpu_runtime")
    assert on(plain, "test -e /etc/nvidia-container-runtime").returncode == 1


def test_gpu_runtime_configures_the_gpu_host_once(fleet, converges):
    gpu = fleet[1]
    assert "Turn persistence mode on where it is off" in " ".join(
        converges[0].changed(gpu.name, "core/gpu_runtime")
    )
    config = on(gpu, "cat /etc/nvidia-container-runtime/config.toml").stdout
    assert 'mode = "auto"' in config and 'spec-dirs = ["/etc/cdi", "/var/run/cdi"]' in config
    query = on(gpu, "nvidia-smi --query-gpu=persistence_mode --format=csv,noheader").stdout
    assert query.strip().endswith("Enabled")
    (report,) = [m for m in converges[1].messages(gpu.name, "core/gpu_runtime") if "GPU(s)" in m]
    assert report.startswith("gpu_runtime: 1 NVIDIA GPU(s): 0, NVIDIA H100")


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("role", "bad_vars", "named"),
    [
        ("core/base_packages", {"base_packages_cache_valid_time": "soon"},
         "argument 'base_packages_cache_valid_time' is of type str and we were unable to convert to int"),
        ("core/time_sync", {"time_sync_mode": "sometimes"},
         "value of time_sync_mode must be one of: auto, container, host, got: sometimes"),
        ("core/users", {"users_accounts": [{"uid": 1500}]},
         "missing required arguments: name found in users_accounts"),
        ("core/ssh_hardening", {"ssh_hardening_permit_root_login": "maybe"},
         "value of ssh_hardening_permit_root_login must be one of"),
        ("core/sysctl", {"sysctl_settings": ["vm.swappiness=10"]},
         "argument 'sysctl_settings' is of type list and we were unable to convert to dict"),
    ],
)
def test_bad_role_input_is_refused_before_the_role_runs(
    fleet, converges, inventory, core_env, workdir, role, bad_vars, named
):
    vars_file = workdir / "bad_vars.json"
    vars_file.write_text(json.dumps({"core_role": role, **bad_vars}))
    run = _ansible_playbook(
        core_env, inventory, HERE / "include_role.yml", workdir / "bad.jsonl",
        "-e", f"@{vars_file}", "--limit", fleet[0].name,
    )
    assert run.returncode != 0, run.describe()
    (failure,) = [entry for entry in run.tasks if entry["status"] == "failed"]
    assert "Validating arguments against arg spec" in failure["task"], failure
    assert named in run.output, run.describe()
    assert [entry for entry in run.tasks if entry["status"] == "changed"] == []
