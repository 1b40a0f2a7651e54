"""playbooks/preflight_assertions.yml run by the real ansible-playbook in front of a sample
deploy: secrets_gate on the controller with the environment's active provider stops the
deploy, before any host is touched, on a planted secret, a hand-edited SOPS file, a missing
.sops.yaml rule and a Vault file after the cutover; and it lets the clean inventory through in
every phase of the migration. No planted value appears in any output, -vvv included."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from .sample_repo import SampleRepo, make_sample_repo, migrate, use_gate

DEV_VARS = "inventories/dev/group_vars/all"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    repo = use_gate(make_sample_repo(tmp_path_factory.mktemp("preflight")))
    migrate(repo, "dev")
    return repo


@pytest.fixture
def repo(migrated: SampleRepo, tmp_path: Path) -> SampleRepo:
    """dev migrated to SOPS (provider either), staging and prod on Vault."""
    return migrated.clone(tmp_path)


def deploy(repo: SampleRepo, env_name: str, *extra: str):
    rendered = repo.output_dir / f"app-{env_name}.ini"
    rendered.unlink(missing_ok=True)
    run = repo.run(
        ["ansible-playbook", "-i", f"inventories/{env_name}", "playbooks/deploy.yml", *extra],
        repo.operator_env(), f"deploy {env_name}",
    )
    return run, rendered.exists()


def preflight(repo: SampleRepo, env_name: str):
    """The preflight on its own, as CI runs it before the deploy: only host_group_vars loads
    the inventory, so no age key is needed and sops never parses a hand-edited file (sops'
    own error message would show the offending value)."""
    env = repo.env(ANSIBLE_VARS_ENABLED="host_group_vars",
                   ANSIBLE_VAULT_PASSWORD_FILE=str(repo.vault_password_file))
    return repo.run(
        ["ansible-playbook", "-i", f"inventories/{env_name}", "playbooks/preflight_assertions.yml"],
        env, f"preflight {env_name}",
    )


def assert_stopped_by_the_gate(run, rendered: bool, rule: str, file: str) -> None:
    assert run.returncode != 0, run.output
    assert not rendered, "the deploy went on to the hosts after a failed preflight"
    assert "TASK [Write the credentials file]" not in run.output
    assert re.search(rf"secrets_gate: \d+ findings? in .*{rule}", run.output), run.output
    assert file in run.output


def test_the_preflight_alone_needs_no_age_key(repo: SampleRepo):
    for env_name in ("dev", "staging"):
        run = preflight(repo, env_name)
        assert run.returncode == 0, run.output


def test_the_clean_inventory_passes_in_every_phase_of_the_migration(repo: SampleRepo):
    # staging: not touched (default provider vault); dev: being migrated (either)
    for env_name in ("staging", "dev"):
        run, rendered = deploy(repo, env_name)
        assert run.returncode == 0 and rendered, run.output
        assert "TASK [Scan the inventory for plaintext secrets]" in run.output

    # dev after the cutover (sops)
    assert repo.secretctl("provider", "--env", "dev", "sops").returncode == 0
    run, rendered = deploy(repo, "dev")
    assert run.returncode == 0 and rendered, run.output


def test_a_planted_plaintext_secret_stops_the_deploy_and_never_shows(repo: SampleRepo):
    planted = "Raven_Meadow" + str(secrets.randbelow(9000) + 1000) + "*"
    repo.planted["dev"]["planted_smtp_password"] = planted
    main = repo.root / DEV_VARS / "main.yml"
    main.write_text(main.read_text() + f"app_smtp_password: {planted}\n")

    run, rendered = deploy(repo, "dev", "-vvv")  # repo.run searched all of -vvv for the value
    assert_stopped_by_the_gate(run, rendered, "credential-value", "main.yml")
    assert "app_smtp_password" in run.output


def test_a_hand_edited_sops_file_stops_the_deploy(repo: SampleRepo):
    planted = secrets.token_urlsafe(20)
    repo.planted["dev"]["hand_edited"] = planted
    sops_file = repo.root / DEV_VARS / "vault.sops.yaml"
    text = sops_file.read_text()
    edited = re.sub(r"^vault_app_api_token: ENC\[.*\]$", f"vault_app_api_token: {planted}", text, flags=re.M)
    assert edited != text
    sops_file.write_text(edited)

    run = preflight(repo, "dev")
    assert run.returncode != 0, run.output
    assert re.search(r"secrets_gate: 1 finding in 1 file \(sops-unencrypted-value: 1\)", run.output), run.output
    assert "vault.sops.yaml" in run.output and "vault_app_api_token" in run.output


def test_a_missing_sops_rule_stops_the_deploy(repo: SampleRepo):
    # staging's migration opened (provider either) before any custodian or rule exists for it
    assert repo.secretctl("provider", "--env", "staging", "either").returncode == 0
    assert "inventories/staging" not in (repo.root / ".sops.yaml").read_text()
    run, rendered = deploy(repo, "staging")
    assert_stopped_by_the_gate(run, rendered, "sops-coverage", "vault.yml")
    assert "creation_rules" in run.output


def test_a_vault_file_after_the_cutover_stops_the_deploy(repo: SampleRepo):
    assert repo.secretctl("provider", "--env", "staging", "sops").returncode == 0
    run, rendered = deploy(repo, "staging")
    assert_stopped_by_the_gate(run, rendered, "provider-mismatch", "vault.yml")
