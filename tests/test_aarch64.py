"""The aarch64 build of every module (`make install-all` puts it in the role's
binaries/aarch64/), run the way an aarch64 host would run it, under qemu-aarch64-static
(Debian's qemu-user-static): it is a static aarch64 ELF, answers --version with the crate's
version, and does real checks from a real args file."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, ROLE_LIBRARY

AARCH64_DIR = ROLE_LIBRARY.parent / "binaries" / "aarch64"


def makefile_modules() -> list[str]:
    """The modules the Makefile builds (its MODULES list), whichever exist today."""
    text = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^MODULES\s*:=\s*(.+)$", text, re.MULTILINE)
    assert match, "no MODULES := line in the Makefile"
    return match.group(1).split()


def workspace_version() -> str:
    text = (REPO_ROOT / "Cargo.toml").read_text()
    match = re.search(r'^\[workspace\.package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.MULTILINE | re.DOTALL)
    assert match, "no [workspace.package] version in Cargo.toml"
    return match.group(1)


@pytest.fixture(scope="module")
def qemu() -> str:
    path = shutil.which("qemu-aarch64-static")
    if path is None:
        pytest.fail("qemu-aarch64-static is missing: run `make bootstrap` (qemu-user-static)", pytrace=False)
    return path


def aarch64_binary(module: str) -> Path:
    binary = AARCH64_DIR / module
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run `make install-all`", pytrace=False)
    return binary


@pytest.mark.parametrize("module", makefile_modules())
def test_the_aarch64_build_is_a_static_aarch64_binary_that_reports_the_crate_version(qemu, module):
    binary = aarch64_binary(module)
    kind = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "ARM aarch64" in kind, kind
    assert "statically linked" in kind or "static-pie linked" in kind, kind
    proc = subprocess.run([qemu, str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert workspace_version() in proc.stdout.split(), proc.stdout


def test_the_aarch64_health_check_runs_real_checks_from_an_args_file(qemu, tmp_path):
    binary = aarch64_binary("health_check")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        args = tmp_path / "args"
        args.write_text(json.dumps({
            "disks": [{"path": str(tmp_path), "max_used_percent": 100, "max_inodes_used_percent": 100}],
            "tcp": [f"127.0.0.1:{port}"],
            "_ansible_check_mode": False,
            "_ansible_no_log": False,
        }))
        proc = subprocess.run([qemu, str(binary), str(args)], capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout)
    assert result["failed"] is False, result
    statuses = {(check["kind"], check["status"]) for check in result["checks"]}
    assert statuses == {("disk", "pass"), ("tcp", "pass")}, result["checks"]
    assert result["summary"]["status"] == "pass"
