"""A real, private Docker engine for the container checks (the `docker_engine` fixture in
conftest.py starts it once per session).

Per session: make sure Debian's `docker.io` (dockerd 20.10, API 1.41) and `busybox-static`
are installed, start `dockerd` on a private socket, exec root, pid file and containerd namespace
(a system dockerd, if one runs, is left alone), build a busybox image without any registry
(`docker import` of a static busybox root), and start one container per state the checks judge:

    hc-healthy     httpd, with a wget healthcheck that passes        -> healthy
    hc-unhealthy   a healthcheck that prints a reason and exits 1    -> unhealthy
    hc-starting    a healthcheck whose first probe is an hour away   -> starting
    hc-plain       no healthcheck                                    -> running, no health
    hc-restarting  --restart always, exits 1 at once                 -> restarting, RestartCount
    hc-oom         --memory 6m and a shell that doubles a string     -> exited 137, OOMKilled

`private_docker_engine()` waits until those states have settled and yields the engine; on the
way out it removes the containers and stops dockerd by its PID, waiting for it to exit: nothing
is left running. The image stays in DATA_ROOT for the next session.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import DockerdError, HostToolError

PACKAGES = ("docker.io", "busybox-static")
DATA_ROOT = Path("/var/lib/hc-test-docker")
IMAGE = "hc-busybox:latest"
LABEL = "hc-test=containers"
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "httpd", "wget", "sleep", "true", "false", "echo")

START_TIMEOUT_S = 30
SETTLE_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30

HEALTHY_CMD = "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"
UNHEALTHY_OUTPUT = "db: connection refused"

# name -> `docker run` arguments after the name (all with --network none: no bridge, no
# iptables, nothing touches the host's network).
CONTAINERS: dict[str, list[str]] = {
    "hc-healthy": [
        "--health-cmd", HEALTHY_CMD, "--health-interval", "1s", "--health-retries", "1",
        IMAGE, "/bin/httpd", "-f", "-p", "8080", "-h", "/www",
    ],
    "hc-unhealthy": [
        "--health-cmd", f"echo '{UNHEALTHY_OUTPUT}'; /bin/false",
        "--health-interval", "1s", "--health-retries", "1",
        IMAGE, "/bin/sleep", "3600",
    ],
    "hc-starting": [
        "--health-cmd", "true", "--health-interval", "1h",
        IMAGE, "/bin/sleep", "3600",
    ],
    "hc-plain": [IMAGE, "/bin/sleep", "3600"],
    "hc-restarting": ["--restart", "always", IMAGE, "/bin/sh", "-c", "exit 1"],
    "hc-oom": [
        "--memory", "6m", "--memory-swap", "6m",
        IMAGE, "/bin/sh", "-c", 'x=0123456789; while true; do x="$x$x"; done',
    ],
}


@dataclass
class DockerEngine:
    socket_path: Path
    log_path: Path
    # Why the OOM-killed container could not be made here, or None when it was.
    oom_unsupported: str | None = None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def inspect(self, name: str) -> dict[str, Any]:
        return inspect(self.socket_path, name)


# ---------------------------------------------------------------------------------------------
# Host setup


def ensure_packages() -> None:
    missing = [
        pkg
        for pkg in PACKAGES
        if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        ).stdout
        != "install ok installed"
    ]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise HostToolError(
            f"missing Debian packages {' '.join(missing)}: run `make bootstrap` as root "
            f"(or apt-get install {' '.join(missing)})",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise HostToolError(
                f"{' '.join(command)} failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}",
            )


def _docker_env(socket_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = f"unix://{socket_path}"
    return env


def docker(socket_path: Path, *args: str, input: bytes | None = None, check: bool = True):
    docker = shutil.which("docker") or "/usr/bin/docker"
    proc = subprocess.run(
        [docker, *args],
        env=_docker_env(socket_path),
        input=input,
        capture_output=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise DockerdError(
            f"docker {' '.join(args[:3])} ... failed (rc={proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return proc


def inspect(socket_path: Path, name: str) -> dict[str, Any]:
    proc = docker(socket_path, "inspect", name)
    return json.loads(proc.stdout)[0]


def _ping(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1)
            conn.connect(str(socket_path))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]
    except OSError:
        return False


def _log_tail(log_path: Path) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    except OSError:
        return "(no log)"


def start_dockerd(
    run_dir: Path, data_root: Path = DATA_ROOT, namespace: str = "hc-test"
) -> tuple[subprocess.Popen, Path, Path]:
    """Starts a private dockerd with its socket, exec root and log in `run_dir`, its images in
    `data_root` and its own containerd namespaces; returns (process, socket, log) once it
    answers. Used by the tests and by the benchmark (scripts/bench/health_check/environment.py)."""
    socket_path = run_dir / "docker.sock"
    log_path = run_dir / "dockerd.log"
    data_root.mkdir(parents=True, exist_ok=True)
    command = [
        shutil.which("dockerd") or "/usr/sbin/dockerd",
        "--host", f"unix://{socket_path}",
        "--data-root", str(data_root),
        "--exec-root", str(run_dir / "exec"),
        "--pidfile", str(run_dir / "docker.pid"),
        # Its own containerd namespaces: a system dockerd sharing a containerd is not disturbed.
        "--containerd-namespace", namespace,
        "--containerd-plugins-namespace", f"{namespace}-plugins",
        # No docker0 bridge and no iptables rules: the containers run with --network none.
        "--bridge", "none",
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ping(socket_path):
        if process.poll() is not None:
            raise DockerdError(f"dockerd exited with {process.returncode}:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            stop_dockerd(process)
            raise DockerdError(
                f"dockerd did not answer on {socket_path} within {START_TIMEOUT_S}s:\n"
                f"{_log_tail(log_path)}"
            )
        time.sleep(0.1)
    return process, socket_path, log_path


def stop_dockerd(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def build_image(socket_path: Path) -> None:
    """A static busybox root with an index page for httpd, imported without any registry."""
    if not BUSYBOX.is_file():
        raise HostToolError(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, kind: bytes, data: bytes = b"", mode: int = 0o755, link: str = ""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for directory in ("bin", "tmp", "www"):
            add(directory, tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        add("bin/busybox", tarfile.REGTYPE, BUSYBOX.read_bytes())
        for applet in BUSYBOX_APPLETS:
            add(f"bin/{applet}", tarfile.SYMTYPE, link="busybox", mode=0o777)
        add("www/index.html", tarfile.REGTYPE, b"ok\n", mode=0o644)
    docker(socket_path, "import", "-c", 'CMD ["/bin/sh"]', "-", IMAGE, input=buffer.getvalue())
    # The previous session's image, now untagged, would pile up in DATA_ROOT.
    docker(socket_path, "image", "prune", "-f", check=False)


def _remove_test_containers(socket_path: Path) -> None:
    ids = docker(socket_path, "ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
    if ids:
        docker(socket_path, "rm", "-f", *[i.decode() for i in ids], check=False)


def _settled(name: str, info: dict[str, Any]) -> bool:
    state = info["State"]
    health = (state.get("Health") or {}).get("Status")
    if name == "hc-healthy":
        return state["Status"] == "running" and health == "healthy"
    if name == "hc-unhealthy":
        log = (state.get("Health") or {}).get("Log") or []
        return health == "unhealthy" and any(UNHEALTHY_OUTPUT in e.get("Output", "") for e in log)
    if name == "hc-starting":
        return state["Status"] == "running" and health == "starting"
    if name == "hc-plain":
        return state["Status"] == "running"
    if name == "hc-restarting":
        return info.get("RestartCount", 0) >= 2
    if name == "hc-oom":
        return state["Status"] in ("exited", "dead")
    raise AssertionError(name)


@contextlib.contextmanager
def private_docker_engine(run_dir: Path) -> Iterator[DockerEngine]:
    """Starts dockerd with its socket and exec root in `run_dir` (keep the path short: unix
    socket paths are limited to 107 bytes) and the test containers; stops it all on exit."""
    ensure_packages()
    process, socket_path, log_path = start_dockerd(run_dir)
    engine = DockerEngine(socket_path=socket_path, log_path=log_path)
    try:
        # Left over by an earlier session that was killed before its teardown.
        _remove_test_containers(socket_path)
        build_image(socket_path)
        for name, args in CONTAINERS.items():
            docker(
                socket_path, "run", "-d", "--name", name, "--label", LABEL,
                "--network", "none", *args,
            )
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        pending = set(CONTAINERS)
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                if _settled(name, engine.inspect(name)):
                    pending.discard(name)
            time.sleep(0.25)
        for name in CONTAINERS:
            engine.states[name] = engine.inspect(name)["State"]
        oom = engine.states["hc-oom"]
        if not oom.get("OOMKilled"):
            engine.oom_unsupported = (
                "the memory cgroup here did not OOM-kill a container limited to 6m "
                f"(state: {oom.get('Status')}, exit code {oom.get('ExitCode')})"
            )
            pending.discard("hc-oom")
        if pending:
            raise DockerdError(
                f"containers did not settle within {SETTLE_TIMEOUT_S}s: "
                + ", ".join(
                    f"{name}: {json.dumps(engine.states[name])[:300]}" for name in sorted(pending)
                ),
            )
        yield engine
    finally:
        try:
            _remove_test_containers(socket_path)
        finally:
            stop_dockerd(process)
