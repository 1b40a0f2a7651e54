"""Fixtures for the systemd checks: a real systemd, booted once per session in systemd-nspawn.

The first run debootstraps a minimal Debian bookworm into .cache/rootfs-bookworm (about 40 s,
needs root and the Debian mirror); later runs reuse it and boot in about a second.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import pytest

from . import nspawn_machines


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
def silent_bus() -> Iterator[str]:
    """A unix socket that accepts connections and never sends a byte; yields its address."""
    workdir = Path(tempfile.mkdtemp(prefix="hc-silent-", dir="/tmp"))
    path = workdir / "bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield f"unix:path={path}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()
    path.unlink(missing_ok=True)
    workdir.rmdir()
