"""A throwaway PostgreSQL server for the storage tests.

One cluster lives in a fresh temporary directory, listens on 127.0.0.1 only (on a free port, plus a
Unix socket inside that directory), runs with fsync on because the durability tests rely on it,
and is stopped and deleted at the end. The binaries are Debian's (`/usr/lib/postgresql/*/bin`,
the highest major version installed), or PUHUI_PG_BINDIR, or an initdb on PATH.

PostgreSQL refuses to run as root. Under root, every PostgreSQL program here runs as the `postgres`
user that Debian's package creates (subprocess's user/group switch, no shell), and the temporary
directory is handed to that user; otherwise the programs run as the current user.

    with throwaway_cluster() as cluster:
        url = cluster.create_database()   # postgresql+psycopg://...
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping, NoReturn
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

HOST = "127.0.0.1"
SUPERUSER = "puhui"
BINDIR_ENV = "PUHUI_PG_BINDIR"
COMMAND_TIMEOUT_SECONDS = 120
START_ATTEMPTS = 4  # a free port can be taken between choosing it and the server binding it


class ClusterUnavailable(RuntimeError):
    """The cluster could not be started; the message carries the programs' output and server log."""


def running_in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when CI is set (CI=true, as CI services set it): there a missing PostgreSQL is a failure."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def report_unavailable(error: ClusterUnavailable) -> NoReturn:
    """Fail the test in CI, where PostgreSQL must be there; skip it elsewhere (shown under -ra)."""
    if running_in_ci():
        pytest.fail(f"the PostgreSQL test cluster did not start (CI is set):\n{error}", pytrace=False)
    pytest.skip(f"the PostgreSQL test cluster did not start: {error}")


