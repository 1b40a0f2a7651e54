"""Real systemd for the tests: Debian bookworm machines booted with systemd-nspawn.

One minimal root file system is debootstrapped once into `.cache/rootfs-bookworm` (git-ignored)
and reused by later runs; every machine boots it read-only under a tmpfs overlay
(`--volatile=overlay`), so the cache stays clean and several machines can run side by side.
(`-x` would do the same by copying the whole tree first: 7 s a machine on ext4, against 0.4 s.) A machine's system bus appears on the host as
`<machine dir>/dbus/system_bus_socket`, because the host directory is bound over the container's
`/run/dbus`.

Two flavours of rootfs, each cached in its own directory:

- `minimal` (the default, `.cache/rootfs-bookworm`): no Python (the fleet the binary modules
  run on is Python-free); systemd, dbus, openssh-server, the hc-* test units below, and the
  public half of a generated SSH key in root's authorized_keys.
- `python` (`.cache/rootfs-bookworm-python`): a plain fleet host for roles written with
  Python-based modules (the core roles, the idempotence gate): python3 and python3-apt, sudo,
  chrony, procps, openssh-server, and apt pointed at the same Debian mirror as this machine's
  apt (testbed.mirror), so `apt-get update`/`install` inside a machine downloads real packages
  through the host's network (nspawn shares it). Release files of a snapshot mirror may be
  older than their Valid-Until: the machine's apt is told not to check that, as the host's is.
  No hc-* test units. The IPC-namespaced sysctls (kernel.shm*, kernel.msg*, kernel.sem) are
  made writable at boot (`testbed-ipc-sysctls.service`): every machine has its own IPC
  namespace, so a role can apply them live without touching the host; every other key under
  /proc/sys stays read-only, as nspawn mounts it.

Each machine is writable for its lifetime (changes land in its tmpfs overlay) and starts from
the clean cached rootfs the next time.

Python-flavoured machines and an Ansible inventory for them:

    with ssh_fleet(2, prefix="core", flavour="python") as machines:
        inventory = write_inventory(machines, tmp_path / "hosts.ini")
        subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/core.yml"])

`write_inventory()` writes one INI host line per machine (`<machine name> ansible_host=127.0.0.1
ansible_port=<port> ansible_user=root ansible_ssh_private_key_file=<SSH_KEY>`, host key checks
off, and `ansible_python_interpreter=/usr/bin/python3` for the python flavour);
`inventory_line(machine)` gives one such line for a hand-written inventory.
`add_gpu_standin(machine)` makes a running machine look like a GPU host (a `/dev/nvidia0`
character device and a stand-in `nvidia-smi` whose persistence mode `-pm 1` really switches).

Used by tests/systemd/conftest.py; a fleet test elsewhere can import it too
(`from testbed.machines import ssh_fleet`):

    with ssh_fleet(3) as machines:
        for machine in machines:
            subprocess.run(ssh_command(machine, "true"), check=True)

Needs root and the host tools in HOST_TOOLS (ensure_host_tools() installs them with apt-get).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .errors import HostToolError, MachineError
from .mirror import debian_mirror

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
ROOTFS = CACHE_DIR / "rootfs-bookworm"
SSH_KEY = CACHE_DIR / "fleet-ssh" / "id_ed25519"
STAMP_NAME = ".fixture-recipe"

SUITE = "bookworm"
# No python3 here on purpose: the modules under test must work on a Python-free fleet.
ROOTFS_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server")
# A fleet host that Python-based Ansible modules can manage: python3-apt for
# ansible.builtin.apt, sudo and chrony for the core roles, procps for sysctl.
PYTHON_ROOTFS_PACKAGES = (
    *ROOTFS_PACKAGES, "python3", "python3-apt", "sudo", "chrony", "procps", "ca-certificates",
)
FLAVOURS = ("minimal", "python")
PYTHON_INTERPRETER = "/usr/bin/python3"

# Sysctls that live in the IPC namespace (each machine has its own), made writable at boot in
# python-flavoured machines.
IPC_SYSCTLS = (
    "kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/shm_rmid_forced",
    "kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/sem",
)
IPC_SYSCTL_UNIT = "testbed-ipc-sysctls.service"
IPC_SYSCTL_UNIT_TEXT = f"""\
[Unit]
Description=testbed: make the IPC-namespaced sysctls writable (this machine's own namespace)
DefaultDependencies=no
Before=sysinit.target systemd-sysctl.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for key in {" ".join(IPC_SYSCTLS)}; do \
    f=/proc/sys/$key; [ -e "$f" ] || continue; \
    mount --bind "$f" "$f" && mount -o remount,bind,rw "$f"; done'

[Install]
WantedBy=sysinit.target
"""
# apt inside the machines: see the module doc.
APT_CONF_NAME = "99testbed-mirror"
APT_CONF_TEXT = """\
// testbed: the mirror may serve a dated snapshot whose Release files are past Valid-Until.
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
"""

# Host command -> the Debian package that provides it.
HOST_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "busctl": "systemd",
    "systemctl": "systemd",
    "nsenter": "util-linux",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}

# The units the systemd tests look at. Enabled ones start at boot.
TEST_UNITS = {
    # Runs for as long as the machine does.
    "hc-active.service": """\
[Unit]
Description=health_check test: a long-running service

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
""",
    # Fails at boot, which leaves the system degraded.
    "hc-failing.service": """\
[Unit]
Description=health_check test: a service that fails

[Service]
Type=oneshot
ExecStart=/bin/false

[Install]
WantedBy=multi-user.target
""",
    # Installed but never enabled or started.
    "hc-idle.service": """\
[Unit]
Description=health_check test: a service nobody starts

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
""",
    # Dies after 0.2 s and is restarted 0.1 s later, for ever (no start limit), so its
    # NRestarts keeps growing while it never reaches `failed`.
    "hc-restarting.service": """\
[Unit]
Description=health_check test: a service in a restart loop
StartLimitIntervalSec=0

[Service]
ExecStart=/bin/sh -c 'sleep 0.2; exit 1'
Restart=always
RestartSec=100ms

[Install]
WantedBy=multi-user.target
""",
}
ENABLED_UNITS = ("hc-active.service", "hc-failing.service", "hc-restarting.service")
MASKED_UNITS = ("hc-masked.service",)

# sshd starts only in machines that get a port: ssh_fleet() binds this file in. The others
# would all fight over port 22 of the host's network namespace, which nspawn shares.
SSHD_PORT_CONFIG = "/etc/ssh/sshd_config.d/fleet-port.conf"
SSH_SERVICE_DROPIN = f"""\
[Unit]
ConditionPathExists={SSHD_PORT_CONFIG}
"""

# Bump when customize() changes in a way the recipe below does not capture.
RECIPE_VERSION = 2

BOOT_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, text=True, **kwargs)


# ---------------------------------------------------------------------------------------------
# Host tools, the SSH key and the cached rootfs


def ensure_host_tools() -> None:
    """Installs the Debian packages behind HOST_TOOLS that are missing (needs root)."""
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise HostToolError(
            f"missing host tools; run as root: apt-get install {' '.join(missing)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        _run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        _run(install, env=env, capture_output=True)
    still = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if still:
        raise HostToolError(f"still missing after apt-get install: {', '.join(still)}")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """An exclusive lock shared with other processes (parallel pytest runs, xdist workers)."""
    CACHE_DIR.mkdir(exist_ok=True)
    with open(CACHE_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_ssh_key() -> Path:
    """The fleet's SSH key pair (generated once, kept in .cache); returns the private key."""
    with _locked("fleet-ssh"):
        if not (SSH_KEY.is_file() and SSH_KEY.with_suffix(".pub").is_file()):
            SSH_KEY.parent.mkdir(parents=True, exist_ok=True)
            for stale in (SSH_KEY, SSH_KEY.with_suffix(".pub")):
                stale.unlink(missing_ok=True)
            _run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-test",
                 "-f", str(SSH_KEY)],
                capture_output=True,
            )
    return SSH_KEY


