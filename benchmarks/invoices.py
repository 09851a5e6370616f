#!/usr/bin/env python
"""Invoice benchmark: a monthly run on PostgreSQL (drafts, issue, PDF, XML) for C customers with
S sessions each, beside bare reportlab rendering a PDF of as many table lines.

    .venv/bin/python benchmarks/invoices.py [--customers C] [--sessions S] [--repeat R]
                                            [--bare-docs B] [--workers W] [--dbname NAME]
                                            [--keep]

What it does, in one run:

1. Seeding (not timed, ~3 min for the defaults). A fresh PostgreSQL database NAME (default
   ladebuch_bench_invoices, on the server of LADEBUCH_TEST_DATABASE_URL, default
   postgresql://postgres@127.0.0.1:5432/postgres), migrated. In the registry, as the API writes
   it (the aggregates' own commands, saved in chunks): an issuer with a number range, a site
   (Europe/Berlin, calibrated meters) whose tariff is ENERGY 0.39 EUR/kWh + 19 % VAT, and per
   customer (default 1,000) a customer with a billing address, an RFID card assigned to them and
   their own wallbox (an OCPP 1.6 charge point at the site) with its meter's secp256r1 key
   registered.
   The month, November 2026: each wallbox charges S sessions (default 30), one a day, in W
   worker processes (--workers, default 2; each a server process of its own with its group
   committer, as several server processes share one database). Every frame goes the product's
   way minus the socket: the station's connection opened and closed as the endpoint records
   it, the raw OCPP-J text of each StartTransaction and StopTransaction through
   `OcppConnection.route_message` (exact parse, schema check, handler, committer: frame log,
   session events, signature verification at ingest, Eichrecht assessment), the answer read
   back; all of a worker's stations side by side, so the committer batches as under load.
   Each StopTransaction carries the session's two OCMF records in transactionData
   (Transaction.Begin and Transaction.End, consecutive pages, each signed on its own with the
   wallbox meter's key). Then each worker prices its sessions with the pricer's own code
   (`price_outcome`, its outcome recorded by `RecordPrice` through the committer), reading the
   unchanging registry once rather than per session and group-committing the records, which the
   server's pricer, committing one session at a time, does not. The main process runs the read
   models meanwhile, moves the pricer's positions to the heads of the logs (a pricer would only
   find the same outcomes again) and waits until every read model has caught up.
2. The monthly run, timed end to end: the command itself, `ladebuch invoices run --period
   2026-11 --issue --files --workers W --json` (`api.cli.cmd_invoices_run`, its services built
   anew, its W file workers spawned fresh): drafts (`issuing.run`), each draft issued one after
   the other (a number range is sequential), and each issued invoice's files rendered and
   archived by the workers as soon as it is issued. The drafts and each issue are timed inside
   it; its CPU seconds are split into this process, its workers and the rest of the machine
   (PostgreSQL).
3. The files again, in this process: per issued invoice, `Invoice.from_json(document)`, then
   `files.render_all(document)` (the CII XML built and validated once, the Factur-X PDF/A-3
   with that XML and the transparency files embedded, the evidence ZIP), which must give the
   bytes the run's workers archived (SHA-256 compared). The invoices in R rounds (--repeat,
   default 3), each beside (before or after: the order alternates) the BASELINE on B documents
   (--bare-docs, default 100): bare reportlab, a platypus SimpleDocTemplate holding one table
   of an invoice's 30 lines (number, start, end, charge point, kWh, net; the standard fonts),
   built to bytes. Per round: ours in invoices/s, `pdf.render` alone (timed inside the same
   renderings), bare in documents/s, and the ratios; the medians are reported, with the time
   inside `pdf.render`, `einvoice.cii_xml` and `einvoice.validate`.
4. A compact table with every stage, the medians and the goals: the monthly run at >= 0.5 of
   the bare rate, and under a minute on this machine. The database is dropped at the end unless
   --keep.

Use --customers 50 for a quick check (under a minute). Stages are timed with the wall clock
(they wait on PostgreSQL too); this process's CPU time is shown beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from uuid import UUID

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file has the `invoices` package's name: the repository root first, this directory out.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from psycopg import sql  # noqa: E402
from reportlab.lib import colors  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.platypus import SimpleDocTemplate, Table, TableStyle  # noqa: E402

from api.ocpp.connection import OcppConnection  # noqa: E402
from api.services import Services  # noqa: E402
from api.settings import Settings  # noqa: E402
from invoices import files, issuing  # noqa: E402
from invoices.document import Invoice as Document  # noqa: E402
from invoices.pricer import SESSIONS, TARIFFS, RecordPrice, price_outcome  # noqa: E402
from ledger.application import Registry  # noqa: E402
from ledger.commands import CloseConnection, OpenConnection  # noqa: E402
from ledger.invoicing import Invoice  # noqa: E402
from ledger.priced import PRICED  # noqa: E402
from ledger.registry import ChargePoint, Customer, IdTag, MeterKeyring  # noqa: E402
from ledger.sessions import OCPP16, ChargingSession  # noqa: E402
from ledger.store import Database, migrate  # noqa: E402
from tests.conftest import PG_ADMIN_URL, drop_pg_database  # noqa: E402

DBNAME = "ladebuch_bench_invoices"
SEED = 20261130
MONTH = (date(2026, 11, 1), date(2026, 11, 30))
BASE_URL = "https://ladebuch.example"
ISSUER = "BENCH"
SITE = "GARAGE"
TARIFF = {
    "id": "MIETER",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}
    ],
}
CHUNK = 250  # registry aggregates per save while seeding
GOAL_RATIO = 0.5
GOAL_SECONDS = 60.0
BY = "benchmark"


# =============================================================================================
# The database
# =============================================================================================


def database_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def create_database(name: str) -> Database:
    drop_pg_database(name)
    with Database.from_url(PG_ADMIN_URL).connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = Database.from_url(database_url(name))
    migrate(database)
    return database


# =============================================================================================
# Seeding: the registry, then a month of charging through the OCPP edge
# =============================================================================================


@dataclass
class Tenant:
    """A customer with their card, their wallbox and its meter (picklable: the key as DER)."""

    index: int
    customer_id: UUID
    token: str
    charge_point: str
    serial: str
    key_der: bytes
    register_wh: int
    page: int = 0  # the meter's OCMF pagination counter (PG "T<n>")

    def record(
        self, key: ec.EllipticCurvePrivateKey, kind: str, when: datetime, register_wh: int
    ) -> str:
        """One reading of the meter's import register, begin (B) or end (E), signed by the
        meter as an OCMF record of its own."""
        self.page += 1
        reading = (
            f'{{"TM":"{when.strftime("%Y-%m-%dT%H:%M:%S,000%z")} S","TX":"{kind}",'
            f'"RV":{register_wh / 1000:.3f},"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"",'
            '"ST":"G"}'
        )
        payload = (
            '{"FV":"1.0","GI":"ABL SBC-301","GS":"' + self.serial + '","GV":"1.4p3",'
            f'"PG":"T{self.page}","MV":"Phoenix Contact","MM":"EEM-350-D-MCB",'
            f'"MS":"{self.serial}","MF":"1.0","IS":true,"IL":"TRUSTED","IF":["RFID_PLAIN"],'
            f'"IT":"ISO14443","ID":"{self.token}","RD":[{reading}]}}'
        ).encode()
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
        section = json.dumps(
            {"SA": "ECDSA-secp256r1-SHA256", "SD": signature.hex().upper()}, separators=(",", ":")
        )
        return f"OCMF|{payload.decode()}|{section}"


@dataclass(frozen=True)
class Charge:
    start: datetime
    end: datetime
    energy_wh: int


def plan(sessions: int, rng: random.Random) -> list[Charge]:
    """One session a day, starting between 06:00 and 16:00 UTC, 1 to 4 hours long, 3 to
    40 kWh: every session starts and ends in November in Berlin."""
    charges = []
    for day in range(sessions):
        start = datetime(2026, 11, 1 + day, 6, tzinfo=UTC) + timedelta(minutes=rng.randrange(600))
        end = start + timedelta(minutes=rng.randrange(60, 240))
        charges.append(Charge(start, end, rng.randrange(3_000, 40_000)))
    return charges


def register(registry: Registry, customers: int, rng: random.Random) -> list[Tenant]:
    """Issuer, site, tariff, and per customer: the customer, their card, wallbox and meter key,
    built with the aggregates' own commands (as the API does) and saved in chunks."""
    registry.register_issuer(
        ISSUER,
        name="Hausverwaltung Sonnenhof GmbH",
        address={
            "street": "Sonnenweg 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
        vat_id="DE123456789",
        tax_number="27/123/45678",
        email="abrechnung@sonnenhof.example",
        iban="DE02120300000000202051",
        bic="BYLADEM1001",
        bank="Deutsche Kreditbank",
        ranges={"default": "LB-{year}-{seq:06d}"},
    )
    registry.create_site(
        SITE, name="Tiefgarage Sonnenhof", time_zone="Europe/Berlin", calibrated=True
    )
    registry.publish_tariff(
        TARIFF,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        valid_until=None,
        at=datetime(2025, 12, 1, tzinfo=UTC),
        by=BY,
    )
    registry.assign_tariff("site", SITE, TARIFF["id"], valid_from=None, valid_until=None)
    registered = datetime(2026, 10, 1, tzinfo=UTC)
    tenants: list[Tenant] = []
    pending: list[Any] = []
    for index in range(1, customers + 1):
        customer = Customer.register(
            name=f"Mieterin {index:04d}",
            email=f"mieter{index:04d}@example.org",
            billing_address={
                "street": f"Sonnenweg 1, Wohnung {index}",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "DE",
            },
        )
        token = f"04{rng.getrandbits(48):012X}"
        tag = IdTag.add(token)
        tag.assign(customer.id)
        name = f"WB-{index:04d}"
        charge_point = ChargePoint.register(name, None)
        charge_point.describe(label=f"Stellplatz {index}", site=SITE)
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        serial = f"BQ{27400330000 + index}"
        keyring = MeterKeyring(charge_point=name)
        keyring.register(
            spki.hex(), evse_id=None, meter_serial=serial, label="Zähler", at=registered, by=BY
        )
        pending += [customer, tag, charge_point, keyring]
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tenants.append(
            Tenant(index, customer.id, token, name, serial, der, rng.randrange(100_000, 5_000_000))
        )
        if len(pending) >= CHUNK:
            registry.save(*pending)
            pending = []
    if pending:
        registry.save(*pending)
    return tenants


class _Socket:
    """What the connection sends back; the station reads its answers here."""

    def __init__(self) -> None:
        self.answers: list[str] = []

    async def send_text(self, text: str) -> None:
        self.answers.append(text)


async def station(services: Services, tenant: Tenant, charges: Sequence[Charge]) -> list[UUID]:
    """One wallbox's month: connected, a StartTransaction and a StopTransaction per session,
    disconnected. Returns its sessions' ids."""
    settings, committer = services.settings, services.committer
    key = serialization.load_der_private_key(tenant.key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    socket = _Socket()
    connection = OcppConnection(
        charge_point=tenant.charge_point,
        subprotocol="ocpp1.6",
        websocket=socket,
        committer=committer,
        max_frame_bytes=settings.ocpp_max_frame_bytes,
        heartbeat_interval=settings.heartbeat_interval,
    )
    await asyncio.wrap_future(
        committer.submit(
            OpenConnection(
                connection.connection_id,
                tenant.charge_point,
                "ocpp1.6",
                "127.0.0.1",
                datetime.now(UTC),
            )
        )
    )
    sessions = []
    for number, charge in enumerate(charges, 1):
        begin_wh = tenant.register_wh
        end_wh = tenant.register_wh = begin_wh + charge.energy_wh
        start = {
            "connectorId": 1,
            "idTag": tenant.token,
            "meterStart": begin_wh,
            "timestamp": _iso(charge.start),
        }
        await connection.route_message(json.dumps([2, f"s{number}", "StartTransaction", start]))
        answer = json.loads(socket.answers[-1])
        if answer[0] != 3 or answer[2]["idTagInfo"]["status"] != "Accepted":
            raise RuntimeError(f"{tenant.charge_point}: StartTransaction answered {answer}")
        transaction_id = answer[2]["transactionId"]
        signed = [
            {
                "timestamp": _iso(moment),
                "sampledValue": [
                    {
                        "value": tenant.record(key, kind, moment, wh),
                        "format": "SignedData",
                        "context": context,
                        "measurand": "Energy.Active.Import.Register",
                    }
                ],
            }
            for kind, moment, wh, context in (
                ("B", charge.start, begin_wh, "Transaction.Begin"),
                ("E", charge.end, end_wh, "Transaction.End"),
            )
        ]
        stop = {
            "transactionId": transaction_id,
            "idTag": tenant.token,
            "meterStop": end_wh,
            "timestamp": _iso(charge.end),
            "reason": "EVDisconnected",
            "transactionData": signed,
        }
        await connection.route_message(json.dumps([2, f"t{number}", "StopTransaction", stop]))
        if not socket.answers[-1].startswith("[3,"):
            raise RuntimeError(
                f"{tenant.charge_point}: StopTransaction answered {socket.answers[-1]}"
            )
        sessions.append(ChargingSession.create_id(tenant.charge_point, OCPP16, str(transaction_id)))
    await asyncio.wrap_future(
        committer.submit(CloseConnection(connection.connection_id, datetime.now(UTC)))
    )
    return sessions


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _stations(services: Services, work: Sequence[tuple[Tenant, list[Charge]]]) -> list[UUID]:
    done = await asyncio.gather(*(station(services, tenant, plan) for tenant, plan in work))
    return [session for sessions in done for session in sessions]


def seed_part(url: str, work: Sequence[tuple[Tenant, list[Charge]]]) -> tuple[int, float, float]:
    """One worker process of the seeding, a server process of its own (committer, no
    background threads): its wallboxes' month through the OCPP edge, all side by side, then
    each of their sessions priced by the pricer's own code, its outcomes recorded through the
    committer as the pricer records them (group-committed here, since nothing waits for one).
    Returns (sessions, seconds charging, seconds pricing)."""
    services = Services.build(Settings(database_url=url))
    services.committer.start()
    try:
        started = time.perf_counter()
        sessions = asyncio.run(_stations(services, work))
        charged = time.perf_counter() - started
        started = time.perf_counter()
        registry = _Settled(services.registry)
        pending = [
            services.committer.submit(
                RecordPrice(session_id, price_outcome(registry, services.ledger, session_id))
            )
            for session_id in sessions
        ]
        for future in pending:
            future.result()
        return len(sessions), charged, time.perf_counter() - started
    finally:
        services.close()


class _Settled:
    """The registry for pricing the seeded month: nothing changes it meanwhile, so each
    aggregate is read once instead of once per session (the outcomes are the same)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._read: dict[tuple[type, UUID], Any] = {}

    def get_or_none(self, cls: type, aggregate_id: UUID) -> Any:
        key = (cls, aggregate_id)
        if key not in self._read:
            self._read[key] = self._registry.get_or_none(cls, aggregate_id)
        return self._read[key]

    tariff_for = Registry.tariff_for
    find_charge_point = Registry.find_charge_point


def stored(services: Services) -> tuple[int, int, int]:
    """(sessions, priced sessions, billable priced sessions) in the read models."""
    with services.reading() as cur:
        sessions = cur.execute("SELECT count(*) FROM rm_sessions").fetchone()[0]
        priced, billable = cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = %s) FROM rm_priced_sessions",
            (PRICED,),
        ).fetchone()
    return int(sessions), int(priced), int(billable)


def seed(settings: Settings, customers: int, sessions: int, workers: int) -> None:
    """The registry and a priced month, with the read models caught up."""
    rng = random.Random(SEED)
    services = Services.build(settings)
    # The read models follow the logs while the workers write, as a server's runners do.
    for runner in services.projections.values():
        runner.start()
    try:
        started = time.perf_counter()
        tenants = register(services.registry, customers, rng)
        print(
            f"  registry: issuer, site, tariff, {customers:,} customers with card, wallbox and "
            f"meter key ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        work = [(tenant, plan(sessions, rng)) for tenant in tenants]
        parts = [work[n::workers] for n in range(workers)]
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers) as pool:
            done = pool.starmap(seed_part, [(settings.database_url, part) for part in parts])
        total = sum(count for count, _, _ in done)
        charging = max(seconds for _, seconds, _ in done)
        pricing = max(seconds for _, _, seconds in done)
        print(
            f"  OCPP: {total:,} sessions ({4 * total:,} frames in and out) through "
            f"OcppConnection and the committer in {charging:.1f} s, priced in {pricing:.1f} s "
            f"({workers} processes; {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        # Every session is priced; a pricer starting now would price each again to the same
        # outcome and record nothing: its positions go to the heads of the logs it follows.
        with services.projections["pricing"].view.transaction() as cur:
            for name, app in ((SESSIONS, services.ledger), (TARIFFS, services.registry)):
                cur.execute(
                    "INSERT INTO projection_tracking (projection, notification_id) "
                    "VALUES (%s, %s) ON CONFLICT (projection) DO UPDATE "
                    "SET notification_id = EXCLUDED.notification_id",
                    (name, app.recorder.max_notification_id() or 0),
                )
        started = time.perf_counter()
        services.wait_for_read_models(timeout=3600)
        found = stored(services)
        print(
            f"  read models caught up {time.perf_counter() - started:.1f} s later: "
            f"{found[0]:,} sessions, {found[2]:,} priced",
            flush=True,
        )
        expected = customers * sessions
        if found != (expected, expected, expected):
            raise RuntimeError(
                f"expected {expected:,} sessions, all priced; the read models "
                f"hold (sessions, priced, billable) = {found}"
            )
    finally:
        services.close()


# =============================================================================================
# The measurements
# =============================================================================================


@dataclass
class Stage:
    """One timed stage: items done, wall and CPU seconds, per-item wall times."""

    name: str
    items: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    each: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.items / self.wall if self.wall else 0.0


class timed:
    """Adds the block's wall and CPU time to a stage."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def __enter__(self) -> timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stage.wall += time.perf_counter() - self.wall
        self.stage.cpu += time.process_time() - self.cpu


class Clocked:
    """Times each call of `issuing.run` (the drafts) and `issuing.issue` while the CLI's run
    makes them, into the stages "drafts" and "issue"."""

    def __init__(self, stages: dict[str, Stage]) -> None:
        self.stages = stages
        self.originals = (issuing.run, issuing.issue)

    def __enter__(self) -> Clocked:
        run, issue = self.originals

        def clocked_run(*args: Any, **kwargs: Any) -> Any:
            with timed(self.stages["drafts"]):
                result = run(*args, **kwargs)
            self.stages["drafts"].items = len(result.drafts)
            return result

        def clocked_issue(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            with timed(self.stages["issue"]):
                invoice = issue(*args, **kwargs)
            self.stages["issue"].each.append(time.perf_counter() - started)
            self.stages["issue"].items += 1
            return invoice

        issuing.run, issuing.issue = clocked_run, clocked_issue
        return self

    def __exit__(self, *exc: object) -> None:
        issuing.run, issuing.issue = self.originals


def monthly_run(settings: Settings, workers: int, stages: dict[str, Stage]) -> list[dict[str, Any]]:
    """`ladebuch invoices run --period 2026-11 --issue --files --workers W --json`, as the CLI
    runs it (`api.cli.cmd_invoices_run`: services built anew, the workers spawned fresh), timed
    end to end; its rows (invoice id, number)."""
    from contextlib import redirect_stderr, redirect_stdout

    from api import cli

    args = cli.build_parser().parse_args(
        ["invoices", "run", "--issuer", ISSUER, "--period", "2026-11", "--issue", "--files",
         "--workers", str(workers), "--base-url", BASE_URL, "--json"]
    )
    out, err = io.StringIO(), io.StringIO()
    machine, workers_cpu = busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with Clocked(stages), redirect_stdout(out), redirect_stderr(err), timed(stages["run"]):
        status = cli.cmd_invoices_run(settings, args)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, ended with the run
    CPU["workers"] = (children.ru_utime + children.ru_stime
                      - workers_cpu.ru_utime - workers_cpu.ru_stime)
    CPU["machine"] = busy_seconds() - machine
    if status != 0:
        raise RuntimeError(f"the run exited {status}: {err.getvalue()[-2000:]}")
    rows: list[dict[str, Any]] = json.loads(out.getvalue())
    stages["run"].items = len(rows)
    if not rows or any(row["number"] is None for row in rows):
        raise RuntimeError("the run issued nothing, or not every draft")
    return rows


CPU: dict[str, float] = {}  # the run's CPU seconds: "workers" (its file workers), "machine" (all)


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat, less idle and
    iowait): beside this process's and its workers', what PostgreSQL and the rest took."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def issued(services: Services, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frozen documents of the run's invoices, in number order (not timed)."""
    documents = []
    for row in sorted(rows, key=lambda row: row["number"]):
        invoice = services.registry.get_or_none(Invoice, UUID(row["invoice"]))
        assert invoice is not None and invoice.document is not None
        documents.append(invoice.document)
    return documents


def archived(services: Services, rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Number -> SHA-256 of the PDF and the XML the run's workers archived."""
    numbers = {row["invoice"]: row["number"] for row in rows}
    found: dict[str, dict[str, str]] = {}
    with services.reading() as cur:
        for invoice_id, kind, sha256 in cur.execute(
            "SELECT invoice_id, kind, sha256 FROM invoice_files WHERE kind IN ('pdf', 'xml')"
        ).fetchall():
            found.setdefault(numbers[str(invoice_id)], {})[kind] = sha256
    return {number: (kinds["pdf"], kinds["xml"]) for number, kinds in found.items()}


def render_files(document: dict[str, Any]) -> tuple[str, int, str, str]:
    """What the product delivers for one issued invoice, as its first download renders it:
    `files.render_all` (the CII XML built and validated once, the Factur-X PDF carrying it, the
    evidence ZIP). Returns (number, lines, SHA-256 of the PDF, SHA-256 of the XML)."""
    invoice = Document.from_json(document)
    made = {file.kind: file for file in files.render_all(invoice)}
    return invoice.number, len(invoice.lines), made[files.PDF].sha256, made[files.XML].sha256


def bare_pdf(document: dict[str, Any]) -> bytes:
    """The baseline: bare reportlab, one 30-row table of the invoice's lines, to bytes."""
    rows = [["No.", "Start", "End", "Charge point", "kWh", "Net"]]
    for no, line in enumerate(document["lines"], 1):
        rows.append(
            [
                str(no),
                line["started_at"][:16],
                line["ended_at"][:16],
                line["charge_point"],
                line["energy_kwh"],
                line["net"],
            ]
        )
    buffer = BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, title=document["number"], invariant=1)
    table = Table(rows, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
            ]
        )
    )
    doc.build([table])
    return buffer.getvalue()


