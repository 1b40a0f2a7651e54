"""The Vault-to-SOPS migration guide (docs/deployment/sops-migration.md), executed step by
step with the real ansible-vault, sops, age, community.sops and ansible-playbook against a
generated sample repository."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from .sample_repo import (
    MIGRATION_GUIDE,
    SampleRepo,
    doc_steps,
    make_sample_repo,
    migrate,
    set_up_custodians,
    use_gate,
)

# The order in which an operator runs the guide; every marked step of the guide is in it.
GUIDE_STEPS = (
    "prerequisites", "custodian-key", "custodian-add", "key-files", "open-migration", "measure",
    "measure-gate", "convert", "preflight", "verify-deploy", "commit", "cutover-check", "cutover", "rollback",
)


@pytest.fixture(scope="module")
def on_vault(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    return use_gate(make_sample_repo(tmp_path_factory.mktemp("on_vault")))


@pytest.fixture(scope="module")
def on_sops(on_vault: SampleRepo, tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    repo = on_vault.clone(tmp_path_factory.mktemp("on_sops"))
    migrate(repo, "dev")
    return repo


@pytest.fixture
def repo(on_vault: SampleRepo, tmp_path: Path) -> SampleRepo:
    """The sample repository with every environment on Vault."""
    return on_vault.clone(tmp_path)


@pytest.fixture
def migrated(on_sops: SampleRepo, tmp_path: Path) -> SampleRepo:
    """The sample repository with dev migrated to SOPS by the guide's steps."""
    return on_sops.clone(tmp_path)


def gate_migration(repo: SampleRepo, env: dict[str, str]) -> dict:
    """The measure-gate step's migration totals for the scanned environment."""
    result = repo.step(MIGRATION_GUIDE, "measure-gate", env)
    report = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert report["findings"] == []
    [totals] = report["migration"]["environments"].values()
    return totals


def cutover_criteria(repo: SampleRepo, env_name: str, *extra: str) -> tuple[int, dict[str, bool]]:
    result = repo.secretctl(
        "cutover-check", "--env", env_name, "--ci-key", str(repo.key_file("ci")), "--json", *extra
    )
    assert result.returncode in (0, 1), result.output
    report = json.loads(result.output)
    return result.returncode, {c["name"]: c["passed"] for c in report["criteria"]}


def test_every_bash_block_of_the_guide_is_a_step_that_these_tests_run():
    assert tuple(doc_steps(MIGRATION_GUIDE)) == GUIDE_STEPS


