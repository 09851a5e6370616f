"""The sessions read model and the evidence index, from `ChargingSession` events.

One row per session (charge point, transaction, id token, start/end in UTC, meter start/stop
and energy in Wh as exact decimals, state, counts of readings kept in and after the session),
and for every session event the frame it came from: the path from a session back to the bytes.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.sessions import OCPP16, ChargingSession
from projections.view import Cursor, View, topics

NAME = "sessions"
# RecordVerified only adds its frame to the evidence index (a signed record by DataTransfer).
TOPICS = topics(ChargingSession, "Opened", "Started", "Updated", "Ended", "RecordVerified")
ENERGY = "Energy.Active.Import.Register"
_MULTIPLIER = {"Wh": Decimal(1), "kWh": Decimal(1000)}

COLUMNS = (
    "session_id", "charge_point", "protocol", "transaction_id", "state", "connector_id",
    "evse_id", "id_token", "id_token_type", "authorization_status", "started_at", "ended_at",
    "meter_start_wh", "meter_stop_wh", "energy_wh", "stop_reason", "readings",
    "after_end_readings", "events", "opened_position",
)
_UPSERT_TAIL = "ON CONFLICT (session_id) DO UPDATE SET " + ", ".join(
    f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:]
)
EVIDENCE_COLUMNS = (
    "session_id", "event_version", "kind", "charge_point", "frame_seq", "frame_hash", "after_end",
)


class SessionsView(View):
    tables = ("rm_session_evidence", "rm_sessions")


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    """Apply a page of (notification id, session event), in order (the runner tracks it)."""
    page = [(position, event, str(event.originator_id)) for position, event in notifications]
    ids = sorted({session_id for _, _, session_id in page})
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        cur.execute(
            f"SELECT {', '.join(COLUMNS)} FROM rm_sessions WHERE session_id IN "  # noqa: S608
            f"({', '.join(['%s'] * len(chunk))})",
            chunk,
        )
        for found in cur.fetchall():
            row = dict(zip(COLUMNS, found))
            rows[row["session_id"]] = row
    evidence: list[tuple[Any, ...]] = []
    for position, event, session_id in page:
        kind = type(event).__name__
        if kind == "Opened":
            row = rows[session_id] = _opened(session_id, event, position)
        else:
            found = rows.get(session_id)
            if found is None:
                raise RuntimeError(f"session {session_id}: event before Opened")
            row = found
            if kind != "RecordVerified":
                _apply(row, event)
            source = event.source_frame
            evidence.append((
                session_id, event.originator_version, kind, source["charge_point"],
                source["seq"], source["hash"], bool(getattr(event, "after_end", False)),
            ))
        row["events"] = event.originator_version
    cur.insert_rows(
        "rm_sessions", COLUMNS, [tuple(row[c] for c in COLUMNS) for row in rows.values()],
        _UPSERT_TAIL,
    )
    # Each event is applied once (the runner checks the position under lock), so its evidence
    # row is new: COPY, no conflict handling.
    cur.copy_rows("rm_session_evidence", EVIDENCE_COLUMNS, evidence)


def _opened(session_id: str, event: Any, position: int) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS)
    row.update(
        session_id=session_id,
        charge_point=event.charge_point,
        protocol=event.protocol,
        transaction_id=event.transaction_id,
        state="opened",
        readings=0,
        after_end_readings=0,
        opened_position=position,
    )
    return row


def _apply(row: dict[str, Any], event: Any) -> None:
    if isinstance(event, ChargingSession.Updated):  # most events: one more reading
        key = "after_end_readings" if event.after_end else "readings"
        row[key] += 1
        if event.id_token and row["id_token"] is None:
            row["id_token"], row["id_token_type"] = event.id_token, event.id_token_type
        return  # the meter start and stop stay, and so does the energy between them
    family_16 = row["protocol"] == OCPP16
    if isinstance(event, ChargingSession.Started):
        row.update(
            connector_id=event.connector_id,
            evse_id=event.evse_id,
            id_token=event.id_token,
            id_token_type=event.id_token_type,
            authorization_status=event.authorization_status,
            started_at=event.station_time,
        )
        if row["state"] == "opened":
            row["state"] = "active"
        registers = energy_registers_wh(event.meter_values)
        start = event.meter_start if family_16 else (registers[0] if registers else None)
        row["meter_start_wh"] = start
    elif isinstance(event, ChargingSession.Ended):
        registers = energy_registers_wh(event.meter_values)
        stop = event.meter_stop if family_16 else (registers[-1] if registers else None)
        row.update(state="ended", ended_at=event.station_time, meter_stop_wh=stop,
                   stop_reason=event.reason)
    start, stop = _decimal(row["meter_start_wh"]), _decimal(row["meter_stop_wh"])
    row["energy_wh"] = stop - start if start is not None and stop is not None else None


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def energy_registers_wh(meter_values: list[Any]) -> list[Decimal]:
    """The plain (unsigned) energy import register readings, in Wh, in the order sent."""
    found = []
    for meter_value in meter_values:
        for sampled in meter_value.get("sampledValue", []):
            if sampled.get("measurand", ENERGY) != ENERGY or sampled.get("format") == "SignedData":
                continue
            unit_of_measure = sampled.get("unitOfMeasure") or {}
            unit = sampled.get("unit") or unit_of_measure.get("unit") or "Wh"
            if unit not in _MULTIPLIER:
                continue
            try:
                value = Decimal(str(sampled["value"]))
            except (KeyError, InvalidOperation):
                continue
            scale = Decimal(10) ** int(unit_of_measure.get("multiplier", 0))
            found.append(value * scale * _MULTIPLIER[unit])
    return found
