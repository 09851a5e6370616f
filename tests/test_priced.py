"""Priced sessions: every ended session is priced from its evidence by the server's pricer, on
both stores; re-pricings are new events pointing to the one they replace; the API shows the
breakdown per session and the totals per customer and period."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from api.services import Services
from invoices.pricer import SESSIONS, TARIFFS, Pricer, register_readings
from ledger import transactions
from ledger.committer import UnitOfWork
from ledger.frames import INBOUND
from ledger.priced import SessionPrice
from tests.test_api import Api, api, problem  # noqa: F401  (the api fixture)
from tests.test_projections import Message
from tests.test_signed import record, signer

KEY = signer("secp256r1")
T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)
ENERGY_039 = {
    "id": "TENANT", "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}],
}


def stamp(moment: datetime, status: str) -> str:
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S,000%z')} {status}"


def ocmf(begin_kwh: str, end_kwh: str, begin: datetime, end: datetime, *, time_status: str = "S",
         token: str = "CARD-A") -> str:
    """One OCMF record holding the begin and end reading, signed with the test meter's key."""
    payload = (
        '{"FV":"1.0","GI":"ABL SBC-301","GS":"808829900001","GV":"1.4p3","PG":"T1",'
        '"MV":"Phoenix Contact","MM":"EEM-350-D-MCB","MS":"BQ27400330016","MF":"1.0","IS":true,'
        f'"IL":"TRUSTED","IF":["RFID_PLAIN"],"IT":"ISO14443","ID":"{token}",'
        f'"RD":[{{"TM":"{stamp(begin, time_status)}","TX":"B","RV":{begin_kwh},"RI":"1-b:1.8.0",'
        '"RU":"kWh","RT":"AC","EF":"","ST":"G"},'
        f'{{"TM":"{stamp(end, time_status)}","TX":"E","RV":{end_kwh},"RI":"1-b:1.8.0",'
        '"RU":"kWh","RT":"AC","EF":"","ST":"G"}]}'
    ).encode()
    return record(payload, KEY.sign(payload), "secp256r1")


def signed(value: str, when: datetime) -> list[dict[str, Any]]:
    return [{"timestamp": when.isoformat(), "sampledValue": [
        {"value": value, "format": "SignedData", "context": "Transaction.End"}]}]


class Status:
    """An OCPP 1.6 StatusNotification, recorded as its frame (the pricer reads those)."""

    def __init__(self, charge_point: str, status: str, when: datetime) -> None:
        self.charge_point, self.status, self.when = charge_point, status, when

    def run(self, uow: UnitOfWork) -> None:
        payload = {"connectorId": 1, "errorCode": "NoError", "status": self.status,
                   "timestamp": self.when.isoformat()}
        uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=self.when,
            text=json.dumps([2, "s", "StatusNotification", payload]), message_id="s",
            message_type=2, action="StatusNotification",
        )

    def fail(self, uow: UnitOfWork, exc: Exception) -> None:
        raise exc


def session(
    svc: Services, *, token: str = "CARD-A", start: datetime = T0, minutes: int = 60,
    meter_start: int = 1000, meter_stop: int = 12525, signed_data: str | None = "auto",
    statuses: tuple[tuple[str, int], ...] = (), charge_point: str = "WB1",
) -> str:
    """One OCPP 1.6 session; by default with a genuine signed begin/end (1.000 to 12.525 kWh)."""
    run = svc.committer.run_now
    end = start + timedelta(minutes=minutes)
    tx, _ = run(Message(charge_point, transactions.start_transaction_16, {
        "connectorId": 1, "idTag": token, "meterStart": meter_start, "timestamp": start.isoformat()}))
    for status, minute in statuses:
        run(Status(charge_point, status, start + timedelta(minutes=minute)))
    if signed_data == "auto":
        signed_data = ocmf(f"{meter_start / 1000:.3f}", f"{meter_stop / 1000:.3f}", start, end, token=token)
    stop: dict[str, Any] = {"transactionId": tx, "meterStop": meter_stop, "timestamp": end.isoformat()}
    if signed_data is not None:
        stop["transactionData"] = signed(signed_data, end)
    run(Message(charge_point, transactions.stop_transaction_16, stop, message_id=f"stop-{tx}"))
    svc.settle_prices()
    (found,) = [s for s in svc.ledger.sessions() if s.transaction_id == str(tx) and s.charge_point == charge_point]
    return str(found.id)


