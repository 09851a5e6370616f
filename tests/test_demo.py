"""`ladebuch demo`: the real server in process on a fresh SQLite file, a simulated wallbox over
real OCPP, and the invoice files it downloads, each read back and checked: the numbers, the
amounts the tariff predicts, the Factur-X PDF, the e-invoice XML against XSD and schematron, and
the evidence whose signatures must verify against the meter key the demo registered."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from pypdf import PdfReader

from api import demo
from api.demo import CHARGES, ENERGY_PRICE, TENANTS, VAT_RATE, DemoResult
from invoices import einvoice
from ledger.signed.inputs import verify_file
from ledger.signed.keys import PublicKey, parse_public_key

CENT = Decimal("0.01")


def expected_totals(token: str) -> tuple[int, Decimal, Decimal, Decimal]:
    """(sessions, kWh, net, gross) of a tenant's invoice: each line's net rounded half-up to the
    cent, VAT once on the summed net."""
    energies = [charge.energy_kwh for charge in CHARGES if charge.token == token]
    net = sum(((kwh * ENERGY_PRICE).quantize(CENT, ROUND_HALF_UP) for kwh in energies), Decimal(0))
    vat = (net * VAT_RATE / 100).quantize(CENT, ROUND_HALF_UP)
    return len(energies), sum(energies, Decimal(0)), net, net + vat


def test_the_demo_issues_one_invoice_per_tenant_whose_files_check_out(tmp_path: Path) -> None:
    out = io.StringIO()
    result = demo.run(tmp_path, out=out)

    assert result.database == tmp_path.resolve() / demo.DATABASE_FILE
    assert result.period == demo.previous_month(datetime.now(demo.BERLIN).date())
    year = datetime.now(demo.BERLIN).year
    assert [(i.tenant, i.number) for i in result.invoices] == [
        (TENANTS[0].name, f"LB-{year}-000001"), (TENANTS[1].name, f"LB-{year}-000002"),
    ]
    key = parse_public_key(result.meter_public_key)
    for invoice, tenant in zip(result.invoices, TENANTS, strict=True):
        sessions, energy, net, gross = expected_totals(tenant.token)
        assert (invoice.sessions, invoice.energy_kwh) == (sessions, energy)
        assert (invoice.total_net, invoice.total_gross, invoice.currency) == (net, gross, "EUR")
        assert invoice.unavailable == {}
        business = tenant.customer["kind"] == "company"
        kinds = {"pdf", "xml", "evidence"} | ({"xrechnung"} if business else set())
        assert set(invoice.files) == kinds
        for path in invoice.files.values():
            assert path.parent == tmp_path.resolve() and path.name.startswith(invoice.number)
            assert str(path) in out.getvalue()

        pdf = invoice.files["pdf"].read_bytes()
        assert pdf.startswith(b"%PDF")
        attachments = PdfReader(io.BytesIO(pdf)).attachments
        xml = invoice.files["xml"].read_bytes()
        assert attachments["factur-x.xml"] == [xml]
        assert einvoice.validate(xml) == []
        assert f"<ram:DuePayableAmount>{gross}</ram:DuePayableAmount>".encode() in xml
        if business:
            xrechnung = invoice.files["xrechnung"].read_bytes()
            assert einvoice.validate(xrechnung, profile=einvoice.XRECHNUNG) == []

        assert_evidence_verifies(invoice.files["evidence"], key, sessions, energy)
        # The PDF carries the same transparency files as the ZIP.
        with zipfile.ZipFile(invoice.files["evidence"]) as archive:
            for name in archive.namelist():
                if name.startswith("transparency-"):
                    assert attachments[name] == [archive.read(name)]

    assert "--keep-running" in out.getvalue()  # how to explore it, since the server stopped


def assert_evidence_verifies(path: Path, key: PublicKey, sessions: int, energy: Decimal) -> None:
    """One Transparenzsoftware file per session, each with a signed begin and end that verify
    against the registered meter key; end minus begin adds up to the invoiced energy."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("transparency-"))
        assert len(names) == sessions and "README.txt" in archive.namelist()
        charged = Decimal(0)
        for name in names:
            verdicts = verify_file(archive.read(name), [key])
            assert [v["signature"] for v in verdicts] == ["verified", "verified"], verdicts
            begin, end = (Decimal(v["readings"][0]["value"]) for v in verdicts)
            assert [v["readings"][0]["type"] for v in verdicts] == ["B", "E"]
            charged += end - begin
    assert charged == energy


def test_the_demo_starts_from_a_fresh_database_each_time(tmp_path: Path) -> None:
    first: DemoResult = demo.run(tmp_path, out=io.StringIO())
    again = demo.run(tmp_path, out=io.StringIO())
    # The same numbers again: the second run did not find the first run's invoices (nor its
    # issuer, which would have been a 409).
    assert [i.number for i in again.invoices] == [i.number for i in first.invoices]
    assert again.meter_public_key != first.meter_public_key  # a new meter key pair per run
