"""The Molecule scenario molecule/idempotence, run by the real molecule on a fresh test machine
of the gpu flavour (where every core role, gpu_runtime included, has work to do): converge the
core roles, snapshot with idempotence_probe (side_effect), Molecule's idempotence step, then
compare with fail_on_drift (verify)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from .conftest import REPO_ROOT, require_probe

VENV_BIN = REPO_ROOT / ".venv" / "bin"
sys.path.insert(0, str(REPO_ROOT / "scripts"))


def test_molecule_converges_the_core_roles_idempotently_without_drift(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the scenario's hosts are systemd-nspawn machines: run as root", pytrace=False)
    require_probe()
    from idempotence.machines import fresh_machines

    inventory = tmp_path / "hosts.ini"
    # SSH control sockets need a short path (108 bytes for a unix socket).
    control_dir = tempfile.mkdtemp(prefix="molcp-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}:{env['PATH']}",
        NO_COLOR="1",
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir,
        MOLECULE_IDEMPOTENCE_INVENTORY=str(inventory),
    )
    try:
        with fresh_machines(f"molidem-{os.getpid()}", ["gpu"], inventory) as hosts:
            proc = subprocess.run(
                [str(VENV_BIN / "molecule"), "test", "-s", "idempotence"],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=900,
            )
    finally:
        shutil.rmtree(control_dir, ignore_errors=True)
    out = proc.stdout
    assert proc.returncode == 0, out[-8000:]
    for action in ("converge", "side_effect", "idempotence", "verify"):
        assert f"idempotence > {action}: Executed: Successful" in out, out[-8000:]
    for host in hosts:
        assert f"ok: [{host}]" in out
    # verify's assert reports how much it compared: the watch set was not empty.
    assert "no drift in " in out and "no drift in 0 watched entries" not in out, out[-8000:]
