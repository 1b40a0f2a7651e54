"""Faults of the host under the shipped health_check binary: a tool that hangs, and a process
limit smaller than the work asked for. The module must end what it started and never fail a
check for its own resource limits.

- A hung `nvidia-smi` (a stand-in on PATH that forks a `sleep` and waits; this machine has no
  GPU, and the static build reads GPUs through nvidia-smi) is killed with everything it forked
  when its check times out, once per attempt, and reaped before the module returns; a SIGTERM
  to the module (Ansible's task timeout) kills it too.
- 1,100 TCP checks under `prlimit --nofile=N:N` (soft = hard, so raising the soft limit cannot
  help) against listeners on 127.0.0.1: every check passes; none says "too many open files".
- 300 HTTP checks of 300 keep-alive servers under `--nofile=128:128`: a connection is closed
  when its check ends, not kept idle past its slot of the open-files budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

HUNG_NVIDIA_SMI = """#!/bin/sh
# Records itself and the child it forks, then waits for ever, as a driver hang does.
echo $$ >> {pids}
sleep 300 &
echo $! >> {pids}
wait
"""


def process_state(pid: int) -> str | None:
    """The state letter of a process (`S`, `R`, `Z` for a zombie...), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def wait_until_not_running(pids: list[int], timeout_s: float = 5) -> dict[int, str | None]:
    """The states of `pids` once none runs any more (a SIGKILLed process stays `R` until it
    is scheduled to die), or as they are at `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = {pid: process_state(pid) for pid in pids}
        if all(state in (None, "Z") for state in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


def run_binary(binary: Path, tmp_path: Path, args: dict, prefix: list[str] | None = None,
               env: dict[str, str] | None = None, timeout_s: float = 60) -> tuple[dict, float]:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    started = time.monotonic()
    proc = subprocess.run([*(prefix or []), str(binary), str(args_file)], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, timeout=timeout_s)
    elapsed = time.monotonic() - started
    assert proc.stdout.count("\n") <= 1, proc.stdout[:2000]
    return json.loads(proc.stdout), elapsed


def test_a_hung_nvidia_smi_is_killed_and_reaped_on_timeout(module_binary, tmp_path):
    pids_file = tmp_path / "pids"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(HUNG_NVIDIA_SMI.format(pids=pids_file))
    smi.chmod(0o755)

    # Required GPUs fail at each 1 s timeout and are retried: one nvidia-smi per attempt.
    try:
        result, elapsed = run_binary(
            module_binary, tmp_path,
            {"gpus": {"required": True, "timeout": "1s"}, "wait_timeout": "2500ms", "interval": "100ms"},
            env={"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"})
        # Looked at the moment the module is gone, before anyone else could have cleaned up.
        lines = pids_file.read_text().split()
        states = {int(pid): process_state(int(pid)) for pid in lines}
    finally:
        # Whatever the module left behind must not outlive the test.
        for pid in pids_file.read_text().split() if pids_file.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    (check,) = result["checks"]
    assert result["failed"] is True and check["status"] == "fail", check
    assert "timed out after 1s" in check["message"], check
    assert result["summary"]["attempts"] >= 2, result["summary"]
    assert elapsed < 10, f"the module took {elapsed:.1f}s"
    smi_pids = [int(pid) for pid in lines[0::2]]
    forked_pids = [int(pid) for pid in lines[1::2]]
    assert len(smi_pids) == result["summary"]["attempts"], (lines, result["summary"])
    # The module's own children: killed and reaped by the module itself, so not even a zombie.
    assert all(states[pid] is None for pid in smi_pids), states
    # What nvidia-smi forked was killed with it (its process group). It is not the module's
    # child: once orphaned, reaping it is init's job, so it may linger as a zombie of init (or
    # of whatever PID 1 a CI container has), never as a running process.
    forked_states = wait_until_not_running(forked_pids)
    assert all(state in (None, "Z") for state in forked_states.values()), forked_states


def test_a_signal_while_nvidia_smi_hangs_kills_it_with_the_module(module_binary, tmp_path):
    pids_file = tmp_path / "pids"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(HUNG_NVIDIA_SMI.format(pids=pids_file))
    smi.chmod(0o755)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"gpus": {"timeout": "60s"}, "deadline": "90s"}))
    module = subprocess.Popen([str(module_binary), str(args_file)], cwd=tmp_path,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                              env={"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"})
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(pids) < 2:
            time.sleep(0.05)
            pids = [int(pid) for pid in pids_file.read_text().split()] if pids_file.exists() else []
        assert len(pids) == 2, "the stand-in nvidia-smi did not start"
        module.send_signal(signal.SIGTERM)
        stdout, _ = module.communicate(timeout=15)
        result = json.loads(stdout)
        assert result["failed"] is True and "SIGTERM" in result["msg"], result
        # Killed at once; orphans now (the module is gone), they are init's to reap: dead or a
        # zombie, never running.
        states = wait_until_not_running(pids)
        assert all(state in (None, "Z") for state in states.values()), states
    finally:
        if module.poll() is None:
            module.kill()
            module.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def listeners(count: int, backlog: int) -> Iterator[list[int]]:
    """`count` listening sockets on 127.0.0.1 that never accept: the kernel completes up to
    `backlog` connections on each by itself, so this process needs one descriptor per port."""
    sockets = []
    try:
        for _ in range(count):
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.bind(("127.0.0.1", 0))
            server.listen(backlog)
            sockets.append(server)
        yield [server.getsockname()[1] for server in sockets]
    finally:
        for server in sockets:
            server.close()


@pytest.mark.parametrize("nofile", [1024, 128, 32])
def test_more_checks_than_file_descriptors_never_fail_for_the_modules_own_limit(
        module_binary, tmp_path, nofile):
    checks, per_port = 1100, 100
    with listeners(checks // per_port, backlog=1024) as ports:
        tcp = [{"address": f"127.0.0.1:{ports[i // per_port]}", "name": f"listener {i}"}
               for i in range(checks)]
        result, elapsed = run_binary(module_binary, tmp_path, {"tcp": tcp, "deadline": "60s"},
                                     prefix=["prlimit", f"--nofile={nofile}:{nofile}", "--"])
    found = result.get("checks", [])
    failed = [c for c in found if c["status"] != "pass"]
    assert failed == [], f"{len(failed)} of {checks} failed, e.g. {failed[:2]}"
    assert len(found) == checks and result["failed"] is False, result.get("msg")
    print(f"{checks} TCP checks with {nofile} file descriptors in {elapsed:.2f}s")


@contextlib.contextmanager
def keep_alive_http_servers(count: int) -> Iterator[list[int]]:
    """`count` HTTP/1.1 servers on 127.0.0.1 that answer 200 and keep each connection open for
    the next request (as most web servers do): a client that pools idle connections holds one
    descriptor per server after its request."""
    import asyncio
    import threading

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    loop = asyncio.new_event_loop()
    ports: list[int] = []
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        servers = [await asyncio.start_server(answer, "127.0.0.1", 0) for _ in range(count)]
        ports.extend(s.sockets[0].getsockname()[1] for s in servers)
        started.set()
        await stop.wait()
        for server in servers:
            server.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(30), "the HTTP servers did not start"
    try:
        yield ports
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def test_http_checks_of_many_servers_leave_no_idle_connection_to_exhaust_file_descriptors(
        module_binary, tmp_path):
    servers, nofile = 300, 128
    with keep_alive_http_servers(servers) as ports:
        http = [{"url": f"http://127.0.0.1:{port}/", "name": f"server {port}"} for port in ports]
        result, elapsed = run_binary(module_binary, tmp_path, {"http": http, "deadline": "60s"},
                                     prefix=["prlimit", f"--nofile={nofile}:{nofile}", "--"])
    found = result.get("checks", [])
    failed = [c for c in found if c["status"] != "pass"]
    assert failed == [], f"{len(failed)} of {servers} failed, e.g. {failed[:2]}"
    assert len(found) == servers and result["failed"] is False, result.get("msg")
    print(f"{servers} HTTP checks of keep-alive servers with {nofile} file descriptors in {elapsed:.2f}s")
