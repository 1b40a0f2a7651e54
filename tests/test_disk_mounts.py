"""The disk checks against real mounts: a path that must be a mount point of its own, its
filesystem type and mount options, a path measured on the root filesystem, and a mount whose
server never answers.

Every mount is made inside a private mount namespace (`unshare -m --propagation private`), so no
other process on the machine sees it and it goes away with the namespace. The module is the
shipped static binary in roles/ops/health_check/library/ (`make install`). `findmnt` (util-linux)
says independently where a path is mounted.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (mounts filesystems in a private mount namespace)", pytrace=False)


def run_in_namespace(module_binary: Path, tmp_path: Path, setup: str, args: dict[str, Any]) -> dict[str, Any]:
    """Runs `setup` (shell) in a private mount namespace, then the module there; its one JSON
    object."""
    need_root()
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    script = f"set -eu\n{setup}\nexec {shlex.quote(str(module_binary))} {shlex.quote(str(args_file))}\n"
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.stderr == "", proc.stderr
    return json.loads(proc.stdout)


def mount_point_of(path: Path) -> tuple[str, str]:
    """Where `path` is mounted and the filesystem type, as findmnt sees it."""
    out = subprocess.run(["findmnt", "-n", "-o", "TARGET,FSTYPE", "--target", str(path)],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


def q(path: Path) -> str:
    return shlex.quote(str(path))


# ---------------------------------------------------------------------------------------------
# mount: true, fstype, options


def test_a_directory_that_is_not_a_mount_point_fails_mount_true_and_names_where_it_lies(module_binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    where, fstype = mount_point_of(data)

    result = run_in_namespace(module_binary, tmp_path, "", {"disks": [{"path": str(data), "mount": True}]})

    assert result["failed"] is True, result
    [check] = result["checks"]
    assert check["status"] == "fail"
    assert check["message"] == f"'{data}' is not a mount point: it lies on {where} ({fstype})", check
    assert check["details"]["is_mount_point"] is False
    assert check["details"]["mount_point"] == where


def test_a_tmpfs_mounted_on_the_path_passes_mount_true_and_its_type_is_judged(module_binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    args = {"disks": [
        {"path": str(data), "mount": True, "fstype": "tmpfs", "name": "tmpfs"},
        {"path": str(data), "fstype": ["xfs", "ext4"], "name": "xfs-or-ext4"},
        {"path": str(data / "sub"), "mount": True, "name": "below"},
    ]}
    result = run_in_namespace(module_binary, tmp_path, f"mount -t tmpfs -o size=1m tmpfs {q(data)}\nmkdir {q(data / 'sub')}", args)

    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name["tmpfs"]["status"] == "pass", by_name["tmpfs"]
    assert by_name["tmpfs"]["details"]["fstype"] == "tmpfs"
    assert by_name["tmpfs"]["details"]["is_mount_point"] is True
    assert by_name["xfs-or-ext4"]["message"] == f"'{data}' is tmpfs (mounted on {data}), expected one of xfs, ext4"
    # The limits are measured on the tmpfs, not on the filesystem below it.
    assert by_name["tmpfs"]["details"]["size_bytes"] == 1 << 20
    assert by_name["below"]["message"] == f"'{data / 'sub'}' is not a mount point: it lies on {data} (tmpfs)"


def test_a_mount_remounted_read_only_fails_options_rw_and_passes_options_ro(module_binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    args = {"disks": [
        {"path": str(data), "options": ["rw"], "name": "rw"},
        {"path": str(data), "options": "ro, nodev", "name": "ro"},
    ]}
    setup = f"mount -t tmpfs -o size=1m,nodev tmpfs {q(data)}\nmount -o remount,ro {q(data)}"
    result = run_in_namespace(module_binary, tmp_path, setup, args)

    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name["rw"]["status"] == "fail"
    assert by_name["rw"]["message"] == f"'{data}' is mounted read-only (ro), expected rw"
    assert "ro" in by_name["rw"]["details"]["mount_options"]
    assert by_name["ro"]["status"] == "pass", by_name["ro"]


def test_a_missing_mount_option_is_named_with_the_options_in_force(module_binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    args = {"disks": [{"path": str(data), "options": ["rw", "noexec", "nosuid"]}]}
    result = run_in_namespace(module_binary, tmp_path, f"mount -t tmpfs -o size=1m,nosuid tmpfs {q(data)}", args)

    [check] = result["checks"]
    assert check["status"] == "fail"
    assert check["message"].startswith(f"'{data}' is mounted without noexec (in force: rw,nosuid,"), check
    assert check["message"].endswith("), expected noexec")
    assert "nosuid" not in check["message"].split("(in force")[0]


def test_a_bind_mount_is_a_mount_point_of_its_own(module_binary, tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    where, fstype = mount_point_of(source)
    result = run_in_namespace(module_binary, tmp_path, f"mount --bind {q(source)} {q(target)}",
                              {"disks": [{"path": str(target), "mount": True, "fstype": fstype}]})

    [check] = result["checks"]
    assert check["status"] == "pass", check
    assert check["details"]["mount_point"] == str(target)
    assert check["details"]["is_mount_point"] is True


@pytest.mark.parametrize("name", ["my data", "tab\there", "back\\slash", "new\nline"])
def test_a_mount_point_whose_name_the_mount_table_escapes_is_found(module_binary, tmp_path, name):
    data = tmp_path / name
    data.mkdir()
    result = run_in_namespace(module_binary, tmp_path, f"mount -t tmpfs -o size=1m tmpfs {q(data)}",
                              {"disks": [{"path": str(data), "mount": True, "fstype": "tmpfs"}]})

    [check] = result["checks"]
    assert check["status"] == "pass", check
    assert check["details"]["mount_point"] == str(data)


def test_a_symlink_to_a_mount_point_is_judged_by_where_it_leads(module_binary, tmp_path):
    data, link = tmp_path / "data", tmp_path / "link"
    data.mkdir()
    link.symlink_to(data)
    result = run_in_namespace(module_binary, tmp_path, f"mount -t tmpfs -o size=1m tmpfs {q(data)}",
                              {"disks": [{"path": str(link), "mount": True}]})

    [check] = result["checks"]
    assert check["status"] == "pass", check
    assert check["details"]["mount_point"] == str(data)


# ---------------------------------------------------------------------------------------------
# A path measured on the root filesystem


def path_on_the_root_filesystem() -> Path:
    for candidate in ("/etc", "/usr", "/var", "/opt", "/root"):
        if Path(candidate).is_dir() and mount_point_of(Path(candidate))[0] == "/":
            return Path(candidate)
    pytest.fail("no directory of /etc, /usr, /var, /opt, /root lies on the root filesystem", pytrace=False)


def test_a_path_on_the_root_filesystem_passes_with_a_warning_unless_mount_false_accepts_it(module_binary, tmp_path):
    path = path_on_the_root_filesystem()
    _, fstype = mount_point_of(Path("/"))
    args = {"disks": [
        {"path": str(path), "name": "unset", "max_used_percent": 100, "max_inodes_used_percent": 100},
        {"path": str(path), "name": "accepted", "mount": False, "max_used_percent": 100,
         "max_inodes_used_percent": 100},
        {"path": "/", "name": "root", "max_used_percent": 100, "max_inodes_used_percent": 100},
    ]}
    result = run_in_namespace(module_binary, tmp_path, "", args)

    assert result["failed"] is False, result
    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name["unset"]["status"] == "pass"
    assert by_name["unset"]["message"] == f"{path} within limits (measured on / ({fstype}): not a mount point)"
    warning = (f"disk:unset: '{path}' is not a mount point: it is measured on / ({fstype}); set mount: true to "
               "require a filesystem of its own, or mount: false to accept the root filesystem")
    assert result["warnings"] == [warning]
    assert by_name["accepted"]["message"] == f"{path} within limits"
    assert by_name["root"]["message"] == "/ within limits"


# ---------------------------------------------------------------------------------------------
# Bad parameters


@pytest.mark.parametrize(("entry", "parameter", "text"), [
    ({"mount": "maybe"}, "disks[0].mount", "expected a boolean"),
    ({"mount": [True]}, "disks[0].mount", "expected a boolean"),
    ({"fstype": {"xfs": 1}}, "disks[0].fstype", "invalid type: map"),
    ({"fstype": []}, "disks[0].fstype", "expected a name or a list of names, without empty entries"),
    ({"options": [""]}, "disks[0].options", "expected a name or a list of names, without empty entries"),
    ({"options": [["rw"]]}, "disks[0].options[0]", "invalid type: sequence"),
], ids=["mount-string", "mount-list", "fstype-map", "fstype-empty", "options-empty-entry", "options-nested"])
def test_a_bad_mount_option_type_is_a_parameter_error(run_module, entry, parameter, text):
    run = run_module({"disks": [{"path": "/", **entry}]})

    result = run.single_json_object()
    assert run.returncode == 1 and result["failed"] is True, result
    assert result["msg"].startswith(f"parameter '{parameter}': "), result["msg"]
    assert text in result["msg"], result["msg"]
    assert "checks" not in result


# ---------------------------------------------------------------------------------------------
# A mount whose server never answers (tests/testbed/hung_fuse.py)


def run_with_hung_mount(mountpoint: Path, hold_s: float, command: list[str]) -> dict[str, Any]:
    """Mounts a FUSE filesystem that never answers on `mountpoint` in a private namespace, runs
    `command` there for at most `hold_s`, then kills the server; hung_fuse's JSON report."""
    need_root()
    if not Path("/dev/fuse").exists():
        pytest.fail("needs /dev/fuse (the FUSE kernel module)", pytrace=False)
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "testbed.hung_fuse",
         str(mountpoint), str(hold_s), "--", *command],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=hold_s + 60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("where", ["the mount point", "a path below it", "a symlink into it"])
