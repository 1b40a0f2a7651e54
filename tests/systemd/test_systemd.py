"""The systemd checks against a real systemd (booted in systemd-nspawn), run through the real
module binary, as Ansible runs it."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from typing import Any

from testbed import machines as nspawn_machines


def run_checks(run_module, bus: str, **params: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = run_module({"systemd_bus": bus, **params}).single_json_object()
    return result, result.get("checks", [])


def only_check(run_module, bus: str, **params: Any) -> dict[str, Any]:
    result, checks = run_checks(run_module, bus, **params)
    assert len(checks) == 1, result
    assert checks[0]["kind"] == "systemd", checks[0]
    return checks[0]


def test_active_unit_passes(run_module, systemd_bus):
    result, checks = run_checks(run_module, systemd_bus, systemd=["hc-active.service"])
    assert result["failed"] is False, result
    (check,) = checks
    assert (check["kind"], check["name"], check["status"]) == (
        "systemd", "hc-active.service", "pass"), check
    assert re.fullmatch(r"hc-active\.service is active \(running\), 0 restarts, up [\d.]+m?s",
                        check["message"]), check["message"]
    assert check["details"]["unit_file_state"] == "enabled"
    assert check["details"]["n_restarts"] == 0


def test_failed_unit_reports_sub_state_and_result(run_module, systemd_bus):
    result, (check,) = run_checks(run_module, systemd_bus, systemd=["hc-failing.service"])
    assert result["failed"] is True
    assert check["status"] == "fail"
    assert check["message"] == (
        "hc-failing.service is failed (sub-state failed, result exit-code), expected active "
        "(0 restarts, not up)"), check["message"]


def test_inactive_unit(run_module, systemd_bus):
    check = only_check(run_module, systemd_bus, systemd=["hc-idle.service"])
    assert check["status"] == "fail"
    assert check["message"] == (
        "hc-idle.service is inactive (sub-state dead, result success), expected active "
        "(0 restarts, not up)"), check["message"]
    check = only_check(run_module, systemd_bus,
                       systemd=[{"unit": "hc-idle.service", "state": "inactive"}])
    assert check["status"] == "pass", check
    assert check["message"] == "hc-idle.service is inactive (dead), 0 restarts, not up", check["message"]


def test_missing_unit_is_not_found(run_module, systemd_bus):
    check = only_check(run_module, systemd_bus, systemd=["hc-no-such-unit.service"])
    assert check["status"] == "fail"
    assert check["message"] == "hc-no-such-unit.service not found (load state not-found)"


def test_masked_unit(run_module, systemd_bus):
    check = only_check(run_module, systemd_bus, systemd=["hc-masked.service"])
    assert check["status"] == "fail"
    assert check["message"].startswith("hc-masked.service is masked and inactive"), check
    check = only_check(run_module, systemd_bus, systemd=[
        {"unit": "hc-masked.service", "state": "inactive", "enabled": False}])
    assert check["status"] == "pass", check


def test_restart_loop_exceeds_max_restarts(run_module, systemd_bus):
    # Restart loops are judged by `flapping` (tests/systemd/test_systemd_flapping.py); ignored
    # here so that max_restarts alone decides.
    spec = {"unit": "hc-restarting.service", "state": "any", "max_restarts": 1, "flapping": "ignore"}
    deadline = time.monotonic() + 15
    while True:
        check = only_check(run_module, systemd_bus, systemd=[spec])
        if check["status"] == "fail" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert check["status"] == "fail", check
    restarts = check["details"]["n_restarts"]
    assert restarts > 1
    assert f"restarted {restarts} times, more than max_restarts 1" in check["message"]


def test_min_uptime(run_module, systemd_bus):
    check = only_check(run_module, systemd_bus,
                       systemd=[{"unit": "hc-active.service", "min_uptime": "1h"}])
    assert check["status"] == "fail"
    assert "hc-active.service active for " in check["message"]
    assert re.search(r"less than min_uptime 1h \(0 restarts, up [\d.]+m?s\)$", check["message"]), check
    check = only_check(run_module, systemd_bus,
                       systemd=[{"unit": "hc-active.service", "min_uptime": "10ms"}])
    assert check["status"] == "pass", check


def test_enabled(run_module, systemd_bus):
    result, checks = run_checks(run_module, systemd_bus, systemd=[
        {"unit": "hc-active.service", "enabled": True},
        {"unit": "hc-idle.service", "state": "inactive", "enabled": "yes"},
        {"unit": "hc-idle.service", "state": "inactive", "enabled": False, "name": "idle-off"},
    ])
    assert [c["status"] for c in checks] == ["pass", "fail", "pass"], checks
    assert checks[1]["message"] == "hc-idle.service is disabled, expected enabled (0 restarts, not up)", checks[1]
    assert checks[2]["name"] == "idle-off"


def test_system_state_lists_failed_units(run_module, systemd_bus):
    check = only_check(run_module, systemd_bus, system_state="running")
    assert check["name"] == "system-state"
    assert check["status"] == "fail"
    assert check["message"] == (
        "system is degraded, expected running; failed units: hc-failing.service")
    assert check["details"]["failed_units"] == ["hc-failing.service"]
    check = only_check(run_module, systemd_bus, system_state={"state": "degraded"})
    assert check["status"] == "pass", check


def test_all_checks_share_one_connection(run_module, systemd_bus):
    # Check names are unique within a run: each repetition gets its own.
    units = [entry for i in range(10) for entry in (
        {"unit": "hc-active.service", "name": f"active-{i}"},
        {"unit": "hc-idle.service", "state": "inactive", "name": f"idle-{i}"})]
    result, checks = run_checks(run_module, systemd_bus, systemd=units,
                                system_state="degraded")
    assert len(checks) == 21
    assert result["failed"] is False, [c["message"] for c in checks if c["status"] != "pass"]


def test_bad_unit_name_names_the_parameter(run_module, systemd_bus):
    result = run_module({"systemd_bus": systemd_bus, "systemd": [
        {"unit": "hc-active.service; reboot"}]}).single_json_object()
    assert result["failed"] is True
    assert result["msg"].startswith(
        "parameter 'systemd[0].unit': invalid unit name \"hc-active.service; reboot\""), result


def test_missing_socket_is_explained(run_module):
    address = f"unix:path={tempfile.gettempdir()}/hc-no-bus-here/system_bus_socket"
    result, checks = run_checks(run_module, address, systemd=["hc-active.service"],
                                system_state="running")
    assert result["failed"] is True
    assert [c["message"] for c in checks] == [
        f"cannot connect to the system bus at {address}: No such file or directory"] * 2


def test_default_bus_comes_from_the_environment(run_module, systemd_bus, monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", systemd_bus)
    result = run_module({"systemd": ["hc-active.service"]}).single_json_object()
    assert result["failed"] is False, result


def test_silent_bus_times_out(run_module, silent_bus):
    run = run_module({"systemd_bus": silent_bus, "timeout": "1s",
                      "systemd": ["hc-active.service"], "system_state": "running"})
    result = run.single_json_object()
    assert result["failed"] is True
    assert [c["message"] for c in result["checks"]] == ["timed out after 1s"] * 2
    assert run.elapsed_s < 1.5, run.elapsed_s


def test_ssh_fleet_machines_answer(systemd_rootfs):
    with nspawn_machines.ssh_fleet(2, prefix="hc-ssh", rootfs=systemd_rootfs) as machines:
        assert len({m.ssh_port for m in machines}) == 2
        for machine in machines:
            done = subprocess.run(nspawn_machines.ssh_command(machine, "true"),
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, (done.stderr, machine.console_tail())
            hostname = subprocess.run(nspawn_machines.ssh_command(machine, "hostname"),
                                      capture_output=True, text=True, timeout=30)
            assert hostname.stdout.strip() == machine.name
            no_python = subprocess.run(
                nspawn_machines.ssh_command(machine, "command -v python3 || echo none"),
                capture_output=True, text=True, timeout=30)
            assert no_python.stdout.strip() == "none"
        processes = [m.process for m in machines]
    assert all(p.poll() is not None for p in processes)