def setup(api: Api, admin: dict[str, str], *, tariff: dict[str, Any] = ENERGY_039) -> dict[str, str]:
    """A wallbox with its registered meter key, tenants A and B with a card each, the tenant
    tariff for A, and a default tariff for the wallbox."""
    assert api.post("/v1/charge-points", admin, {"id": "WB1"}).status_code == 201
    assert api.post("/v1/charge-points/WB1/meter-keys", admin, {"public_key": KEY.spki.hex()}).status_code == 201
    ids: dict[str, str] = {}
    for name in ("A", "B"):
        ids[name] = api.post("/v1/customers", admin, {"name": f"Mieter {name}"}).json()["id"]
        assert api.post(f"/v1/customers/{ids[name]}/id-tags", admin, {"token": f"CARD-{name}"}).status_code == 201
    publish(api, admin, tariff)
    publish(api, admin, {**ENERGY_039, "id": "DEFAULT", "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.45", "vat": "19", "step_size": 1}]}]})
    assign(api, admin, "customer", ids["A"], tariff["id"])
    assign(api, admin, "charge-point", "WB1", "DEFAULT")
    return ids


def publish(api: Api, admin: dict[str, str], tariff: dict[str, Any], **period: str) -> Any:
    body = {"tariff": tariff, "valid_from": "2026-01-01T00:00:00Z", **period}
    created = api.post("/v1/tariffs", admin, body)
    assert created.status_code == 201, created.text
    return created.json()


def assign(api: Api, admin: dict[str, str], scope: str, key: str, tariff: str) -> None:
    created = api.post("/v1/tariff-assignments", admin, {"scope": scope, "key": key, "tariff": tariff})
    assert created.status_code == 201, created.text


def price(api: Api, headers: dict[str, str], session_id: str) -> Any:
    return api.get(f"/v1/sessions/{session_id}/price", headers, fresh="true")


def test_a_signed_session_is_priced_with_the_tenants_tariff(api: Api) -> None:
    admin = api.key("admin")
    ids = setup(api, admin)
    session_a = session(api.services, token="CARD-A")
    session_b = session(api.services, token="CARD-B", start=T0 + timedelta(hours=2),
                        meter_start=12525, meter_stop=20000)

    found = price(api, admin, session_a)
    assert found.status_code == 200, found.text
    current = found.json()["current"]
    assert current["status"] == "priced" and current["replaces"] is None
    assert current["cause"] == "the session ended" and current["by"] == "pricer"
    outcome = current["outcome"]
    assert outcome["tariff"] == {"id": "TENANT", "version": 1, "scope": "customer", "key": ids["A"]}
    assert outcome["customer_id"] == ids["A"] and outcome["energy_source"] == "signed"
    (component,) = outcome["components"]
    assert component["type"] == "ENERGY" and component["quantity"] == "11.525"
    assert component["unit_price"] == "0.39" and component["vat"] == "19"
    # 11.525 kWh x 0.39 = 4.49475 exactly; x 1.19 = 5.3487525: not rounded to cents here.
    assert component["cost"] == {"excl_vat": "4.49475", "incl_vat": "5.3487525"}
    assert outcome["total_cost"] == {"excl_vat": "4.49475", "incl_vat": "5.3487525"}
    assert outcome["charging_periods"][0]["dimensions"][0] == {"type": "ENERGY", "volume": "11.525"}

    # Tenant B has no tariff of their own: the wallbox's default applies, and says so.
    outcome_b = price(api, admin, session_b).json()["current"]["outcome"]
    assert outcome_b["tariff"]["scope"] == "charge-point" and outcome_b["tariff"]["id"] == "DEFAULT"
    assert outcome_b["total_cost"]["excl_vat"] == str(Decimal("7.475") * Decimal("0.45"))

    # A customer sees their own price only; the others' are as if they did not exist.
    tenant_a = api.key("customer", ids["A"])
    assert price(api, tenant_a, session_a).status_code == 200
    problem(price(api, tenant_a, session_b), 404, "not-found")
    listed = api.get("/v1/priced-sessions", tenant_a).json()["items"]
    assert [item["session_id"] for item in listed] == [session_a]

    # Totals per customer and period, exact.
    totals = api.get("/v1/priced-sessions/totals", api.key("accountant"),
                     **{"from": "2026-11-01T00:00:00+01:00", "to": "2026-12-01T00:00:00+01:00"}).json()
    by_customer = {t["customer_id"]: t for t in totals["totals"]}
    assert by_customer[ids["A"]] == {"customer_id": ids["A"], "currency": "EUR", "sessions": 1,
                                     "total_energy": "11.525", "total_excl_vat": "4.49475",
                                     "total_incl_vat": "5.3487525"}
    assert by_customer[ids["B"]]["total_excl_vat"] == "3.36375"
    assert totals["unpriced"] == []
    december = api.get("/v1/priced-sessions/totals", admin, **{"from": "2026-12-01T00:00:00Z"}).json()
    assert december["totals"] == []
    own = api.get("/v1/priced-sessions/totals", tenant_a).json()["totals"]
    assert [t["customer_id"] for t in own] == [ids["A"]]


