"""Fixtures of the quantification integration tests: a registry with the shipped library (quant_helpers),
served in process by create_app through Starlette's TestClient, and a registry client over it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
from starlette.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from service.client import RegistryClient  # noqa: E402
from quant_helpers import library_world  # noqa: E402
from world import World  # noqa: E402


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = library_world(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    yield w
    w.registry.close()


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.registry, checkpoint_interval_s=0.05)) as http:
        yield http


@pytest.fixture
def client(api: TestClient, world: World) -> RegistryClient:
    return RegistryClient("http://testserver", trust=world.registry.trust(), http=api)
