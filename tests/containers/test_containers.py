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

from testbed.dockerd import IMAGE, LABEL, UNHEALTHY_OUTPUT, DockerEngine, docker

# A duration as the module prints it: 3ms, 1.25s, 12s, 1m5s, 2h.
DURATION = r"[0-9.]+m?s|[0-9hm]+[hms]"
# The tail of every container message: its restarts and uptime.
COUNTS = rf"\(\d+ restarts?, (up ({DURATION})|not up)\)"


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
    assert re.fullmatch(
        rf"container 'hc-healthy': running, healthy, 0 restarts, up ({DURATION})",
        check["message"],
    ), check["message"]
    assert check["expected"] == (
        "state running, healthy or no healthcheck, not OOM-killed, not in a restart loop"
    )
    assert check["details"]["uptime_s"] > 0
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
        + re.escape(json.dumps(UNHEALTHY_OUTPUT))
        + " "
        + COUNTS,
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
    assert re.fullmatch(rf"container 'hc-starting': health: starting {COUNTS}", check["message"])


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
    assert re.fullmatch(
        rf"container 'hc-plain': running, no healthcheck, 0 restarts, up ({DURATION})",
        lenient["message"],
    ), lenient["message"]
    assert strict["name"] == "strict"
    assert strict["status"] == "fail"
    assert re.fullmatch(
        rf"container 'hc-plain': no healthcheck \(require_healthcheck is set\) {COUNTS}",
        strict["message"],
    ), strict["message"]
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
    """Whether it is read in its backoff or in its few running milliseconds, a container whose
    command fails at once is a restart loop."""
    result = run_checks(
        run_module,
        {"containers": ["hc-restarting"], "docker_host": docker_engine.docker_host},
    )
    check = only_check(result)
    assert check["status"] == "fail", check
    assert re.fullmatch(
        r"container 'hc-restarting': (state (restarting|exited \(exit code 1\)), expected "
        rf"running; )?in a restart loop: restarted \d+ times, (not up|up \d+ms \(less than "
        rf"flap_window 10s\)) {COUNTS}",
        check["message"],
    ), check["message"]
    assert "flapping" in check["details"], check


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
    assert check["message"] == (
        "container 'hc-oom': OOM-killed; exit code 137, expected 0 (0 restarts, not up)"
    )
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
    # hc-restarting is named whether it is listed in its backoff or in its few running
    # milliseconds; the exited hc-oom is not judged (a finished container is not unhealthy).
    assert re.fullmatch(
        r"3 of 5 containers not healthy: hc-restarting \((restarting; )?restart loop: "
        r"restarted \d+ times, (not up|up \d+ms \(less than flap_window 10s\))\), "
        r"hc-starting \(health: starting\), hc-unhealthy \(unhealthy, FailingStreak \d+\)",
        check["message"],
    ), check["message"]
    assert check["details"]["not_healthy"] == ["hc-restarting", "hc-starting", "hc-unhealthy"]
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


@pytest.fixture
def make_container(docker_engine: DockerEngine) -> Iterator:
    """Starts containers for one test (`docker run -d` with the test bed's label, no network)
    and removes them afterwards."""
    names: list[str] = []

    def make(name: str, *args: str) -> str:
        name = f"{name}-{os.getpid()}"
        docker(
            docker_engine.socket_path, "run", "-d", "--name", name, "--label", LABEL,
            "--network", "none", *args,
        )
        names.append(name)
        return name

    yield make
    if names:
        docker(docker_engine.socket_path, "rm", "-f", *names, check=False)


