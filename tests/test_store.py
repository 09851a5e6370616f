"""Integration tests: the same cases on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import os
import sqlite3
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from api.services import Services
from api.settings import Settings
from ledger import transactions
from ledger.application import _PAGE, Registry, build_applications
from ledger.audit import verify_chain
from ledger.committer import UnitOfWork
from ledger.errors import AlreadyExists
from ledger.frames import INBOUND, FrameLog
from ledger.invoicing import SessionClaim
from ledger.priced import SessionPrice
from ledger.registry import Customer
from ledger.sessions import ChargingSession
from ledger.store import (
    POSTGRESQL,
    SQLITE,
    Database,
    default_migrations_dir,
    migrate,
    migration_files,
    schema_version,
)
from tests.conftest import run_cli

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


class RecordFrames:
    """A unit that appends frames to one charge point's log."""

    def __init__(self, charge_point: str, texts: list[str]) -> None:
        self.charge_point = charge_point
        self.texts = texts

    def run(self, uow: UnitOfWork) -> int:
        log = uow.frame_log(self.charge_point)
        for text in self.texts:
            log.record(direction=INBOUND, protocol="ocpp1.6", received_at=T0, text=text)
        return log.version

    def fail(self, uow: UnitOfWork, exc: Exception) -> int:
        raise exc


class StartTransaction:
    def __init__(self, charge_point: str, payload: dict[str, Any]) -> None:
        self.charge_point = charge_point
        self.payload = payload

    def run(self, uow: UnitOfWork) -> tuple[int, str]:
        ref = uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=T0, text=str(self.payload)
        )
        return transactions.start_transaction_16(
            uow, charge_point=self.charge_point, protocol="ocpp1.6", source_frame=ref, payload=self.payload
        )

    def fail(self, uow: UnitOfWork, exc: Exception) -> tuple[int, str]:
        raise exc


def _sql(database: Database, statement: str) -> None:
    with database.connect() as conn:
        conn.execute(statement)


def test_migrations_are_recorded_and_idempotent(database: Database) -> None:
    expected = len(migration_files(default_migrations_dir(), database.backend))
    assert expected >= 2
    assert schema_version(database) == expected
    assert migrate(database) == []
    assert schema_version(database) == expected


def test_services_refuse_an_unmigrated_database(tmp_path: Any) -> None:
    with pytest.raises(Exception, match="ladebuch migrate"):
        Services.build(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))


def test_event_tables_refuse_update_and_delete(services: Services) -> None:
    services.registry.register_charge_point("CP1")
    services.committer.run_now(RecordFrames("CP1", ["a"]))
    database = services.database
    errors: tuple[type[Exception], ...] = (
        (sqlite3.DatabaseError,) if database.backend == SQLITE else (psycopg.Error,)
    )
    statements = [
        "UPDATE ledger_events SET topic = 'x'",
        "DELETE FROM ledger_events",
        "UPDATE registry_events SET state = NULL",
        "DELETE FROM registry_events",
    ]
    if database.backend == POSTGRESQL:
        statements += ["TRUNCATE ledger_events", "TRUNCATE registry_events"]
    for statement in statements:
        with pytest.raises(errors, match="append-only"):
            _sql(database, statement)
    assert verify_chain(services.ledger, "CP1").frames == 1


def _tamper(database: Database, statement: str) -> None:
    """Change a stored row behind the application's back, as a database owner could."""
    if database.backend == SQLITE:
        with database.connect() as conn:
            conn.execute("DROP TRIGGER ledger_events_no_update")
            conn.execute("DROP TRIGGER ledger_events_no_delete")
            conn.execute(statement)
    else:
        with database.connect() as conn:
            conn.execute("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_append_only")
            conn.execute(statement)


def _state_where(database: Database) -> str:
    # SQLite stores the originator id as hex text, PostgreSQL as uuid.
    log_id = FrameLog.create_id("CP1")
    return f"originator_id = '{log_id.hex if database.backend == SQLITE else log_id}'"


