"""The printed invoice, read back with pypdf: what §14 (4) UStG asks for, in German and English,
the §19 and cancellation variants, long tables over several pages, the Eichrecht appendix with
its QR codes, the attached transparency files, embedded fonts and byte-for-byte determinism."""

from __future__ import annotations

import hashlib
import os
import random
import re
import string
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
import segno
from pypdf import PdfReader
from reportlab.graphics.barcode.qrencoder import QRErrorCorrectLevel, QRRSBlock, QRUtil
from reportlab.pdfbase.ttfonts import TTFontFile
from reportlab.platypus import Paragraph

from invoices import pdf as pdf_module
from invoices.document import Address, Evidence, Invoice, Line, vat_breakdown
from invoices.einvoice import cii_xml
from invoices.pdf import attachments, qr_modules, render
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
from tests.test_qr import padded_as_the_standard

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
        "european_names": lambda: sample_invoice(customer=replace(
            TENANT,
            name="Łukasz Wiśniewski-Dvořák, Małgorzata Żółć-Ęą, Ődön Űr",
            address=Address("ul. Źródlana 5, Čapkova 3 (Şişli, Ağrı, İzmir, Ștefan, Škoda)", "00-950", "Łódź", "PL"),
        )),
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
    assert meta.title == "Rechnung LB-2026-000001"
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
    assert f"Ladevorgang 120\nVorgangs-ID {invoice.lines[-1].session_id}" in last
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
    """The QR modules drawn on the appendix page (an image mask each, inside a quiet zone of 4
    modules, 1 painting in black) are exactly those segno makes for each session's URL (with
    the standard's padding), and read back by the standard they give the URL (scanners read
    what is drawn)."""
    reader = PdfReader(BytesIO(pdf("german")))
    content = reader.pages[1].get_contents()
    assert content is not None
    stream = content.get_data().decode("latin-1")
    images = re.findall(
        r"0 0 0 rg\n(\S+) 0 0 (\S+) (\S+) (\S+) cm\n"
        r"BI /W (\d+) /H (\d+) /IM true /D \[1 0\] /F /AHx ID\n([0-9A-F]+)>\nEI",
        stream,
    )
    drawn = []
    for width, height, x, y, columns, count, data in images:
        assert width == height and x == y and columns == count
        size = int(count)
        assert float(x) / float(width) * size == pytest.approx(QUIET_ZONE)
        assert float(width) / size * (size + 2 * QUIET_ZONE) == pytest.approx(pdf_module.QR_SIZE)
        per_row = len(data) // size
        drawn.append(tuple(
            format(int(data[i : i + per_row], 16), f"0{per_row * 4}b")[:size]
            for i in range(0, len(data), per_row)
        ))
    assert "/Interpolate" not in stream and " re\n" not in stream.split("BI /W", 1)[1]
    codes = {item.evidence.url: segno_code(item.evidence.url) for item in sample_invoice().lines}
    assert drawn == [matrix_rows(code) for code in codes.values()]
    for (url, code), rows in zip(codes.items(), drawn, strict=True):
        assert read_qr(list(rows)) == (url.encode(), "M", code.mask)


def test_qr_codes_are_the_ones_segno_makes_with_the_mask_the_standard_chooses() -> None:
    """Our encoding and mask scoring (fast, on whole symbols) make what segno's full evaluation
    makes (with the standard's padding, see tests/test_qr.py), on every version and mask; every
    symbol reads back to its text."""
    rng = random.Random(18004)
    alphabet = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%äöüß€"
    texts = [
        f"https://ladebuch.example/v1/sessions/{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        "/transparency.xml"
        for _ in range(40)
    ]
    texts += ["u" + "".join(rng.choices(alphabet, k=rng.randint(0, 300))) for _ in range(80)]
    texts += ["x" * 1600]  # version 33: six alignment patterns a side
    masks, versions = set(), set()
    for text in texts:
        code = segno_code(text)
        rows = qr_modules(text)
        assert rows == matrix_rows(code), text
        assert code.mode == "byte"
        assert read_qr(list(rows)) == (text.encode(), "M", code.mask)
        masks.add(code.mask)
        versions.add(code.version)
    assert masks == set(range(8))
    assert {1, 6, 7, 10, 33} <= versions  # small, the URLs', version information, 16-bit counts


