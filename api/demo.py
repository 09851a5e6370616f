"""`ladebuch demo`: one month of a landlord's wallbox, from signed meter values to invoice files.

On a fresh SQLite database the real server (the same application `ladebuch serve` runs) starts
in this process, and the demo uses it the way a landlord's tools and a wallbox would:

1. over HTTP with an admin key: an issuer (the landlord), two tenants with an RFID card each,
   the wallbox with its password and its meter's public key, and the wallbox's tariff;
2. over a real OCPP 1.6J WebSocket, a simulated wallbox whose meter signs every begin and end
   reading as OCMF (secp256r1, with a key pair made for this run): a few sessions per tenant,
   all in the previous calendar month (Europe/Berlin);
3. over HTTP again: waits until the server priced them, runs the invoice run for that month,
   issues one invoice per tenant and downloads its files (the Factur-X PDF, the EN 16931 XML,
   the XRechnung for the business tenant, the evidence ZIP for the Transparenzsoftware).

Every run starts from an empty database, so it can be repeated; the files land next to it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from email.message import Message
from pathlib import Path
from signal import SIGINT, SIGTERM
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from api.settings import Settings
from ledger.store import Database, migrate

BERLIN = ZoneInfo("Europe/Berlin")
DATABASE_FILE = "ladebuch-demo.sqlite3"
ISSUER = "SONNENHOF"
CHARGE_POINT = "SONNENHOF-WB1"
METER_SERIAL = "DEMO-0012345678"
TARIFF = "SONNENHOF-WALLBOX"
ENERGY_PRICE = Decimal("0.39")  # EUR per kWh, excl. VAT
VAT_RATE = Decimal("19")
METER_AT_START = Decimal("1843.270")  # kWh on the meter's register before the month's first session


@dataclass(frozen=True)
class Tenant:
    name: str
    token: str  # the RFID card's UID
    customer: dict[str, Any]  # the body of POST /v1/customers


@dataclass(frozen=True)
class Charge:
    """One charging session: when it starts (day of the month, local time), how long, how much."""

    token: str
    day: int
    start: time_of_day  # Europe/Berlin
    minutes: int
    energy_kwh: Decimal


TENANTS = (
    Tenant("Anna Schmidt", "04A2B3C4D5E601", {
        "name": "Anna Schmidt", "kind": "person", "email": "anna.schmidt@example.org",
        "language": "de",
        "billing_address": {"street": "Sonnenhof 1, Wohnung 4", "postal_code": "10115",
                            "city": "Berlin", "country": "DE"},
    }),
    Tenant("Northwind Analytics GmbH", "04B7C8D9E0F102", {
        "name": "Northwind Analytics GmbH", "kind": "company",
        "email": "accounts@northwind.example",
        "vat_id": "DE312345678", "language": "en", "buyer_reference": "PO-2026-EV-117",
        "billing_address": {"street": "Sonnenhof 1, Stellplatz 7", "postal_code": "10115",
                            "city": "Berlin", "country": "DE"},
    }),
)
ANNA, NORTHWIND = (tenant.token for tenant in TENANTS)
CHARGES = (
    Charge(ANNA, 2, time_of_day(18, 10), 185, Decimal("11.525")),
    Charge(NORTHWIND, 6, time_of_day(8, 30), 240, Decimal("18.904")),
    Charge(ANNA, 13, time_of_day(19, 45), 150, Decimal("8.130")),
    Charge(NORTHWIND, 20, time_of_day(9, 15), 200, Decimal("14.267")),
    Charge(ANNA, 27, time_of_day(7, 5), 100, Decimal("6.482")),
)

_FILES = (  # (kind, path below /v1/invoices/{id}/, what it is)
    ("pdf", "invoice.pdf", "Factur-X PDF: the invoice, its EN 16931 XML, the transparency files"),
    ("xml", "invoice.xml", "EN 16931 CII XML (Factur-X profile EN16931)"),
    ("xrechnung", "xrechnung.xml", "XRechnung CII XML (business customers)"),
    ("evidence", "evidence.zip", "the signed meter values, for the S.A.F.E. Transparenzsoftware"),
)


class DemoError(RuntimeError):
    """The demo could not go on; the message says what the server answered."""


@dataclass(frozen=True)
class DemoInvoice:
    tenant: str
    customer_id: str
    invoice_id: str
    number: str
    sessions: int
    energy_kwh: Decimal
    total_net: Decimal
    total_gross: Decimal
    currency: str
    files: dict[str, Path]  # kind ("pdf", "xml", "xrechnung", "evidence") -> absolute path
    unavailable: dict[str, str]  # kind -> why the server has no such file


@dataclass(frozen=True)
class DemoResult:
    database: Path
    base_url: str
    admin_key: str
    period: date  # the first day of the invoiced month
    meter_public_key: str  # hex DER SubjectPublicKeyInfo, as registered
    invoices: tuple[DemoInvoice, ...]


def run(
    directory: Path, *, settings: Settings | None = None, keep_running: bool = False,
    out: TextIO = sys.stdout,
) -> DemoResult:
    """Run the demo into `directory` (created if needed) and print what it made. With
    `keep_running` the server stays up (on the configured port if it is free) until Ctrl-C."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / DATABASE_FILE
    _fresh_database(database)
    settings = dataclasses.replace(
        settings or Settings(), database_url=f"sqlite:///{database}", host="127.0.0.1",
        public_url="",
    )
    admin_key = _admin_key(settings)
    period = previous_month(datetime.now(BERLIN).date())
    meter = Meter(METER_AT_START)
    with _server(settings, prefer_port=keep_running) as base_url:
        print(f"Ladebuch demo: {period:%B %Y} at {CHARGE_POINT}, on {database}", file=out)
        api = Client(base_url, admin_key)
        password, customers = _register(api, meter, period)
        print(f"  registered the landlord {ISSUER}, {len(TENANTS)} tenants, {CHARGE_POINT} "
              "and its meter key", file=out)
        with connect(
            f"{base_url.replace('http://', 'ws://')}/ocpp/{CHARGE_POINT}",
            subprotocols=[Subprotocol("ocpp1.6")], compression=None, proxy=None,
            additional_headers={"Authorization": _basic(CHARGE_POINT, password)},
        ) as connection:
            wallbox = ChargePoint(connection, meter)
            wallbox.boot()
            for charge in CHARGES:
                start = datetime.combine(period.replace(day=charge.day), charge.start, BERLIN)
                wallbox.charge(charge.token, start, start + timedelta(minutes=charge.minutes),
                               charge.energy_kwh)
        print(f"  charged {len(CHARGES)} sessions over OCPP 1.6J, each with a signed begin and end "
              "(OCMF)", file=out)
        _wait_until_priced(api)
        invoices = _invoice(api, period, customers, directory)
        result = DemoResult(database, base_url, admin_key, period, meter.public_key_hex,
                            tuple(invoices))
        _print_summary(result, out, keep_running=keep_running)
        if keep_running:
            _wait_for_interrupt()
    return result


