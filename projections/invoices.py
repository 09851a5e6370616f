"""The invoices read model (registry): issuers, and every invoice (draft, discarded, issued,
cancelled, and the cancellations) with its totals as printed and its sessions."""

from __future__ import annotations

import json
from typing import Any

from ledger.invoicing import Invoice, Issuer
from projections.view import Cursor, View, topics

NAME = "invoices"
TOPICS = (
    *topics(Issuer, "Registered", "Updated"),
    *topics(Invoice, "Drafted", "Discarded", "Issued", "Cancelled"),
)
ISSUER_FIELDS = (
    "name", "address", "vat_id", "tax_number", "email", "iban", "bic", "bank", "small_business",
    "time_zone", "ranges", "phone",
)


class InvoicesView(View):
    tables = ("rm_issuers", "rm_invoices", "rm_invoice_sessions")


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    for position, event in notifications:
        name = type(event).__qualname__
        key = str(event.originator_id)
        if name == "Issuer.Registered":
            # The phone came later and is set by Updated; Registered holds every other field.
            document = {f: getattr(event, f) for f in ISSUER_FIELDS if f != "phone"} | {"phone": ""}
            cur.execute(
                "INSERT INTO rm_issuers (issuer_id, code, name, small_business, time_zone, document, "
                "position) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (key, event.code, event.name, event.small_business, event.time_zone,
                 json.dumps(document, sort_keys=True, ensure_ascii=False), position),
            )
        elif name == "Issuer.Updated":
            row = cur.execute("SELECT document FROM rm_issuers WHERE issuer_id = %s", (key,)).fetchone()
            document = json.loads(row[0]) | event.changes
            cur.execute(
                "UPDATE rm_issuers SET name = %s, small_business = %s, time_zone = %s, document = %s, "
                "position = %s WHERE issuer_id = %s",
                (document["name"], document["small_business"], document["time_zone"],
                 json.dumps(document, sort_keys=True, ensure_ascii=False), position, key),
            )
        elif name == "Invoice.Drafted":
            cur.execute(
                "INSERT INTO rm_invoices (invoice_id, issuer, customer_id, kind, state, period_start, "
                "period_end, cancels, sessions, drafted_position, position) "
                "VALUES (%s, %s, %s, %s, 'draft', %s, %s, %s, %s, %s, %s)",
                (key, event.issuer, event.customer_id, event.kind, event.period_start.isoformat(),
                 event.period_end.isoformat(), event.cancels, len(event.sessions), position, position),
            )
            cur.executemany(
                "INSERT INTO rm_invoice_sessions (invoice_id, session_id) VALUES (%s, %s)",
                [(key, s) for s in event.sessions],
            )
        elif name == "Invoice.Discarded":
            cur.execute("UPDATE rm_invoices SET state = 'discarded', position = %s WHERE invoice_id = %s",
                        (position, key))
        elif name == "Invoice.Issued":
            d = event.document
            cur.execute(
                "UPDATE rm_invoices SET state = 'issued', number = %s, issue_date = %s, currency = %s, "
                "total_net = %s, total_vat = %s, total_gross = %s, position = %s WHERE invoice_id = %s",
                (event.number, event.issue_date.isoformat(), d["currency"], d["total_net"],
                 d["total_vat"], d["total_gross"], position, key),
            )
        elif name == "Invoice.Cancelled":
            cur.execute(
                "UPDATE rm_invoices SET state = 'cancelled', cancelled_by = %s, position = %s "
                "WHERE invoice_id = %s",
                (event.cancellation_number, position, key),
            )