def wait_for(engine: DockerEngine, name: str, condition, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        info = engine.inspect(name)
        if condition(info):
            return info
        assert time.monotonic() < deadline, f"{name} never got there: {info['State']}"
        time.sleep(0.05)


def restarted_and_running(info: dict[str, Any]) -> bool:
    return info["RestartCount"] >= 1 and info["State"]["Status"] == "running"


def test_a_restart_loop_never_passes_even_when_a_retry_catches_it_running(
    run_module, docker_engine: DockerEngine, make_container
) -> None:
    """`--restart always` with a command that fails after 2 s: running most of the time, so a
    retry is sure to catch it running. Restarted and up for less than flap_window, or restarted
    during the observation, it is flapping, and fails by default."""
    name = make_container(
        "hc-flapping", "--restart", "always", IMAGE, "/bin/sh", "-c", "sleep 2; exit 1"
    )
    wait_for(docker_engine, name, restarted_and_running)
    result = run_checks(run_module, {"containers": [name], "docker_host": docker_engine.docker_host})
    check = only_check(result)
    assert check["status"] == "fail", check
    # Read while it runs (up for less than flap_window) or, on a loaded machine, just after
    # its 2 s were over (restarting, not up): a restart loop either way.
    assert re.fullmatch(
        rf"container '{name}': (state (restarting|exited \(exit code 1\)), expected running; )?"
        rf"in a restart loop: restarted \d+ times?, "
        rf"(up ({DURATION}) \(less than flap_window 10s\)|not up) {COUNTS}",
        check["message"],
    ), check["message"]
    assert check["details"]["restart_count"] >= 1
    assert check["details"]["uptime_s"] is None or 0 <= check["details"]["uptime_s"] < 10

    run = run_module(
        {
            "containers": [name],
            "wait_timeout": "5s",
            "interval": "500ms",
            "docker_host": docker_engine.docker_host,
        }
    )
    result = run.single_json_object()
    check = only_check(result)
    assert result["failed"] is True, result
    assert check["status"] == "fail", check
    assert result["summary"]["attempts"] >= 5, result["summary"]
    # It exits every 2 s, so it restarted while the module watched it.
    assert re.fullmatch(
        rf"container '{name}': (state restarting, expected running; )?in a restart loop: "
        rf"restarted \d+ times? in ({DURATION}), (up ({DURATION})|not up) {COUNTS}",
        check["message"],
    ), check["message"]
    assert check["details"]["restart_count"] > check["details"]["first_seen_restarts"]

    # The explicit opt-out judges only the state: a retry that finds it running passes.
    wait_for(docker_engine, name, restarted_and_running)
    result = run_checks(
        run_module,
        {
            "containers": [{"container": name, "flapping": "ignore"}],
            "wait_timeout": "20s",
            "interval": "200ms",
            "docker_host": docker_engine.docker_host,
        },
    )
    check = only_check(result)
    assert check["status"] == "pass", check
    assert re.fullmatch(
        rf"container '{name}': running, no healthcheck, \d+ restarts?, up ({DURATION})",
        check["message"],
    ), check["message"]


def test_a_container_that_restarted_once_and_stayed_up_passes(
    run_module, docker_engine: DockerEngine, make_container
) -> None:
    """Failed once at start, restarted by its policy, up since: not a restart loop once it has
    been up for flap_window (10 s by default)."""
    name = make_container(
        "hc-once", "--restart", "on-failure", IMAGE, "/bin/sh", "-c",
        "test -e /tmp/once || { echo > /tmp/once; exit 1; }; exec sleep 3600",
    )
    wait_for(docker_engine, name, restarted_and_running)
    time.sleep(10.5)
    result = run_checks(run_module, {"containers": [name], "docker_host": docker_engine.docker_host})
    check = only_check(result)
    assert check["status"] == "pass", check
    assert re.fullmatch(
        rf"container '{name}': running, no healthcheck, 1 restart, up 1\ds", check["message"]
    ), check["message"]
    assert docker_engine.inspect(name)["RestartCount"] == 1


def test_exited_judges_the_exit_code(
    run_module, docker_engine: DockerEngine, make_container
) -> None:
    name = make_container("hc-exit-3", IMAGE, "/bin/sh", "-c", "exit 3")
    wait_for(docker_engine, name, lambda info: info["State"]["Status"] == "exited")
    result = run_checks(
        run_module,
        {
            "containers": [
                {"container": name, "state": "exited"},
                {"container": name, "state": "exited", "exit_code": [0, 3], "name": "either"},
            ],
            "docker_host": docker_engine.docker_host,
        },
    )
    strict, lenient = result["checks"]
    assert strict["status"] == "fail", strict
    assert strict["message"] == f"container '{name}': exit code 3, expected 0 (0 restarts, not up)"
    assert strict["expected"] == "state exited, exit code 0, not OOM-killed, not in a restart loop"
    assert lenient["status"] == "pass", lenient
    assert lenient["message"] == (
        f"container '{name}': exited (exit code 3), no healthcheck, 0 restarts, not up"
    )

    refused = run_module(
        {"containers": [{"container": name, "exit_code": 3}], "docker_host": docker_engine.docker_host}
    ).single_json_object()
    assert refused["failed"] is True
    assert refused["msg"].startswith(
        "parameter 'containers[0].exit_code': needs state exited or dead, not running"
    ), refused["msg"]


def test_all_healthy_names_paused_and_oom_looping_containers(
    run_module, docker_engine: DockerEngine, make_container
) -> None:
    paused = make_container("hc-paused", IMAGE, "/bin/sleep", "3600")
    docker(docker_engine.socket_path, "pause", paused)
    oom_looping = None
    if not docker_engine.oom_unsupported:
        oom_looping = make_container(
            "hc-oom-loop", "--restart", "always", "--memory", "6m", "--memory-swap", "6m",
            IMAGE, "/bin/sh", "-c", 'x=0123456789; while true; do x="$x$x"; done',
        )
        wait_for(
            docker_engine, oom_looping,
            lambda info: info["RestartCount"] >= 1 and info["State"]["OOMKilled"],
        )
    result = run_checks(
        run_module,
        {"containers_all_healthy": True, "docker_host": docker_engine.docker_host},
    )
    check = only_check(result)
    assert check["status"] == "fail", check
    assert f"{paused} (paused)" in check["message"], check["message"]
    assert paused in check["details"]["not_healthy"]
    assert "; 1 paused" in check["observed"], check["observed"]
    if oom_looping:
        assert re.search(
            rf"{oom_looping} \([^)]*OOM-looping: OOM-killed and restarted", check["message"]
        ), check["message"]
        assert oom_looping in check["details"]["not_healthy"]
