"""Invoice runs, issuing and cancelling on both stores: gap-free numbers per range (also under
concurrent issuing on PostgreSQL), a session on at most one valid invoice, Stornorechnungen, and
bad requests that change nothing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from invoices import issuing
from invoices.files import PDF, XML
from invoices.document import Invoice as Document
from ledger.application import build_applications
from ledger.errors import Conflict, InvalidValue
from ledger.invoicing import Invoice, NumberRange, SessionClaim, check_number_format
from tests.test_api import Api, api, problem  # noqa: F401  (the api fixture)
from tests.conftest import run_cli
from tests.test_priced import T0, session, setup

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
AT = datetime(2026, 12, 1, 9, tzinfo=UTC)
ADDRESS = {"street": "Sonnenweg 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}


def landlord(api: Api, **extra: Any) -> None:
    api.services.registry.register_issuer(
        "SONNENHOF", name="Hausverwaltung Sonnenhof GmbH", address=ADDRESS, vat_id="DE123456789",
        iban="DE02120300000000202051", ranges={"default": "LB-{year}-{seq:06d}"}, **extra,
    )


def tenants(api: Api) -> dict[str, str]:
    ids = setup(api, api.key("admin"))
    for name in ("A", "B"):
        api.services.registry.update_customer(
            UUID(ids[name]), billing_address={**ADDRESS, "street": f"Sonnenweg 1, Wohnung {name}"}
        )
    return ids


def run(api: Api) -> issuing.RunResult:
    api.services.settle_prices()
    api.services.wait_for_read_models()
    return issuing.run(api.services.registry, api.services.projections["invoices"].view,
                       issuer="SONNENHOF", period_start=NOVEMBER[0], period_end=NOVEMBER[1])


def issue(api: Api, invoice_id: UUID, when: date = date(2026, 12, 1)) -> Invoice:
    return issuing.issue(api.services.registry, api.services.ledger, invoice_id, issue_date=when,
                         at=AT, by="test", base_url="https://ladebuch.example")


def test_a_monthly_run_drafts_per_customer_and_issuing_freezes_a_numbered_document(api: Api) -> None:
    ids = tenants(api)
    landlord(api)
    session(api.services, token="CARD-A")
    session(api.services, token="CARD-A", start=T0 + timedelta(hours=3), meter_start=12525, meter_stop=14525)
    session(api.services, token="CARD-B", start=T0 + timedelta(hours=6), meter_start=14525, meter_stop=20000)
    december = session(api.services, token="CARD-A", start=datetime(2026, 11, 30, 23, 30, tzinfo=UTC),
                       meter_start=20000, meter_stop=21000)  # ends Dec 1st, 00:30 in Berlin

    result = run(api)
    assert result.sessions == 3 and len(result.drafts) == 2 and result.without_customer == []
    drafts = {api.services.registry.get_or_none(Invoice, d).customer_id: d for d in result.drafts}
    assert december not in api.services.registry.get_or_none(Invoice, drafts[ids["A"]]).sessions

    first = issue(api, drafts[ids["A"]])
    second = issue(api, drafts[ids["B"]])
    assert (first.number, second.number) == ("LB-2026-000001", "LB-2026-000002")
    document = Document.from_json(first.document)
    assert document.customer.name == "Mieter A" and document.issuer.vat_id == "DE123456789"
    assert [line.energy_kwh for line in document.lines] == [Decimal("11.525"), Decimal("2.000")]
    # Line nets rounded half-up to the cent; VAT once on the summed net of the rate.
    assert [line.net for line in document.lines] == [Decimal("4.49"), Decimal("0.78")]
    (vat,) = document.vat
    assert (vat.rate, vat.net, vat.tax) == (Decimal("19"), Decimal("5.27"), Decimal("1.00"))
    assert document.total_gross == Decimal("6.27") and document.small_amount
    line = document.lines[0]
    assert line.evidence.begin_signed and line.evidence.begin_signed.startswith("OCMF|")
    assert line.evidence.public_key and line.evidence.transparency_xml
    assert line.evidence.url.endswith(f"/v1/sessions/{line.session_id}/transparency.xml")

    with pytest.raises(Conflict, match="nothing to invoice"):
        run(api)  # everything in November is invoiced
    with pytest.raises(Conflict, match="issued as LB-2026-000001"):
        issue(api, first.id)


def test_a_session_is_on_at_most_one_valid_invoice_and_a_storno_releases_it(api: Api) -> None:
    tenants(api)
    landlord(api)
    found = session(api.services, token="CARD-A")
    (draft,) = run(api).drafts
    registry = api.services.registry
    rival = Invoice.draft(issuer="SONNENHOF", customer_id=registry.get_or_none(Invoice, draft).customer_id,
                          period_start=NOVEMBER[0], period_end=NOVEMBER[1], sessions=[found], run=None)
    registry.save(rival)
    issued = issue(api, draft)
    with pytest.raises(Conflict, match="already on invoice LB-2026-000001"):
        issue(api, rival.id)
    # The refused issue took no number.
    assert registry.get_or_none(NumberRange, NumberRange.create_id("SONNENHOF", "default", "2026")).assigned == 1

    storno = issuing.cancel(registry, issued.id, issue_date=date(2026, 12, 5), at=AT, by="test",
                            reason="wrong tenant")
    assert storno.number == "LB-2026-000002" and storno.kind == "cancellation"
    negated = Document.from_json(storno.document)
    original = Document.from_json(issued.document)
    assert negated.cancels == original.number and negated.total_gross == -original.total_gross
    assert negated.lines[0].net == -original.lines[0].net
    assert registry.get_or_none(Invoice, issued.id).state == "cancelled"
    assert registry.get_or_none(SessionClaim, SessionClaim.create_id(found)).invoice is None
    with pytest.raises(Conflict, match="already cancelled"):
        issuing.cancel(registry, issued.id, issue_date=date(2026, 12, 5), at=AT, by="t", reason="x")
    with pytest.raises(Conflict, match="cannot be cancelled"):
        issuing.cancel(registry, storno.id, issue_date=date(2026, 12, 5), at=AT, by="t", reason="x")

    # Invoiceable again: the rival draft may now be issued, with the next number.
    again = issue(api, rival.id, date(2026, 12, 6))
    assert again.number == "LB-2026-000003"
    with pytest.raises(Conflict, match="only a draft"):
        issuing.discard(registry, again.id, "no")


def test_bad_requests_change_nothing(api: Api) -> None:
    ids = tenants(api)
    landlord(api)
    registry = api.services.registry
    session(api.services, token="CARD-A")
    (draft,) = run(api).drafts
    registry.update_customer(UUID(ids["A"]), billing_address={})
    with pytest.raises(InvalidValue, match="no address to invoice"):
        issue(api, draft)
    registry.update_customer(UUID(ids["A"]), billing_address=ADDRESS)
    registry.update_issuer("SONNENHOF", vat_id="", address={"street": "Sonnenweg 1"})
    with pytest.raises(InvalidValue, match="vat_id or tax_number"):
        issue(api, draft)
    assert registry.get_or_none(NumberRange, NumberRange.create_id("SONNENHOF", "default", "2026")) is None
    assert registry.get_or_none(Invoice, draft).state == "draft"
    registry.update_issuer("SONNENHOF", tax_number="27/123/45678", address=ADDRESS)
    assert issue(api, draft).number == "LB-2026-000001"
    with pytest.raises(InvalidValue, match="number format"):
        check_number_format("LB-{month}-{seq}")
    with pytest.raises(InvalidValue, match="number format"):
        check_number_format("LB-no-sequence")
    with pytest.raises(InvalidValue, match="36 characters"):
        check_number_format("X" * 40 + "{seq}")


def test_a_small_business_shows_no_vat_and_prints_the_note(api: Api) -> None:
    tenants(api)
    landlord(api, small_business=True)
    session(api.services, token="CARD-A")
    (draft,) = run(api).drafts
    document = Document.from_json(issue(api, draft).document)
    (vat,) = document.vat
    assert vat.rate is None and vat.tax == 0 and document.total_gross == document.total_net
    assert document.notes == ("Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",)


def test_concurrent_issuing_keeps_numbers_gap_free_and_unique(api: Api) -> None:
    """Four issuers at once, each with its own applications (as separate server processes
    have): every number from 1 to N exactly once, each session claimed once."""
    if api.services.database.backend != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (SQLite serialises writers by design)")
    ids = tenants(api)
    landlord(api)
    sessions = [session(api.services, token="CARD-A", start=T0 + timedelta(minutes=90 * i),
                        meter_start=1000 + 1000 * i, meter_stop=2000 + 1000 * i, minutes=60)
                for i in range(12)]
    registry = api.services.registry
    drafts = []
    for found in sessions:
        draft = Invoice.draft(issuer="SONNENHOF", customer_id=ids["A"], period_start=NOVEMBER[0],
                              period_end=NOVEMBER[1], sessions=[found], run=None)
        registry.save(draft)
        drafts.append(draft.id)
    numbers: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(mine: list[UUID]) -> None:
        other_registry, other_ledger = build_applications(api.services.database)
        try:
            start.wait()
            for invoice_id in mine:
                issued = issuing.issue(other_registry, other_ledger, invoice_id,
                                       issue_date=date(2026, 12, 1), at=AT, by="t")
                numbers.append(str(issued.number))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            other_registry.close()
            other_ledger.close()

    threads = [threading.Thread(target=worker, args=(drafts[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == [f"LB-2026-{n:06d}" for n in range(1, 13)]
    claimed = [registry.get_or_none(SessionClaim, SessionClaim.create_id(s)).number for s in sessions]
    assert sorted(claimed) == sorted(numbers)


def test_invoices_over_http_with_roles_and_problems(api: Api) -> None:
    ids = tenants(api)
    admin = api.key("admin")
    body = {"code": "SONNENHOF", "name": "Hausverwaltung Sonnenhof GmbH", "address": ADDRESS,
            "ranges": {"default": "LB-{year}-{seq:06d}"}}
    created = api.post("/v1/issuers", admin, body)
    assert created.status_code == 201, created.text
    assert created.json()["missing_for_invoices"] == ["vat_id or tax_number"]
    problem(api.post("/v1/issuers", admin, body), 409, "already-exists")
    problem(api.post("/v1/issuers", admin, {**body, "code": "X", "ranges": {"d": "{month}"}}), 422, "invalid-value")
    # Invoice periods are months in the issuer's time zone: an unknown one is refused (schemathesis
    # found an issuer "0" that made every run of it fail).
    problem(api.post("/v1/issuers", admin, {**body, "code": "X", "time_zone": "0"}), 422, "invalid-value")
    problem(api.client.patch("/v1/issuers/SONNENHOF", headers=admin, json={"time_zone": "Mars/Olympus"}),
            422, "invalid-value")
    session(api.services, token="CARD-A")
    session(api.services, token="CARD-B", start=T0 + timedelta(hours=3), meter_start=12525, meter_stop=14525)

    problem(api.post("/v1/invoice-runs", api.key("accountant"), {"issuer": "SONNENHOF", "period": "2026-11"}), 403, "forbidden")
    problem(api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-10"}), 409, "conflict")
    ran = api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-11"})
    assert ran.status_code == 201, ran.text
    drafts = ran.json()["drafts"]
    assert len(drafts) == 2 and ran.json()["sessions"] == 2
    # Drafts are the operator's: a second run finds nothing new, a customer sees none.
    problem(api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-11"}), 409, "conflict")
    tenant_a = api.key("customer", ids["A"])
    assert api.get("/v1/invoices", tenant_a).json()["items"] == []

    first = f"/v1/invoices/{drafts[0]}"
    problem(api.post(f"{first}/issue", admin, {"issue_date": "2026-12-01"}), 422, "invalid-value")  # no tax id yet
    assert api.client.patch("/v1/issuers/SONNENHOF", headers=admin, json={"tax_number": "27/123/45678"}).status_code == 200
    issued = api.post(f"{first}/issue", admin, {"issue_date": "2026-12-01"})
    assert issued.status_code == 200, issued.text
    invoice = issued.json()
    assert invoice["number"] == "LB-2026-000001" and invoice["state"] == "issued"
    assert invoice["document"]["issuer"]["tax_number"] == "27/123/45678"
    problem(api.post(f"{first}/issue", admin, {}), 409, "conflict")
    problem(api.post(f"{first}/discard", admin, {"reason": "x"}), 409, "conflict")

    owner = invoice["customer_id"]
    other = ids["B"] if owner == ids["A"] else ids["A"]
    mine = api.get("/v1/invoices", api.key("customer", owner)).json()["items"]
    assert [item["number"] for item in mine] == ["LB-2026-000001"]
    problem(api.get(first, api.key("customer", other)), 404, "not-found")
    assert api.get(first, api.key("accountant")).json()["total_gross"] == invoice["total_gross"]

    storno = api.post(f"{first}/cancel", admin, {"reason": "falscher Mieter", "issue_date": "2026-12-02"})
    assert storno.status_code == 201, storno.text
    assert storno.json()["kind"] == "cancellation" and storno.json()["number"] == "LB-2026-000002"
    assert storno.json()["document"]["total_gross"] == "-" + invoice["total_gross"]
    problem(api.post(f"{first}/cancel", admin, {"reason": "again"}), 409, "conflict")
    listed = api.get("/v1/invoices", admin, state="cancelled").json()["items"]
    assert [item["cancelled_by"] for item in listed] == ["LB-2026-000002"]
    discarded = api.post(f"/v1/invoices/{drafts[1]}/discard", admin, {"reason": "later"})
    assert discarded.json()["state"] == "discarded"
    # Both sessions are invoiceable again (one cancelled, one discarded).
    assert api.post("/v1/invoice-runs", admin, {"issuer": "SONNENHOF", "period": "2026-11"}).json()["sessions"] == 2


def test_cli_invoice_run_issues_with_a_progress_bar(api: Api) -> None:
    tenants(api)
    landlord(api)
    session(api.services, token="CARD-A")
    session(api.services, token="CARD-B", start=T0 + timedelta(hours=3), meter_start=12525, meter_stop=14525)
    files_alone = run_cli(api.services.database, "invoices", "run", "--issuer", "SONNENHOF",
                          "--period", "2026-11", "--files")
    assert files_alone.returncode == 2 and "--issue" in files_alone.stderr
    done = run_cli(api.services.database, "invoices", "run", "--issuer", "SONNENHOF", "--period", "2026-11",
                   "--issue", "--files", "--workers", "2", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sorted(row["number"] for row in rows) == ["LB-2026-000001", "LB-2026-000002"]
    assert "drafts [" in done.stderr and "issue  [" in done.stderr and "files  [" in done.stderr
    # Each invoice's files are archived, as their first download would have stored them.
    admin = api.key("admin")
    for row in rows:
        stored = api.services.files.stored(UUID(row["invoice"]), PDF)
        assert stored is not None and stored.name == f"{row['number']}.pdf"
        assert api.services.files.stored(UUID(row["invoice"]), XML) is not None
        served = api.get(f"/v1/invoices/{row['invoice']}/invoice.pdf", admin)
        assert served.status_code == 200 and served.content == stored.content
    # One that fails is reported, the others are archived all the same.
    from api.cli import _FileArchiver
    from api.settings import Settings

    unknown = "00000000-0000-4000-8000-00000000dead"
    for workers in (1, 2):
        archiver = _FileArchiver(api.services, Settings(database_url=api.services.database.url), workers)
        try:
            archiver.submit(unknown)
            archiver.submit(rows[0]["invoice"])
            failed = archiver.finish()
        finally:
            archiver.close()
        assert failed == [(unknown, f"LedgerError: invoice {unknown} is not issued")], workers
    again = run_cli(api.services.database, "invoices", "run", "--issuer", "SONNENHOF", "--period", "2026-11")
    assert again.returncode != 0 and "nothing to invoice" in again.stderr


def test_a_frozen_document_is_json_and_reads_back_as_it_was() -> None:
    """`Invoice.to_json` (what issuing freezes) is what `dataclasses.asdict` gives, in JSON's
    types, and `from_json` gives the very invoice back: for every kind of snapshot."""
    from dataclasses import asdict

    from invoices.document import _json
    from tests.invoice_samples import FLEET, SMALL_BUSINESS, cancellation_of, sample_invoice
    from tests.test_pdf import odd_invoice

    for invoice in (sample_invoice(lines=3, parking=True), cancellation_of(sample_invoice()),
                    sample_invoice(issuer=SMALL_BUSINESS, customer=FLEET), odd_invoice()):
        data = invoice.to_json()
        assert data == _json(asdict(invoice))
        assert json.loads(json.dumps(data)) == data
        assert Document.from_json(data) == invoice
