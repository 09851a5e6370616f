"""Invoices to render in tests: built from `invoices.document`, like issuing builds them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from invoices.document import (
    INVOICE,
    Address,
    Component,
    Customer,
    Evidence,
    Invoice,
    Issuer,
    Line,
    cents,
    vat_breakdown,
)
from invoices.issuing import negated

ISSUER = Issuer(
    name="Hausverwaltung Sonnenhof GmbH",
    address=Address("Sonnenweg 1", "10115", "Berlin"),
    vat_id="DE123456789",
    tax_number="27/123/45678",
    email="abrechnung@sonnenhof.example",
    iban="DE02120300000000202051",
    bic="BYLADEM1001",
    bank="Deutsche Kreditbank",
    phone="+49 30 1234567",
)
SMALL_BUSINESS = replace(ISSUER, name="Erika Mustermann", vat_id=None, small_business=True)
TENANT = Customer(
    name="Max Mieter", address=Address("Sonnenweg 1, Wohnung 4", "10115", "Berlin"),
    customer_id="0b7c4f4e-4a1e-4c55-9d0e-5f6b0f9f1a01", email="max@example.org",
)
FLEET = Customer(
    name="Flotte Elektro AG", address=Address("Industriestraße 5", "80331", "München"),
    vat_id="DE987654321", customer_id="6f1d2c3b-7a8e-4f90-b1c2-d3e4f5a6b7c8", business=True,
    buyer_reference="04011000-12345-34", language="en",
)
OCMF_BEGIN = 'OCMF|{"FV":"1.0","RD":[{"TX":"B","RV":1.000}]}|{"SD":"3045"}'
OCMF_END = 'OCMF|{"FV":"1.0","RD":[{"TX":"E","RV":12.525}]}|{"SD":"3046"}'
KEY = "3059301306072a8648ce3d020106082a8648ce3d03010703420004" + "ab" * 64


def line(index: int, *, kwh: str = "11.525", price: str = "0.39", vat: str | None = "19",
         parking_hours: str | None = None) -> Line:
    start = datetime(2026, 11, 2, 17, tzinfo=UTC) + timedelta(days=index)
    energy = Decimal(kwh)
    components = [Component("ENERGY", energy, "kWh", Decimal(price), energy * Decimal(price))]
    if parking_hours is not None:
        hours = Decimal(parking_hours)
        components.append(Component("PARKING_TIME", hours, "h", Decimal("6.00"), hours * Decimal("6.00")))
    net = cents(sum((c.amount for c in components), Decimal(0)))
    session_id = f"00000000-0000-4000-8000-{index:012d}"
    return Line(
        session_id=session_id, started_at=start, ended_at=start + timedelta(hours=2),
        charge_point="WB1", evse_id=1, meter="BQ27400330016", energy_kwh=energy,
        components=tuple(components), net=net, vat_rate=None if vat is None else Decimal(vat),
        evidence=Evidence(
            verdict="Signatur gültig, Schlüssel registriert; Energie abrechenbar",
            calibrated=True, begin_signed=OCMF_BEGIN, end_signed=OCMF_END, public_key=KEY,
            url=f"https://ladebuch.example/v1/sessions/{session_id}/transparency.xml",
            transparency_xml=b'<?xml version="1.0" encoding="UTF-8"?><values></values>',
        ),
    )


def sample_invoice(
    *, lines: int = 3, issuer: Issuer = ISSUER, customer: Customer = TENANT,
    number: str = "LB-2026-000001", parking: bool = False,
) -> Invoice:
    built = tuple(line(i, parking_hours="0.5" if parking and i == 0 else None) for i in range(lines))
    vat, net, tax, gross = vat_breakdown(built, small_business=issuer.small_business)
    notes = ("Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",) if issuer.small_business else ()
    return Invoice(
        number=number, kind=INVOICE, issue_date=date(2026, 12, 1), period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30), currency="EUR", issuer=issuer, customer=customer,
        lines=built, vat=vat, total_net=net, total_vat=tax, total_gross=gross, notes=notes,
    )


def cancellation_of(invoice: Invoice, number: str = "LB-2026-000002") -> Invoice:
    """The Stornorechnung: every line and total negated, referencing the original."""
    return negated(invoice, number, date(2026, 12, 5), "Rechnung fehlerhaft")
