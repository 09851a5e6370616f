"""Reading the read models: the queries behind the HTTP API's lists and details.

Every list is keyset-paginated (`after` is the last row's sort key, never an offset) and
returns rows as dicts. A session belongs to the customer whose id tag assignment covers the
session's start; that is decided here, at read time, so reassigning a tag never rewrites
history and the two read models it joins need not be applied in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from projections import monitoring, pricing, sessions
from projections.view import Cursor


@dataclass
class Filter:
    """WHERE clauses with their parameters, built up by the caller."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def _rows(cur: Cursor, columns: Sequence[str], statement: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row)) for row in cur.execute(statement, params).fetchall()]


# -- sessions ---------------------------------------------------------------------------------

_CUSTOMER_JOIN = (
    "LEFT JOIN rm_tag_assignments a ON a.token = s.id_token "
    "AND (a.valid_from IS NULL OR a.valid_from <= s.started_at) "
    "AND (a.valid_until IS NULL OR s.started_at < a.valid_until)"
)
# The Eichrecht summary beside each session (rm_session_eichrecht; NULL until that read model has it).
EICHRECHT_COLUMNS = (
    "energy_billable", "billable_energy", "billable_unit", "billable_energy_wh", "time_billable",
    "signed_records", "key_alerts", "eichrecht_position",
)
SESSION_COLUMNS = (*sessions.COLUMNS, "customer_id", *EICHRECHT_COLUMNS)
_SESSION_SELECT = (
    f"SELECT {', '.join('s.' + c for c in sessions.COLUMNS)}, a.customer_id, "
    "e.energy_billable, e.energy, e.unit, e.energy_wh, e.time_billable, e.records, e.key_alerts, "
    "e.position "
    f"FROM rm_sessions s {_CUSTOMER_JOIN} "
    "LEFT JOIN rm_session_eichrecht e ON e.session_id = s.session_id "
)


def list_sessions(
    cur: Cursor, *, limit: int, before: int | None = None, charge_point: str | None = None,
    customer_id: str | None = None, started_from: datetime | None = None,
    started_to: datetime | None = None, state: str | None = None, billable: bool | None = None,
) -> list[dict[str, Any]]:
    """Newest first (by the position of the session's first event)."""
    where = Filter()
    if before is not None:
        where.add("s.opened_position < %s", before)
    if charge_point is not None:
        where.add("s.charge_point = %s", charge_point)
    if customer_id is not None:
        where.add("a.customer_id = %s", customer_id)
    if started_from is not None:
        where.add("s.started_at >= %s", started_from)
    if started_to is not None:
        where.add("s.started_at < %s", started_to)
    if state is not None:
        where.add("s.state = %s", state)
    if billable is not None:
        where.add("e.energy_billable = %s", billable)
    return _rows(
        cur, SESSION_COLUMNS,
        f"{_SESSION_SELECT}{where.sql()} ORDER BY s.opened_position DESC LIMIT %s",
        [*where.params, limit],
    )


def session(cur: Cursor, session_id: str) -> dict[str, Any] | None:
    found = _rows(cur, SESSION_COLUMNS, f"{_SESSION_SELECT}WHERE s.session_id = %s", [session_id])
    return found[0] if found else None


EVIDENCE_COLUMNS = ("event_version", "kind", "charge_point", "frame_seq", "frame_hash", "after_end")


def session_evidence(cur: Cursor, session_id: str) -> list[dict[str, Any]]:
    return _rows(
        cur, EVIDENCE_COLUMNS,
        f"SELECT {', '.join(EVIDENCE_COLUMNS)} FROM rm_session_evidence WHERE session_id = %s "  # noqa: S608
        "ORDER BY event_version",
        [session_id],
    )


def count_sessions(cur: Cursor) -> dict[str, int]:
    rows = cur.execute("SELECT state, COUNT(*) FROM rm_sessions GROUP BY state").fetchall()
    return {state: int(count) for state, count in rows}


# -- charge points ----------------------------------------------------------------------------