def test_a_session_the_evidence_does_not_support_is_unpriced_with_the_reason(api: Api) -> None:
    admin = api.key("admin")
    setup(api, admin)
    unsigned = session(api.services, signed_data=None)
    outcome = price(api, admin, unsigned).json()["current"]
    assert outcome["status"] == "unpriced"
    assert outcome["reason"] == "energy is not billable: no signed meter data for this session"
    assert "total_cost" not in outcome["outcome"]  # never a price of 0

    forged = ocmf("1.000", "99.000", T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    forged = forged.replace('"RV":99.000', '"RV":98.000')  # the payload changed after signing
    tampered = session(api.services, start=T0 + timedelta(hours=3), signed_data=forged)
    reason = price(api, admin, tampered).json()["current"]["reason"]
    assert reason.startswith("energy is not billable") and "signature" in reason

    unknown_card = session(api.services, token="CARD-X", start=T0 + timedelta(hours=5),
                           charge_point="WB1")
    # No customer, but the wallbox's default tariff still prices it.
    assert price(api, admin, unknown_card).json()["current"]["outcome"]["tariff"]["scope"] == "charge-point"

    assert api.post("/v1/charge-points", admin, {"id": "WB2"}).status_code == 201
    api.services.registry.register_meter_key("WB2", KEY.spki.hex(), at=T0 - timedelta(days=1), by="test")
    nothing = session(api.services, charge_point="WB2", token="CARD-B", start=T0 + timedelta(hours=6))
    assert price(api, admin, nothing).json()["current"]["reason"].startswith("no tariff applies")
    unpriced = api.get("/v1/priced-sessions", admin, status="unpriced").json()["items"]
    assert {item["session_id"] for item in unpriced} == {unsigned, tampered, nothing}
    counts = api.get("/v1/priced-sessions/totals", admin).json()["unpriced"]
    assert sum(c["sessions"] for c in counts) == 3


def test_a_garage_without_calibrated_meters_prices_the_unsigned_readings(api: Api) -> None:
    admin = api.key("admin")
    setup(api, admin)
    assert api.post("/v1/sites", admin, {"code": "GARAGE", "name": "Tiefgarage", "calibrated": False}).status_code == 201
    assert api.client.patch("/v1/charge-points/WB1", headers=admin, json={"site": "GARAGE"}).status_code == 200
    found = session(api.services, signed_data=None, meter_start=500, meter_stop=2500)
    outcome = price(api, admin, found).json()["current"]["outcome"]
    assert outcome["energy_source"] == "unsigned" and outcome["calibrated"] is False
    assert outcome["total_energy"] == "2" and outcome["total_cost"]["excl_vat"] == "0.78"
    assert any("not calibrated" in note for note in outcome["notes"])


def test_a_tariff_correction_reprices_pointing_to_the_earlier_outcome(api: Api) -> None:
    admin = api.key("admin")
    setup(api, admin)
    first = session(api.services)
    later = session(api.services, start=T0 + timedelta(hours=2), meter_start=12525, meter_stop=13525)

    corrected = {**ENERGY_039, "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.35", "vat": "19", "step_size": 1}]}]}
    answer = api.post("/v1/tariffs/TENANT/versions/1/correction", admin, {"tariff": corrected})
    assert answer.status_code == 200, answer.text
    body = price(api, admin, first).json()
    old, new = body["history"]
    assert body["current"] == new
    assert old["outcome"]["tariff"]["version"] == 1 and old["outcome"]["total_cost"]["excl_vat"] == "4.49475"
    assert new["outcome"]["tariff"] == {**old["outcome"]["tariff"], "version": 2}
    assert new["replaces"] == old["version"] and new["cause"] == "tariff TENANT version 1 was corrected by version 2"
    assert new["outcome"]["total_cost"]["excl_vat"] == "4.03375"
    assert len(price(api, admin, later).json()["history"]) == 2

    # A new version for a later period changes nothing already priced.
    api.post("/v1/tariffs/TENANT/versions/2/end", admin, {"valid_until": "2026-12-01T00:00:00Z"})
    publish(api, admin, {**ENERGY_039, "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.49", "vat": "19", "step_size": 1}]}]},
        valid_from="2026-12-01T00:00:00Z")
    history = price(api, admin, first).json()["history"]
    # Ending version 2 is a correction too (version 3, same prices): recorded, same amounts.
    assert [h["outcome"]["tariff"]["version"] for h in history] == [1, 2, 3]
    assert history[-1]["outcome"]["total_cost"] == history[-2]["outcome"]["total_cost"]


