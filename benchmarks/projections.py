#!/usr/bin/env python
"""Projection benchmark: rebuilding the sessions read model, against a bare read of the same events.

    .venv/bin/python benchmarks/projections.py [--events N] [--repeat R] [--keep]
                                               [--charge-points C] [--dbname NAME] [--profile]

What it does, in one run:

1. The PostgreSQL database NAME (default ladebuch_bench_projections, on the server of
   LADEBUCH_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres): when an
   earlier run with --keep left it holding the events of the same --events, --charge-points and
   generator, it is reused (and migrated, for migrations added since). Otherwise it is dropped
   if it exists, created, migrated and filled with about N ChargingSession events:
   C charge points (half OCPP 1.6, half 2.0.1) charge side by side, one message a minute each,
   so the events of many sessions interleave in the notification log as they do on a live
   server. A session is Opened + Started, 10 to 30 meter-value Updates (energy, power, current
   per phase, voltage, as each protocol sends them) and Ended; 1 in 40 gets a late reading after
   its end. The aggregates are built with `ChargingSession`'s own commands and written with
   `Ledger.save(...)`, one save per simulated minute (no frames, no WebSocket).
2. Measures, alternating the order every repetition (--repeat R, default 3), each over all
   stored session events:
   - BASELINE: eventsourcing's notification-log read + decode, no writes:
     `ledger.recorder.select_notifications(start, limit=<runner page>,
     topics=projections.sessions.TOPICS)` page by page, `ledger.mapper.to_domain_event(n)` each;
   - OURS: `Runner.rebuild()` of the sessions projection, built as `projections.build_runners`
     builds it (empties rm_sessions and rm_session_evidence, then applies every page with its
     tracking record), checked afterwards against the stored events.
   Before each measured run (untimed): VACUUM of the read-model tables and a CHECKPOINT, so
   every run starts from the same state (a full read model, no dead rows, no pending dirty
   buffers). One unmeasured warm-up of each comes first.
   Per run: events/s (session events / wall time), CPU seconds of this process and of the
   PostgreSQL backends serving the database.
3. Prints the per-run rates, the median of each, and the median over the repetitions of the
   ratio ours / baseline, against the goal (>= 0.5).
4. With --profile: one more rebuild under cProfile (slower than the measured ones); prints the
   functions with the most own time and the most cumulative time.

The database is dropped at the end unless --keep, which keeps it for the next run (then only
step 2 and on take time). Generating 1,000,000 events takes a few minutes.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import itertools
import json
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The repository root first, so that this file's name does not hide the `projections` package;
# then this directory, for `ingest`.
sys.path[:0] = [str(ROOT), str(HERE)]

import ingest  # noqa: E402 - found through the path set above
from psycopg import sql  # noqa: E402

from ledger.application import Ledger, build_applications  # noqa: E402
from ledger.frames import FrameRef  # noqa: E402
from ledger.registry import ACCEPTED  # noqa: E402
from ledger.sessions import OCPP2, OCPP16, ChargingSession  # noqa: E402
from ledger.store import Database, migrate  # noqa: E402
from ledger.values import digest, iso  # noqa: E402
from projections import sessions  # noqa: E402
from projections.runner import Runner  # noqa: E402
from tests.conftest import PG_ADMIN_URL, drop_pg_database  # noqa: E402

DBNAME = "ladebuch_bench_projections"
# Part of the fingerprint a kept database is reused by: change it when the generated events change.
GENERATOR = 1
SEED = 20260302
GOAL = 0.5

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
TAGS = [f"04{i * 7919:010X}" for i in range(1, 501)]
ENERGY = sessions.ENERGY
STOP_REASONS = ("EVDisconnected", "Local", "Remote")


# =============================================================================================
# The events: a fleet of charge points charging side by side
# =============================================================================================


class Station:
    """One charge point: back-to-back sessions, one message a minute while a session runs."""

    def __init__(
        self, index: int, rng: random.Random, transaction_ids: itertools.count[int]
    ) -> None:
        self.name = f"BENCH-CP-{index:04d}"
        self.protocol = "ocpp1.6" if index % 2 else "ocpp2.0.1"
        self.rng = rng
        self.transaction_ids = transaction_ids
        self.clock = T0 + timedelta(seconds=rng.randrange(3600))
        self.register_wh = rng.randrange(100_000, 40_000_000)
        self.seq = 1  # the frame log's Opened; frames start at 2, each message and its answer
        self.idle = rng.randrange(30)  # minutes until the first session: staggered starts
        self.session: ChargingSession | None = None
        self.ended = False
        self.late = False
        self.updates_left = 0
        self.seq_no = 0
        self.power_w = 0
        self.connector = 1
        self.tag = ""

    def tick(self, closing: bool) -> ChargingSession | None:
        """One minute passes; returns the session that got events, if any. When `closing`,
        running sessions end at once and no new one starts."""
        self.clock += MINUTE
        session = self.session
        if session is None:
            if closing or self.idle > 0:
                self.idle -= 1
                return None
            return self._start()
        self.register_wh += self.power_w // 60
        if self.ended:
            self._reading(session, after_end=True)
            self._free()
        elif self.updates_left > 0 and not closing:
            self.updates_left -= 1
            self._reading(session, after_end=False)
        else:
            self._end(session)
            if not self.late or closing:
                self._free()
        return session

    def _free(self) -> None:
        self.session = None
        self.ended = False
        self.idle = self.rng.randrange(1, 15)

    def _frame(self) -> dict[str, Any]:
        self.seq += 2
        frame_hash = hashlib.sha256(f"{self.name}/{self.seq}".encode()).hexdigest()
        return FrameRef(self.name, self.seq, frame_hash).as_dict()

    def _start(self) -> ChargingSession:
        rng = self.rng
        self.updates_left = rng.randint(10, 30)
        self.late = rng.randrange(40) == 0
        self.power_w = rng.choice((3_680, 7_360, 11_040, 22_080))
        self.connector = rng.randint(1, 2)
        self.tag = rng.choice(TAGS)
        self.seq_no = 0
        frame = self._frame()
        if self.protocol == "ocpp1.6":
            transaction_id = str(next(self.transaction_ids))
            session = ChargingSession(
                charge_point=self.name, family=OCPP16, transaction_id=transaction_id,
                protocol=self.protocol,
            )
            payload: dict[str, Any] = {
                "connectorId": self.connector, "idTag": self.tag, "meterStart": self.register_wh,
                "timestamp": iso(self.clock),
            }
            session.start(
                digest=digest(payload), source_frame=frame, station_time=self.clock,
                connector_id=self.connector, evse_id=None, id_token=self.tag, id_token_type=None,
                authorization_status=ACCEPTED, meter_start=Decimal(self.register_wh),
                meter_values=[],
            )
        else:
            transaction_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            session = ChargingSession(
                charge_point=self.name, family=OCPP2, transaction_id=transaction_id,
                protocol=self.protocol,
            )
            meter_values = [self._meter_value_2("Transaction.Begin")]
            payload = self._event_2("Started", "Authorized", transaction_id, meter_values)
            session.start(
                digest=digest(payload), source_frame=frame, station_time=self.clock,
                connector_id=self.connector, evse_id=1, id_token=self.tag,
                id_token_type="ISO14443", authorization_status=ACCEPTED, meter_start=None,
                meter_values=meter_values, seq_no=self.seq_no, trigger_reason="Authorized",
                charging_state="Charging",
            )
        self.session = session
        return session

    def _reading(self, session: ChargingSession, *, after_end: bool) -> None:
        """Periodic meter values: MeterValues (1.6) or TransactionEvent Updated (2.0.1). After the
        end the session flags them itself."""
        frame = self._frame()
        if self.protocol == "ocpp1.6":
            meter_values = [self._meter_value_16("Sample.Periodic")]
            session.update(
                digest=digest({"connectorId": self.connector, "meterValue": meter_values}),
                source_frame=frame, source_action="MeterValues", station_time=self.clock,
                meter_values=meter_values,
            )
        else:
            self.seq_no += 1
            meter_values = [self._meter_value_2("Sample.Periodic")]
            trigger = "MeterValuePeriodic"
            payload = self._event_2("Updated", trigger, session.transaction_id, meter_values)
            session.update(
                digest=digest(payload), source_frame=frame, source_action="TransactionEvent",
                station_time=self.clock, meter_values=meter_values, seq_no=self.seq_no,
                trigger_reason=trigger, charging_state="SuspendedEV" if after_end else "Charging",
            )

    def _end(self, session: ChargingSession) -> None:
        frame = self._frame()
        reason = self.rng.choice(STOP_REASONS)
        if self.protocol == "ocpp1.6":
            transaction_data = [self._meter_value_16("Transaction.End")]
            payload: dict[str, Any] = {
                "transactionId": int(session.transaction_id), "idTag": self.tag,
                "meterStop": self.register_wh, "timestamp": iso(self.clock), "reason": reason,
                "transactionData": transaction_data,
            }
            session.end(
                digest=digest(payload), source_frame=frame, station_time=self.clock,
                meter_stop=Decimal(self.register_wh), reason=reason, id_token=self.tag,
                id_token_type=None, meter_values=transaction_data,
            )
        else:
            self.seq_no += 1
            meter_values = [self._meter_value_2("Transaction.End")]
            payload = self._event_2("Ended", "EVCommunicationLost", session.transaction_id,
                                    meter_values)
            session.end(
                digest=digest(payload), source_frame=frame, station_time=self.clock,
                meter_stop=None, reason=reason, id_token=self.tag, id_token_type="ISO14443",
                meter_values=meter_values, seq_no=self.seq_no, trigger_reason="EVCommunicationLost",
                source_action="TransactionEvent",
            )
        self.ended = True

    def _event_2(
        self, event_type: str, trigger: str, transaction_id: str, meter_values: list[Any]
    ) -> dict[str, Any]:
        """A TransactionEvent payload as the handler digests it."""
        return {
            "eventType": event_type, "timestamp": iso(self.clock), "triggerReason": trigger,
            "seqNo": self.seq_no,
            "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": self.connector},
            "idToken": {"idToken": self.tag, "type": "ISO14443"}, "meterValue": meter_values,
        }

    def _meter_value_16(self, context: str) -> dict[str, Any]:
        """OCPP 1.6: every value a string, units by name."""
        amps = f"{self.power_w / 3 / 230:.1f}"
        common = {"context": context, "location": "Outlet"}
        return {
            "timestamp": iso(self.clock),
            "sampledValue": [
                {"value": str(self.register_wh), **common, "format": "Raw", "measurand": ENERGY,
                 "unit": "Wh"},
                {"value": str(self.power_w), **common, "measurand": "Power.Active.Import",
                 "unit": "W"},
                *({"value": amps, **common, "measurand": "Current.Import", "phase": phase,
                   "unit": "A"} for phase in ("L1", "L2", "L3")),
                {"value": "230.4", **common, "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
            ],
        }

    def _meter_value_2(self, context: str) -> dict[str, Any]:
        """OCPP 2.0.1: JSON numbers (exact decimals once parsed), units in unitOfMeasure."""
        amps = Decimal(f"{self.power_w / 3 / 230:.1f}")
        return {
            "timestamp": iso(self.clock),
            "sampledValue": [
                {"value": Decimal(self.register_wh) / 1000, "context": context,
                 "measurand": ENERGY, "location": "Outlet",
                 "unitOfMeasure": {"unit": "kWh", "multiplier": 0}},
                {"value": self.power_w, "context": context, "measurand": "Power.Active.Import",
                 "unitOfMeasure": {"unit": "W"}},
                *({"value": amps, "context": context, "measurand": "Current.Import",
                   "phase": phase, "unitOfMeasure": {"unit": "A"}} for phase in ("L1", "L2", "L3")),
                {"value": Decimal("230.4"), "context": context, "measurand": "Voltage",
                 "phase": "L1-N", "unitOfMeasure": {"unit": "V"}},
            ],
        }


def generate(ledger: Ledger, events: int, charge_points: int, seed: int) -> int:
    """Store about `events` session events; returns how many were stored."""
    rng = random.Random(seed)
    transaction_ids = itertools.count(1)
    stations = [Station(i, rng, transaction_ids) for i in range(1, charge_points + 1)]
    stored = 0
    started = time.perf_counter()
    next_report = events // 10
    while True:
        running = sum(station.session is not None for station in stations)
        # Close in time: ending every running session then lands at about `events`.
        closing = stored + running >= events
        if closing and running == 0:
            return stored
        touched = [s for s in (station.tick(closing) for station in stations) if s is not None]
        if touched:
            stored += len(ledger.save(*touched))
        if stored >= next_report:
            rate = stored / (time.perf_counter() - started)
            print(f"  generated {stored:,} events ({rate:,.0f}/s)", flush=True)
            next_report += events // 10


# =============================================================================================
# The database: made once, kept with --keep
# =============================================================================================


@dataclass(frozen=True)
class Stored:
    """What the store holds: session events, and sessions (their first events, Opened)."""

    events: int
    sessions: int


def database_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _admin() -> Database:
    return Database.from_url(PG_ADMIN_URL)


def create_database(name: str) -> None:
    with _admin().connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fingerprint(name: str) -> dict[str, Any] | None:
    """What a finished generation wrote on the database (COMMENT ON DATABASE), if anything."""
    with _admin().connect() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        found: dict[str, Any] = json.loads(row[0])
    except ValueError:
        return None
    return found


def write_fingerprint(name: str, value: dict[str, Any]) -> None:
    with _admin().connect() as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(json.dumps(value, sort_keys=True))
            )
        )


def count_stored(database: Database) -> Stored:
    with database.connect() as conn:
        events, opened = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE originator_version = 1) FROM ledger_events "
            "WHERE topic = ANY(%s)",
            (list(sessions.TOPICS),),
        ).fetchone()
    return Stored(events=events, sessions=opened)


def prepare(database: Database, *, events: int, charge_points: int, dbname: str) -> Stored:
    """The database with the events of this fingerprint: reused when a kept one matches, else
    made afresh and filled."""
    want = {"generator": GENERATOR, "events": events, "charge_points": charge_points, "seed": SEED}
    found = fingerprint(dbname)
    if found is not None and {k: found.get(k) for k in want} == want:
        migrate(database)  # migrations added since it was kept
        stored = count_stored(database)
        if stored.events == found.get("stored"):
            print(
                f"database {dbname}: reusing {stored.events:,} stored events "
                f"({stored.sessions:,} sessions, {charge_points} charge points)",
                flush=True,
            )
            return stored
    # The event tables are append-only (a trigger refuses DELETE and TRUNCATE): start afresh.
    drop_pg_database(dbname)
    create_database(dbname)
    migrate(database)
    print(
        f"database {dbname}: generating about {events:,} session events "
        f"({charge_points} charge points, half OCPP 1.6, half 2.0.1) ...",
        flush=True,
    )
    started = time.perf_counter()
    registry, ledger = build_applications(database)
    registry.close()
    try:
        written = generate(ledger, events, charge_points, SEED)
    finally:
        ledger.close()
    with database.connect() as conn:
        conn.execute("VACUUM (ANALYZE) ledger_events")
    stored = count_stored(database)
    if stored.events != written:
        raise RuntimeError(f"wrote {written:,} events but the store holds {stored.events:,}")
    write_fingerprint(dbname, want | {"stored": stored.events})
    print(
        f"  stored {stored.events:,} events ({stored.sessions:,} sessions) "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return stored


# =============================================================================================
# The measurements
# =============================================================================================


@dataclass(frozen=True)
class Run:
    kind: str  # "baseline" | "ours"
    events: int
    seconds: float
    cpu_self: float  # this process, all threads
    cpu_pg: float  # the PostgreSQL backends serving the database

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def read_and_decode(ledger: Ledger, page: int) -> int:
    """The baseline: the notification log, page by page, every session event decoded."""
    recorder, mapper = ledger.recorder, ledger.mapper
    decoded = 0
    start = 1
    while True:
        notifications = recorder.select_notifications(start, limit=page, topics=sessions.TOPICS)
        for notification in notifications:
            mapper.to_domain_event(notification)
        decoded += len(notifications)
        if len(notifications) < page:
            return decoded
        start = notifications[-1].id + 1


def check_read_model(runner: Runner, stored: Stored) -> None:
    """The rebuild really built the model: one row per session, one evidence row per event after
    Opened, and the tracking position at the head."""
    with runner.view.reading() as cur:
        rows, events = cur.execute(
            "SELECT count(*), coalesce(sum(events), 0) FROM rm_sessions"
        ).fetchone()
        evidence = cur.execute("SELECT count(*) FROM rm_session_evidence").fetchone()[0]
    status = runner.status()
    got = (rows, events, evidence, status.lag)
    want = (stored.sessions, stored.events, stored.events - stored.sessions, 0)
    if got != want:
        raise RuntimeError(
            f"read model after rebuild: (sessions, events, evidence rows, lag) = {got}, want {want}"
        )


def settle(database: Database) -> None:
    """Untimed, before every measured run: the read model without dead rows, no dirty buffers."""
    with database.connect() as conn:
        conn.execute("VACUUM (ANALYZE) rm_sessions, rm_session_evidence")
        conn.execute("CHECKPOINT")


def measure(kind: str, work: Callable[[], int], events: int, pg: ingest.PgBackends) -> Run:
    before = pg.snapshot()
    cpu = time.process_time()
    started = time.perf_counter()
    done = work()
    seconds = time.perf_counter() - started
    cpu_self = time.process_time() - cpu
    cpu_pg = ingest.PgBackends.delta(before, pg.snapshot())
    if kind == "baseline" and done != events:
        raise RuntimeError(f"baseline decoded {done:,} events, the store holds {events:,}")
    return Run(kind, events, seconds, cpu_self, cpu_pg)


def _print_run(label: str, run: Run) -> None:
    print(
        f"{label:>9s} {run.kind:8s}: {run.events:,} events in {run.seconds:6.1f} s = "
        f"{ingest._fmt_rate(run.rate):>7s} events/s   (cpu: this process {run.cpu_self:5.1f} s, "
        f"postgres {run.cpu_pg:5.1f} s)",
        flush=True,
    )


def profile_rebuild(runner: Runner, database: Database, out: Path, top: int = 25) -> None:
    settle(database)
    print(f"\nprofiling one more rebuild under cProfile (slower than the measured runs) -> {out}")
    profiler = cProfile.Profile()
    profiler.runcall(runner.rebuild)
    profiler.dump_stats(out)
    stats = pstats.Stats(str(out))
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        print(f"\n-- top {top} by {key} --")
        stats.sort_stats(key).print_stats(top)


def print_summary(runs: list[Run], stored: Stored, page: int) -> None:
    by_kind = {kind: [r for r in runs if r.kind == kind] for kind in ("baseline", "ours")}
    medians = {kind: ingest._median([r.rate for r in rs]) for kind, rs in by_kind.items()}
    ratios = [o.rate / b.rate for b, o in zip(by_kind["baseline"], by_kind["ours"])]
    ratio = ingest._median(ratios)
    print()
    print("=" * 100)
    print(
        f"SUMMARY  (PostgreSQL, {stored.events:,} session events of {stored.sessions:,} sessions, "
        f"page {page}, {len(ratios)} repetition(s), alternating order)"
    )
    print("=" * 100)
    for kind, label in (
        ("baseline", "baseline: select_notifications + to_domain_event"),
        ("ours", "ours:     Runner.rebuild() of the sessions projection"),
    ):
        rates = ", ".join(ingest._fmt_rate(r.rate) for r in by_kind[kind])
        cpu = ingest._median([r.cpu_self / r.events * 1e6 for r in by_kind[kind]])
        cpu_pg = ingest._median([r.cpu_pg / r.events * 1e6 for r in by_kind[kind]])
        print(
            f"  {label}\n      runs {rates} events/s\n"
            f"      median {ingest._fmt_rate(medians[kind])} events/s   "
            f"(cpu per event: this process {cpu:.0f} us, postgres {cpu_pg:.0f} us)"
        )
    print(
        f"  ratio ours / baseline per repetition: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"median {ratio:.2f} (ratio of the medians {medians['ours'] / medians['baseline']:.2f})"
    )
    print()
    verdict = "MET" if ratio >= GOAL else "NOT MET"
    print(f"GOAL  rebuild rate / read+decode rate >= {GOAL:.2f}: {ratio:.2f}  {verdict}")


def bench(args: argparse.Namespace) -> None:
    database = Database.from_url(database_url(args.dbname))
    ledger: Ledger | None = None
    runner: Runner | None = None
    pg: ingest.PgBackends | None = None
    try:
        stored = prepare(
            database, events=args.events, charge_points=args.charge_points, dbname=args.dbname
        )
        registry, ledger = build_applications(database)
        registry.close()
        runner = Runner(
            sessions.NAME, ledger, sessions.SessionsView(database), sessions.TOPICS, sessions.apply
        )
        pg = ingest.PgBackends(database)

        def baseline() -> int:
            assert ledger is not None and runner is not None
            return read_and_decode(ledger, runner.page)

        def ours() -> int:
            assert runner is not None
            return runner.rebuild()

        work = {"baseline": baseline, "ours": ours}
        print("warm-up (not counted)", flush=True)
        for kind in ("baseline", "ours"):
            settle(database)
            _print_run("warm-up", measure(kind, work[kind], stored.events, pg))
        check_read_model(runner, stored)

        runs: list[Run] = []
        for rep in range(args.repeat):
            order = ("baseline", "ours") if rep % 2 == 0 else ("ours", "baseline")
            for kind in order:
                settle(database)
                run = measure(kind, work[kind], stored.events, pg)
                if kind == "ours":
                    check_read_model(runner, stored)
                runs.append(run)
                _print_run(f"run {rep + 1}", run)
        print_summary(runs, stored, runner.page)
        if args.profile:
            out = Path(tempfile.gettempdir()) / f"{args.dbname}-rebuild.prof"
            profile_rebuild(runner, database, out)
    finally:
        if pg is not None:
            pg.close()
        if runner is not None:
            runner.view.close()
        if ledger is not None:
            ledger.close()
        if args.keep:
            print(f"\nkept database {args.dbname} ({database.url}); drop it with:  "
                  f'psql -c \'DROP DATABASE "{args.dbname}"\'')
        else:
            drop_pg_database(args.dbname)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="session events to store (default 1,000,000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="measured repetitions (default 3)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database (and reuse it on the next run)"
    )
    parser.add_argument(
        "--charge-points", type=int, default=100,
        help="charge points charging side by side (default 100)",
    )
    parser.add_argument("--dbname", default=DBNAME, help=f"database name (default {DBNAME})")
    parser.add_argument(
        "--profile", action="store_true", help="also profile one rebuild with cProfile"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1 or args.charge_points < 2:
        parser.error("--events and --repeat must be >= 1, --charge-points >= 2")
    print(
        f"Ladebuch projection benchmark: rebuild of the sessions read model vs notification-log "
        f"read + decode; {args.events:,} events, repeat {args.repeat}",
        flush=True,
    )
    started = time.perf_counter()
    bench(args)
    print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