def test_finder_like_patterns_are_counted_as_a_search_in_order_counts_them() -> None:
    """N3 is counted for all places at once (`_n3`); a search in order skips a pattern that
    overlaps one it counted. On random symbols of several versions, with overlapping patterns
    among them, both counts agree."""
    rng = random.Random(7)
    overlapping = without = 0
    for version in (1, 6, 7, 20):
        layout = pdf_module._qr_layout(version)
        for _ in range(150):
            text, bits = symbol_text([bytes(rng.choices(b"01", k=layout.size)) for _ in range(layout.size)])
            if b"10111011101" in text or b"1011101011101" in text:
                overlapping += 1
            else:  # counted for all places at once, no search
                without += 1
            assert pdf_module._n3(text, bits, layout) == pdf_module._n3_in_order(text, layout.size)
    assert overlapping > 100 and without > 100
    # One pattern right behind a counted one: the search counts only the first.
    layout = pdf_module._qr_layout(1)
    rows = [b"0000" + b"10111011101" + b"000000"] + [b"0" * 21] * 20
    assert pdf_module._n3(*symbol_text(rows), layout) == 40
    assert pdf_module._n3(*symbol_text([b"0000" + b"1011101" + b"0" * 10] + [b"0" * 21] * 20), layout) == 40


def symbol_text(rows: list[bytes]) -> tuple[bytes, int]:
    """A symbol as `_penalty` scores it: its rows then its columns, lines apart by "2"."""
    columns = [bytes(row[column] for row in rows) for column in range(len(rows))]
    text = b"2".join(rows + columns)
    return text, int(text.replace(b"2", b"0"), 2)


def test_plain_text_paragraphs_are_what_parsing_gives() -> None:
    """Plain texts skip reportlab's markup parser: the fragments must be the parser's."""
    for text in [
        "Vorgangs-ID",
        "02.11.2026 18:00:00 (UTC+01:00)",
        "Müller & Söhne <Garage>",
        "  two  spaces ",
        "Energie 11,525 kWh × 0,39 €/kWh",
        "a\nb",
        "x",
    ]:
        for style in (pdf_module._SMALL, pdf_module._SMALL_BOLD, pdf_module._TITLE):
            ours = pdf_module._p(text, style)
            parsed = Paragraph(escape(text), style)
            assert [vars(f) for f in ours.frags] == [vars(f) for f in parsed.frags], text
            for width in (40.0, 300.0, 40.0):
                assert ours.wrap(width, 100) == parsed.wrap(width, 100)


def segno_code(text: str) -> segno.QRCode:
    """segno's QR code of the text as UTF-8 in byte mode (what `invoices.qr` encodes), mask
    chosen by its own full evaluation, padded as the standard says."""
    with padded_as_the_standard():
        return segno.make_qr(
            text, error="m", boost_error=False, mode="byte", encoding="utf-8"
        )


def matrix_rows(code: segno.QRCode) -> tuple[str, ...]:
    return tuple("".join("1" if module else "0" for module in row) for row in code.matrix)


