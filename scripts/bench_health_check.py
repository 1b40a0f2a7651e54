#!/usr/bin/env python3
"""Benchmark one health_check run of a 40-check suite against a real fleet and engine, and the
same 40 checks done with Ansible's own modules.

The suite, with everything healthy:

    15 systemd units   in a booted systemd-nspawn machine (tests/systemd/nspawn_machines.py),
                       read over its D-Bus socket on the host
    10 containers      on a private dockerd (tests/containers/private_dockerd.py), each with a
                       healthcheck that passes
     5 tcp + 5 http    listeners and servers this script starts on 127.0.0.1
     5 disks           local paths, with generous limits (99 %) so that they pass

Measured, in this order (setup is never inside a measurement):

    module                  the binary run by hand, `health_check ARGS.json`: warm-up runs, then
                            measured runs; wall time from this process and the peak RSS of the
                            module process (ru_maxrss via /usr/bin/time, see _run_module)
    ansible-playbook+module one play on localhost (connection local) with one `health_check:`
                            task carrying the same args: the end-to-end Ansible cost
    baseline                one playbook doing the 40 checks with Ansible's own modules:
                            service_facts over SSH on the machine (it gets python3 first,
                            outside the measurement), community.docker.docker_container_info,
                            wait_for, uri, setup (mounts), each followed by assert

Both playbooks run with the same ansible-playbook (from .cache/bench-venv: the full `ansible`
package, for community.docker, on the ansible-core of .venv), the repo's ansible.cfg and a fresh
ANSIBLE_HOME per run (no SSH connection reused between runs). They run interleaved, after one
unmeasured warm-up each, so that background load on a shared machine hits both alike.

Every run must pass all 40 checks; otherwise the benchmark stops and says which failed. The
figures go to a table on stdout and to ci-artifacts/bench/health_check.json (written
atomically). Missing a target is reported, not hidden; `--strict` makes it exit 2.

    make bench                                      (builds and installs the module first)
    .venv/bin/python scripts/bench_health_check.py [--runs 10] [--playbook-runs 3]

Needs root (systemd-nspawn, dockerd), the Debian mirror (the rootfs on a first run, python3 in
the machine on every run) and PyPI on a first run (.cache/bench-venv).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import http.server
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
# testbed is installed into .venv (pyproject.toml); no sys.path editing.

from testbed import machines as nspawn_machines  # noqa: E402
from testbed import dockerd as private_dockerd  # noqa: E402
from testbed.errors import TestbedError  # noqa: E402

MODULE_BINARY = REPO_ROOT / "roles" / "ops" / "health_check" / "library" / "health_check"
ANSIBLE_CONFIG = REPO_ROOT / "ansible.cfg"
CACHE_DIR = REPO_ROOT / ".cache"
BENCH_VENV = CACHE_DIR / "bench-venv"
RESULT_PATH = REPO_ROOT / "ci-artifacts" / "bench" / "health_check.json"
GNU_TIME = Path("/usr/bin/time")

UNIT_COUNT = 15
CONTAINER_COUNT = 10
TCP_COUNT = 5
HTTP_COUNT = 5
DISK_COUNT = 5
TOTAL_CHECKS = UNIT_COUNT + CONTAINER_COUNT + TCP_COUNT + HTTP_COUNT + DISK_COUNT
DISK_CANDIDATES = ("/", "/tmp", "/var", "/usr", "/work", "/home", "/opt", "/srv", "/root", "/boot")
# Generous on purpose: the benchmark times healthy checks, it does not judge this machine.
DISK_MAX_USED_PERCENT = 99
DISK_MAX_INODES_USED_PERCENT = 99

UNIT_TEXT = """\
[Unit]
Description=health_check benchmark unit {number}

