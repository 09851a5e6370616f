"""The HTTP API beside live OCPP traffic on a real server process: the monitoring view, a
session's evidence, and a disabled charge point losing its connection."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ocpp.v16 import ChargePoint as Client16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as Client201
from ocpp.v201 import call as call201

from api.services import Services
from api.settings import Settings
from tests.conftest import Server
from tests.test_ocpp_e2e import run, with_client

pytestmark = pytest.mark.e2e


def admin(server: Server) -> httpx.Client:
    token = server.cli("keys", "create", "--role", "admin").stdout.strip()
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})


def test_monitoring_view_and_session_evidence_follow_the_frames(server: Server) -> None:
    http = admin(server)
    assert http.post("/v1/charge-points", json={"id": "WB16"}).status_code == 201
    assert http.post("/v1/charge-points", json={"id": "WB201"}).status_code == 201
    customer = http.post("/v1/customers", json={"name": "Mieterin"}).json()["id"]
    assert http.post(f"/v1/customers/{customer}/id-tags", json={"token": "CARD"}).status_code == 201

    async def station16(client: Client16) -> Any:
        await client.call(call16.BootNotification(
            charge_point_model="Wallbox X", charge_point_vendor="ACME", firmware_version="1.2.3",
            charge_point_serial_number="SN-1"))
        await client.call(call16.StatusNotification(connector_id=1, error_code="GroundFailure",
                                                    status="Faulted", vendor_error_code="E42"))
        await client.call(call16.StatusNotification(connector_id=2, error_code="NoError",
                                                    status="Available"))
        await client.call(call16.Heartbeat())
        start = await client.call(call16.StartTransaction(
            connector_id=2, id_tag="CARD", meter_start=100, timestamp="2026-11-24T10:00:00Z"))
        await client.call(call16.StopTransaction(
            meter_stop=350, timestamp="2026-11-24T11:00:00Z", transaction_id=start.transaction_id))
        # While connected, the view says so.
        live = http.get("/v1/charge-points/WB16", params={"fresh": "true"}).json()
        assert live["status"]["connected"] is True and live["status"]["protocol"] == "ocpp1.6"
        return start.transaction_id

    async def station201(client: Client201) -> None:
        await client.call(call201.BootNotification(
            charging_station={"model": "Pro", "vendor_name": "Other", "firmware_version": "9"},
            reason="PowerUp"))
        await client.call(call201.StatusNotification(
            timestamp="2026-11-24T10:00:00Z", connector_status="Occupied", evse_id=1, connector_id=1))

    transaction_id = run(with_client(server, Client16, "WB16", "ocpp1.6", station16))
    run(with_client(server, Client201, "WB201", "ocpp2.0.1", station201))

    points = {p["id"]: p for p in http.get("/v1/charge-points", params={"fresh": "true"}).json()["items"]}
    wb16 = points["WB16"]["status"]
    assert wb16["connected"] is False and wb16["disconnected_at"] is not None
    assert (wb16["vendor"], wb16["model"], wb16["firmware_version"], wb16["serial_number"]) == (
        "ACME", "Wallbox X", "1.2.3", "SN-1")
    assert wb16["last_heartbeat_at"] is not None and wb16["last_boot_at"] is not None
    assert wb16["last_error"] == "GroundFailure (E42)"
    assert [(c["connector_id"], c["status"], c["error_code"]) for c in wb16["connectors"]] == [
        (1, "Faulted", "GroundFailure"), (2, "Available", "NoError")]
    assert wb16["frames_in"] == wb16["frames_out"] == 6
    wb201 = points["WB201"]["status"]
    assert (wb201["vendor"], wb201["boot_reason"], wb201["protocol"]) == ("Other", "PowerUp", "ocpp2.0.1")
    assert [(c["evse_id"], c["status"]) for c in wb201["connectors"]] == [(1, "Occupied")]

    sessions = http.get("/v1/sessions", params={"customer_id": customer}).json()["items"]
    assert [(s["transaction_id"], s["energy_wh"]) for s in sessions] == [(str(transaction_id), "250")]
    detail = http.get(f"/v1/sessions/{sessions[0]['id']}").json()
    actions = [(f["direction"], json.loads(f["text"])[0]) for f in detail["frames"]]
    assert actions == [("in", 2), ("out", 3), ("in", 2), ("out", 3)]  # Start, its answer, Stop, its answer
    assert json.loads(detail["frames"][0]["text"])[2] == "StartTransaction"
    export = http.get("/v1/charge-points/WB16/frames").text.splitlines()
    assert len(export) == 12 and json.loads(export[0])["prev_hash"] == "0" * 64

    metrics = http.get("/metrics").text
    assert 'ladebuch_frames_total{direction="in"} 8.0' in metrics

    # Rebuilt from event 0 by the CLI while the server runs, every read model has the same rows.
    before = read_models(server)
    rebuilt = server.cli("projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert read_models(server) == before


def read_models(server: Server) -> dict[str, list[tuple[str, ...]]]:
    services = Services.build(Settings(database_url=server.database.url))
    try:
        tables = [t for runner in services.projections.values() for t in runner.view.tables]
        with services.reading() as cur:
            return {
                table: sorted(tuple(map(str, row)) for row in cur.execute(f"SELECT * FROM {table}").fetchall())
                for table in tables
            }
    finally:
        services.close()


def test_disabling_a_charge_point_closes_its_connection(server: Server) -> None:
    http = admin(server)
    assert http.post("/v1/charge-points", json={"id": "WB1"}).status_code == 201

    async def station(client: Client16) -> None:
        await client.call(call16.Heartbeat())
        changed = http.patch("/v1/charge-points/WB1", json={"disabled": True})
        assert changed.status_code == 200 and changed.json()["disabled"] is True
        await client._connection.wait_closed()
        assert client._connection.close_code == 1008

    run(with_client(server, Client16, "WB1", "ocpp1.6", station))
