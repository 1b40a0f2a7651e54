"""Fixtures for the end-to-end tests: the real module binary, the real Ansible tools from
.venv, and real servers on 127.0.0.1 for the checks to talk to.

Nothing is skipped: a missing binary or tool fails the test and says how to get it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
ANSIBLE_CONFIG = REPO_ROOT / "ansible.cfg"
INVENTORY = REPO_ROOT / "inventory" / "localhost.yml"
ROLE_LIBRARY = REPO_ROOT / "roles" / "ops" / "health_check" / "library"
MODULE_BINARY = ROLE_LIBRARY / "health_check"
TEST_PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"

# Generous bound for one ansible-playbook run; the checks themselves have short timeouts.
ANSIBLE_TIMEOUT_S = 180


# ---------------------------------------------------------------------------------------------
# The binary and the Ansible tools


@pytest.fixture(scope="session")
def module_binary() -> Path:
    if not (MODULE_BINARY.is_file() and os.access(MODULE_BINARY, os.X_OK)):
        pytest.fail(
            f"module binary {MODULE_BINARY.relative_to(REPO_ROOT)} is missing: "
            "run `make install` first (it builds the module and installs it there)",
            pytrace=False,
        )
    return MODULE_BINARY


def venv_tool(name: str) -> Path:
    tool = VENV_BIN / name
    if not tool.is_file():
        pytest.fail(f"{tool} is missing: run `make bootstrap` first", pytrace=False)
    return tool


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for Ansible commands: the repo's ansible.cfg, .venv first on PATH, no
    colours, and none of the caller's ANSIBLE_* settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE_CONFIG),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOME=str(tmp_path_factory.mktemp("ansible_home")),
        PY_COLORS="0",
    )
    return env


@dataclass
class PlaybookRun:
    returncode: int
    output: str  # stdout and stderr together, in order
    result: dict[str, Any]  # the role's registered health_check_result ({} if none)
    elapsed_s: float
    report: dict[str, Any]  # the merged deployment health summary ({} if not written)

    def describe(self) -> str:
        return f"rc={self.returncode}\n--- output ---\n{self.output}"


@pytest.fixture
def run_role(module_binary: Path, ansible_env: dict[str, str], tmp_path: Path):
    """Run the ops/health_check role against localhost with the given role vars (passed as
    JSON extra vars, so null and types survive) and return the registered result."""

    def run(role_vars: dict[str, Any], *extra_args: str) -> PlaybookRun:
        vars_file = tmp_path / "role_vars.json"
        result_file = tmp_path / "health_check_result.json"
        report_file = tmp_path / "ci-artifacts" / "health" / "deployment-health.json"
        result_file.unlink(missing_ok=True)
        report_file.unlink(missing_ok=True)
        vars_file.write_text(
            json.dumps(
                {
                    "health_check_report_path": str(report_file),
                    **role_vars,
                    "health_check_test_result_file": str(result_file),
                }
            )
        )
        command = [
            str(venv_tool("ansible-playbook")),
            "-i",
            str(INVENTORY),
            str(TEST_PLAYBOOKS / "run_role.yml"),
            "-e",
            f"@{vars_file}",
            *extra_args,
        ]
        started = time.monotonic()
        proc = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=ansible_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=ANSIBLE_TIMEOUT_S,
        )
        elapsed = time.monotonic() - started
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        return PlaybookRun(proc.returncode, proc.stdout, result, elapsed, report)

    return run


@dataclass
class ModuleRun:
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float

    def single_json_object(self) -> dict[str, Any]:
        """The one JSON object the module must print on stdout, and nothing else."""
        text = self.stdout.strip()
        assert text, f"nothing on stdout (rc={self.returncode}, stderr={self.stderr!r})"
        try:
            value, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as error:
            raise AssertionError(f"stdout is not JSON ({error}): {self.stdout!r}") from None
        assert text[end:].strip() == "", f"more than one JSON value on stdout: {self.stdout!r}"
        assert isinstance(value, dict), f"stdout is JSON but not an object: {self.stdout!r}"
        return value


@pytest.fixture
def run_module(module_binary: Path, tmp_path: Path):
    """Run the module binary directly, as Ansible does: `health_check ARGS_FILE`.

    `args` is written to a JSON args file; `argv` instead gives the arguments verbatim."""

    def run(args: dict[str, Any] | None = None, argv: list[str] | None = None) -> ModuleRun:
        if argv is None:
            args_file = tmp_path / "args.json"
            args_file.write_text(json.dumps(args if args is not None else {}))
            argv = [str(args_file)]
        started = time.monotonic()
        proc = subprocess.run(
            [str(module_binary), *argv],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return ModuleRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    return run


# ---------------------------------------------------------------------------------------------
# Servers on 127.0.0.1 for the checks


def _serve_in_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def tcp_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (and closes them); yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    with _accepting(server, hold=False):
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens: connecting is refused. The socket stays
    bound (without listening) so that nothing else can take the port during the test."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    yield holder.getsockname()[1]
    holder.close()


HEALTHY_BODY = "status: ok, all systems nominal\n"


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    """`/` and `/healthz` answer 200 with HEALTHY_BODY; `/error` answers 500; others 404."""

    routes = {
        "/": (200, HEALTHY_BODY),
        "/healthz": (200, HEALTHY_BODY),
        "/error": (500, "internal error: database unavailable\n"),
    }

    def _respond(self, with_body: bool) -> None:
        status, body = self.routes.get(self.path, (404, "not found\n"))
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if with_body:
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(with_body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1; yields its base URL without a trailing slash."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthHandler)
    server.daemon_threads = True
    thread = _serve_in_thread(server.serve_forever)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@contextlib.contextmanager
def _accepting(server: socket.socket, hold: bool) -> Iterator[None]:
    """Accepts connections on a listening socket until the block ends, then closes it. With
    `hold`, each connection stays open and is never answered (a hung server); without, it is
    closed at once (a port that is merely open)."""
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept_loop():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            if hold:
                held.append(conn)  # keep it open, read nothing, answer nothing
            else:
                conn.close()

    thread = _serve_in_thread(accept_loop)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never sends a byte; yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    with _accepting(server, hold=True):
        yield server.getsockname()[1]


@pytest.fixture
def silent_unix_socket() -> Iterator[Path]:
    """A unix socket (a D-Bus or Docker socket that hangs) that accepts connections and never
    sends a byte; yields its path, kept short for AF_UNIX's 108-byte limit."""
    workdir = Path(tempfile.mkdtemp(prefix="hc-silent-", dir="/tmp"))
    path = workdir / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    try:
        with _accepting(server, hold=True):
            yield path
    finally:
        path.unlink(missing_ok=True)
        workdir.rmdir()
