"""Faults a host or a careless caller can throw at the shipped module binaries (health_check,
secrets_gate, idempotence_probe in roles/ops/health_check/library/, built by `make install`):
malformed arguments files, a full filesystem under an artifact path, unreadable files and symlink
loops in a scanned tree, deeply nested YAML, SIGTERM mid-run. Whatever happens, the module prints
exactly one JSON object that names the problem and leaves no half-written file behind.
docs/reliability.md maps each fault to the test that proves it; the tests marked xfail are known
defects listed there with their reproduction."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROLE_LIBRARY

MODULES = ("health_check", "secrets_gate", "idempotence_probe")
# A credential-looking value under a credential key: one finding per file for secrets_gate.
PLANTED = 'db_password: "Xk9fjqWpL2zQ8rTaVb"\n'


def binary(module: str) -> Path:
    path = ROLE_LIBRARY / module
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: run `make install` first", pytrace=False)
    return path


def one_json_object(stdout: str) -> dict[str, Any]:
    """The whole of stdout is one JSON object (json.loads refuses trailing data)."""
    result = json.loads(stdout)
    assert isinstance(result, dict), stdout
    return result


def run_module(module: str, args_path: Path, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary(module)), str(args_path)], stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=timeout, **kwargs,
    )


def write_args(path: Path, args: dict[str, Any]) -> Path:
    path.write_text(json.dumps(args))
    path.chmod(0o644)
    return path


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (mounts a tmpfs, drops to an ordinary user)", pytrace=False)


# ---------------------------------------------------------------------------------------------
# Malformed arguments files: the contract's reader, shared by the three modules


MALFORMED = {
    "JSON that is not an object": (b'["paths", 1]', "must be a JSON object, got an array"),
    "bytes that are not UTF-8": (b'\xff\xfe{"paths": ["x"]}', "is not valid JSON"),
    "a string value that is not UTF-8": (b'{"name": "\xff\xfe"}', "is not valid JSON"),
    "a truncated object": (b'{"paths": ', "EOF while parsing"),
    "nesting 100000 levels deep": (b"[" * 100_000 + b"]" * 100_000, "recursion limit exceeded"),
    "an unknown parameter": (b'{"no_such_option": 1}', "unsupported parameter 'no_such_option'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("module", MODULES)
def test_a_malformed_arguments_file_gives_one_failed_object_that_names_the_problem(module, case, tmp_path):
    content, expected = MALFORMED[case]
    args = tmp_path / "args.json"
    args.write_bytes(content)

    proc = run_module(module, args)

    result = one_json_object(proc.stdout)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert result["failed"] is True, result
    assert expected in result["msg"], result
    assert "panicked" not in proc.stderr and "internal error" not in result["msg"], proc.stderr


@pytest.mark.parametrize("module", MODULES)
def test_a_huge_arguments_file_is_refused_by_its_size_before_it_is_read(module, tmp_path):
    args = tmp_path / "args.json"
    with args.open("wb") as sparse:  # 17 MiB of holes: the size alone must refuse it
        sparse.truncate(17 << 20)

    proc = run_module(module, args)

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and proc.returncode == 1, result
    assert f"'{args}' is {17 << 20} bytes, more than the 16777216 bytes a module reads" in result["msg"], result


@pytest.mark.parametrize("module", MODULES)
def test_a_directory_as_arguments_file_is_named_in_the_error(module, tmp_path):
    proc = run_module(module, tmp_path)

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and proc.returncode == 1, result
    assert f"cannot read arguments file '{tmp_path}'" in result["msg"], result


@pytest.mark.parametrize("module", MODULES)
def test_an_arguments_file_that_is_a_fifo_is_refused_rather_than_waited_on(module, tmp_path):
    fifo = tmp_path / "args.json"
    os.mkfifo(fifo)

    proc = run_module(module, fifo, timeout=3)

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and str(fifo) in result["msg"], result


# ---------------------------------------------------------------------------------------------
# A full filesystem under the artifact path


@pytest.fixture
def full_tmpfs() -> Iterator[Path]:
    """A 64 KiB tmpfs filled up but for 8 KiB: room for the test's old artifact and for the first
    4 KiB of a new one, so that an artifact bigger than that fails part-way through its write.
    Unmounted afterwards."""
    need_root()
    mountpoint = Path(tempfile.mkdtemp(prefix="reliability-full-", dir="/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mountpoint)], check=True)
    try:
        filler = mountpoint / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: the filesystem is full
            pass
        finally:
            os.close(fd)
        # One page for the test's old artifact, one page for the new one to start in.
        os.truncate(filler, max(0, filler.stat().st_size - 8192))
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)
        mountpoint.rmdir()


def full_disk_case(module: str, mountpoint: Path, work: Path) -> tuple[dict[str, Any], Path]:
    """Args whose artifact (bigger than 4 KiB) goes onto the full tmpfs, and that artifact."""
    if module == "health_check":
        old = mountpoint / "summary.json"
        checks = [{"name": f"closed-{i}", "address": "127.0.0.1:1", "timeout": "1s"} for i in range(30)]
        return {"tcp": checks, "summary_path": str(old)}, old
    tree = work / "tree"
    tree.mkdir()
    for i in range(60):
        (tree / f"vars_{i}.yml").write_text(PLANTED)
    if module == "secrets_gate":
        old = mountpoint / "report.json"
        return {"paths": [str(tree)], "mode": "audit", "output": str(old)}, old
    old = mountpoint / "full.snapshot.jsonl"
    return {"state": "snapshot", "name": "full", "paths": [str(tree)], "snapshot_dir": str(mountpoint)}, old


@pytest.mark.parametrize("module", MODULES)
def test_a_full_filesystem_keeps_the_old_artifact_and_the_error_names_the_path(module, full_tmpfs, tmp_path):
    args, artifact = full_disk_case(module, full_tmpfs, tmp_path)
    artifact.write_text("old artifact\n")
    before = sorted(p.name for p in full_tmpfs.iterdir())

    proc = run_module(module, write_args(tmp_path / "args.json", args))

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and proc.returncode == 1, result
    assert str(artifact) in result["msg"] and "No space left on device" in result["msg"], result
    assert artifact.read_text() == "old artifact\n"
    assert sorted(p.name for p in full_tmpfs.iterdir()) == before, "a temp file was left behind"


# ---------------------------------------------------------------------------------------------
# secrets_gate: unreadable files, symlink loops, deep YAML, a baseline that never answers


@pytest.fixture
def public_tree() -> Iterator[Path]:
    """A tree under /tmp that nobody may walk (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="reliability-tree-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        for path in sorted(root.rglob("*"), reverse=True):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(root)


def unreadable_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir(mode=0o755)
    (repo / "vars.yml").write_text(PLANTED)
    (repo / "locked.yml").write_text("a: 1\n")
    (repo / "locked.yml").chmod(0)
    (repo / "lockeddir").mkdir()
    (repo / "lockeddir" / "inner.yml").write_text("b: 1\n")
    (repo / "lockeddir").chmod(0)
    return repo


def run_as_nobody(module: str, args_path: Path) -> subprocess.CompletedProcess:
    need_root()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is missing", pytrace=False)
    return subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", str(binary(module)), str(args_path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def test_secrets_gate_fails_closed_on_unreadable_files_and_directories_in_enforce_mode(public_tree):
    repo = unreadable_repo(public_tree)
    args = write_args(public_tree / "args.json", {"paths": [str(repo)], "mode": "enforce"})

    proc = run_as_nobody("secrets_gate", args)

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and proc.returncode == 1, result
    unreadable = sorted(f["file"] for f in result["findings"] if f["rule"] == "unreadable-file")
    assert len(unreadable) == 2, result["findings"]
    assert unreadable[0].startswith(str(repo / "locked.yml")), unreadable
    assert unreadable[1].startswith(str(repo / "lockeddir")), unreadable
    assert all("failing closed" in f["message"] for f in result["findings"] if f["rule"] == "unreadable-file")


def test_secrets_gate_reports_unreadable_files_as_skipped_in_audit_mode(public_tree):
    repo = unreadable_repo(public_tree)
    args = write_args(public_tree / "args.json", {"paths": [str(repo)], "mode": "audit"})

    proc = run_as_nobody("secrets_gate", args)

    result = one_json_object(proc.stdout)
    assert result["failed"] is False and proc.returncode == 0, result
    assert [(s["file"], s["reason"].split(":")[0]) for s in result["skipped"]] == [
        (str(repo / "locked.yml"), "unreadable")], result
    assert any(str(repo / "lockeddir") in w and "Permission denied" in w for w in result["warnings"]), result


def test_secrets_gate_counts_agree_with_its_findings_and_files_are_paths(public_tree):
    repo = unreadable_repo(public_tree)
    args = write_args(public_tree / "args.json", {"paths": [str(repo)], "mode": "enforce"})

    result = one_json_object(run_as_nobody("secrets_gate", args).stdout)

    assert sum(result["counts"].values()) == len(result["findings"]) == 3, result
    assert all(Path(f["file"]).exists() for f in result["findings"]), result["findings"]
    walked = [f for f in result["findings"] if f["file"] == str(repo / "lockeddir")]
    assert len(walked) == 1 and "Permission denied" in walked[0]["message"], result["findings"]


def test_secrets_gate_walks_a_tree_with_symlink_loops_once_and_in_time(tmp_path):
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "vars.yml").write_text(PLANTED)
    os.symlink("loop-b", repo / "loop-a")
    os.symlink("loop-a", repo / "loop-b")
    os.symlink(".", repo / "self")
    os.symlink("..", repo / "sub" / "up")
    os.symlink(repo / "vars.yml", repo / "sub" / "link.yml")

    started = time.monotonic()
    proc = run_module("secrets_gate", write_args(tmp_path / "args.json", {"paths": [str(repo)], "mode": "enforce"}))

    result = one_json_object(proc.stdout)
    assert time.monotonic() - started < 30
    assert result["failed"] is True, result  # the planted value, found once, not once per link
    assert [(f["file"], f["line"]) for f in result["findings"]] == [(str(repo / "vars.yml"), 1)], result
    assert "Xk9fjqWpL2zQ8rTaVb" not in proc.stdout + proc.stderr


