"""Shared fixtures: a migrated database on each backend, the running services, a real server.

PostgreSQL is found through LADEBUCH_TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); each test database is created and dropped here.
When PostgreSQL cannot be reached the PostgreSQL variants skip, except under CI=true, where
they fail.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.services import Services
from api.settings import Settings
from ledger.store import Database, migrate

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance"
PG_ADMIN_URL = os.environ.get(
    "LADEBUCH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


def create_pg_database() -> tuple[Database, str]:
    import psycopg

    admin = Database.from_url(PG_ADMIN_URL)
    name = f"ladebuch_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    return Database.from_url(url), name


def drop_pg_database(name: str) -> None:
    import psycopg

    admin = Database.from_url(PG_ADMIN_URL)
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database on each backend: the same test runs on both."""
    if request.param == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path / 'ladebuch.sqlite3'}")
        migrate(db)
        yield db
        return
    yield from _migrated_pg_database()


@pytest.fixture
def pg_database() -> Iterator[Database]:
    yield from _migrated_pg_database()


def _migrated_pg_database() -> Iterator[Database]:
    db, name = create_pg_database()
    try:
        migrate(db)
        yield db
    finally:
        drop_pg_database(name)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Database:
    db = Database.from_url(f"sqlite:///{tmp_path / 'ladebuch.sqlite3'}")
    migrate(db)
    return db


@pytest.fixture
def services(database: Database) -> Iterator[Services]:
    svc = Services.build(Settings(database_url=database.url))
    svc.start()
    try:
        yield svc
    finally:
        svc.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real `ladebuch serve` process (uvicorn) on a free port."""

    def __init__(
        self,
        database: Database,
        log_path: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.database = database
        self.port = free_port()
        scheme = "https" if ssl_context else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if ssl_context else 'ws'}://127.0.0.1:{self.port}/ocpp"
        self.log_path = log_path
        full_env = {
            **os.environ,
            "LADEBUCH_DATABASE_URL": database.url,
            "LADEBUCH_PORT": str(self.port),
            "LADEBUCH_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", *args],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    self.base_url + "/health", timeout=1, context=ssl_context
                ) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(self.database, *args, stdin=stdin)

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_cli(database: Database, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env={**os.environ, "LADEBUCH_DATABASE_URL": database.url, "LADEBUCH_LOG_LEVEL": "warning"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[Server]:
    srv = Server(database, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()