def find_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres."""
    override = os.environ.get(BINDIR_ENV)
    if override:
        if not (Path(override) / "initdb").is_file():
            raise ClusterUnavailable(f"{BINDIR_ENV}={override} holds no initdb")
        return Path(override)
    debian = sorted(
        (Path(initdb).parent for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=_major_version,
    )
    if debian:
        return debian[-1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ClusterUnavailable(
        "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH "
        "(scripts/test installs Debian's postgresql package when run as root)"
    )


def _major_version(bin_dir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); sorted numerically so that 9.6 < 10 < 15.
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """One throwaway PostgreSQL cluster. start() and stop() are idempotent; use as a context manager."""

    def __init__(self, bin_dir: Path | None = None, settings: Mapping[str, str] | None = None) -> None:
        """`settings`: postgresql.conf settings beyond the cluster's own (a benchmark's tuning);
        they cannot change where it listens nor its durability."""
        self.bin_dir = bin_dir
        self.settings = dict(settings or {})
        for name, value in self.settings.items():
            if not re.fullmatch(r"[a-z_]+", name) or re.search(r"['\\\n]", value):
                raise ValueError(f"not a postgresql.conf setting: {name} = {value!r}")
        self.base_dir: Path | None = None
        self.port: int | None = None
        self.password = secrets.token_urlsafe(24)
        self._owner: pwd.struct_passwd | None = None
        self._started = False

    # --- where things are ---------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def log_file(self) -> Path:
        return self._base() / "server.log"

    @property
    def server_pid(self) -> int:
        """The postmaster's process id, from postmaster.pid."""
        return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])

    @property
    def os_user(self) -> str:
        """The operating-system user the server runs as."""
        return self._owner.pw_name if self._owner else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of database on this cluster, as the superuser."""
        return (
            f"postgresql+psycopg://{SUPERUSER}:{quote(self.password, safe='')}"
            f"@{HOST}:{self.port}/{quote(database, safe='')}"
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Create and start the cluster; returns the URL of its `postgres` database."""
        if self._started:
            return self.url()
        self.bin_dir = self.bin_dir or find_bin_dir()
        self._owner = _server_owner()
        self.base_dir = Path(tempfile.mkdtemp(prefix="puhui-pg-"))
        try:
            self._hand_to_owner(self.base_dir)
            self._initdb()
            self._start_server()
        except BaseException:
            self._stop_server()  # pg_ctl may give up waiting while the server still comes up
            self._remove_base_dir()
            raise
        self._started = True
        atexit.register(self.stop)  # a safety net should the test session die without teardown
        return self.url()

    def stop(self) -> None:
        """Stop the server and delete the cluster's directory."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        try:
            self._stop_server()
        finally:
            self._remove_base_dir()

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- databases ----------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create a new empty database (a random name unless given); returns its URL."""
        name = name or f"test_{secrets.token_hex(8)}"
        with self.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any sessions a test left open on it."""
        with self.connect() as connection:
            force = sql.SQL(" WITH (FORCE)") if connection.info.server_version >= 130000 else sql.SQL("")
            statement = sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)
            connection.execute(statement)

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """A plain psycopg connection in autocommit mode (CREATE/DROP DATABASE need it)."""
        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        )

    # --- internals ----------------------------------------------------------------------------

    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("the cluster has not been started")
        return self.base_dir

    def _initdb(self) -> None:
        password_file = self._base() / "superuser-password"
        password_file.write_text(self.password + "\n")
        self._hand_to_owner(password_file)
        try:
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "--pgdata", str(self.data_dir),
                    "--username", SUPERUSER,
                    "--pwfile", str(password_file),
                    "--auth", "scram-sha-256",  # nobody else on the machine gets in
                    "--encoding", "UTF8",
                    "--locale", "C",
                ]
            )
        finally:
            password_file.unlink()

    def _start_server(self) -> None:
        failures = []
        for _attempt in range(START_ATTEMPTS):
            self.port = _free_port()
            self._write_settings()
            started = self._run(self._pg_ctl("start", "-l", str(self.log_file)), check=False)
            if started.returncode == 0:
                return
            failures.append(_describe(started, self.log_file))
            if "already in use" not in self._log_text():
                break
        raise ClusterUnavailable("pg_ctl could not start the server:\n" + "\n\n".join(failures))

    def _stop_server(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        stopped = self._run(self._pg_ctl("stop", "-m", "fast"), check=False)
        if stopped.returncode != 0 and (self.data_dir / "postmaster.pid").exists():
            self._run(self._pg_ctl("stop", "-m", "immediate"), check=False)

    def _write_settings(self) -> None:
        # postgresql.auto.conf is read last, so these win over postgresql.conf; rewritten on
        # every attempt because the port changes.
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self._base()),
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
        }
        settings = {**self.settings, **settings}
        lines = [f"{name} = '{value}'" for name, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def _pg_ctl(self, action: str, *options: str) -> list[str]:
        wait = ["-w", "-t", str(COMMAND_TIMEOUT_SECONDS // 2)]
        return [str(self.bin_dir / "pg_ctl"), action, "-D", str(self.data_dir), *wait, *options]

    def _run(self, command: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = self._owner
        try:
            result = subprocess.run(
                command,
                cwd=self._base(),
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_SECONDS,
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
                extra_groups=[] if owner else None,  # drop root's supplementary groups too
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnavailable(f"{' '.join(command)} failed to run: {exc}") from exc
        if check and result.returncode != 0:
            raise ClusterUnavailable(_describe(result, self.log_file))
        return result

    def _environment(self) -> dict[str, str]:
        # A clean environment: root's HOME and any PG* variables must not leak into the server.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self._base()), "LC_ALL": "C"}

    def _hand_to_owner(self, path: Path) -> None:
        if self._owner:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _remove_base_dir(self) -> None:
        if self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir)


def _server_owner() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as when we are root; None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterUnavailable(
            "running as root, which PostgreSQL refuses, and there is no 'postgres' user to run it as "
            "(Debian's postgresql package creates one)"
        ) from None


def _describe(result: subprocess.CompletedProcess[str], log_file: Path) -> str:
    try:
        log = log_file.read_text(errors="replace")
    except OSError:
        log = "(no server log)"
    return (
        f"$ {' '.join(result.args)}\nexit status {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
        f"--- server log ({log_file}) ---\n{log[-4000:]}"
    )


@contextmanager
def throwaway_cluster(bin_dir: Path | None = None) -> Iterator[PostgresCluster]:
    """A started cluster, stopped and deleted when the block ends."""
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
