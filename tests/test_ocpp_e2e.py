"""End-to-end: a real server process, real OCPP clients over WebSocket, on both stores."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets
from ocpp.v16 import ChargePoint as Client16
from ocpp.v16 import call as call16
from ocpp.v21 import ChargePoint as Client21
from ocpp.v21 import call as call21
from ocpp.v201 import ChargePoint as Client201
from ocpp.v201 import call as call201

from ledger.application import build_applications
from ledger.sessions import OCPP2, OCPP16
from tests.conftest import Server

pytestmark = pytest.mark.e2e

PASSWORD = "s3cret-password-of-24ch"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def stored_frames(server: Server, charge_point: str) -> list[Any]:
    registry, ledger = build_applications(server.database)
    try:
        return list(ledger.frames(charge_point))
    finally:
        registry.close()
        ledger.close()


def stored_sessions(server: Server) -> list[tuple[Any, list[Any]]]:
    registry, ledger = build_applications(server.database)
    try:
        return [(s, ledger.session_events(s.id)) for s in ledger.sessions()]
    finally:
        registry.close()
        ledger.close()


async def with_client(
    server: Server, cls: type, charge_point: str, subprotocol: str,
    body: Callable[[Any], Awaitable[Any]], headers: dict[str, str] | None = None,
) -> Any:
    async with websockets.connect(
        f"{server.ws_url}/{charge_point}", subprotocols=[subprotocol], additional_headers=headers
    ) as ws:
        client = cls(charge_point, ws)
        task = asyncio.create_task(client.start())
        try:
            return await body(client)
        finally:
            task.cancel()


def test_ocpp16_session_over_a_real_socket(server: Server) -> None:
    assert server.cli("charge-points", "add", "CP16").returncode == 0
    assert server.cli("id-tags", "add", "TAG-1").returncode == 0

    async def body(client: Client16) -> list[Any]:
        boot = await client.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        # The answer left after its commit: both frames are in the store when it arrives.
        assert [f.direction for f in stored_frames(server, "CP16")] == ["in", "out"]
        auth = await client.call(call16.Authorize(id_tag="TAG-1"))
        unknown = await client.call(call16.Authorize(id_tag="NOPE"))
        start = await client.call(call16.StartTransaction(
            connector_id=1, id_tag="TAG-1", meter_start=1000, timestamp="2026-11-24T10:00:00Z"))
        mv = await client.call(call16.MeterValues(connector_id=1, transaction_id=start.transaction_id, meter_value=[
            {"timestamp": "2026-11-24T10:05:00Z", "sampledValue": [
                {"value": "1500.25", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "OCMF|{\"FV\":\"1.0\"}|{\"SD\":\"00\"}", "format": "SignedData",
                 "context": "Sample.Periodic"}]}]))
        stop = await client.call(call16.StopTransaction(
            meter_stop=2000, timestamp="2026-11-24T11:00:00Z", transaction_id=start.transaction_id,
            id_tag="TAG-1", reason="Local"))
        stop_again = await client.call(call16.StopTransaction(
            meter_stop=2000, timestamp="2026-11-24T11:00:01Z", transaction_id=start.transaction_id))
        unknown_stop = await client.call(call16.StopTransaction(
            meter_stop=5, timestamp="2026-11-24T11:00:00Z", transaction_id=987654))
        await client.call(call16.Heartbeat())
        await client.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        await client.call(call16.DataTransfer(vendor_id="com.example", message_id="x", data="y"))
        await client.call(call16.FirmwareStatusNotification(status="Idle"))
        await client.call(call16.DiagnosticsStatusNotification(status="Idle"))
        return [boot, auth, unknown, start, mv, stop, stop_again, unknown_stop]

    boot, auth, unknown, start, mv, stop, stop_again, unknown_stop = run(
        with_client(server, Client16, "CP16", "ocpp1.6", body)
    )
    assert boot.status == "Accepted"
    assert auth.id_tag_info["status"] == "Accepted"
    assert unknown.id_tag_info["status"] == "Invalid"
    assert isinstance(start.transaction_id, int)
    assert stop.id_tag_info["status"] == "Accepted"
    assert stop_again.id_tag_info is None
    assert unknown_stop.id_tag_info is None

    (session, events), = stored_sessions(server)
    assert (session.family, session.transaction_id, session.ended) == (OCPP16, str(start.transaction_id), True)
    kinds = [type(e).__name__ for e in events]
    # The signed value got its verdict; the end its assessment. The second, different stop changed
    # nothing billable; it is kept after the end.
    assert kinds == ["Opened", "Started", "Updated", "RecordVerified", "Ended", "Assessed", "Updated"]
    assert (events[6].source_action, events[6].after_end) == ("StopTransaction", True)
    assert events[3].verdict["signature"] == "invalid"  # "00" is no DER signature, whatever the key
    assert events[5].assessment["energy_billable"] is False
    assert session.ended_at.isoformat() == "2026-11-24T11:00:00+00:00"
    assert str(events[1].meter_start) == "1000" and str(events[4].meter_stop) == "2000"
    signed = events[2].meter_values[0]["sampledValue"][1]["value"]
    assert signed == 'OCMF|{"FV":"1.0"}|{"SD":"00"}'  # kept verbatim
    assert str(events[2].meter_values[0]["sampledValue"][0]["value"]) == "1500.25"

    quarantine = server.cli("quarantine", "list", "--json")
    entries = json.loads(quarantine.stdout)
    assert [(e["action"], e["transaction_id"]) for e in entries] == [("StopTransaction", "987654")]
    audit = server.cli("audit", "verify")
    assert audit.returncode == 0, audit.stdout
    assert "CP16: 26 frames verified, ok" in audit.stdout


@pytest.mark.parametrize(
    ("subprotocol", "client_cls", "calls"), [("ocpp2.0.1", Client201, call201), ("ocpp2.1", Client21, call21)]
)
def test_ocpp2_transaction_events(server: Server, subprotocol: str, client_cls: type, calls: Any) -> None:
    server.cli("charge-points", "add", "CS2")
    server.cli("id-tags", "add", "TOKEN-2")
    tx = {"transaction_id": "tx-1"}
    token = {"id_token": "TOKEN-2", "type": "ISO14443"}

    def event(event_type: str, seq_no: int, ts: str, value: str, **extra: Any) -> Any:
        return calls.TransactionEvent(
            event_type=event_type, timestamp=ts, trigger_reason="MeterValuePeriodic", seq_no=seq_no,
            transaction_info=tx, meter_value=[{"timestamp": ts, "sampledValue": [{"value": float(value)}]}],
            **extra,
        )

    async def body(client: Any) -> list[Any]:
        boot = await client.call(calls.BootNotification(
            charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"))
        auth = await client.call(calls.Authorize(id_token=token))
        started = await client.call(event("Started", 0, "2026-11-24T10:00:00Z", "100", id_token=token,
                                          evse={"id": 1, "connector_id": 1}))
        # Offline delivery: seqNo 2 arrives before seqNo 1, and Ended before the late seqNo 1.
        await client.call(event("Updated", 2, "2026-11-24T10:20:00Z", "300", offline=True))
        await client.call(event("Ended", 3, "2026-11-24T10:30:00Z", "400"))
        await client.call(event("Updated", 1, "2026-11-24T10:10:00Z", "200", offline=True))
        await client.call(event("Updated", 4, "2026-11-24T10:40:00Z", "500"))  # after the end
        await client.call(event("Updated", 2, "2026-11-24T10:20:00Z", "300", offline=True))  # resent
        await client.call(calls.Heartbeat())
        await client.call(calls.StatusNotification(
            timestamp="2026-11-24T10:00:00Z", connector_status="Available", evse_id=1, connector_id=1))
        await client.call(calls.NotifyEvent(generated_at="2026-11-24T10:00:00Z", seq_no=0, event_data=[{
            "event_id": 1, "timestamp": "2026-11-24T10:00:00Z", "trigger": "Delta", "actual_value": "x",
            "event_notification_type": "HardWiredNotification",
            "component": {"name": "C"}, "variable": {"name": "V"}}]))
        await client.call(calls.SecurityEventNotification(type="StartupOfTheDevice", timestamp="2026-11-24T10:00:00Z"))
        return [boot, auth, started]

    boot, auth, started = run(with_client(server, client_cls, "CS2", subprotocol, body))
    assert boot.status == "Accepted"
    assert auth.id_token_info["status"] == "Accepted"
    assert started.id_token_info["status"] == "Accepted"
    (session, events), = stored_sessions(server)
    assert (session.family, session.transaction_id, session.ended, session.protocol) == (
        OCPP2, "tx-1", True, subprotocol)
    summary = [(type(e).__name__, getattr(e, "seq_no", None), getattr(e, "after_end", None)) for e in events]
    assert summary == [
        ("Opened", None, None), ("Started", 0, None), ("Updated", 2, False), ("Ended", 3, None),
        ("Assessed", None, None), ("Updated", 1, False), ("Updated", 4, True),
    ]


def test_bad_input_gets_callerrors_and_is_kept(server: Server) -> None:
    server.cli("charge-points", "add", "BAD")
    frames = [
        ("not json", "-1", "FormationViolation"),
        ('{"a": 1}', "-1", "ProtocolError"),
        ('[2, "m1"]', "m1", "ProtocolError"),  # the id is readable, so it is used
        ('[2, 17, "Heartbeat", {}]', "-1", "FormationViolation"),
        ('[2, "m2", "Heartbeat", []]', "m2", "FormationViolation"),
        ('[2, "m3", "NoSuchAction", {}]', "m3", "NotImplemented"),
        ('[2, "m4", "RemoteStartTransaction", {"idTag": "x"}]', "m4", "NotSupported"),
        ('[2, "m5", "Heartbeat", {"extra": 1}]', "m5", "FormationViolation"),
        ('[2, "m6", "StartTransaction", {"connectorId": "one", "idTag": "x", "meterStart": 0, "timestamp": "2026-11-24T10:00:00Z"}]', "m6", "TypeConstraintViolation"),
        ('[2, "m7", "StartTransaction", {"connectorId": 1}]', "m7", "ProtocolError"),
        ('[2, "m8", "StartTransaction", {"connectorId": 1, "idTag": "x", "meterStart": 0, "timestamp": "not a time"}]', "m8", "TypeConstraintViolation"),
        ('[9, "m9", "Heartbeat", {}]', "m9", "ProtocolError"),
        ('[2, "m10", "Heartbeat", {}, "extra"]', "m10", "ProtocolError"),
        ('[2, "m11", "Heartbeat", {"x": "' + "A" * 300_000 + '"}]', "m11", "FormationViolation"),
        # Valid UTF-8 on the wire, but JSON escapes for a lone surrogate: no store can keep
        # that as text, so it is refused (and the raw frame, which is fine, is kept).
        ('[2, "\\ud800", "Heartbeat", {}]', "-1", "FormationViolation"),
        ('[2, "m12", "Heartbeat", {"x": "\\udfff"}]', "m12", "FormationViolation"),
        ('[2, "m13", "StartTransaction", {"connectorId": 1, "idTag": "x", "meterStart": NaN, "timestamp": "2026-11-24T10:00:00Z"}]', "m13", "FormationViolation"),
        ('[2, "m14", "Heartbeat", {"x": ' + "9" * 5000 + "}]", "m14", "FormationViolation"),
        ('[2, "m15", "Heartbeat", ' + "[" * 100_000 + "]" * 100_000 + "]", "m15", "FormationViolation"),
        ('[2, "a\\"b", "Heartbeat", []]', 'a"b', "FormationViolation"),  # the id as sent
        ('[2, "m16", "StartTransaction", {"connectorId": 1, "idTag": "x", "meterStart": 0, "timestamp": "0001-01-01T00:00:00+01:00"}]', "m16", "TypeConstraintViolation"),
        ('[2, "m17", "StartTransaction", {"connectorId": 1, "idTag": "A\\u0000B", "meterStart": 0, "timestamp": "2026-11-24T10:00:00Z"}]', "m17", None),
    ]

    async def body() -> list[list[Any]]:
        answers = []
        async with websockets.connect(f"{server.ws_url}/BAD", subprotocols=["ocpp1.6"], max_size=None) as ws:
            for text, _, _ in frames:
                await ws.send(text)
                answers.append(json.loads(await ws.recv()))
            await ws.send(b"\x00\x01binary")
            answers.append(json.loads(await ws.recv()))
            await ws.send('[2, "ok", "Heartbeat", {}]')  # the connection is still usable
            answers.append(json.loads(await ws.recv()))
        return answers

    answers = run(body())
    for (text, message_id, code), answer in zip(frames, answers):
        if code is None:
            assert answer[:2] == [3, message_id], text[:80]
        else:
            assert answer[:3] == [4, message_id, code], text[:80]
    assert answers[-2][:3] == [4, "-1", "FormationViolation"]
    assert answers[-1][0] == 3
    stored = stored_frames(server, "BAD")
    assert len(stored) == 2 * (len(frames) + 2)
    inbound = [f for f in stored if f.direction == "in"]
    assert [f.text for f in inbound[: len(frames)]] == [text for text, _, _ in frames]  # verbatim
    assert base64.b64decode(inbound[-2].data_b64) == b"\x00\x01binary"
    assert server.cli("audit", "verify").returncode == 0


def test_ocpp2_error_codes_are_spelled_for_2x(server: Server) -> None:
    server.cli("charge-points", "add", "BAD2")

    async def body() -> list[Any]:
        async with websockets.connect(f"{server.ws_url}/BAD2", subprotocols=["ocpp2.0.1"]) as ws:
            out = []
            for text in ["not json", '[2, "a", "Heartbeat", {"x": 1}]', '[7, "b"]']:
                await ws.send(text)
                out.append(json.loads(await ws.recv())[:3])
            return out

    assert run(body()) == [
        [4, "-1", "FormatViolation"], [4, "a", "FormatViolation"], [4, "b", "MessageTypeNotSupported"],
    ]


def test_a_retried_call_gets_the_same_answer_even_after_reconnecting(server: Server) -> None:
    server.cli("charge-points", "add", "RETRY")
    server.cli("id-tags", "add", "T")
    start = '[2,"same-id","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2026-11-24T10:00:00Z"}]'
    boot = '[2,"boot-1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'

    async def once() -> tuple[str, str]:
        async with websockets.connect(f"{server.ws_url}/RETRY", subprotocols=["ocpp1.6"]) as ws:
            await ws.send(boot)
            boot_answer = str(await ws.recv())
            await ws.send(start)
            return boot_answer, str(await ws.recv())

    first = run(once())
    second = run(once())
    assert first[1] == second[1]  # the StartTransaction answer, byte for byte
    # A BootNotification is answered afresh: a station that reuses message ids after a reboot
    # must not get a stale clock back.
    assert first[0] != second[0] and second[0].startswith('[3,"boot-1",{"currentTime":')
    sessions = stored_sessions(server)
    assert len(sessions) == 1 and [type(e).__name__ for e in sessions[0][1]] == ["Opened", "Started"]


def test_handshake_refusals(server: Server) -> None:
    server.cli("charge-points", "add", "LOCKED", "--password-stdin")  # no stdin: no password
    add = server.cli("charge-points", "add", "SECURE", "--password-stdin", stdin=PASSWORD + "\n")
    assert add.returncode == 0
    server.cli("charge-points", "add", "OFF")
    server.cli("charge-points", "disable", "OFF")

    async def status(path: str, protocols: list[str], headers: dict[str, str] | None = None) -> int:
        try:
            async with websockets.connect(f"{server.ws_url}/{path}", subprotocols=protocols,
                                          additional_headers=headers) as ws:
                assert ws.subprotocol in protocols
                return 101
        except websockets.InvalidStatus as exc:
            return int(exc.response.status_code)

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert run(status("LOCKED", ["ocpp1.6"])) == 101
    assert run(status("LOCKED", ["mqtt"])) == 400
    assert run(status("NOBODY", ["ocpp1.6"])) == 404
    assert run(status("OFF", ["ocpp1.6"])) == 401
    assert run(status("SECURE", ["ocpp1.6"])) == 401
    assert run(status("SECURE", ["ocpp1.6"], basic("SECURE", "wrong-password-123"))) == 401
    assert run(status("SECURE", ["ocpp1.6"], basic("OTHER", PASSWORD))) == 401
    assert run(status("SECURE", ["ocpp2.0.1"], basic("SECURE", PASSWORD))) == 101
    assert run(status("SECURE", ["ocpp1.6", "ocpp2.1"], basic("SECURE", PASSWORD))) == 101
    log = server.log_path.read_text()
    assert "refused OCPP handshake for 'NOBODY'" in log  # the attempt is logged
    assert "ERROR" not in log


def test_frames_export_filters_by_charge_point_and_time(server: Server) -> None:
    for name in ("EXP1", "EXP2"):
        server.cli("charge-points", "add", name)

    async def heartbeat(name: str) -> None:
        async with websockets.connect(f"{server.ws_url}/{name}", subprotocols=["ocpp1.6"]) as ws:
            await ws.send('[2,"h","Heartbeat",{}]')
            await ws.recv()

    run(heartbeat("EXP1"))
    run(heartbeat("EXP2"))
    everything = [json.loads(line) for line in server.cli("frames", "export").stdout.splitlines()]
    assert [(r["charge_point"], r["direction"]) for r in everything] == [
        ("EXP1", "in"), ("EXP1", "out"), ("EXP2", "in"), ("EXP2", "out")]
    assert everything[0]["text"] == '[2,"h","Heartbeat",{}]'
    one = server.cli("frames", "export", "--charge-point", "EXP2").stdout.splitlines()
    assert len(one) == 2
    later = server.cli("frames", "export", "--since", "2999-01-01T00:00:00Z").stdout
    assert later == ""


def test_security_profile_2_basic_auth_over_tls(sqlite_database: Any, tmp_path: Any) -> None:
    """`serve --ssl-certfile/--ssl-keyfile`: Basic auth over TLS (OCPP security profile 2)."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(cafile=str(cert_file))
    tls = Server(sqlite_database, tmp_path / "tls.log", ssl_context=context,
                 args=("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)))
    try:
        tls.cli("charge-points", "add", "TLS1", "--password-stdin", stdin=PASSWORD + "\n")
        auth = {"Authorization": "Basic " + base64.b64encode(f"TLS1:{PASSWORD}".encode()).decode()}

        async def heartbeat() -> Any:
            async with websockets.connect(f"{tls.ws_url}/TLS1", subprotocols=["ocpp2.0.1"],
                                          additional_headers=auth, ssl=context) as ws:
                await ws.send('[2,"h","Heartbeat",{}]')
                return json.loads(await ws.recv())

        assert run(heartbeat())[:2] == [3, "h"]
    finally:
        tls.stop()
