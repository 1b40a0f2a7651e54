"""Shared helpers of the secrets_gate tests: the installed binary, a sample repository with
planted secrets (random each run), and a check that no captured byte holds a planted secret."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GATE_BINARY = Path(
    os.environ.get("SECRETS_GATE_BINARY") or REPO_ROOT / "roles" / "ops" / "health_check" / "library" / "secrets_gate"
)
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def gate_binary() -> Path:
    if not (GATE_BINARY.is_file() and os.access(GATE_BINARY, os.X_OK)):
        pytest.fail(f"{GATE_BINARY} is missing: run `make install` first", pytrace=False)
    return GATE_BINARY


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def scan(*args: str, cwd: Path | None = None) -> Run:
    proc = subprocess.run([str(gate_binary()), "scan", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_module(args: dict, tmp_path: Path) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    proc = subprocess.run([str(gate_binary()), str(args_file)], capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout)


@dataclass
class PlantedRepo:
    root: Path
    planted: dict[str, str] = field(default_factory=dict)

    def assert_no_secret_in(self, *texts: str | bytes) -> None:
        for text in texts:
            data = text.decode(errors="replace") if isinstance(text, bytes) else text
            for name, value in self.planted.items():
                assert value not in data, f"planted secret {name} leaked into output"


def random_password() -> str:
    return "Raven_Meadow" + str(secrets.randbelow(9000) + 1000) + "*" + secrets.token_hex(2)


def make_planted_repo(root: Path) -> PlantedRepo:
    """An Ansible repository with one planted secret per kind, each on a known line."""
    repo = PlantedRepo(root)
    pw = repo.planted.setdefault("password", random_password())
    token = repo.planted.setdefault("github", "ghp_" + secrets.token_hex(18))
    crlf = repo.planted.setdefault("crlf", random_password())
    lone_cr = repo.planted.setdefault("lone_cr", random_password())
    ini = repo.planted.setdefault("ini", random_password())
    env = repo.planted.setdefault("dotenv", secrets.token_urlsafe(24))
    gv = root / "inventories" / "prod" / "group_vars" / "all"
    gv.mkdir(parents=True)
    (gv / "main.yml").write_text(
        "---\n"
        f"db_password: &dbpw {pw}\n"  # line 2
        "replica_password: *dbpw\n"  # alias: reported at the anchor only
        "# password: set via vault\n"
        "kex_algorithms: ecdh-sha2-nistp256\n"
        "mac_algorithm: hmac-sha2-512-etm@openssh.com\n"
        "vault_api_token: \"{{ lookup('env', 'API_TOKEN') }}\"\n"
        f"deploy_token: {token}\n"  # line 8
    )
    (gv / "windows.yml").write_bytes(f"a: 1\r\nb: 2\r\nadmin_password: {crlf}\r\n".encode())  # line 3
    (gv / "mac.yml").write_bytes(f"a: 1\rb: 2\rc: 3\rroot_password: {lone_cr}\r".encode())  # line 4
    (root / "inventories" / "prod" / "hosts").write_text(
        f"[web]\nweb1 ansible_host=10.0.0.5\nweb2 ansible_host=10.0.0.6 ansible_password={ini}\n"  # line 3
    )
    (root / ".env").write_text(f"# app settings\nAPP_NAME=shop\nSMTP_PASSWORD={env}\n")  # line 3
    return repo


EXPECTED_LINES = {
    ("inventories/prod/group_vars/all/main.yml", 2),
    ("inventories/prod/group_vars/all/main.yml", 8),
    ("inventories/prod/group_vars/all/windows.yml", 3),
    ("inventories/prod/group_vars/all/mac.yml", 4),
    ("inventories/prod/hosts", 3),
    (".env", 3),
}
