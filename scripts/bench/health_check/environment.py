"""Everything the suite runs against, set up outside any measurement and torn down after:
host prerequisites, the baseline's Ansible (.cache/bench-venv), the fleet machine with its
bench units, the private dockerd with its healthy containers, and the endpoints on 127.0.0.1.

The machine and the engine come from the installed `testbed` package, the same code the tests
use."""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from testbed import dockerd, machines
from testbed.errors import DockerdError

from . import CACHE_DIR, MODULE_BINARY, BenchmarkError, display_path, log
from .suite import CONTAINER_COUNT, HTTP_COUNT, TCP_COUNT, UNIT_COUNT

GNU_TIME = Path("/usr/bin/time")
BENCH_VENV = CACHE_DIR / "bench-venv"
# ansible 12 is the release built on ansible-core 2.19, the line .venv has.
ANSIBLE_PACKAGE_SPEC = "ansible~=12.0"

UNIT_TEXT = """\
[Unit]
Description=health_check benchmark unit {number}

[Service]
ExecStart=/bin/sleep infinity
"""

# Not the tests' engine: its own data root and containerd namespaces, so that a test session's
# dockerd running at the same time (they share DATA_ROOT) is neither seen nor disturbed.
DOCKER_DATA_ROOT = Path("/var/lib/hc-bench-docker")
DOCKER_NAMESPACE = "hc-bench"
CONTAINER_LABEL = "hc-bench=health_check"
# A probe every 10 s: healthy soon after start, and little background load while measuring.
CONTAINER_HEALTH_INTERVAL = "10s"
CONTAINERS_HEALTHY_TIMEOUT_S = 90


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
        raise BenchmarkError(f"{display_path(MODULE_BINARY)} is missing: run `make install`")
    if not GNU_TIME.is_file():
        log("installing GNU time (measures the module's peak RSS)")
        _apt_install("time")
    machines.ensure_host_tools()
    dockerd.ensure_packages()


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
        log(f"creating {display_path(BENCH_VENV)}: {' '.join(requirements)} (a few minutes)")
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
# The fleet machine: UNIT_COUNT bench units, and Python for the baseline


@contextlib.contextmanager
def fleet_machine() -> Iterator[machines.Machine]:
    """One booted machine of the test bed's python flavour (sshd on 127.0.0.1, python3 already
    in the rootfs), stopped after the block."""
    with machines.ssh_fleet(1, prefix="hcbench", flavour="python") as (machine,):
        yield machine


def add_bench_units(machine: machines.Machine) -> list[str]:
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


def _has_python(machine: machines.Machine) -> bool:
    return machine.run(machines.PYTHON_INTERPRETER, "-c", "import json").returncode == 0


def ensure_python(machine: machines.Machine) -> float:
    """Python in the machine, for the baseline's modules; seconds taken. The python flavour
    has it already; otherwise apt installs `python3` (not `python3-minimal`: that has no
    `json`, which every Ansible module needs)."""
    started = time.monotonic()
    if _has_python(machine):
        return time.monotonic() - started
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
    if proc.returncode != 0 or not _has_python(machine):
        raise BenchmarkError(f"installing python3 in {machine.name} failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# The private Docker engine and its CONTAINER_COUNT healthy containers


@dataclass
class BenchEngine:
    socket_path: Path
    containers: list[str]

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"


def _remove_bench_containers(socket_path: Path) -> None:
    ids = dockerd.docker(
        socket_path, "ps", "-aq", "--filter", f"label={CONTAINER_LABEL}"
    ).stdout.split()
    if ids:
        dockerd.docker(socket_path, "rm", "-f", *[i.decode() for i in ids], check=False)


def _start_bench_dockerd(run_dir: Path) -> tuple[subprocess.Popen, Path]:
    try:
        process, socket_path, _log = dockerd.start_dockerd(
            run_dir, data_root=DOCKER_DATA_ROOT, namespace=DOCKER_NAMESPACE
        )
    except DockerdError as error:
        raise BenchmarkError(str(error)) from None
    return process, socket_path


def _wait_until_healthy(socket_path: Path, names: list[str]) -> None:
    deadline = time.monotonic() + CONTAINERS_HEALTHY_TIMEOUT_S
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            state = dockerd.inspect(socket_path, name)["State"]
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
                f"{name}: {json.dumps(dockerd.inspect(socket_path, name)['State'])[:300]}"
                for name in sorted(pending)
            )
        )


@contextlib.contextmanager
def bench_docker_engine() -> Iterator[BenchEngine]:
    """A private dockerd with CONTAINER_COUNT healthy httpd containers; all removed and dockerd
    stopped on the way out. The image stays in DOCKER_DATA_ROOT, like the tests' engine does."""
    run_dir = Path(tempfile.mkdtemp(prefix="hcb-docker-", dir="/tmp"))  # short: socket path
    try:
        process, socket_path = _start_bench_dockerd(run_dir)
        try:
            _remove_bench_containers(socket_path)  # left by a run killed before its cleanup
            dockerd.build_image(socket_path)
            names = [f"hcb-{number:02d}" for number in range(1, CONTAINER_COUNT + 1)]
            for name in names:
                dockerd.docker(
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
                    dockerd.HEALTHY_CMD,
                    "--health-interval",
                    CONTAINER_HEALTH_INTERVAL,
                    "--health-retries",
                    "1",
                    dockerd.IMAGE,
                    "/bin/httpd",
                    "-f",
                    "-p",
                    "8080",
                    "-h",
                    "/www",
                )
            _wait_until_healthy(socket_path, names)
            yield BenchEngine(socket_path, names)
        finally:
            try:
                _remove_bench_containers(socket_path)
            finally:
                dockerd.stop_dockerd(process)
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
