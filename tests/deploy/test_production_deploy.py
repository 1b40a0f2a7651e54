"""The production deploy (playbooks/production_deploy.yml) end to end: real ansible-playbook
over SSH against three python-flavoured systemd-nspawn machines, booted once for this file.

In order (one file stays on one pytest worker, in this order, and each test reads the
machines as the one before left them):

1. a plaintext secret planted in the inventory stops the deploy at the preflight: no machine
   gets the app, and the artifact says the run stopped at the preflight with every host not
   deployed; earlier runs' artifacts are kept up to `deploy_keep_runs`;
2. the healthy deploy (core roles, app, health checks) in one batch passes, through
   scripts/smoke_test_production.sh, which checks the artifact too; the app answers on every
   machine;
3. a rolling app deploy of a new version (serial 1, core roles skipped) in which the second host's /healthz fails stops
   at batch 2: the run fails naming that host and the http check, the artifact names the batch
   and the host, and the third host is listed as not deployed and still runs the old version.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, venv_tool
from testbed.machines import Machine, free_port, inventory_line, ssh_command, ssh_fleet

PLAYBOOK = REPO_ROOT / "playbooks" / "production_deploy.yml"
SMOKE = REPO_ROOT / "scripts" / "smoke_test_production.sh"
PLAYBOOK_TIMEOUT_S = 900
APP_UNIT = "/etc/systemd/system/fleet-app.service"


def on(machine: Machine, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_command(machine, command), capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def fleet():
    with ssh_fleet(3, prefix="deploy", flavour="python") as machines:
        yield machines


@pytest.fixture(scope="module")
def ports(fleet) -> dict[str, int]:
    # nspawn machines share the host's network namespace: one app port per machine.
    return {machine.name: free_port() for machine in fleet}


@pytest.fixture(scope="module")
def deploy_env(ansible_env):
    return {
        **ansible_env,
        "ANSIBLE_PIPELINING": "1",
        # CI machines are small and busy: SSH handshakes may be slow; retry a dropped one.
        "ANSIBLE_TIMEOUT": "30",
        "ANSIBLE_SSH_RETRIES": "3",
    }


def write_inventory(directory: Path, fleet, ports, host_vars: dict | None = None,
                    group_vars: str = "") -> Path:
    """An inventory directory named like an environment: hosts.ini and group_vars/all.yml."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "group_vars").mkdir(exist_ok=True)
    lines = ["[fleet]"]
    for machine in fleet:
        extra = " ".join(f"{k}={v}" for k, v in (host_vars or {}).get(machine.name, {}).items())
        lines.append(f"{inventory_line(machine)} app_port={ports[machine.name]} {extra}".rstrip())
    (directory / "hosts.ini").write_text("\n".join(lines) + "\n")
    (directory / "group_vars" / "all.yml").write_text(
        "---\n# A busy CI machine may need longer than sshd's default for a handshake.\n"
        "ssh_hardening_login_grace_time: 120\n" + group_vars
    )
    return directory / "hosts.ini"


def deploy(env, inventory: Path, artifacts: Path, *extra: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    run = subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory), str(PLAYBOOK),
         "-e", f"deploy_artifact_dir={artifacts}", *extra],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=PLAYBOOK_TIMEOUT_S,
    )
    print(f"deploy {' '.join(extra)}: rc={run.returncode} in {time.monotonic() - started:.1f} s")
    return run


def latest(artifacts: Path) -> dict:
    link = artifacts / "latest.json"
    assert link.is_symlink(), f"no latest link in {artifacts}: {list(artifacts.rglob('*'))}"
    report = json.loads(link.read_text())
    assert Path(os.readlink(link)).name == f"{report['run_id']}.json"
    return report


