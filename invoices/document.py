"""The invoice as printed: a frozen snapshot of everything an issued invoice shows.

Issuing freezes one `Invoice`; the PDF (`invoices.pdf`), the e-invoice XML
(`invoices.einvoice`) and the accounting exports (`invoices.exports`) are all rendered from it
and from nothing else, so an issued invoice renders the same today and in eight years.

Money: `Line.net` is rounded half-up to the cent (the one place a line is rounded); VAT is
computed once per rate on the summed net of that rate (EN 16931 BR-CO-17, `vat_breakdown`).
Quantities keep the meter's own decimals. All amounts are `Decimal`; the JSON form (`to_json`,
`from_json`) writes them as decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
INVOICE = "invoice"
CANCELLATION = "cancellation"  # Stornorechnung: negates the invoice it references
SMALL_AMOUNT_LIMIT = Decimal("250.00")  # §33 UStDV Kleinbetragsrechnung, gross


def cents(value: Decimal) -> Decimal:
    """Half-up to the cent: the rounding of invoice amounts."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Address:
    street: str
    postcode: str
    city: str
    country: str = "DE"  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    vat_id: str | None = None  # USt-IdNr., e.g. DE123456789
    tax_number: str | None = None  # Steuernummer (issuer: one of the two is required)
    email: str | None = None


@dataclass(frozen=True)
class Issuer(Party):
    iban: str | None = None
    bic: str | None = None
    bank: str | None = None
    small_business: bool = False  # §19 UStG: no VAT shown, the §19 note printed
    time_zone: str = "Europe/Berlin"
    phone: str | None = None  # the seller contact's telephone (XRechnung BR-DE-6)


@dataclass(frozen=True)
class Customer(Party):
    customer_id: str = ""
    business: bool = False  # a business customer gets XRechnung and the buyer's VAT id
    language: str = "de"  # "de" or "en"
    buyer_reference: str | None = None  # Leitweg-ID or the buyer's reference (XRechnung BT-10)


@dataclass(frozen=True)
class Component:
    """One priced component of a session: ENERGY (kWh), TIME / PARKING_TIME (hours as billed),
    FLAT (1). `amount` is exact (not rounded); the line's net is rounded once."""

    type: str
    quantity: Decimal
    unit: str  # "kWh", "h", "session"
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Evidence:
    """What the customer needs to check a line: the Eichrecht verdict in plain words, the signed
    begin and end (as the meter signed them), the meter's public key (hex), and where the
    Transparenzsoftware file is."""

    verdict: str
    calibrated: bool
    begin_signed: str | None
    end_signed: str | None
    public_key: str | None
    url: str  # the session's transparency.xml in the API
    transparency_xml: bytes | None = None  # attached inside the PDF


@dataclass(frozen=True)
class Line:
    session_id: str
    started_at: datetime  # aware, UTC; printed in the issuer's time zone
    ended_at: datetime
    charge_point: str
    evse_id: int | None
    meter: str | None  # the meter's serial
    energy_kwh: Decimal  # with the meter's own decimals
    components: tuple[Component, ...]
    net: Decimal  # cents(sum of the components)
    vat_rate: Decimal | None  # percent, e.g. Decimal("19"); None: no VAT (§19, or the tariff has none)
    evidence: Evidence


@dataclass(frozen=True)
class VatRate:
    rate: Decimal | None  # None: not subject to VAT (§19 UStG)
    net: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Invoice:
    number: str
    kind: str  # INVOICE or CANCELLATION
    issue_date: date
    period_start: date  # the supply period, in the issuer's time zone, inclusive
    period_end: date  # inclusive
    currency: str
    issuer: Issuer
    customer: Customer
    lines: tuple[Line, ...]
    vat: tuple[VatRate, ...]
    total_net: Decimal
    total_vat: Decimal
    total_gross: Decimal
    cancels: str | None = None  # the number of the invoice a cancellation negates
    notes: tuple[str, ...] = field(default=())  # printed under the totals

    @property
    def small_amount(self) -> bool:
        """Kleinbetragsrechnung (§33 UStDV): gross up to 250 EUR."""
        return self.currency == "EUR" and abs(self.total_gross) <= SMALL_AMOUNT_LIMIT

    @property
    def language(self) -> str:
        return self.customer.language

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _json(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invoice:
        loaded: Invoice = _load(cls, data)
        return loaded


def vat_breakdown(lines: tuple[Line, ...], *, small_business: bool) -> tuple[tuple[VatRate, ...], Decimal, Decimal, Decimal]:
    """(VAT per rate, total net, total VAT, total gross): each rate's VAT computed once on the
    summed net of its lines (BR-CO-17), rounded half-up to the cent."""
    by_rate: dict[Decimal | None, Decimal] = {}
    for line in lines:
        rate = None if small_business else line.vat_rate
        by_rate[rate] = by_rate.get(rate, Decimal(0)) + line.net
    rates = tuple(
        VatRate(rate, net, Decimal("0.00") if rate is None else cents(net * rate / 100))
        for rate, net in sorted(by_rate.items(), key=lambda item: (item[0] is None, item[0] or 0))
    )
    total_net = sum((r.net for r in rates), Decimal("0.00"))
    total_vat = sum((r.tax for r in rates), Decimal("0.00"))
    return rates, total_net, total_vat, total_net + total_vat


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if is_dataclass(value):  # field by field, as asdict (without its deep copies)
        names = _FIELDS.get(type(value)) or tuple(f.name for f in fields(value))
        return {name: _json(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value



_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls))
    for cls in (Address, Issuer, Customer, Evidence, Component, Line, VatRate, Invoice)
}


def _load(cls: Any, data: dict[str, Any]) -> Any:
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _value(str(f.type), data[f.name])
    return cls(**kwargs)


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    for name, target in (("Address", Address), ("Issuer", Issuer), ("Customer", Customer),
                         ("Evidence", Evidence)):
        if kind.startswith(name):
            return _load(target, value)
    if kind.startswith("tuple[Line"):
        return tuple(_load(Line, v) for v in value)
    if kind.startswith("tuple[Component"):
        return tuple(_load(Component, v) for v in value)
    if kind.startswith("tuple[VatRate"):
        return tuple(_load(VatRate, v) for v in value)
    if kind.startswith("tuple[str"):
        return tuple(value)
    if kind.startswith("Decimal"):
        return Decimal(value)
    if kind.startswith("datetime"):
        return datetime.fromisoformat(value)
    if kind.startswith("date"):
        return date.fromisoformat(value)
    if kind.startswith("bytes"):
        return value.encode("utf-8")
    return value
