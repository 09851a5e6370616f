"""Issuers, invoice number ranges, invoices and which invoice each session is on, as events.

These live in the registry (what the operator and the accountant decide), beside customers:

- `Issuer`: the landlord or operator who invoices, with what §14 UStG needs printed (name,
  address, tax number or VAT id), bank details, whether they are a small business (§19 UStG),
  their time zone, and their number ranges (a prefix/format such as `LB-{year}-{seq:06d}`).
- `NumberRange`: one per issuer, range and (for formats with `{year}`) year. Each number is an
  `Assigned` event whose sequence is the aggregate's own version count, so numbers are gap-free
  by construction and unique: two processes issuing at once both write the range's next version,
  the store's (originator_id, version) key lets one win, and the other retries with the next.
- `Invoice`: drafted for a customer and a period with the sessions it bills, discarded, or
  issued once with a frozen document (`invoices.document.Invoice.to_json`) that is never edited;
  a cancellation (Stornorechnung) is an invoice of its own that references the original, and the
  original records that it was cancelled.
- `SessionClaim`: per charging session, the issued invoice it is on. Issuing claims every
  session of the invoice in the same transaction as the number, so a session is on at most one
  valid invoice; a cancellation releases them, so they can be invoiced again.
"""

from __future__ import annotations

import re
import string
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import Conflict, InvalidValue
from ledger.ids import _id
from ledger.tariffs import check_time_zone