def test_one_environment_moves_from_vault_to_sops_and_each_step_is_measured(repo: SampleRepo):
    repo.step(MIGRATION_GUIDE, "prerequisites", repo.env())
    set_up_custodians(repo, "dev")
    assert (repo.root / ".sops.yaml").read_text().count("age1") == 3

    key_files = repo.step(MIGRATION_GUIDE, "key-files", repo.env(NAME="alice"))
    assert "2 key files checked, 0 findings" in key_files.output

    env = repo.operator_env(ENV="dev")
    opened = repo.step(MIGRATION_GUIDE, "open-migration", env)
    assert "dev: active secrets provider is either" in opened.output
    before = repo.step(MIGRATION_GUIDE, "measure", env)
    # other: main.yml and preflight_gate.yml
    assert "dev: vault=1 inline-vault=0 sops=0 sops-plaintext=0 other=2" in before.output
    assert repo.status("dev") == {"vault": 1, "other": 2}
    totals = gate_migration(repo, env)
    assert (totals["vault_files"], totals["sops_files"], totals["plaintext_files"]) == (1, 0, 0)
    assert totals["sops_percent"] == 0

    # The deploy reads the secrets through Ansible Vault before the conversion...
    run, rendered = repo.playbook("dev", repo.env(ANSIBLE_VAULT_PASSWORD_FILE=str(repo.vault_password_file)))
    assert run.returncode == 0, run.output
    assert rendered == repo.expected_rendering("dev")

    convert = repo.step(MIGRATION_GUIDE, "convert", env)
    assert "would convert inventories/dev/group_vars/all/vault.yml" in convert.output
    assert "dev: vault=0 inline-vault=0 sops=1 sops-plaintext=0 other=2" in convert.output
    assert repo.status("dev") == {"sops": 1, "other": 2}
    assert repo.status("staging") == {"vault": 1, "other": 1}, "only the migrated environment moves"
    sops_file = repo.root / "inventories/dev/group_vars/all/vault.sops.yaml"
    assert json.loads(repo.run(["sops", "filestatus", str(sops_file)], env, "filestatus").output) == {
        "encrypted": True
    }
    assert not (repo.root / "inventories/dev/group_vars/all/vault.yml").exists()
    totals = gate_migration(repo, env)
    assert (totals["vault_files"], totals["sops_files"], totals["plaintext_files"]) == (0, 1, 0)
    assert totals["sops_percent"] == 100
    preflight = repo.step(MIGRATION_GUIDE, "preflight", repo.env(ENV="dev"))
    # The gate and the inventory checks after it all ran, and none failed.
    assert preflight.returncode == 0, preflight.output
    assert "TASK [Scan the inventory for plaintext secrets]" in preflight.output
    assert re.search(r"ok=[1-9]", preflight.output) and "failed=0" in preflight.output

    # ...and through community.sops after it, with no Vault password at all: same file.
    no_vault = repo.env(SOPS_AGE_KEY_FILE=str(repo.key_file("ci")), ENV="dev")
    repo.step(MIGRATION_GUIDE, "verify-deploy", no_vault)
    run, rendered = repo.playbook("dev", no_vault)
    assert run.returncode == 0, run.output
    assert rendered == repo.expected_rendering("dev")

    repo.step(MIGRATION_GUIDE, "commit", env)
    assert "vault.sops.yaml" in repo.git("show", "--stat", "HEAD")


def test_cutover_is_refused_while_a_vault_or_plaintext_file_remains(repo: SampleRepo):
    set_up_custodians(repo, "dev")
    env = repo.operator_env(ENV="dev")

    refused = repo.step(MIGRATION_GUIDE, "cutover-check", env, expect_rc=1)
    assert "[FAIL] no Vault or unencrypted secrets files left: sops=0 vault=1" in refused.output
    assert "dev: NOT ready: cutover refused" in refused.output

    repo.step(MIGRATION_GUIDE, "convert", env)
    rc, criteria = cutover_criteria(repo, "dev")
    assert criteria == {
        "no Vault or unencrypted secrets files left": True,
        ".sops.yaml covers every SOPS file": True,
        "recipients equal the custodian list": True,
        "the CI key decrypts every SOPS file": True,
        "data keys younger than 90d": True,
        "secrets_gate finds nothing": True,
    }
    assert rc == 0
    ready = repo.step(MIGRATION_GUIDE, "cutover-check", env)
    assert "dev: READY for cutover" in ready.output
    assert "[PASS] secrets_gate finds nothing: exit 0, 0 findings, migration report: 100.0% SOPS" in ready.output

    # Without the gate binary the check fails closed.
    rc, criteria = cutover_criteria(repo, "dev", "--gate", str(repo.root / "no-such-gate"))
    assert rc == 1 and criteria["secrets_gate finds nothing"] is False

    # A hand-written *.sops.yaml that was never encrypted: sops filestatus says so.
    planted = secrets.token_urlsafe(20)
    repo.planted["dev"]["planted_plaintext"] = planted
    stray = repo.root / "inventories/dev/group_vars/all/extra.sops.yaml"
    stray.write_text(f"vault_extra_token: {planted}\n")
    rc, criteria = cutover_criteria(repo, "dev")
    assert rc == 1 and not criteria["no Vault or unencrypted secrets files left"]
    assert repo.status("dev")["sops-plaintext"] == 1
    stray.unlink()

    # A Vault file that appears again after the conversion.
    (repo.root / "inventories/staging/group_vars/all/vault.yml").rename(
        repo.root / "inventories/dev/group_vars/all/late.yml"
    )
    rc, criteria = cutover_criteria(repo, "dev")
    assert rc == 1 and not criteria["no Vault or unencrypted secrets files left"]

    # A SOPS file that no creation rule covers any more (a rule dropped from .sops.yaml).
    (repo.root / "inventories/dev/group_vars/all/late.yml").unlink()
    config = repo.root / ".sops.yaml"
    config.write_text(config.read_text().replace("^inventories/dev/", "^inventories/qa/"))
    rc, criteria = cutover_criteria(repo, "dev")
    assert rc == 1 and not criteria[".sops.yaml covers every SOPS file"]
    assert criteria["no Vault or unencrypted secrets files left"]


