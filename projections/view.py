"""The read-model store: tables owned by `migrations/`, written with their tracking record.

A view is an eventsourcing `TrackingRecorder`: every batch of rows is written in the same
transaction as the notification id it was built up to, so each event is applied exactly once
and a restarted runner resumes where it stopped. One class serves SQLite and PostgreSQL; SQL is
written with `%s` placeholders and adapted for SQLite.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

from ledger.store import SQLITE, Database


def topics(cls: type[Any], *events: str) -> tuple[str, ...]:
    """The notification topics of an aggregate's events, for a runner to select."""
    return tuple(f"{cls.__module__}:{cls.__qualname__}.{name}" for name in events)


class View(TrackingRecorder):
    tables: tuple[str, ...] = ()

    def __init__(self, database: Database) -> None:
        self.database = database
        self._local = threading.local()
        self._pool: Any = None
        if database.backend != SQLITE:
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(
                database.conninfo(), min_size=1, max_size=4, kwargs={"autocommit": True}, open=True
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One write transaction: rows and tracking commit together or not at all."""
        if self._pool is None:
            conn = self._sqlite()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Cursor(conn, sqlite=True)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        else:
            with self._pool.connection() as conn, conn.transaction():
                yield Cursor(conn, sqlite=False)

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        if self._pool is None:
            yield Cursor(self._sqlite(), sqlite=True)
        else:
            with self._pool.connection() as conn:
                yield Cursor(conn, sqlite=False)

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.database.sqlite_path, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    # -- tracking (eventsourcing's TrackingRecorder interface) ----------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.transaction() as cur:
            self.track(cur, tracking)

    def track(self, cur: Cursor, tracking: Tracking) -> None:
        cur.execute(
            "INSERT INTO projection_tracking (projection, notification_id) VALUES (%s, %s) "
            "ON CONFLICT (projection) DO UPDATE SET notification_id = EXCLUDED.notification_id",
            (tracking.application_name, tracking.notification_id),
        )

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.reading() as cur:
            row = cur.execute(
                "SELECT notification_id FROM projection_tracking WHERE projection = %s",
                (application_name,),
            ).fetchone()
        return None if row is None else int(row[0])

    def reset(self, projection: str) -> None:
        """Empty the view's tables and forget its position (for a rebuild)."""
        with self.transaction() as cur:
            for table in self.tables:
                cur.execute(f"DELETE FROM {table}")  # noqa: S608 - class constant
            cur.execute("DELETE FROM projection_tracking WHERE projection = %s", (projection,))


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # UTC always, so that ISO 8601 text compares in time order.
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    return value


def _json_value(value: Any) -> Any:
    """A value for `insert_rows`'s JSON, as PostgreSQL would have made it of the parameter."""
    if isinstance(value, date):  # and datetime: with its offset, so the same instant
        return value.isoformat()
    if isinstance(value, Decimal):
        # A numeric parameter cast to text: plain notation, exponent folded in ('1E+3' -> '1000'),
        # and no negative zero.
        return format(value.copy_abs() if value.is_zero() else value, "f")
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a read-model row")


class Cursor:
    """Just enough of DB-API over sqlite3 and psycopg, with one placeholder style."""

    def __init__(self, conn: Any, *, sqlite: bool) -> None:
        self._conn = conn
        self._sqlite = sqlite
        self._cur: Any = None

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self._sqlite else statement

    def _params(self, params: Sequence[Any]) -> Sequence[Any]:
        if not self._sqlite:
            return params
        # SQLite keeps times as ISO 8601 text and decimals as text, like the PostgreSQL text.
        return [_sqlite_value(p) for p in params]

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        self._cur = self._conn.execute(self._sql(statement), self._params(params))
        return self

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            if self._sqlite:
                self._conn.executemany(self._sql(statement), [self._params(r) for r in rows])
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(statement, rows)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        """INSERT many rows, each in `columns` order; `tail` is the rest of the statement (an
        ON CONFLICT clause). On PostgreSQL one statement with the rows as one JSON document,
        one round trip where executemany costs one per row; the values are stored as they were
        as parameters (`_json_value`)."""
        if not rows:
            return
        names = ", ".join(columns)
        if self._sqlite:
            values = ", ".join(["?"] * len(columns))
            self._conn.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({values}) {tail}",
                [self._params(row) for row in rows],
            )
            return
        document = json.dumps([dict(zip(columns, row)) for row in rows], default=_json_value)
        self._conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - our own names
            f"FROM json_populate_recordset(NULL::{table}, %s::json) {tail}",
            (document,),
        )

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Rows that cannot be there yet, the fastest way: COPY on PostgreSQL (a duplicate key
        fails the transaction, it is never skipped), plain INSERTs on SQLite. COPY casts
        nothing: for text, integers and booleans (a Decimal would keep its own notation)."""
        if not rows:
            return
        if self._sqlite:
            self.insert_rows(table, columns, rows)
            return
        with self._conn.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())
