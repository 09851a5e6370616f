"""Ledger commands for OCPP transaction messages, run inside a `UnitOfWork`.

The OCPP handlers translate a payload into one of these calls; each decides from the stored
state what the message changes, so a retried or repeated message changes nothing twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledger.committer import UnitOfWork
from ledger.frames import FrameRef
from ledger.sessions import OCPP2, OCPP16, ChargingSession, QuarantineEntry
from ledger.signed.conformity import assess
from ledger.signed.ocpp import signed_values
from ledger.signed.verify import examine, identify
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
    station_time = _first_timestamp(meter_values)
    if session.update(
        digest=digest({"connectorId": payload["connectorId"], "meterValue": meter_values}),
        source_frame=source_frame.as_dict(),
        source_action="MeterValues",
        station_time=station_time,
        meter_values=meter_values,
    ):
        verify_signed(uow, session, meter_values, source_frame, station_time or datetime.now(UTC))


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
    elif session.end(
        digest=digest(payload),
        source_frame=source_frame.as_dict(),
        station_time=timestamp,
        meter_stop=Decimal(int(payload["meterStop"])),
        reason=payload.get("reason"),
        id_token=id_tag,
        id_token_type=None,
        meter_values=payload.get("transactionData", []),
    ):
        verify_signed(uow, session, payload.get("transactionData", []), source_frame, timestamp)
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
            charge_point=charge_point,
            family=OCPP2,
            transaction_id=transaction_id,
            protocol=protocol,
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
    changed: bool
    if event_type == "Started":
        changed = session.start(
            **common,
            connector_id=evse.get("connectorId"),
            evse_id=evse.get("id"),
            authorization_status=status,
            meter_start=None,
            charging_state=info.get("chargingState"),
        )
    elif event_type == "Ended":
        changed = session.end(
            **common,
            meter_stop=None,
            reason=info.get("stoppedReason"),
            source_action="TransactionEvent",
        )
    else:
        changed = session.update(
            **common, source_action="TransactionEvent", charging_state=info.get("chargingState")
        )
    if changed:
        verify_signed(uow, session, common["meter_values"], source_frame, timestamp)
    return status


def _first_timestamp(meter_values: list[dict[str, Any]]) -> datetime | None:
    for meter_value in meter_values:
        if "timestamp" in meter_value:
            return parse_time(meter_value["timestamp"])
    return None


def data_transfer(
    uow: UnitOfWork,
    *,
    charge_point: str,
    protocol: str,
    message_id: str,
    source_frame: FrameRef,
    payload: dict[str, Any],
) -> str:
    """Signed meter data some stations send by DataTransfer; returns the DataTransfer status.

    `data` may be the signed data itself (OCMF, Alfen, the OCA JSON wrapper, hex, base64) or a
    JSON object, possibly as a string, naming the transaction (`transactionId`) with the signed
    data in `signedMeterData`/`signedData`/`value` or as OCPP `meterValue`s. Signed data for a
    transaction of this charge point is verified into its session; signed data we cannot place
    goes to the quarantine with the reason. Anything else is a vendor extension we do not know.
    """
    data = payload.get("data")
    found = _transferred(data)
    if found is None:
        return "UnknownVendorId"
    transaction_id, meter_values = found
    session = None
    if transaction_id is not None:
        family = OCPP16 if protocol == "ocpp1.6" else OCPP2
        session = uow.get(ChargingSession, ChargingSession.create_id(charge_point, family, transaction_id))
    if session is None:
        quarantine(
            uow,
            charge_point=charge_point,
            protocol=protocol,
            action="DataTransfer",
            message_id=message_id,
            transaction_id=transaction_id,
            reason="signed meter data in a DataTransfer for no transaction of this charge point"
            if transaction_id is None
            else f"signed meter data in a DataTransfer for transaction {transaction_id}, which this charge point never started",
            payload=payload,
            source_frame=source_frame,
        )
        return "Accepted"
    verify_signed(uow, session, meter_values, source_frame, datetime.now(UTC))
    return "Accepted"


def _transferred(data: Any) -> tuple[str | None, list[Any]] | None:
    """(transaction id, meter values holding the signed data) found in DataTransfer.data."""
    if isinstance(data, str):
        text = data.strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict) and ("transactionId" in parsed or "signedMeterData" not in parsed):
                return _transferred(parsed)
        if identify(text).format in ("unknown", "none"):
            return None  # not signed data in any format we recognise
        return None, [{"sampledValue": [{"format": "SignedData", "value": text}]}]
    if not isinstance(data, dict):
        return None
    raw_id = data.get("transactionId")
    transaction_id = str(raw_id) if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else None
    if isinstance(data.get("meterValue"), list) and signed_values(data["meterValue"]):
        return transaction_id, data["meterValue"]
    if isinstance(data.get("signedMeterData"), str):
        # The OCA wrapper with the transaction beside it: keep its key (a claim) with the data.
        wrapper = {k: data[k] for k in ("signedMeterData", "publicKey", "encodingMethod", "signingMethod") if k in data}
        return transaction_id, [{"sampledValue": [{"format": "SignedData", "value": json.dumps(wrapper)}]}]
    for key in ("signedData", "value"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            inner = _transferred(value)
            if inner is not None:
                return transaction_id, inner[1]
    return None


def verify_signed(
    uow: UnitOfWork,
    session: ChargingSession,
    meter_values: Any,
    source_frame: FrameRef,
    when: datetime,
) -> None:
    """Verify every signed value in the message at ingest, against the operator's registered
    keys for this meter; keep each new record's verdict on the session, and re-assess an ended
    session whenever what it is assessed from changes."""
    values = signed_values(meter_values)
    if values:
        keyring = uow.registry.meter_keyring(session.charge_point)
        for value in values:
            # A first look without verifying: a record kept already (MeterValues, then again in
            # StopTransaction) costs no ECDSA, and its meter picks the registered keys.
            identity = identify(value.data)
            record_id = identity.record_id or digest(value.data)
            if record_id in session.records:
                continue
            claimed_key = value.claimed_key
            if identity.claimed_key is None and claimed_key is None:
                # Stations often send their key once per session: a claim for the later records too.
                claimed_key = _earlier_claim(session, identity.fields)
            # Retired keys are judged by when the meter signed (its own, signed clock), not by
            # when the record reached us: a late record from before a retirement still verifies.
            signed_at = next((r["time"] for r in identity.readings if r.get("time")), None)
            at = datetime.fromisoformat(signed_at) if signed_at else when
            meter = _meter_serial(identity.fields)
            trusted = [] if keyring is None else keyring.trusted(session.evse_id, meter, at)
            verdict = examine(value.data, claimed_key, trusted)
            session.record_signed(
                record_id=record_id,
                verdict=verdict.to_json(),
                context=value.context,
                source_frame=source_frame.as_dict(),
                claimed_key=claimed_key,
            )
            claimed = verdict.claimed_key_fingerprint
            registered = [key.fingerprint for key in trusted]
            if claimed is not None and registered and claimed not in registered:
                session.alert_key(
                    record_id=record_id, claimed_fingerprint=claimed, registered=registered
                )
    if session.ended:
        session.assess(assess(list(session.records.values())).to_json())


def _earlier_claim(session: ChargingSession, fields: dict[str, Any]) -> str | None:
    meter = [fields.get(key) for key in ("GI", "GS", "MS", "meter_id")]
    for verdict in reversed(session.records.values()):
        earlier = verdict.get("fields") or {}
        if verdict.get("claimed_key") and [earlier.get(k) for k in ("GI", "GS", "MS", "meter_id")] == meter:
            return str(verdict["claimed_key"])
    return None


def _meter_serial(fields: dict[str, Any]) -> str | None:
    serial = fields.get("MS") or fields.get("meter_id") or fields.get("GS")
    return serial if isinstance(serial, str) else None