def previous_month(today: date) -> date:
    """The first day of the calendar month before `today`'s."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


# -- the database, the admin key, the server ----------------------------------------------------


def _fresh_database(path: Path) -> None:
    """An empty, migrated SQLite file at `path`: the previous run's is removed first."""
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        leftover.unlink(missing_ok=True)
    migrate(Database.from_url(f"sqlite:///{path}"))


def _admin_key(settings: Settings) -> str:
    """An admin API key, made the way `ladebuch keys create --role admin` makes one."""
    from api.services import Services

    services = Services.build(settings)
    try:
        return services.registry.issue_api_key(name="demo", role="admin").token
    finally:
        services.close()


@contextmanager
def _server(settings: Settings, *, prefer_port: bool) -> Iterator[str]:
    """The application `ladebuch serve` runs, served by uvicorn in a thread; yields its base URL.
    Listens on the configured port when `prefer_port` and it is free, else on any free port."""
    import uvicorn

    from api.app import create_app

    listener = _listen(settings.host, settings.port if prefer_port else 0)
    port = int(listener.getsockname()[1])
    settings = dataclasses.replace(settings, port=port)
    config = uvicorn.Config(
        create_app(settings), log_config=None, log_level="warning", access_log=False,
        ws="websockets-sansio", ws_per_message_deflate=False, ws_max_size=settings.ws_max_bytes,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]},
                              name="ladebuch-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            listener.close()
            raise DemoError("the server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://{settings.host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    listener = socket.socket()
    try:
        listener.bind((host, port))
    except OSError:
        if port == 0:
            listener.close()
            raise
        listener.bind((host, 0))  # the configured port is taken (`make run`?): any free one
    return listener


def _wait_for_interrupt() -> None:
    """Until Ctrl-C or SIGTERM (the server then shuts down as `ladebuch serve` does)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (SIGINT, SIGTERM)}
    try:
        while not stop.wait(1):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the HTTP client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    name: str  # the file name the server proposes (Content-Disposition)
    content: bytes


class Client:
    """What a landlord's script would use: JSON over HTTP with an API key. An unexpected answer
    raises `DemoError` with the problem's title and detail."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self._headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        # The demo talks to 127.0.0.1 only: never through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str, **query: str) -> Any:
        return json.loads(self._send("GET", path, query=query)[2])

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return json.loads(self._send("POST", path, body=body)[2])

    def download(self, path: str) -> Download | str:
        """The file, or why there is none (the problem's detail on a 404 or 409)."""
        status, headers, content = self._send("GET", path, accept=(200, 404, 409))
        if status != 200:
            return _problem_text(content)
        message = Message()
        message["Content-Disposition"] = headers.get("Content-Disposition", "")
        name = Path(message.get_filename() or path.rsplit("/", 1)[-1]).name
        return Download(name, content)

    def _send(
        self, method: str, path: str, *, body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None, accept: Sequence[int] = (200, 201),
    ) -> tuple[int, Message, bytes]:
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=120) as response:
                status, answer_headers, content = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, content = error.code, error.headers, error.read()
        if status not in accept:
            raise DemoError(f"{method} {path}: {status} {_problem_text(content)}")
        return status, answer_headers, content