@dataclass
class Round:
    ours: float  # invoices/s, their files
    pdf: float  # invoices/s, pdf.render alone (of the same renderings)
    bare: float  # documents/s

    @property
    def ratio(self) -> float:
        return self.ours / self.bare

    @property
    def pdf_ratio(self) -> float:
        return self.pdf / self.bare


class Parts:
    """Wall time spent in the functions `files.render_all` calls (in this process, while on):
    the Factur-X PDF/A-3 (rendered with the XML and the transparency files embedded), the CII
    XML built and validated (once per invoice; twice for a business customer, whose XRechnung
    is validated too)."""

    NAMES = (
        ("pdf", "render"),
        ("einvoice", "cii_xml"),
        ("einvoice", "validate"),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {f"{m}.{f}": 0.0 for m, f in self.NAMES}
        self.on = False
        for module_name, function_name in self.NAMES:
            module = sys.modules[f"invoices.{module_name}"]
            setattr(
                module,
                function_name,
                self._timing(f"{module_name}.{function_name}", getattr(module, function_name)),
            )

    def _timing(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return function(*args, **kwargs)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed_call


def files_single(
    documents: Sequence[dict[str, Any]], rounds: int, bare_docs: int, stage: Stage, parts: Parts
) -> tuple[list[Round], dict[str, tuple[str, str]]]:
    """Every invoice's files in this process, in `rounds` slices, each beside a baseline run."""
    hashes: dict[str, tuple[str, str]] = {}
    results = []
    render_files(documents[0])  # warm-up: fonts, schemas, the schematron's XSLT
    bare_pdf(documents[0])
    size = -(-len(documents) // rounds)
    for number, start in enumerate(range(0, len(documents), size)):
        part = documents[start : start + size]
        bare_part = [documents[n % len(documents)] for n in range(start, start + bare_docs)]
        order = ("ours", "bare") if number % 2 == 0 else ("bare", "ours")
        rates = {}
        for which in order:
            began = time.perf_counter()
            if which == "ours":
                rendering = parts.seconds["pdf.render"]
                parts.on = True
                with timed(stage):
                    for document in part:
                        one = time.perf_counter()
                        invoice_number, _, pdf_hash, xml_hash = render_files(document)
                        stage.each.append(time.perf_counter() - one)
                        hashes[invoice_number] = (pdf_hash, xml_hash)
                parts.on = False
                rates[which] = len(part) / (time.perf_counter() - began)
                rates["pdf"] = len(part) / (parts.seconds["pdf.render"] - rendering)
            else:
                for document in bare_part:
                    bare_pdf(document)
                rates[which] = len(bare_part) / (time.perf_counter() - began)
        done = Round(rates["ours"], rates["pdf"], rates["bare"])
        results.append(done)
        print(
            f"  files round {number + 1}/{rounds} ({' -> '.join(order)}): ours "
            f"{done.ours:.2f} invoices/s ({len(part)}; pdf.render alone {done.pdf:.2f}/s), "
            f"bare {done.bare:.1f} docs/s ({len(bare_part)}), ratio {done.ratio:.3f}",
            flush=True,
        )
    stage.items = len(documents)
    return results, hashes


# =============================================================================================
# The report
# =============================================================================================


def _ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms" if values else "-"


def report(
    args: argparse.Namespace,
    stages: dict[str, Stage],
    rounds: list[Round],
    parts: Parts,
    invoices: int,
    lines: int,
) -> None:
    run, drafted, issued, rendered = (stages[name] for name in ("run", "drafts", "issue", "files"))
    one_process = drafted.wall + issued.wall + rendered.wall
    bare = statistics.median(r.bare for r in rounds)
    run_ratio = invoices / run.wall / bare
    print()
    print("=" * 92)
    print(
        f"SUMMARY  PostgreSQL; {invoices:,} invoices of {lines} lines ({invoices * lines:,} "
        f"sessions); {len(rounds)} rounds of files + baseline"
    )
    print("=" * 92)
    head = f"{'stage':<48}{'items':>7}{'wall s':>9}{'cpu s':>8}{'per s':>9}{'median':>11}"
    print(head)
    print("-" * len(head))

    def row(label: str, items: int, wall: float, cpu: str, median: str) -> None:
        print(f"{label:<48}{items:>7,}{wall:>9.1f}{cpu:>8}{items / wall:>9.2f}{median:>11}")

    row(f"monthly run: invoices run --files --workers {args.workers}", run.items, run.wall,
        f"{CPU['machine']:.0f}", "")
    row("  drafts: issuing.run, a draft per customer", drafted.items, drafted.wall,
        f"{drafted.cpu:.1f}", "-")
    row("  issue: issuing.issue, one after the other", issued.items, issued.wall,
        f"{issued.cpu:.1f}", _ms(issued.each))
    print(f"{'  files: in the workers, while issuing goes on':<48}{'':>7}"
          f"{run.wall - drafted.wall - issued.wall:>9.1f}  (after the last issue)")
    others = CPU["machine"] - run.cpu - CPU["workers"]
    print(f"{'  CPU s: run process / file workers / the rest':<48}{'':>7}{'':>9}"
          f"  {run.cpu:.0f} / {CPU['workers']:.0f} / {others:.0f} (PostgreSQL, ...) "
          f"of {os.cpu_count()} x {run.wall:.0f}")
    row("files again, 1 process (PDF, XML, ZIP)", rendered.items, rendered.wall,
        f"{rendered.cpu:.1f}", _ms(rendered.each))
    inside = sum(parts.seconds.values())
    for name, seconds in (*parts.seconds.items(), ("the rest", rendered.wall - inside)):
        share = f"{seconds / rendered.wall:.0%} of it"
        print(f"{'  of which ' + name:<48}{'':>7}{seconds:>9.1f}{'':>8}{'':>9}{share:>11}")
    row("one process doing it all: drafts+issue+files", invoices, one_process, "", "")
    print(f"{'BASELINE: bare reportlab, a 30-row table PDF':<48}{'':>7}{'':>9}{'':>8}{bare:>9.1f}")
    print("-" * len(head))
    print("ours / bare, medians of the per-round ratios:")
    rates = ", ".join(f"{r.ratio:.3f}" for r in rounds)
    print(f"  {'files, 1 process':<22}{statistics.median(r.ratio for r in rounds):.3f}  ({rates})")
    print(f"  {'pdf.render alone':<22}{statistics.median(r.pdf_ratio for r in rounds):.3f}")
    print(f"  {'monthly run':<22}{run_ratio:.3f}  (its rate over the median bare rate)")
    print()
    print("GOALS")
    verdict = "met" if run_ratio >= GOAL_RATIO else "MISSED"
    print(f"  monthly run >= {GOAL_RATIO} of the bare rate: {run_ratio:.3f}, {verdict}")
    verdict = "met" if run.wall < GOAL_SECONDS else "MISSED"
    print(f"  monthly run under {GOAL_SECONDS:.0f} s: {run.wall:.1f} s, {verdict}")


def bench(args: argparse.Namespace) -> None:
    print(f"database {args.dbname}: created and migrated; seeding (not timed)", flush=True)
    database = create_database(args.dbname)
    settings = Settings(database_url=database.url)
    services: Services | None = None
    try:
        seed(settings, args.customers, args.sessions, args.workers)
        # The monthly run as `ladebuch invoices run --issue` makes it: a process of its own
        # (cold caches), whose catch-ups find nothing left to do.
        stages = {name: Stage(name) for name in ("run", "drafts", "issue", "files")}
        print("monthly run (timed): ladebuch invoices run --issue --files", flush=True)
        rows = monthly_run(settings, args.workers, stages)
        print(
            f"  {len(rows):,} invoices in {stages['run'].wall:.1f} s (drafts "
            f"{stages['drafts'].wall:.1f} s, issuing {stages['issue'].wall:.1f} s while "
            f"{args.workers} workers rendered the files)",
            flush=True,
        )
        services = Services.build(settings)
        documents = issued(services, rows)
        stored_hashes = archived(services, rows)
        services.close()
        services = None
        parts = Parts()
        rounds, hashes = files_single(
            documents, args.repeat, args.bare_docs, stages["files"], parts
        )
        if hashes != stored_hashes:
            differ = sorted(n for n in hashes if hashes[n] != stored_hashes.get(n))
            raise RuntimeError(
                f"{len(differ)} invoices rendered to other bytes than the run's workers archived, "
                f"e.g. {differ[:1]}"
            )
        print(
            f"  files again in 1 process: {len(documents):,} invoices in "
            f"{stages['files'].wall:.1f} s, the same bytes as the run's workers archived",
            flush=True,
        )
        lines = len(documents[0]["lines"])
        report(args, stages, rounds, parts, len(documents), lines)
    finally:
        if services is not None:
            services.close()
        if args.keep:
            print(f"\nkept database {args.dbname} ({database.url})")
        else:
            drop_pg_database(args.dbname)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=1_000, help="customers, one invoice each (default 1,000)"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=30,
        help="sessions per customer in the month, at most 30 (default 30)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of the files stage, each beside a baseline run (default 3)",
    )
    parser.add_argument(
        "--bare-docs", type=int, default=100, help="baseline documents per round (default 100)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes for the seeding, and the run's file workers (default 2)",
    )
    parser.add_argument("--dbname", default=DBNAME, help=f"database name (default {DBNAME})")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.customers < 1 or not 1 <= args.sessions <= 30 or args.repeat < 1:
        parser.error("--customers and --repeat must be >= 1, --sessions 1 to 30")
    args.repeat = min(args.repeat, args.customers)
    print(
        f"Ladebuch invoice benchmark: monthly run for {args.customers:,} customers x "
        f"{args.sessions} sessions on PostgreSQL vs bare reportlab; Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    started = time.perf_counter()
    bench(args)
    print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
