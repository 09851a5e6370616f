"""The printed invoice, read back with pypdf: what §14 (4) UStG asks for, in German and English,
the §19 and cancellation variants, long tables over several pages, the Eichrecht appendix with
its QR codes, the attached transparency files, embedded fonts and byte-for-byte determinism."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import reportlab
from pypdf import PdfReader
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.pdfbase.ttfonts import TTFontFile

from invoices.document import Address, Evidence, Invoice, Line, vat_breakdown
from invoices.pdf import attachments, render
from tests.invoice_samples import (
    FLEET,
    KEY,
    OCMF_BEGIN,
    OCMF_END,
    SMALL_BUSINESS,
    TENANT,
    cancellation_of,
    line,
    sample_invoice,
)

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
NOTE_19_DE = "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet."
NOTE_19_EN = "No VAT is charged under section 19 UStG (small business)."
QUIET_ZONE = 4  # modules of white around a QR code
STANDARD_FONTS = {"Courier", "Helvetica", "Times-Roman", "Symbol", "ZapfDingbats"}


@cache
def pdf(name: str) -> bytes:
    """Each sample rendered once per test run (the 120-line one takes a second or two)."""
    invoices = {
        "german": lambda: sample_invoice(parking=True),
        "english": lambda: sample_invoice(customer=FLEET),
        "small_business": lambda: sample_invoice(issuer=SMALL_BUSINESS),
        "small_business_en": lambda: sample_invoice(issuer=SMALL_BUSINESS, customer=FLEET),
        "cancellation": lambda: cancellation_of(sample_invoice()),
        "long": lambda: sample_invoice(lines=120),
        "odd": odd_invoice,
    }
    return render(invoices[name]())


def pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(data)).pages]


def text(data: bytes) -> str:
    """All text, whitespace runs collapsed (table cells come out one per line)."""
    return re.sub(r"\s+", " ", "\n".join(pages(data)))


def appendix(data: bytes) -> str:
    texts = pages(data)
    first = next(n for n, page in enumerate(texts) if "Eichrecht" in page.splitlines()[0])
    return "\n".join(texts[first:])


def squeezed(value: str) -> str:
    return re.sub(r"\s+", "", value)


def invoice_of(lines: tuple[Line, ...], **changes: Any) -> Invoice:
    vat, net, tax, gross = vat_breakdown(lines, small_business=False)
    return replace(
        sample_invoice(),
        lines=lines,
        vat=vat,
        total_net=net,
        total_vat=tax,
        total_gross=gross,
        **changes,
    )


def odd_invoice() -> Invoice:
    """What the samples do not have: more decimals, DST, missing evidence, uncalibrated meters,
    markup characters in names and notes."""
    exact = line(0, kwh="7.1000", price="0.3945")
    summer_start = datetime(2026, 7, 1, 16, 5, tzinfo=UTC)
    summer = replace(
        line(1, kwh="20"),
        started_at=summer_start,
        ended_at=summer_start + timedelta(hours=1),
        meter=None,
        evse_id=None,
        evidence=Evidence(
            verdict="Keine signierten Messwerte; Energie aus Stationswerten",
            calibrated=False,
            begin_signed=None,
            end_signed=None,
            public_key=None,
            url="https://ladebuch.example/v1/sessions/summer/transparency.xml",
            transparency_xml=None,
        ),
    )
    customer = replace(
        TENANT,
        name="Müller & Söhne <Garage>",
        address=Address("Rue de la Gare 3", "1000", "Bruxelles", "BE"),
    )
    return invoice_of(
        (exact, summer),
        customer=customer,
        notes=("Zahlbar ohne Abzug bis 15.12.2026 <danke & tschüss>",),
    )


def test_it_is_a_pdf_with_the_invoice_as_its_metadata() -> None:
    reader = PdfReader(BytesIO(pdf("german")))
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "LB-2026-000001"
    assert meta.author == "Hausverwaltung Sonnenhof GmbH"
    assert meta.creator == "Ladebuch"
    # Midnight of the issue date in Berlin, not the time of rendering.
    assert meta.creation_date_raw == "D:20261201000000+01'00'"
    assert len(reader.pages) == 2  # the invoice and the evidence appendix


def test_the_german_invoice_shows_what_section_14_ustg_asks_for() -> None:
    printed = text(pdf("german"))
    for expected in [
        # issuer and customer, names and full addresses
        "Hausverwaltung Sonnenhof GmbH · Sonnenweg 1 · 10115 Berlin",
        "Max Mieter Sonnenweg 1, Wohnung 4 10115 Berlin",
        # the issuer's VAT id and tax number, number, issue date, period of supply
        "Unsere USt-IdNr. DE123456789",
        "Unsere Steuernummer 27/123/45678",
        "Rechnungsnummer LB-2026-000001",
        "Rechnungsdatum 01.12.2026",
        "Leistungszeitraum 01.11.2026 – 30.11.2026",
        "Rechnung LB-2026-000001",
        # kind and quantity of the supply
        "Lieferung von Strom zum Laden von Elektrofahrzeugen",
        "Ladevorgänge: 3, Energie gesamt: 34,575 kWh",
        # per session: local times (UTC 17:00 is 18:00 in Berlin in November), point, meter
        "1 02.11.2026 18:00 – 02.11.2026 20:00 WB1 · EVSE 1 BQ27400330016 11,525 "
        "Energie 11,525 kWh × 0,39 €/kWh Standzeit 0,5 h × 6,00 €/h 19 % 7,49 €",
        "3 04.11.2026 18:00 – 04.11.2026 20:00 WB1 · EVSE 1 BQ27400330016 11,525 "
        "Energie 11,525 kWh × 0,39 €/kWh 19 % 4,49 €",
        # net per rate, rate and tax, totals
        "Nettobetrag zu 19 % USt 16,47 € Umsatzsteuer 19 % 3,13 € Summe netto 16,47 € "
        "Summe Umsatzsteuer 3,13 € Gesamtbetrag brutto 19,60 €",
        # the bank details in the footer, on every page
        "Deutsche Kreditbank IBAN DE02 1203 0000 0000 2020 51 BIC BYLADEM1001",
    ]:
        assert expected in printed, expected
    assert printed.count("IBAN DE02 1203 0000 0000 2020 51") == 2
    assert "Seite 1 von 2" in printed and "Seite 2 von 2" in printed


def test_the_english_invoice_uses_english_texts_and_numbers() -> None:
    printed = text(pdf("english"))
    for expected in [
        "Invoice LB-2026-000001",
        "Invoice date 2026-12-01",
        "Period of supply 2026-11-01 – 2026-11-30",
        "Flotte Elektro AG Industriestraße 5 80331 München",
        "Your reference 04011000-12345-34",
        "Your VAT ID DE987654321",
        "Our VAT ID DE123456789",
        "Supply of electricity for charging electric vehicles",
        "1 2026-11-02 18:00 – 2026-11-02 20:00 WB1 · EVSE 1 BQ27400330016 11.525 "
        "Energy 11.525 kWh × €0.39/kWh 19% €4.49",
        "Net amount at 19% VAT €13.47 VAT 19% €2.56 Total net €13.47 Total VAT €2.56 "
        "Total gross €16.03",
        "Page 1 of 2",
        "Appendix: evidence under German calibration law",
    ]:
        assert expected in printed, expected
    for german in ("Rechnung", "Umsatzsteuer", "Leistungszeitraum", "Seite", "11,525", "€ "):
        assert german not in printed, german


def test_a_small_business_shows_no_vat_but_the_section_19_note() -> None:
    printed = text(pdf("small_business"))
    assert "Gesamtbetrag 13,47 €" in printed
    # The sample also carries the note among its notes: printed once, not twice.
    assert printed.count(NOTE_19_DE) == 1
    assert not re.search(r"\bUSt\b|19 %|Summe Umsatzsteuer|brutto|USt-IdNr", printed)
    assert "Unsere Steuernummer 27/123/45678" in printed  # the tax number stands in for the id

    english = text(pdf("small_business_en"))
    assert english.count(NOTE_19_EN) == 1
    assert NOTE_19_DE not in english
    assert "Total €13.47" in english
    for vat in ("19%", "VAT 19", "Total VAT", "Total gross", "Our VAT ID"):
        assert vat not in english, vat


def test_a_cancellation_names_the_invoice_it_cancels() -> None:
    printed = text(pdf("cancellation"))
    assert "Stornorechnung LB-2026-000002" in printed
    assert "Diese Stornorechnung hebt die Rechnung Nr. LB-2026-000001 vollständig auf." in printed
    assert "Rechnungsdatum 05.12.2026" in printed
    assert "-11,525 Energie -11,525 kWh × 0,39 €/kWh 19 % -4,49 €" in printed
    assert "Summe netto -13,47 €" in printed and "Gesamtbetrag brutto -16,03 €" in printed

    english = text(render(cancellation_of(sample_invoice(customer=FLEET))))
    assert "Cancellation invoice LB-2026-000002" in english
    assert "cancels invoice no. LB-2026-000001 in full" in english
    assert "Total gross -€16.03" in english


def test_quantities_and_unit_prices_are_printed_exactly_times_in_local_time() -> None:
    printed = text(pdf("odd"))
    # The meter's own decimals (never normalised, rounded or padded), every decimal of the price.
    assert "7,1000 Energie 7,1000 kWh × 0,3945 €/kWh 19 % 2,80 €" in printed
    assert "20 Energie 20 kWh × 0,39 €/kWh" in printed
    # 16:05 UTC on 1 July is 18:05 summer time (UTC+02:00) in Berlin.
    assert "01.07.2026 18:05 – 01.07.2026 19:05 WB1 Zähler unbekannt" in printed
    assert "01.07.2026 18:05:00 (UTC+02:00) – 01.07.2026 19:05:00 (UTC+02:00)" in printed
    # Markup characters are text; a customer abroad gets the country.
    assert "Müller & Söhne <Garage> Rue de la Gare 3 1000 Bruxelles BE" in printed
    assert "Zahlbar ohne Abzug bis 15.12.2026 <danke & tschüss>" in printed


def test_a_long_invoice_flows_over_pages_with_the_header_repeated() -> None:
    invoice = sample_invoice(lines=120)
    reader = PdfReader(BytesIO(pdf("long")))
    header = "Positionen: Menge × Einzelpreis (netto)"
    table_pages = []
    for page in reader.pages:  # only as far as the table goes: text extraction is slow
        page_text = page.extract_text()
        if header not in page_text:
            break
        table_pages.append(page_text)
    assert len(table_pages) >= 3
    table = re.sub(r"\s+", " ", "\n".join(table_pages))
    for no, item in enumerate(invoice.lines, 1):
        start = item.started_at.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M")
        assert f" {no} {start} – " in table, no
    assert "Gesamtbetrag brutto 641,17 €" in table
    # The appendix follows, one block per session, in order, to the last page.
    last = reader.pages[-1].extract_text()
    pages_total = len(reader.pages)
    assert f"Ladevorgang 120\n{invoice.lines[-1].session_id}" in last.replace("Vorgangs-ID\n", "")
    assert f"Seite {pages_total} von {pages_total}" in last
    assert len(reader.attachments) == 120


def test_the_appendix_shows_the_evidence_whole_and_how_to_check_it() -> None:
    evidence = re.sub(r"\s+", " ", appendix(pdf("german")))
    flat = squeezed(evidence)
    assert "S.A.F.E. Transparenzsoftware" in evidence
    assert evidence.count("Signatur gültig, Schlüssel registriert; Energie abrechenbar") == 3
    assert evidence.count("Geeichter Zähler ja") == 3
    # Long strings are wrapped, never cut: every character is there.
    for signed in (OCMF_BEGIN, OCMF_END, KEY):
        assert flat.count(squeezed(signed)) == 3
    for item in sample_invoice().lines:
        assert item.evidence.url in evidence
        assert f"transparency-{item.session_id}.xml (an diese PDF-Datei angehängt)" in evidence


def test_an_uncalibrated_meter_and_missing_evidence_are_said_plainly() -> None:
    evidence = re.sub(r"\s+", " ", appendix(pdf("odd")))
    assert (
        "Geeichter Zähler NEIN – diese Werte stammen nicht von einem geeichten Messgerät."
        in evidence
    )
    assert "Signierte Daten Beginn nicht vorhanden Signierte Daten Ende nicht vorhanden" in evidence
    assert "Transparenzdatei nicht angehängt" in evidence


def test_each_qr_code_encodes_its_transparency_url() -> None:
    """The QR modules drawn on the appendix page are exactly those reportlab's encoder makes for
    each session's URL (scanners read what is drawn)."""
    reader = PdfReader(BytesIO(pdf("german")))
    content = reader.pages[1].get_contents()
    assert content is not None
    stream = content.get_data().decode("latin-1")
    blocks = re.findall(r"((?:\d+ \d+ \d+ 1 re\n)+)f", stream)
    drawn = [
        {(int(x), int(y), int(n)) for x, y, n in re.findall(r"(\d+) (\d+) (\d+) 1 re", block)}
        for block in blocks
    ]
    expected = []
    for item in sample_invoice().lines:
        code = QrCodeWidget(item.evidence.url, barLevel="M").qr
        code.make()
        count = len(code.modules)
        runs = set()
        for row, cells in enumerate(code.modules):
            column = 0
            while column < count:
                if cells[column]:
                    start = column
                    while column < count and cells[column]:
                        column += 1
                    runs.add((start + QUIET_ZONE, count - 1 - row + QUIET_ZONE, column - start))
                else:
                    column += 1
        expected.append(runs)
    assert drawn == expected