def read_qr(rows: list[str]) -> tuple[bytes, str, int]:
    """A QR code symbol read back as ISO/IEC 18004 has it (format information, unmasking,
    codeword placement, Reed-Solomon blocks from reportlab's tables, byte mode): (the bytes,
    error correction level, mask). Asserts what a decoder checks on the way."""
    size = len(rows)
    version = (size - 17) // 4

    def dark(row: int, column: int) -> bool:
        return rows[row][column] == "1"

    # Format information: 15 bits, twice (7.9.1), BCH(15,5)-coded and XORed with 101010000010010.
    first = [(row, 8) for row in (0, 1, 2, 3, 4, 5, 7, 8)] + [(8, c) for c in (7, 5, 4, 3, 2, 1, 0)]
    second = [(8, size - 1 - i) for i in range(8)] + [(size - 7 + i, 8) for i in range(7)]
    word = sum(dark(*cell) << bit for bit, cell in enumerate(first))
    assert word == sum(dark(*cell) << bit for bit, cell in enumerate(second))
    assert dark(size - 8, 8)  # the dark module
    plain = word ^ 0b101010000010010
    remainder = plain >> 10 << 10
    for shift in range(4, -1, -1):
        if remainder >> (shift + 10) & 1:
            remainder ^= 0b10100110111 << shift
    assert remainder == plain & 0x3FF
    level, mask = {0: "M", 1: "L", 2: "H", 3: "Q"}[plain >> 13], plain >> 10 & 7

    # Function patterns: finders with separators, timing, format and version areas, alignment.
    function = [[False] * size for _ in range(size)]
    for row in range(size):
        for column in range(size):
            corner = (row < 9 and (column < 9 or column >= size - 8)) or (
                row >= size - 8 and column < 9
            )
            version_area = version >= 7 and (
                (row < 6 and size - 11 <= column < size - 8)
                or (column < 6 and size - 11 <= row < size - 8)
            )
            function[row][column] = corner or row == 6 or column == 6 or version_area
    centres = QRUtil.getPatternPosition(version)
    for row in centres:
        for column in centres:
            in_corner = (row < 9 and (column < 9 or column >= size - 9)) or (
                row >= size - 9 and column < 9
            )
            if not in_corner:
                for r in range(row - 2, row + 3):
                    for c in range(column - 2, column + 3):
                        function[r][c] = True
    flips = [
        lambda i, j: (i + j) % 2 == 0,
        lambda i, j: i % 2 == 0,
        lambda i, j: j % 3 == 0,
        lambda i, j: (i + j) % 3 == 0,
        lambda i, j: (i // 2 + j // 3) % 2 == 0,
        lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
        lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
        lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
    ][mask]

    # The bits in placement order (7.7.3): two-module columns from the right, up and down.
    bits = []
    columns, right = [], size - 1
    while right >= 1:
        right = 5 if right == 6 else right
        columns.append(right)
        right -= 2
    for number, right in enumerate(columns):
        upwards = number % 2 == 0
        for step in range(size):
            row = size - 1 - step if upwards else step
            for column in (right, right - 1):
                if not function[row][column]:
                    bits.append(int(dark(row, column) != flips(row, column)))
    codewords = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]

    # Blocks, interleaved: data codewords first, then error correction; each block checked.
    blocks = QRRSBlock.getRSBlocks(version, getattr(QRErrorCorrectLevel, level))
    data: list[list[int]] = [[] for _ in blocks]
    ecc: list[list[int]] = [[] for _ in blocks]
    source = iter(codewords)
    for i in range(max(block.dataCount for block in blocks)):
        for n, block in enumerate(blocks):
            if i < block.dataCount:
                data[n].append(next(source))
    for i in range(max(block.totalCount - block.dataCount for block in blocks)):
        for n, block in enumerate(blocks):
            if i < block.totalCount - block.dataCount:
                ecc[n].append(next(source))
    for n, block in enumerate(blocks):
        assert reed_solomon(data[n], block.totalCount - block.dataCount) == ecc[n]

    stream = "".join(f"{byte:08b}" for block in data for byte in block)
    assert stream[:4] == "0100"  # byte mode
    width = 8 if version < 10 else 16
    count = int(stream[4 : 4 + width], 2)
    start = 4 + width
    text = bytes(int(stream[start + 8 * i : start + 8 * i + 8], 2) for i in range(count))
    assert stream[start + 8 * count : start + 8 * count + 4] in ("0000", "000", "00", "0", "")
    return text, level, mask


@cache
def galois_field() -> tuple[list[int], list[int]]:
    """Powers of 2 (twice round, so sums of logarithms need no modulo) and logarithms."""
    exp = [1] * 512
    for i in range(1, 255):
        exp[i] = exp[i - 1] * 2 ^ (0x11D if exp[i - 1] & 0x80 else 0)
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    log = [0] * 256
    for i in range(255):
        log[exp[i]] = i
    return exp, log