def limit_memory_to_one_gib() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_secrets_gate_line_scans_deeply_nested_yaml_and_does_not_expand_alias_bombs(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    depth = 1400  # block indentation: ~1 MB, under the default max_file_size
    (repo / "block.yml").write_text(
        "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + 'password: "Zk8mP2qR7tY4wX9cQ"\n')
    (repo / "seq.yml").write_text("".join(" " * i + "-\n" for i in range(depth)) + " " * depth + "- x\n")
    (repo / "flow.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    bomb = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    (repo / "laughs.yml").write_text("\n".join(bomb) + '\napi_password: "Zk8mP2qR7tY4wX9cQ"\n')

    proc = run_module("secrets_gate", write_args(tmp_path / "args.json", {"paths": [str(repo)], "mode": "audit"}),
                      preexec_fn=limit_memory_to_one_gib)

    result = one_json_object(proc.stdout)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    found = sorted((Path(f["file"]).name, f["line"]) for f in result["findings"])
    assert found == [("block.yml", depth + 1), ("laughs.yml", 13)], result["findings"]
    fallback = {Path(f["file"]).name: f["error"] for f in result["fallback"]}
    assert set(fallback) == {"block.yml", "seq.yml", "flow.json"}, result["fallback"]
    assert "nesting deeper than" in fallback["block.yml"], fallback


@pytest.mark.parametrize("parameter", ["baseline", "sops_config"])
def test_secrets_gate_refuses_a_file_parameter_that_never_answers(tmp_path, parameter):
    (tmp_path / "repo").mkdir()
    fifo = tmp_path / "param.json"
    os.mkfifo(fifo)
    args = write_args(tmp_path / "args.json", {"paths": [str(tmp_path / "repo")], parameter: str(fifo)})

    proc = run_module("secrets_gate", args, timeout=3)

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and f"parameter '{parameter}'" in result["msg"], result
    assert "it is a FIFO, not a regular file" in result["msg"], result


def test_secrets_gate_refuses_a_path_that_is_a_fifo_rather_than_passing_it(tmp_path):
    fifo = tmp_path / "vars.yml"
    os.mkfifo(fifo)

    proc = run_module("secrets_gate", write_args(tmp_path / "args.json", {"paths": [str(fifo)]}), timeout=3)

    result = one_json_object(proc.stdout)
    assert result["failed"] is True and "parameter 'paths'" in result["msg"], result
    assert "it is a FIFO, not a regular file" in result["msg"], result


def test_secrets_gate_command_line_refuses_a_fifo_baseline(tmp_path):
    (tmp_path / "repo").mkdir()
    fifo = tmp_path / "baseline.json"
    os.mkfifo(fifo)

    proc = subprocess.run([str(binary("secrets_gate")), "scan", str(tmp_path / "repo"), "--baseline", str(fifo)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=3)

    assert proc.returncode == 2, proc
    assert "option '--baseline'" in proc.stderr and "not a regular file" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------
# SIGTERM mid-run


def sigterm_mid_run(module: str, args_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Starts the module, waits until it is blocked in its work, sends SIGTERM, returns the
    finished process and how long it took to exit after the signal."""
    proc = subprocess.Popen([str(binary(module)), str(args_path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert proc.poll() is None, "the module finished before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        stdout, stderr = proc.communicate(timeout=20)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def silent_tcp_server() -> Iterator[int]:
    """Accepts connections (through the backlog) and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    with server:
        yield server.getsockname()[1]


@pytest.fixture
def silent_bus(tmp_path) -> Iterator[Path]:
    path = tmp_path / "bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    with server:
        yield path


def test_sigterm_while_health_check_waits_gives_one_failed_object_and_no_artifact(silent_tcp_server, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = write_args(tmp_path / "args.json", {
        "http": [{"url": f"http://127.0.0.1:{silent_tcp_server}/", "timeout": "30s"}],
        "deadline": "40s", "summary_path": str(out / "summary.json"), "junit_path": str(out / "junit.xml")})

    proc, exit_s = sigterm_mid_run("health_check", args)

    result = one_json_object(proc.stdout)
    assert proc.returncode == 1 and result["failed"] is True, result
    assert result["msg"].startswith("interrupted by SIGTERM"), result
    assert exit_s < 10  # well inside the 30 s the module would otherwise wait
    assert list(out.iterdir()) == [], "a half-written or temp artifact was left behind"


def test_sigterm_while_idempotence_probe_waits_gives_one_failed_object_and_no_snapshot(silent_bus, tmp_path):
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_text("x\n")
    args = write_args(tmp_path / "args.json", {
        "state": "snapshot", "name": "sig", "snapshot_dir": str(snapshots), "paths": [str(tmp_path / "tree")],
        "systemd_units": ["ssh.service"], "systemd_bus": f"unix:path={silent_bus}", "timeout": "30s"})

    proc, exit_s = sigterm_mid_run("idempotence_probe", args)

    result = one_json_object(proc.stdout)
    assert proc.returncode == 1 and result["failed"] is True, result
    assert result["msg"].startswith("interrupted by SIGTERM"), result
    assert exit_s < 10  # well inside the 30 s the module would otherwise wait
    assert list(snapshots.iterdir()) == [], "a half-written or temp snapshot was left behind"


SIGTERM_FROM_INSIDE = """
import json, signal, subprocess, sys, time
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
running = proc.poll() is None
proc.send_signal(signal.SIGTERM)
signalled = time.monotonic()
stdout, _ = proc.communicate(timeout=20)
print(json.dumps({"running": running, "returncode": proc.returncode, "stdout": stdout,
                  "exit_s": time.monotonic() - signalled}))
"""


def test_sigterm_while_secrets_gate_works_gives_one_failed_object(tmp_path):
    need_root()
    if not Path("/dev/fuse").exists():
        pytest.fail("needs /dev/fuse (the FUSE kernel module)", pytrace=False)
    # The gate waits (up to its 30 s timeout) for a mount that never answers: blocked, deterministically.
    tree = Path(tempfile.mkdtemp(prefix="sg-sigterm-", dir="/tmp"))
    try:
        (tree / "mnt").mkdir()
        (tree / "vars.yml").write_text(PLANTED)
        out = tmp_path / "out"
        out.mkdir()
        args = write_args(tmp_path / "args.json", {
            "paths": [str(tree)], "timeout": "30s", "output": str(out / "report.json")})
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "testbed.hung_fuse",
             str(tree / "mnt"), "25", "--", sys.executable, "-c", SIGTERM_FROM_INSIDE,
             str(binary("secrets_gate")), str(args)],
            cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        run = json.loads(json.loads(proc.stdout)["stdout"])

        assert run["running"], "the module finished before it could be interrupted"
        result = one_json_object(run["stdout"])
        assert result["failed"] is True and "SIGTERM" in result["msg"] and run["returncode"] == 1, result
        assert run["exit_s"] < 10, run
        assert list(out.iterdir()) == []
    finally:
        shutil.rmtree(tree)


# ---------------------------------------------------------------------------------------------
# health_check: a disk path that is a symlink loop


def test_a_disk_path_that_is_a_symlink_loop_fails_its_check_with_eloop_and_names_the_path(tmp_path):
    os.symlink("loop-b", tmp_path / "loop-a")
    os.symlink("loop-a", tmp_path / "loop-b")
    loop = tmp_path / "loop-a"
    args = write_args(tmp_path / "args.json", {"disks": [{"path": str(loop)}], "deadline": "20s"})

    proc = run_module("health_check", args)

    result = one_json_object(proc.stdout)
    assert proc.returncode == 1 and result["failed"] is True, result
    [check] = result["checks"]
    assert check["status"] == "fail" and check["observed"] == "unreadable", check
    assert str(loop) in check["message"] and "ELOOP" in check["message"], check


# ---------------------------------------------------------------------------------------------
# idempotence_probe: a watched file far bigger than the memory the probe may use


def test_idempotence_probe_hashes_a_file_bigger_than_its_memory_limit_by_streaming(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    with (tree / "disk.img").open("wb") as sparse:
        sparse.truncate(300 << 20)
    args = write_args(tmp_path / "args.json", {
        "state": "snapshot", "name": "big", "paths": [str(tree)], "snapshot_dir": str(tmp_path / "snapshots")})

    proc = run_module("idempotence_probe", args, timeout=180,
                      preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (128 << 20, 128 << 20)))

    result = one_json_object(proc.stdout)
    assert proc.returncode == 0 and result["failed"] is False, (result, proc.stderr[-2000:])
    assert result["snapshot"]["bytes_hashed"] >= 300 << 20 and result["snapshot"]["errors"] == 0, result
    records = [json.loads(line) for line in (tmp_path / "snapshots" / "big.snapshot.jsonl").read_text().splitlines()]
    [image] = [r for r in records if r.get("path") == str(tree / "disk.img")]
    # sha256 of 300 MiB of zero bytes
    assert image["sha256"] == subprocess.run(
        ["sha256sum"], input=b"\0" * (300 << 20), capture_output=True, check=True).stdout.split()[0].decode()


# ---------------------------------------------------------------------------------------------
# The role's controller-side deployment report on a full filesystem


def play_with_the_report_on(report: Path, tmp_path: Path, ansible_env: dict[str, str],
                            port: int) -> subprocess.CompletedProcess:
    """Four healthy local hosts with ten checks each (a report bigger than 4 KiB), the
    deployment report at `report`."""
    from conftest import ANSIBLE_TIMEOUT_S, REPO_ROOT, venv_tool

    no_host_checks = {"health_check_disks": None, "health_check_memory": None, "health_check_load": None}
    hosts = {f"web{i}": {"ansible_connection": "local", **no_host_checks,
                         "health_check_tcp": [{"address": f"127.0.0.1:{port}", "name": f"app-{j}"}
                                              for j in range(10)]}
             for i in range(4)}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text("- name: Verify the fleet\n  hosts: fleet\n  gather_facts: false\n"
                        "  roles:\n    - role: ops/health_check\n")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"health_check_report_path": str(report)}))
    return subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory), str(playbook), "-e", f"@{extra}"],
        cwd=REPO_ROOT, env=ansible_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=ANSIBLE_TIMEOUT_S,
    )


