"""Fixtures for the container checks: a real, private dockerd (see tests/testbed/dockerd.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from testbed.dockerd import DockerEngine, private_docker_engine


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with private_docker_engine(tmp_path_factory.mktemp("docker")) as engine:
        yield engine
