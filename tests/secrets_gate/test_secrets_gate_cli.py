"""The secrets_gate command line and module protocol, run as the installed binary: exit codes,
formats (text, JSON, SARIF for code scanning), bad arguments, baselines, files it must skip or
line-scan, key files and data-key ages. Every captured byte is searched for the planted secrets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_helpers import EXPECTED_LINES, make_planted_repo, run_module, scan  # noqa: E402


def findings_of(text: str) -> list[dict]:
    return json.loads(text)["findings"]


def test_planted_secrets_are_found_on_their_lines_and_never_printed(tmp_path: Path):
    repo = make_planted_repo(tmp_path / "repo")
    for fmt in ("text", "json", "sarif"):
        run = scan(".", "--format", fmt, "--show-hint", cwd=repo.root)
        assert run.returncode == 1, run.output
        repo.assert_no_secret_in(run.stdout, run.stderr)
    run = scan(".", "--format", "json", cwd=repo.root)
    found = {(f["file"], f["line"]) for f in findings_of(run.stdout)}
    assert found == EXPECTED_LINES, found
    assert all(len(f["fingerprint"]) == 16 for f in findings_of(run.stdout))


def test_output_is_written_atomically_and_only_a_summary_is_printed(tmp_path: Path):
    repo = make_planted_repo(tmp_path / "repo")
    out = tmp_path / "report.sarif"
    run = scan(str(repo.root), "--format", "sarif", "--output", str(out))
    assert run.returncode == 1
    assert run.stdout.count("\n") == 1 and run.stdout.startswith("secrets_gate: 6 findings in 5 files"), run.stdout
    repo.assert_no_secret_in(out.read_bytes(), run.output)
    assert not list(tmp_path.glob(".report.sarif*")), "temp file left behind"


def test_sarif_has_what_github_code_scanning_needs(tmp_path: Path):
    repo = make_planted_repo(tmp_path / "repo")
    doc = json.loads(scan(".", "--format", "sarif", cwd=repo.root).stdout)
    assert doc["version"] == "2.1.0" and "sarif" in doc["$schema"]
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "secrets_gate" and driver["version"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    assert all(r["shortDescription"]["text"] for r in driver["rules"])
    assert len(run["results"]) == 6
    for result in run["results"]:
        assert result["ruleId"] == rule_ids[result["ruleIndex"]]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert not uri.startswith("/") and ".." not in uri and "\\" not in uri
        assert location["region"]["startLine"] >= 1
        assert result["partialFingerprints"]


def test_a_clean_tree_exits_zero(tmp_path: Path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "db_password: \"{{ vault_db_password }}\"\npassword_min_length: 12\nvault_password_file: ~/.vault_pass\n"
        "image: registry.example.org/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    )
    run = scan(str(tmp_path))
    assert run.returncode == 0, run.output
    assert "0 findings" in run.stdout


def test_bad_arguments_exit_two_and_name_the_parameter(tmp_path: Path):
    cases = [
        (["--format", "xml", str(tmp_path)], "--format"),
        ([str(tmp_path / "missing")], "missing"),
        ([str(tmp_path), "--baseline", str(tmp_path / "nope.json")], "--baseline"),
        ([str(tmp_path), "--provider", "kms"], "--provider"),
        ([str(tmp_path), "--max-data-key-age", "soon"], "--max-data-key-age"),
        ([str(tmp_path), "--bogus"], "--bogus"),
        ([], "PATH"),
    ]
    for args, named in cases:
        run = scan(*args)
        assert run.returncode == 2, (args, run.output)
        assert named in run.stderr, (args, run.stderr)


def test_the_module_protocol_names_bad_parameters(tmp_path: Path):
    result = run_module({"paths": [str(tmp_path)], "provider": "kms"}, tmp_path)
    assert result["failed"] and "parameter 'provider'" in result["msg"]
    result = run_module({"paths": [str(tmp_path)], "colour": "red", "_ansible_check_mode": False}, tmp_path)
    assert result["failed"] and "unsupported parameter 'colour'" in result["msg"]
    result = run_module({"paths": [str(tmp_path)], "recipients": [{"path_regex": "("}]}, tmp_path)
    assert result["failed"] and "recipients[0].path_regex" in result["msg"]
    result = run_module({}, tmp_path)
    assert result["failed"] and "paths" in result["msg"]


def test_a_baseline_of_a_previous_report_accepts_its_findings(tmp_path: Path):
    repo = make_planted_repo(tmp_path / "repo")
    report = tmp_path / "baseline.json"
    scan(".", "--format", "json", "--output", str(report), cwd=repo.root)
    baseline_text = report.read_text()
    repo.assert_no_secret_in(baseline_text)
    run = scan(".", "--format", "json", "--baseline", str(report), cwd=repo.root)
    assert run.returncode == 0, run.output
    doc = json.loads(run.stdout)
    assert doc["baselined"] == 6
    assert all(f["plaintext"] == 0 for f in doc["migration"]["files"])


def test_inline_allow_comments_accept_one_line(tmp_path: Path):
    (tmp_path / "vars.yml").write_text(
        "test_password: Fixture-Only-9  # secrets_gate: allow test fixture\nother_password: Second-One-77\n"
    )
    doc = json.loads(scan(str(tmp_path), "--format", "json").stdout)
    assert doc["allowed"] == 1 and [f["line"] for f in doc["findings"]] == [2]


def test_gitignored_binary_large_and_broken_files_are_reported_not_passed(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("ignored.yml\n")
    (tmp_path / "ignored.yml").write_text("db_password: Ignored-Pass-42\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01password=Zk8mP2qR7tY4wX9c\x00")
    (tmp_path / "big.yml").write_text("x: " + "a" * 2_000_000 + "\n")
    (tmp_path / "broken.yml").write_text("x: [\napi_password: Broken-Pass-42\n")
    (tmp_path / "deep.yml").write_text("[" * 200_000 + "]" * 200_000 + "\n")
    run = scan(str(tmp_path), "--format", "json")
    doc = json.loads(run.stdout)
    skipped = {Path(s["file"]).name: s["reason"] for s in doc["skipped"]}
    assert "binary" in skipped["blob.bin"] and "max_file_size" in skipped["big.yml"]
    fallback = {Path(f["file"]).name for f in doc["fallback"]}
    assert fallback == {"broken.yml", "deep.yml"}
    assert [(Path(f["file"]).name, f["line"]) for f in doc["findings"]] == [("broken.yml", 2)]


def test_key_files_must_be_private_and_outside_the_repository(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ansible.cfg").write_text("[defaults]\nvault_password_file = ../vault_pass\n")
    outside = tmp_path / "vault_pass"
    outside.write_text("x\n")
    outside.chmod(0o644)
    inside = repo / "age.key"
    inside.write_text("# public key: age1...\n")
    inside.chmod(0o600)
    doc = json.loads(scan(str(repo), "--format", "json", "--key-file", str(inside)).stdout)
    rules = sorted((Path(f["file"]).name, f["rule"]) for f in doc["findings"])
    assert rules == [("age.key", "key-file-in-repo"), ("vault_pass", "key-file-permissions")], rules
    outside.chmod(0o600)
    doc = json.loads(scan(str(repo), "--format", "json").stdout)
    assert doc["findings"] == []


def test_a_data_key_23_hours_old_is_said_in_hours(tmp_path: Path):
    from datetime import datetime, timedelta, timezone

    modified = (datetime.now(timezone.utc) - timedelta(hours=23, minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "s.sops.yaml").write_text(
        "password: ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]\nsops:\n"
        "    age:\n        - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"
        f"    lastmodified: \"{modified}\"\n    mac: ENC[AES256_GCM,data:m,iv:x,tag:y,type:str]\n    version: 3.11.0\n"
    )
    run = scan(str(tmp_path), "--format", "json", "--max-data-key-age", "1h")
    messages = [f["message"] for f in json.loads(run.stdout)["findings"]]
    assert len(messages) == 1 and "23 hours old" in messages[0] and "0 days" not in messages[0], messages
    assert scan(str(tmp_path), "--max-data-key-age", "90d").returncode == 0


def test_help_is_printed_for_the_command_and_the_module():
    from gate_helpers import gate_binary

    for argv in (["scan", "--help"], ["--help"]):
        proc = subprocess.run([str(gate_binary()), *argv], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and "secrets_gate" in proc.stdout


def test_unreadable_directories_fail_closed_in_enforce_mode(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.yml").write_text("a: 1\n")
    if os.geteuid() == 0:
        # root reads everything: a dangling path argument is the I/O error left to test.
        assert scan(str(tmp_path / "gone")).returncode == 2
        return
    locked.chmod(0)
    try:
        run = scan(str(tmp_path), "--format", "json")
        assert run.returncode == 1 and "unreadable-file" in run.stdout
    finally:
        locked.chmod(stat.S_IRWXU)


def test_check_mode_reports_the_findings_and_writes_no_report(tmp_path: Path):
    repo = make_planted_repo(tmp_path / "repo")
    out = tmp_path / "report.json"
    args = {"paths": [str(repo.root)], "output": str(out), "_ansible_check_mode": True, "show_hint": True}
    result = run_module(args, tmp_path)
    assert result["failed"] and result["output_written"] is False and not out.exists()
    assert len(result["findings"]) == 6 and all(f["hint"].endswith("****") for f in result["findings"])
    repo.assert_no_secret_in(json.dumps(result))
    args["_ansible_check_mode"] = False
    result = run_module(args, tmp_path)
    assert result["output_written"] is True and result["changed"] is True
    repo.assert_no_secret_in(out.read_bytes())
    assert json.loads(out.read_text())["migration"]["environments"]["prod"]["plaintext"] == 5
