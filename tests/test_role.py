"""The ops/health_check role run by the real ansible-playbook against localhost
(connection local, gather_facts false), checking real servers on 127.0.0.1."""

from __future__ import annotations

from typing import Any

# Thresholds no machine exceeds, so that the outcome depends only on the servers under test
# and not on how full or busy the machine running the tests is.
RELAXED_HOST_CHECKS: dict[str, Any] = {
    "health_check_disks": [{"path": "/", "max_used_percent": 100, "max_inodes_used_percent": 100}],
    "health_check_memory": {"max_used_percent": 100},
    "health_check_load": {"max_per_cpu": 1000},
}

ONLY_NETWORK_CHECKS: dict[str, Any] = {
    "health_check_disks": None,
    "health_check_memory": None,
    "health_check_load": None,
}


def check_ids(result: dict[str, Any]) -> list[str]:
    return [f"{check['kind']}:{check['name']}" for check in result.get("checks", [])]


def test_role_passes_when_all_checks_pass(run_role, tcp_listener, http_server):
    run = run_role(
        {
            **RELAXED_HOST_CHECKS,
            "health_check_tcp": [{"address": f"127.0.0.1:{tcp_listener}", "name": "app-port"}],
            "health_check_http": [
                {"url": f"{http_server}/healthz", "name": "app-health", "status": 200,
                 "body_contains": "all systems nominal"},
            ],
        }
    )

    assert run.returncode == 0, run.describe()
    result = run.result
    assert result.get("failed") is False, run.describe()
    assert result.get("changed") is False
    assert result["summary"]["status"] == "pass", result
    kinds = {check["kind"] for check in result["checks"]}
    assert {"tcp", "http", "memory", "load"} <= kinds, result["checks"]
    assert any(kind.startswith("disk") for kind in kinds), result["checks"]
    assert {check["status"] for check in result["checks"]} == {"pass"}, result["checks"]
    assert result["summary"]["total"] == len(result["checks"]) == 5
    assert result["summary"]["pass"] == 5
    assert result["summary"]["mandatory_failed"] == []
    # The role's summary task prints one line per check.
    assert "PASS tcp:app-port" in run.output, run.describe()
    assert "PASS http:app-health" in run.output, run.describe()


def test_role_leaves_out_checks_whose_variable_is_null(run_role, tcp_listener):
    run = run_role({**ONLY_NETWORK_CHECKS, "health_check_tcp": [f"127.0.0.1:{tcp_listener}"]})

    assert run.returncode == 0, run.describe()
    assert check_ids(run.result) == [f"tcp:127.0.0.1:{tcp_listener}"], run.result
    assert run.result["summary"]["status"] == "pass"


def test_role_defaults_check_disk_memory_and_load(run_role, tcp_listener):
    # Only a TCP check is given: the role's defaults add disk /, memory and load. Whether they
    # pass depends on this machine, so only their presence is checked.
    run = run_role({"health_check_tcp": [f"127.0.0.1:{tcp_listener}"]})

    assert run.result, f"the role registered no result\n{run.describe()}"
    kinds = [check["kind"] for check in run.result["checks"]]
    assert "memory" in kinds and "load" in kinds and "tcp" in kinds, kinds
    disk_checks = [check for check in run.result["checks"] if check["kind"].startswith("disk")]
    assert [check["name"] for check in disk_checks] == ["/"], run.result["checks"]


def test_failed_mandatory_check_fails_the_play_and_names_the_check(
    run_role, tcp_listener, closed_port
):
    run = run_role(
        {
            **ONLY_NETWORK_CHECKS,
            "health_check_tcp": [
                {"address": f"127.0.0.1:{tcp_listener}", "name": "cache"},
                {"address": f"127.0.0.1:{closed_port}", "name": "orders-db", "timeout": "2s"},
            ],
        }
    )

    assert run.returncode != 0, run.describe()
    # The role fails the play with a per-host list naming the failed check.
    assert "Deployment health: fail (fail_on: mandatory)" in run.output, run.describe()
    assert f"localhost: tcp:orders-db (cannot connect to 127.0.0.1:{closed_port}" in run.output
    assert "orders-db" in run.result["msg"], run.result["msg"]
    assert "cache" not in run.result["msg"], run.result["msg"]
    summary = run.result["summary"]
    assert summary["status"] == "fail"
    assert summary["mandatory_failed"] == ["tcp:orders-db"], summary
    statuses = {check["name"]: check["status"] for check in run.result["checks"]}
    assert statuses == {"cache": "pass", "orders-db": "fail"}, statuses
    # The merged deployment summary was written before the play failed.
    assert run.report["status"] == "fail", run.report
    assert run.report["failed_hosts"] == ["localhost"], run.report
    assert run.report["hosts"]["localhost"]["summary"]["mandatory_failed"] == ["tcp:orders-db"]


def test_fail_on_never_reports_without_failing(run_role, closed_port):
    run = run_role(
        {
            **ONLY_NETWORK_CHECKS,
            "health_check_tcp": [{"address": f"127.0.0.1:{closed_port}", "name": "db"}],
            "health_check_fail_on": "never",
        }
    )

    assert run.returncode == 0, run.describe()
    assert run.report["status"] == "fail", run.report
    assert run.report["should_fail"] is False
    assert run.report["hosts_fail"] == 1