def test_a_custodian_added_without_rotation_blocks_the_cutover(migrated: SampleRepo):
    repo = migrated
    carol_key = repo.step(MIGRATION_GUIDE, "custodian-key", repo.env(NAME="carol")).output.strip()
    repo.step(
        MIGRATION_GUIDE, "custodian-add",
        repo.env(ENV="dev", NAME="carol", ROLE="ops", RECIPIENT=carol_key.splitlines()[-1]),
    )
    _, criteria = cutover_criteria(repo, "dev")
    assert criteria["recipients equal the custodian list"] is False
    result = repo.secretctl("cutover-check", "--env", "dev", "--ci-key", str(repo.key_file("ci")))
    assert "missing: ['carol']" in result.output


def test_cutover_marks_sops_as_the_environments_active_provider(migrated: SampleRepo):
    repo = migrated
    env = repo.operator_env(ENV="dev")
    repo.step(MIGRATION_GUIDE, "cutover", env)
    provider = repo.root / "inventories/dev/group_vars/all/preflight_gate.yml"
    assert "preflight_gate_provider: sops" in provider.read_text()
    shown = repo.run(
        ["ansible", "app-dev", "-i", "inventories/dev", "-m", "ansible.builtin.debug",
         "-a", "var=preflight_gate_provider"],
        env, "ansible debug",
    )
    assert shown.returncode == 0, shown.output
    assert '"preflight_gate_provider": "sops"' in shown.output


def test_rollback_to_vault_restores_a_working_playbook_run(migrated: SampleRepo):
    repo = migrated
    sops_only = repo.env(SOPS_AGE_KEY_FILE=str(repo.key_file("alice")))
    run, rendered = repo.playbook("dev", sops_only)
    assert run.returncode == 0 and rendered == repo.expected_rendering("dev"), run.output

    # A secret changed after the cutover survives the rollback.
    new_token = secrets.token_urlsafe(18)
    repo.planted["dev"]["vault_app_api_token_v2"] = new_token
    set_secret = repo.run(
        ["secretctl", "set-secret", "--file", "inventories/dev/group_vars/all/vault.sops.yaml",
         "--key", "vault_app_api_token"],
        repo.operator_env(), "secretctl set-secret", stdin=new_token,
    )
    assert set_secret.returncode == 0, set_secret.output
    repo.planted["dev"]["vault_app_api_token"] = new_token

    repo.step(MIGRATION_GUIDE, "rollback", repo.operator_env(ENV="dev"))
    # other: main.yml and the provider file that the rollback sets back to vault
    assert repo.status("dev") == {"vault": 1, "other": 2}
    assert repo.files("dev", "*.sops.yaml") == []
    vault_file = repo.root / "inventories/dev/group_vars/all/vault.yml"
    assert vault_file.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    assert vault_file.stat().st_mode & 0o777 == 0o600

    # Vault alone (no age key anywhere) renders the same credentials, with the new token.
    vault_only = repo.env(ANSIBLE_VAULT_PASSWORD_FILE=str(repo.vault_password_file))
    run, rendered = repo.playbook("dev", vault_only)
    assert run.returncode == 0, run.output
    assert rendered == repo.expected_rendering("dev")
    # Without the Vault password the deploy cannot read them: the provider really is Vault.
    run, rendered = repo.playbook("dev", sops_only)
    assert run.returncode != 0 and rendered is None
    assert "vault" in run.output.lower()

    rc, criteria = cutover_criteria(repo, "dev")
    assert rc == 1 and not criteria["no Vault or unencrypted secrets files left"]
    assert "rolls back to Ansible Vault" in repo.git("log", "-1", "--format=%s")