def test_the_deployment_report_on_a_full_filesystem_fails_the_play_and_keeps_the_old_report(
        full_tmpfs, tmp_path, ansible_env, module_binary, tcp_listener):
    report = full_tmpfs / "report.json"
    report.write_text("old report\n")
    before = sorted(p.name for p in full_tmpfs.iterdir())

    proc = play_with_the_report_on(report, tmp_path, ansible_env, tcp_listener)

    assert proc.returncode != 0, proc.stdout
    assert "No space left on device" in proc.stdout, proc.stdout[-4000:]
    # Never half-written: the old file, or a whole report of this run's end (the hosts are
    # healthy; what did not fit is said in it).
    text = report.read_text()
    assert text == "old report\n" or json.loads(text)["details_left_out"], text
    assert sorted(p.name for p in full_tmpfs.iterdir()) == before, "a temp file was left behind"


def test_the_deployment_report_error_on_a_full_filesystem_names_the_report_path(
        full_tmpfs, tmp_path, ansible_env, module_binary, tcp_listener):
    report = full_tmpfs / "report.json"

    proc = play_with_the_report_on(report, tmp_path, ansible_env, tcp_listener)

    # Ansible folds long messages over lines: read the output as one line of words.
    words = " ".join(proc.stdout.replace("''", "'").split())
    failures = words.split("No space left on device")[:-1]
    assert failures and all(str(report) in before[-200:] for before in failures), proc.stdout[-4000:]
    # What is left describes this run's end, not its start (which called every host unreachable).
    doc = json.loads(report.read_text())
    assert doc["hosts_unreachable"] == 0 and doc["hosts_pass"] == 4 and doc["details_left_out"], doc