def _problem_text(content: bytes) -> str:
    try:
        problem = json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")[:300]
    if not isinstance(problem, dict):
        return str(problem)[:300]
    return ": ".join(str(problem[k]) for k in ("title", "detail") if problem.get(k))


# -- registration ---------------------------------------------------------------------------------


def _register(api: Client, meter: Meter, period: date) -> tuple[str, dict[str, str]]:
    """The landlord, the tenants and their cards, the wallbox, its meter key and its tariff.
    Answers the wallbox's password and each tenant's customer id (by card)."""
    api.post("/v1/issuers", {
        "code": ISSUER, "name": "Hausverwaltung Sonnenhof GmbH",
        "address": {"street": "Sonnenhof 1", "postal_code": "10115", "city": "Berlin",
                    "country": "DE"},
        "vat_id": "DE123456789", "tax_number": "27/123/45678",
        "email": "abrechnung@sonnenhof.example", "phone": "+49 30 1234567",
        "iban": "DE02120300000000202051", "bic": "BYLADEM1001", "bank": "Deutsche Kreditbank",
        "time_zone": "Europe/Berlin",
        "ranges": {"default": "LB-{year}-{seq:06d}"},
    })
    customers: dict[str, str] = {}
    for tenant in TENANTS:
        customers[tenant.token] = customer = api.post("/v1/customers", tenant.customer)["id"]
        api.post(f"/v1/customers/{customer}/id-tags",
                 {"token": tenant.token, "kind": "rfid", "label": f"card of {tenant.name}"})
    api.post("/v1/charge-points", {
        "id": CHARGE_POINT, "label": "Wallbox, Stellplatz 7", "location": "Tiefgarage Sonnenhof 1",
    })
    password: str = api.post(f"/v1/charge-points/{CHARGE_POINT}/password", {})["password"]
    api.post(f"/v1/charge-points/{CHARGE_POINT}/meter-keys", {
        "public_key": meter.public_key_hex, "evse_id": 1, "meter_serial": METER_SERIAL,
        "label": "from the meter's label",
    })
    valid_from = datetime.combine(period, time_of_day.min, BERLIN).astimezone(UTC)
    api.post("/v1/tariffs", {
        "tariff": {
            "id": TARIFF, "currency": "EUR",
            "elements": [{"price_components": [
                {"type": "ENERGY", "price": str(ENERGY_PRICE), "vat": str(VAT_RATE),
                 "step_size": 1},
            ]}],
        },
        "valid_from": valid_from.isoformat(),
    })
    api.post("/v1/tariff-assignments",
             {"scope": "charge-point", "key": CHARGE_POINT, "tariff": TARIFF})
    return password, customers


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# -- the wallbox ----------------------------------------------------------------------------------