def test_an_operator_reprices_with_a_reason_and_roles_are_kept(api: Api) -> None:
    admin = api.key("admin")
    ids = setup(api, admin)
    found = session(api.services)
    path = f"/v1/sessions/{found}/price"
    again = api.post(path, admin, {"reason": "tenant asked to check"})
    assert again.status_code == 200 and len(again.json()["history"]) == 1  # same outcome: nothing new

    chosen = api.post(path, admin, {"reason": "goodwill: default price", "tariff": "DEFAULT"})
    assert chosen.status_code == 200, chosen.text
    old, new = chosen.json()["history"]
    assert new["replaces"] == old["version"]
    assert new["cause"] == "re-priced by the operator: goodwill: default price"
    assert new["by"].startswith("api-key:")
    assert new["outcome"]["tariff"] == {"id": "DEFAULT", "version": 1, "scope": "chosen", "key": "DEFAULT"}

    problem(api.post(path, api.key("accountant"), {"reason": "x"}), 403, "forbidden")
    problem(api.post(path, api.key("customer", ids["A"]), {"reason": "x"}), 403, "forbidden")
    problem(api.post(path, admin, {"reason": "x", "tariff": "NOPE"}), 404, "not-found")
    problem(api.post(path, admin, {"reason": ""}), 422, "validation-error")
    problem(api.post(f"/v1/sessions/{UUID(int=1)}/price", admin, {"reason": "x"}), 404, "not-found")
    tx, _ = api.services.committer.run_now(Message("WB1", transactions.start_transaction_16, {
        "connectorId": 1, "idTag": "CARD-A", "meterStart": 0, "timestamp": T0.isoformat()}))
    (running,) = [s for s in api.services.ledger.sessions() if not s.ended]
    problem(api.post(f"/v1/sessions/{running.id}/price", admin, {"reason": "x"}), 409, "conflict")
    problem(price(api, admin, str(running.id)), 404, "not-found")


def test_pricing_again_from_the_start_adds_nothing(api: Api) -> None:
    admin = api.key("admin")
    setup(api, admin)
    found = session(api.services)
    api.post("/v1/tariffs/TENANT/versions/1/correction", admin, {"tariff": {**ENERGY_039, "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.30", "step_size": 1}]}]}})
    api.services.settle_prices()
    events = list(api.services.ledger.events.get(SessionPrice.create_id(UUID(found))))

    # A second server process (or this one after a crash) starting from position 0.
    svc = api.services
    other = Pricer(svc.registry, svc.ledger, svc.committer, svc.projections["pricing"].view,
                   priced_sessions=lambda: svc.projections["pricing"])
    svc.pricer.stop()
    for name in (SESSIONS, TARIFFS):
        with svc.projections["pricing"].view.transaction() as cur:
            cur.execute("UPDATE projection_tracking SET notification_id = 0 WHERE projection = %s", (name,))
    assert other.catch_up() == 0
    assert list(svc.ledger.events.get(SessionPrice.create_id(UUID(found)))) == events
    # vat absent after the correction: no VAT, so incl. = excl.
    assert events[-1].outcome["total_cost"] == {"excl_vat": "3.4575", "incl_vat": "3.4575"}

    with svc.reading() as cur:
        before = cur.execute("SELECT * FROM rm_priced_sessions ORDER BY session_id").fetchall()
    svc.projections["pricing"].rebuild()
    with svc.reading() as cur:
        assert cur.execute("SELECT * FROM rm_priced_sessions ORDER BY session_id").fetchall() == before


