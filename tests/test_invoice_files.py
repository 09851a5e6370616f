"""An issued invoice's files over HTTP (the Factur-X PDF, the CII and XRechnung XML, the
evidence ZIP) archived as first rendered, and the exports (DATEV, CSVs, OCPI CDR), on both
stores, under the API's roles."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from pypdf import PdfReader

from invoices import einvoice, files
from invoices.exports import read_datev
from tests.test_api import Api, api, problem  # noqa: F401  (the api fixture)
from tests.test_invoicing import ADDRESS, landlord, tenants
from tests.test_priced import T0, session

FLEET = {"kind": "company", "vat_id": "DE987654321", "email": "fleet@example.org",
         "buyer_reference": "04011000-12345-34", "language": "en"}
LOCATION = {
    "id": "LOC1", "name": "Sonnenhof", "address": "Sonnenweg 1", "city": "Berlin",
    "postal_code": "10115", "country": "DEU",
    "coordinates": {"latitude": "52.530000", "longitude": "13.380000"},
    "evse_id": "DE*LBU*E1*1", "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE",
}


def issued(api: Api) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """Tenant A (a consumer) and tenant B (a business) with one session each in November; both
    invoices issued on 1 December. Answers the tenants' ids and the two invoices by tenant."""
    ids = tenants(api)
    landlord(api, email="abrechnung@sonnenhof.example", phone="+49 30 1234567")
    admin = api.key("admin")
    assert api.client.patch(f"/v1/customers/{ids['B']}", headers=admin, json=FLEET).status_code == 200
    session(api.services, token="CARD-A")
    session(api.services, token="CARD-B", start=T0 + timedelta(hours=3), meter_start=12525, meter_stop=14525)
    drafts = api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-11"}).json()["drafts"]
    invoices = [api.post(f"/v1/invoices/{d}/issue", admin, {"issue_date": "2026-12-01"}).json() for d in drafts]
    by_tenant = {("A" if i["customer_id"] == ids["A"] else "B"): i for i in invoices}
    return ids, by_tenant["A"], by_tenant["B"]


