"""The PostgreSQL test harness itself: it starts, serves, stays on loopback, and goes away."""

from __future__ import annotations

import ipaddress
import os
import pwd
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from pg_cluster import (
    ClusterUnavailable,
    PostgresCluster,
    report_unavailable,
    running_in_ci,
    throwaway_cluster,
)


def roundtrip_a_table(url: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        notes = sa.Table(
            "notes", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.Text)
        )
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(notes.insert(), [{"id": 1, "text": "碳普惠"}, {"id": 2, "text": "two"}])
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.select(notes).order_by(notes.c.id))]
    finally:
        engine.dispose()


def table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_connects_and_creates_a_table(fresh_postgres_url):
    assert fresh_postgres_url.startswith("postgresql+psycopg://")
    assert roundtrip_a_table(fresh_postgres_url) == [(1, "碳普惠"), (2, "two")]


def test_each_test_gets_its_own_empty_database(fresh_postgres_url, postgres_url, postgres_cluster):
    assert table_names(fresh_postgres_url) == []
    assert fresh_postgres_url != postgres_url
    other = postgres_cluster.create_database()
    try:
        roundtrip_a_table(other)
        assert table_names(fresh_postgres_url) == []
    finally:
        postgres_cluster.drop_database(other.rsplit("/", 1)[1])


def test_database_url_serves_both_backends(database_url):
    assert database_url.split(":", 1)[0] in ("sqlite", "postgresql+psycopg")
    assert table_names(database_url) == []
    assert roundtrip_a_table(database_url) == [(1, "碳普惠"), (2, "two")]


def test_durability_settings_are_on(postgres_url):
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as connection:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            assert connection.execute(f"SHOW {setting}").fetchone()[0] == "on", setting
        assert connection.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the TCP sockets listening on port, from /proc/net/tcp and tcp6."""
    found = []
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = bytes.fromhex(address_hex)
            words = [raw[i : i + 4][::-1] for i in range(0, width, 4)]
            found.append(str(ipaddress.ip_address(b"".join(words))))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_listens_only_on_127_0_0_1(postgres_cluster):
    assert listening_addresses(postgres_cluster.port) == ["127.0.0.1"]
    # Another loopback address reaches the host, but not a socket bound to 127.0.0.1 alone.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.2", port=postgres_cluster.port, user="puhui",
            password=postgres_cluster.password, dbname="postgres", connect_timeout=5,
        )


def test_refuses_a_wrong_password(postgres_cluster):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=postgres_cluster.port, user="puhui",
            password="wrong", dbname="postgres", connect_timeout=5,
        )


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_server_runs_as_postgres_when_we_are_root(postgres_cluster):
    server_uid = Path(f"/proc/{postgres_cluster.server_pid}").stat().st_uid
    if os.geteuid() == 0:
        assert postgres_cluster.os_user == "postgres"
        assert server_uid == pwd.getpwnam("postgres").pw_uid
    else:
        assert server_uid == os.geteuid()


def test_drop_database_ends_sessions_left_open(postgres_cluster):
    url = postgres_cluster.create_database()
    name = url.rsplit("/", 1)[1]
    leftover = psycopg.connect(url.replace("+psycopg", ""))
    try:
        postgres_cluster.drop_database(name)
    finally:
        leftover.close()
    with postgres_cluster.connect() as connection:
        assert connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None


def test_cluster_is_stopped_and_removed_afterwards():
    try:
        with throwaway_cluster() as cluster:
            url, pid, base_dir = cluster.url(), cluster.server_pid, cluster.base_dir
            assert roundtrip_a_table(url) == [(1, "碳普惠"), (2, "two")]
    except ClusterUnavailable as error:
        report_unavailable(error)
    assert not base_dir.exists()
    assert not Path(f"/proc/{pid}").exists() or b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url.replace("+psycopg", ""), connect_timeout=5)
    cluster.stop()  # idempotent


def test_missing_binaries_are_a_clear_error_and_leave_nothing_behind(tmp_path):
    cluster = PostgresCluster(bin_dir=tmp_path)
    with pytest.raises(ClusterUnavailable, match="initdb"):
        cluster.start()
    assert cluster.base_dir is not None and not cluster.base_dir.exists()


def test_bindir_override_without_initdb_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PUHUI_PG_BINDIR", str(tmp_path))
    with pytest.raises(ClusterUnavailable, match="holds no initdb"):
        PostgresCluster().start()


@pytest.mark.parametrize(
    "value, expected",
    [(None, False), ("", False), ("false", False), ("0", False), ("true", True), ("1", True)],
)
def test_running_in_ci(value, expected):
    assert running_in_ci({} if value is None else {"CI": value}) is expected


def test_unavailable_cluster_fails_in_ci_and_skips_elsewhere(monkeypatch):
    error = ClusterUnavailable("initdb: exit status 1\n--- stderr ---\ncannot create directory")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot create directory"):
        report_unavailable(error)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="cannot create directory"):
        report_unavailable(error)