# ---------------------------------------------------------------------------------------------
# secrets_gate: a hung mount inside the scanned tree


def test_secrets_gate_does_not_hang_on_a_mount_that_never_answers(tmp_path):
    need_root()
    if not Path("/dev/fuse").exists():
        pytest.fail("needs /dev/fuse (the FUSE kernel module)", pytrace=False)
    tree = Path(tempfile.mkdtemp(prefix="sg-hung-", dir="/tmp"))
    try:
        (tree / "mnt").mkdir()
        (tree / "vars.yml").write_text(PLANTED)
        args = write_args(tmp_path / "args.json", {"paths": [str(tree)], "mode": "enforce", "timeout": "1s"})
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "testbed.hung_fuse",
             str(tree / "mnt"), "20", "--", str(binary("secrets_gate")), str(args)],
            cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        run = json.loads(proc.stdout)

        assert run["hung"] is False and run["elapsed_s"] < 10, run
        result = one_json_object(run["stdout"])
        assert result["failed"] is True and run["returncode"] == 1, result
        found = sorted((f["file"], f["rule"]) for f in result["findings"])
        assert found == [(str(tree / "mnt"), "unreadable-file"), (str(tree / "vars.yml"), "credential-value")], found
        stuck = next(f for f in result["findings"] if f["file"] == str(tree / "mnt"))
        assert f"timed out reading {tree / 'mnt'} after 1s" in stuck["message"], stuck
        assert sum(result["counts"].values()) == 2, result["counts"]
    finally:
        shutil.rmtree(tree)