def test_a_hung_mount_fails_its_check_at_its_timeout_and_the_module_exits(module_binary, tmp_path, where):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "link").symlink_to(mnt)
    path = {"the mount point": mnt, "a path below it": mnt / "sub", "a symlink into it": tmp_path / "link" / "sub"}[where]
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"disks": [str(path), "/"], "memory": {}, "timeout": "1s", "deadline": "20s"}))

    run = run_with_hung_mount(mnt, 15, [str(module_binary), str(args)])

    # Exited (its output closed) after the hung check's timeout, long before the server went
    # (15 s); the margin is for a loaded machine.
    assert run["hung"] is False, run
    assert run["elapsed_s"] < 10, run
    result = json.loads(run["stdout"])
    assert run["returncode"] == 1 and result["failed"] is True
    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name[str(path)]["status"] == "fail"
    assert by_name[str(path)]["message"] == "timed out after 1s"
    assert by_name["/"]["status"] == "pass", by_name["/"]
    assert by_name["memory"]["status"] in ("pass", "warn", "fail") and by_name["memory"]["message"], by_name["memory"]


def test_a_hung_mount_does_not_keep_the_module_from_exiting_at_its_deadline(module_binary, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"disks": [str(mnt), "/"], "timeout": "30s", "deadline": "2s"}))

    run = run_with_hung_mount(mnt, 20, [str(module_binary), str(args)])

    assert run["hung"] is False, run
    assert run["elapsed_s"] < 10, run  # the server holds for 20 s
    result = json.loads(run["stdout"])
    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name[str(mnt)]["message"] == "deadline exceeded: the whole run is limited to 2s"
    assert by_name["/"]["status"] == "pass"


