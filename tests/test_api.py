"""The HTTP API on both stores: roles and tenant isolation, pagination, filters, problems."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_api
from api.services import Services
from api.settings import Settings
from ledger import transactions
from ledger.frames import FrameRef
from ledger.store import Database
from tests.test_projections import Message, charge

PROBLEM = "application/problem+json"


@dataclass
class Api:
    client: TestClient
    services: Services

    def key(self, role: str, customer_id: str | None = None, **kwargs: Any) -> dict[str, str]:
        issued = self.services.registry.issue_api_key(
            name=role, role=role, customer_id=UUID(customer_id) if customer_id else None, **kwargs
        )
        return {"Authorization": f"Bearer {issued.token}"}

    def get(self, path: str, headers: dict[str, str], **params: Any) -> Any:
        return self.client.get(path, headers=headers, params=params)

    def post(self, path: str, headers: dict[str, str], body: Any) -> Any:
        return self.client.post(path, headers=headers, json=body)


@pytest.fixture
def api(database: Database) -> Iterator[Api]:
    app = create_api(Settings(database_url=database.url, max_body_bytes=64 * 1024))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, app.state.services)


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:ladebuch:problem:{slug}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def make_tenants(api: Api, admin: dict[str, str]) -> dict[str, Any]:
    """Two tenants with a card each and a session each on one wallbox."""
    assert api.post("/v1/charge-points", admin, {"id": "WB1"}).status_code == 201
    ids = {}
    for name, token in (("A", "CARD-A"), ("B", "CARD-B")):
        created = api.post("/v1/customers", admin, {"name": f"Mieter {name}"})
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
        tag = api.post(f"/v1/customers/{ids[name]}/id-tags", admin, {"token": token, "kind": "rfid"})
        assert tag.status_code == 201, tag.text
        ids[f"tag{name}"] = tag.json()["id"]
    charge(api.services, "WB1", 0, ["500"], 1000, id_tag="CARD-A")
    charge(api.services, "WB1", 1000, ["1500"], 3000, id_tag="CARD-B")
    api.services.wait_for_read_models()
    sessions = api.get("/v1/sessions", admin).json()["items"]
    for session in sessions:
        owner = "A" if session["id_token"] == "CARD-A" else "B"
        assert session["customer_id"] == ids[owner]
        ids[f"session{owner}"] = session["id"]
    return ids


def test_each_role_sees_what_it_may_and_a_customer_only_its_own(api: Api) -> None:
    admin = api.key("admin")
    ids = make_tenants(api, admin)
    tenant_a = api.key("customer", ids["A"])

    # A customer sees its own sessions, customer record and cards ...
    own = api.get("/v1/sessions", tenant_a).json()["items"]
    assert [s["id"] for s in own] == [ids["sessionA"]]
    assert api.get(f"/v1/sessions/{ids['sessionA']}", tenant_a).status_code == 200
    assert [c["id"] for c in api.get("/v1/customers", tenant_a).json()["items"]] == [ids["A"]]
    assert api.get(f"/v1/customers/{ids['A']}", tenant_a).status_code == 200
    assert [t["id"] for t in api.get("/v1/id-tags", tenant_a).json()["items"]] == [ids["tagA"]]
    # ... and the other tenant's look exactly like ids that do not exist: 404, never 403.
    for path in (f"/v1/sessions/{ids['sessionB']}", f"/v1/customers/{ids['B']}",
                 f"/v1/id-tags/{ids['tagB']}", f"/v1/sessions/{ids['sessionB']}/frames",
                 f"/v1/sessions/{uuid4()}", f"/v1/customers/{uuid4()}"):
        problem(api.get(path, tenant_a), 404, "not-found")
    assert api.get("/v1/sessions", tenant_a, customer_id=ids["B"]).json()["items"] == []
    assert api.get("/v1/id-tags", tenant_a, customer_id=ids["B"]).json()["items"] == []
    # Resources a customer has no business with at all, and every change: 403.
    for path in ("/v1/charge-points", "/v1/quarantine", "/v1/api-keys", "/v1/charge-points/WB1/frames"):
        problem(api.get(path, tenant_a), 403, "forbidden")
    problem(api.post("/v1/customers", tenant_a, {"name": "X"}), 403, "forbidden")

    # The accountant reads customers and sessions, not the station side, and changes nothing.
    accountant = api.key("accountant")
    assert len(api.get("/v1/sessions", accountant).json()["items"]) == 2
    assert len(api.get("/v1/customers", accountant).json()["items"]) == 2
    assert api.get(f"/v1/sessions/{ids['sessionB']}", accountant).status_code == 200
    for path in ("/v1/charge-points", "/v1/quarantine", "/v1/api-keys"):
        problem(api.get(path, accountant), 403, "forbidden")
    problem(api.post("/v1/customers", accountant, {"name": "X"}), 403, "forbidden")

    # The auditor reads everything and changes nothing.
    auditor = api.key("auditor")
    for path in ("/v1/charge-points", "/v1/quarantine", "/v1/customers", "/v1/sessions",
                 "/v1/charge-points/WB1/frames"):
        assert api.get(path, auditor).status_code == 200, path
    problem(api.post("/v1/charge-points", auditor, {"id": "CP9"}), 403, "forbidden")
    problem(api.client.patch(f"/v1/customers/{ids['A']}", headers=auditor, json={"name": "Y"}),
            403, "forbidden")
    problem(api.get("/v1/api-keys", auditor), 403, "forbidden")


def test_keys_are_shown_once_stored_hashed_revocable_and_expire(api: Api) -> None:
    admin = api.key("admin")
    created = api.post("/v1/api-keys", admin, {"name": "auditor Jane", "role": "auditor"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    jane = {"Authorization": f"Bearer {token}"}
    assert api.get("/v1/sessions", jane).status_code == 200
    listed = api.get("/v1/api-keys", admin).json()["items"]
    assert all("token" not in k and "hash" not in json.dumps(k) for k in listed)
    with api.services.reading() as cur:
        stored = cur.execute("SELECT * FROM rm_api_keys").fetchall()
    assert token not in json.dumps([list(map(str, row)) for row in stored])

    assert api.client.delete(f"/v1/api-keys/{created.json()['id']}", headers=admin).status_code == 204
    problem(api.get("/v1/sessions", jane), 401, "unauthorized")
    expired = api.key("auditor", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    problem(api.get("/v1/sessions", expired), 401, "unauthorized")
    for header in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {token}x"},
                   {"Authorization": "Basic YTpi"}):
        response = problem(api.client.get("/v1/sessions", headers=header), 401, "unauthorized")
        assert response["instance"] == "/v1/sessions"
    # A customer key needs a customer, and only a customer key has one.
    problem(api.post("/v1/api-keys", admin, {"role": "customer"}), 422, "invalid-value")
    problem(api.post("/v1/api-keys", admin, {"role": "customer", "customer_id": str(uuid4())}),
            404, "not-found")


def test_lists_page_with_cursors_and_filter_by_time_charge_point_and_customer(api: Api) -> None:
    admin = api.key("admin")
    for i in range(7):
        assert api.post("/v1/customers", admin, {"name": f"C{i}"}).status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get("/v1/customers", admin, **params).json()
        seen += [c["name"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"C{i}" for i in range(7)] and pages == 3

    for hour in range(5):
        charge(api.services, f"CP{hour % 2}", 0, [], 10, id_tag="T",
               started=f"2026-11-24T{10 + hour:02d}:00:00Z")
    api.services.wait_for_read_models()
    newest_first = api.get("/v1/sessions", admin, limit=2).json()
    assert [s["started_at"] for s in newest_first["items"]] == [
        "2026-11-24T14:00:00Z", "2026-11-24T13:00:00Z"]
    following = api.get("/v1/sessions", admin, limit=2, cursor=newest_first["next_cursor"]).json()
    assert [s["started_at"][11:13] for s in following["items"]] == ["12", "11"]
    window = api.get("/v1/sessions", admin, **{"from": "2026-11-24T12:00:00+01:00",
                                               "to": "2026-11-24T13:00:00Z"}).json()["items"]
    assert [s["started_at"][11:13] for s in window] == ["12", "11"]  # 11:00Z is 12:00+01:00
    cp1 = api.get("/v1/sessions", admin, charge_point="CP1").json()["items"]
    assert {s["charge_point"] for s in cp1} == {"CP1"} and len(cp1) == 2
    assert api.get("/v1/sessions", admin, customer_id=str(uuid4())).json()["items"] == []

    # Cursors are opaque, bound to their list, and checked.
    customers_cursor = api.get("/v1/customers", admin, limit=1).json()["next_cursor"]
    problem(api.get("/v1/sessions", admin, cursor=customers_cursor), 400, "bad-cursor")
    forged = base64.urlsafe_b64encode(b'["sessions","1; DROP TABLE x"]').decode()
    for bad in ("x", "%%%", forged, "W10", "bnVsbA"):
        problem(api.get("/v1/sessions", admin, cursor=bad), 400, "bad-cursor")
    problem(api.get("/v1/sessions", admin, **{"from": "2026-11-24T10:00:00"}), 422,
            "validation-error")
    problem(api.get("/v1/sessions", admin, **{"from": "2026-11-24T10:00:00Z", "to": "2026-11-24T10:00:00Z"}),
            422, "bad-time-range")
    problem(api.get("/v1/sessions", admin, limit=0), 422, "validation-error")
    problem(api.get("/v1/sessions", admin, limit=501), 422, "validation-error")
    # Valid ISO 8601, but before year 1 or after 9999 in UTC (schemathesis found the first).
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        problem(api.get("/v1/priced-sessions", admin, to=edge), 422, "validation-error")
        problem(api.get("/v1/sessions", admin, **{"from": edge}), 422, "validation-error")


def test_bad_input_gets_problems_never_500(api: Api) -> None:
    admin = api.key("admin") | {"content-type": "application/json"}
    client = api.client
    problem(client.post("/v1/customers", headers=admin, content=b'{"name": '), 400, "malformed-json")
    problem(client.post("/v1/customers", headers=admin, content=b"\xff\xfe"), 400, "malformed-json")
    problem(client.post("/v1/customers", headers=admin, json={"name": "A", "shoe_size": 44}),
            422, "validation-error")
    problem(client.post("/v1/customers", headers=admin, json={"name": 5}), 422, "validation-error")
    problem(client.post("/v1/customers", headers=admin, json=[1, 2]), 422, "validation-error")
    problem(client.post("/v1/customers", headers=admin, json={"name": "A", "vat_id": "123"}),
            422, "invalid-value")
    problem(client.post("/v1/customers", headers=admin, json={"name": "A", "email": "no-at"}),
            422, "invalid-value")
    huge = json.dumps({"name": "A" * 100_000}).encode()
    problem(client.post("/v1/customers", headers=admin, content=huge), 413, "body-too-large")

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    chunked = {k: v for k, v in admin.items()}
    problem(client.post("/v1/customers", headers=chunked, content=chunks()), 413, "body-too-large")
    problem(client.get("/v1/sessions/not-a-uuid", headers=admin), 422, "validation-error")
    problem(client.get("/v1/nothing-here", headers=admin), 404, "not-found")
    problem(client.delete("/v1/sessions", headers=admin), 405, "method-not-allowed")
    problem(client.post("/v1/charge-points", headers=admin, json={"id": "has:colon"}), 422,
            "validation-error")
    assert client.post("/v1/charge-points", headers=admin, json={"id": "CP1"}).status_code == 201
    problem(client.post("/v1/charge-points", headers=admin, json={"id": "CP1"}), 409, "already-exists")
    problem(client.post("/v1/charge-points", headers=admin, json={"id": "CP2", "password": "short"}),
            422, "validation-error")


def test_charge_point_register_update_disable_and_rotate_password(api: Api) -> None:
    admin = api.key("admin")
    created = api.post("/v1/charge-points", admin, {"id": "WB-7", "label": "Stellplatz 7"})
    assert created.status_code == 201
    assert created.json()["label"] == "Stellplatz 7" and created.json()["has_password"] is False
    changed = api.client.patch("/v1/charge-points/WB-7", headers=admin,
                               json={"location": "Tiefgarage", "disabled": True})
    assert changed.status_code == 200, changed.text
    assert changed.json()["disabled"] is True and changed.json()["location"] == "Tiefgarage"
    assert api.services.registry.charge_point("WB-7").disabled
    rotated = api.post("/v1/charge-points/WB-7/password", admin, {})
    password = rotated.json()["password"]
    assert 16 <= len(password) <= 40
    from ledger.registry import verify_password

    assert verify_password(password, api.services.registry.charge_point("WB-7").password_hash or "")
    chosen = api.post("/v1/charge-points/WB-7/password", admin, {"password": "x" * 20})
    assert chosen.json() == {"password": "x" * 20}
    assert api.get("/v1/charge-points/WB-7", admin).json()["has_password"] is True
    problem(api.get("/v1/charge-points/NOPE", admin), 404, "not-found")
    problem(api.client.patch("/v1/charge-points/NOPE", headers=admin, json={"label": "x"}),
            404, "not-found")
    listed = api.get("/v1/charge-points", admin, connected="false").json()["items"]
    assert [c["id"] for c in listed] == ["WB-7"]
    assert api.get("/v1/charge-points", admin, connected="true").json()["items"] == []


def test_id_tag_periods_decide_the_customer_and_authorize(api: Api) -> None:
    admin = api.key("admin")
    a = api.post("/v1/customers", admin, {"name": "Vormieter"}).json()["id"]
    b = api.post("/v1/customers", admin, {"name": "Nachmieter"}).json()["id"]
    moved = "2026-11-24T12:00:00Z"
    first = api.post(f"/v1/customers/{a}/id-tags", admin,
                     {"token": "CARD", "valid_from": "2026-01-01T00:00:00Z", "valid_until": moved})
    assert first.status_code == 201
    again = api.post(f"/v1/customers/{a}/id-tags", admin,
                     {"token": "CARD", "valid_from": "2026-01-01T00:00:00Z", "valid_until": moved})
    assert again.json() == first.json()  # a retried request changes nothing
    problem(api.post(f"/v1/customers/{b}/id-tags", admin,
                     {"token": "CARD", "valid_from": "2026-11-01T00:00:00Z"}), 409, "conflict")
    problem(api.post(f"/v1/customers/{b}/id-tags", admin,
                     {"token": "CARD", "valid_from": moved, "valid_until": "2026-01-01T00:00:00Z"}),
            422, "invalid-value")
    assert api.post(f"/v1/customers/{b}/id-tags", admin, {"token": "CARD", "valid_from": moved}).status_code == 201
    charge(api.services, "WB1", 0, [], 10, id_tag="CARD", started="2026-11-24T11:59:59Z")
    charge(api.services, "WB1", 10, [], 20, id_tag="CARD", started=moved)
    api.services.wait_for_read_models()
    owners = [s["customer_id"] for s in api.get("/v1/sessions", admin).json()["items"]]
    assert owners == [b, a]  # newest first: after the move it is B's

    registry = api.services.registry
    assert registry.authorization_status("CARD", datetime(2025, 12, 31, tzinfo=UTC)) == "Invalid"
    assert registry.authorization_status("CARD", datetime(2026, 6, 1, tzinfo=UTC)) == "Accepted"
    tag_id = first.json()["id"]
    ended = api.client.patch(f"/v1/id-tags/{tag_id}", headers=admin,
                             json={"end_assignment_at": "2026-12-31T00:00:00Z"})
    assert ended.status_code == 200, ended.text
    assert registry.authorization_status("CARD", datetime(2027, 1, 1, tzinfo=UTC)) == "Expired"
    blocked = api.client.patch(f"/v1/id-tags/{tag_id}", headers=admin, json={"blocked": True})
    assert blocked.json()["blocked"] is True
    assert registry.authorization_status("CARD", datetime(2026, 6, 1, tzinfo=UTC)) == "Blocked"
    # Tenant B sees the card, but only its own period of it.
    tenant_b = api.key("customer", b)
    periods = api.get(f"/v1/id-tags/{tag_id}", tenant_b).json()["assignments"]
    assert [p["customer_id"] for p in periods] == [b]


def test_quarantine_is_listed_and_resolved_by_a_new_event(api: Api) -> None:
    admin = api.key("admin")

    class Quarantine:
        def run(self, uow: Any) -> Any:
            ref = uow.frame_log("CP1").record(direction="in", protocol="ocpp1.6",
                                              received_at=datetime.now(UTC), text="[2,\"m\"]")
            return transactions.quarantine(
                uow, charge_point="CP1", protocol="ocpp1.6", action="StopTransaction",
                message_id="m", transaction_id="99", reason="unknown transaction",
                payload={"transactionId": 99}, source_frame=FrameRef(ref.charge_point, ref.seq, ref.hash),
            ).id

        def fail(self, uow: Any, exc: Exception) -> Any:
            raise exc

    entry_id = api.services.committer.run_now(Quarantine())
    api.services.wait_for_read_models()
    listed = api.get("/v1/quarantine", admin, resolved="false").json()["items"]
    assert [e["id"] for e in listed] == [str(entry_id)] and listed[0]["reason"] == "unknown transaction"
    assert api.get("/v1/quarantine", admin, **{"from": "2999-01-01T00:00:00Z"}).json()["items"] == []
    path = f"/v1/quarantine/{entry_id}/resolution"
    resolved = api.post(path, admin, {"resolution": "dismissed", "note": "test frame"})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["resolved"] is True and body["resolution"] == "dismissed"
    assert body["resolved_by"].startswith("api-key:") and body["reason"] == "unknown transaction"
    assert api.post(path, admin, {"resolution": "dismissed"}).status_code == 200  # same again
    problem(api.post(path, admin, {"resolution": "accepted"}), 409, "conflict")
    problem(api.post(path, admin, {"resolution": "deleted"}), 422, "validation-error")
    problem(api.post(f"/v1/quarantine/{uuid4()}/resolution", admin, {"resolution": "dismissed"}),
            404, "not-found")
    events = api.services.ledger.session_events(entry_id)
    assert [type(e).__name__ for e in events] == ["Quarantined", "Resolved"]  # the original stays
    assert api.get("/v1/quarantine", admin, resolved="false").json()["items"] == []


def test_session_detail_has_meter_values_and_frames_and_health_and_metrics(api: Api) -> None:
    admin = api.key("admin")
    charge(api.services, "WB1", 1000, ["1500.5"], 2500)
    api.services.wait_for_read_models()
    session = api.get("/v1/sessions", admin).json()["items"][0]
    detail = api.get(f"/v1/sessions/{session['id']}", admin).json()
    assert detail["energy_wh"] == "1500" and detail["meter_start_wh"] == "1000"
    assert [e["kind"] for e in detail["events"]] == ["Opened", "Started", "Updated", "Ended", "Assessed"]
    eichrecht = detail["eichrecht"]
    assert eichrecht["records"] == [] and eichrecht["key_alerts"] == []
    assert eichrecht["assessment"]["energy_billable"] is False
    assert eichrecht["assessment"]["reasons"] == ["no signed meter data for this session"]
    assert detail["events"][2]["meter_values"][0]["sampledValue"][0]["value"] == "1500.5"
    assert [f["seq"] for f in detail["frames"]] == [2, 3, 4]
    assert [e["frame"]["seq"] for e in detail["events"][1:4]] == [2, 3, 4]
    lines = api.client.get(f"/v1/sessions/{session['id']}/frames", headers=admin)
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["seq"] for line in lines.text.splitlines()] == [2, 3, 4]

    assert api.client.get("/health").json()["status"] == "ok"
    ready = api.client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["read_models"]["sessions"]["lag"] == 0
    metrics = api.client.get("/metrics").text
    assert 'ladebuch_sessions{state="ended"} 1.0' in metrics
    assert 'ladebuch_projection_lag_events{projection="sessions"} 0.0' in metrics
    assert 'route="/v1/sessions/{session_id}"' in metrics  # the template, never the id


def test_every_read_model_rebuilds_to_the_same_rows(api: Api) -> None:
    admin = api.key("admin")
    make_tenants(api, admin)
    api.client.patch("/v1/charge-points/WB1", headers=admin, json={"label": "x"})
    api.services.wait_for_read_models()
    tables = {name: runner.view.tables for name, runner in api.services.projections.items()}

    def dump() -> dict[str, list[tuple[Any, ...]]]:
        with api.services.reading() as cur:
            return {
                table: sorted((tuple(map(str, row)) for row in cur.execute(f"SELECT * FROM {table}").fetchall()))
                for names in tables.values() for table in names
            }

    live = dump()
    assert all(live[t] for t in ("rm_sessions", "rm_customers", "rm_tag_assignments", "rm_api_keys", "rm_session_eichrecht"))
    for runner in api.services.projections.values():
        runner.stop()
        runner.rebuild()
    assert dump() == live


def test_a_rendered_detail_follows_new_events_and_a_new_customer(api: Api) -> None:
    admin = api.key("admin")
    tx = charge(api.services, "WB1", 0, ["5"], 10, id_tag="LATE")
    api.services.wait_for_read_models()
    session_id = api.get("/v1/sessions", admin).json()["items"][0]["id"]
    first = api.get(f"/v1/sessions/{session_id}", admin).json()
    assert first["customer_id"] is None and len(first["events"]) == 5
    customer = api.post("/v1/customers", admin, {"name": "Spät"}).json()["id"]
    api.post(f"/v1/customers/{customer}/id-tags", admin, {"token": "LATE"})
    assert api.get(f"/v1/sessions/{session_id}", admin).json()["customer_id"] == customer
    api.services.committer.run_now(Message("WB1", transactions.meter_values_16, {
        "connectorId": 1, "transactionId": tx,
        "meterValue": [{"timestamp": "2026-11-24T12:00:00Z", "sampledValue": [{"value": "11"}]}]}))
    later = api.get(f"/v1/sessions/{session_id}", admin, fresh="true").json()
    assert len(later["events"]) == 6 and later["events"][-1]["after_end"] is True
