"""The `ladebuch` command line."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from api.settings import Settings
from ledger.errors import LedgerError
from ledger.frames import frame_row
from ledger.values import parse_time


def _services(settings: Settings) -> Any:
    from api.services import Services

    return Services.build(settings)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.store import Database, migrate

    database = Database.from_url(settings.database_url)
    applied = migrate(database)
    for name in applied:
        print(f"applied {name}")
    print(f"schema is up to date ({database.backend})")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    settings = dataclasses.replace(settings, host=host, port=port)
    if args.welcome:
        scheme = "https" if args.ssl_certfile else "http"
        base = settings.public_url or f"{scheme}://{host}:{port}"
        ws = base.replace("https://", "wss://").replace("http://", "ws://")
        print(
            f"""
Ladebuch is starting on {settings.database_url}

  OCPP endpoint:  {ws}/ocpp/<charge-point-id>   (subprotocols ocpp1.6, ocpp2.0.1, ocpp2.1)
  API docs:       {base}/docs
  Health:         {base}/health

Register a first charge point and an RFID card (in another terminal):
  .venv/bin/ladebuch charge-points add CP-0001 --generate-password
  .venv/bin/ladebuch id-tags add 04A2B3C4D5
then point the charge point at {ws}/ocpp/CP-0001 with that password.

Create an admin API key for the HTTP API (printed once), and try it:
  .venv/bin/ladebuch keys create --role admin --name me
  curl -H "Authorization: Bearer <key>" {base}/v1/sessions
