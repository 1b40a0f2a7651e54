"""secrets_gate and paths: a relative `--sops-config`/`sops_config` is read where it says
(the working directory on the command line, the first scanned directory in the module),
`*.sops.yaml`/`*.sops.json` secrets files are held to `.sops.yaml` coverage like any other, and a
finding's fingerprint does not depend on how the repository was named on the command line, nor a
`recipients` rule's verdict on which of its directories was scanned."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_helpers import run_module, scan  # noqa: E402
from test_secrets_gate_sops import age_keypair, encrypt  # noqa: E402

PLANTED = 'db_password: "Xk9fjqWpL2zQ8rTaVb"\n'


def sops_repo(tmp_path: Path) -> Path:
    """A repository with one SOPS file under inventories/prod and a .sops.yaml whose only rule
    covers inventories/prod/ (relative to the .sops.yaml, as sops reads it)."""
    repo = tmp_path / "repo"
    group_vars = repo / "inventories" / "prod" / "group_vars"
    group_vars.mkdir(parents=True)
    recipient = age_keypair(tmp_path / "key.txt")
    encrypt(group_vars, "secrets.yml", "db_password: Qz8-mP2q-R7tY\n", recipient)
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^inventories/prod/.*\n    age: {recipient}\n")
    return repo


def coverage_findings(report: dict) -> list[str]:
    return [f["file"] for f in report["findings"] if f["rule"] == "sops-coverage"]


def test_a_relative_sops_config_on_the_command_line_is_read_from_the_working_directory(tmp_path: Path):
    repo = sops_repo(tmp_path)

    from_repo = scan(".", "--provider", "sops", "--sops-config", ".sops.yaml", "--format", "json", cwd=repo)
    from_parent = scan("repo", "--provider", "sops", "--sops-config", "repo/.sops.yaml", "--format", "json",
                       cwd=tmp_path)

    for run in (from_repo, from_parent):
        assert run.returncode == 0, run.output
        assert coverage_findings(json.loads(run.stdout)) == [], run.stdout
    # The rule really is applied: a file it does not cover is a finding.
    dev = repo / "inventories" / "dev" / "group_vars"
    dev.mkdir(parents=True)
    (dev / "secrets.yml").write_text((repo / "inventories/prod/group_vars/secrets.yml").read_text())
    run = scan(".", "--provider", "sops", "--sops-config", ".sops.yaml", "--format", "json", cwd=repo)
    assert run.returncode == 1 and coverage_findings(json.loads(run.stdout)) == [
        "inventories/dev/group_vars/secrets.yml"], run.stdout


def test_a_relative_sops_config_in_the_module_is_read_from_the_first_scanned_directory(tmp_path: Path):
    repo = sops_repo(tmp_path)

    result = run_module({"paths": [str(repo)], "provider": "sops", "sops_config": ".sops.yaml"}, tmp_path)

    assert result["failed"] is False and coverage_findings(result) == [], result
    result = run_module({"paths": [str(repo)], "provider": "sops", "sops_config": "missing.yaml"}, tmp_path)
    assert result["failed"] and "sops_config" in result["msg"] and str(repo / "missing.yaml") in result["msg"], result


def test_sops_named_secrets_files_are_held_to_sops_yaml_coverage(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    recipient = age_keypair(tmp_path / "key.txt")
    encrypt(repo, "app.sops.yaml", "api_token: Qz8-mP2q-R7tY\n", recipient)
    encrypt(repo, "app.sops.json", json.dumps({"api_token": "Qz8-mP2q-R7tY"}), recipient)
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^inventories/.*\n    age: {recipient}\n")

    uncovered = json.loads(scan(str(repo), "--provider", "sops", "--format", "json").stdout)

    assert sorted(Path(f).name for f in coverage_findings(uncovered)) == ["app.sops.json", "app.sops.yaml"], uncovered
    (repo / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: \\.sops\\.(yaml|json)$\n    age: {recipient}\n")
    covered = scan(str(repo), "--provider", "sops", "--format", "json")
    assert covered.returncode == 0 and coverage_findings(json.loads(covered.stdout)) == [], covered.output


def fingerprints(run) -> list[str]:
    assert run.returncode == 1, run.output
    return [f["fingerprint"] for f in json.loads(run.stdout)["findings"]]


def test_a_fingerprint_is_the_same_however_the_repository_is_named(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "group_vars").mkdir(parents=True)
    (repo / "group_vars" / "all.yml").write_text(PLANTED)

    named = {
        "repo/": fingerprints(scan("repo/", "--format", "json", cwd=tmp_path)),
        "./": fingerprints(scan("./", "--format", "json", cwd=repo)),
        "absolute": fingerprints(scan(str(repo), "--format", "json", cwd="/")),
    }
    assert len(set(map(tuple, named.values()))) == 1 and len(named["./"]) == 1, named
    # Outside a repository the scanned directory is the base: a scan of group_vars alone differs.
    assert fingerprints(scan("group_vars", "--format", "json", cwd=repo)) != named["./"]
    # In a git checkout (or beside .sops.yaml) the repository root is the base, so a scan of one
    # of its directories or files gives the same fingerprint as a scan of the whole repository.
    (repo / ".git").mkdir()
    whole = fingerprints(scan(str(repo), "--format", "json"))
    part = fingerprints(scan("group_vars", "--format", "json", cwd=repo))
    assert whole == part == fingerprints(scan(str(repo / "group_vars" / "all.yml"), "--format", "json")), (whole, part)
    assert whole == named["./"]
    # A baseline written from one spelling accepts the finding under another.
    baseline = tmp_path / "baseline.json"
    scan(".", "--format", "json", "--output", str(baseline), cwd=repo)
    accepted = scan(str(repo / "group_vars"), "--format", "json", "--baseline", str(baseline))
    assert accepted.returncode == 0 and json.loads(accepted.stdout)["baselined"] == 1, accepted.output


def recipient_verdict(result: dict) -> list[tuple[str, str, str]]:
    return sorted((f["rule"], f["fingerprint"], f["message"]) for f in result["findings"]
                  if f["rule"].endswith("-recipient"))


def test_a_recipients_path_regex_gives_one_verdict_for_the_repository_and_its_subdirectory(tmp_path: Path):
    repo = sops_repo(tmp_path)  # inventories/prod/group_vars/secrets.yml, encrypted to key.txt
    custodian = age_keypair(tmp_path / "custodian.txt")
    departed = re.search(r"age1[0-9a-z]+", (tmp_path / "key.txt").read_text()).group(0)
    recipients = [{"path_regex": "^inventories/prod/", "age": [custodian]}]

    def verdicts() -> dict[str, list[tuple[str, str, str]]]:
        return {
            name: recipient_verdict(run_module({"paths": [str(path)], "recipients": recipients}, tmp_path))
            for name, path in {
                "repository": repo,
                "subdirectory": repo / "inventories" / "prod",
                "file": repo / "inventories" / "prod" / "group_vars" / "secrets.yml",
            }.items()
        }

    # Beside .sops.yaml (no git checkout) and, without .sops.yaml, in a git checkout: the path
    # the rule sees is relative to the repository root however the repository is scanned.
    beside_sops_yaml = verdicts()
    (repo / ".sops.yaml").unlink()
    (repo / ".git").mkdir()
    in_git_checkout = verdicts()

    for seen in (beside_sops_yaml, in_git_checkout):
        whole = seen["repository"]
        assert [rule for rule, _, _ in whole] == ["missing-recipient", "unexpected-recipient"], seen
        assert any(departed in message for _, _, message in whole) and any(custodian in m for _, _, m in whole)
        assert seen["subdirectory"] == whole and seen["file"] == whole, seen
    assert beside_sops_yaml["repository"] == in_git_checkout["repository"]
