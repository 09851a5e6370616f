"""Invoice runs, issuing and cancelling: from priced sessions to frozen invoice documents.

A run for an issuer and a billing period (default: the calendar month in the issuer's time
zone) makes one draft per customer holding that customer's priced sessions that ended in the
period and are on no valid invoice and no open draft. Issuing a draft builds its document
(`invoices.document.Invoice`) from the sessions' current price records and evidence, takes the
next number of the issuer's range and claims every session, all in one transaction of the
registry; a lost race with another process is retried on fresh state, so numbers stay gap-free
and unique and a session lands on one invoice only. Cancelling issues a Stornorechnung that
negates the original, with its own number, and releases the sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError

from invoices.document import (
    CANCELLATION,
    INVOICE,
    Address,
    Component,
    Customer,
    Evidence,
    Issuer,
    Line,
    cents,
    vat_breakdown,
)
from invoices.document import Invoice as Document
from ledger.application import Ledger, Registry, transparency_of
from ledger.errors import Conflict, InvalidValue, NotFound
from ledger.invoicing import DEFAULT_RANGE, DRAFT, Invoice, NumberRange, SessionClaim
from ledger.invoicing import Issuer as IssuerAggregate
from ledger.priced import PRICED, SessionPrice
from ledger.registry import Customer as CustomerAggregate
from ledger.sessions import ChargingSession
from ledger.signed.evidence import key_hex
from projections.view import View

SMALL_BUSINESS_NOTE = {
    "de": "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
    "en": "No VAT is charged under section 19 UStG (small business).",
}
NOT_CALIBRATED_NOTE = {
    "de": "Die Messwerte stammen nicht aus geeichten Zählern.",
    "en": "The meter values are not from calibrated meters.",
}
_ATTEMPTS = 50  # each lost race is another issuer's success: retrying always makes progress
_DRAFTS_SAVED_TOGETHER = 100  # in one transaction
T = TypeVar("T")


@dataclass(frozen=True)
class RunResult:
    drafts: list[UUID]
    sessions: int
    without_customer: list[str]  # priced sessions nobody can be billed for (no customer)


def month(period: str) -> tuple[date, date]:
    """`2026-11` → (2026-11-01, 2026-11-30)."""
    try:
        year, month_ = (int(part) for part in period.split("-"))
        start = date(year, month_, 1)
    except ValueError:
        raise InvalidValue("period: YYYY-MM, e.g. 2026-11") from None
    following = date(year + month_ // 12, month_ % 12 + 1, 1)
    return start, following - timedelta(days=1)


def local_bounds(start: date, end: date, time_zone: str) -> tuple[datetime, datetime]:
    """The period's first and last day (inclusive) as UTC instants [from, to)."""
    zone = ZoneInfo(time_zone)
    begin = datetime.combine(start, time(), zone).astimezone(UTC)
    finish = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    return begin, finish