def run_gate_beside_a_hung_mount(tmp_path: Path, tree: Path, args: dict[str, Any]) -> dict[str, Any]:
    """Runs the module with `args` while tree/mnt is a mount that never answers; returns the
    harness's report (hung, elapsed_s, returncode, stdout)."""
    need_root()
    if not Path("/dev/fuse").exists():
        pytest.fail("needs /dev/fuse (the FUSE kernel module)", pytrace=False)
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "testbed.hung_fuse",
         str(tree / "mnt"), "20", "--", str(binary("secrets_gate")), str(write_args(tmp_path / "args.json", args))],
        cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert run["hung"] is False and run["elapsed_s"] < 10, run
    return run


def test_secrets_gate_warns_of_a_mount_that_never_answers_in_audit_mode(tmp_path):
    tree = Path(tempfile.mkdtemp(prefix="sg-hung-audit-", dir="/tmp"))
    try:
        (tree / "mnt").mkdir()
        (tree / "vars.yml").write_text(PLANTED)
        run = run_gate_beside_a_hung_mount(tmp_path, tree, {"paths": [str(tree)], "mode": "audit", "timeout": "1s"})

        result = one_json_object(run["stdout"])
        assert result["failed"] is False and run["returncode"] == 0, result
        assert [f["rule"] for f in result["findings"]] == ["credential-value"], result
        assert any(w.startswith(f"{tree / 'mnt'}: timed out reading") for w in result["warnings"]), result
    finally:
        shutil.rmtree(tree)