""",
            flush=True,
        )
    # uvicorn's "websockets-sansio" protocol (8 kB less per idle socket than the legacy one)
    # logs a false "ASGI callable returned without completing handshake" error after every
    # denial response (our 400/401/404 refusals, which are logged as warnings already).
    logging.getLogger("uvicorn.error").addFilter(_DenialNoise())
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_bytes,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        proxy_headers=True,
    )
    return 0


class _DenialNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


def _password(args: argparse.Namespace) -> str | None:
    if args.generate_password:
        password = secrets.token_urlsafe(24)
        print(f"password (shown once): {password}")
        return password
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n") or None
    if args.ask_password:
        return getpass.getpass("password: ") or None
    return None


def cmd_charge_points(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        registry = services.registry
        if args.action == "add":
            registry.register_charge_point(args.id, _password(args))
            print(f"registered {args.id}: connect it to {settings.ocpp_url}{args.id}")
        elif args.action == "set-password":
            registry.set_charge_point_password(args.id, _password(args))
            print(f"password of {args.id} set")
        elif args.action == "disable":
            registry.disable_charge_point(args.id)
            print(f"disabled {args.id}")
        elif args.action == "enable":
            registry.enable_charge_point(args.id)
            print(f"enabled {args.id}")
        else:
            rows = [
                {"id": cp.name, "password": cp.password_hash is not None, "disabled": cp.disabled}
                for cp in registry.charge_points()
            ]
            _print_rows(rows, args.json)
    finally:
        services.close()
    return 0


def cmd_id_tags(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        registry = services.registry
        if args.action == "add":
            expires = parse_time(args.expires) if args.expires else None
            registry.add_id_tag(args.token, label=args.label or "", expires_at=expires)
            print(f"added id tag {args.token}")
        elif args.action == "block":
            registry.block_id_tag(args.token)
            print(f"blocked {args.token}")
        elif args.action == "unblock":
            registry.unblock_id_tag(args.token)
            print(f"unblocked {args.token}")
        else:
            rows = [
                {
                    "token": tag.token,
                    "label": tag.label,
                    "blocked": tag.blocked,
                    "expires_at": tag.expires_at.isoformat() if tag.expires_at else None,
                }
                for tag in registry.id_tags()
            ]
            _print_rows(rows, args.json)
    finally:
        services.close()
    return 0


def cmd_frames_export(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        names = [args.charge_point] if args.charge_point else [
            cp.name for cp in services.registry.charge_points()
        ]
        count = 0
        for name in names:
            for record in services.ledger.frames(name):
                if since and record.received_at < since or until and record.received_at >= until:
                    continue
                out.write(json.dumps(frame_row(name, record), ensure_ascii=False) + "\n")
                count += 1
        if args.output:
            print(f"exported {count} frames to {args.output}", file=sys.stderr)
    finally:
        if args.output:
            out.close()
        services.close()
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.audit import verify_chains

    services = _services(settings)
    try:
        names = [args.charge_point] if args.charge_point else [
            cp.name for cp in services.registry.charge_points()
        ]
        reports = verify_chains(services.ledger, names)
    finally:
        services.close()
    broken = [r for r in reports if r.broken]
    for report in reports:
        state = f"BROKEN at {report.broken}" if report.broken else "ok"
        print(f"{report.charge_point}: {report.frames} frames verified, {state}")
    total = sum(r.frames for r in reports)
    print(f"{len(reports)} chains, {total} frames, {len(broken)} broken")
    return 1 if broken else 0


def cmd_quarantine(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        rows = []
        for entry in services.ledger.quarantine_entries():
            rows.append(
                {
                    "id": str(entry.id),
                    "charge_point": entry.charge_point,
                    "action": entry.action,
                    "transaction_id": entry.transaction_id,
                    "reason": entry.reason,
                    "resolved": entry.resolved,
                }
            )
        _print_rows(rows, args.json)
    finally:
        services.close()
    return 0


def cmd_projections(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        runners = services.projections
        if args.action == "status":
            rows = []
            for runner in runners.values():
                status = runner.status()
                rows.append({"projection": status.name, "position": status.position,
                             "head": status.head, "lag": status.lag})
            _print_rows(rows, args.json)
            return 0
        names = [args.name] if args.name else list(runners)
        unknown = [n for n in names if n not in runners]
        if unknown:
            raise ValueError(f"no projection named {unknown[0]!r} (there are: {', '.join(runners)})")
        for name in names:
            runner = runners[name]

            def progress(status: Any, name: str = name) -> None:
                done = status.position / status.head if status.head else 1.0
                bar = "#" * int(done * 30)
                print(f"\r{name:<12} [{bar:<30}] {status.position:>10,}/{status.head:,}",
                      end="", file=sys.stderr, flush=True)

            runner.rebuild(progress)
            progress(runner.status())
            print(file=sys.stderr)
            print(f"rebuilt {name} up to notification {runner.position():,}")
    finally:
        services.close()
    return 0


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from uuid import UUID

    services = _services(settings)
    try:
        registry = services.registry
        if args.action == "create":
            issued = registry.issue_api_key(
                name=args.name, role=args.role,
                customer_id=UUID(args.customer) if args.customer else None,
                expires_at=parse_time(args.expires) if args.expires else None,
            )
            print(f"{args.role} key {issued.key.key_id} created; the key (shown once):",
                  file=sys.stderr)
            print(issued.token)
        elif args.action == "revoke":
            registry.revoke_api_key(args.id)
            print(f"revoked {args.id}")
        else:
            from projections import queries

            services.projections["registry"].catch_up()
            with services.reading() as cur:
                rows = queries.list_api_keys(cur, limit=10_000)
            for row in rows:
                row.pop("position")
                row["expires_at"] = row["expires_at"] and str(row["expires_at"])
                row["created_at"] = str(row["created_at"])
                row["revoked"] = bool(row["revoked"])
            _print_rows(rows, args.json)
    finally:
        services.close()
    return 0


def cmd_meter_keys(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    services = _services(settings)
    try:
        registry = services.registry
        if args.action == "add":
            key = registry.register_meter_key(
                args.charge_point, args.public_key, evse_id=args.evse, meter_serial=args.serial,
                label=args.label, at=datetime.now(UTC), by=f"cli:{getpass.getuser()}",
            )
            print(f"meter key {key.fingerprint} registered for {args.charge_point}")
        elif args.action == "retire":
            at = parse_time(args.at) if args.at else datetime.now(UTC)
            key = registry.retire_meter_key(args.charge_point, args.fingerprint, at=at, reason=args.reason)
            print(f"meter key {key.fingerprint} of {args.charge_point} retired from {key.retired_at}")
        else:
            rows = [
                {**dataclasses.asdict(key), "registered_at": str(key.registered_at),
                 "retired_at": key.retired_at and str(key.retired_at)}
                for key in registry.meter_keys(args.charge_point)
            ]
            _print_rows(rows, args.json)
    finally:
        services.close()
    return 0


def cmd_evidence_export(settings: Settings, args: argparse.Namespace) -> int:
    """The Transparenzsoftware file of one session, to a file or stdout."""
    from uuid import UUID

    services = _services(settings)
    try:
        body = services.ledger.transparency_file(UUID(args.session))
    finally:
        services.close()
    if body is None:
        print(f"session {args.session} holds no signed meter data", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "wb") as out:
            out.write(body)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(body + b"\n")
    return 0


def cmd_price(settings: Settings, args: argparse.Namespace) -> int:
    """The tariff calculator: an OCPI tariff and an OCPI session in, the CDR totals out."""
    from api.http.problems import Problem
    from api.http.tariffs import quote_totals
    from ledger.ocpi_tariffs import loads_exact

    documents = []
    for path in (args.tariff, args.cdr):
        try:
            with open(path, "rb") as file:
                documents.append(loads_exact(file.read()))
        except OSError as exc:
            print(f"{path}: {exc.strerror}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
    try:
        totals = quote_totals(documents[0], documents[1])
    except Problem as problem:
        print(str(problem), file=sys.stderr)
        return 1
    print(json.dumps(totals, indent=2, ensure_ascii=False))
    return 0


def cmd_invoices_run(settings: Settings, args: argparse.Namespace) -> int:
    """A monthly run: price what is not priced yet, then one draft per customer, with a
    progress bar; `--issue` issues the drafts at once, `--files` renders and archives their
    files too."""
    from invoices import issuing

    if args.files and not args.issue:
        print("--files renders issued invoices: give --issue too", file=sys.stderr)
        return 2

    services = _services(settings)
    # The workers start (spawned, half a second each) while the drafts are made, and render each
    # invoice's files as soon as it is issued: issuing (one after the other, a number range is
    # sequential) and rendering overlap.
    archiver = _FileArchiver(services, settings, args.workers) if args.files else None
    failed: list[tuple[str, str]] = []
    try:
        start, end = issuing.month(args.period)
        services.pricer.catch_up()
        services.projections["pricing"].catch_up()
        services.projections["invoices"].catch_up()

        result = issuing.run(services.registry, services.projections["invoices"].view,
                             issuer=args.issuer, period_start=start, period_end=end,
                             progress=_progress_bar("drafts"))
        print(file=sys.stderr)
        rows = []
        issue = _progress_bar("issue")
        for done, invoice_id in enumerate(result.drafts, start=1):
            number = None
            if args.issue:
                issued = issuing.issue(
                    services.registry, services.ledger, invoice_id, issue_date=date.today(),
                    at=datetime.now(UTC), by="cli", base_url=args.base_url,
                )
                number = issued.number
                if archiver is not None:
                    archiver.submit(invoice_id)
                issue(done, len(result.drafts))
            rows.append({"invoice": str(invoice_id), "number": number})
        if args.issue:
            print(file=sys.stderr)
        _print_rows(rows, args.json)  # the numbers first: they are issued, whatever follows
        if result.without_customer:
            print(f"{len(result.without_customer)} priced sessions have no customer", file=sys.stderr)
        if archiver is not None:
            failed = archiver.finish()
        for unarchived, why in failed:
            print(f"invoice {unarchived}: its files were not archived: {why}", file=sys.stderr)
    finally:
        if archiver is not None:
            archiver.close()
        services.close()
    return 1 if failed else 0


def _progress_bar(label: str) -> Any:
    def progress(done: int, total: int) -> None:
        bar = "#" * int(done / total * 30)
        print(f"\r{label:<6} [{bar:<30}] {done:>6,}/{total:,}", end="", file=sys.stderr, flush=True)

    return progress


class _FileArchiver:
    """Issued invoices' files rendered and archived (`InvoiceFiles`) as their first download
    would: in `workers` processes, a few rendering at once on as many cores, each its own
    server-like process with its own connections (started fresh, not forked from this one), or
    in this process after the others (`workers` 1). `submit` an issued invoice; `finish`
    waits for all with a progress bar and returns (invoice id, why) of those that failed; the
    others are archived all the same (a download renders the missing ones later)."""

    def __init__(self, services: Any, settings: Settings, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import Future, ProcessPoolExecutor

        self._services = services
        self._pool = None if workers <= 1 else ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_archiver_start, initargs=(settings,),
        )
        self._pending: dict[Future[None], str] = {}
        self._queued: list[str] = []
        self._refused: list[tuple[str, str]] = []
        if self._pool is not None:  # start the workers now (one a task), not at the first invoice
            for _ in range(workers):
                self._pool.submit(int)

    def submit(self, invoice_id: Any) -> None:
        if self._pool is None:
            self._queued.append(str(invoice_id))
            return
        try:
            self._pending[self._pool.submit(_archiver_run, str(invoice_id))] = str(invoice_id)
        except Exception as exc:  # noqa: BLE001 - a broken pool stops no issuing; reported
            self._refused.append((str(invoice_id), f"{type(exc).__name__}: {exc}"))

    def finish(self) -> list[tuple[str, str]]:
        from concurrent.futures import as_completed

        progress = _progress_bar("files")
        total = len(self._pending) + len(self._queued)
        failed = list(self._refused)
        for archived, invoice_id in enumerate(self._queued, start=1):
            try:
                _archive(self._services, invoice_id)
            except Exception as exc:  # noqa: BLE001 - reported per invoice, the run goes on
                failed.append((invoice_id, f"{type(exc).__name__}: {exc}"))
            progress(archived, total)
        for done, future in enumerate(as_completed(self._pending), start=len(self._queued) + 1):
            error = future.exception()
            if error is not None:
                failed.append((self._pending[future], f"{type(error).__name__}: {error}"))
            progress(done, total)
        print(file=sys.stderr)
        return failed

    def close(self) -> None:
        """The workers stopped, once what was submitted is archived (issued invoices keep
        their files even when the run stops early)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _archive(services: Any, invoice_id: str) -> None:
    from uuid import UUID

    from invoices.document import Invoice as Document
    from ledger.invoicing import Invoice

    found = services.registry.get_or_none(Invoice, UUID(invoice_id))
    if found is None or found.document is None:
        raise LedgerError(f"invoice {invoice_id} is not issued")
    services.files.archive(found.id, Document.from_json(found.document))