def test_transparency_files_are_attached() -> None:
    invoice = sample_invoice(parking=True)
    reader = PdfReader(BytesIO(pdf("german")))
    attached = {name: contents for name, contents in reader.attachments.items()}
    assert attached == {
        f"transparency-{item.session_id}.xml": [item.evidence.transparency_xml]
        for item in invoice.lines
    }
    assert {name: [content] for name, content in attachments(invoice).items()} == attached
    # A session without a transparency file has nothing attached.
    assert list(PdfReader(BytesIO(pdf("odd"))).attachments) == [
        "transparency-00000000-0000-4000-8000-000000000000.xml"
    ]


def test_fonts_are_embedded_and_hold_every_glyph_printed() -> None:
    reader = PdfReader(BytesIO(pdf("german")))
    fonts: dict[str, Any] = {}
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for reference in resources["/Font"].values():
            font = reference.get_object()
            fonts[font["/BaseFont"]] = font
    assert {name.split("+")[-1] for name in fonts} == {
        "BitstreamVeraSans-Roman",
        "BitstreamVeraSans-Bold",
        "DejaVuSansMono",
    }
    for name, font in fonts.items():
        assert name.lstrip("/") not in STANDARD_FONTS
        assert "/FontFile2" in font["/FontDescriptor"], name
    # A glyph the font lacks prints as a blank box, yet still extracts as text: check the
    # font's own character map. Vera is the face of every non-monospace text.
    vera = TTFontFile(str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"))
    for sample in ("german", "english", "odd"):
        printed = set(text(pdf(sample))) - {" "}
        assert "€" in printed
        assert {char for char in printed if ord(char) not in vera.charToGlyph} == set()


def test_the_same_invoice_renders_to_the_same_bytes() -> None:
    invoice = sample_invoice(parking=True)
    first = render(invoice)
    assert render(invoice) == first == pdf("german")
    assert render(sample_invoice(number="LB-2026-000009")) != first
    # ... in a fresh process with another hash seed, too (no set order, no clock, no state).
    script = (
        "import hashlib, sys\n"
        "from invoices.pdf import render\n"
        "from tests.invoice_samples import sample_invoice\n"
        "sys.stdout.write(hashlib.sha256(render(sample_invoice(parking=True))).hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout == hashlib.sha256(first).hexdigest()


def test_the_chart_is_drawn_with_a_bar_per_day_of_the_period() -> None:
    printed = pages(pdf("german"))[0]
    assert "Energie je Tag in kWh (Tag des Ladebeginns, Ortszeit)" in printed
    chart = printed.split("Ortszeit)", 1)[1].split()
    assert chart[:30] == [str(day) for day in range(1, 31)]  # every day of November labelled


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="credit"):
        render(replace(sample_invoice(), kind="credit"))


def test_an_amount_not_in_cents_is_refused_not_rounded() -> None:
    unrounded = replace(line(0), net=Decimal("4.49475"))
    with pytest.raises(ValueError, match="4.49475"):
        render(invoice_of((unrounded,)))