def test_secrets_gate_refuses_a_scanned_path_on_a_mount_that_never_answers(tmp_path):
    tree = Path(tempfile.mkdtemp(prefix="sg-hung-root-", dir="/tmp"))
    try:
        (tree / "mnt").mkdir()
        run = run_gate_beside_a_hung_mount(tmp_path, tree, {"paths": [str(tree / "mnt")], "timeout": "1s"})

        result = one_json_object(run["stdout"])
        assert result["failed"] is True and run["returncode"] == 1, result
        assert "parameter 'paths'" in result["msg"] and str(tree / "mnt") in result["msg"], result
        assert "timed out reading it after 1s" in result["msg"], result
    finally:
        shutil.rmtree(tree)


def test_secrets_gate_reports_a_key_file_on_a_mount_that_never_answers_and_goes_on(tmp_path):
    tree = Path(tempfile.mkdtemp(prefix="sg-hung-key-", dir="/tmp"))
    try:
        (tree / "mnt").mkdir()
        (tree / "repo").mkdir()
        (tree / "repo" / "vars.yml").write_text(PLANTED)
        run = run_gate_beside_a_hung_mount(tmp_path, tree, {
            "paths": [str(tree / "repo")], "key_files": [str(tree / "mnt" / "age.key")], "timeout": "1s"})

        result = one_json_object(run["stdout"])
        assert [f["rule"] for f in result["findings"]] == ["credential-value"], result
        assert any(str(tree / "mnt" / "age.key") in w and "timed out reading it after 1s" in w
                   for w in result["warnings"]), result
    finally:
        shutil.rmtree(tree)