def test_a_late_signed_record_reprices_the_session(api: Api) -> None:
    """The stop came without signed data (unpriced); the meter's record arrives later by
    DataTransfer, the verdict changes, and the session is priced, pointing to the unpriced one."""
    admin = api.key("admin")
    setup(api, admin)
    found = session(api.services, signed_data=None)
    assert price(api, admin, found).json()["current"]["status"] == "unpriced"
    (tx,) = [s.transaction_id for s in api.services.ledger.sessions()]
    late = ocmf("1.000", "12.525", T0, T0 + timedelta(hours=1))
    api.services.committer.run_now(DataTransfer("WB1", {"vendorId": "x", "data": json.dumps(
        {"transactionId": int(tx), "signedMeterData": late})}))
    api.services.settle_prices()
    body = price(api, admin, found).json()
    unpriced, priced = body["history"]
    assert priced["status"] == "priced" and priced["replaces"] == unpriced["version"]
    assert priced["cause"] == "the session's Eichrecht verdict changed"


class DataTransfer(Message):
    def __init__(self, charge_point: str, payload: dict[str, Any]) -> None:
        super().__init__(charge_point, transactions.data_transfer, payload, message_id="dt")

    def run(self, uow: UnitOfWork) -> Any:
        ref = uow.frame_log(self.charge_point).record(
            direction=INBOUND, protocol="ocpp1.6", received_at=T0, text=json.dumps(self.payload)
        )
        return transactions.data_transfer(
            uow, charge_point=self.charge_point, protocol="ocpp1.6", message_id="dt",
            source_frame=ref, payload=self.payload,
        )


PARKING = {
    "id": "PARK", "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "19", "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": "6.00", "vat": "19", "step_size": 60}]},
    ],
}


def test_parking_time_comes_from_the_status_notifications(api: Api) -> None:
    """Charging for 40 minutes, then the car is full (SuspendedEV) for 20: 20 minutes parking."""
    admin = api.key("admin")
    ids = setup(api, admin, tariff=PARKING)
    assert ids
    found = session(api.services, statuses=(("Charging", 0), ("SuspendedEV", 40)))
    outcome = price(api, admin, found).json()["current"]["outcome"]
    by_type = {c["type"]: c for c in outcome["components"]}
    assert by_type["PARKING_TIME"]["quantity"] == "1200"  # seconds, as billed
    assert Decimal(by_type["PARKING_TIME"]["cost"]["excl_vat"]) == Decimal("2.00")
    assert outcome["total_parking_time"].startswith("0.3333")  # hours
    assert Decimal(outcome["total_energy"]) == Decimal("11.525")


def test_register_readings_of_either_ocpp_version() -> None:
    readings = register_readings([
        {"timestamp": "2026-11-24T10:00:00Z", "sampledValue": [
            {"value": "1500.5"},  # 1.6 default: the import register in Wh
            {"value": "2.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register", "phase": "L1"},
            {"value": "7", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "OCMF|{}|{}", "format": "SignedData"},
        ]},
        {"timestamp": "2026-11-24T10:01:00Z", "sampledValue": [
            {"value": Decimal("1.6"), "unitOfMeasure": {"unit": "kWh", "multiplier": 3}},  # 2.x
            {"value": "x"},
        ]},
        {"timestamp": "garbage", "sampledValue": [{"value": "1"}]},
    ])
    assert readings == [
        (datetime(2026, 11, 24, 10, tzinfo=UTC), Decimal("1500.5")),
        (datetime(2026, 11, 24, 10, 1, tzinfo=UTC), Decimal("1.6E+6")),
    ]
