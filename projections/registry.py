"""The registry read model: charge points, customers, id tags with their assignment periods,
and API keys (never their hashes), from the `Registry` application's events.

Registry events are few (an operator's changes), so each is applied with its own statements.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.registry import ApiKey, ChargePoint, Customer, IdTag
from ledger.tariffs import Site, Tariff, TariffAssignments
from projections.view import Cursor, View, topics

NAME = "registry"
TOPICS = (
    topics(ChargePoint, "Registered", "PasswordSet", "Disabled", "Enabled", "Described")
    + topics(Customer, "Registered", "Updated")
    + topics(IdTag, "Added", "Blocked", "Unblocked", "Described", "Assigned", "AssignmentEnded")
    + topics(ApiKey, "Issued", "Revoked")
    + topics(Tariff, "Created", "Published")
    + topics(Site, "Created", "Updated")
    + topics(TariffAssignments, "Opened", "Assigned", "AssignmentEnded")
)


class RegistryView(View):
    tables = (
        "rm_charge_points", "rm_customers", "rm_id_tags", "rm_tag_assignments", "rm_api_keys",
        "rm_tariffs", "rm_tariff_versions", "rm_sites", "rm_tariff_assignments",
    )


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    for position, event in notifications:
        owner = type(event).__qualname__.split(".")[0]
        _APPLY[owner](cur, position, event, type(event).__name__)


def _charge_point(cur: Cursor, position: int, event: Any, kind: str) -> None:
    aggregate_id = str(event.originator_id)
    if kind == "Registered":
        cur.execute(
            "INSERT INTO rm_charge_points (name, aggregate_id, label, location, disabled, "
            "has_password, registered_at, position) VALUES (%s, %s, '', '', %s, %s, %s, %s)",
            (event.name, aggregate_id, False, event.password_hash is not None, event.timestamp,
             position),
        )
        return
    changes: dict[str, Any]
    if kind == "PasswordSet":
        changes = {"has_password": event.password_hash is not None}
    elif kind in ("Disabled", "Enabled"):
        changes = {"disabled": kind == "Disabled"}
    else:
        changes = dict(event.changes)
    _update(cur, "rm_charge_points", changes, "aggregate_id", aggregate_id)


def _customer(cur: Cursor, position: int, event: Any, kind: str) -> None:
    customer_id = str(event.originator_id)
    if kind == "Registered":
        cur.execute(
            "INSERT INTO rm_customers (customer_id, name, kind, email, billing_address, vat_id, "
            "language, created_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (customer_id, event.name, event.kind, event.email, _json(event.billing_address),
             event.vat_id, event.language, event.timestamp, position),
        )
        return
    changes = dict(event.changes)
    if "billing_address" in changes:
        changes["billing_address"] = _json(changes["billing_address"])
    if "group" in changes:  # GROUP is an SQL keyword
        changes["customer_group"] = changes.pop("group")
    _update(cur, "rm_customers", changes, "customer_id", customer_id)


def _id_tag(cur: Cursor, position: int, event: Any, kind: str) -> None:
    tag_id = str(event.originator_id)
    if kind == "Added":
        cur.execute(
            "INSERT INTO rm_id_tags (tag_id, token, kind, label, blocked, expires_at, created_at, "
            "position) VALUES (%s, %s, 'other', %s, %s, %s, %s, %s)",
            (tag_id, event.token, event.label, False, event.expires_at, event.timestamp, position),
        )
    elif kind in ("Blocked", "Unblocked"):
        _update(cur, "rm_id_tags", {"blocked": kind == "Blocked"}, "tag_id", tag_id)
    elif kind == "Described":
        _update(cur, "rm_id_tags", dict(event.changes), "tag_id", tag_id)
    elif kind == "Assigned":
        token = cur.execute("SELECT token FROM rm_id_tags WHERE tag_id = %s", (tag_id,)).fetchone()[0]
        cur.execute(
            "INSERT INTO rm_tag_assignments (tag_id, event_version, token, customer_id, "
            "valid_from, valid_until) VALUES (%s, %s, %s, %s, %s, %s)",
            (tag_id, event.originator_version, token, event.customer_id, event.valid_from,
             event.valid_until),
        )
    elif kind == "AssignmentEnded":
        cur.execute(
            "UPDATE rm_tag_assignments SET valid_until = %s WHERE tag_id = %s AND customer_id = %s "
            "AND valid_until IS NULL",
            (event.valid_until, tag_id, event.customer_id),
        )


def _api_key(cur: Cursor, position: int, event: Any, kind: str) -> None:
    if kind == "Issued":
        cur.execute(
            "INSERT INTO rm_api_keys (key_id, aggregate_id, name, role, customer_id, expires_at, "
            "revoked, created_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.key_id, str(event.originator_id), event.name, event.role, event.customer_id,
             event.expires_at, False, event.timestamp, position),
        )
    else:
        _update(cur, "rm_api_keys", {"revoked": True}, "aggregate_id", str(event.originator_id))


def _tariff(cur: Cursor, position: int, event: Any, kind: str) -> None:
    if kind == "Created":
        cur.execute(
            "INSERT INTO rm_tariffs (code, currency, versions, created_at, updated_at, position) "
            "VALUES (%s, %s, 0, %s, %s, %s)",
            (event.code, event.currency, event.timestamp, event.timestamp, position),
        )
        return
    tariff_code = event.document["id"]  # a version's document always carries its tariff's code
    cur.execute(
        "INSERT INTO rm_tariff_versions (code, version, valid_from, valid_until, corrects, "
        "superseded_by, published_at, published_by, document) "
        "VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s)",
        (tariff_code, event.version, event.valid_from, event.valid_until, event.corrects, event.at,
         event.by, _json(event.document)),
    )
    if event.corrects is not None:
        cur.execute(
            "UPDATE rm_tariff_versions SET superseded_by = %s WHERE code = %s AND version = %s",
            (event.version, tariff_code, event.corrects),
        )
    cur.execute(
        "UPDATE rm_tariffs SET versions = versions + 1, updated_at = %s, position = %s WHERE code = %s",
        (event.timestamp, position, tariff_code),
    )


def _site(cur: Cursor, position: int, event: Any, kind: str) -> None:
    aggregate_id = str(event.originator_id)
    if kind == "Created":
        cur.execute(
            "INSERT INTO rm_sites (code, aggregate_id, name, time_zone, calibrated, created_at, "
            "position) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (event.code, aggregate_id, event.name, event.time_zone, event.calibrated,
             event.timestamp, position),
        )
        return
    _update(cur, "rm_sites", dict(event.changes), "aggregate_id", aggregate_id)


def _assignments(cur: Cursor, position: int, event: Any, kind: str) -> None:
    if kind == "Opened":
        return
    if kind == "Assigned":
        (count,) = cur.execute(
            "SELECT COUNT(*) FROM rm_tariff_assignments WHERE scope = %s AND scope_key = %s",
            (event.scope, event.key),
        ).fetchone()
        cur.execute(
            "INSERT INTO rm_tariff_assignments (scope, scope_key, period, tariff, valid_from, "
            "valid_until, position) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (event.scope, event.key, int(count), event.tariff, event.valid_from,
             event.valid_until, position),
        )
    else:
        cur.execute(
            "UPDATE rm_tariff_assignments SET valid_until = %s, position = %s "
            "WHERE scope = %s AND scope_key = %s AND period = %s",
            (event.valid_until, position, event.scope, event.key, event.index),
        )


_APPLY = {
    "ChargePoint": _charge_point, "Customer": _customer, "IdTag": _id_tag, "ApiKey": _api_key,
    "Tariff": _tariff, "Site": _site, "TariffAssignments": _assignments,
}


def _update(cur: Cursor, table: str, changes: dict[str, Any], key: str, value: str) -> None:
    if changes:
        assignments = ", ".join(f"{column} = %s" for column in changes)
        cur.execute(
            f"UPDATE {table} SET {assignments} WHERE {key} = %s",  # noqa: S608 - our own names
            (*changes.values(), value),
        )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
