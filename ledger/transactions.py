"""Ledger commands for OCPP transaction messages, run inside a `UnitOfWork`.

The OCPP handlers translate a payload into one of these calls; each decides from the stored
state what the message changes, so a retried or repeated message changes nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.committer import UnitOfWork
from ledger.frames import FrameRef
from ledger.sessions import OCPP2, OCPP16, ChargingSession, QuarantineEntry
from ledger.values import digest, iso, parse_time


def authorization_status(uow: UnitOfWork, token: str, when: datetime) -> str:
    return uow.registry.authorization_status(token, when)


def quarantine(
    uow: UnitOfWork,
    *,
    charge_point: str,
    protocol: str,
    action: str,
    message_id: str,
    transaction_id: str | None,
    reason: str,
    payload: dict[str, Any],
    source_frame: FrameRef,
) -> QuarantineEntry:
    payload_digest = digest(payload)
    entry_id = QuarantineEntry.create_id(charge_point, action, payload_digest)
    entry = uow.get(QuarantineEntry, entry_id)
    if entry is None:
        entry = QuarantineEntry(
            charge_point=charge_point,
            action=action,
            digest=payload_digest,
            protocol=protocol,
            message_id=message_id,
            transaction_id=transaction_id,
            reason=reason,
            payload=payload,
            source_frame=source_frame.as_dict(),
        )
        uow.add(entry)
    return entry


# -- OCPP 1.6 ---------------------------------------------------------------------------------


def start_transaction_16(
    uow: UnitOfWork,
    *,
    charge_point: str,
    protocol: str,
    source_frame: FrameRef,
    payload: dict[str, Any],
) -> tuple[int, str]:
    """Returns (transactionId, idTagInfo.status). A repeated start gets the same id and status."""
    connector_id = int(payload["connectorId"])
    id_tag = str(payload["idTag"])
    meter_start = int(payload["meterStart"])
    timestamp = parse_time(payload["timestamp"])
    # What identifies a start; hashed, since an id tag may hold any character (PostgreSQL
    # text refuses NUL) and the key must stay short.
    start_key = digest([charge_point, connector_id, id_tag, iso(timestamp), meter_start])
    transaction_id = uow.allocate_transaction_id(start_key, charge_point)
    session_id = ChargingSession.create_id(charge_point, OCPP16, str(transaction_id))
    session = uow.get(ChargingSession, session_id)
    if session is None:
        session = ChargingSession(
            charge_point=charge_point,
            family=OCPP16,
            transaction_id=str(transaction_id),
            protocol=protocol,
        )
        uow.add(session)
        session.start(
            digest=digest(payload),
            source_frame=source_frame.as_dict(),
            station_time=timestamp,
            connector_id=connector_id,
            evse_id=None,
            id_token=id_tag,
            id_token_type=None,
            authorization_status=authorization_status(uow, id_tag, timestamp),
            meter_start=Decimal(meter_start),
            meter_values=[],
        )
    assert session.authorization_status is not None
    return transaction_id, session.authorization_status


def meter_values_16(
    uow: UnitOfWork,
    *,
    charge_point: str,
    protocol: str,
    message_id: str,
    source_frame: FrameRef,
    payload: dict[str, Any],
) -> None:
    transaction_id = payload.get("transactionId")
    if transaction_id is None:
        # Connector-level readings (clock-aligned, outside a transaction): the frame keeps them.
        return
    session = uow.get(
        ChargingSession, ChargingSession.create_id(charge_point, OCPP16, str(transaction_id))
    )
    if session is None:
        quarantine(
            uow,
            charge_point=charge_point,
            protocol=protocol,
            action="MeterValues",
            message_id=message_id,
            transaction_id=str(transaction_id),
            reason=f"MeterValues for transaction {transaction_id}, which this charge point never started",
            payload=payload,
            source_frame=source_frame,
        )
        return
    meter_values = payload["meterValue"]
    session.update(
        digest=digest({"connectorId": payload["connectorId"], "meterValue": meter_values}),
        source_frame=source_frame.as_dict(),
        source_action="MeterValues",
        station_time=_first_timestamp(meter_values),
        meter_values=meter_values,
    )


def stop_transaction_16(
    uow: UnitOfWork,
    *,
    charge_point: str,
    protocol: str,
    message_id: str,
    source_frame: FrameRef,
    payload: dict[str, Any],
) -> str | None:
    """Returns idTagInfo.status when the stop carries an idTag."""
    transaction_id = payload["transactionId"]
    timestamp = parse_time(payload["timestamp"])
    id_tag = payload.get("idTag")
    session = uow.get(
        ChargingSession, ChargingSession.create_id(charge_point, OCPP16, str(transaction_id))
    )
    if session is None:
        quarantine(
            uow,
            charge_point=charge_point,
            protocol=protocol,
            action="StopTransaction",
            message_id=message_id,
            transaction_id=str(transaction_id),
            reason=f"StopTransaction for transaction {transaction_id}, which this charge point never started",
            payload=payload,
            source_frame=source_frame,
        )
    else:
        session.end(
            digest=digest(payload),
            source_frame=source_frame.as_dict(),
            station_time=timestamp,
            meter_stop=Decimal(int(payload["meterStop"])),
            reason=payload.get("reason"),
            id_token=id_tag,
            id_token_type=None,
            meter_values=payload.get("transactionData", []),
        )
    return None if id_tag is None else authorization_status(uow, str(id_tag), timestamp)


# -- OCPP 2.0.1 / 2.1 -------------------------------------------------------------------------


def transaction_event_2(
    uow: UnitOfWork,
    *,
    charge_point: str,
    protocol: str,
    source_frame: FrameRef,
    payload: dict[str, Any],
) -> str | None:
    """Apply a TransactionEvent by its content and seqNo. Returns idTokenInfo.status when the
    event carries an idToken. Events may arrive before their Started (offline stations)."""
    info = payload["transactionInfo"]
    transaction_id = str(info["transactionId"])
    timestamp = parse_time(payload["timestamp"])
    session_id = ChargingSession.create_id(charge_point, OCPP2, transaction_id)
    session = uow.get(ChargingSession, session_id)
    if session is None:
        session = ChargingSession(
            charge_point=charge_point, family=OCPP2, transaction_id=transaction_id, protocol=protocol
        )
        uow.add(session)
    id_token_obj = payload.get("idToken") or {}
    id_token = id_token_obj.get("idToken")
    id_token_type = id_token_obj.get("type")
    status = None if id_token is None else authorization_status(uow, str(id_token), timestamp)
    evse = payload.get("evse") or {}
    common: dict[str, Any] = {
        "digest": digest(payload),
        "source_frame": source_frame.as_dict(),
        "station_time": timestamp,
        "meter_values": payload.get("meterValue", []),
        "seq_no": int(payload["seqNo"]),
        "offline": bool(payload.get("offline", False)),
        "trigger_reason": payload.get("triggerReason"),
        "id_token": id_token,
        "id_token_type": id_token_type,
    }
    event_type = payload["eventType"]
    if event_type == "Started":
        session.start(
            **common,
            connector_id=evse.get("connectorId"),
            evse_id=evse.get("id"),
            authorization_status=status,
            meter_start=None,
            charging_state=info.get("chargingState"),
        )
    elif event_type == "Ended":
        session.end(
            **common,
            meter_stop=None,
            reason=info.get("stoppedReason"),
            source_action="TransactionEvent",
        )
    else:
        session.update(
            **common, source_action="TransactionEvent", charging_state=info.get("chargingState")
        )
    return status


def _first_timestamp(meter_values: list[dict[str, Any]]) -> datetime | None:
    for meter_value in meter_values:
        if "timestamp" in meter_value:
            return parse_time(meter_value["timestamp"])
    return None
