"""Signed meter values verified at ingest, and each session's Eichrecht verdict, end to end.

The recorded traces are replayed against a real server on both stores (the `server` fixture);
the verdicts below were worked out from the trace files: the `vcp-*` traces carry a real
ECDSA-secp256k1 OCMF record holding begin and end (time status I), the `sap-*` traces OCMF whose
SD is a bare SHA-256 digest, not a signature.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.application import build_applications
from ledger.signed.keys import parse_public_key
from ledger.signed.ocpp import signed_values
from tests.conftest import Server
from tests.test_traces import inbound_calls, load_trace, register, replay

pytestmark = pytest.mark.e2e

VCP16 = "vcp-ocpp16-remote-stop-real-ocmf.jsonl"
VCP201 = "vcp-ocpp201-remote-stop-real-ocmf.jsonl"
SAP16 = "sap-ocpp16-station3-of-20.jsonl"


def claimed_key(trace: list[dict[str, Any]]) -> str:
    """The public key the station sent with its signed data (a claim, here the real one)."""
    keys = set()
    for msg in inbound_calls(trace):
        payload = msg[3]
        for meter_values in (payload.get("transactionData"), payload.get("meterValue")):
            for value in signed_values(meter_values or []):
                wrapper = json.loads(value.data) if value.data.startswith("{") else {}
                key = value.claimed_key or wrapper.get("publicKey")
                if key:
                    keys.add(key)
    (key,) = keys
    return key


def register_key(server: Server, charge_point: str, public_key: str) -> None:
    registry, ledger = build_applications(server.database)
    try:
        registry.register_meter_key(
            charge_point, public_key, label="from the meter's label", at=datetime(2026, 1, 1, tzinfo=UTC), by="test"
        )
    finally:
        registry.close()
        ledger.close()


def session_events(server: Server) -> list[list[Any]]:
    registry, ledger = build_applications(server.database)
    try:
        return [ledger.session_events(session.id) for session in ledger.sessions()]
    finally:
        registry.close()
        ledger.close()


def of(events: list[Any], name: str) -> list[Any]:
    return [event for event in events if type(event).__name__ == name]


def replayed(server: Server, name: str, key: str | None = None) -> list[list[Any]]:
    trace = load_trace(name)
    register(server, trace)
    if key is not None:
        register_key(server, trace[0]["cp"], key)
    asyncio.run(replay(server, trace))
    return session_events(server)


@pytest.mark.parametrize("name, kwh", [(VCP16, "0.25001"), (VCP201, "0.35013")])
def test_real_signature_with_registered_key_is_billable(server: Server, name: str, kwh: str) -> None:
    key = claimed_key(load_trace(name))
    (events,) = replayed(server, name, key)

    (record,) = of(events, "RecordVerified")
    assert record.verdict["signature"] == "verified"
    assert record.verdict["key"]["source"] == "registered"
    assert record.verdict["method"] == "ECDSA-secp256k1-SHA256"
    assert not of(events, "ClaimedKeyDiffers")

    assessed = of(events, "Assessed")[-1].assessment
    assert assessed["energy_billable"] is True, assessed["reasons"]
    assert assessed["energy"] == kwh and assessed["unit"] == "kWh"
    assert Decimal(assessed["energy_wh"]) == Decimal(kwh) * 1000
    assert assessed["begin_record"] == assessed["end_record"] == record.record_id  # one record, both readings
    # Time status I (informative): energy yes, time no.
    assert assessed["time_billable"] == "no"
    assert any("time status is I" in reason for reason in assessed["time_reasons"])


def test_claimed_key_alone_is_not_billable(server: Server) -> None:
    (events,) = replayed(server, VCP16)
    (record,) = of(events, "RecordVerified")
    assert record.verdict["signature"] == "claimed-key-only"
    assessed = of(events, "Assessed")[-1].assessment
    assert assessed["energy_billable"] is False
    assert assessed["energy"] == "0.25001"  # measured, shown, but not billable
    assert any("not a registered one" in reason for reason in assessed["reasons"])


def test_claimed_key_differing_from_the_registered_raises_an_alert(server: Server) -> None:
    other = ec.generate_private_key(ec.SECP256K1()).public_key()
    registered = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex()
    (events,) = replayed(server, VCP16, registered)

    (record,) = of(events, "RecordVerified")
    assert record.verdict["signature"] == "invalid"
    assert "only against the claimed key" in record.verdict["reason"]
    (alert,) = of(events, "ClaimedKeyDiffers")
    assert alert.record_id == record.record_id
    assert alert.registered_fingerprints == [parse_public_key(registered).fingerprint]
    assert alert.claimed_fingerprint == parse_public_key(claimed_key(load_trace(VCP16))).fingerprint
    assert of(events, "Assessed")[-1].assessment["energy_billable"] is False


def test_digest_instead_of_signature_is_invalid_and_counted_once(server: Server) -> None:
    trace = load_trace(SAP16)
    sent = [
        value.data
        for msg in inbound_calls(trace)
        for key in ("meterValue", "transactionData")
        for value in signed_values(msg[3].get(key) or [])
    ]
    sessions = replayed(server, SAP16)
    records = [record for events in sessions for record in of(events, "RecordVerified")]
    assert sent and records
    assert {r.verdict["signature"] for r in records} == {"invalid"}
    # A record sent again (MeterValues, then StopTransaction) is kept once per session.
    for events in sessions:
        ids = [r.record_id for r in of(events, "RecordVerified")]
        assert len(ids) == len(set(ids))
        assessed = of(events, "Assessed")[-1].assessment
        assert assessed["energy_billable"] is False
