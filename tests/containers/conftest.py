"""Fixtures for the container checks: a real, private dockerd (see private_dockerd.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from containers.private_dockerd import DockerEngine, private_docker_engine


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with private_docker_engine(tmp_path_factory.mktemp("docker")) as engine:
        yield engine