def _check_flavour(flavour: str) -> None:
    if flavour not in FLAVOURS:
        raise MachineError(f"unknown rootfs flavour {flavour!r}; expected one of {', '.join(FLAVOURS)}")


def rootfs_path(flavour: str = "minimal") -> Path:
    """Where the cached rootfs of `flavour` lives (built or not)."""
    _check_flavour(flavour)
    return ROOTFS if flavour == "minimal" else CACHE_DIR / f"rootfs-{SUITE}-{flavour}"


def _packages(flavour: str) -> tuple[str, ...]:
    return ROOTFS_PACKAGES if flavour == "minimal" else PYTHON_ROOTFS_PACKAGES


def _recipe(public_key: str, flavour: str = "minimal") -> str:
    """What the rootfs is made of; a rootfs built from another recipe is rebuilt."""
    recipe = {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "packages": _packages(flavour),
        "units": TEST_UNITS,
        "enabled": ENABLED_UNITS,
        "masked": MASKED_UNITS,
        "ssh_dropin": SSH_SERVICE_DROPIN,
        "public_key": public_key,
    }
    if flavour != "minimal":
        # Only the new flavour's recipe grows, so the default cache stays valid.
        recipe.update(
            flavour=flavour, ipc_unit=IPC_SYSCTL_UNIT_TEXT, apt_conf=APT_CONF_TEXT,
            mirror=debian_mirror(),
        )
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def ensure_rootfs(flavour: str = "minimal") -> Path:
    """The cached rootfs of `flavour` ("minimal": Python-free, the default; "python": see the
    module doc), built first if it is missing or was made from another recipe.

    It is built beside the cache under another name and renamed into place only when complete,
    with the recipe stamp written last: an interrupted build is never reused. A file lock per
    flavour makes concurrent callers (xdist workers) wait for one build."""
    root = rootfs_path(flavour)
    public_key = ensure_ssh_key().with_suffix(".pub").read_text().strip()
    wanted = _recipe(public_key, flavour)
    with _locked(root.name):
        stamp = root / STAMP_NAME
        if stamp.is_file() and stamp.read_text().strip() == wanted:
            return root
        building = CACHE_DIR / f"{root.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(_packages(flavour))}",
             SUITE, str(building), debian_mirror()],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            log = building / "debootstrap" / "debootstrap.log"
            detail = log.read_text()[-3000:] if log.is_file() else result.stderr[-3000:]
            raise MachineError(f"debootstrap failed (rc={result.returncode}):\n{detail}")
        _customize(building, public_key, flavour)
        (building / STAMP_NAME).write_text(wanted + "\n")
        shutil.rmtree(root, ignore_errors=True)
        building.rename(root)
    return root