def reed_solomon(data: list[int], degree: int) -> list[int]:
    """The error correction codewords of a block: the remainder of data(x) * x^degree by the
    generator with roots 2^0 .. 2^(degree-1), in GF(256) modulo x^8 + x^4 + x^3 + x^2 + 1."""
    exp, log = galois_field()

    def multiply(a: int, b: int) -> int:
        return 0 if a == 0 or b == 0 else exp[log[a] + log[b]]

    generator = [1]
    for i in range(degree):
        generator = [
            (generator[k] if k < len(generator) else 0)
            ^ (multiply(generator[k - 1], exp[i]) if k > 0 else 0)
            for k in range(len(generator) + 1)
        ]
    remainder = list(data) + [0] * degree
    for i in range(len(data)):
        factor = remainder[i]
        if factor:
            for k, coefficient in enumerate(generator):
                remainder[i + k] ^= multiply(coefficient, factor)
    return remainder[len(data) :]


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
    assert {name.split("+")[-1] for name in fonts} == {"DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"}
    for name, font in fonts.items():
        assert name.lstrip("/") not in STANDARD_FONTS
        assert "/FontFile2" in font["/FontDescriptor"], name
    # A glyph the font lacks prints as a blank box (.notdef), yet still extracts as text: check
    # the faces' own character maps, for names from all over Europe too.
    faces = [TTFontFile(str(ROOT / "invoices" / "fonts" / f)) for f in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")]
    for sample in ("german", "english", "odd", "european_names"):
        printed = set(text(pdf(sample))) - {" "}
        assert "€" in printed
        for face in faces:
            assert {char for char in printed if ord(char) not in face.charToGlyph} == set(), sample
    assert set("ŁśřŻółćĘąŐŰŹČŞşğİȘŠ") <= set(text(pdf("european_names")))


def test_the_same_invoice_renders_to_the_same_bytes() -> None:
    """The invoice PDF, the Factur-X PDF of it and of its cancellation: the same bytes again,
    and in a fresh process with another hash seed (no set order, no clock, no state)."""
    invoice = sample_invoice(parking=True)
    first = render(invoice)
    assert render(invoice) == first == pdf("german")
    assert render(sample_invoice(number="LB-2026-000009")) != first
    storno = cancellation_of(invoice)
    e_invoices = [render(i, e_invoice=cii_xml(i)) for i in (invoice, storno)]
    assert e_invoices == [render(i, e_invoice=cii_xml(i)) for i in (invoice, storno)]
    expected = " ".join(hashlib.sha256(data).hexdigest() for data in [first, *e_invoices])
    script = (
        "import hashlib, sys\n"
        "from invoices.einvoice import cii_xml\n"
        "from invoices.pdf import render\n"
        "from tests.invoice_samples import cancellation_of, sample_invoice\n"
        "invoice = sample_invoice(parking=True)\n"
        "made = [render(invoice)] + [render(i, e_invoice=cii_xml(i)) for i in (invoice, cancellation_of(invoice))]\n"
        "sys.stdout.write(' '.join(hashlib.sha256(data).hexdigest() for data in made))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout == expected


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


def test_the_fonts_split_text_as_reportlab_does() -> None:
    """`pdf._Font.splitString` takes a shortcut for text whose characters all have codes in the
    first subset; it gives what reportlab's `TTFont.splitString` gives, for the shortcut and
    for everything that goes reportlab's way (new characters, a no-break space, later subsets)."""
    from reportlab.pdfbase.pdfdoc import PDFDocument
    from reportlab.pdfbase.ttfonts import TTFont

    fast = pdf_module._Font("split-fast", str(pdf_module._FONTS / "DejaVuSans.ttf"))
    plain = TTFont("split-plain", str(pdf_module._FONTS / "DejaVuSans.ttf"))
    rng = random.Random(1231)
    alphabet = string.printable + "äöüßÄÖÜ€–·\u00a0łśćźżąęőűřčšž" + "".join(map(chr, range(0x400, 0x500)))
    fast_doc, plain_doc = PDFDocument(), PDFDocument()
    texts = ["", "abc", "abc", "a\u00a0b", *(
        "".join(rng.choices(rng.choice((string.ascii_letters, alphabet)), k=rng.randint(0, 40)))
        for _ in range(400)
    )]
    shortcuts = 0
    for text in texts:
        known = fast.state.get(fast_doc)
        shortcuts += bool(text) and known is not None and all(
            known.assignments.get(ord(c), 256) < 256 for c in text
        )
        assert fast.splitString(text, fast_doc) == plain.splitString(text, plain_doc), text
    assert len(fast.state[fast_doc].subsets) > 1  # later subsets were used, and agreed
    assert shortcuts > 100


def test_signed_data_longer_than_a_page_flows_on_with_every_character() -> None:
    """A session's evidence block stays on one page; one taller than a page (signed data of
    some kilobytes) continues on the next, and nothing of it is lost."""
    long_begin = "OCMF|" + "".join(random.Random(7).choices(string.hexdigits, k=30_000))
    item = line(0)
    item = replace(item, evidence=replace(item.evidence, begin_signed=long_begin))
    data = render(invoice_of((item, line(1))))
    texts = pages(data)
    on_every_page = set.intersection(*(set(page.splitlines()) for page in texts))
    printed = "\n".join(  # without the page number at the top and the issuer at the foot
        line for page in texts for line in page.splitlines()
        if line not in on_every_page and " · Seite " not in line
    )
    printed = printed[printed.index("Anhang: Nachweise"):]
    flat = squeezed(printed)
    assert flat.count(squeezed(long_begin)) == 1
    assert flat.count(squeezed(OCMF_END)) == 2
    assert printed.count("Ladevorgang 1\n") == 1 and printed.count("Ladevorgang 2\n") == 1
    assert flat.index(squeezed(long_begin)) < flat.index("SignierteDatenEnde") < flat.index("Ladevorgang2")
    assert len(PdfReader(BytesIO(data)).pages) >= 5


def test_a_table_cell_too_wide_for_its_column_wraps_with_every_character() -> None:
    """The sessions table and the appendix facts print a text as it is where it fits its
    column, else as a paragraph that wraps: a long meter serial stays whole and inside."""
    serial = "METER-" + "7" * 70
    data = render(invoice_of((replace(line(0), meter=serial), line(1))))
    first, *rest = pages(data)
    assert squeezed(serial) in squeezed(first)
    assert squeezed(serial) in squeezed("\n".join(rest))
    assert pdf_module._cell(serial, width=100) != serial
    assert pdf_module._cell_lines(["WB1 · EVSE 1", serial], 100) != f"WB1 · EVSE 1\n{serial}"
    assert pdf_module._cell_lines(["WB1 · EVSE 1", "Zähler 1"], 100) == "WB1 · EVSE 1\nZähler 1"