CHARGE_POINT_COLUMNS = ("name", "label", "location", "site", "disabled", "has_password", "registered_at")
STATUS_COLUMNS = tuple(c for c in monitoring.STATUS_COLUMNS if c not in ("log_id", "charge_point"))
_CHARGE_POINT_SELECT = (
    f"SELECT {', '.join('c.' + c for c in CHARGE_POINT_COLUMNS)}, "
    f"{', '.join('m.' + c for c in STATUS_COLUMNS)} FROM rm_charge_points c "
    "LEFT JOIN rm_charge_point_status m ON m.charge_point = c.name "
)


def list_charge_points(
    cur: Cursor, *, limit: int, after: str | None = None, connected: bool | None = None
) -> list[dict[str, Any]]:
    where = Filter()
    if after is not None:
        where.add("c.name > %s", after)
    if connected is not None:
        where.add("COALESCE(m.connected, %s) = %s", False, connected)
    return _rows(
        cur, (*CHARGE_POINT_COLUMNS, *STATUS_COLUMNS),
        f"{_CHARGE_POINT_SELECT}{where.sql()} ORDER BY c.name LIMIT %s", [*where.params, limit],
    )


def charge_point(cur: Cursor, name: str) -> dict[str, Any] | None:
    found = _rows(
        cur, (*CHARGE_POINT_COLUMNS, *STATUS_COLUMNS), f"{_CHARGE_POINT_SELECT}WHERE c.name = %s",
        [name],
    )
    return found[0] if found else None


CONNECTOR_COLUMNS = tuple(c for c in monitoring.CONNECTOR_COLUMNS if c != "charge_point")