class Meter:
    """The wallbox's calibrated meter: a register in kWh (three decimals) and a key pair that
    signs each begin and end reading as one OCMF record, as Eichrecht meters do."""

    def __init__(self, register_kwh: Decimal) -> None:
        self.register_kwh = register_kwh
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._pagination = 0  # OCMF PG "T<n>": +1 per signed record

    @property
    def public_key_hex(self) -> str:
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return der.hex().upper()

    @property
    def register_wh(self) -> int:
        return int(self.register_kwh * 1000)

    def sign(self, kind: str, at: datetime, token: str) -> str:
        """`OCMF|payload|signature` for the current register value; `kind` is TX: B or E."""
        self._pagination += 1
        stamp = at.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M:%S,000%z") + " S"
        # Written out as the meter writes it: the signature covers exactly these bytes,
        # and RV keeps its three decimals.
        payload = (
            '{"FV":"1.0","GI":"Ladebuch Demo Wallbox","GS":"WB1-0001","GV":"1.0.0",'
            f'"PG":"T{self._pagination}","MV":"Demo Meter","MM":"DM-1","MS":"{METER_SERIAL}",'
            '"MF":"1.0","IS":true,"IL":"TRUSTED","IF":["RFID_PLAIN"],"IT":"ISO14443",'
            f'"ID":{json.dumps(token)},"RD":[{{"TM":"{stamp}","TX":"{kind}",'
            f'"RV":{self.register_kwh:.3f},"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"",'
            '"ST":"G"}]}'
        ).encode()
        signature = self._key.sign(payload, ec.ECDSA(hashes.SHA256()))
        section = {"SA": "ECDSA-secp256r1-SHA256", "SD": signature.hex().upper()}
        return f"OCMF|{payload.decode()}|{json.dumps(section, separators=(',', ':'))}"


class ChargePoint:
    """A simulated OCPP 1.6J wallbox with one connector and `meter`: it waits for each answer,
    as a real station does."""

    def __init__(self, connection: ClientConnection, meter: Meter) -> None:
        self._connection = connection
        self._meter = meter
        self._message_id = 0

    def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._message_id += 1
        message_id = str(self._message_id)
        self._connection.send(json.dumps([2, message_id, action, payload], separators=(",", ":")))
        answer = json.loads(self._connection.recv(timeout=60))
        if answer[:2] != [3, message_id]:
            raise DemoError(f"{action}: the server answered {json.dumps(answer)[:300]}")
        result: dict[str, Any] = answer[2]
        return result

    def boot(self) -> None:
        answer = self.call("BootNotification", {
            "chargePointVendor": "Ladebuch", "chargePointModel": "Demo Wallbox",
            "chargePointSerialNumber": "WB1-0001", "firmwareVersion": "1.0.0",
            "meterSerialNumber": METER_SERIAL, "meterType": "Demo Meter DM-1",
        })
        if answer.get("status") != "Accepted":
            raise DemoError(f"BootNotification: {answer}")
        self._status("Available", datetime.now(UTC))

    def charge(self, token: str, start: datetime, end: datetime, energy_kwh: Decimal) -> None:
        """One session: plug in, the card, start, a signed begin reading, a periodic reading,
        stop with the signed begin and end as transaction data, unplug."""
        self._status("Preparing", start)
        authorized = self.call("Authorize", {"idTag": token})["idTagInfo"]["status"]
        if authorized != "Accepted":
            raise DemoError(f"the server did not accept card {token}: {authorized}")
        started = self.call("StartTransaction", {
            "connectorId": 1, "idTag": token, "meterStart": self._meter.register_wh,
            "timestamp": _iso(start),
        })
        transaction_id = started["transactionId"]
        self._status("Charging", start)
        begin = self._meter.sign("B", start, token)
        begin_wh = self._meter.register_wh
        self.call("MeterValues", {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
            self._reading(start, "Transaction.Begin", begin_wh, begin),
        ]})
        halfway = start + (end - start) / 2
        self.call("MeterValues", {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
            self._reading(halfway, "Sample.Periodic", begin_wh + int(energy_kwh * 500)),
        ]})
        self._meter.register_kwh += energy_kwh
        end_record = self._meter.sign("E", end, token)
        self.call("StopTransaction", {
            "transactionId": transaction_id, "idTag": token, "meterStop": self._meter.register_wh,
            "timestamp": _iso(end), "reason": "EVDisconnected",
            "transactionData": [
                {"timestamp": _iso(start), "sampledValue": [
                    {"value": begin, "format": "SignedData", "context": "Transaction.Begin"}]},
                self._reading(end, "Transaction.End", self._meter.register_wh, end_record),
            ],
        })
        self._status("Finishing", end)
        self._status("Available", end + timedelta(minutes=2))

    @staticmethod
    def _reading(at: datetime, context: str, register_wh: int, signed: str | None = None,
                 ) -> dict[str, Any]:
        """The register in Wh, and beside it the same reading as the meter signed it."""
        values: list[dict[str, Any]] = [{
            "value": str(register_wh), "context": context,
            "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "Wh",
        }]
        if signed is not None:
            values.append({"value": signed, "format": "SignedData", "context": context,
                           "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                           "unit": "kWh"})
        return {"timestamp": _iso(at), "sampledValue": values}

    def _status(self, status: str, at: datetime) -> None:
        self.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status,
                                         "timestamp": _iso(at)})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- prices and invoices --------------------------------------------------------------------------