_archiver: Any = None  # a worker process's services


def _archiver_start(settings: Settings) -> None:
    global _archiver
    _archiver = _services(settings)


def _archiver_run(invoice_id: str) -> None:
    _archive(_archiver, invoice_id)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """The demo on its own SQLite database: a wallbox charges for two tenants over OCPP, the
    server prices and invoices the month; the invoice files are written to `--dir`."""
    from pathlib import Path

    from api.demo import DemoError, run

    # The demo's own lines are the output: the server's info logs (the default level) would
    # drown them. LADEBUCH_LOG_LEVEL=debug still shows everything.
    if settings.log_level.lower() == "info":
        logging.getLogger().setLevel(logging.WARNING)
    try:
        run(Path(args.dir), settings=settings, keep_running=args.keep_running)
    except DemoError as exc:
        print(f"ladebuch demo: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    """One JSON verdict per signed record (JSON lines); 0 if every signature holds, 1 if one
    does not, 2 if a file cannot be read."""
    from ledger.signed.inputs import MAX_FILE_BYTES, verify_file
    from ledger.signed.keys import KeyFormatError, parse_public_key
    from ledger.signed.verify import Signature

    keys = []
    for key in args.key:
        try:
            keys.append(parse_public_key(key))
        except KeyFormatError as exc:
            raise ValueError(f"--key {key[:24]!r}: {exc}") from None
    status = 0
    for name in args.files:
        try:
            if name == "-":
                content = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
            else:
                with open(name, "rb") as file:
                    content = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            print(f"ladebuch: {name}: {exc.strerror or exc}", file=sys.stderr)
            status = 2
            continue
        for verdict in verify_file(content, keys):
            print(json.dumps({"file": name, **verdict}, ensure_ascii=False))
            if verdict["signature"] not in (Signature.VERIFIED, Signature.CLAIMED_KEY_ONLY):
                status = max(status, 1)
    return status


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("(none)")
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladebuch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run HTTP and OCPP on one port")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--ssl-certfile", help="TLS certificate (OCPP security profile 2)")
    serve.add_argument("--ssl-keyfile", help="TLS private key")
    serve.add_argument("--welcome", action="store_true", help="print where to connect first")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="create or upgrade the tables").set_defaults(func=cmd_migrate)

    cps = sub.add_parser("charge-points", help="register and manage charge points")
    cps_sub = cps.add_subparsers(dest="action", required=True)
    for name in ("add", "set-password"):
        p = cps_sub.add_parser(name)
        p.add_argument("id")
        group = p.add_mutually_exclusive_group()
        group.add_argument("--generate-password", action="store_true", help="make one, show it once")
        group.add_argument("--password-stdin", action="store_true", help="read it from stdin")
        group.add_argument("--ask-password", action="store_true", help="prompt for it")
    for name in ("disable", "enable"):
        cps_sub.add_parser(name).add_argument("id")
    cps_sub.add_parser("list").add_argument("--json", action="store_true")
    cps.set_defaults(func=cmd_charge_points)

    tags = sub.add_parser("id-tags", help="the RFID cards and tokens Authorize accepts")
    tags_sub = tags.add_subparsers(dest="action", required=True)
    add = tags_sub.add_parser("add")
    add.add_argument("token")
    add.add_argument("--label")
    add.add_argument("--expires", help="ISO 8601 date-time with zone")
    for name in ("block", "unblock"):
        tags_sub.add_parser(name).add_argument("token")
    tags_sub.add_parser("list").add_argument("--json", action="store_true")
    tags.set_defaults(func=cmd_id_tags)

    frames = sub.add_parser("frames", help="the evidence log")
    frames_sub = frames.add_subparsers(dest="action", required=True)
    export = frames_sub.add_parser("export", help="every frame as JSON lines")
    export.add_argument("--charge-point")
    export.add_argument("--since", help="ISO 8601, inclusive")
    export.add_argument("--until", help="ISO 8601, exclusive")
    export.add_argument("--output", "-o")
    export.set_defaults(func=cmd_frames_export)

    audit = sub.add_parser("audit", help="tamper evidence")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = audit_sub.add_parser("verify", help="recompute every frame chain")
    verify.add_argument("--charge-point")
    verify.set_defaults(func=cmd_audit_verify)

    projections = sub.add_parser("projections", help="read models")
    projections_sub = projections.add_subparsers(dest="action", required=True)
    projections_sub.add_parser("status", help="position and lag of each").add_argument(
        "--json", action="store_true"
    )
    rebuild = projections_sub.add_parser("rebuild", help="drop a read model and rebuild it from event 0")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all)")
    projections.set_defaults(func=cmd_projections)

    quarantine = sub.add_parser("quarantine", help="messages kept but not applied")
    quarantine_sub = quarantine.add_subparsers(dest="action", required=True)
    quarantine_sub.add_parser("list").add_argument("--json", action="store_true")
    quarantine.set_defaults(func=cmd_quarantine)

    keys = sub.add_parser("keys", help="API keys for the HTTP API")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="print a new key (shown once)")
    create.add_argument("--role", required=True, choices=("admin", "auditor", "accountant", "customer"))
    create.add_argument("--name", default="", help="who or what uses it")
    create.add_argument("--customer", help="customer id (customer keys only)")
    create.add_argument("--expires", help="ISO 8601 date-time with zone")
    keys_sub.add_parser("revoke").add_argument("id")
    keys_sub.add_parser("list").add_argument("--json", action="store_true")
    keys.set_defaults(func=cmd_keys)

    meter_keys = sub.add_parser("meter-keys", help="meter public keys: the trust anchors of signed values")
    meter_keys_sub = meter_keys.add_subparsers(dest="action", required=True)
    add_key = meter_keys_sub.add_parser("add", help="register a key from the meter's label")
    add_key.add_argument("charge_point")
    add_key.add_argument("public_key", help="hex or base64 SPKI, oca:base16:asn1:..., or the bare point")
    add_key.add_argument("--evse", type=int, help="only for this EVSE (1.6: connector)")
    add_key.add_argument("--serial", help="only for this meter serial (OCMF MS)")
    add_key.add_argument("--label", default="")
    retire_key = meter_keys_sub.add_parser("retire", help="stop trusting a key from a time on")
    retire_key.add_argument("charge_point")
    retire_key.add_argument("fingerprint")
    retire_key.add_argument("--reason", required=True)
    retire_key.add_argument("--at", help="ISO 8601 with zone; default now")
    list_keys = meter_keys_sub.add_parser("list")
    list_keys.add_argument("charge_point")
    list_keys.add_argument("--json", action="store_true")
    meter_keys.set_defaults(func=cmd_meter_keys)

    evidence = sub.add_parser("evidence", help="evidence files for customers and auditors")
    evidence_sub = evidence.add_subparsers(dest="action", required=True)
    evidence_export = evidence_sub.add_parser(
        "export", help="a session's signed begin and end as a Transparenzsoftware XML file"
    )
    evidence_export.add_argument("--session", required=True, help="the session id (UUID)")
    evidence_export.add_argument("--output", "-o", help="file to write; default stdout")
    evidence_export.set_defaults(func=cmd_evidence_export)

    price = sub.add_parser("price", help="price an OCPI session under an OCPI tariff (nothing is stored)")
    price.add_argument("--tariff", required=True, help="an OCPI 2.2.1 Tariff object (JSON file)")
    price.add_argument("--cdr", required=True, help="an OCPI CDR or Session with time_zone (JSON file)")
    price.set_defaults(func=cmd_price)

    invoices = sub.add_parser("invoices", help="invoice runs")
    invoices_sub = invoices.add_subparsers(dest="action", required=True)
    invoice_run = invoices_sub.add_parser("run", help="one draft per customer for a month")
    invoice_run.add_argument("--issuer", required=True, help="the issuer's code")
    invoice_run.add_argument("--period", required=True, help="the month, e.g. 2026-11")
    invoice_run.add_argument("--issue", action="store_true", help="issue the drafts at once (today)")
    invoice_run.add_argument("--files", action="store_true",
                             help="with --issue: render and archive each invoice's files (PDF, "
                                  "XML, evidence) now, as its first download would")
    invoice_run.add_argument("--workers", type=_positive, default=len(os.sched_getaffinity(0)),
                             help="processes rendering the files (default: one a CPU this "
                                  "process may use)")
    invoice_run.add_argument("--base-url", default="http://localhost:8180",
                             help="where the API answers (for the evidence links printed)")
    invoice_run.add_argument("--json", action="store_true")
    invoice_run.set_defaults(func=cmd_invoices_run)

    demo = sub.add_parser(
        "demo", help="a month of a wallbox for two tenants, priced and invoiced (fresh database)"
    )
    demo.add_argument("--dir", default="var/demo", help="where the database and the files go")
    demo.add_argument("--keep-running", action="store_true",
                      help="keep the server running (until Ctrl-C) to explore the API")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("verify", help="check signed meter values (Eichrecht) in files")
    check.add_argument("files", nargs="+", metavar="FILE", help="Transparenzsoftware XML, "
                       "OCPP JSON, or one signed record a line; - reads stdin")
    check.add_argument("--key", action="append", default=[],
                       help="a registered public key (hex or base64 DER, oca:...); repeatable")
    check.set_defaults(func=cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return int(args.func(settings, args))
    except (LedgerError, ValueError) as exc:
        print(f"ladebuch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