def test_the_pdf_carries_its_e_invoice_and_the_evidence_and_never_changes(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, invoice, _ = issued(api)
    path = f"/v1/invoices/{invoice['id']}"
    owner = api.key("customer", ids["A"])
    got = api.get(f"{path}/invoice.pdf", owner)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == f'attachment; filename="{invoice["number"]}.pdf"'
    reader = PdfReader(io.BytesIO(got.content))
    attached = {name: content[0] for name, content in reader.attachments.items()}
    session_id = invoice["sessions"][0]
    assert sorted(attached) == ["factur-x.xml", f"transparency-{session_id}.xml"]
    assert einvoice.validate(attached["factur-x.xml"]) == []
    assert attached[f"transparency-{session_id}.xml"] == api.get(
        f"/v1/sessions/{session_id}/transparency.xml", owner).content
    specs = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    described = {str(specs[i]): specs[i + 1].get_object() for i in range(0, len(specs), 2)}
    assert described[f"transparency-{session_id}.xml"]["/Desc"] == (
        f"Transparenzdatei (S.A.F.E.) zum Ladevorgang {session_id}")
    assert described[f"transparency-{session_id}.xml"]["/AFRelationship"] == "/Supplement"
    assert described["factur-x.xml"]["/AFRelationship"] == "/Data"
    xml = api.get(f"{path}/invoice.xml", owner)
    assert xml.status_code == 200 and xml.content == attached["factur-x.xml"]
    assert b"<ram:DuePayableAmount>" in xml.content and invoice["total_gross"].encode() in xml.content

    # Archived as first rendered: a later download gives the same bytes even when rendering
    # would now give others (a library upgrade), and nothing renders again.
    def broken(*_: Any) -> files.File:
        raise AssertionError("rendered again")

    monkeypatch.setattr(files, "render", broken)
    again = api.get(f"{path}/invoice.pdf", api.key("accountant"))
    assert again.content == got.content and again.headers["etag"] == got.headers["etag"]
    with api.services.reading() as cur:
        rows = cur.execute("SELECT kind, sha256 FROM invoice_files WHERE invoice_id = %s",
                           (invoice["id"],)).fetchall()
    assert sorted(kind for kind, _ in rows) == ["evidence", "pdf", "xml"]  # all at the first download


def test_evidence_zip_and_xrechnung(api: Api) -> None:
    ids, consumer, business = issued(api)
    admin = api.key("admin")
    bundle = api.get(f"/v1/invoices/{consumer['id']}/evidence.zip", admin)
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        names = archive.namelist()
        session_id = consumer["sessions"][0]
        assert names == ["README.txt", f"transparency-{session_id}.xml"]
        assert "S.A.F.E. Transparenzsoftware" in archive.read("README.txt").decode()
        transparency = archive.read(names[1])
    assert transparency == api.get(f"/v1/sessions/{session_id}/transparency.xml", admin).content
    assert b"OCMF|" in transparency

    problem(api.get(f"/v1/invoices/{consumer['id']}/xrechnung.xml", admin), 404, "not-found")
    xrechnung = api.get(f"/v1/invoices/{business['id']}/xrechnung.xml", api.key("customer", ids["B"]))
    assert xrechnung.status_code == 200, xrechnung.text
    assert einvoice.validate(xrechnung.content, profile=einvoice.XRECHNUNG) == []
    assert b"04011000-12345-34" in xrechnung.content
    assert business["document"]["customer"]["buyer_reference"] == "04011000-12345-34"


def test_file_problems_and_roles(api: Api) -> None:
    ids = tenants(api)
    landlord(api, tax_number="27/123/45678")
    admin = api.key("admin")
    session(api.services, token="CARD-A")
    draft = api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-11"}).json()["drafts"][0]
    problem(api.get(f"/v1/invoices/{draft}/invoice.pdf", admin), 409, "conflict")
    # A customer does not see drafts at all; a business customer without buyer reference has
    # no XRechnung (a 409 naming what is missing).
    problem(api.get(f"/v1/invoices/{draft}/invoice.pdf", api.key("customer", ids["A"])), 404, "not-found")
    api.client.patch(f"/v1/customers/{ids['A']}", headers=admin, json={"kind": "company"})
    issued_ = api.post(f"/v1/invoices/{draft}/issue", admin, {"issue_date": "2026-12-01"}).json()
    path = f"/v1/invoices/{issued_['id']}"
    missing = problem(api.get(f"{path}/xrechnung.xml", admin), 409, "conflict")
    assert "buyer_reference" in missing["detail"] and "issuer.phone" in missing["detail"]
    problem(api.client.patch("/v1/issuers/SONNENHOF", headers=admin, json={"phone": "call me"}), 422, "invalid-value")
    patched = api.client.patch("/v1/issuers/SONNENHOF", headers=admin, json={"phone": "+49 30 1234567"})
    assert patched.json()["phone"] == "+49 30 1234567"
    problem(api.get(f"{path}/invoice.pdf", api.key("customer", ids["B"])), 404, "not-found")
    problem(api.get(f"/v1/invoices/{UUID(int=7)}/invoice.pdf", admin), 404, "not-found")
    # The Stornorechnung has its files too, as a credit note.
    storno = api.post(f"{path}/cancel", admin, {"reason": "falsch", "issue_date": "2026-12-02"}).json()
    xml = api.get(f"/v1/invoices/{storno['id']}/invoice.xml", admin)
    assert xml.status_code == 200 and b"<ram:TypeCode>381</ram:TypeCode>" in xml.content


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def test_exports_for_the_accountant(api: Api) -> None:
    ids, consumer, business = issued(api)
    admin, accountant = api.key("admin"), api.key("accountant")
    storno = api.post(f"/v1/invoices/{consumer['id']}/cancel", admin,
                      {"reason": "falsch", "issue_date": "2026-12-02"}).json()
    period = {"issuer": "SONNENHOF", "period": "2026-12"}
    datev = api.get("/v1/exports/datev", accountant, **period, consultant_number=1001, client_number=1)
    assert datev.status_code == 200, datev.text
    assert datev.headers["content-type"] == "text/csv; charset=windows-1252"
    header, bookings = read_datev(datev.content)
    assert header["Formatversion"] == "13" and header["Datum vom"] == "20261201"
    first, second = sorted((consumer, business), key=lambda i: i["number"])
    assert [(b["Belegfeld 1"], b["Soll/Haben-Kennzeichen"], b["Gegenkonto (ohne BU-Schlüssel)"])
            for b in bookings] == [
        (first["number"], "S", "8400"), (second["number"], "S", "8400"), (storno["number"], "H", "8400"),
    ]
    assert bookings[0]["Umsatz (ohne Soll/Haben-Kz)"] == first["total_gross"].replace(".", ",")
    skr04 = api.get("/v1/exports/datev", accountant, **period, consultant_number=1001, client_number=1, chart="skr04")
    assert {b["Gegenkonto (ohne BU-Schlüssel)"] for b in read_datev(skr04.content)[1]} == {"4400"}
    problem(api.get("/v1/exports/datev", accountant, **period, consultant_number=5, client_number=1), 422, "invalid-value")
    problem(api.get("/v1/exports/datev", accountant, issuer="NOBODY", period="2026-12",
                    consultant_number=1001, client_number=1), 404, "not-found")

    listed = csv_rows(api.get("/v1/exports/invoices.csv", accountant, **period).content)
    assert [(r["number"], r["kind"], r["gross"]) for r in listed] == [
        (first["number"], "invoice", first["total_gross"]),
        (second["number"], "invoice", second["total_gross"]),
        (storno["number"], "cancellation", "-" + consumer["total_gross"]),
    ]
    lines = csv_rows(api.get("/v1/exports/invoice-lines.csv", accountant, **period).content)
    assert [r["invoice_number"] for r in lines] == [first["number"], second["number"], storno["number"]]
    assert {r["energy_kwh"] for r in lines} == {"11.525", "2.000", "-11.525"}  # as the meter shows it
    assert csv_rows(api.get("/v1/exports/invoices.csv", accountant, issuer="SONNENHOF", period="2026-11").content) == []

    priced = csv_rows(api.get("/v1/exports/priced-sessions.csv", accountant).content)
    by_customer = {r["customer_id"]: r for r in priced}
    assert by_customer[ids["A"]]["invoice_number"] == ""  # its invoice is cancelled
    assert by_customer[ids["B"]]["invoice_number"] == business["number"]
    assert by_customer[ids["A"]]["net"] == "4.49475" and by_customer[ids["A"]]["status"] == "priced"
    assert Decimal(by_customer[ids["B"]]["gross"]) > 0

    tenant = api.key("customer", ids["A"])
    problem(api.get("/v1/exports/invoices.csv", tenant, **period), 403, "forbidden")
    problem(api.get("/v1/exports/invoices.csv", accountant, issuer="SONNENHOF", period="2026-13x"), 422, "validation-error")


def test_ocpi_cdr_of_a_priced_session(api: Api) -> None:
    ids, consumer, business = issued(api)
    accountant = api.key("accountant")
    body = {"country_code": "DE", "party_id": "LBU", "location": LOCATION}
    invoiced = api.post(f"/v1/sessions/{business['sessions'][0]}/cdr", accountant, body)
    assert invoiced.status_code == 200, invoiced.text
    cdr = json.loads(invoiced.content, parse_float=Decimal)
    assert cdr["invoice_reference_id"] == business["number"] and cdr["cdr_token"]["uid"] == "CARD-B"
    assert cdr["total_cost"]["excl_vat"] == Decimal(business["total_net"])
    assert [v["nature"] for v in cdr["signed_data"]["signed_values"]] == ["Start", "End"]
    assert cdr["signed_data"]["encoding_method"] == "OCMF"

    # Cancelled: the session is invoiced no more; its CDR comes from the price record.
    api.post(f"/v1/invoices/{consumer['id']}/cancel", api.key("admin"), {"reason": "x"})
    session_id = consumer["sessions"][0]
    loose = json.loads(api.post(f"/v1/sessions/{session_id}/cdr", accountant, body).content, parse_float=Decimal)
    assert loose["id"] == session_id and "invoice_reference_id" not in loose
    assert loose["total_energy"] == Decimal("11.525") and loose["currency"] == "EUR"

    bad = problem(api.post(f"/v1/sessions/{session_id}/cdr", accountant,
                           {**body, "location": {"id": "LOC1"}}), 422, "invalid-value")
    assert "location" in bad["detail"]
    problem(api.post(f"/v1/sessions/{UUID(int=9)}/cdr", accountant, body), 404, "not-found")
    problem(api.post(f"/v1/sessions/{session_id}/cdr", api.key("customer", ids["A"]), body), 403, "forbidden")
    assert date.fromisoformat(loose["start_date_time"][:10]) == T0.date()


def test_a_draft_shows_a_preview_of_what_issuing_would_print(api: Api) -> None:
    ids = tenants(api)
    api.services.registry.register_issuer(
        "SONNENHOF", name="Hausverwaltung Sonnenhof GmbH", address=ADDRESS,
        ranges={"default": "LB-{year}-{seq:06d}"},
    )
    admin = api.key("admin")
    session(api.services, token="CARD-A")
    draft = api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-11"}).json()["drafts"][0]
    blocked = api.get(f"/v1/invoices/{draft}", admin).json()
    assert blocked["preview"] is None and "vat_id or tax_number" in blocked["preview_problem"]

    api.client.patch("/v1/issuers/SONNENHOF", headers=admin, json={"vat_id": "DE123456789"})
    shown = api.get(f"/v1/invoices/{draft}", admin).json()
    assert shown["preview_problem"] is None and shown["document"] is None
    preview = shown["preview"]
    assert preview["number"] == "" and preview["customer"]["customer_id"] == ids["A"]
    assert [line["energy_kwh"] for line in preview["lines"]] == ["11.525"]
    issued_ = api.post(f"/v1/invoices/{draft}/issue", admin, {}).json()
    assert issued_["document"]["lines"] == preview["lines"]
    assert issued_["document"]["total_gross"] == preview["total_gross"]
    assert api.get(f"/v1/invoices/{draft}", admin).json()["preview"] is None
