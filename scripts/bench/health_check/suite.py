"""The suite of 40 healthy checks, as the module's args and as the baseline playbook's vars,
and the inputs of the two playbooks (playbooks/*.yml): their vars files and the inventory.

    15 systemd units   in the booted fleet machine, read over its D-Bus socket on the host
    10 containers      on the private dockerd, each with a healthcheck that passes
     5 tcp + 5 http    listeners and servers on 127.0.0.1
     5 disks           local paths, with generous limits (99 %) so that they pass

The playbooks take everything from vars (`-e @FILE`) and the inventory: nothing in them is
filled in by string formatting.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed import machines

from . import PLAYBOOK_DIR, BenchmarkError

UNIT_COUNT = 15
CONTAINER_COUNT = 10
TCP_COUNT = 5
HTTP_COUNT = 5
DISK_COUNT = 5
TOTAL_CHECKS = UNIT_COUNT + CONTAINER_COUNT + TCP_COUNT + HTTP_COUNT + DISK_COUNT
DISK_CANDIDATES = ("/", "/tmp", "/var", "/usr", "/work", "/home", "/opt", "/srv", "/root", "/boot")
# Generous on purpose: the benchmark times healthy checks, it does not judge this machine.
DISK_MAX_USED_PERCENT = 99
DISK_MAX_INODES_USED_PERCENT = 99

MODULE_PLAYBOOK = PLAYBOOK_DIR / "module.yml"
BASELINE_PLAYBOOK = PLAYBOOK_DIR / "baseline.yml"


def pick_disks() -> list[str]:
    paths = [path for path in DISK_CANDIDATES if os.path.isdir(path)][:DISK_COUNT]
    if len(paths) < DISK_COUNT:
        raise BenchmarkError(f"only {len(paths)} of the disk paths exist: {paths}")
    return paths


def mount_point_candidates(path: str) -> list[str]:
    """`/work/main` -> ['/', '/work', '/work/main']: the mount points that could hold it."""
    parts = [part for part in os.path.realpath(path).split("/") if part]
    return ["/"] + ["/" + "/".join(parts[: index + 1]) for index in range(len(parts))]


@dataclass
class Suite:
    units: list[str]
    systemd_bus: str
    containers: list[str]
    docker_host: str
    tcp_ports: list[int]
    http_urls: list[str]
    disks: list[str]

    def module_args(self) -> dict[str, Any]:
        return {
            "systemd": self.units,
            "systemd_bus": self.systemd_bus,
            "containers": self.containers,
            "docker_host": self.docker_host,
            "tcp": [f"127.0.0.1:{port}" for port in self.tcp_ports],
            "http": self.http_urls,
            "disks": [
                {
                    "path": path,
                    "max_used_percent": DISK_MAX_USED_PERCENT,
                    "max_inodes_used_percent": DISK_MAX_INODES_USED_PERCENT,
                }
                for path in self.disks
            ],
        }

    def module_playbook_vars(self) -> dict[str, Any]:
        """The vars of playbooks/module.yml: the module's args, whole."""
        return {"bench_module_args": self.module_args()}

    def baseline_vars(self) -> dict[str, Any]:
        """The vars of playbooks/baseline.yml."""
        return {
            "bench_units": self.units,
            "bench_containers": self.containers,
            "bench_docker_host": self.docker_host,
            "bench_tcp_ports": self.tcp_ports,
            "bench_http_urls": self.http_urls,
            "bench_disks": [
                {"path": path, "mount_candidates": mount_point_candidates(path)}
                for path in self.disks
            ],
            "bench_max_used_percent": DISK_MAX_USED_PERCENT,
            "bench_max_inodes_used_percent": DISK_MAX_INODES_USED_PERCENT,
        }


def write_inventory(path: Path, machine: machines.Machine) -> None:
    """localhost (connection local, the playbook's own Python) and the fleet machine over SSH."""
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                },
            },
            "children": {
                "fleet": {
                    "hosts": {
                        machine.name: {
                            "ansible_host": "127.0.0.1",
                            "ansible_port": machine.ssh_port,
                            "ansible_user": "root",
                            "ansible_ssh_private_key_file": str(machines.SSH_KEY),
                            "ansible_ssh_common_args": (
                                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                "-o LogLevel=ERROR"
                            ),
                            "ansible_python_interpreter": "/usr/bin/python3",
                        },
                    },
                },
            },
        },
    }
    path.write_text(json.dumps(inventory, indent=2) + "\n")


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
