"""Fixtures of the API tests: a World (tests/world.py) with its standard history, served in process
by create_app through Starlette's TestClient. `puhui serve` as a real process: served_registry.py."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
from starlette.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from service.client import RegistryClient  # noqa: E402
from world import World  # noqa: E402


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    yield w
    w.registry.close()


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    """The app over the world's registry; checkpoints every 50 ms so that tests need not wait."""
    app = create_app(world.registry, checkpoint_interval_s=0.05)
    with TestClient(app) as http:
        yield http


@pytest.fixture
def client(api: TestClient, world: World) -> RegistryClient:
    return RegistryClient("http://testserver", trust=world.registry.trust(), http=api)