[Service]
ExecStart=/bin/sleep infinity
"""

# Not the tests' engine: its own data root and containerd namespaces, so that a test session's
# dockerd running at the same time (they share DATA_ROOT) is neither seen nor disturbed.
DOCKER_DATA_ROOT = Path("/var/lib/hc-bench-docker")
CONTAINER_LABEL = "hc-bench=health_check"
# A probe every 10 s: healthy soon after start, and little background load while measuring.
CONTAINER_HEALTH_INTERVAL = "10s"
CONTAINERS_HEALTHY_TIMEOUT_S = 90

# ansible 12 is the release built on ansible-core 2.19, the line .venv has.
ANSIBLE_PACKAGE_SPEC = "ansible~=12.0"
PLAYBOOK_TIMEOUT_S = 600

TARGET_MODULE_WALL_MS = 150.0
TARGET_SPEEDUP = 20.0
TARGET_RSS_BYTES = 20_000_000  # 20 MB, decimal: the stricter reading of "20 MB"


class BenchmarkError(RuntimeError):
    """Setup failed or a run was not all healthy: the figures would mean nothing."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so that every finally block still runs."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Host prerequisites and the baseline's Ansible


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, capture_output=True).returncode == 0:
        return
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
    proc = subprocess.run(install, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchmarkError(f"apt-get install {' '.join(packages)} failed:\n{proc.stderr[-3000:]}")


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise BenchmarkError("run as root: the benchmark boots systemd-nspawn and starts dockerd")
    if not (MODULE_BINARY.is_file() and os.access(MODULE_BINARY, os.X_OK)):
        raise BenchmarkError(
            f"{MODULE_BINARY.relative_to(REPO_ROOT)} is missing: run `make install`"
        )
    if not GNU_TIME.is_file():
        log("installing GNU time (measures the module's peak RSS)")
        _apt_install("time")
    nspawn_machines.ensure_host_tools()
    private_dockerd._ensure_packages()


def _venv_ansible_core_version() -> str:
    """The ansible-core this script's own environment (.venv) has: the baseline runs on it."""
    try:
        return importlib.metadata.version("ansible-core")
    except importlib.metadata.PackageNotFoundError as error:
        raise BenchmarkError(
            "run with .venv's python (make bench): no ansible-core here"
        ) from error


def ensure_bench_venv() -> Path:
    """.cache/bench-venv with the full `ansible` package (community.docker) and requests, made
    once and reused while the wanted versions stay the same. A venv cannot be renamed (its
    scripts name their interpreter by path), so it is built in place and the stamp is written
    last: a venv without a matching stamp is rebuilt."""
    requirements = [
        f"ansible-core=={_venv_ansible_core_version()}",
        ANSIBLE_PACKAGE_SPEC,
        "requests",
    ]
    wanted = json.dumps(requirements)
    stamp = BENCH_VENV / ".bench-requirements"
    CACHE_DIR.mkdir(exist_ok=True)
    with open(CACHE_DIR / "bench-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (
            stamp.is_file()
            and stamp.read_text() == wanted
            and (BENCH_VENV / "bin" / "ansible-playbook").is_file()
        ):
            return BENCH_VENV
        log(
            f"creating {BENCH_VENV.relative_to(REPO_ROOT)}: {' '.join(requirements)} (a few minutes)"
        )
        shutil.rmtree(BENCH_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        proc = subprocess.run(
            [str(BENCH_VENV / "bin" / "pip"), "install", "-q", *requirements],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BenchmarkError(f"pip install into {BENCH_VENV} failed:\n{proc.stderr[-3000:]}")
        stamp.write_text(wanted)
    return BENCH_VENV


def bench_venv_versions(venv: Path) -> dict[str, str]:
    script = (
        "import importlib.metadata as m, json, pathlib, ansible_collections\n"
        "root = pathlib.Path(ansible_collections.__path__[0])\n"
        "def coll(ns, name):\n"
        "    return json.loads((root / ns / name / 'MANIFEST.json').read_text())"
        "['collection_info']['version']\n"
        "print(json.dumps({'ansible': m.version('ansible'), 'ansible_core': m.version('ansible-core'),"
        " 'community.docker': coll('community', 'docker'), 'requests': m.version('requests')}))\n"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------------------------
# The fleet machine: 15 bench units, and Python for the baseline


def add_bench_units(machine: nspawn_machines.Machine) -> list[str]:
    """Writes UNIT_COUNT simple services into the running machine and starts them."""
    units = [f"bench-{number:02d}.service" for number in range(1, UNIT_COUNT + 1)]
    unit_dir = Path(f"/proc/{machine.leader_pid()}/root/etc/systemd/system")
    for number, unit in enumerate(units, start=1):
        (unit_dir / unit).write_text(UNIT_TEXT.format(number=number))
    for command in (("systemctl", "daemon-reload"), ("systemctl", "start", *units)):
        proc = machine.run(*command, timeout_s=60)
        if proc.returncode != 0:
            raise BenchmarkError(
                f"{' '.join(command[:2])} in {machine.name}: {proc.stderr.strip()}"
            )
    states = machine.run("systemctl", "is-active", *units).stdout.split()
    if states != ["active"] * len(units):
        raise BenchmarkError(f"bench units not all active: {dict(zip(units, states))}")
    return units


def install_python(machine: nspawn_machines.Machine) -> float:
    """Python in the (Python-free) machine, for the baseline's modules. Seconds taken.

    `python3`, not `python3-minimal`: the minimal one has no `json`, which every Ansible module
    needs."""
    started = time.monotonic()
    install = (
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "python3",
    )
    proc = machine.run(*install, timeout_s=600)
    if proc.returncode != 0:
        machine.run("apt-get", "update", "-qq", timeout_s=600)
        proc = machine.run(*install, timeout_s=600)
    if proc.returncode != 0 or machine.run("/usr/bin/python3", "-c", "import json").returncode != 0:
        raise BenchmarkError(f"installing python3 in {machine.name} failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# The private Docker engine and its 10 healthy containers


@dataclass
class BenchEngine:
    socket_path: Path
    containers: list[str]

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"


def _remove_bench_containers(socket_path: Path) -> None:
    ids = private_dockerd._docker(
        socket_path, "ps", "-aq", "--filter", f"label={CONTAINER_LABEL}"
    ).stdout.split()
    if ids:
        private_dockerd._docker(socket_path, "rm", "-f", *[i.decode() for i in ids], check=False)


def _start_bench_dockerd(run_dir: Path) -> tuple[subprocess.Popen, Path]:
    # Its own data root and containerd namespace: a test session running meanwhile keeps its own.
    try:
        process, socket_path, _log = private_dockerd.start_dockerd(
            run_dir, data_root=DOCKER_DATA_ROOT, namespace="hc-bench"
        )
    except private_dockerd.DockerdError as error:
        raise BenchmarkError(str(error)) from None
    return process, socket_path


@contextlib.contextmanager
def bench_docker_engine() -> Iterator[BenchEngine]:
    """A private dockerd with CONTAINER_COUNT healthy httpd containers; all removed and dockerd
    stopped on the way out. The image stays in DOCKER_DATA_ROOT, like the tests' engine does."""
    run_dir = Path(tempfile.mkdtemp(prefix="hcb-docker-", dir="/tmp"))  # short: socket path
    try:
        process, socket_path = _start_bench_dockerd(run_dir)
        try:
            _remove_bench_containers(socket_path)  # left by a run killed before its cleanup
            private_dockerd._build_image(socket_path)
            names = [f"hcb-{number:02d}" for number in range(1, CONTAINER_COUNT + 1)]
            for name in names:
                private_dockerd._docker(
                    socket_path,
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--label",
                    CONTAINER_LABEL,
                    "--network",
                    "none",
                    "--health-cmd",
                    private_dockerd.HEALTHY_CMD,
                    "--health-interval",
                    CONTAINER_HEALTH_INTERVAL,
                    "--health-retries",
                    "1",
                    private_dockerd.IMAGE,
                    "/bin/httpd",
                    "-f",
                    "-p",
                    "8080",
                    "-h",
                    "/www",
                )
            deadline = time.monotonic() + CONTAINERS_HEALTHY_TIMEOUT_S
            pending = set(names)
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    state = private_dockerd._inspect(socket_path, name)["State"]
                    if (
                        state["Status"] == "running"
                        and (state.get("Health") or {}).get("Status") == "healthy"
                    ):
                        pending.discard(name)
                time.sleep(0.5)
            if pending:
                raise BenchmarkError(
                    f"containers not healthy within {CONTAINERS_HEALTHY_TIMEOUT_S}s: "
                    + ", ".join(
                        f"{name}: {json.dumps(private_dockerd._inspect(socket_path, name)['State'])[:300]}"
                        for name in sorted(pending)
                    )
                )
            yield BenchEngine(socket_path, names)
        finally:
            try:
                _remove_bench_containers(socket_path)
            finally:
                private_dockerd._stop_dockerd(process)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Endpoints on 127.0.0.1


class _OkHandler(http.server.BaseHTTPRequestHandler):
    def _answer(self, body: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "3")
        self.end_headers()
        if body:
            self.wfile.write(b"ok\n")

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def local_endpoints() -> Iterator[tuple[list[int], list[str]]]:
    """TCP_COUNT listeners that accept and close, and HTTP_COUNT servers that answer 200 `ok`;
    yields (tcp ports, http urls) and closes them all on the way out."""
    stop = threading.Event()
    listeners: list[socket.socket] = []
    servers: list[http.server.ThreadingHTTPServer] = []
    threads: list[threading.Thread] = []

    def accept_and_close(listener: socket.socket) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            conn.close()

    try:
        for _ in range(TCP_COUNT):
            listener = socket.socket()
            listeners.append(listener)
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            listener.settimeout(0.2)
            threads.append(threading.Thread(target=accept_and_close, args=(listener,), daemon=True))
        for _ in range(HTTP_COUNT):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OkHandler)
            server.daemon_threads = True
            servers.append(server)
            threads.append(threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True))
        for thread in threads:
            thread.start()
        yield (
            [listener.getsockname()[1] for listener in listeners],
            [f"http://127.0.0.1:{server.server_address[1]}/" for server in servers],
        )
    finally:
        stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
        for listener in listeners:
            listener.close()


def pick_disks() -> list[str]:
    paths = [path for path in DISK_CANDIDATES if os.path.isdir(path)][:DISK_COUNT]
    if len(paths) < DISK_COUNT:
        raise BenchmarkError(f"only {len(paths)} of the disk paths exist: {paths}")
    return paths


def mount_point_candidates(path: str) -> list[str]:
    """`/work/main` -> ['/', '/work', '/work/main']: the mount points that could hold it."""
    parts = [part for part in os.path.realpath(path).split("/") if part]
    return ["/"] + ["/" + "/".join(parts[: index + 1]) for index in range(len(parts))]


# ---------------------------------------------------------------------------------------------
# The suite, as module args and as the baseline's vars


@dataclass
class Suite:
    units: list[str]
    systemd_bus: str
    containers: list[str]
    docker_host: str
    tcp_ports: list[int]
    http_urls: list[str]
    disks: list[str]

    def module_args(self) -> dict[str, Any]:
        return {
            "systemd": self.units,
            "systemd_bus": self.systemd_bus,
            "containers": self.containers,
            "docker_host": self.docker_host,
            "tcp": [f"127.0.0.1:{port}" for port in self.tcp_ports],
            "http": self.http_urls,
            "disks": [
                {
                    "path": path,
                    "max_used_percent": DISK_MAX_USED_PERCENT,
                    "max_inodes_used_percent": DISK_MAX_INODES_USED_PERCENT,
                }
                for path in self.disks
            ],
        }

    def baseline_vars(self) -> dict[str, Any]:
        return {
            "bench_units": self.units,
            "bench_containers": self.containers,
            "bench_docker_host": self.docker_host,
            "bench_tcp_ports": self.tcp_ports,
            "bench_http_urls": self.http_urls,
            "bench_disks": [
                {"path": path, "mount_candidates": mount_point_candidates(path)}
                for path in self.disks
            ],
            "bench_max_used_percent": DISK_MAX_USED_PERCENT,
            "bench_max_inodes_used_percent": DISK_MAX_INODES_USED_PERCENT,
        }


MODULE_PLAYBOOK = """\
---
- name: health_check, one task with all {total} checks
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the {total} checks
      health_check: {args}
"""

BASELINE_PLAYBOOK = """\
---
# The same checks with Ansible's own modules, as a playbook author would write them.
- name: Baseline - systemd units on the fleet machine, over SSH
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Gather the service states
      ansible.builtin.service_facts:

    - name: Assert each unit is running
      ansible.builtin.assert:
        that:
          - ansible_facts.services[item] is defined
          - ansible_facts.services[item].state == 'running'
        quiet: true
      loop: "{{ bench_units }}"

- name: Baseline - containers, endpoints and disks on localhost
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Inspect each container
      community.docker.docker_container_info:
        name: "{{ item }}"
        docker_host: "{{ bench_docker_host }}"
      loop: "{{ bench_containers }}"
      register: bench_container_info

    - name: Assert each container is running and healthy
      ansible.builtin.assert:
        that:
          - item.exists
          - item.container.State.Status == 'running'
          - item.container.State.Health.Status == 'healthy'
          - not item.container.State.OOMKilled
        quiet: true
      loop: "{{ bench_container_info.results }}"
      loop_control:
        label: "{{ item.item }}"

    - name: Connect to each TCP port
      ansible.builtin.wait_for:
        host: 127.0.0.1
        port: "{{ item }}"
        timeout: 5
      loop: "{{ bench_tcp_ports }}"

    - name: Request each URL
      ansible.builtin.uri:
        url: "{{ item }}"
        status_code: 200
        timeout: 5
      loop: "{{ bench_http_urls }}"

    - name: Gather the mounts
      ansible.builtin.setup:
        gather_subset:
          - "!all"
          - "!min"
          - mounts

    - name: Assert space and inode usage of each disk path
      ansible.builtin.assert:
        that:
          - bench_mount is defined
          - 100 * bench_mount.block_used / bench_mount.block_total <= bench_max_used_percent
          - 100 * bench_mount.inode_used / bench_mount.inode_total <= bench_max_inodes_used_percent
        quiet: true
      vars:
        # The longest mount point that holds the path: the candidates are the path's own
        # prefixes, so sorting them by name sorts them by length.
        bench_mount: >-
          {{ ansible_facts.mounts | selectattr('mount', 'in', item.mount_candidates)
             | sort(attribute='mount') | last }}
      loop: "{{ bench_disks }}"
      loop_control:
        label: "{{ item.path }}"
"""


def write_inventory(path: Path, machine: nspawn_machines.Machine) -> None:
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                },
            },
            "children": {
                "fleet": {
                    "hosts": {
                        machine.name: {
                            "ansible_host": "127.0.0.1",
                            "ansible_port": machine.ssh_port,
                            "ansible_user": "root",
                            "ansible_ssh_private_key_file": str(nspawn_machines.SSH_KEY),
                            "ansible_ssh_common_args": (
                                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                "-o LogLevel=ERROR"
                            ),
                            "ansible_python_interpreter": "/usr/bin/python3",
                        },
                    },
                },
            },
        },
    }
    path.write_text(json.dumps(inventory, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Runs


@dataclass
class ModuleRun:
    wall_ms: float
    max_rss_kib: int
    result: dict[str, Any]


def _failing_checks(result: dict[str, Any]) -> str:
    lines = [
        f"  {check.get('kind')}:{check.get('name')}: {check.get('status')} - {check.get('message')}"
        for check in result.get("checks", [])
        if check.get("status") != "pass"
    ]
    return "\n".join(lines) or f"  (no failing check listed; msg: {result.get('msg')})"


def run_module(args_file: Path, rss_file: Path) -> ModuleRun:
    """One run of the binary. Its peak RSS comes from GNU time, which forks the module from its
    own small process: ru_maxrss taken here with os.wait4 would be this Python process's,
    because Linux carries the pre-exec high-water mark of the (v)forked parent over into the
    child. The wall time includes time's own fork and exec (about 1 ms here)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DBUS_SYSTEM_BUS_ADDRESS")
    }
    started = time.perf_counter()
    proc = subprocess.run(
        [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), str(MODULE_BINARY), str(args_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as error:
        raise BenchmarkError(
            f"the module printed no JSON (rc={proc.returncode}): {proc.stdout[-2000:]!r} "
            f"stderr: {proc.stderr[-2000:]!r}"
        ) from error
    summary = result.get("summary") or {}
    if (
        summary.get("status") != "pass"
        or result.get("failed")
        or len(result.get("checks", [])) != TOTAL_CHECKS
    ):
        raise BenchmarkError(
            f"the module run was not all healthy (summary.status={summary.get('status')!r}, "
            f"{len(result.get('checks', []))} checks, want {TOTAL_CHECKS} passing):\n"
            f"{_failing_checks(result)}\nmsg: {result.get('msg')}"
        )
    max_rss_kib = int(rss_file.read_text().strip().splitlines()[-1])
    return ModuleRun(wall_ms, max_rss_kib, result)


@dataclass
class Ansible:
    venv: Path
    inventory: Path
    workdir: Path
    control_dirs: list[Path] = field(default_factory=list)

    def run_playbook(self, playbook: Path, label: str, extra_vars: Path | None = None) -> float:
        """One ansible-playbook run in a fresh ANSIBLE_HOME; its wall seconds. A failed run
        stops the benchmark with the end of its output."""
        home = Path(tempfile.mkdtemp(prefix="ansible-home-", dir=self.workdir))
        self.control_dirs.append(home / "cp")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(
            ANSIBLE_CONFIG=str(ANSIBLE_CONFIG),
            ANSIBLE_HOME=str(home),
            ANSIBLE_LIBRARY=str(MODULE_BINARY.parent),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        command = [
            str(self.venv / "bin" / "ansible-playbook"),
            "-i",
            str(self.inventory),
            str(playbook),
        ]
        if extra_vars is not None:
            command += ["-e", f"@{extra_vars}"]
        started = time.perf_counter()
        proc = subprocess.run(
            command,
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=PLAYBOOK_TIMEOUT_S,
        )
        elapsed = time.perf_counter() - started
        (self.workdir / f"{label}.log").write_text(proc.stdout)
        recap = proc.stdout[proc.stdout.rfind("PLAY RECAP") :]
        if proc.returncode != 0 or "failed=0" not in recap or "unreachable=0" not in recap:
            raise BenchmarkError(
                f"ansible-playbook ({label}) failed, rc={proc.returncode}:\n{proc.stdout[-6000:]}"
            )
        return elapsed

    def close_ssh_masters(self) -> None:
        """Ends the ControlPersist masters the SSH runs left (they would linger for 60 s)."""
        for control_dir in self.control_dirs:
            if not control_dir.is_dir():
                continue
            for control_socket in control_dir.iterdir():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={control_socket}", "-O", "exit", "bench"],
                    capture_output=True,
                    timeout=10,
                )


# ---------------------------------------------------------------------------------------------
# Report


def machine_info() -> dict[str, Any]:
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    os_release = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                os_release[key] = value.strip('"')
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_total_kib": int(meminfo["MemTotal"].split()[0]),
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", "unknown"),
        "hostname": socket.gethostname(),
    }


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def stats(values: list[float], digits: int) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "each": [round(value, digits) for value in values],
    }


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def print_table(report: dict[str, Any]) -> None:
    module = report["module"]
    playbook = report["ansible_playbook_with_module"]
    baseline = report["baseline"]
    machine = report["machine"]
    targets = {target["name"]: target for target in report["targets"]}

    def verdict(name: str) -> str:
        target = targets[name]
        text = "pass" if target["pass"] else "FAIL"
        return f"{text} (informational)" if target.get("informational") else text

    suite = report["suite"]
    print()
    print(
        f"health_check benchmark: {suite['total']} checks ({suite['systemd']} systemd, "
        f"{suite['containers']} containers, {suite['tcp']} tcp, {suite['http']} http, "
        f"{suite['disks']} disks), all healthy"
    )
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_total_kib'] / 1024 / 1024:.1f} GiB, kernel {machine['kernel']}, "
        f"load {report['load_average']['before']} -> {report['load_average']['after']}"
    )
    rows = [
        ("metric", "value", "target", "result"),
        (
            f"module wall, median of {module['runs']}",
            f"{module['wall_ms']['median']:.1f} ms",
            f"< {TARGET_MODULE_WALL_MS:g} ms",
            verdict("module_wall_ms_median"),
        ),
        (
            "module wall, min / max",
            f"{module['wall_ms']['min']:.1f} / {module['wall_ms']['max']:.1f} ms",
            "",
            "",
        ),
        (
            "module peak RSS, max of runs",
            f"{module['peak_rss_kib']['max']} KiB ({module['peak_rss_kib']['max'] / 1024:.1f} MiB)",
            f"< {TARGET_RSS_BYTES / 1e6:g} MB",
            verdict("module_peak_rss"),
        ),
        ("module binary size", f"{report['binary']['size_bytes'] / 1024 / 1024:.1f} MiB", "", ""),
        (
            f"ansible-playbook + module, median of {len(playbook['wall_s']['each'])}",
            f"{playbook['wall_s']['median']:.2f} s",
            "",
            "",
        ),
        (
            f"baseline ansible-playbook, median of {len(baseline['wall_s']['each'])}",
            f"{baseline['wall_s']['median']:.2f} s",
            "",
            "",
        ),
        (
            "baseline runs",
            " / ".join(f"{value:.2f}" for value in baseline["wall_s"]["each"]) + " s",
            "",
            "",
        ),
        (
            "speedup baseline / module",
            f"{report['speedup']['baseline_over_module']:.0f}x",
            f">= {TARGET_SPEEDUP:g}x",
            verdict("speedup_baseline_over_module"),
        ),
        (
            "speedup baseline / playbook+module",
            f"{report['speedup']['baseline_over_ansible_playbook_with_module']:.1f}x",
            f">= {TARGET_SPEEDUP:g}x",
            verdict("speedup_baseline_over_ansible_playbook_with_module"),
        ),
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(f"written: {RESULT_PATH.relative_to(REPO_ROOT)}")


# ---------------------------------------------------------------------------------------------
# Main


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def benchmark(options: argparse.Namespace) -> dict[str, Any]:
    check_prerequisites()
    venv = ensure_bench_venv()
    versions = bench_venv_versions(venv)
    load_before = [round(value, 2) for value in os.getloadavg()]
    setup: dict[str, float] = {}

    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="hc-bench-", dir="/tmp"))
        if options.keep_workdir:
            cleanup.callback(log, f"kept {workdir}: args, playbooks, inventory, run logs")
        else:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)

        log("booting the fleet machine (systemd-nspawn)")
        started = time.monotonic()
        (machine,) = cleanup.enter_context(nspawn_machines.ssh_fleet(1, prefix="hcbench"))
        setup["machine_boot_s"] = time.monotonic() - started
        started = time.monotonic()
        units = add_bench_units(machine)
        setup["units_start_s"] = time.monotonic() - started
        log(f"{len(units)} units active in {machine.name}; installing python3 for the baseline")
        setup["machine_python_install_s"] = install_python(machine)

        log(f"starting a private dockerd and {CONTAINER_COUNT} containers, waiting until healthy")
        started = time.monotonic()
        engine = cleanup.enter_context(bench_docker_engine())
        setup["containers_healthy_s"] = time.monotonic() - started

        tcp_ports, http_urls = cleanup.enter_context(local_endpoints())
        suite = Suite(
            units,
            machine.bus_address,
            engine.containers,
            engine.docker_host,
            tcp_ports,
            http_urls,
            pick_disks(),
        )

        args_file = workdir / "args.json"
        args_file.write_text(json.dumps(suite.module_args(), indent=2))
        rss_file = workdir / "rss.txt"
        log(f"module: {options.warmup} warm-up + {options.runs} measured runs")
        for _ in range(options.warmup):
            run_module(args_file, rss_file)
        module_runs = [run_module(args_file, rss_file) for _ in range(options.runs)]
        (workdir / "module-result.json").write_text(json.dumps(module_runs[-1].result, indent=2))
        check_kinds: dict[str, int] = {}
        for check in module_runs[-1].result["checks"]:
            check_kinds[check["kind"]] = check_kinds.get(check["kind"], 0) + 1

        inventory = workdir / "inventory.json"
        write_inventory(inventory, machine)
        module_playbook = workdir / "module.yml"
        module_playbook.write_text(
            MODULE_PLAYBOOK.format(total=TOTAL_CHECKS, args=json.dumps(suite.module_args()))
        )
        baseline_playbook = workdir / "baseline.yml"
        baseline_playbook.write_text(BASELINE_PLAYBOOK)
        baseline_vars = workdir / "baseline-vars.json"
        baseline_vars.write_text(json.dumps(suite.baseline_vars(), indent=2))
        ansible = Ansible(venv, inventory, workdir)
        cleanup.callback(ansible.close_ssh_masters)

        log("ansible-playbook: one warm-up of each playbook (not measured)")
        warmup_module_s = ansible.run_playbook(module_playbook, "module-warmup")
        warmup_baseline_s = ansible.run_playbook(
            baseline_playbook, "baseline-warmup", baseline_vars
        )
        playbook_module_s: list[float] = []
        baseline_s: list[float] = []
        for index in range(options.playbook_runs):
            log(f"ansible-playbook: measured round {index + 1} of {options.playbook_runs}")
            playbook_module_s.append(ansible.run_playbook(module_playbook, f"module-{index + 1}"))
            baseline_s.append(
                ansible.run_playbook(baseline_playbook, f"baseline-{index + 1}", baseline_vars)
            )
        load_after = [round(value, 2) for value in os.getloadavg()]

    module_wall = [run.wall_ms for run in module_runs]
    module_rss = [run.max_rss_kib for run in module_runs]
    module_median_s = statistics.median(module_wall) / 1000
    speedup_module = statistics.median(baseline_s) / module_median_s
    speedup_playbook = statistics.median(baseline_s) / statistics.median(playbook_module_s)
    binary_bytes = MODULE_BINARY.read_bytes()
    return {
        "schema_version": 1,
        "benchmark": "health_check",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_info(),
        "machine": machine_info(),
        "load_average": {"before": load_before, "after": load_after},
        "suite": {
            "total": TOTAL_CHECKS,
            "systemd": UNIT_COUNT,
            "containers": CONTAINER_COUNT,
            "tcp": TCP_COUNT,
            "http": HTTP_COUNT,
            "disks": DISK_COUNT,
            "disk_paths": suite.disks,
            "disk_limits_percent": {
                "used": DISK_MAX_USED_PERCENT,
                "inodes_used": DISK_MAX_INODES_USED_PERCENT,
            },
            "module_check_kinds": check_kinds,
            "all_healthy": True,
        },
        "binary": {
            "path": str(MODULE_BINARY.relative_to(REPO_ROOT)),
            "size_bytes": len(binary_bytes),
            "sha256": hashlib.sha256(binary_bytes).hexdigest(),
        },
        "module": {
            "warmup_runs": options.warmup,
            "runs": options.runs,
            "wall_ms": stats(module_wall, 2),
            "peak_rss_kib": {
                "max": max(module_rss),
                "median": statistics.median(module_rss),
                "each": module_rss,
            },
            "summary_duration_ms_last_run": module_runs[-1].result["summary"].get("duration_ms"),
            "how": "binary run by hand (health_check ARGS.json) under /usr/bin/time -f %M; wall "
            "from the parent, including about 1 ms for time's own fork and exec",
        },
        "ansible_playbook_with_module": {
            "wall_s": stats(playbook_module_s, 3),
            "warmup_s": round(warmup_module_s, 3),
            "how": "ansible-playbook, one play on localhost (connection local), one health_check task",
        },
        "baseline": {
            "wall_s": stats(baseline_s, 3),
            "warmup_s": round(warmup_baseline_s, 3),
            "how": "ansible-playbook with Ansible's own modules: service_facts over SSH on the "
            "machine + assert; community.docker.docker_container_info per container + "
            "assert; wait_for per tcp port; uri per URL; setup (mounts) + assert",
            "versions": versions,
        },
        "speedup": {
            "baseline_over_module": round(speedup_module, 1),
            "baseline_over_ansible_playbook_with_module": round(speedup_playbook, 2),
        },
        "targets": [
            {
                "name": "module_wall_ms_median",
                "target": f"< {TARGET_MODULE_WALL_MS:g} ms",
                "value": round(statistics.median(module_wall), 2),
                "pass": statistics.median(module_wall) < TARGET_MODULE_WALL_MS,
            },
            {
                "name": "speedup_baseline_over_module",
                "target": f">= {TARGET_SPEEDUP:g}x",
                "value": round(speedup_module, 1),
                "pass": speedup_module >= TARGET_SPEEDUP,
            },
            {
                "name": "module_peak_rss",
                "target": f"< {TARGET_RSS_BYTES} bytes (20 MB), max over runs",
                "value": max(module_rss) * 1024,
                "pass": max(module_rss) * 1024 < TARGET_RSS_BYTES,
            },
            {
                "name": "speedup_baseline_over_ansible_playbook_with_module",
                "target": f">= {TARGET_SPEEDUP:g}x",
                "value": round(speedup_playbook, 2),
                "pass": speedup_playbook >= TARGET_SPEEDUP,
                "informational": True,
                "note": "end to end: both sides pay ansible-playbook's own start-up and play cost",
            },
        ],
        "setup_s": {key: round(value, 2) for key, value in setup.items()},
        "conditions": {
            "ansible_config": str(ANSIBLE_CONFIG.relative_to(REPO_ROOT)),
            "ansible_home": "fresh per run (no SSH ControlPersist connection reused across runs)",
            "order": "module runs first; then the two playbooks interleaved, one warm-up each",
            "systemd_access": "module: the machine's D-Bus socket on the host; baseline: SSH to "
            "the machine (sshd on 127.0.0.1), as Ansible reaches a fleet host",
            "container_health_interval": CONTAINER_HEALTH_INTERVAL,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="measured module runs (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="module warm-up runs (default 1)")
    parser.add_argument(
        "--playbook-runs",
        type=int,
        default=3,
        help="measured runs of each playbook (default 3; the median is reported)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the work dir in /tmp (args, playbooks, logs of every run)",
    )
    options = parser.parse_args()
    if options.runs < 1 or options.playbook_runs < 1 or options.warmup < 0:
        parser.error("--runs and --playbook-runs must be >= 1, --warmup >= 0")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    try:
        report = benchmark(options)
    except (KeyboardInterrupt, Interrupted) as stop:
        log(f"interrupted ({str(stop) or 'Ctrl-C'}); everything started was stopped")
        return 130
    except (
        BenchmarkError,
        TestbedError,
        subprocess.CalledProcessError,
        subprocess.TimeoutExpired,
    ) as error:
        log(f"error: {error}")
        return 1
    write_json_atomically(RESULT_PATH, report)
    print_table(report)
    missed = [
        target["name"]
        for target in report["targets"]
        if not target["pass"] and not target.get("informational")
    ]
    if missed:
        log(f"targets missed: {', '.join(missed)}")
        return 2 if options.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