def test_audit_names_an_edited_frame(services: Services) -> None:
    services.registry.register_charge_point("CP1")
    texts = [f'[2,"{i}","Heartbeat",{{}}]' for i in range(5)]
    services.committer.run_now(RecordFrames("CP1", texts))
    assert verify_chain(services.ledger, "CP1").broken is None
    database = services.database
    replace = "CAST(replace(CAST(state AS TEXT), 'Heartbeat', 'HeartbeaT') AS BLOB)"
    if database.backend == POSTGRESQL:
        replace = "convert_to(replace(convert_from(state, 'UTF8'), 'Heartbeat', 'HeartbeaT'), 'UTF8')"
    _tamper(
        database,
        f"UPDATE ledger_events SET state = {replace} WHERE {_state_where(database)} "
        "AND originator_version = 4",
    )
    report = verify_chain(services.ledger, "CP1")
    assert report.broken is not None
    assert (report.broken.seq, report.frames) == (4, 2)
    assert "edited" in report.broken.reason
    result = run_cli(database, "audit", "verify")
    assert result.returncode == 1
    assert "CP1 frame 4" in result.stdout


def test_audit_names_a_removed_frame(services: Services) -> None:
    services.registry.register_charge_point("CP1")
    services.committer.run_now(RecordFrames("CP1", ["a", "b", "c"]))
    _tamper(
        services.database,
        f"DELETE FROM ledger_events WHERE {_state_where(services.database)} AND originator_version = 3",
    )
    report = verify_chain(services.ledger, "CP1")
    assert report.broken is not None
    assert (report.broken.seq, report.broken.reason) == (3, "record missing")


def test_group_commit_saves_concurrent_units_together(services: Services) -> None:
    names = [f"CP{i}" for i in range(20)]
    futures = [services.committer.submit(RecordFrames(n, ["x", "y"])) for n in names]
    assert [f.result(timeout=30) for f in futures] == [3] * 20
    assert services.committer.batches < 20  # some units shared a transaction
    for name in names:
        assert verify_chain(services.ledger, name).frames == 2


def test_a_repeated_start_gets_the_same_transaction_id(services: Services) -> None:
    services.registry.add_id_tag("TAG")
    payload = {"connectorId": 1, "idTag": "TAG", "meterStart": 5, "timestamp": "2026-11-24T10:00:00Z"}
    first = services.committer.run_now(StartTransaction("CP1", payload))
    again = services.committer.run_now(StartTransaction("CP1", dict(payload)))
    other = services.committer.run_now(StartTransaction("CP1", payload | {"meterStart": 6}))
    assert first == again == (first[0], "Accepted")
    assert other[0] != first[0]
    assert len(list(services.ledger.sessions())) == 2


def test_registry_refuses_duplicates(services: Services) -> None:
    services.registry.register_charge_point("CP1", "a-password-of-16+")
    with pytest.raises(AlreadyExists):
        services.registry.register_charge_point("CP1")
    services.registry.disable_charge_point("CP1")
    assert services.registry.charge_point("CP1").disabled
    assert [cp.name for cp in services.registry.charge_points()] == ["CP1"]


def test_two_processes_writing_one_chain_stay_consistent(pg_database: Database) -> None:
    """Two server processes behind a load balancer: a station reconnects to the other one. Each
    has a stale cache of the chain's tail; the version conflict is retried, no link breaks."""
    one = Services.build(Settings(database_url=pg_database.url))
    two = Services.build(Settings(database_url=pg_database.url))
    one.start()
    two.start()
    try:
        for round_ in range(5):
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                futures = [
                    pool.submit(svc.committer.run_now, RecordFrames("CP1", [f"{round_}-{i}"]))
                    for i, svc in enumerate([one, two, one, two])
                ]
                for f in futures:
                    f.result(timeout=30)
        report = verify_chain(one.ledger, "CP1")
        assert (report.frames, report.broken) == (20, None)
    finally:
        one.close()
        two.close()


def test_sessions_survive_a_restart(database: Database) -> None:
    registry, ledger = build_applications(database)
    svc = Services.build(Settings(database_url=database.url))
    svc.start()
    payload = {"connectorId": 2, "idTag": "UNKNOWN", "meterStart": 0, "timestamp": "2026-11-24T10:00:00Z"}
    tx, status = svc.committer.run_now(StartTransaction("CP9", payload))
    svc.close()
    assert status == "Invalid"  # unknown tags are answered Invalid, and the session still kept
    sessions = list(ledger.sessions())
    assert [(s.transaction_id, s.authorization_status) for s in sessions] == [(str(tx), "Invalid")]
    assert sessions[0].id == ChargingSession.create_id("CP9", "ocpp1.6", str(tx))
    registry.close()
    ledger.close()


