"""The monitoring view operators watch: per charge point its connection, last boot (vendor,
model, firmware), last heartbeat, frame counts and last error, and per connector its status.

Built from the frames themselves (the evidence log) and the connections opening and closing:
Boot, Heartbeat and StatusNotification change no ledger state, so the frames are the source.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.frames import INBOUND, FrameLog
from ledger.ids import frame_log_id
from ledger.sessions import Connection
from projections.view import Cursor, View, topics

NAME = "monitoring"
TOPICS = topics(FrameLog, "Opened", "Recorded") + topics(Connection, "Opened", "Closed")

STATUS_COLUMNS = (
    "log_id", "charge_point", "protocol", "connection", "connected", "connected_at",
    "disconnected_at", "last_seen_at", "last_boot_at", "boot_reason", "vendor", "model",
    "serial_number", "firmware_version", "firmware_status", "last_heartbeat_at", "last_error",
    "last_error_at", "frames_in", "frames_out", "call_errors",
)
CONNECTOR_COLUMNS = (
    "charge_point", "evse_id", "connector_id", "status", "error_code", "vendor_error_code",
    "info", "station_time", "received_at",
)
_CALL, _CALLERROR = 2, 4
_READ = {"BootNotification", "Heartbeat", "StatusNotification", "FirmwareStatusNotification",
         "NotifyEvent"}


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    )


_UPSERT_STATUS = _upsert("rm_charge_point_status", STATUS_COLUMNS, ("log_id",))
_UPSERT_CONNECTOR = _upsert(
    "rm_connector_status", CONNECTOR_COLUMNS, ("charge_point", "evse_id", "connector_id")
)


class MonitoringView(View):
    tables = ("rm_connector_status", "rm_charge_point_status")


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    log_ids = sorted({_log_id(event) for _, event in notifications})
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(log_ids), 500):
        chunk = log_ids[start : start + 500]
        cur.execute(
            f"SELECT {', '.join(STATUS_COLUMNS)} FROM rm_charge_point_status WHERE log_id IN "  # noqa: S608
            f"({', '.join(['%s'] * len(chunk))})",
            chunk,
        )
        for found in cur.fetchall():
            rows[found[0]] = dict(zip(STATUS_COLUMNS, found))
    connectors: dict[tuple[str, int, int], tuple[Any, ...]] = {}
    for _, event in notifications:
        log_id = _log_id(event)
        row = rows.get(log_id)
        if row is None:
            row = rows[log_id] = _new_row(log_id, event.charge_point)
        kind = type(event).__qualname__
        if kind == "FrameLog.Recorded":
            _frame(row, event, connectors)
        elif kind == "Connection.Opened":
            row.update(connected=True, connection=event.connection, connected_at=event.at,
                       protocol=event.protocol)
        elif kind == "Connection.Closed":
            if row["connection"] == _connection_of(event, row):
                row.update(connected=False, disconnected_at=event.at)
    cur.executemany(_UPSERT_STATUS, [tuple(r[c] for c in STATUS_COLUMNS) for r in rows.values()])
    cur.executemany(_UPSERT_CONNECTOR, list(connectors.values()))


def _log_id(event: Any) -> str:
    if type(event).__qualname__.startswith("FrameLog."):
        return str(event.originator_id)
    return str(frame_log_id(event.charge_point))


def _connection_of(event: Any, row: dict[str, Any]) -> str | None:
    """The connection (hex id) the Closed event is about, if it is the row's current one."""
    current = row["connection"]
    if current is not None and str(Connection.create_id(current)) == str(event.originator_id):
        return str(current)
    return None


def _new_row(log_id: str, charge_point: str) -> dict[str, Any]:
    row = dict.fromkeys(STATUS_COLUMNS)
    row.update(log_id=log_id, charge_point=charge_point, connected=False, frames_in=0,
               frames_out=0, call_errors=0)
    return row


def _frame(row: dict[str, Any], event: Any, connectors: dict[Any, tuple[Any, ...]]) -> None:
    if event.direction != INBOUND:
        row["frames_out"] += 1
        if event.message_type == _CALLERROR:
            row["call_errors"] += 1
        return
    row["frames_in"] += 1
    row["last_seen_at"] = event.received_at
    row["protocol"] = event.protocol
    if event.message_type != _CALL or event.action not in _READ or event.text is None:
        return
    try:
        payload = json.loads(event.text)[3]
    except (ValueError, IndexError, TypeError, KeyError):
        return  # malformed frames were answered with a CALLERROR; nothing to show here
    if not isinstance(payload, dict):
        return
    at = event.received_at
    if event.action == "Heartbeat":
        row["last_heartbeat_at"] = at
    elif event.action == "BootNotification":
        station = payload.get("chargingStation")
        if isinstance(station, dict):  # 2.0.1 / 2.1
            fields = (station.get("vendorName"), station.get("model"),
                      station.get("serialNumber"), station.get("firmwareVersion"))
            reason = payload.get("reason")
        else:
            fields = (payload.get("chargePointVendor"), payload.get("chargePointModel"),
                      payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
                      payload.get("firmwareVersion"))
            reason = None
        row.update(last_boot_at=at, boot_reason=_text(reason), vendor=_text(fields[0]),
                   model=_text(fields[1]), serial_number=_text(fields[2]),
                   firmware_version=_text(fields[3]))
    elif event.action == "FirmwareStatusNotification":
        row["firmware_status"] = _text(payload.get("status"))
    elif event.action == "StatusNotification":
        _status(row, payload, at, connectors)
    elif event.action == "NotifyEvent":
        for item in payload.get("eventData") or []:
            problem = _problem(item)
            if problem:
                row.update(last_error=problem, last_error_at=at)


def _status(
    row: dict[str, Any], payload: dict[str, Any], at: Any, connectors: dict[Any, tuple[Any, ...]]
) -> None:
    if "connectorStatus" in payload:  # 2.0.1 / 2.1
        evse, connector = payload.get("evseId"), payload.get("connectorId")
        status, error, vendor_error, info = payload.get("connectorStatus"), None, None, None
    else:  # 1.6 has no EVSE: its connector id stands for both
        evse = connector = payload.get("connectorId")
        status, error = payload.get("status"), payload.get("errorCode")
        vendor_error, info = payload.get("vendorErrorCode"), payload.get("info")
    if not isinstance(evse, int) or not isinstance(connector, int) or not isinstance(status, str):
        return
    if error not in (None, "NoError"):
        row.update(last_error=_text(error if not vendor_error else f"{error} ({vendor_error})"),
                   last_error_at=at)
    key = (row["charge_point"], evse, connector)
    connectors[key] = (*key, status, _text(error), _text(vendor_error), _text(info),
                       _text(payload.get("timestamp")), at)


def _problem(item: Any) -> str | None:
    """A 2.x NotifyEvent item that reports a problem: the `Problem` variable set, or an alert."""
    if not isinstance(item, dict):
        return None
    variable = (item.get("variable") or {}).get("name")
    component = (item.get("component") or {}).get("name")
    value = item.get("actualValue")
    if (variable == "Problem" and str(value).lower() == "true") or item.get("trigger") == "Alerting":
        return _text(item.get("techCode") or f"{component}.{variable}={value}")
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:500]