def test_fail_on_any_fails_on_an_advisory_failure(run_role, tcp_listener, closed_port):
    run = run_role(
        {
            **ONLY_NETWORK_CHECKS,
            "health_check_tcp": [
                f"127.0.0.1:{tcp_listener}",
                {"address": f"127.0.0.1:{closed_port}", "name": "metrics", "mandatory": False},
            ],
            "health_check_fail_on": "any",
        }
    )

    assert run.returncode != 0, run.describe()
    assert "Deployment health: warn (fail_on: any)" in run.output, run.describe()
    assert "localhost: tcp:metrics" in run.output, run.describe()


def test_bad_module_parameter_fails_at_once(run_role):
    run = run_role({**ONLY_NETWORK_CHECKS, "health_check_tcp": ["no-port-here"]})

    assert run.returncode != 0, run.describe()
    assert "parameter 'tcp[0]': invalid address" in run.output, run.describe()
    # The host is reported as an error of its own, not as unreachable, and fails alone.
    host = run.report["hosts"]["localhost"]
    assert host["status"] == "error", run.report
    assert "parameter 'tcp[0]': invalid address" in host["msg"], run.report
    assert run.report["status"] == "fail" and run.report["hosts_error"] == 1, run.report
    assert run.report["hosts_unreachable"] == 0, run.report
    assert "localhost                  : ok=" in run.output and "failed=1" in run.output, run.describe()


def test_merged_report_has_every_host_and_is_not_a_change(run_role, tcp_listener):
    run = run_role({**ONLY_NETWORK_CHECKS, "health_check_tcp": [f"127.0.0.1:{tcp_listener}"]})

    assert run.returncode == 0, run.describe()
    report = run.report
    assert report["schema_version"] == 1 and report["kind"] == "deployment_health", report
    assert report["status"] == "pass"
    assert report["hosts_total"] == 1 and report["hosts_pass"] == 1
    assert report["hosts"]["localhost"]["checks"][0]["status"] == "pass"
    # Rewriting the report is not a change: a second converge stays idempotent.
    again = run_role({**ONLY_NETWORK_CHECKS, "health_check_tcp": [f"127.0.0.1:{tcp_listener}"]})
    assert "changed=0" in again.output, again.describe()


def test_failed_advisory_check_only_warns(run_role, tcp_listener, closed_port):
    run = run_role(
        {
            **ONLY_NETWORK_CHECKS,
            "health_check_tcp": [
                {"address": f"127.0.0.1:{tcp_listener}", "name": "app-port"},
                {"address": f"127.0.0.1:{closed_port}", "name": "metrics-exporter",
                 "mandatory": False, "timeout": "2s"},
            ],
        }
    )

    assert run.returncode == 0, run.describe()
    assert run.result.get("failed") is False, run.result
    summary = run.result["summary"]
    assert summary["status"] == "warn", summary
    assert summary["advisory_failed"] == ["tcp:metrics-exporter"], summary
    assert summary["mandatory_failed"] == [], summary
    # Ansible shows the module's warnings; the advisory check is named in one of them.
    warning_lines = [line for line in run.output.splitlines() if "WARNING" in line]
    assert any("metrics-exporter" in line for line in warning_lines), run.describe()


def test_check_mode_still_runs_the_checks(run_role, http_server, closed_port):
    run = run_role(
        {
            **ONLY_NETWORK_CHECKS,
            "health_check_http": [f"{http_server}/healthz"],
            "health_check_tcp": [
                {"address": f"127.0.0.1:{closed_port}", "name": "down", "mandatory": False},
            ],
        },
        "--check",
    )

    assert run.returncode == 0, run.describe()
    statuses = {f"{c['kind']}:{c['name']}": c["status"] for c in run.result.get("checks", [])}
    # Real outcomes in check mode: the HTTP server answered, the closed port refused.
    assert statuses == {f"http:{http_server}/healthz": "pass", "tcp:down": "fail"}, run.describe()
    assert run.result["summary"]["advisory_failed"] == ["tcp:down"]
    assert run.result.get("changed") is False


def test_failed_mandatory_check_fails_in_check_mode_too(run_role, closed_port):
    run = run_role(
        {**ONLY_NETWORK_CHECKS, "health_check_tcp": [f"127.0.0.1:{closed_port}"]}, "--check"
    )

    assert run.returncode != 0, run.describe()
    assert run.result["summary"]["mandatory_failed"] == [f"tcp:127.0.0.1:{closed_port}"]


def test_role_rejects_a_wrongly_typed_variable(run_role):
    # meta/argument_specs.yml is enforced by Ansible before the module runs.
    run = run_role({**ONLY_NETWORK_CHECKS, "health_check_tcp": {"address": "127.0.0.1:1"}})

    assert run.returncode != 0, run.describe()
    assert "health_check_tcp" in run.output, run.describe()
    assert run.result == {}, "the module must not have run"
