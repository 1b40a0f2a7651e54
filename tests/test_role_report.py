"""The role's deployment report and per-host verdicts with several inventory hosts, run by the
real ansible-playbook: `serial:` batches, the `free` strategy, unreachable hosts (SSH to a
closed port), rejected parameters, a stale report from an earlier run, and the merged JUnit
file read by a real JUnit parser.

The hosts are aliases of this machine (`ansible_connection: local`): each runs the real static
module, and the controller-side merge sees one result per inventory host."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import junitparser

from conftest import ANSIBLE_TIMEOUT_S, REPO_ROOT, venv_tool

NO_HOST_CHECKS = {
    "health_check_disks": None,
    "health_check_memory": None,
    "health_check_load": None,
}


def local_host(**host_vars: Any) -> dict[str, Any]:
    return {"ansible_connection": "local", **NO_HOST_CHECKS, **host_vars}


def unreachable_host(port: int) -> dict[str, Any]:
    """A host whose SSH port refuses connections: Ansible marks it unreachable at once."""
    return {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": port,
        "ansible_ssh_common_args": "-o ConnectTimeout=3 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        **NO_HOST_CHECKS,
    }


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    rows = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if match:
            rows[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return rows


def run_fleet(tmp_path: Path, ansible_env, hosts: dict[str, dict], play_keys: str = "",
              role_vars: dict[str, Any] | None = None, env: dict[str, str] | None = None):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Verify the fleet\n"
        "  hosts: fleet\n"
        "  gather_facts: false\n"
        f"{play_keys}"
        "  roles:\n"
        "    - role: ops/health_check\n"
    )
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(role_vars or {}))
    proc = subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory), str(playbook), "-e", f"@{vars_file}"],
        cwd=REPO_ROOT,
        env={**ansible_env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=ANSIBLE_TIMEOUT_S,
    )
    return proc


def healthy(port: int, **more: Any) -> dict[str, Any]:
    return local_host(health_check_tcp=[{"address": f"127.0.0.1:{port}", "name": "app"}], **more)


def unhealthy(port: int, name: str = "db", **more: Any) -> dict[str, Any]:
    return local_host(health_check_tcp=[{"address": f"127.0.0.1:{port}", "name": name, "timeout": "2s"}], **more)


def test_serial_batches_judge_only_their_own_hosts_and_the_report_covers_every_batch(
    tmp_path, ansible_env, module_binary, tcp_listener, closed_port
):
    report = tmp_path / "report.json"
    hosts = {
        "web1": healthy(tcp_listener),
        "web2": healthy(tcp_listener),
        "web3": unhealthy(closed_port),
        "web4": healthy(tcp_listener),
    }
    proc = run_fleet(tmp_path, ansible_env, hosts, "  serial: 2\n", {"health_check_report_path": str(report)})
    out = proc.stdout

    assert proc.returncode != 0, out
    # Batch 1 (web1, web2) knew nothing of web3/web4 and did not blame them.
    assert "no health_check result" not in out, out
    rows = recap(out)
    assert {h: rows[h]["failed"] for h in hosts} == {"web1": 0, "web2": 0, "web3": 1, "web4": 0}, out
    doc = json.loads(report.read_text())
    assert doc["complete"] is True and doc["hosts_pending"] == 0, doc
    assert {h: e["status"] for h, e in doc["hosts"].items()} == {
        "web1": "pass", "web2": "pass", "web3": "fail", "web4": "pass"}, doc
    assert doc["failed_hosts"] == ["web3"], doc
    assert doc["status"] == "fail" and doc["hosts_pass"] == 3 and doc["hosts_fail"] == 1, doc
    assert [(b["hosts"], b["status"]) for b in doc["batches"]] == [
        (["web1", "web2"], "pass"), (["web3", "web4"], "fail")], doc
    assert doc["stopped_at_batch"] == {"number": 2, "hosts": ["web3"]} and doc["not_deployed"] == [], doc
    # Every field a reader meets is in the schema document.
    schema_doc = (REPO_ROOT / "docs" / "health-summary-schema.md").read_text()
    undocumented = [key for key in doc if f"`{key}`" not in schema_doc]
    assert not undocumented, f"fields missing from docs/health-summary-schema.md: {undocumented}"


def test_a_passing_serial_run_writes_a_complete_pass_report(tmp_path, ansible_env, module_binary, tcp_listener):
    report = tmp_path / "report.json"
    hosts = {f"app{i}": healthy(tcp_listener) for i in range(1, 4)}
    proc = run_fleet(tmp_path, ansible_env, hosts, "  serial: 1\n", {"health_check_report_path": str(report)})

    assert proc.returncode == 0, proc.stdout
    doc = json.loads(report.read_text())
    assert doc["status"] == "pass" and doc["complete"] is True and doc["hosts_pass"] == 3, doc
    assert "Deployment health: pass (fail_on: mandatory): 3 pass of 3 hosts" in proc.stdout, proc.stdout


def test_only_the_unhealthy_hosts_fail_each_with_its_own_message(
    tmp_path, ansible_env, module_binary, tcp_listener, closed_port
):
    report = tmp_path / "report.json"
    hosts = {
        "good": healthy(tcp_listener),
        "bad-db": unhealthy(closed_port, "orders-db"),
        "bad-cache": unhealthy(closed_port, "cache"),
    }
    proc = run_fleet(tmp_path, ansible_env, hosts, role_vars={"health_check_report_path": str(report)})
    out = proc.stdout

    assert proc.returncode != 0, out
    rows = recap(out)
    assert {h: rows[h]["failed"] for h in hosts} == {"good": 0, "bad-db": 1, "bad-cache": 1}, out
    fatal = {m.group(1): m.group(2) for m in re.finditer(r"fatal: \[([^\]]+)\]: FAILED! =>(.*?)(?=\n\S)", out, re.S)}
    assert set(fatal) == {"bad-db", "bad-cache"}, out
    assert "bad-db: tcp:orders-db (cannot connect" in fatal["bad-db"] and "tcp:cache" not in fatal["bad-db"], out
    assert "bad-cache: tcp:cache (cannot connect" in fatal["bad-cache"] and "tcp:orders-db" not in fatal["bad-cache"]
    # The one-line fleet summary leads each host's message.
    fleet = "Deployment health: fail (fail_on: mandatory): 1 pass, 2 fail of 3 hosts; failing: bad-db, bad-cache"
    assert fleet in fatal["bad-db"] and fleet in fatal["bad-cache"], out
    assert json.loads(report.read_text())["failed_hosts"] == ["bad-db", "bad-cache"]


def test_a_run_without_any_result_replaces_an_old_pass_report(tmp_path, ansible_env, module_binary, closed_port):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema_version": 1, "kind": "deployment_health", "status": "pass"}))
    hosts = {"gone1": unreachable_host(closed_port), "gone2": unreachable_host(closed_port)}
    proc = run_fleet(tmp_path, ansible_env, hosts, role_vars={"health_check_report_path": str(report)})

    assert proc.returncode != 0, proc.stdout
    doc = json.loads(report.read_text())
    assert doc["status"] == "fail", doc
    assert {h: e["status"] for h, e in doc["hosts"].items()} == {"gone1": "unreachable", "gone2": "unreachable"}, doc


def test_a_host_with_rejected_parameters_is_an_error_and_not_unreachable(
    tmp_path, ansible_env, module_binary, tcp_listener, closed_port
):
    report = tmp_path / "report.json"
    hosts = {
        "fine": healthy(tcp_listener),
        "typo": local_host(health_check_tcp=["no-port-here"]),
        "gone": unreachable_host(closed_port),
    }
    proc = run_fleet(tmp_path, ansible_env, hosts, role_vars={"health_check_report_path": str(report)})

    doc = json.loads(report.read_text())
    assert doc["hosts"]["typo"]["status"] == "error", doc
    assert "parameter 'tcp[0]': invalid address" in doc["hosts"]["typo"]["msg"], doc
    assert doc["hosts"]["gone"]["status"] == "unreachable", doc
    assert doc["hosts"]["fine"]["status"] == "pass", doc
    assert doc["hosts_error"] == 1 and doc["hosts_unreachable"] == 1, doc
    rows = recap(proc.stdout)
    assert rows["typo"]["failed"] == 1 and rows["fine"]["failed"] == 0 and rows["gone"]["unreachable"] == 1, proc.stdout


def test_every_host_rejected_still_replaces_an_old_pass_report(tmp_path, ansible_env, module_binary):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema_version": 1, "kind": "deployment_health", "status": "pass"}))
    hosts = {"a": local_host(health_check_tcp=["bad"]), "b": local_host(health_check_tcp=["bad"])}
    proc = run_fleet(tmp_path, ansible_env, hosts, role_vars={"health_check_report_path": str(report)})

    assert proc.returncode != 0, proc.stdout
    doc = json.loads(report.read_text())
    assert doc["status"] == "fail" and doc["hosts_error"] == 2, doc


def test_free_strategy_merges_every_host_into_one_report(
    tmp_path, ansible_env, module_binary, tcp_listener, closed_port
):
    report = tmp_path / "report.json"
    hosts = {f"n{i}": healthy(tcp_listener) for i in range(1, 5)}
    hosts["n3"] = unhealthy(closed_port)
    proc = run_fleet(tmp_path, ansible_env, hosts, "  strategy: free\n", {"health_check_report_path": str(report)})

    assert proc.returncode != 0, proc.stdout
    rows = recap(proc.stdout)
    assert {h: rows[h]["failed"] for h in hosts} == {"n1": 0, "n2": 0, "n3": 1, "n4": 0}, proc.stdout
    doc = json.loads(report.read_text())
    assert doc["complete"] is True, doc
    assert {h: e["status"] for h, e in doc["hosts"].items()} == {
        "n1": "pass", "n2": "pass", "n3": "fail", "n4": "pass"}, doc


def test_merged_junit_has_one_testsuite_per_inventory_host(
    tmp_path, ansible_env, module_binary, tcp_listener, closed_port
):
    junit = tmp_path / "junit" / "deployment-health.xml"
    odd_name = "api <v2> & \"edge\" \x01\x0b\ufffe end"
    hosts = {
        "web1": local_host(health_check_tcp=[
            {"address": f"127.0.0.1:{tcp_listener}", "name": odd_name},
            {"address": f"127.0.0.1:{closed_port}", "name": "metrics", "mandatory": False, "timeout": "2s"},
        ]),
        "db1": unhealthy(closed_port, "postgres"),
    }
    proc = run_fleet(tmp_path, ansible_env, hosts, role_vars={
        "health_check_report_path": str(tmp_path / "report.json"),
        "health_check_junit_report_path": str(junit),
    })
    assert junit.exists(), proc.stdout

    xml = junitparser.JUnitXml.fromfile(str(junit))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"web1", "db1"}, proc.stdout
    web1 = {case.name: case for case in suites["web1"]}
    assert len(web1) == 2, web1
    odd = next(name for name in web1 if name.startswith("api <v2> & \"edge\""))
    assert odd.endswith(" end") and "\x01" not in odd, odd
    assert web1[odd].is_passed, web1[odd].result
    # The advisory failure does not fail the build: skipped, with the check's message.
    (advisory,) = web1["metrics"].result
    assert isinstance(advisory, junitparser.Skipped) and "cannot connect" in advisory.message, advisory
    (mandatory,) = list(suites["db1"])[0].result
    assert isinstance(mandatory, junitparser.Failure), mandatory
    assert suites["db1"].failures == 1 and suites["web1"].failures == 0


def test_report_paths_expand_home_and_must_differ(tmp_path, ansible_env, module_binary, tcp_listener):
    home = tmp_path / "home"
    home.mkdir()
    hosts = {"web1": healthy(tcp_listener)}
    proc = run_fleet(tmp_path, ansible_env, hosts, role_vars={
        "health_check_report_path": "~/reports/health.json",
        "health_check_junit_report_path": "$HOME/reports/health.xml",
    }, env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stdout
    assert json.loads((home / "reports" / "health.json").read_text())["status"] == "pass"
    assert (home / "reports" / "health.xml").read_text().startswith("<?xml")

    same = run_fleet(tmp_path, ansible_env, hosts, role_vars={
        "health_check_report_path": str(tmp_path / "same"),
        "health_check_junit_report_path": str(tmp_path / "same"),
    })
    assert same.returncode != 0, same.stdout
    assert "health_check_report_path and health_check_junit_report_path are the same file" in same.stdout
    assert not (tmp_path / "same").exists()