DRAFT, DISCARDED, ISSUED, CANCELLED = "draft", "discarded", "issued", "cancelled"
INVOICE, CANCELLATION = "invoice", "cancellation"
DEFAULT_RANGE = "default"
DEFAULT_FORMAT = "{year}-{seq:06d}"
_CODE = re.compile(r"^[A-Za-z0-9._\-]{1,36}$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
ISSUER_ADDRESS = ("street", "postal_code", "city", "country")


def check_number_format(fmt: str) -> None:
    """A number format names `{seq}` (with an optional format spec such as `:06d`) and may name
    `{year}`; nothing else. The numbers it makes must fit DATEV's Belegfeld 1 (36 characters)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None]
    except ValueError as exc:
        raise InvalidValue(f"number format: {exc}") from None
    if "seq" not in names or set(names) - {"seq", "year"}:
        raise InvalidValue("number format: names {seq} and optionally {year}, e.g. LB-{year}-{seq:06d}")
    try:
        sample = fmt.format(seq=999_999, year=2026)
    except (ValueError, KeyError) as exc:
        raise InvalidValue(f"number format: {exc}") from None
    if len(sample) > 36 or not sample.strip():
        raise InvalidValue("number format: numbers must be 1 to 36 characters")


class Issuer(Aggregate):
    phone = ""  # the contact telephone (XRechnung BR-DE-6); set by update, absent in old events

    @staticmethod
    def create_id(code: str) -> UUID:
        return _id("issuer", code)

    @classmethod
    def register(cls, code: str, **given: Any) -> Issuer:
        if not _CODE.match(code):
            raise InvalidValue("code: 1 to 36 letters, digits, '.', '_' or '-'")
        fields: dict[str, Any] = {
            "address": {}, "vat_id": "", "tax_number": "", "email": "", "iban": "", "bic": "",
            "bank": "", "small_business": False, "time_zone": "Europe/Berlin",
            "ranges": {DEFAULT_RANGE: DEFAULT_FORMAT},
        } | given
        _check_issuer(fields)
        later = {"phone": fields.pop("phone")} if "phone" in fields else {}
        issuer = cls(code=code, **fields)
        issuer.update(**later)  # a field added after the first release: an event of its own
        return issuer

    @event("Registered")
    def __init__(
        self, code: str, name: str, address: dict[str, str], vat_id: str, tax_number: str,
        email: str, iban: str, bic: str, bank: str, small_business: bool, time_zone: str,
        ranges: dict[str, str],
    ) -> None:
        self.code = code
        self.name = name
        self.address = address
        self.vat_id = vat_id
        self.tax_number = tax_number
        self.email = email
        self.iban = iban
        self.bic = bic
        self.bank = bank
        self.small_business = small_business
        self.time_zone = time_zone
        self.ranges = ranges

    def update(self, **fields: Any) -> None:
        changes = {k: v for k, v in fields.items() if v is not None and getattr(self, k) != v}
        _check_issuer(changes)
        if changes:
            self._updated(changes=changes)

    @event("Updated")
    def _updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def missing_for_invoices(self) -> list[str]:
        """What §14 UStG needs that this issuer lacks (issuing is refused until it is there)."""
        missing = [f"address.{k}" for k in ISSUER_ADDRESS if not self.address.get(k)]
        if not self.vat_id and not self.tax_number:
            missing.append("vat_id or tax_number")
        return missing


def _check_issuer(fields: dict[str, Any]) -> None:
    if "name" in fields and (not isinstance(fields["name"], str) or not fields["name"].strip() or len(fields["name"]) > 200):
        raise InvalidValue("name: 1 to 200 characters")
    address = fields.get("address")
    if address is not None:
        unknown = set(address) - set(ISSUER_ADDRESS)
        if unknown:
            raise InvalidValue(f"address has no field {sorted(unknown)[0]!r}")
    if "time_zone" in fields:
        check_time_zone(fields["time_zone"])  # invoice periods are months in it
    if fields.get("phone") and not re.match(r"^\+?[0-9][0-9 ()/-]{3,29}$", fields["phone"]):
        raise InvalidValue("phone: digits, spaces and + ( ) / -, e.g. +49 30 1234567")
    if fields.get("iban") and not _IBAN.match(fields["iban"].replace(" ", "")):
        raise InvalidValue("iban is not an IBAN")
    if fields.get("vat_id") and not re.match(r"^[A-Z]{2}[0-9A-Za-z+*.]{2,12}$", fields["vat_id"]):
        raise InvalidValue("vat_id is not an EU VAT identification number (e.g. DE123456789)")
    ranges = fields.get("ranges")
    if ranges is not None:
        if not ranges:
            raise InvalidValue("ranges: at least one number range")
        for name, fmt in ranges.items():
            if not _CODE.match(name):
                raise InvalidValue(f"ranges: {name!r} is not a range name")
            check_number_format(fmt)


class NumberRange(Aggregate):
    """The numbers of one issuer's range (for one year, when the format has `{year}`)."""

    @staticmethod
    def period_key(fmt: str, issue_date: date) -> str:
        return str(issue_date.year) if "{year" in fmt else "all"

    @staticmethod
    def create_id(issuer: str, range_name: str, key: str) -> UUID:
        return _id("number-range", issuer, range_name, key)

    @event("Opened")
    def __init__(self, issuer: str, range_name: str, key: str) -> None:
        self.issuer = issuer
        self.range_name = range_name
        self.key = key
        self.assigned = 0

    def assign(self, fmt: str, issue_date: date, invoice_id: UUID) -> str:
        seq = self.assigned + 1
        number = fmt.format(seq=seq, year=issue_date.year)
        self._assigned(seq=seq, number=number, invoice_id=str(invoice_id))
        return number

    @event("Assigned")
    def _assigned(self, seq: int, number: str, invoice_id: str) -> None:
        self.assigned = seq


class Invoice(Aggregate):
    @classmethod
    def draft(
        cls, *, issuer: str, customer_id: str, period_start: date, period_end: date,
        sessions: list[str], run: str | None, kind: str = INVOICE, cancels: str | None = None,
    ) -> Invoice:
        return cls(
            issuer=issuer, customer_id=customer_id, period_start=period_start,
            period_end=period_end, sessions=sessions, run=run, kind=kind, cancels=cancels,
        )

    @event("Drafted")
    def __init__(
        self, issuer: str, customer_id: str, period_start: date, period_end: date,
        sessions: list[str], run: str | None, kind: str, cancels: str | None,
    ) -> None:
        self.issuer = issuer
        self.customer_id = customer_id
        self.period_start = period_start
        self.period_end = period_end
        self.sessions = sessions
        self.run = run
        self.kind = kind
        self.cancels = cancels  # the id of the invoice a cancellation negates
        self.state = DRAFT
        self.number: str | None = None
        self.document: dict[str, Any] | None = None
        self.cancelled_by: str | None = None

    def discard(self, reason: str) -> None:
        if self.state != DRAFT:
            raise Conflict(f"only a draft can be discarded; this invoice is {self.state}")
        self._discarded(reason=reason)

    @event("Discarded")
    def _discarded(self, reason: str) -> None:
        self.state = DISCARDED

    def issue(self, *, number: str, issue_date: date, document: dict[str, Any], at: datetime, by: str) -> None:
        if self.state != DRAFT:
            raise Conflict(f"this invoice is {self.state}" + (f" as {self.number}" if self.number else ""))
        self._issued(number=number, issue_date=issue_date, document=document, at=at, by=by)

    @event("Issued")
    def _issued(self, number: str, issue_date: date, document: dict[str, Any], at: datetime, by: str) -> None:
        self.state = ISSUED
        self.number = number
        self.document = document

    def cancel(self, *, cancellation_id: UUID, cancellation_number: str) -> None:
        if self.kind != INVOICE:
            raise Conflict("a cancellation cannot be cancelled; issue a new invoice instead")
        if self.state != ISSUED:
            raise Conflict(f"only an issued invoice can be cancelled; this one is {self.state}")
        self._cancelled(cancellation_id=str(cancellation_id), cancellation_number=cancellation_number)

    @event("Cancelled")
    def _cancelled(self, cancellation_id: str, cancellation_number: str) -> None:
        self.state = CANCELLED
        self.cancelled_by = cancellation_number


class SessionClaim(Aggregate):
    """The issued invoice a charging session is on (at most one valid invoice)."""

    @staticmethod
    def create_id(session_id: str) -> UUID:
        return _id("session-claim", session_id)

    @event("Opened")
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.invoice: str | None = None
        self.number: str | None = None

    def claim(self, invoice_id: UUID, number: str) -> None:
        if self.invoice is not None:
            raise Conflict(f"session {self.session_id} is already on invoice {self.number}")
        self._claimed(invoice_id=str(invoice_id), number=number)

    @event("Claimed")
    def _claimed(self, invoice_id: str, number: str) -> None:
        self.invoice = invoice_id
        self.number = number

    def release(self, cancellation_number: str) -> None:
        if self.invoice is not None:
            self._released(cancellation_number=cancellation_number)

    @event("Released")
    def _released(self, cancellation_number: str) -> None:
        self.invoice = None
        self.number = None
