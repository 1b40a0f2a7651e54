"""The key rotation SOP (docs/deployment/key-rotation-sop.md), executed with the real sops,
age, ansible-vault and ansible-playbook against a generated sample repository whose dev
environment has been migrated to SOPS by the migration guide's own steps."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
import yaml

from .sample_repo import ROTATION_SOP, SampleRepo, doc_steps, make_sample_repo, migrate, use_gate

SOP_STEPS = (
    "routine-rotation", "custodian-leaves", "verify-removed-key", "emergency-revoke",
    "emergency-credentials", "emergency-verify", "vault-rekey", "check-key-files",
)
DEV_SOPS = "inventories/dev/group_vars/all/vault.sops.yaml"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    repo = use_gate(make_sample_repo(tmp_path_factory.mktemp("migrated")))
    migrate(repo, "dev")
    return repo


@pytest.fixture
def repo(migrated: SampleRepo, tmp_path: Path) -> SampleRepo:
    return migrated.clone(tmp_path)


def sops_meta(repo: SampleRepo) -> dict:
    return yaml.safe_load((repo.root / DEV_SOPS).read_text())["sops"]


def rotation_log(repo: SampleRepo) -> list[dict]:
    return [json.loads(line) for line in (repo.root / "secrets-rotation.log").read_text().splitlines()]


def test_every_bash_block_of_the_sop_is_a_step_that_these_tests_run():
    assert tuple(doc_steps(ROTATION_SOP)) == SOP_STEPS


def test_routine_rotation_draws_a_new_data_key_and_records_it(repo: SampleRepo):
    path = repo.root / DEV_SOPS
    before_text = path.read_text()
    before_content = repo.sops_decrypt_digest(path, "alice")
    before_mac = sops_meta(repo)["mac"]

    result = repo.step(ROTATION_SOP, "routine-rotation", repo.operator_env(ENV="dev"))
    assert f"rotated {DEV_SOPS}: new data key, recipients = alice, bob, ci" in result.output
    assert "[PASS] recipients equal the custodian list" in result.output
    assert "[PASS] data keys younger than 90d" in result.output
    assert "dev: READY for cutover" in result.output

    # Same secrets, new data key: every ciphertext and the MAC changed.
    assert repo.sops_decrypt_digest(path, "alice") == before_content
    assert sops_meta(repo)["mac"] != before_mac
    old_values = {line.split(":")[0]: line for line in before_text.splitlines() if "ENC[" in line}
    for line in path.read_text().splitlines():
        if "ENC[" in line:
            assert line != old_values[line.split(":")[0]]

    [entry] = rotation_log(repo)
    assert entry["action"] == "rotation" and entry["reason"] == "scheduled rotation"
    assert entry["custodians"] == ["alice", "bob", "ci"] and entry["file"] == DEV_SOPS
    assert "rotate dev data keys" in repo.git("log", "-1", "--format=%s")


def test_rotating_all_environments_covers_every_one_with_sops_files(repo: SampleRepo):
    migrate(repo, "staging")
    before = {env: repo.sops_decrypt_digest(repo.files(env, "*.sops.yaml")[0], "alice") for env in ("dev", "staging")}
    result = repo.secretctl("rotate", "--env", "all", "--reason", "quarterly")
    assert result.returncode == 0, result.output
    assert [(e["environment"], e["reason"]) for e in rotation_log(repo)] == [("dev", "quarterly"), ("staging", "quarterly")]
    for env, digest in before.items():
        assert repo.sops_decrypt_digest(repo.files(env, "*.sops.yaml")[0], "alice") == digest


def test_a_departed_custodians_key_no_longer_decrypts_the_files(repo: SampleRepo):
    path = repo.root / DEV_SOPS
    assert repo.sops_decrypt_digest(path, "bob") is not None
    old_version = repo.git("show", f"HEAD:{DEV_SOPS}")

    repo.step(ROTATION_SOP, "custodian-leaves", repo.operator_env(ENV="dev", NAME="bob"))
    bob = repo.run(["age-keygen", "-y", str(repo.key_file("bob"))], repo.env(), "age-keygen").output.strip()
    assert bob not in (repo.root / ".sops.yaml").read_text()
    assert bob not in [entry["recipient"] for entry in sops_meta(repo)["age"]]

    verified = repo.step(
        ROTATION_SOP, "verify-removed-key", repo.env(ENV="dev", REMOVED_KEY_FILE=str(repo.key_file("bob")))
    )
    assert f'{DEV_SOPS}: {{"encrypted":true}}, not readable with the removed key' in verified.output
    assert repo.sops_decrypt_digest(path, "bob") is None
    assert repo.sops_decrypt_digest(path, "alice") is not None
    assert repo.sops_decrypt_digest(path, "ci") is not None

    # What the SOP warns about: the version in git history still opens with bob's key.
    stale = repo.root.parent / "stale.sops.yaml"
    stale.write_text(old_version)
    assert repo.sops_decrypt_digest(stale, "bob") is not None
    assert rotation_log(repo)[-1]["reason"] == "custodian bob left"

    # The step's own check fails while the removed key still opens a file.
    repo.git("checkout", "-q", "HEAD~1", "--", DEV_SOPS)
    repo.step(
        ROTATION_SOP, "verify-removed-key",
        repo.env(ENV="dev", REMOVED_KEY_FILE=str(repo.key_file("bob"))), expect_rc=1,
    )


def test_emergency_rotation_revokes_the_leaked_key_and_replaces_the_credential(repo: SampleRepo):
    path = repo.root / DEV_SOPS
    old_password = repo.sops_value_digest(path, "vault_app_db_password")
    env = repo.operator_env(ENV="dev", NAME="bob", INCIDENT="INC-1234 laptop lost",
                            REMOVED_KEY_FILE=str(repo.key_file("bob")))

    revoke = repo.step(ROTATION_SOP, "emergency-revoke", env)
    assert "credential to change at its source, then `secretctl set-secret`: vault_app_db_password" in revoke.output
    assert "credential to change at its source, then `secretctl set-secret`: vault_app_api_token" in revoke.output
    assert rotation_log(repo)[-1]["action"] == "emergency-rotation"
    assert rotation_log(repo)[-1]["reason"] == "INC-1234 laptop lost"

    credentials = repo.step(ROTATION_SOP, "emergency-credentials", env)
    assert f"set vault_app_db_password in {DEV_SOPS}" in credentials.output
    assert repo.sops_value_digest(path, "vault_app_db_password") != old_password
    assert repo.sops_value_digest(path, "vault_app_api_token") is not None

    verify = repo.step(ROTATION_SOP, "emergency-verify", env)
    assert "[PASS] recipients equal the custodian list: 2 custodians" in verify.output
    assert "[PASS] secrets_gate finds nothing" in verify.output
    assert "failed=0" in verify.output
    assert repo.sops_decrypt_digest(path, "bob") is None
    assert "emergency rotation of dev (INC-1234 laptop lost)" in repo.git("log", "-1", "--format=%s")
    # The deploy rendered the new password: the file no longer matches the old rendering.
    rendered = (repo.output_dir / "app-dev.ini").read_bytes()
    assert repo.planted["dev"]["vault_app_db_password"].encode() not in rendered


def test_emergency_rotation_needs_a_reason(repo: SampleRepo):
    result = repo.secretctl("rotate", "--env", "dev", "--emergency")
    assert result.returncode == 2
    assert "--emergency needs --reason" in result.output


def test_rotating_a_hand_edited_file_fails_without_showing_the_value(repo: SampleRepo):
    planted = secrets.token_urlsafe(20)
    repo.planted["dev"]["hand_edited"] = planted
    path = repo.root / DEV_SOPS
    lines = [f"vault_app_api_token: {planted}" if line.startswith("vault_app_api_token:") else line
             for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    result = repo.secretctl("rotate", "--env", "dev")  # repo.run fails the test if the value shows
    assert result.returncode == 2
    assert "Input string <redacted> does not match" in result.output


def test_a_leaked_vault_password_is_replaced_by_rekeying_the_environment(repo: SampleRepo):
    old = repo.vault_password_file
    new = repo.keys / "vault-password-new"
    new.write_text(secrets.token_urlsafe(24) + "\n")
    new.chmod(0o600)
    env = repo.env(ENV="staging", OLD_VAULT_PASSWORD_FILE=str(old), NEW_VAULT_PASSWORD_FILE=str(new))
    repo.step(ROTATION_SOP, "vault-rekey", env)

    run, rendered = repo.playbook("staging", repo.env(ANSIBLE_VAULT_PASSWORD_FILE=str(new)))
    assert run.returncode == 0 and rendered == repo.expected_rendering("staging"), run.output
    run, rendered = repo.playbook("staging", repo.env(ANSIBLE_VAULT_PASSWORD_FILE=str(old)))
    assert run.returncode != 0 and rendered is None


def test_key_files_with_loose_modes_or_inside_the_repo_are_findings(repo: SampleRepo):
    env = repo.env(KEYS_DIR=str(repo.keys))
    clean = repo.step(ROTATION_SOP, "check-key-files", env)
    assert "3 key files checked, 0 findings" in clean.output

    repo.key_file("bob").chmod(0o644)
    loose = repo.step(ROTATION_SOP, "check-key-files", env, expect_rc=1)
    assert f"key-file: {repo.key_file('bob')}: mode 0644, expected 0600 or stricter" in loose.output
    assert "3 key files checked, 1 findings" in loose.output
    repo.key_file("bob").chmod(0o600)

    inside = repo.root / "age-alice.key"
    inside.write_bytes(repo.key_file("alice").read_bytes())
    os.chmod(inside, 0o600)
    result = repo.secretctl("check-key-files", str(inside), env=repo.env())
    assert result.returncode == 1
    assert "inside the repository; keep key files outside it" in result.output

    # The environment variables an operator sets are checked too (key-files step).
    result = repo.secretctl(
        "check-key-files", env=repo.env(SOPS_AGE_KEY_FILE=str(repo.key_file("alice")),
                                        ANSIBLE_VAULT_PASSWORD_FILE=str(repo.root / "missing"))
    )
    assert result.returncode == 1 and "missing: key file missing" in result.output


def test_data_keys_older_than_the_cadence_fail_the_check(repo: SampleRepo):
    result = repo.secretctl(
        "cutover-check", "--env", "dev", "--ci-key", str(repo.key_file("ci")), "--max-data-key-age", "0h"
    )
    assert result.returncode == 1
    assert f"[FAIL] data keys younger than 0h: {DEV_SOPS}" in result.output
    bad = repo.secretctl("cutover-check", "--env", "dev", "--max-data-key-age", "3 months")
    assert bad.returncode == 2 and "--max-data-key-age: expected a duration" in bad.output
