"""secrets_gate reads SOPS files as `sops filestatus` does, on files really encrypted with sops
3.11 and age: YAML, JSON and dotenv, encrypted_regex, unencrypted_suffix and unencrypted_regex
rules, a hand-edited value, expected recipients and .sops.yaml coverage."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_helpers import VENV_BIN, scan  # noqa: E402

SOPS_ENV = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}


def sops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "sops"), *args], cwd=cwd, env=SOPS_ENV, capture_output=True, text=True, timeout=60)


def age_keypair(path: Path) -> str:
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True, timeout=30)
    return re.search(r"age1[0-9a-z]+", path.read_text()).group(0)


def encrypt(cwd: Path, name: str, plain: str, recipient: str, *rule: str) -> Path:
    (cwd / name).write_text(plain)
    proc = sops("-e", "--age", recipient, *rule, "-i", name, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd / name


def test_the_gate_agrees_with_sops_filestatus_and_finds_hand_edited_values(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    recipient = age_keypair(tmp_path / "key.txt")
    planted = secrets.token_urlsafe(18)
    pw = "Zq-" + secrets.token_hex(6)
    encrypt(repo, "regex.yaml", f"db:\n  user: app\n  password: {pw}\napi_token: {pw}x\n", recipient,
            "--encrypted-regex", "^(password|api_token)$")
    encrypt(repo, "suffix.yaml", f"name_unencrypted: shop\nsmtp_password: {pw}y\n", recipient)
    encrypt(repo, "plainkeys.yaml", f"port: 5432\nadmin_password: {pw}z\n", recipient, "--unencrypted-regex", "^port$")
    encrypt(repo, "app.json", json.dumps({"token": pw + "j", "region": "eu"}), recipient)
    encrypt(repo, "app.env", f"DB_PASSWORD={pw}e\n", recipient)
    (repo / "plain.yaml").write_text("region: eu\n")
    # hand-edited: a value that must be encrypted put back in clear
    edited = repo / "edited.yaml"
    encrypt(repo, "edited.yaml", f"db:\n  password: {pw}\n  host: db1\n", recipient, "--encrypted-regex", "^password$")
    edited.write_text(re.sub(r"password: ENC\[[^\]]*\]", f"password: {planted}", edited.read_text()))

    report = json.loads(scan(str(repo), "--format", "json").stdout)
    statuses = {Path(f["file"]).name: f["status"] for f in report["migration"]["files"]}
    for path in sorted(repo.iterdir()):
        proc = sops("filestatus", path.name, cwd=repo)
        assert proc.returncode == 0, proc.stderr
        encrypted = json.loads(proc.stdout)["encrypted"]
        gate_says_sops = statuses.get(path.name) in ("sops", "mixed") and path.name != "plain.yaml"
        assert encrypted == gate_says_sops, (path.name, encrypted, statuses)
    findings = [(Path(f["file"]).name, f["rule"], f["key_path"], f["line"]) for f in report["findings"]]
    assert findings == [("edited.yaml", "sops-unencrypted-value", "db.password", 2)], findings
    output = json.dumps(report)
    assert planted not in output and pw not in output


def test_a_departed_custodian_and_a_missing_sops_rule_are_findings(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "inventories" / "prod" / "group_vars").mkdir(parents=True)
    (repo / "inventories" / "dev" / "group_vars").mkdir(parents=True)
    alice = age_keypair(tmp_path / "alice.txt")
    bob = age_keypair(tmp_path / "bob.txt")
    prod = repo / "inventories" / "prod" / "group_vars"
    encrypt(prod, "secrets.yml", "db_password: Qz8-mP2q-R7tY\n", f"{alice},{bob}")
    dev = repo / "inventories" / "dev" / "group_vars"
    encrypt(dev, "secrets.yml", "db_password: Qz8-mP2q-R7tY\n", alice)
    # written after encrypting: sops itself refuses files that no rule covers
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^inventories/prod/.*\n    age: {alice}\n")
    args = {
        "paths": [str(repo)],
        "provider": "either",
        "recipients": [{"path_regex": "^inventories/", "age": [alice]}],
    }
    from gate_helpers import run_module

    result = run_module(args, tmp_path)
    rules = sorted((f["file"].split("inventories/")[-1], f["rule"]) for f in result["findings"])
    assert rules == [
        ("dev/group_vars/secrets.yml", "sops-coverage"),
        ("prod/group_vars/secrets.yml", "unexpected-recipient"),
    ], rules
    assert result["failed"]
    assert any(bob in f["message"] for f in result["findings"])
    envs = result["migration"]["environments"]
    assert envs["prod"]["sops_files"] == 1 and envs["prod"]["sops_percent"] == 100.0