def _wait_until_priced(api: Client) -> None:
    """Every session is priced (`fresh=true` waits for the pricer); one that is not is a
    failure of the demo, with the server's reason."""
    found = api.get("/v1/priced-sessions", fresh="true", limit="500")["items"]
    unpriced = [f"{item['session_id']}: {item['reason']}" for item in found
                if item["status"] != "priced"]
    if unpriced or len(found) != len(CHARGES):
        raise DemoError(f"not every session is priced ({len(found)} of {len(CHARGES)} known): "
                        f"{'; '.join(unpriced) or 'none unpriced'}")


def _invoice(
    api: Client, period: date, customers: dict[str, str], directory: Path
) -> list[DemoInvoice]:
    """The month's invoice run, one invoice issued per tenant (in the order of `TENANTS`, so the
    numbers are too), and each invoice's files written to `directory`."""
    run = api.post("/v1/invoice-runs", {"issuer": ISSUER, "period": f"{period:%Y-%m}"})
    drafts = {api.get(f"/v1/invoices/{draft}")["customer_id"]: draft for draft in run["drafts"]}
    invoices = []
    for tenant in TENANTS:
        draft = drafts.get(customers[tenant.token])
        if draft is None:
            raise DemoError(f"the invoice run made no draft for {tenant.name}")
        issued = api.post(f"/v1/invoices/{draft}/issue", {})
        files: dict[str, Path] = {}
        unavailable: dict[str, str] = {}
        for kind, name, _ in _FILES:
            if kind == "xrechnung" and tenant.customer["kind"] != "company":
                continue
            got = api.download(f"/v1/invoices/{draft}/{name}")
            if isinstance(got, str):
                unavailable[kind] = got
                continue
            path = directory / got.name
            path.write_bytes(got.content)
            files[kind] = path
        lines = issued["document"]["lines"]
        invoices.append(DemoInvoice(
            tenant=tenant.name, customer_id=issued["customer_id"], invoice_id=draft,
            number=issued["number"], sessions=len(lines),
            energy_kwh=sum((Decimal(line["energy_kwh"]) for line in lines), Decimal(0)),
            total_net=Decimal(issued["total_net"]), total_gross=Decimal(issued["total_gross"]),
            currency=issued["currency"], files=files, unavailable=unavailable,
        ))
    return invoices


def _print_summary(result: DemoResult, out: TextIO, *, keep_running: bool) -> None:
    print(f"  priced them and issued {len(result.invoices)} invoices for {result.period:%B %Y}:",
          file=out)
    for invoice in result.invoices:
        print(f"\n  {invoice.number}  {invoice.tenant}: {invoice.sessions} sessions, "
              f"{invoice.energy_kwh} kWh, {invoice.total_gross} {invoice.currency} "
              f"({invoice.total_net} net)", file=out)
        for kind, _, what in _FILES:
            if kind in invoice.files:
                print(f"    {invoice.files[kind]}\n        {what}", file=out)
            elif kind in invoice.unavailable:
                print(f"    no {kind}: {invoice.unavailable[kind]}", file=out)
    print(f"\n  the meter's public key (registered; in every evidence file):\n"
          f"    {result.meter_public_key}", file=out)
    if keep_running:
        print(f"\nThe server keeps running until Ctrl-C:\n"
              f"  API docs   {result.base_url}/docs\n"
              f"  admin key  {result.admin_key}\n"
              f"  try        curl -H 'Authorization: Bearer {result.admin_key}' "
              f"{result.base_url}/v1/invoices", file=out, flush=True)
    else:
        print("\nTo explore the API on this data: ladebuch demo --keep-running", file=out)