def run(
    registry: Registry, view: View, *, issuer: str, period_start: date, period_end: date,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """One draft per customer with invoiceable priced sessions ended in the period."""
    found = registry.get_or_none(IssuerAggregate, IssuerAggregate.create_id(issuer))
    if found is None:
        raise NotFound("issuer", issuer)
    if period_end < period_start:
        raise InvalidValue("period: the end is before the start")
    begin, finish = local_bounds(period_start, period_end, found.time_zone)
    with view.reading() as cur:
        rows = cur.execute(
            "SELECT session_id, customer_id FROM rm_priced_sessions WHERE status = %s "
            "AND ended_at >= %s AND ended_at < %s ORDER BY ended_at, session_id",
            (PRICED, begin, finish),
        ).fetchall()
        drafted = {
            str(row[0]) for row in cur.execute(
                "SELECT s.session_id FROM rm_invoice_sessions s JOIN rm_invoices i "
                "ON i.invoice_id = s.invoice_id WHERE i.state = %s", (DRAFT,)
            ).fetchall()
        }
    candidates = [(str(s), c) for s, c in rows if str(s) not in drafted]
    claims = registry.aggregates(SessionClaim, [SessionClaim.create_id(s) for s, _ in candidates])
    by_customer: dict[str, list[str]] = {}
    without: list[str] = []
    for session_id, customer_id in candidates:
        claim = claims.get(SessionClaim.create_id(session_id))
        if claim is not None and claim.invoice is not None:  # on a valid invoice
            continue
        if customer_id is None:
            without.append(session_id)
            continue
        by_customer.setdefault(str(customer_id), []).append(session_id)
    if not by_customer:
        raise Conflict(
            "nothing to invoice: no priced session in the period is without an invoice"
            + (f" ({len(without)} have no customer)" if without else "")
        )
    drafts = [
        Invoice.draft(
            issuer=issuer, customer_id=customer_id, period_start=period_start,
            period_end=period_end, sessions=sessions, run=f"{issuer}:{period_start}:{period_end}",
        )
        for customer_id, sessions in sorted(by_customer.items())
    ]
    for start in range(0, len(drafts), _DRAFTS_SAVED_TOGETHER):
        registry.save(*drafts[start : start + _DRAFTS_SAVED_TOGETHER])
        if progress is not None:
            progress(min(start + _DRAFTS_SAVED_TOGETHER, len(drafts)), len(drafts))
    return RunResult([d.id for d in drafts], sum(len(s) for s in by_customer.values()), without)


def discard(registry: Registry, invoice_id: UUID, reason: str) -> Invoice:
    invoice = _invoice(registry, invoice_id)
    invoice.discard(reason)
    registry.save(invoice)
    return invoice


def issue(
    registry: Registry, ledger: Ledger, invoice_id: UUID, *, issue_date: date, at: datetime,
    by: str, base_url: str = "", range_name: str = DEFAULT_RANGE,
) -> Invoice:
    """Freeze the draft's document, give it the next number and claim its sessions.

    What gets printed is read once; a retry (another process took the number, or claimed a
    session, first) reads again only the draft, the claims and the number range."""
    draft = _draft(registry, invoice_id)
    issuer, customer, lines, currency = _contents(registry, ledger, draft, base_url)
    first = [draft]

    def attempt() -> Invoice:
        invoice = first.pop() if first else _draft(registry, invoice_id)
        held = registry.aggregates(SessionClaim, [SessionClaim.create_id(line.session_id) for line in lines])
        claims = [held.get(SessionClaim.create_id(line.session_id)) or SessionClaim(session_id=line.session_id)
                  for line in lines]
        fmt, numbers = _range(registry, invoice.issuer, range_name, issue_date)
        number = numbers.assign(fmt, issue_date, invoice.id)
        for claim in claims:
            claim.claim(invoice.id, number)
        document = _document(number, issue_date, invoice, issuer, customer, lines, currency)
        invoice.issue(number=number, issue_date=issue_date, document=document.to_json(), at=at, by=by)
        registry.save(invoice, numbers, *claims)
        return invoice

    return _retrying(attempt)


def _draft(registry: Registry, invoice_id: UUID) -> Invoice:
    invoice = _invoice(registry, invoice_id)
    if invoice.state != DRAFT:
        raise Conflict(f"this invoice is {invoice.state}" + (f" as {invoice.number}" if invoice.number else ""))
    return invoice


def preview(
    registry: Registry, ledger: Ledger, invoice_id: UUID, *, issue_date: date, base_url: str = ""
) -> Document:
    """What issuing the draft on `issue_date` would print now, without a number (`number` is
    empty) and without storing anything: for reviewing a draft. Raises what issuing would."""
    invoice = _invoice(registry, invoice_id)
    if invoice.state != DRAFT:
        raise Conflict(f"this invoice is {invoice.state}: only a draft has a preview")
    issuer, customer, lines, currency = _contents(registry, ledger, invoice, base_url)
    return _document("", issue_date, invoice, issuer, customer, lines, currency)


def _contents(
    registry: Registry, ledger: Ledger, invoice: Invoice, base_url: str
) -> tuple[Issuer, Customer, tuple[Line, ...], str]:
    """The draft's issuer, customer and lines as they would be printed now, and the currency."""
    issuer = _issuer(registry, invoice.issuer)
    customer = _customer(registry, invoice.customer_id)
    priced = lines_of(ledger, [UUID(s) for s in invoice.sessions], small_business=issuer.small_business,
                      language=customer.language, base_url=base_url)
    currencies = {currency for _, currency in priced}
    if len(currencies) != 1:
        raise Conflict(f"the sessions are priced in different currencies: {sorted(currencies)}")
    return issuer, customer, tuple(line for line, _ in priced), currencies.pop()


def cancel(
    registry: Registry, invoice_id: UUID, *, issue_date: date, at: datetime, by: str,
    reason: str, range_name: str = DEFAULT_RANGE,
) -> Invoice:
    """Issue the Stornorechnung of an issued invoice; returns the cancellation."""

    def attempt() -> Invoice:
        original = _invoice(registry, invoice_id)
        if original.document is None or original.number is None:
            raise Conflict(f"only an issued invoice can be cancelled; this one is {original.state}")
        if original.kind != INVOICE:
            raise Conflict("a cancellation cannot be cancelled; issue a new invoice instead")
        if original.cancelled_by is not None:
            raise Conflict(f"the invoice was already cancelled by {original.cancelled_by}")
        storno = Invoice.draft(
            issuer=original.issuer, customer_id=original.customer_id,
            period_start=original.period_start, period_end=original.period_end,
            sessions=list(original.sessions), run=None, kind=CANCELLATION, cancels=str(original.id),
        )
        fmt, numbers = _range(registry, original.issuer, range_name, issue_date)
        number = numbers.assign(fmt, issue_date, storno.id)
        document = negated(Document.from_json(original.document), number, issue_date, reason)
        storno.issue(number=number, issue_date=issue_date, document=document.to_json(), at=at, by=by)
        original.cancel(cancellation_id=storno.id, cancellation_number=number)
        claims = []
        for session_id in original.sessions:
            claim = registry.get_or_none(SessionClaim, SessionClaim.create_id(session_id))
            if claim is not None and claim.invoice == str(original.id):
                claim.release(number)
                claims.append(claim)
        registry.save(storno, original, numbers, *claims)
        return storno

    return _retrying(attempt)


def negated(original: Document, number: str, issue_date: date, reason: str) -> Document:
    """The Stornorechnung of `original`: every line and amount negated, referencing it."""
    lines = tuple(
        replace(line, net=-line.net, energy_kwh=-line.energy_kwh, components=tuple(
            replace(c, quantity=-c.quantity, amount=-c.amount) for c in line.components))
        for line in original.lines
    )
    language = original.customer.language
    note = (f"Storno der Rechnung {original.number}: {reason}" if language == "de"
            else f"Cancels invoice {original.number}: {reason}")
    return replace(
        original, number=number, kind=CANCELLATION, cancels=original.number, issue_date=issue_date,
        lines=lines, vat=tuple(replace(v, net=-v.net, tax=-v.tax) for v in original.vat),
        total_net=-original.total_net, total_vat=-original.total_vat,
        total_gross=-original.total_gross, notes=(note, *original.notes),
    )


def _retrying(attempt: Callable[[], T]) -> T:
    for _ in range(_ATTEMPTS - 1):
        try:
            return attempt()
        except IntegrityError:
            continue  # another process issued from this range (or claimed a session) first
    return attempt()


def _invoice(registry: Registry, invoice_id: UUID) -> Invoice:
    found = registry.get_or_none(Invoice, invoice_id)
    if found is None:
        raise NotFound("invoice", str(invoice_id))
    return found


def _issuer(registry: Registry, code: str) -> Issuer:
    found = registry.get_or_none(IssuerAggregate, IssuerAggregate.create_id(code))
    if found is None:
        raise NotFound("issuer", code)
    missing = found.missing_for_invoices()
    if missing:
        raise InvalidValue(f"the issuer lacks what an invoice must show: {', '.join(missing)}")
    a = found.address
    return Issuer(
        name=found.name, address=Address(a["street"], a["postal_code"], a["city"], a.get("country") or "DE"),
        vat_id=found.vat_id or None, tax_number=found.tax_number or None, email=found.email or None,
        iban=found.iban or None, bic=found.bic or None, bank=found.bank or None,
        small_business=found.small_business, time_zone=found.time_zone, phone=found.phone or None,
    )


def _customer(registry: Registry, customer_id: str) -> Customer:
    found = registry.get_or_none(CustomerAggregate, UUID(customer_id))
    if found is None:
        raise NotFound("customer", customer_id)
    a = found.billing_address or {}
    missing = [f"billing_address.{k}" for k in ("street", "postal_code", "city") if not a.get(k)]
    if missing:
        raise InvalidValue(f"customer {found.name!r} has no address to invoice: {', '.join(missing)}")
    return Customer(
        name=found.name, address=Address(a["street"], a["postal_code"], a["city"], a.get("country") or "DE"),
        vat_id=found.vat_id or None, email=found.email or None, customer_id=customer_id,
        business=found.kind == "company", language=found.language,
        buyer_reference=getattr(found, "buyer_reference", None) or None,
    )


def _range(registry: Registry, issuer: str, range_name: str, issue_date: date) -> tuple[str, NumberRange]:
    found = registry.get_or_none(IssuerAggregate, IssuerAggregate.create_id(issuer))
    assert found is not None
    fmt = found.ranges.get(range_name)
    if fmt is None:
        raise NotFound("number range", f"{issuer}/{range_name}")
    key = NumberRange.period_key(fmt, issue_date)
    numbers = registry.get_or_none(NumberRange, NumberRange.create_id(issuer, range_name, key))
    return fmt, numbers or NumberRange(issuer=issuer, range_name=range_name, key=key)


def line_of(
    ledger: Ledger, session_id: UUID, *, small_business: bool, language: str, base_url: str
) -> tuple[Line, str]:
    """The session's invoice line, from its current price record, and the price's currency:
    what an invoice of a (§19 `small_business`?) issuer to a customer speaking `language` would
    print. A session that is not priced is a `Conflict`."""
    record = ledger.current(SessionPrice, SessionPrice.create_id(session_id))
    return _line(session_id, record, lambda: ledger.session_with_events(session_id),
                 small_business=small_business, language=language, base_url=base_url)


def lines_of(
    ledger: Ledger, session_ids: Sequence[UUID], *, small_business: bool, language: str, base_url: str
) -> list[tuple[Line, str]]:
    """`line_of` for several sessions, their price records read in one query and their events
    in another (an invoice of 30 sessions: two round trips instead of 60)."""
    prices = ledger.aggregates(SessionPrice, [SessionPrice.create_id(s) for s in session_ids])
    sessions = ledger.sessions_with_events(session_ids)
    return [
        _line(s, prices.get(SessionPrice.create_id(s)), partial(sessions.get, s),
              small_business=small_business, language=language, base_url=base_url)
        for s in session_ids
    ]


def _line(
    session_id: UUID, record: SessionPrice | None,
    read_session: Callable[[], tuple[ChargingSession, list[Any]] | None],
    *, small_business: bool, language: str, base_url: str,
) -> tuple[Line, str]:
    outcome = None if record is None else record.outcome
    if outcome is None or outcome.get("status") != PRICED:
        reason = "it has no price" if outcome is None else f"it is not priced: {outcome.get('reason')}"
        raise Conflict(f"session {session_id} cannot be invoiced: {reason}")
    found = read_session()
    assert found is not None  # a priced session exists
    session, events = found
    components = []
    rates = set()
    for c in outcome["components"]:
        quantity, unit, unit_price = Decimal(c["quantity"]), str(c["unit"]), Decimal(c["unit_price"])
        if c["type"] in ("TIME", "PARKING_TIME", "RESERVATION_TIME"):
            quantity, unit = quantity / 3600, "h"  # billed seconds; prices are per hour
        elif c["type"] == "FLAT":
            unit = "session"
        components.append(Component(c["type"], quantity, unit, unit_price, Decimal(c["cost"]["excl_vat"])))
        rates.add(c["vat"])
    if len(rates) > 1:
        raise Conflict(f"session {session_id} has components with different VAT rates")
    rate = next(iter(rates), None)
    assessment = session.assessment or {}
    energy = _energy(outcome, assessment)
    line = Line(
        session_id=str(session_id), started_at=_utc(outcome["started_at"]), ended_at=_utc(outcome["ended_at"]),
        charge_point=outcome["charge_point"], evse_id=outcome.get("evse_id"),
        meter=_serial(outcome.get("meter")), energy_kwh=energy, components=tuple(components),
        net=cents(Decimal(outcome["total_cost"]["excl_vat"])),
        vat_rate=None if rate is None or small_business else Decimal(rate),
        evidence=_evidence(session, events, outcome, language, base_url),
    )
    return line, str(outcome["currency"])


def _energy(outcome: dict[str, Any], assessment: dict[str, Any]) -> Decimal:
    """kWh with the meter's own decimals (the signed reading's text), else as priced."""
    if outcome.get("energy_source") == "signed" and assessment.get("energy") and assessment.get("unit") in ("kWh", "Wh"):
        value = Decimal(str(assessment["energy"]))
        return value if assessment["unit"] == "kWh" else value / 1000
    return Decimal(outcome["total_energy"]).normalize()


def _serial(meter: Any) -> str | None:
    return None if not meter else str(meter).split()[-1]


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _evidence(
    session: ChargingSession, events: Sequence[Any], outcome: dict[str, Any], language: str, base_url: str
) -> Evidence:
    assessment = session.assessment or {}
    records = session.records
    begin = records.get(assessment.get("begin_record") or "")
    end = records.get(assessment.get("end_record") or "")
    calibrated = bool(outcome.get("calibrated", True))
    if not calibrated:
        verdict = NOT_CALIBRATED_NOTE[language]
    elif assessment.get("energy_billable"):
        verdict = ("Signierte Messwerte geprüft: Signatur gültig mit dem registrierten Zählerschlüssel; "
                   "Anfangs- und Endwert desselben Zählers; Energie abrechenbar." if language == "de" else
                   "Signed meter values checked: signature valid with the registered meter key; begin "
                   "and end from the same meter; energy billable.")
    else:
        verdict = "; ".join(assessment.get("reasons") or ())
    if calibrated and assessment.get("time_billable") != "wall-clock":
        verdict += (" Zeiten nicht eichrechtlich abgesichert." if language == "de"
                    else " Times are not legally verified.")
    return Evidence(
        verdict=verdict,
        calibrated=calibrated,
        begin_signed=None if begin is None else begin.get("signed_data"),
        end_signed=None if end is None else end.get("signed_data"),
        public_key=None if end is None else key_hex(end),
        url=f"{base_url.rstrip('/')}/v1/sessions/{session.id}/transparency.xml",
        transparency_xml=transparency_of(session, events),
    )


def _document(
    number: str, issue_date: date, invoice: Invoice, issuer: Issuer, customer: Customer,
    lines: Sequence[Line], currency: str,
) -> Document:
    lines = tuple(sorted(lines, key=lambda line: (line.started_at, line.session_id)))
    vat, net, tax, gross = vat_breakdown(lines, small_business=issuer.small_business)
    notes = []
    if issuer.small_business:
        notes.append(SMALL_BUSINESS_NOTE[customer.language])
    if any(not line.evidence.calibrated for line in lines):
        notes.append(NOT_CALIBRATED_NOTE[customer.language])
    return Document(
        number=number, kind=INVOICE, issue_date=issue_date, period_start=invoice.period_start,
        period_end=invoice.period_end, currency=currency, issuer=issuer, customer=customer,
        lines=lines, vat=vat, total_net=net, total_vat=tax, total_gross=gross, notes=tuple(notes),
    )