class Explode:
    """A unit whose command raises; `fail` records the frame and says so."""

    def __init__(self, charge_point: str) -> None:
        self.charge_point = charge_point

    def run(self, uow: UnitOfWork) -> str:
        uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=T0, text="boom"
        )
        raise RuntimeError("the handler failed")

    def fail(self, uow: UnitOfWork, exc: Exception) -> str:
        uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=T0, text="boom"
        )
        return f"failed: {exc}"


class Unstorable(RecordFrames):
    """Saving this unit's events fails outside the database: the message id holds a lone
    surrogate, which cannot be encoded. `fail` records a clean frame instead."""

    def run(self, uow: UnitOfWork) -> int:
        uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=T0, text="x", message_id="\ud800"
        )
        return 0

    def fail(self, uow: UnitOfWork, exc: Exception) -> int:
        return RecordFrames(self.charge_point, ["kept instead"]).run(uow)


def test_a_failing_unit_does_not_cost_its_batch(services: Services) -> None:
    """One unit raises and another cannot be saved, in a batch with good ones: the good ones
    commit, the bad ones record what `fail` records, and no unsaved change stays cached."""
    committer = services.committer
    committer.stop()  # queue a whole batch before the writer starts
    fresh = Services.build(Settings(database_url=services.database.url))
    try:
        for name in ("CP1", "CP2", "CP3"):  # warm the cache, so eviction matters
            fresh.committer.run_now(RecordFrames(name, ["warm"]))
        futures = [
            fresh.committer.submit(RecordFrames("CP1", ["a"])),
            fresh.committer.submit(Explode("CP2")),
            fresh.committer.submit(Unstorable("CP3", [])),
            fresh.committer.submit(RecordFrames("CP1", ["b"])),
        ]
        fresh.start()
        results = [f.result(timeout=30) for f in futures]
        assert results == [3, "failed: the handler failed", 3, 4]
        assert fresh.committer.batches == 3 + 4  # the warm-up, then each unit alone
        # A later unit sees exactly what was stored, so every chain is whole.
        assert fresh.committer.run_now(RecordFrames("CP3", ["after"])) == 4
        for name, frames in (("CP1", 3), ("CP2", 2), ("CP3", 3)):
            report = verify_chain(fresh.ledger, name)
            assert (report.frames, report.broken) == (frames, None), name
        texts = [f.text for f in fresh.ledger.frames("CP3")]
        assert texts == ["warm", "kept instead", "after"]
    finally:
        fresh.close()


def test_station_json_shaped_like_the_stores_type_encoding_still_loads(database: Database) -> None:
    """eventsourcing decodes an object with exactly `_type_` and `_data_` as a stored type: such
    station data is renamed when parsed, so its event loads again (the frame keeps the text)."""
    from ledger.values import parse_exact

    frame = '{"meterValue": [{"sampledValue": [{"value": "1", "x": {"_type_": "nope", "_data_": 1}}]}]}'
    payload = parse_exact(frame)
    assert payload["meterValue"][0]["sampledValue"][0]["x"] == {"_type_ (as sent)": "nope", "_data_": 1}
    escaped = parse_exact('{"x": {"\\u005ftype_": "nope", "_data_": 1}}')  # a JSON escape hides nothing
    assert escaped == {"x": {"_type_ (as sent)": "nope", "_data_": 1}}

    registry, ledger = build_applications(database)
    try:
        session = ChargingSession(charge_point="CP", family="ocpp2", transaction_id="t", protocol="ocpp2.0.1")
        session.update(digest="d", source_frame={"charge_point": "CP", "seq": 1, "hash": "h"},
                       source_action="TransactionEvent", station_time=None,
                       meter_values=payload["meterValue"])
        ledger.save(session)
    finally:
        registry.close()
        ledger.close()
    registry, ledger = build_applications(database)
    try:
        (loaded,) = [e for e in ledger.session_events(session.id) if type(e).__name__ == "Updated"]
        assert loaded.meter_values == payload["meterValue"]
    finally:
        registry.close()
        ledger.close()