def connectors(cur: Cursor, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if names:
        rows = _rows(
            cur, ("charge_point", *CONNECTOR_COLUMNS),
            f"SELECT charge_point, {', '.join(CONNECTOR_COLUMNS)} FROM rm_connector_status "  # noqa: S608
            f"WHERE charge_point IN ({', '.join(['%s'] * len(names))}) "
            "ORDER BY charge_point, evse_id, connector_id",
            list(names),
        )
        for row in rows:
            found[row.pop("charge_point")].append(row)
    return found


# -- customers, id tags, API keys ---------------------------------------------------------------

CUSTOMER_COLUMNS = (
    "customer_id", "name", "kind", "email", "billing_address", "vat_id", "language",
    "customer_group", "buyer_reference", "created_at", "position",
)


def list_customers(
    cur: Cursor, *, limit: int, after: int | None = None, customer_id: str | None = None
) -> list[dict[str, Any]]:
    where = Filter()
    if after is not None:
        where.add("position > %s", after)
    if customer_id is not None:
        where.add("customer_id = %s", customer_id)
    return _rows(
        cur, CUSTOMER_COLUMNS,
        f"SELECT {', '.join(CUSTOMER_COLUMNS)} FROM rm_customers {where.sql()} "  # noqa: S608
        "ORDER BY position LIMIT %s",
        [*where.params, limit],
    )


TAG_COLUMNS = ("tag_id", "token", "kind", "label", "blocked", "expires_at", "created_at", "position")
ASSIGNMENT_COLUMNS = ("tag_id", "customer_id", "valid_from", "valid_until")


def list_id_tags(
    cur: Cursor, *, limit: int, after: int | None = None, customer_id: str | None = None,
    tag_id: str | None = None,
) -> list[dict[str, Any]]:
    """Each tag with its `assignments`; with `customer_id`, only tags that customer ever had."""
    where = Filter()
    if after is not None:
        where.add("t.position > %s", after)
    if customer_id is not None:
        where.add(
            "EXISTS (SELECT 1 FROM rm_tag_assignments x WHERE x.tag_id = t.tag_id "
            "AND x.customer_id = %s)", customer_id,
        )
    if tag_id is not None:
        where.add("t.tag_id = %s", tag_id)
    tags = _rows(
        cur, TAG_COLUMNS,
        f"SELECT {', '.join('t.' + c for c in TAG_COLUMNS)} FROM rm_id_tags t {where.sql()} "  # noqa: S608
        "ORDER BY t.position LIMIT %s",
        [*where.params, limit],
    )
    if tags:
        ids = [t["tag_id"] for t in tags]
        periods = _rows(
            cur, ASSIGNMENT_COLUMNS,
            f"SELECT {', '.join(ASSIGNMENT_COLUMNS)} FROM rm_tag_assignments "  # noqa: S608
            f"WHERE tag_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY tag_id, event_version",
            ids,
        )
        by_tag: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for period in periods:
            by_tag[period.pop("tag_id")].append(period)
        for tag in tags:
            tag["assignments"] = by_tag[tag["tag_id"]]
    return tags


KEY_COLUMNS = ("key_id", "name", "role", "customer_id", "expires_at", "revoked", "created_at", "position")


def list_api_keys(cur: Cursor, *, limit: int, after: int | None = None) -> list[dict[str, Any]]:
    where = Filter()
    if after is not None:
        where.add("position > %s", after)
    return _rows(
        cur, KEY_COLUMNS,
        f"SELECT {', '.join(KEY_COLUMNS)} FROM rm_api_keys {where.sql()} "  # noqa: S608
        "ORDER BY position LIMIT %s",
        [*where.params, limit],
    )


# -- quarantine -------------------------------------------------------------------------------

QUARANTINE_COLUMNS = (
    "entry_id", "charge_point", "action", "protocol", "message_id", "transaction_id", "reason",
    "frame_seq", "frame_hash", "quarantined_at", "resolved", "resolution", "note", "resolved_by",
    "resolved_at", "position",
)


def list_quarantine(
    cur: Cursor, *, limit: int, before: int | None = None, charge_point: str | None = None,
    resolved: bool | None = None, entry_id: str | None = None,
    quarantined_from: datetime | None = None, quarantined_to: datetime | None = None,
) -> list[dict[str, Any]]:
    where = Filter()
    if quarantined_from is not None:
        where.add("quarantined_at >= %s", quarantined_from)
    if quarantined_to is not None:
        where.add("quarantined_at < %s", quarantined_to)
    if before is not None:
        where.add("position < %s", before)
    if charge_point is not None:
        where.add("charge_point = %s", charge_point)
    if resolved is not None:
        where.add("resolved = %s", resolved)
    if entry_id is not None:
        where.add("entry_id = %s", entry_id)
    return _rows(
        cur, QUARANTINE_COLUMNS,
        f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM rm_quarantine {where.sql()} "  # noqa: S608
        "ORDER BY position DESC LIMIT %s",
        [*where.params, limit],
    )


# -- tariffs ----------------------------------------------------------------------------------

TARIFF_COLUMNS = ("code", "currency", "versions", "created_at", "updated_at")


def list_tariffs(cur: Cursor, *, limit: int, after: str | None = None) -> list[dict[str, Any]]:
    """By code."""
    where = Filter()
    if after is not None:
        where.add("code > %s", after)
    return _rows(
        cur, TARIFF_COLUMNS,
        f"SELECT {', '.join(TARIFF_COLUMNS)} FROM rm_tariffs {where.sql()} ORDER BY code LIMIT %s",
        [*where.params, limit],
    )


def tariff(cur: Cursor, code: str) -> dict[str, Any] | None:
    found = _rows(cur, TARIFF_COLUMNS, f"SELECT {', '.join(TARIFF_COLUMNS)} FROM rm_tariffs WHERE code = %s", [code])
    return found[0] if found else None


TARIFF_VERSION_COLUMNS = (
    "version", "valid_from", "valid_until", "corrects", "superseded_by", "published_at",
    "published_by", "document",
)


def tariff_versions(cur: Cursor, code: str) -> list[dict[str, Any]]:
    return _rows(
        cur, TARIFF_VERSION_COLUMNS,
        f"SELECT {', '.join(TARIFF_VERSION_COLUMNS)} FROM rm_tariff_versions WHERE code = %s "
        "ORDER BY version",
        [code],
    )


# -- sites and tariff assignments ---------------------------------------------------------------

SITE_COLUMNS = ("code", "name", "time_zone", "calibrated", "created_at")


def list_sites(cur: Cursor, *, limit: int, after: str | None = None) -> list[dict[str, Any]]:
    where = Filter()
    if after is not None:
        where.add("code > %s", after)
    return _rows(
        cur, SITE_COLUMNS,
        f"SELECT {', '.join(SITE_COLUMNS)} FROM rm_sites {where.sql()} ORDER BY code LIMIT %s",
        [*where.params, limit],
    )


def site(cur: Cursor, code: str) -> dict[str, Any] | None:
    found = _rows(cur, SITE_COLUMNS, f"SELECT {', '.join(SITE_COLUMNS)} FROM rm_sites WHERE code = %s", [code])
    return found[0] if found else None


TARIFF_ASSIGNMENT_COLUMNS = ("scope", "scope_key", "period", "tariff", "valid_from", "valid_until", "position")


def list_tariff_assignments(
    cur: Cursor, *, limit: int, after: int | None = None, scope: str | None = None,
    key: str | None = None, tariff: str | None = None,
) -> list[dict[str, Any]]:
    """In the order assigned (by the position of the assignment's last change)."""
    where = Filter()
    if after is not None:
        where.add("position > %s", after)
    if scope is not None:
        where.add("scope = %s", scope)
    if key is not None:
        where.add("scope_key = %s", key)
    if tariff is not None:
        where.add("tariff = %s", tariff)
    return _rows(
        cur, TARIFF_ASSIGNMENT_COLUMNS,
        f"SELECT {', '.join(TARIFF_ASSIGNMENT_COLUMNS)} FROM rm_tariff_assignments {where.sql()} "
        "ORDER BY position LIMIT %s",
        [*where.params, limit],
    )


# -- prices -----------------------------------------------------------------------------------

PRICED_COLUMNS = tuple(c for c in pricing.COLUMNS if c not in ("outcome", "position"))


def _priced_filter(
    customer_id: str | None, ended_from: datetime | None, ended_to: datetime | None,
    charge_point: str | None = None, status: str | None = None,
) -> Filter:
    where = Filter()
    if customer_id is not None:
        where.add("customer_id = %s", customer_id)
    if ended_from is not None:
        where.add("ended_at >= %s", ended_from)
    if ended_to is not None:
        where.add("ended_at < %s", ended_to)
    if charge_point is not None:
        where.add("charge_point = %s", charge_point)
    if status is not None:
        where.add("status = %s", status)
    return where


def list_priced_sessions(
    cur: Cursor, *, limit: int, before: int | None = None, customer_id: str | None = None,
    ended_from: datetime | None = None, ended_to: datetime | None = None,
    charge_point: str | None = None, status: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first (by when the session was first priced)."""
    where = _priced_filter(customer_id, ended_from, ended_to, charge_point, status)
    if before is not None:
        where.add("first_position < %s", before)
    return _rows(
        cur, PRICED_COLUMNS,
        f"SELECT {', '.join(PRICED_COLUMNS)} FROM rm_priced_sessions {where.sql()} "  # noqa: S608
        "ORDER BY first_position DESC LIMIT %s",
        [*where.params, limit],
    )


def price_totals(
    cur: Cursor, *, customer_id: str | None = None, ended_from: datetime | None = None,
    ended_to: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(totals per customer and currency of the priced sessions, counts of the unpriced ones)
    for sessions ended in the period. The amounts are summed here as Decimal: SQLite would sum
    decimal text as floating point."""
    where = _priced_filter(customer_id, ended_from, ended_to)
    rows = cur.execute(
        "SELECT customer_id, status, currency, total_energy, total_excl_vat, total_incl_vat "  # noqa: S608
        f"FROM rm_priced_sessions {where.sql()}",
        where.params,
    ).fetchall()
    totals: dict[tuple[str | None, str], dict[str, Any]] = {}
    unpriced: dict[str | None, int] = {}
    for customer, status, currency, energy, excl, incl in rows:
        if status != "priced":
            unpriced[customer] = unpriced.get(customer, 0) + 1
            continue
        total = totals.setdefault((customer, currency), {
            "customer_id": customer, "currency": currency, "sessions": 0,
            "total_energy": Decimal(0), "total_excl_vat": Decimal(0), "total_incl_vat": Decimal(0),
        })
        total["sessions"] += 1
        total["total_energy"] += Decimal(energy)
        total["total_excl_vat"] += Decimal(excl)
        total["total_incl_vat"] += Decimal(incl)
    ordered = sorted(totals.values(), key=lambda t: (t["customer_id"] or "", t["currency"]))
    for total in ordered:
        for key in ("total_energy", "total_excl_vat", "total_incl_vat"):
            total[key] = format(total[key], "f")
    counts = [{"customer_id": c, "sessions": n} for c, n in sorted(unpriced.items(), key=lambda i: i[0] or "")]
    return ordered, counts
