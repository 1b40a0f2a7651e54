"""The Molecule scenario molecule/health_check, run by the real molecule: prepare, converge,
idempotence (a second converge must change nothing), verify, cleanup."""

from __future__ import annotations

import subprocess

from conftest import REPO_ROOT, VENV_BIN, venv_tool


def test_molecule_scenario_converges_idempotently(module_binary, ansible_env):
    env = {k: v for k, v in ansible_env.items() if k != "ANSIBLE_CONFIG"}
    # molecule shells out to ansible-config and ansible-playbook: .venv first on PATH.
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    env["NO_COLOR"] = "1"
    proc = subprocess.run(
        [str(venv_tool("molecule")), "test", "-s", "health_check"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    # Molecule's recap lists each action; its exit code is what counts, these make sure the
    # idempotence and verify steps really ran.
    for action in ("converge", "idempotence", "verify"):
        assert f"health_check > {action}: Executed: Successful" in out, out[-6000:]