# Runs the module and, while it runs, counts the probe processes measuring the hung path (they
# cannot finish before the server is killed); the most seen at once.
COUNT_PROBES = """
import json, os, subprocess, sys, time
binary, args, hung = sys.argv[1:4]

def probes():
    found = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        found += b"--disk-probe-process" in argv and hung.encode() in argv
    return found

module = subprocess.Popen([binary, args], stdout=subprocess.PIPE, text=True)
most = 0
while module.poll() is None:
    most = max(most, probes())
    time.sleep(0.05)
print(json.dumps({"module": json.loads(module.stdout.read()), "probes": most}))
"""


def test_waiting_on_a_hung_mount_starts_one_probe_process_not_one_per_attempt(module_binary, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"disks": [str(mnt)], "timeout": "300ms", "wait_timeout": "3s",
                                "interval": "200ms", "deadline": "10s"}))

    run = run_with_hung_mount(mnt, 20, [sys.executable, "-c", COUNT_PROBES, str(module_binary), str(args), str(mnt)])

    assert run["hung"] is False, run
    report = json.loads(run["stdout"])
    assert report["module"]["summary"]["attempts"] >= 3, report["module"]["summary"]
    assert report["module"]["checks"][0]["message"] == "timed out after 300ms"
    assert report["probes"] == 1, report
