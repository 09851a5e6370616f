"""Signed meter values verified at ingest, and each session's Eichrecht verdict, end to end.

The recorded traces are replayed against a real server on both stores (the `server` fixture);
the verdicts below were worked out from the trace files: the `vcp-*` traces carry a real
ECDSA-secp256k1 OCMF record holding begin and end (time status I), the `sap-*` traces OCMF whose
SD is a bare SHA-256 digest, not a signature.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.application import build_applications
from ledger.signed import transparency
from ledger.signed.keys import parse_public_key
from ledger.signed.ocpp import signed_values
from ledger.signed.verify import examine
from tests.conftest import Server
from tests.test_api import Api, api, problem  # noqa: F401  (the api fixture)
from tests.test_api_e2e import admin
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


# -- meter keys over the HTTP API -----------------------------------------------------------------


def test_meter_keys_register_list_retire_and_roles(api: Api) -> None:
    admin, auditor, accountant = api.key("admin"), api.key("auditor"), api.key("accountant")
    api.post("/v1/charge-points", admin, {"id": "WB1"})
    path = "/v1/charge-points/WB1/meter-keys"
    hex_key = claimed_key_hex()
    made = api.post(path, admin, {"public_key": hex_key, "evse_id": 1, "meter_serial": "1234567890", "label": "label"})
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["fingerprint"] == parse_public_key(hex_key).fingerprint
    assert key["retired_at"] is None and key["registered_by"].startswith("api-key:")
    # The same key in another spelling is the same key: registering it again answers it.
    again = api.post(path, admin, {"public_key": "oca:base16:asn1:" + hex_key.lower(), "evse_id": 1, "meter_serial": "1234567890"})
    assert again.status_code == 201 and again.json()["fingerprint"] == key["fingerprint"]
    problem(api.post(path, admin, {"public_key": hex_key, "evse_id": 2}), 409, "conflict")
    problem(api.post(path, admin, {"public_key": "not a key"}), 422, "invalid-value")
    problem(api.post(path, admin, {"public_key": hex_key, "extra": 1}), 422, "validation-error")
    problem(api.post("/v1/charge-points/NOPE/meter-keys", admin, {"public_key": hex_key}), 404, "not-found")
    problem(api.post(path, auditor, {"public_key": hex_key}), 403, "forbidden")

    assert [k["fingerprint"] for k in api.get(path, auditor).json()["items"]] == [key["fingerprint"]]
    problem(api.get(path, accountant), 403, "forbidden")

    retired = api.post(f"{path}/{key['fingerprint']}/retirement", admin, {"reason": "meter replaced"})
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_reason"] == "meter replaced" and retired.json()["retired_at"]
    problem(api.post(f"{path}/{'0' * 64}/retirement", admin, {"reason": "x"}), 404, "not-found")
    # Retired, the key may be registered anew (a meter put back).
    assert api.post(path, admin, {"public_key": hex_key}).status_code == 201
    events = api.services.registry.meter_keyring("WB1")
    assert events is not None and len(events.keys) == 1


def claimed_key_hex() -> str:
    parsed = parse_public_key(claimed_key(load_trace(VCP16)))
    return parsed.spki("secp256k1").hex().upper()


# -- what the customer gets -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [VCP16, VCP201])
def test_session_detail_and_transparency_file_over_http(server: Server, name: str) -> None:
    trace = load_trace(name)
    charge_point = trace[0]["cp"]
    register(server, trace)
    http = admin(server)
    made = http.post(f"/v1/charge-points/{charge_point}/meter-keys", json={"public_key": claimed_key(trace)})
    assert made.status_code == 201, made.text
    asyncio.run(replay(server, trace))

    (session,) = http.get("/v1/sessions", params={"fresh": "true", "billable": "true"}).json()["items"]
    assert http.get("/v1/sessions", params={"billable": "false"}).json()["items"] == []
    # The Eichrecht read model beside the session: billable energy in the meter's unit and in Wh.
    assert session["energy_billable"] is True and session["time_billable"] == "no"
    assert session["billable_unit"] == "kWh" and session["signed_records"] == 1
    assert Decimal(session["billable_energy"]) * 1000 == Decimal(session["billable_energy_wh"])
    assert session["key_alerts"] == 0
    detail = http.get(f"/v1/sessions/{session['id']}").json()["eichrecht"]
    assert detail["assessment"]["energy_billable"] is True
    (record,) = detail["records"]
    assert record["verdict"]["signature"] == "verified" and detail["key_alerts"] == []

    answer = http.get(f"/v1/sessions/{session['id']}/transparency.xml")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    (entry,) = transparency.read(answer.content)
    assert entry.context == "Transaction.End" and entry.format == "OCMF"
    assert entry.data == record["verdict"]["signed_data"]  # byte for byte what the meter signed
    assert entry.public_key is not None  # the registered key, as hex SPKI
    assert parse_public_key(entry.public_key).fingerprint == made.json()["fingerprint"]
    # What the customer gets verifies on its own, against the key in the file.
    assert examine(entry.data, entry.public_key).signature == "claimed-key-only"
    # Without signed data there is nothing to check: a 404 problem, not an empty file.
    assert http.get(f"/v1/sessions/{uuid.uuid4()}/transparency.xml").status_code == 404


def test_cli_meter_keys_and_evidence_export(server: Server) -> None:
    trace = load_trace(VCP16)
    charge_point = trace[0]["cp"]
    register(server, trace)
    key = claimed_key(trace)
    added = server.cli("meter-keys", "add", charge_point, key, "--serial", "1234567890", "--label", "Zähler 1")
    assert added.returncode == 0, added.stderr
    fingerprint = parse_public_key(key).fingerprint
    assert fingerprint in added.stdout
    asyncio.run(replay(server, trace))

    (events,) = session_events(server)
    assert of(events, "Assessed")[-1].assessment["energy_billable"] is True  # the serial matched (MS)
    session_id = str(events[0].originator_id)
    exported = server.cli("evidence", "export", "--session", session_id)
    assert exported.returncode == 0, exported.stderr
    (entry,) = transparency.read(exported.stdout.strip().encode())
    assert examine(entry.data, entry.public_key).signature_holds

    listed = json.loads(server.cli("meter-keys", "list", charge_point, "--json").stdout)
    assert [(k["fingerprint"], k["meter_serial"], k["label"]) for k in listed] == [(fingerprint, "1234567890", "Zähler 1")]
    retired = server.cli("meter-keys", "retire", charge_point, fingerprint, "--reason", "meter replaced")
    assert retired.returncode == 0, retired.stderr
    assert json.loads(server.cli("meter-keys", "list", charge_point, "--json").stdout)[0]["retired_at"]

    assert server.cli("evidence", "export", "--session", "not-a-uuid").returncode != 0
    assert server.cli("meter-keys", "add", charge_point, "garbage").returncode != 0


# -- signed data by DataTransfer ----------------------------------------------------------------------

ONLY_BY_DATA_TRANSFER = 'OCMF|{"FV":"1.0","GI":"OTHER","RD":[{"TX":"C","RV":"0.1","RU":"kWh","ST":"G"}]}|{"SD":"3006020101020101"}'


def test_signed_data_by_data_transfer_joins_its_session_or_the_quarantine(server: Server) -> None:
    trace = load_trace(VCP16)
    charge_point = trace[0]["cp"]
    register(server, trace)
    key = claimed_key(trace)
    register_key(server, charge_point, key)
    (stop,) = inbound_calls(trace, "StopTransaction")
    (value,) = signed_values(stop[3]["transactionData"])
    ocmf_text = base64.b64decode(json.loads(value.data)["signedMeterData"]).decode()

    async def transfer(ws: Any, run: Any) -> None:
        (ours,) = run.transaction_ids.values()
        for message_id, data in (
            ("dt-1", json.dumps({"transactionId": ours, "signedMeterData": ocmf_text})),  # its session
            ("dt-2", json.dumps({"transactionId": 999, "signedData": ocmf_text})),  # no such transaction
            ("dt-3", ocmf_text),  # no transaction named
            ("dt-4", "firmware says hello"),  # a vendor extension we do not know
            ("dt-5", json.dumps({"transactionId": ours, "meterValue": [{"sampledValue": 5}]})),  # garbled
            ("dt-6", json.dumps({"transactionId": ours, "signedMeterData": ONLY_BY_DATA_TRANSFER})),
        ):
            frame = [2, message_id, "DataTransfer", {"vendorId": "ACME", "data": data}]
            answer = await run.call(ws, json.dumps(frame))
            assert answer[2]["status"] == ("Accepted" if message_id in ("dt-1", "dt-2", "dt-3", "dt-6") else "UnknownVendorId")

    asyncio.run(replay(server, trace, then=transfer))

    (events,) = session_events(server)
    # The same record as in StopTransaction: kept once, verified against the registered key;
    # a record only sent by DataTransfer is kept too (and fails against the registered key).
    record, only_by_transfer = of(events, "RecordVerified")
    assert record.verdict["signature"] == "verified"
    assert only_by_transfer.verdict["signature"] == "invalid"
    registry, ledger = build_applications(server.database)
    try:
        reasons = sorted(entry.reason for entry in ledger.quarantine_entries())
    finally:
        registry.close()
        ledger.close()
    # The DataTransfer that brought the record is part of the session's evidence export.
    http = admin(server)
    (listed,) = http.get("/v1/sessions", params={"fresh": "true"}).json()["items"]
    exported = [json.loads(line) for line in http.get(f"/v1/sessions/{listed['id']}/frames").text.splitlines()]
    assert "dt-6" in {frame["message_id"] for frame in exported}
    assert reasons == [
        "signed meter data in a DataTransfer for no transaction of this charge point",
        "signed meter data in a DataTransfer for transaction 999, which this charge point never started",
    ]


# -- hostile signed data at ingest --------------------------------------------------------------------

HOSTILE = {
    "deep-json": '{"signedMeterData":' + "[" * 50_000 + "]" * 50_000 + "}",
    "deep-payload": "OCMF|" + '{"a":' * 20_000 + "1" + "}" * 20_000 + '|{"SD":"00"}',
    "huge-number": 'OCMF|{"FV":"1.0","RD":[{"TX":"B","RV":' + "9" * 5000 + ',"ST":"G"}]}|{"SD":"3000"}',
    "huge-exponent": 'OCMF|{"RD":[{"TX":"B","RV":1e999999999999999999}]}|{"SD":"3000"}',
    "truncated": 'OCMF|{"FV":"1.0","GI":"X","RD":[{"TX":"B"',
    "garbled-base64": "T0NNRnx7!!!notbase64",
    "not-utf8": (b"OCMF|{\"GI\":\"\xff\"}|{\"SD\":\"3000\"}").hex(),  # hex of latin-1 bytes
    "empty": "",
    # An object shaped like the event store's own type encoding, a time beyond datetime's range
    # and a value beyond Decimal's: the session's events must still load from the store.
    "store-shaped": 'OCMF|{"FV":"1.0","GI":{"_type_":"nope","_data_":1},"RD":[{"TX":"B","RV":1}]}|{"SD":"3000"}',
    "far-time": 'OCMF|{"RD":[{"TM":"9999-12-31T23:59:59,000-2359 S","TX":"E","RV":1E+1000000}]}|{"SD":"3000"}',
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_signed_data_gets_a_verdict_and_the_reading_is_kept(server: Server, kind: str) -> None:
    trace = load_trace(VCP16)
    register(server, trace)

    async def send(ws: Any, run: Any) -> None:
        (ours,) = run.transaction_ids.values()
        payload = {"connectorId": 1, "transactionId": ours, "meterValue": [{
            "timestamp": "2026-11-23T20:00:40Z",
            "sampledValue": [
                {"value": "251", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": HOSTILE[kind], "format": "SignedData", "context": "Sample.Periodic"},
            ],
        }]}
        await run.call(ws, json.dumps([2, "hostile-1", "MeterValues", payload]))  # a CALLRESULT

    asyncio.run(replay(server, trace, then=send))

    (events,) = session_events(server)
    late = [e for e in of(events, "Updated") if e.source_action == "MeterValues"][-1]
    assert late.meter_values[0]["sampledValue"][1]["value"] == HOSTILE[kind]  # kept verbatim
    records = of(events, "RecordVerified")
    if kind == "empty":
        assert len(records) == 1  # an empty value is no signed data: only the real record
        return
    hostile = records[-1]
    assert hostile.verdict["signature"] == "invalid" and hostile.verdict["reason"]
    # The late garbage changes nothing billable: the session's pair is still the real record.
    assert records[0].verdict["signature"] == "claimed-key-only"
