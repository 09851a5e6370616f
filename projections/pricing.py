"""The priced-sessions read model: per session its current price record (the latest
`SessionPrice.Priced` or `Unpriced`), for lists, totals per customer and period, and the
pricer's search for sessions priced with a corrected tariff version."""

from __future__ import annotations

import json
from typing import Any

from ledger.priced import SessionPrice
from ledger.values import parse_time
from projections.view import Cursor, View, topics

NAME = "pricing"
TOPICS = topics(SessionPrice, "Priced", "Unpriced")

COLUMNS = (
    "session_id", "charge_point", "transaction_id", "customer_id", "site", "started_at",
    "ended_at", "status", "reason", "tariff_id", "tariff_version", "tariff_scope", "currency",
    "total_excl_vat", "total_incl_vat", "total_energy", "record_version", "replaces", "cause",
    "priced_by", "priced_at", "outcome", "first_position", "position",
)
_UPDATED = [c for c in COLUMNS if c not in ("session_id", "first_position")]
_UPSERT = (
    f"INSERT INTO rm_priced_sessions ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (session_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED)
)


class PricingView(View):
    tables = ("rm_priced_sessions",)


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    for position, event in notifications:
        outcome = event.outcome
        tariff = outcome.get("tariff") or {}
        total = outcome.get("total_cost") or {}
        cur.execute(_UPSERT, (
            outcome["session_id"], outcome["charge_point"], outcome["transaction_id"],
            outcome.get("customer_id"), outcome.get("site"), _time(outcome.get("started_at")),
            _time(outcome.get("ended_at")), outcome["status"], outcome.get("reason"),
            tariff.get("id"), tariff.get("version"), tariff.get("scope"), outcome.get("currency"),
            total.get("excl_vat"), total.get("incl_vat"), outcome.get("total_energy"),
            event.originator_version, event.replaces, event.cause, event.by, event.at,
            json.dumps(outcome, ensure_ascii=False, sort_keys=True), position, position,
        ))


def _time(value: Any) -> Any:
    return None if value is None else parse_time(str(value))
