"""Restart loops and many units against a real systemd (its own machine, booted in
systemd-nspawn with the stock dbus configuration). Units are added at run time under
/run/systemd/system, so the cached rootfs stays the same for every test file."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from testbed import machines as nspawn_machines

CRASH_LOOP = "hc-crashloop.service"
RESTARTED_ONCE = "hc-restarted-once.service"
MANY = 500

UNITS = {
    # Up for 20 ms, dead, restarted 20 ms later, for ever: "active (running)" a third of the time.
    CRASH_LOOP: """\
[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/sh -c 'sleep 0.02; exit 1'
Restart=always
RestartSec=20ms
""",
    # Fails once when it first starts, then runs for good: one old restart, healthy since.
    RESTARTED_ONCE: """\
[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/sh -c 'if [ -e /run/hc-once ]; then exec sleep infinity; fi; touch /run/hc-once; exit 1'
Restart=always
RestartSec=100ms
""",
}


def write_units(machine: nspawn_machines.Machine, units: dict[str, str]) -> None:
    script = ["mkdir -p /run/systemd/system"]
    for name, text in units.items():
        script.append(f"cat > /run/systemd/system/{name} <<'UNIT'\n{text}UNIT")
    result = machine.run("sh", "-c", "\n".join(script), timeout_s=60)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def machine(systemd_rootfs: Path) -> Iterator[nspawn_machines.Machine]:
    with nspawn_machines.booted(f"hc-flap-{os.getpid()}", systemd_rootfs) as booted:
        many = {f"hc-many-{i:03}.service": "[Service]\nExecStart=/bin/sleep infinity\n" for i in range(MANY)}
        write_units(booted, {**UNITS, **many})
        started = booted.run("sh", "-c", "systemctl daemon-reload && systemctl start --no-block "
                             + " ".join([*UNITS, *many]), timeout_s=120)
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            active = booted.run("sh", "-c", "systemctl list-units --state=active --no-legend 'hc-many-*' | wc -l")
            once = booted.run("systemctl", "is-active", RESTARTED_ONCE)
            if active.stdout.strip() == str(MANY) and once.stdout.strip() == "active":
                break
            time.sleep(0.5)
        # Let the restarted-once unit's single restart lie well in the past.
        time.sleep(3)
        yield booted


def checks(run_module, machine, **params: Any) -> tuple[dict, list[dict]]:
    result = run_module({"systemd_bus": machine.bus_address, **params}).single_json_object()
    return result, result.get("checks", [])


def test_a_restart_loop_never_passes_even_when_waited_for(run_module, machine):
    for _ in range(3):
        result, (check,) = checks(run_module, machine, systemd=[CRASH_LOOP], wait_timeout="3s", interval="50ms")
        assert check["status"] == "fail", check
        assert re.search(r"restarted \d+ times in [\d.]+m?s, (up \d|not up)", check["message"]), check["message"]
    # Without waiting too: a single look at a unit that restarts every 40 ms.
    for _ in range(10):
        result, (check,) = checks(run_module, machine, systemd=[CRASH_LOOP])
        assert check["status"] == "fail", check


def test_a_unit_that_restarted_once_long_ago_passes_and_says_so(run_module, machine):
    # Its one restart lies more than flap_window ago.
    result, (check,) = checks(run_module, machine, systemd=[{"unit": RESTARTED_ONCE, "flap_window": "2s"}],
                              wait_timeout="2s", interval="100ms")
    assert check["status"] == "pass", check
    assert "1 restart" in check["message"] and ", up " in check["message"], check["message"]


def test_every_systemd_message_carries_restarts_and_uptime(run_module, machine):
    result, (check,) = checks(run_module, machine, systemd=["hc-many-000.service"])
    assert check["status"] == "pass"
    assert re.search(r"0 restarts, up \d", check["message"]), check["message"]


def test_flapping_can_be_downgraded(run_module, machine):
    result, (check,) = checks(run_module, machine, systemd=[{"unit": CRASH_LOOP, "state": "any", "flapping": "warn"}])
    assert check["status"] == "warn", check
    assert "restarted" in check["message"], check["message"]


def test_five_hundred_units_in_one_run_all_pass(run_module, machine):
    units = [f"hc-many-{i:03}.service" for i in range(MANY)]
    started = time.monotonic()
    result, found = checks(run_module, machine, systemd=units, deadline="60s")
    elapsed = time.monotonic() - started
    failed = [c for c in found if c["status"] != "pass"]
    assert failed == [], f"{len(failed)} of {MANY} failed, e.g. {failed[:2]}"
    assert len(found) == MANY and result["failed"] is False
    print(f"{MANY} units in {elapsed:.2f}s")