def _customize(root: Path, public_key: str, flavour: str = "minimal") -> None:
    units = root / "etc" / "systemd" / "system"
    if flavour == "minimal":
        if any((root / "usr" / "bin").glob("python*")):
            raise MachineError(f"{root} has Python in it: the test fleet must be Python-free")
        for name, text in TEST_UNITS.items():
            (units / name).write_text(text)
        _run(["systemctl", f"--root={root}", "enable", *ENABLED_UNITS], capture_output=True)
        _run(["systemctl", f"--root={root}", "mask", *MASKED_UNITS], capture_output=True)
    else:
        if not (root / PYTHON_INTERPRETER.lstrip("/")).exists():
            raise MachineError(f"{root} has no {PYTHON_INTERPRETER}: debootstrap left it out")
        (units / IPC_SYSCTL_UNIT).write_text(IPC_SYSCTL_UNIT_TEXT)
        _run(["systemctl", f"--root={root}", "enable", IPC_SYSCTL_UNIT], capture_output=True)
        (root / "etc" / "apt" / "apt.conf.d" / APT_CONF_NAME).write_text(APT_CONF_TEXT)
        # debootstrap's sources.list names the mirror with `main` only; that is what the
        # machines get. The package lists debootstrap leaves are as old as the cache, so a role
        # with a cache_valid_time still runs `apt-get update` on a fresh machine.

    dropin = units / "ssh.service.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "fleet-port.conf").write_text(SSH_SERVICE_DROPIN)
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key + "\n")
    keys.chmod(0o600)
    # pam_loginuid cannot write /proc/self/loginuid in a container; "required" would refuse
    # every login.
    pam_sshd = root / "etc" / "pam.d" / "sshd"
    pam_sshd.write_text(
        pam_sshd.read_text().replace(
            "session    required     pam_loginuid.so", "session    optional     pam_loginuid.so"
        )
    )
    # debootstrap copies the host's /etc/hostname; without one, each machine keeps the name
    # nspawn gives it (-M).
    (root / "etc" / "hostname").unlink(missing_ok=True)
    # Nothing in the machines needs a login prompt on the console.
    for unit in ("console-getty.service", "getty@tty1.service"):
        _run(["systemctl", f"--root={root}", "mask", unit], capture_output=True)


# ---------------------------------------------------------------------------------------------
# Machines


