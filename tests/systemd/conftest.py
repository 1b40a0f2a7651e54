"""Fixtures for the systemd checks: a real systemd, booted once per session in systemd-nspawn.

The first run debootstraps a minimal Debian bookworm into .cache/rootfs-bookworm (about 40 s,
needs root and the Debian mirror); later runs reuse it and boot in about a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from testbed import machines as nspawn_machines


@pytest.fixture(scope="session")
def systemd_rootfs() -> Path:
    if os.geteuid() != 0:
        pytest.fail("the systemd tests boot containers with systemd-nspawn: run them as root",
                    pytrace=False)
    nspawn_machines.ensure_host_tools()
    return nspawn_machines.ensure_rootfs()


@pytest.fixture(scope="session")
def systemd_machine(systemd_rootfs: Path) -> Iterator[nspawn_machines.Machine]:
    """A booted machine with the test units of nspawn_machines.TEST_UNITS, stopped at the end."""
    with nspawn_machines.booted(f"hc-systemd-{os.getpid()}", systemd_rootfs) as machine:
        yield machine


@pytest.fixture(scope="session")
def systemd_bus(systemd_machine: nspawn_machines.Machine) -> str:
    """The machine's system bus as a D-Bus address: `unix:path=/tmp/.../system_bus_socket`."""
    return systemd_machine.bus_address


@pytest.fixture
def silent_bus(silent_unix_socket: Path) -> str:
    """A D-Bus address whose socket accepts connections and never sends a byte."""
    return f"unix:path={silent_unix_socket}"
