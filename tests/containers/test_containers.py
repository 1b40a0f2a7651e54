"""The container checks against a real Docker engine (dockerd 20.10, API 1.41; see conftest.py),
run through the real module binary exactly as Ansible runs it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from testbed.dockerd import UNHEALTHY_OUTPUT, DockerEngine


def run_checks(run_module, args: dict[str, Any]) -> dict[str, Any]:
    result = run_module(args).single_json_object()
    assert "checks" in result, result
    return result


def only_check(result: dict[str, Any]) -> dict[str, Any]:
    assert len(result["checks"]) == 1, result["checks"]
    return result["checks"][0]


def test_healthy_container_passes(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module, {"containers": ["hc-healthy"], "docker_host": docker_engine.docker_host}
    )
    check = only_check(result)
    assert result["failed"] is False, result
    assert (check["kind"], check["name"], check["status"]) == ("container", "hc-healthy", "pass")
    assert check["message"] == "container 'hc-healthy': running, healthy, 0 restarts"
    assert check["expected"] == "state running, healthy or no healthcheck, not OOM-killed"
    assert check["details"]["health"] == "healthy"
    assert docker_engine.inspect("hc-healthy")["Id"].startswith(check["details"]["id"])


def test_plain_socket_path_and_docker_host_env(
    module_binary: Path, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    """docker_host also takes a plain path; without it, DOCKER_HOST (a unix:// URL) is used."""
    for args, env_host in (
        ({"docker_host": str(docker_engine.socket_path)}, None),
        ({}, docker_engine.docker_host),
    ):
        args_file = tmp_path / "args.json"
        args_file.write_text(json.dumps({"containers": ["hc-healthy"], **args}))
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        if env_host:
            env["DOCKER_HOST"] = env_host
        proc = subprocess.run(
            [str(module_binary), str(args_file)], env=env, capture_output=True, text=True,
            timeout=60,
        )
        result = json.loads(proc.stdout)
        assert result["failed"] is False, (args, env_host, result)


@pytest.fixture
def recording_proxy(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A unix socket in front of the engine that passes everything through and records the
    request line of each connection (the module makes one request per connection)."""
    path = tmp_path / "proxy.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    requests: list[str] = []

    def pipe(source: socket.socket, sink: socket.socket, record: bool) -> None:
        first = record
        try:
            while data := source.recv(65536):
                if first:
                    requests.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                    first = False
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(docker_engine.socket_path))
            for args in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=pipe, args=args, daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield path, requests
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_api_version_is_negotiated_once_per_run(run_module, recording_proxy) -> None:
    """The module asks the engine for its version once per run (dockerd 20.10: API 1.41, older
    than bollard's default) and every container check shares that connection."""
    proxy, requests = recording_proxy
    result = run_checks(
        run_module,
        {
            "containers": ["hc-healthy", "hc-plain"],
            "containers_all_healthy": {"mandatory": False},
            "docker_host": f"unix://{proxy}",
        },
    )
    healthy, plain, everyone = result["checks"]
    assert (healthy["status"], plain["status"]) == ("pass", "pass"), result
    for check in (healthy, plain, everyone):
        assert check["details"]["engine_api_version"] == "1.41", check
    version_requests = [r for r in requests if re.fullmatch(r"GET (/v[\d.]+)?/version HTTP/1.1", r)]
    assert len(version_requests) == 1, requests
    assert requests[0] == version_requests[0], requests
    assert any(r.endswith("/containers/hc-healthy/json HTTP/1.1") for r in requests), requests


def test_unhealthy_container_names_streak_and_last_output(
    run_module, docker_engine: DockerEngine
) -> None:
    result = run_checks(
        run_module, {"containers": ["hc-unhealthy"], "docker_host": docker_engine.docker_host}
    )
    check = only_check(result)
    assert result["failed"] is True
    assert check["status"] == "fail"
    assert re.fullmatch(
        r"container 'hc-unhealthy': unhealthy, FailingStreak \d+, last check exit code 1: "
        + re.escape(json.dumps(UNHEALTHY_OUTPUT)),
        check["message"],
    ), check["message"]
    assert check["details"]["failing_streak"] >= 1
    assert check["details"]["last_health_output"] == UNHEALTHY_OUTPUT
    # The task's message carries the check's, so the operator sees why without -v.
    assert "FailingStreak" in result["msg"]


def test_health_any_accepts_unhealthy(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module,
        {
            "containers": [{"container": "hc-unhealthy", "health": "any"}],
            "docker_host": docker_engine.docker_host,
        },
    )
    assert only_check(result)["status"] == "pass", result


def test_starting_health_fails(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module, {"containers": ["hc-starting"], "docker_host": docker_engine.docker_host}
    )
    check = only_check(result)
    assert check["status"] == "fail"
    assert check["message"] == "container 'hc-starting': health: starting"


def test_no_healthcheck_passes_unless_required(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module,
        {
            "containers": [
                "hc-plain",
                {"container": "/hc-plain", "require_healthcheck": True, "name": "strict"},
            ],
            "docker_host": docker_engine.docker_host,
        },
    )
    lenient, strict = result["checks"]
    assert lenient["status"] == "pass", lenient
    assert lenient["message"] == "container 'hc-plain': running, no healthcheck, 0 restarts"
    assert strict["name"] == "strict"
    assert strict["status"] == "fail"
    assert strict["message"] == "container 'hc-plain': no healthcheck (require_healthcheck is set)"
    assert result["failed"] is True


def test_restarting_container_fails_on_max_restarts(
    run_module, docker_engine: DockerEngine
) -> None:
    result = run_checks(
        run_module,
        {
            "containers": [{"container": "hc-restarting", "max_restarts": 1}],
            "docker_host": docker_engine.docker_host,
        },
    )
    check = only_check(result)
    assert check["status"] == "fail"
    assert re.search(r"restarted (\d+) times, max 1", check["message"]), check["message"]
    assert check["details"]["restart_count"] >= 2


def test_restarting_container_is_not_running(run_module, docker_engine: DockerEngine) -> None:
    # It runs for a few milliseconds between restarts that are seconds apart: a run that lands
    # in that window is retried.
    for _ in range(5):
        result = run_checks(
            run_module,
            {"containers": ["hc-restarting"], "docker_host": docker_engine.docker_host},
        )
        check = only_check(result)
        if check["status"] == "fail":
            break
        time.sleep(0.3)
    assert check["status"] == "fail", check
    assert re.fullmatch(
        r"container 'hc-restarting': state (restarting|exited \(exit code 1\)), expected running",
        check["message"],
    ), check["message"]


def test_oom_killed_container_fails(run_module, docker_engine: DockerEngine) -> None:
    if docker_engine.oom_unsupported:
        pytest.skip(docker_engine.oom_unsupported)
    result = run_checks(
        run_module,
        {
            "containers": [{"container": "hc-oom", "state": "exited"}],
            "docker_host": docker_engine.docker_host,
        },
    )
    check = only_check(result)
    assert check["status"] == "fail"
    assert check["message"] == "container 'hc-oom': OOM-killed"
    assert check["details"]["oom_killed"] is True
    assert check["details"]["exit_code"] == 137


def test_missing_container(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module, {"containers": ["hc-missing"], "docker_host": docker_engine.docker_host}
    )
    check = only_check(result)
    assert (check["status"], check["observed"]) == ("fail", "not found")
    assert check["message"] == "container 'hc-missing' not found"


def test_all_healthy_lists_the_offenders(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module,
        {"containers_all_healthy": "yes", "docker_host": docker_engine.docker_host},
    )
    check = only_check(result)
    assert (check["kind"], check["name"], check["status"]) == ("containers", "all-healthy", "fail")
    # hc-restarting counts as running only if listed during its few running milliseconds.
    assert re.fullmatch(
        r"2 of [45] running containers not healthy: hc-starting \(health: starting\), "
        r"hc-unhealthy \(unhealthy, FailingStreak \d+\)",
        check["message"],
    ), check["message"]
    assert check["details"]["not_healthy"] == ["hc-starting", "hc-unhealthy"]
    assert check["details"]["healthy"] == 1
    assert result["failed"] is True


def test_all_healthy_as_an_advisory_mapping(run_module, docker_engine: DockerEngine) -> None:
    result = run_checks(
        run_module,
        {
            "containers_all_healthy": {"mandatory": False, "name": "fleet", "timeout": "3s"},
            "docker_host": docker_engine.docker_host,
        },
    )
    check = only_check(result)
    assert (check["name"], check["status"], check["mandatory"]) == ("fleet", "fail", False)
    assert result["failed"] is False
    assert result["warnings"], result


def test_bad_container_name_is_a_parameter_error(run_module, docker_engine: DockerEngine) -> None:
    result = run_module(
        {
            "containers": [{"container": "web app!"}],
            "docker_host": docker_engine.docker_host,
        }
    ).single_json_object()
    assert result["failed"] is True
    assert "parameter 'containers[0].container'" in result["msg"], result["msg"]
    assert "invalid container name" in result["msg"]


def test_missing_socket_is_named(run_module, tmp_path: Path) -> None:
    socket_path = tmp_path / "no-engine" / "docker.sock"
    result = run_checks(
        run_module,
        {"containers": ["hc-healthy"], "containers_all_healthy": True, "docker_host": str(socket_path)},
    )
    assert result["failed"] is True
    for check in result["checks"]:
        assert check["status"] == "fail"
        assert check["message"].startswith(
            f"cannot reach the container engine at unix://{socket_path}: no such socket"
        ), check["message"]


def test_silent_engine_times_out(run_module, silent_unix_socket: Path) -> None:
    timeout_s = 1.0
    run = run_module(
        {
            "containers": ["hc-healthy", "hc-plain"],
            "containers_all_healthy": True,
            "docker_host": f"unix://{silent_unix_socket}",
            "timeout": f"{timeout_s}s",
        }
    )
    result = run.single_json_object()
    assert run.elapsed_s < timeout_s + 0.5, run.elapsed_s
    assert result["failed"] is True
    assert len(result["checks"]) == 3
    for check in result["checks"]:
        assert check["status"] == "fail"
        assert check["message"] == "timed out after 1s", check
