"""secrets_gate as Ansible runs it: a real ansible-playbook with `delegate_to: localhost` and
`run_once`, a clean repository that passes and one with planted secrets that fails with a clear
message; the whole -vvv log is searched for the planted values. ansible-doc renders the sidecar
documentation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_helpers import REPO_ROOT, VENV_BIN, gate_binary, make_planted_repo  # noqa: E402

PLAYBOOK = """---
- name: Preflight secrets gate
  hosts: all
  gather_facts: false
  tasks:
    - name: Scan the repository for plaintext secrets
      secrets_gate:
        paths: ["{{ scan_root }}"]
        provider: either
      delegate_to: localhost
      run_once: true
"""


def ansible_env(tmp_path: Path, library: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_LIBRARY=str(library),
        ANSIBLE_HOME=str(tmp_path / "ansible_home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    return env


def library_dir(tmp_path: Path) -> Path:
    """The binary and its sidecar doc side by side (the binary may come from SECRETS_GATE_BINARY)."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "secrets_gate").symlink_to(gate_binary())
    (library / "secrets_gate.yml").symlink_to(REPO_ROOT / "roles" / "ops" / "health_check" / "library" / "secrets_gate.yml")
    return library


def play(tmp_path: Path, scan_root: Path) -> subprocess.CompletedProcess:
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[fleet]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n")
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-vvv", "-i", str(inventory), str(playbook), "-e", f"scan_root={scan_root}"],
        env=ansible_env(tmp_path, library_dir(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_planted_secret_stops_the_play_with_a_clear_message_and_never_shows(tmp_path: Path):
    repo = make_planted_repo(tmp_path / "repo")
    run = play(tmp_path, repo.root)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert re.search(r"secrets_gate: 6 findings in 5 files \(credential-value: 5, known-token: 1\)", output), output
    assert "db_password" in output and "deploy_token" in output
    assert output.count("TASK [Scan the repository for plaintext secrets]") == 1
    repo.assert_no_secret_in(output)


def test_a_clean_repository_passes(tmp_path: Path):
    root = tmp_path / "clean" / "group_vars"
    root.mkdir(parents=True)
    (root / "all.yml").write_text("db_password: \"{{ vault_db_password }}\"\nntp_servers: [pool.ntp.org]\n")
    run = play(tmp_path, root.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: [web1 -> localhost]" in run.stdout


def test_ansible_doc_renders_the_sidecar_documentation(tmp_path: Path):
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "secrets_gate"],
        env=ansible_env(tmp_path, library_dir(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("max_data_key_age", "recipients", "migration", "fingerprint", "EXAMPLES"):
        assert word in proc.stdout, word


def test_the_documented_options_are_the_parameters_the_binary_accepts():
    import yaml

    doc = yaml.safe_load((REPO_ROOT / "roles/ops/health_check/library/secrets_gate.yml").read_text())
    documented = set(doc["DOCUMENTATION"]["options"])
    proc = subprocess.run([str(gate_binary()), "--help"], capture_output=True, text=True, timeout=30)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("Parameters: "))
    accepted = set(line.removeprefix("Parameters: ").split(", "))
    assert documented == accepted