@dataclass
class Machine:
    name: str
    process: subprocess.Popen
    workdir: Path  # dbus/ (the container's /run/dbus), console.log, sshd port file
    ssh_port: int | None = None
    boot_s: float = 0.0
    _console: object = field(default=None, repr=False)

    @property
    def bus_socket(self) -> Path:
        return self.workdir / "dbus" / "system_bus_socket"

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.bus_socket}"

    def console_tail(self, chars: int = 4000) -> str:
        log = self.workdir / "console.log"
        return log.read_text(errors="replace")[-chars:] if log.is_file() else ""

    def get_property(self, path: str, interface: str, prop: str, timeout_s: float = 5) -> str:
        """A property via the host's busctl, as busctl prints it (`s "running"`)."""
        result = subprocess.run(
            ["busctl", "--system", f"--timeout={timeout_s}", "get-property",
             "org.freedesktop.systemd1", path, interface, prop],
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address},
            capture_output=True,
            text=True,
            timeout=timeout_s + 5,
        )
        if result.returncode != 0:
            raise MachineError(f"busctl get-property {prop}: {result.stderr.strip()}")
        return result.stdout.strip()

    def system_state(self) -> str:
        value = self.get_property(
            "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "SystemState"
        )
        return value.removeprefix("s ").strip('"')

    def leader_pid(self) -> int:
        """The container's PID 1 as the host sees it: the `systemd` under the nspawn process."""
        pending = [self.process.pid]
        while pending:
            pid = pending.pop()
            with contextlib.suppress(OSError):
                if pid != self.process.pid and Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return pid
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending.extend(int(c) for c in (task / "children").read_text().split())
        raise MachineError(f"machine {self.name}: no systemd under nspawn pid {self.process.pid}")

    def run(self, *command: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
        """Runs a command inside the machine (`nsenter` into all its namespaces)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.leader_pid()), "-a", *command],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def wait_until_booted(self, timeout_s: float = BOOT_TIMEOUT_S) -> str:
        """Waits for the bus to answer and the system to be `running` or `degraded`."""
        deadline = time.monotonic() + timeout_s
        state = "no bus yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MachineError(
                    f"machine {self.name} exited with {self.process.returncode} while booting:\n"
                    f"{self.console_tail()}"
                )
            if self.bus_socket.exists():
                with contextlib.suppress(MachineError, subprocess.TimeoutExpired):
                    state = self.system_state()
                    if state in ("running", "degraded"):
                        return state
            time.sleep(0.1)
        raise MachineError(
            f"machine {self.name} not booted after {timeout_s}s (last state: {state}):\n"
            f"{self.console_tail()}"
        )

    def stop(self) -> None:
        """Powers the machine off (SIGTERM makes nspawn ask the container's systemd to), kills
        it if that takes too long, and removes its directory. Safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT_S)
        if self._console is not None:
            self._console.close()
            self._console = None
        shutil.rmtree(self.workdir, ignore_errors=True)
        _running.pop(id(self), None)


_running: dict[int, Machine] = {}


@atexit.register
def _stop_leftovers() -> None:
    # A session killed between boot and teardown must still not leave machines behind.
    for machine in list(_running.values()):
        with contextlib.suppress(Exception):
            machine.stop()


def start_machine(
    name: str, rootfs: Path = ROOTFS, extra_args: tuple[str, ...] = (), ssh_port: int | None = None
) -> Machine:
    """Boots `rootfs` under a throw-away overlay in the background and returns at once."""
    # Short path: a unix socket path must fit in 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
    (workdir / "dbus").mkdir()
    binds = [f"--bind={workdir / 'dbus'}:/run/dbus"]
    if ssh_port is not None:
        port_file = workdir / "sshd-port.conf"
        port_file.write_text(f"Port {ssh_port}\nListenAddress 127.0.0.1\n")
        binds.append(f"--bind-ro={port_file}:{SSHD_PORT_CONFIG}")
    console = open(workdir / "console.log", "w")
    command = [
        "systemd-nspawn", "--quiet", "-b", "-D", str(rootfs), "--volatile=overlay",
        "--register=no", "--keep-unit", "--console=pipe", "-M", name,
        *binds, *extra_args,
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        # Its own process group: a Ctrl-C in the terminal goes to pytest, whose teardown then
        # powers the machine off properly.
        start_new_session=True,
    )
    machine = Machine(name, process, workdir, ssh_port, _console=console)
    _running[id(machine)] = machine
    return machine


@contextlib.contextmanager
def booted(name: str, rootfs: Path = ROOTFS) -> Iterator[Machine]:
    """One booted machine for the duration of the block."""
    started = time.monotonic()
    machine = start_machine(name, rootfs)
    try:
        machine.wait_until_booted()
        machine.boot_s = time.monotonic() - started
        yield machine
    finally:
        machine.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(machine: Machine, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(
            ("127.0.0.1", machine.ssh_port), timeout=1
        ) as conn:
            conn.settimeout(2)
            if conn.recv(4).startswith(b"SSH-"):
                return
        time.sleep(0.1)
    raise MachineError(
        f"machine {machine.name}: sshd not answering on 127.0.0.1:{machine.ssh_port}:\n"
        f"{machine.console_tail()}"
    )


@contextlib.contextmanager
def ssh_fleet(
    count: int, prefix: str = "fleet", rootfs: Path | None = None, flavour: str = "minimal"
) -> Iterator[list[Machine]]:
    """`count` machines booted at once from the cached rootfs of `flavour` (see the module
    doc), each with sshd on its own port of 127.0.0.1 (`machine.ssh_port`), root login with
    SSH_KEY. Stopped after the block."""
    ensure_host_tools()
    rootfs = rootfs or ensure_rootfs(flavour)
    machines: list[Machine] = []
    try:
        started = time.monotonic()
        for index in range(count):
            name = f"{prefix}-{os.getpid()}-{index}"
            machines.append(start_machine(name, rootfs, ssh_port=free_port()))
        for machine in machines:
            machine.wait_until_booted()
            _wait_for_port(machine, timeout_s=30)
            machine.boot_s = time.monotonic() - started
        yield machines
    finally:
        for machine in machines:
            machine.stop()


def ssh_command(machine: Machine, *command: str) -> list[str]:
    """argv for `ssh` into the machine as root with the fleet key, no prompts."""
    if machine.ssh_port is None:
        raise MachineError(f"machine {machine.name} has no sshd port")
    return [
        "ssh", "-i", str(SSH_KEY), "-p", str(machine.ssh_port),
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10",
        "root@127.0.0.1", *command,
    ]


def host_vars(machine: Machine) -> dict[str, str | int]:
    """The connection variables of the machine for an inventory: root over SSH with the fleet
    key, host keys neither checked nor kept (each machine is new)."""
    if machine.ssh_port is None:
        raise MachineError(f"machine {machine.name} has no sshd port")
    return {
        "ansible_host": "127.0.0.1",
        "ansible_port": machine.ssh_port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(SSH_KEY),
        "ansible_ssh_common_args":
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    }


def inventory_line(machine: Machine, python: bool = True) -> str:
    """One INI inventory host line for the machine ([`host_vars`]); with `python`, the
    interpreter of the python flavour is named so no discovery runs."""
    variables = host_vars(machine)
    ssh_args = variables.pop("ansible_ssh_common_args")
    line = " ".join([machine.name, *(f"{k}={v}" for k, v in variables.items())])
    line += f" ansible_ssh_common_args='{ssh_args}'"
    if python:
        line += f" ansible_python_interpreter={PYTHON_INTERPRETER}"
    return line


def write_inventory(
    machines: list[Machine], path: Path, group: str = "fleet", python: bool = True
) -> Path:
    """Writes an INI inventory with the machines in `group` and returns its path."""
    lines = [f"[{group}]", *(inventory_line(machine, python) for machine in machines), ""]
    path.write_text("\n".join(lines))
    return path


# A stand-in for the NVIDIA driver's nvidia-smi: one GPU, and a persistence mode that
# `-pm 1` really switches (kept in a file), so a role that sets it changes the machine once.
GPU_STANDIN_SMI = """\
#!/bin/sh
# testbed stand-in for nvidia-smi (no real GPU): one GPU, persistence mode kept in a file.
state=/var/lib/nvidia-standin/persistence_mode
mode=$(cat "$state" 2>/dev/null || echo Disabled)
case " $* " in
    *" -pm 1 "*) mkdir -p "${state%/*}"; echo Enabled >"$state"
        echo "Enabled persistence mode for GPU 00000000:00:1E.0." ;;
    *" -pm 0 "*) mkdir -p "${state%/*}"; echo Disabled >"$state"
        echo "Disabled persistence mode for GPU 00000000:00:1E.0." ;;
    *--query-gpu=*) echo "0, NVIDIA H100 80GB HBM3, 550.54.15, $mode" ;;
    *) echo "NVIDIA-SMI 550.54.15 (testbed stand-in)  GPU 0: NVIDIA H100 80GB HBM3 ($mode)" ;;
esac
"""


def add_gpu_standin(machine: Machine) -> None:
    """Makes a running machine look like a GPU host: a `/dev/nvidia0` character device
    (major 195, as the driver's) and the stand-in `/usr/local/bin/nvidia-smi` above. Both live
    in the machine's overlay, so they go away with it."""
    script = "/usr/local/bin/nvidia-smi"
    steps = [
        ("mknod", "-m", "0666", "/dev/nvidia0", "c", "195", "0"),
        ("sh", "-c", f"cat >{script} <<'STANDIN'\n{GPU_STANDIN_SMI}STANDIN\nchmod 0755 {script}"),
    ]
    for step in steps:
        result = machine.run(*step)
        if result.returncode != 0:
            raise MachineError(
                f"machine {machine.name}: {' '.join(step[:2])} failed: {result.stderr.strip()}"
            )
