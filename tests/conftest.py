"""Shared fixtures: a throwaway PostgreSQL cluster for the session, and `database_url`, over which
every storage contract test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from pg_cluster import ClusterUnavailable, PostgresCluster, report_unavailable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgresql: runs against the throwaway PostgreSQL cluster (tests/pg_cluster.py)"
    )


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One cluster for the whole session, started on first use. If it cannot start, every test
    that needs it fails under CI and is skipped elsewhere; pytest keeps that outcome for the
    session, so a broken installation is tried once, not once per test."""
    cluster = PostgresCluster()
    try:
        cluster.start()
    except ClusterUnavailable as error:
        report_unavailable(error)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """URL of the session cluster's `postgres` database (shared by every test that uses it)."""
    return postgres_cluster.url()


@pytest.fixture
def fresh_postgres_url(postgres_cluster: PostgresCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new, empty database for this test alone, dropped afterwards."""
    name = _database_name(request.node.name)
    url = postgres_cluster.create_database(name)
    yield url
    postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database of each backend: a SQLite file in tmp_path, or a new PostgreSQL
    database in the session cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    return request.getfixturevalue("fresh_postgres_url")


def _database_name(test_name: str) -> str:
    # The test's name keeps a leftover database recognisable; the random tail keeps it unique.
    # PostgreSQL identifiers are at most 63 bytes.
    readable = re.sub(r"[^a-z0-9]+", "_", test_name.lower()).strip("_")[:40]
    return f"t_{readable}_{secrets.token_hex(6)}"