def test_many_aggregates_read_in_one_go_are_those_read_one_by_one(database: Database) -> None:
    """`aggregates` / `events_of` (issuing reads an invoice's 30 sessions in one query) give
    what the repository gives, across pages of ids, on both stores."""
    registry, ledger = build_applications(database)
    try:
        claims = [SessionClaim(session_id=f"s{n}") for n in range(_PAGE + 3)]
        for n, claim in enumerate(claims[:5]):
            claim.claim(uuid4(), f"LB-{n}")
        registry.save(*claims)
        ids = [claim.id for claim in claims]
        unknown = uuid4()

        found = registry.aggregates(SessionClaim, [*reversed(ids), unknown])

        assert set(found) == set(ids)  # more than a page; an unknown id is left out
        for aggregate_id in ids:
            alone = registry.get_or_none(SessionClaim, aggregate_id)
            assert alone is not None
            assert vars(found[aggregate_id]) == vars(alone)
        assert found[ids[0]].number == "LB-0" and found[ids[0]].version == 2
        assert [e.originator_version for e in registry.events_of([ids[1]])[ids[1]]] == [1, 2]
        assert registry.aggregates(SessionClaim, []) == {}
        with pytest.raises(TypeError, match="not a Customer"):
            registry.aggregates(Customer, [ids[0]])
        assert ledger.sessions_with_events([ids[0]]) == {}  # another application's table
    finally:
        registry.close()
        ledger.close()


def test_a_reader_sees_what_another_server_process_stored(database: Database) -> None:
    """The ledger's aggregate cache is its committer's, current with this process's writes
    only: `current` (what the API and issuing read) gives what is stored now, also when another
    process has written since this one cached the aggregate."""
    apps = [build_applications(database), build_applications(database)]
    try:
        (_, here), (_, there) = apps
        price = SessionPrice(session_id=uuid4())
        at = datetime(2026, 11, 2, tzinfo=timezone.utc)
        price.record({"status": "unpriced", "reason": "no tariff"}, cause="ended", by="pricer", at=at)
        here.save(price)
        cached = here.get_or_none(SessionPrice, price.id)
        assert cached is not None and cached.outcome == {"status": "unpriced", "reason": "no tariff"}

        theirs = there.get_or_none(SessionPrice, price.id)
        assert theirs is not None
        theirs.record({"status": "priced", "total": "3.90"}, cause="tariff assigned", by="op", at=at)
        there.save(theirs)

        assert here.get_or_none(SessionPrice, price.id) is cached  # the committer's cache: stale
        now = here.current(SessionPrice, price.id)
        assert now is not None and now.version == 3
        assert now.outcome == {"status": "priced", "total": "3.90"} and now.outcome_version == 3
        assert here.current(SessionPrice, uuid4()) is None
    finally:
        for registry, ledger in apps:
            registry.close()
            ledger.close()


def test_stored_events_keep_every_byte_on_both_stores(database: Database) -> None:
    """What an application inserts is read back byte for byte: states with every byte value,
    an empty one and a large one, several in one insert. On PostgreSQL the recorder sends them
    in binary (`ledger.store.PostgresRecorder`), not as escaped hex text."""
    from eventsourcing.persistence import StoredEvent

    from ledger.store import PostgresRecorder

    registry = Registry(env=database.eventsourcing_env("registry"))
    try:
        recorder = registry.recorder
        if database.backend == "postgresql":
            assert isinstance(recorder, PostgresRecorder)
            assert "%b::" in recorder.insert_events_statement.as_string(None)
            with database.connect() as conn:  # large states compress with lz4 (0011), if built in
                lz4 = "lz4" in conn.execute(
                    "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
                ).fetchone()[0]
                compression = conn.execute(
                    "SELECT attcompression FROM pg_attribute "
                    "WHERE attrelid = 'registry_events'::regclass AND attname = 'state'"
                ).fetchone()[0]
            assert compression == ("l" if lz4 else "")
        compressible = b"".join(b'{"kWh": "%d.%03d"}' % (n, n % 997) for n in range(20_000))
        states = [bytes(range(256)) * 3, b"", os.urandom(300_000), compressible,
                  "€ \\u0000 '\"\\\\".encode()]
        ids = [uuid4() for _ in states]
        recorder.insert_events([
            StoredEvent(originator_id=i, originator_version=1, topic="tests:Raw", state=state)
            for i, state in zip(ids, states, strict=True)
        ])
        for i, state in zip(ids, states, strict=True):
            (stored,) = recorder.select_events(i)
            assert bytes(stored.state) == state and stored.topic == "tests:Raw"
    finally:
        registry.close()