def test_a_planted_plaintext_secret_stops_the_deploy_before_any_host_is_touched(
        fleet, ports, deploy_env, tmp_path):
    secret = "Zq8v" + "W2rT9xLp4NcY7bKd"
    inventory = write_inventory(tmp_path / "prod", fleet, ports,
                                group_vars=f"database_password: {secret}\n")
    artifacts = tmp_path / "artifacts"
    runs = [deploy(deploy_env, inventory, artifacts, "-e", "deploy_keep_runs=2") for _ in range(3)]

    for run in runs:
        assert run.returncode != 0, run.stdout[-3000:]
        assert "Scan the inventory for plaintext secrets" in run.stdout
        assert "database_password" in run.stdout
        assert secret not in run.stdout, "the planted secret was printed"
        assert "Health-gated rollout" not in run.stdout, run.stdout[-3000:]
    for machine in fleet:
        assert on(machine, f"test -e {APP_UNIT}").returncode == 1, f"{machine.name} was changed"
        assert on(machine, "test -e /opt/fleet-app").returncode == 1, f"{machine.name} was changed"

    report = latest(artifacts)
    assert report["stage"] == "preflight"
    assert report["status"] == "fail" and not report["complete"]
    assert report["not_deployed"] == [machine.name for machine in fleet]
    assert report["deployment"]["inventory"] == "prod"
    assert report["deployment"]["git_commit"]
    assert secret not in (artifacts / "latest.json").read_text()
    # Three runs, two kept: the newest ones, latest among them.
    kept = sorted(p.name for p in (artifacts / "runs").glob("*.json"))
    assert len(kept) == 2 and f"{report['run_id']}.json" in kept


def test_a_healthy_deploy_passes_and_writes_the_artifact(fleet, ports, deploy_env, tmp_path):
    inventory = write_inventory(tmp_path / "staging", fleet, ports)
    artifacts = tmp_path / "artifacts"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.strip()
    started = time.monotonic()
    # One batch of three: the core roles converge the machines side by side (the batches
    # themselves are the rolling test's subject).
    run = subprocess.run(
        [str(SMOKE), "--inventory", str(inventory), "--serial", "3", "--artifact-dir", str(artifacts)],
        cwd=REPO_ROOT, env=deploy_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=PLAYBOOK_TIMEOUT_S,
    )
    print(f"smoke test: rc={run.returncode} in {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout[-6000:]
    assert "artifact OK" in run.stdout

    report = latest(artifacts)
    names = [machine.name for machine in fleet]
    assert report["status"] == "pass" and report["complete"] and report["stage"] == "rollout"
    assert [b["hosts"] for b in report["batches"]] == [names]
    assert all(b["status"] == "pass" for b in report["batches"])
    assert report["stopped_at_batch"] is None and report["not_deployed"] == []
    deployment = report["deployment"]
    assert deployment["git_commit"] == commit
    assert deployment["inventory"] == "staging"
    assert deployment["started_at"] <= deployment["ended_at"]
    for name in names:
        checks = {(c["kind"], c["name"]): c["status"] for c in report["hosts"][name]["checks"]}
        assert checks[("http", "app-healthz")] == "pass"
        assert checks[("tcp", "app-port")] == "pass"
        assert checks[("systemd", "fleet-app.service")] == "pass"
    for machine in fleet:
        page = on(machine, f"python3 -c \"import urllib.request as u; "
                           f"print(u.urlopen('http://127.0.0.1:{ports[machine.name]}/').read().decode())\"")
        assert "fleet-app is running" in page.stdout, page.stderr


def test_a_rolling_deploy_stops_at_the_batch_whose_health_endpoint_fails(
        fleet, ports, deploy_env, tmp_path):
    names = [machine.name for machine in fleet]
    inventory = write_inventory(tmp_path / "production", fleet, ports,
                                host_vars={names[1]: {"app_health_status": 503}})
    artifacts = tmp_path / "artifacts"
    # The app alone (--skip-tags core): the core roles converged in the healthy deploy.
    run = deploy(deploy_env, inventory, artifacts, "--skip-tags", "core", "-e", "deploy_serial=1",
                 "-e", "deploy_health_wait_timeout=5s", "-e", "app_version=2.0.0")

    assert run.returncode != 0, run.stdout[-3000:]
    assert f"{names[1]}: http:app-healthz" in run.stdout, run.stdout[-4000:]
    report = latest(artifacts)
    assert report["status"] == "fail"
    assert report["failed_hosts"] == [names[1]]
    assert report["stopped_at_batch"] == {"number": 2, "hosts": [names[1]]}
    assert [b["status"] for b in report["batches"]] == ["pass", "fail"]
    assert report["not_deployed"] == [names[2]]
    assert report["hosts"][names[2]]["status"] == "pending"
    assert any(f.startswith(f"{names[1]}: ") and "http:app-healthz" in f for f in report["failures"])
    # The first host got the new version, the untouched third still runs the old one.
    versions = [json.loads(on(m, "cat /etc/fleet-app/app.json").stdout)["version"] for m in fleet]
    assert versions == ["2.0.0", "2.0.0", "1.0.0"]
