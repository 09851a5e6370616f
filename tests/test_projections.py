"""Read models on both stores: exactly-once application, rebuild, read-after-write, runners
racing each other."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from api.services import Services
from api.settings import Settings
from ledger.committer import UnitOfWork
from ledger.frames import INBOUND
from ledger import transactions
from ledger.store import Database
from projections import build_runners
from projections.sessions import COLUMNS
from tests.test_store import T0

START = {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": "2026-11-24T10:00:00Z"}


class Message:
    """Runs one ledger command for a 1.6 or 2.x message, as the OCPP handlers do."""

    def __init__(self, charge_point: str, command: Any, payload: dict[str, Any], message_id: str = "m") -> None:
        self.charge_point = charge_point
        self.command = command
        self.payload = payload
        self.message_id = message_id

    def run(self, uow: UnitOfWork) -> Any:
        ref = uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=T0, text=repr(self.payload)
        )
        kwargs: dict[str, Any] = {"charge_point": self.charge_point, "protocol": "ocpp1.6",
                                  "source_frame": ref, "payload": self.payload}
        if self.command in (transactions.meter_values_16, transactions.stop_transaction_16):
            kwargs["message_id"] = self.message_id
        return self.command(uow, **kwargs)

    def fail(self, uow: UnitOfWork, exc: Exception) -> Any:
        raise exc


def charge(
    services: Services, charge_point: str, meter_start: int, readings: list[str], meter_stop: int,
    *, id_tag: str = "TAG", started: str = "2026-11-24T10:00:00Z",
) -> int:
    run = services.committer.run_now
    start = START | {"meterStart": meter_start, "idTag": id_tag, "timestamp": started}
    tx, _ = run(Message(charge_point, transactions.start_transaction_16, start))
    for i, value in enumerate(readings):
        run(Message(charge_point, transactions.meter_values_16, {
            "connectorId": 1, "transactionId": tx,
            "meterValue": [{"timestamp": f"2026-11-24T10:0{i + 1}:00Z", "sampledValue": [{"value": value}]}]}))
    run(Message(charge_point, transactions.stop_transaction_16, {
        "transactionId": tx, "meterStop": meter_stop, "timestamp": "2026-11-24T11:00:00Z"}))
    return tx


def rows(services: Services) -> list[tuple[Any, ...]]:
    view = services.projections["sessions"].view
    with view.reading() as cur:
        sessions = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM rm_sessions ORDER BY session_id").fetchall()
        evidence = cur.execute(
            "SELECT session_id, event_version, kind, frame_seq, frame_hash, after_end "
            "FROM rm_session_evidence ORDER BY session_id, event_version"
        ).fetchall()
    return [tuple(r) for r in sessions] + [tuple(r) for r in evidence]


def test_sessions_read_model_follows_the_ledger(database: Database) -> None:
    services = Services.build(Settings(database_url=database.url))
    services.start()
    try:
        tx = charge(services, "CP1", 1000, ["1500.5", "2000.25"], 2500)
        charge(services, "CP2", 0, [], 7)
        services.wait_for_read_models()  # read-after-write: no sleeping
        runner = services.projections["sessions"]
        assert runner.status().lag == 0
        view = runner.view
        with view.reading() as cur:
            row = cur.execute(
                "SELECT charge_point, transaction_id, state, id_token, meter_start_wh, "
                "meter_stop_wh, energy_wh, readings, after_end_readings, events "
                "FROM rm_sessions WHERE charge_point = %s", ("CP1",)
            ).fetchone()
            evidence = cur.execute(
                "SELECT kind, frame_seq FROM rm_session_evidence e JOIN rm_sessions s "
                "ON s.session_id = e.session_id WHERE s.charge_point = %s ORDER BY event_version",
                ("CP1",),
            ).fetchall()
        assert tuple(row[:4]) == ("CP1", str(tx), "ended", "TAG")
        assert [Decimal(v) for v in row[4:7]] == [Decimal(1000), Decimal(2500), Decimal(1500)]
        assert tuple(row[7:]) == (2, 0, 5)
        assert [tuple(e) for e in evidence] == [("Started", 2), ("Updated", 3), ("Updated", 4), ("Ended", 5)]
    finally:
        services.close()


def test_rebuild_gives_the_same_rows(database: Database) -> None:
    services = Services.build(Settings(database_url=database.url))
    services.start()
    try:
        for i in range(5):
            charge(services, f"CP{i}", i * 100, ["1.5", "2.75"], i * 100 + 9)
        services.wait_for_read_models()
        live = rows(services)
        assert len(live) == 5 + 5 * 4
        runner = services.projections["sessions"]
        runner.stop()  # the rebuild runs alone, as `ladebuch projections rebuild` does
        advanced = runner.rebuild()
        assert advanced == services.ledger.recorder.max_notification_id()
        assert rows(services) == live  # byte for byte
    finally:
        services.close()


def test_runners_racing_apply_each_event_once(database: Database) -> None:
    """Two server processes run the same projection on one database."""
    services = Services.build(Settings(database_url=database.url))
    services.start(projections=False)
    try:
        for i in range(4):
            charge(services, f"CP{i}", 0, [str(n) for n in range(1, 6)], 10)
        sets = [build_runners(database, services.ledger, services.registry) for _ in range(2)]
        first, second = (runners["sessions"] for runners in sets)
        for runner in (first, second):
            runner.page = 3  # many small pages, so the two interleave
        threads = [threading.Thread(target=r.catch_up) for r in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with first.view.reading() as cur:
            counts = cur.execute("SELECT readings, events FROM rm_sessions").fetchall()
        assert sorted(tuple(c) for c in counts) == [(5, 8)] * 4
        for runners in sets:
            for runner in runners.values():
                runner.view.close()
    finally:
        services.close()


def test_projections_cli(sqlite_database: Database) -> None:
    from tests.conftest import run_cli

    services = Services.build(Settings(database_url=sqlite_database.url))
    services.start(projections=False)
    try:
        charge(services, "CP1", 0, ["1"], 5)
    finally:
        services.close()
    before = run_cli(sqlite_database, "projections", "status")
    assert before.returncode == 0
    assert "sessions" in before.stdout and " 0 " in before.stdout  # nothing applied yet
    rebuilt = run_cli(sqlite_database, "projections", "rebuild", "sessions")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt sessions up to notification" in rebuilt.stdout
    assert "[##############################]" in rebuilt.stderr  # the progress bar, complete
    import json

    status = json.loads(run_cli(sqlite_database, "projections", "status", "--json").stdout)
    assert status[0]["lag"] == 0 and status[0]["position"] == status[0]["head"] > 0
    bad = run_cli(sqlite_database, "projections", "rebuild", "nope")
    assert bad.returncode == 2 and "no projection named 'nope'" in bad.stderr
