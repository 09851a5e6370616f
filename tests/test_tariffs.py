"""Tariffs over the HTTP API and the command line, on both stores: versions as events, their
validity periods, corrections, the calculator, and what bad input gets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.test_api import Api, api, problem  # noqa: F401  (the api fixture)

ENERGY = {
    "id": "TENANT-1",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.32", "vat": "19", "step_size": 1}]}],
}
SESSION = {
    "start_date_time": "2026-11-24T10:00:00Z",
    "end_date_time": "2026-11-24T11:00:00Z",
    "time_zone": "Europe/Berlin",
    "charging_periods": [
        {"start_date_time": "2026-11-24T10:00:00Z", "dimensions": [{"type": "ENERGY", "volume": "10.5"}]}
    ],
}


def raw_post(api: Api, path: str, headers: dict[str, str], text: str) -> Any:
    return api.client.post(path, headers={**headers, "Content-Type": "application/json"}, content=text)


def test_publish_versions_overlap_correct_and_end(api: Api) -> None:
    admin, auditor = api.key("admin"), api.key("auditor")
    first = api.post("/v1/tariffs", admin, {"tariff": ENERGY, "valid_from": "2026-01-01T00:00:00+01:00"})
    assert first.status_code == 201, first.text
    (version,) = first.json()["versions"]
    assert version["version"] == 1 and version["valid_until"] is None
    assert version["valid_from"] == "2025-12-31T23:00:00Z"
    assert version["tariff"]["elements"][0]["price_components"][0]["price"] == "0.32"
    # The same again answers the same version; another price for an overlapping period is a 409.
    assert api.post("/v1/tariffs", admin, {"tariff": ENERGY, "valid_from": "2026-01-01T00:00:00+01:00"}).json() == first.json()
    dearer = json.loads(json.dumps(ENERGY))
    dearer["elements"][0]["price_components"][0]["price"] = "0.35"
    clash = problem(api.post("/v1/tariffs", admin, {"tariff": dearer, "valid_from": "2026-07-01T00:00:00Z"}), 409, "conflict")
    assert "overlapping validity" in clash["detail"]

    # End version 1 at July; then the dearer one from July is a second period.
    ended = api.post("/v1/tariffs/TENANT-1/versions/1/end", admin, {"valid_until": "2026-07-01T00:00:00Z"})
    assert ended.status_code == 200, ended.text
    versions = ended.json()["versions"]
    assert [(v["version"], v["corrects"], v["superseded_by"]) for v in versions] == [(1, None, 2), (2, 1, None)]
    published = api.post("/v1/tariffs", admin, {"tariff": dearer, "valid_from": "2026-07-01T00:00:00Z"})
    assert published.status_code == 201, published.text
    assert published.json()["versions"][-1]["version"] == 3

    # A correction keeps the period and supersedes the corrected version; both stay.
    fixed = json.loads(json.dumps(dearer))
    fixed["elements"][0]["price_components"][0]["price"] = "0.34"
    corrected = api.post("/v1/tariffs/TENANT-1/versions/3/correction", admin, {"tariff": fixed})
    assert corrected.status_code == 200, corrected.text
    last = corrected.json()["versions"]
    assert (last[2]["superseded_by"], last[3]["corrects"], last[3]["valid_from"]) == (4, 3, "2026-07-01T00:00:00Z")
    problem(api.post("/v1/tariffs/TENANT-1/versions/3/correction", admin, {"tariff": fixed}), 409, "conflict")

    listed = api.get("/v1/tariffs", auditor, fresh="true").json()["items"]
    assert [(t["code"], t["versions"]) for t in listed] == [("TENANT-1", 4)]
    assert api.get("/v1/tariffs/TENANT-1", auditor).json()["versions"] == last
    problem(api.post("/v1/tariffs", auditor, {"tariff": ENERGY}), 403, "forbidden")
    problem(api.get("/v1/tariffs/NOPE", auditor), 404, "not-found")


def test_tariff_list_pages_by_cursor(api: Api) -> None:
    admin = api.key("admin")
    for code in ("A", "B", "C"):
        assert api.post("/v1/tariffs", admin, {"tariff": {**ENERGY, "id": code}}).status_code == 201
    page = api.get("/v1/tariffs", admin, limit=2).json()
    assert [t["code"] for t in page["items"]] == ["A", "B"]
    rest = api.get("/v1/tariffs", admin, limit=2, cursor=page["next_cursor"]).json()
    assert [t["code"] for t in rest["items"]] == ["C"] and rest["next_cursor"] is None
    problem(api.get("/v1/tariffs", admin, cursor="garbage"), 400, "bad-cursor")


def test_bad_tariffs_are_refused_naming_the_field(api: Api) -> None:
    admin = api.key("admin")
    negative = json.loads(json.dumps(ENERGY))
    negative["elements"][0]["price_components"][0]["price"] = "-0.10"
    refused = problem(api.post("/v1/tariffs", admin, {"tariff": negative}), 422, "invalid-value")
    assert refused["detail"].startswith("elements[0].price_components[0].price")
    unknown = json.loads(json.dumps(ENERGY))
    unknown["elements"][0]["price_components"][0]["type"] = "KWH"
    assert "elements[0].price_components[0].type" in problem(
        api.post("/v1/tariffs", admin, {"tariff": unknown}), 422, "invalid-value")["detail"]
    # 0.1 as a JSON number is not exact in binary: refused; as a string it is taken as written.
    text = json.dumps({"tariff": ENERGY}).replace('"price": "0.32"', '"price": 0.1')
    inexact = problem(raw_post(api, "/v1/tariffs", admin, text), 422, "invalid-value")
    assert "elements[0].price_components[0].price" in inexact["detail"]
    exact = json.dumps({"tariff": ENERGY}).replace('"price": "0.32"', '"price": 0.25')
    assert raw_post(api, "/v1/tariffs", admin, exact).status_code == 201
    problem(raw_post(api, "/v1/tariffs", admin, "{not json"), 400, "malformed-json")
    problem(raw_post(api, "/v1/tariffs", admin, '{"tariff": {}, "extra": 1}'), 422, "validation-error")
    problem(raw_post(api, "/v1/tariffs", admin, "[]"), 422, "validation-error")
    bad_time = {"tariff": {**ENERGY, "id": "T2"}, "valid_from": "2026-01-01T00:00:00"}
    problem(api.post("/v1/tariffs", admin, bad_time), 422, "validation-error")
    backwards = {"tariff": {**ENERGY, "id": "T3"}, "valid_from": "2026-02-01T00:00:00Z",
                 "valid_until": "2026-01-01T00:00:00Z"}
    problem(api.post("/v1/tariffs", admin, backwards), 422, "invalid-value")
    assert api.client.post("/v1/tariffs", headers=admin, content=b"x").status_code == 415


def test_quote_prices_exactly_and_names_bad_fields(api: Api) -> None:
    accountant = api.key("accountant")
    answer = api.post("/v1/tariffs/quote", accountant, {"tariff": ENERGY, "session": SESSION})
    assert answer.status_code == 200, answer.text
    totals = answer.json()
    assert totals["total_energy"] == "10.5"
    assert totals["total_cost"] == {"excl_vat": "3.36", "incl_vat": "3.9984"}  # exact, not rounded
    bad = {**SESSION, "time_zone": "Mars/Olympus"}
    assert problem(api.post("/v1/tariffs/quote", accountant, {"tariff": ENERGY, "session": bad}),
                   422, "invalid-value")["detail"].startswith("session.time_zone")
    customer = api.key("customer", customer_id=api.post(
        "/v1/customers", api.key("admin"), {"name": "Mieter"}).json()["id"])
    problem(api.post("/v1/tariffs/quote", customer, {"tariff": ENERGY, "session": SESSION}), 403, "forbidden")


def test_cli_price(tmp_path: Path, database: Any) -> None:
    tariff, session = tmp_path / "tariff.json", tmp_path / "session.json"
    tariff.write_text(json.dumps(ENERGY))
    session.write_text(json.dumps(SESSION))
    env = {"LADEBUCH_DATABASE_URL": database.url, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "api.cli", "price", "--tariff", str(tariff), "--cdr", str(session)],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["total_cost"]["excl_vat"] == "3.36"
    tariff.write_text(json.dumps(ENERGY).replace('"0.32"', '"-1"'))
    refused = subprocess.run([sys.executable, "-m", "api.cli", "price", "--tariff", str(tariff), "--cdr", str(session)],
                             capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent)
    assert refused.returncode == 1 and "tariff.elements[0].price_components[0].price" in refused.stderr


def test_sites_groups_and_which_tariff_applies(api: Api) -> None:
    admin, accountant = api.key("admin"), api.key("accountant")
    for code in ("SITE", "GROUP", "TENANT", "POINT"):
        assert api.post("/v1/tariffs", admin, {"tariff": {**ENERGY, "id": code}}).status_code == 201
    site = api.post("/v1/sites", admin, {"code": "HAUS-1", "name": "Haus 1", "time_zone": "Europe/Berlin"})
    assert site.status_code == 201, site.text
    assert site.json()["calibrated"] is True
    problem(api.post("/v1/sites", admin, {"code": "X", "name": "X", "time_zone": "Mars/Olympus"}), 422, "invalid-value")
    problem(api.post("/v1/sites", admin, {"code": "HAUS-1", "name": "again"}), 409, "already-exists")
    garage = api.client.patch("/v1/sites/HAUS-1", headers=admin, json={"calibrated": False})
    assert garage.status_code == 200 and garage.json()["calibrated"] is False
    api.post("/v1/charge-points", admin, {"id": "WB1"})
    moved = api.client.patch("/v1/charge-points/WB1", headers=admin, json={"site": "HAUS-1"})
    assert moved.status_code == 200 and moved.json()["site"] == "HAUS-1", moved.text
    problem(api.client.patch("/v1/charge-points/WB1", headers=admin, json={"site": "NOPE"}), 404, "not-found")
    tenant = api.post("/v1/customers", admin, {"name": "Mieterin"}).json()["id"]
    grouped = api.client.patch(f"/v1/customers/{tenant}", headers=admin, json={"group": "Mieter"})
    assert grouped.status_code == 200 and grouped.json()["group"] == "Mieter", grouped.text

    def resolve(at: str) -> Any:
        answer = api.get("/v1/tariff-assignments/resolve", accountant, charge_point="WB1", customer_id=tenant, at=at)
        assert answer.status_code == 200, answer.text
        return answer.json()["tariff"]

    assert resolve("2026-03-01T12:00:00Z") is None  # nothing assigned: no tariff, never 0
    def assign(scope: str, key: str, tariff: str, **period: str) -> Any:
        return api.post("/v1/tariff-assignments", admin, {"scope": scope, "key": key, "tariff": tariff, **period})

    assert assign("site", "HAUS-1", "SITE").status_code == 201
    assert resolve("2026-03-01T12:00:00Z") == "SITE"
    assert assign("charge-point", "WB1", "POINT", valid_from="2026-02-01T00:00:00Z").status_code == 201
    assert resolve("2026-01-15T12:00:00Z") == "SITE" and resolve("2026-03-01T12:00:00Z") == "POINT"
    assert assign("group", "Mieter", "GROUP").status_code == 201
    assert resolve("2026-03-01T12:00:00Z") == "GROUP"
    # Any spelling of the customer's id is the same customer.
    periods = assign("customer", tenant.upper(), "TENANT", valid_from="2026-04-01T00:00:00+02:00")
    assert periods.status_code == 201 and len(periods.json()) == 1
    assert resolve("2026-03-31T21:59:59Z") == "GROUP" and resolve("2026-03-31T22:00:00Z") == "TENANT"
    # The tenant moves out at the end of June: from then the group's tariff again.
    ended = api.post("/v1/tariff-assignments/end", admin, {"scope": "customer", "key": tenant, "valid_until": "2026-07-01T00:00:00+02:00"})
    assert ended.status_code == 200 and ended.json()[0]["valid_until"] == "2026-06-30T22:00:00Z", ended.text
    assert resolve("2026-07-01T12:00:00Z") == "GROUP"

    clash = assign("customer", tenant, "SITE", valid_from="2026-06-01T00:00:00Z")
    assert "overlapping validity" in problem(clash, 409, "conflict")["detail"]
    assert assign("customer", tenant, "TENANT", valid_from="2026-04-01T00:00:00+02:00", valid_until="2026-07-01T00:00:00+02:00").status_code == 201  # the same period again: nothing new
    problem(assign("customer", tenant, "NOPE"), 404, "not-found")
    problem(assign("customer", "not-a-uuid", "SITE"), 404, "not-found")
    problem(assign("planet", "x", "SITE"), 422, "validation-error")

    listed = api.get("/v1/tariff-assignments", accountant, fresh="true").json()["items"]
    assert [(a["scope"], a["tariff"]) for a in listed] == [
        ("site", "SITE"), ("charge-point", "POINT"), ("group", "GROUP"), ("customer", "TENANT")]
    assert listed[-1]["valid_until"] == "2026-06-30T22:00:00Z"
    only = api.get("/v1/tariff-assignments", accountant, scope="group").json()["items"]
    assert [a["key"] for a in only] == ["Mieter"]
    sites = api.get("/v1/sites", accountant).json()["items"]
    assert [(s["code"], s["calibrated"]) for s in sites] == [("HAUS-1", False)]
    # The registry read model rebuilt from event 0 holds the same rows.
    runner = api.services.projections["registry"]

    def dump() -> dict[str, list[tuple[str, ...]]]:
        with api.services.reading() as cur:
            return {
                table: sorted(tuple(map(str, row)) for row in cur.execute(f"SELECT * FROM {table}").fetchall())
                for table in runner.view.tables
            }

    live = dump()
    assert live["rm_sites"] and live["rm_tariff_assignments"] and live["rm_tariff_versions"]
    runner.stop()
    runner.rebuild()
    assert dump() == live
