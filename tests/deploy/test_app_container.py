"""roles/app's container mode (`app_container: true`) against a real, private Docker Engine
(Debian's dockerd, its own socket, data root and containerd namespace, started for this file
only): the role starts the container with its Docker healthcheck, the container turns healthy,
a second run changes nothing, and a changed setting replaces the container.

The engine runs without a bridge (as tests/testbed/dockerd.py's does), so the container runs
with `app_container_network: none` and no published port; the image is a static busybox root
imported without a registry, serving /www with httpd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, venv_tool
from testbed import dockerd

NAME = "deploy-app-test"
HEALTH_CMD = "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    dockerd.ensure_packages()
    run_dir = Path(f"/tmp/dapp-{os.getpid()}")  # unix socket paths are short
    data_root = Path(f"/var/lib/deploy-app-test-docker-{os.getpid()}")
    run_dir.mkdir(exist_ok=True)
    process, socket_path, _log = dockerd.start_dockerd(
        run_dir, data_root=data_root, namespace=f"deploy-app-{os.getpid()}")
    try:
        dockerd.build_image(socket_path)
        yield socket_path
    finally:
        subprocess.run(["docker", "-H", f"unix://{socket_path}", "rm", "-f", NAME], capture_output=True)
        dockerd.stop_dockerd(process)
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(data_root, ignore_errors=True)


def converge(env, tmp_path: Path, socket_path: Path, **overrides) -> subprocess.CompletedProcess:
    playbook = tmp_path / "app_container.yml"
    role_vars = {
        "app_name": NAME, "app_service": False, "app_container": True,
        "app_container_image": dockerd.IMAGE, "app_container_network": "none",
        "app_container_health_cmd": HEALTH_CMD, "app_docker_host": f"unix://{socket_path}",
        **overrides,
    }
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: app\n      vars: "
        + json.dumps(role_vars) + "\n")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n")
    return subprocess.run(
        [str(venv_tool("ansible-playbook")), "-i", str(inventory), str(playbook)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=180,
    )


def inspect(socket_path: Path) -> dict:
    out = subprocess.run(["docker", "-H", f"unix://{socket_path}", "inspect", NAME],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def changed(run: subprocess.CompletedProcess) -> int:
    recap = [line for line in run.stdout.splitlines() if line.startswith("localhost ")][-1]
    return int(recap.split("changed=")[1].split()[0])


def test_the_container_turns_healthy_and_a_second_run_changes_nothing(engine, ansible_env, tmp_path):
    first = converge(ansible_env, tmp_path, engine)
    assert first.returncode == 0, first.stdout[-3000:]
    assert changed(first) == 1
    deadline = time.monotonic() + 30
    while inspect(engine)["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, inspect(engine)["State"]
        time.sleep(0.5)
    info = inspect(engine)
    assert info["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", HEALTH_CMD]
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

    second = converge(ansible_env, tmp_path, engine)
    assert second.returncode == 0 and changed(second) == 0, second.stdout[-3000:]
    assert inspect(engine)["Id"] == info["Id"]

    third = converge(ansible_env, tmp_path, engine,
                     app_container_health_cmd="wget -q -O /dev/null http://127.0.0.1:8080/index.html || exit 1")
    assert third.returncode == 0 and changed(third) == 2, third.stdout[-3000:]
    assert inspect(engine)["Id"] != info["Id"]


def test_container_mode_without_an_image_is_refused_with_the_variable_named(engine, ansible_env, tmp_path):
    run = converge(ansible_env, tmp_path, engine, app_container_image="")
    assert run.returncode != 0
    assert "app_container: true needs app_container_image" in run.stdout
