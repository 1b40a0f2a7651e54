"""The Molecule scenario molecule/deploy, run by the real molecule against two fresh
python-flavoured systemd-nspawn machines: the production deploy converges (serial 1), a second
converge changes nothing (Molecule's idempotence step), and verify reads the artifact and asks
each app's /healthz."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT, VENV_BIN, venv_tool
from testbed.machines import free_port, inventory_line, ssh_fleet


def test_the_molecule_deploy_scenario_converges_idempotently_and_verifies(module_binary, ansible_env, tmp_path):
    with ssh_fleet(2, prefix="moldeploy", flavour="python") as machines:
        inventory = tmp_path / "molecule-fleet" / "hosts.ini"
        inventory.parent.mkdir()
        # nspawn machines share the host's network: one app port per machine.
        lines = ["[fleet]"] + [f"{inventory_line(m)} app_port={free_port()}" for m in machines]
        # Molecule's platform, the controller: a local connection.
        lines += ["[controller]", f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"]
        inventory.write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in ansible_env.items() if k != "ANSIBLE_CONFIG"}
        env.update(
            PATH=f"{VENV_BIN}:{env['PATH']}", NO_COLOR="1",
            DEPLOY_MOLECULE_INVENTORY=str(inventory),
            DEPLOY_MOLECULE_ARTIFACTS=str(tmp_path / "artifacts"),
        )
        proc = subprocess.run(
            [str(venv_tool("molecule")), "test", "-s", "deploy"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=600,
        )
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    for action in ("converge", "idempotence", "verify"):
        assert f"deploy > {action}: Executed: Successful" in out, out[-6000:]
    assert (tmp_path / "artifacts" / "latest.json").is_symlink()
