"""The printed invoice: an `Invoice` snapshot rendered to PDF with reportlab.

The PDF shows what §14 (4) UStG asks of an invoice (both parties, the issuer's tax number or
VAT id, number, dates, the supply per charging session, net and VAT per rate, or the §19 note),
a bar chart of the energy per day, and an appendix with each session's Eichrecht evidence: the
verdict, the signed readings, the meter's public key, a QR code (`invoices.qr`) to the
transparency file and how to check it with the S.A.F.E. Transparenzsoftware. Each session's
transparency XML is attached inside the PDF (`attachments`); given the e-invoice XML, the PDF
is the ZUGFeRD / Factur-X invoice carrying it. Every rendering is a PDF/A-3 (level B).

Rendering is a pure function of the snapshot: the same `Invoice` gives the same bytes (reportlab's
invariant mode, metadata from the invoice, embedded TrueType fonts), today and in eight years.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache, partial
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import facturx
from lxml import etree
from reportlab.graphics import shapes
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import (
    PDFArray,
    PDFDictionary,
    PDFName,
    PDFStream,
    PDFString,
    PDFText,
    PDFZCompress,
)
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from invoices import qr
from invoices.document import CANCELLATION, INVOICE, Invoice, Line, Party, cents
from invoices.einvoice import FACTURX_XML

CREATOR = "Ladebuch"
PRODUCER = "Ladebuch with ReportLab"

# Fonts are embedded TrueType (never the 14 standard fonts, which a viewer substitutes): DejaVu
# Sans, Sans Bold and Sans Mono 2.37, shipped in invoices/fonts so that every machine renders the
# same bytes. Vera (inside reportlab) has the same metrics but no ś, ą, ę, ő, ř and the like:
# a Polish or Czech tenant's name printed as empty boxes, which PDF/A forbids too (.notdef).
SANS, BOLD, MONO = "Ladebuch-Sans", "Ladebuch-Sans-Bold", "Ladebuch-Mono"
_FONTS = Path(__file__).parent / "fonts"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
TOP_MARGIN = 16 * mm
BOTTOM_MARGIN = 30 * mm  # room for the footer: issuer, tax ids, bank
BODY_WIDTH = PAGE_WIDTH - 2 * MARGIN
MONO_SIZE = 6.5
QR_SIZE = 30 * mm

GRID = colors.HexColor("#9aa5b1")
SHADE = colors.HexColor("#eef1f4")
BAR = colors.HexColor("#3a7ca5")
WARNING = colors.HexColor("#b00020")

_TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "invoice": "Rechnung",
        "cancellation": "Stornorechnung",
        "cancels": "Diese Stornorechnung hebt die Rechnung Nr. {number} vollständig auf.",
        "number": "Rechnungsnummer",
        "issue_date": "Rechnungsdatum",
        "period": "Leistungszeitraum",
        "customer_id": "Kundennummer",
        "buyer_reference": "Ihre Referenz",
        "customer_vat_id": "Ihre USt-IdNr.",
        "vat_id": "USt-IdNr.",
        "tax_number": "Steuernummer",
        "our_vat_id": "Unsere USt-IdNr.",
        "our_tax_number": "Unsere Steuernummer",
        "supply": "Lieferung von Strom zum Laden von Elektrofahrzeugen im Leistungszeitraum "
        "{start} – {end}: Ladevorgänge: {count}, Energie gesamt: {kwh} kWh. "
        "Alle Zeiten in Ortszeit ({zone}).",
        "col_no": "Nr.",
        "col_time": "Beginn / Ende",
        "col_point": "Ladepunkt / Zähler",
        "col_kwh": "Energie kWh",
        "col_items": "Positionen: Menge × Einzelpreis (netto)",
        "col_vat": "USt",
        "col_net": "Netto",
        "no_meter": "Zähler unbekannt",
        "component.ENERGY": "Energie",
        "component.TIME": "Ladezeit",
        "component.PARKING_TIME": "Standzeit",
        "component.FLAT": "Pauschale",
        "session": "Vorgang",
        "none": "–",
        "net_at": "Nettobetrag zu {rate} USt",
        "vat_at": "Umsatzsteuer {rate}",
        "net_without_vat": "Nettobetrag ohne Umsatzsteuer",
        "total_net": "Summe netto",
        "total_vat": "Summe Umsatzsteuer",
        "total_gross": "Gesamtbetrag brutto",
        "total": "Gesamtbetrag",
        "small_business": "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
        "chart": "Energie je Tag in kWh (Tag des Ladebeginns, Ortszeit)",
        "appendix": "Anhang: Nachweise nach Eichrecht",
        "appendix_intro": (
            "Die abgerechneten Energiemengen stammen aus signierten Messwerten des Zählers. "
            "So prüfen Sie sie: Öffnen Sie in der kostenlosen S.A.F.E. Transparenzsoftware "
            "(https://www.safe-ev.de) die Transparenzdatei des Ladevorgangs. Sie ist an diese "
            "PDF-Datei angehängt (in Ihrem PDF-Programm unter „Anhänge“) und lässt sich auch "
            "über den QR-Code oder die angegebene Adresse herunterladen. Die Software prüft die "
            "Signaturen von Beginn und Ende mit dem öffentlichen Schlüssel des Zählers und zeigt "
            "die Zählerstände an. Vergleichen Sie den öffentlichen Schlüssel mit dem am Ladepunkt "
            "angegebenen."
        ),
        "evidence_for": "Ladevorgang {no}",
        "session_id": "Vorgangs-ID",
        "start_end": "Beginn / Ende",
        "charge_point": "Ladepunkt",
        "meter_serial": "Zähler",
        "energy": "Energie",
        "verdict": "Prüfergebnis",
        "calibrated": "Geeichter Zähler",
        "calibrated_yes": "ja",
        "calibrated_no": "NEIN – diese Werte stammen nicht von einem geeichten Messgerät.",
        "transparency_file": "Transparenzdatei",
        "attached": "{name} (an diese PDF-Datei angehängt)",
        "not_attached": "nicht angehängt; Download über die Adresse unten",
        "begin_signed": "Signierte Daten Beginn",
        "end_signed": "Signierte Daten Ende",
        "public_key": "Öffentlicher Schlüssel des Zählers",
        "url": "Download der Transparenzdatei",
        "missing": "nicht vorhanden",
        "attachment": "Transparenzdatei (S.A.F.E.) zum Ladevorgang {session}",
        "page": "Seite {page} von {pages}",
        "email": "E-Mail",
        "iban": "IBAN",
        "bic": "BIC",
    },
    "en": {
        "invoice": "Invoice",
        "cancellation": "Cancellation invoice",
        "cancels": "This cancellation invoice cancels invoice no. {number} in full.",
        "number": "Invoice number",
        "issue_date": "Invoice date",
        "period": "Period of supply",
        "customer_id": "Customer number",
        "buyer_reference": "Your reference",
        "customer_vat_id": "Your VAT ID",
        "vat_id": "VAT ID",
        "tax_number": "Tax number",
        "our_vat_id": "Our VAT ID",
        "our_tax_number": "Our tax number",
        "supply": "Supply of electricity for charging electric vehicles in the period of supply "
        "{start} – {end}: charging sessions: {count}, energy in total: {kwh} kWh. "
        "All times are local times ({zone}).",
        "col_no": "No.",
        "col_time": "Start / end",
        "col_point": "Charge point / meter",
        "col_kwh": "Energy kWh",
        "col_items": "Items: quantity × unit price (net)",
        "col_vat": "VAT",
        "col_net": "Net",
        "no_meter": "Meter unknown",
        "component.ENERGY": "Energy",
        "component.TIME": "Charging time",
        "component.PARKING_TIME": "Parking time",
        "component.FLAT": "Flat fee",
        "session": "session",
        "none": "–",
        "net_at": "Net amount at {rate} VAT",
        "vat_at": "VAT {rate}",
        "net_without_vat": "Net amount not subject to VAT",
        "total_net": "Total net",
        "total_vat": "Total VAT",
        "total_gross": "Total gross",
        "total": "Total",
        "small_business": "No VAT is charged under section 19 UStG (small business).",
        "chart": "Energy per day in kWh (day the session started, local time)",
        "appendix": "Appendix: evidence under German calibration law (Eichrecht)",
        "appendix_intro": (
            "The energy billed comes from readings the meter signed. To check them, open the "
            "session's transparency file in the free S.A.F.E. Transparenzsoftware "
            "(https://www.safe-ev.de). The file is attached to this PDF (see your PDF viewer's "
            "attachments) and can also be downloaded through the QR code or the address given. "
            "The software checks the signatures of start and end with the meter's public key "
            "and shows the meter readings. Compare the public key with the one shown at the "
            "charge point."
        ),
        "evidence_for": "Charging session {no}",
        "session_id": "Session ID",
        "start_end": "Start / end",
        "charge_point": "Charge point",
        "meter_serial": "Meter",
        "energy": "Energy",
        "verdict": "Check result",
        "calibrated": "Calibrated meter",
        "calibrated_yes": "yes",
        "calibrated_no": "NO – these values are not from a calibrated meter.",
        "transparency_file": "Transparency file",
        "attached": "{name} (attached to this PDF)",
        "not_attached": "not attached; download it from the address below",
        "begin_signed": "Signed data, start",
        "end_signed": "Signed data, end",
        "public_key": "Meter public key",
        "url": "Download of the transparency file",
        "missing": "not available",
        "attachment": "Transparency file (S.A.F.E.) of charging session {session}",
        "page": "Page {page} of {pages}",
        "email": "Email",
        "iban": "IBAN",
        "bic": "BIC",
    },
}
_SMALL_BUSINESS_NOTES = {texts["small_business"] for texts in _TEXTS.values()}

_BASE = ParagraphStyle("base", fontName=SANS, fontSize=8.5, leading=11)
_SMALL = ParagraphStyle("small", _BASE, fontSize=7, leading=8.6)
_SMALL_BOLD = ParagraphStyle("small-bold", _SMALL, fontName=BOLD)
_SMALL_RIGHT = ParagraphStyle("small-right", _SMALL, alignment=TA_RIGHT)
_SENDER = ParagraphStyle("sender", _BASE, fontSize=6.5, leading=8, textColor=colors.dimgrey)
_ISSUER = ParagraphStyle("issuer", _BASE, fontName=BOLD, fontSize=13, leading=16)
_TITLE = ParagraphStyle(
    "title", _BASE, fontName=BOLD, fontSize=14, leading=18, spaceBefore=8, spaceAfter=4
)
_HEADING = ParagraphStyle(
    "heading", _BASE, fontName=BOLD, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3
)
_MONO = ParagraphStyle(
    "mono", _BASE, fontName=MONO, fontSize=MONO_SIZE, leading=8, leftIndent=4 * mm
)


def render(invoice: Invoice, *, e_invoice: bytes | None = None) -> bytes:
    """The invoice as a PDF/A-3 (conformance B) with each session's transparency file attached
    (`attachments`); the same snapshot always gives the same bytes. With `e_invoice`, the
    invoice's EN 16931 CII XML, it is a ZUGFeRD / Factur-X invoice: the XML embedded as
    factur-x.xml (relationship Data) and named in the XMP metadata."""
    _register_fonts()
    sheet = _Sheet.of(invoice)
    info = _Info.of(sheet, e_invoice=e_invoice is not None)
    buffer = BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=TOP_MARGIN,
        bottomMargin=BOTTOM_MARGIN,
        title=info.title,
        author=info.author,
        subject=info.subject,
        keywords=info.keywords,
        creator=CREATOR,
        producer=PRODUCER,
        invariant=1,
        pageCompression=1,
        initialFontName=SANS,
        lang="de-DE" if sheet.language == "de" else "en",
        displayDocTitle=True,
    )
    frame = Frame(
        MARGIN,
        BOTTOM_MARGIN,
        BODY_WIDTH,
        PAGE_HEIGHT - TOP_MARGIN - BOTTOM_MARGIN,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    files = [
        _Attached(name, content, description, "Supplement")
        for name, (content, description) in described_attachments(invoice).items()
    ]
    if e_invoice is not None:
        files.append(_Attached(FACTURX_XML, e_invoice, "Factur-X XML file", "Data"))
    canvasmaker = partial(
        _Canvas, decorate=partial(_decorate_page, sheet), info=info, files=files
    )
    doc.build(_story(sheet), canvasmaker=canvasmaker)
    return buffer.getvalue()


def attachments(invoice: Invoice) -> dict[str, bytes]:
    """The files `render` attaches (name -> content): each session's transparency XML."""
    return {name: content for name, (_, content) in _attachments(invoice).items()}


def described_attachments(invoice: Invoice) -> dict[str, tuple[bytes, str]]:
    """The files `render` attaches, name -> (content, description in the invoice's language)."""
    text = _Sheet.of(invoice).t["attachment"]
    return {
        name: (content, text.format(session=session))
        for name, (session, content) in _attachments(invoice).items()
    }


def _attachments(invoice: Invoice) -> dict[str, tuple[str, bytes]]:
    return {
        _attachment_name(line): (line.session_id, line.evidence.transparency_xml)
        for line in invoice.lines
        if line.evidence.transparency_xml is not None
    }


def _attachment_name(line: Line) -> str:
    return f"transparency-{line.session_id}.xml"


@cache
def _register_fonts() -> None:
    faces = {SANS: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf", MONO: "DejaVuSansMono.ttf"}
    for name, file in faces.items():
        pdfmetrics.registerFont(_Font(name, str(_FONTS / file)))
    # Nothing is printed in italics: <i> in a text would print upright, never in a missing face.
    pdfmetrics.registerFontFamily(SANS, normal=SANS, bold=BOLD, italic=SANS, boldItalic=BOLD)


class _Font(TTFont):  # type: ignore[misc]  # reportlab ships no type hints
    """A TrueType font whose `splitString` (the text as codes of the document's subsets of the
    font, for every string drawn) takes the way reportlab's takes for the most common text in
    one `str.translate`, instead of a loop a character: every character already has its code
    (the document used it before) and all are in the first subset. Anything else (a new
    character, a no-break space, a second subset) goes reportlab's way. A tenth of a PDF's time
    was that loop; the bytes are the same (tests/test_pdf.py compares both)."""

    def splitString(self, text: str | bytes, doc: Any, encoding: str = "utf-8") -> list[tuple[int, bytes]]:
        state = self.state.get(doc)
        if state is not None and isinstance(text, str) and text:
            codes = getattr(state, "ladebuch_codes", None)
            if codes is not None and len(codes) == len(state.assignments):
                try:
                    return [(0, text.translate(codes).encode("latin-1"))]
                except (_NoCode, UnicodeEncodeError):  # new, or not in the first subset (> 255)
                    pass
        split: list[tuple[int, bytes]] = super().splitString(text, doc, encoding)
        state = self.state[doc]
        if len(getattr(state, "ladebuch_codes", ())) != len(state.assignments):
            state.ladebuch_codes = _Codes(state.assignments)
        return split


class _NoCode(Exception):
    """A character without a code yet (`_Codes`)."""


class _Codes(dict[int, int]):
    """A document's codes of a font's characters, for `str.translate`, which leaves a
    character it finds no code for as it is: here that is an error."""

    def __missing__(self, character: int) -> int:
        raise _NoCode(character)


@dataclass(frozen=True)
class _Sheet:
    """One invoice with its language and time zone: the formatting every part shares."""

    invoice: Invoice
    language: str
    t: dict[str, str]
    zone: ZoneInfo

    @classmethod
    def of(cls, invoice: Invoice) -> _Sheet:
        language = invoice.language if invoice.language in _TEXTS else "de"
        return cls(invoice, language, _TEXTS[language], ZoneInfo(invoice.issuer.time_zone))

    @property
    def title(self) -> str:
        if self.invoice.kind == INVOICE:
            return self.t["invoice"]
        if self.invoice.kind == CANCELLATION:
            return self.t["cancellation"]
        raise ValueError(f"unknown invoice kind {self.invoice.kind!r}")

    @property
    def small_business(self) -> bool:
        return self.invoice.issuer.small_business

    def number(self, value: Decimal) -> str:
        """The value's own digits, neither rounded nor padded, with the language's decimal mark."""
        return self.localise(format(value, "f"))

    def money(self, value: Decimal) -> str:
        """An amount of the invoice, which is in cents already: printing never rounds it."""
        if value != cents(value):
            raise ValueError(f"amount {value} is not rounded to the cent")
        return self._currency(self.localise(format(cents(value), ",.2f")))

    def unit_price(self, value: Decimal, unit: str) -> str:
        """Exact: every decimal the tariff has, at least the cents (padding loses nothing)."""
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent > -2:
            value = value.quantize(Decimal("0.01"))
        return f"{self._currency(self.localise(format(value, ',f')))}/{self.unit(unit)}"

    def rate(self, rate: Decimal) -> str:
        text = self.number(rate.normalize())
        return f"{text} %" if self.language == "de" else f"{text}%"

    def unit(self, unit: str) -> str:
        return self.t["session"] if unit == "session" else unit

    def date(self, value: date) -> str:
        return value.strftime("%d.%m.%Y") if self.language == "de" else value.isoformat()

    def moment(self, value: datetime, *, seconds: bool = False) -> str:
        local = value.astimezone(self.zone)
        text = f"{self.date(local.date())} {local.strftime('%H:%M:%S' if seconds else '%H:%M')}"
        if seconds:
            offset = local.strftime("%z")
            text += f" (UTC{offset[:3]}:{offset[3:]})"
        return text

    def localise(self, text: str) -> str:
        return text.translate(str.maketrans(",.", ".,")) if self.language == "de" else text

    def _currency(self, amount: str) -> str:
        currency = self.invoice.currency
        if self.language == "de":
            return f"{amount} €" if currency == "EUR" else f"{amount} {currency}"
        if currency != "EUR":
            return f"{amount} {currency}"
        return f"-€{amount[1:]}" if amount.startswith("-") else f"€{amount}"


def _story(sheet: _Sheet) -> list[Flowable]:
    return [
        *_letterhead(sheet),
        *_sessions(sheet),
        *_totals(sheet),
        *_chart(sheet),
        PageBreak(),
        *_appendix(sheet),
    ]


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (names and notes may hold '&' or '<')."""
    if (
        text
        and text == " ".join(text.split())
        and not _MARKUP.search(text)
        and not style.textTransform
    ):
        # What parsing would give (one fragment of the text in the style), without parsing:
        # parsing costs more than laying the paragraph out, and most texts are this plain.
        fragment = _plain_fragment(style).clone(text=text, link=[], us_lines=[])
        return _Paragraph(text, style, frags=[fragment])
    return _Paragraph(escape(text), style)


_MARKUP = re.compile("[&<>]")


@cache
def _plain_fragment(style: ParagraphStyle) -> Any:
    return Paragraph("plain", style).frags[0]


def _lines(texts: Sequence[str], style: ParagraphStyle) -> Paragraph:
    return _Paragraph("<br/>".join(escape(text) for text in texts), style)


def _cell_lines(texts: Sequence[str], width: float) -> str | Paragraph:
    """A table cell of lines in `_SMALL` (the table's font): the lines as plain text where each
    fits on one line of `width` (a table draws that at a fraction of a paragraph's cost: two
    such cells a session), else a paragraph that wraps them."""
    if all(_fits(text, width) for text in texts):
        return "\n".join(texts)
    return _lines(texts, _SMALL)


def _fits(text: str, width: float) -> bool:
    """Whether `text` is one line of at most `width` in `_SMALL`."""
    return "\n" not in text and pdfmetrics.stringWidth(text, _SMALL.fontName, _SMALL.fontSize) <= width


class _Paragraph(Paragraph):  # type: ignore[misc]  # reportlab ships no type hints
    """A paragraph that breaks its lines once per width. Platypus asks for the size again and
    again (keeping a block together, a table's row heights, the table's drawing), and a
    paragraph's size depends on nothing but the width it is given."""

    _laid_out: tuple[float, tuple[float, float]] | None = None

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        if self._laid_out is None or self._laid_out[0] != available_width:
            self._laid_out = (available_width, super().wrap(available_width, available_height))
        return self._laid_out[1]


def _address(party: Party, *, with_country: bool) -> list[str]:
    address = party.address
    lines = [party.name, address.street, f"{address.postcode} {address.city}"]
    return [*lines, address.country] if with_country else lines


def _letterhead(sheet: _Sheet) -> list[Flowable]:
    invoice, t = sheet.invoice, sheet.t
    issuer, customer = invoice.issuer, invoice.customer
    abroad = issuer.address.country != customer.address.country
    info: list[tuple[str, str]] = [
        (t["number"], invoice.number),
        (t["issue_date"], sheet.date(invoice.issue_date)),
        (t["period"], f"{sheet.date(invoice.period_start)} – {sheet.date(invoice.period_end)}"),
    ]
    if customer.customer_id:
        info.append((t["customer_id"], customer.customer_id))
    if customer.buyer_reference:
        info.append((t["buyer_reference"], customer.buyer_reference))
    if customer.vat_id:
        info.append((t["customer_vat_id"], customer.vat_id))
    if issuer.vat_id:
        info.append((t["our_vat_id"], issuer.vat_id))
    if issuer.tax_number:
        info.append((t["our_tax_number"], issuer.tax_number))
    info_table = _table(
        [[_p(label, _SMALL), _p(value, _SMALL_BOLD)] for label, value in info],
        colWidths=[33 * mm, 59 * mm],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 0.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5),
        ],
    )
    sender = " · ".join(_address(issuer, with_country=abroad))
    recipient = _lines(_address(customer, with_country=abroad), _BASE)
    head = _table(
        [[[_p(sender, _SENDER), Spacer(1, 2 * mm), recipient], info_table]],
        colWidths=[BODY_WIDTH - 92 * mm, 92 * mm],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ],
    )
    story: list[Flowable] = [
        _p(issuer.name, _ISSUER),
        Spacer(1, 6 * mm),
        head,
        Spacer(1, 6 * mm),
        _p(f"{sheet.title} {invoice.number}", _TITLE),
    ]
    if invoice.kind == CANCELLATION and invoice.cancels:
        story.append(_p(t["cancels"].format(number=invoice.cancels), _BASE))
    total_kwh = sum((line.energy_kwh for line in invoice.lines), Decimal(0))
    story += [
        Spacer(1, 2 * mm),
        _p(
            t["supply"].format(
                start=sheet.date(invoice.period_start),
                end=sheet.date(invoice.period_end),
                count=len(invoice.lines),
                kwh=sheet.number(total_kwh),
                zone=invoice.issuer.time_zone,
            ),
            _BASE,
        ),
        Spacer(1, 3 * mm),
    ]
    return story


def _sessions(sheet: _Sheet) -> list[Flowable]:
    """One row per charging session; the header repeats on every page the table flows onto."""
    t = sheet.t
    with_vat = not sheet.small_business
    header = [t["col_no"], t["col_time"], t["col_point"], t["col_kwh"], t["col_items"]]
    widths = [8 * mm, 29 * mm, 30 * mm, 17 * mm]
    if with_vat:
        header.append(t["col_vat"])
        widths.append(11 * mm)
    header.append(t["col_net"])
    widths.append(20 * mm)
    widths.insert(4, BODY_WIDTH - sum(widths))
    rows: list[list[Any]] = [[_p(text, _SMALL_BOLD) for text in header]]
    for no, line in enumerate(sheet.invoice.lines, 1):
        row: list[Any] = [
            str(no),
            f"{sheet.moment(line.started_at)}\n– {sheet.moment(line.ended_at)}",
            _cell_lines([_charge_point(line), _meter(sheet, line)], widths[2] - 4),
            sheet.number(line.energy_kwh),
            _cell_lines(
                [
                    _component(sheet, c.type, c.quantity, c.unit, c.unit_price)
                    for c in line.components
                ],
                widths[4] - 4,
            ),
        ]
        if with_vat:
            row.append(t["none"] if line.vat_rate is None else sheet.rate(line.vat_rate))
        row.append(sheet.money(line.net))
        rows.append(row)
    style = [
        ("FONT", (0, 0), (-1, -1), SANS, 7, 8.6),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (3, 1), (3, -1), "RIGHT"),  # kWh
        ("ALIGN", (5, 1), (-1, -1), "RIGHT"),  # VAT rate and net
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, GRID),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, GRID),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, SHADE]),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
    return [_table(rows, colWidths=widths, repeatRows=1, style=style)]


def _table(rows: list[list[Any]], *, style: Sequence[tuple[Any, ...]] = (), **kwargs: Any) -> Table:
    """A table whose plain-text cells use the embedded font (reportlab's default is Helvetica,
    one of the standard fonts a PDF does not embed)."""
    return Table(rows, style=TableStyle([("FONT", (0, 0), (-1, -1), SANS, 7), *style]), **kwargs)


def _charge_point(line: Line) -> str:
    return (
        line.charge_point if line.evse_id is None else f"{line.charge_point} · EVSE {line.evse_id}"
    )


def _meter(sheet: _Sheet, line: Line) -> str:
    return sheet.t["no_meter"] if line.meter is None else line.meter


def _component(sheet: _Sheet, kind: str, quantity: Decimal, unit: str, price: Decimal) -> str:
    name = sheet.t.get(f"component.{kind}", kind)
    return f"{name} {sheet.number(quantity)} {sheet.unit(unit)} × {sheet.unit_price(price, unit)}"


def _totals(sheet: _Sheet) -> list[Flowable]:
    """Net and VAT per rate, then the totals; a §19 issuer shows no VAT at all, only the note."""
    invoice, t = sheet.invoice, sheet.t
    rows: list[tuple[str, Decimal]] = []
    if sheet.small_business:
        rows.append((t["total"], invoice.total_gross))
    else:
        for vat in invoice.vat:
            if vat.rate is None:
                rows.append((t["net_without_vat"], vat.net))
            else:
                rows.append((t["net_at"].format(rate=sheet.rate(vat.rate)), vat.net))
                rows.append((t["vat_at"].format(rate=sheet.rate(vat.rate)), vat.tax))
        rows += [
            (t["total_net"], invoice.total_net),
            (t["total_vat"], invoice.total_vat),
            (t["total_gross"], invoice.total_gross),
        ]
    table = _table(
        [[label, sheet.money(amount)] for label, amount in rows],
        colWidths=[62 * mm, 30 * mm],
        hAlign="RIGHT",
        style=[
            ("FONT", (0, 0), (-1, -1), SANS, 8.5, 11),
            ("FONT", (0, -1), (-1, -1), BOLD, 9, 12),
            ("ALIGN", (1, 0), (1, -1), "RIGHT"),
            ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ],
    )
    story: list[Flowable] = [Spacer(1, 2 * mm), table, Spacer(1, 3 * mm)]
    if sheet.small_business:
        story.append(_p(t["small_business"], _BASE))
    # The §19 note is printed above in the customer's language; a copy among the notes goes.
    notes = [
        note
        for note in invoice.notes
        if not (sheet.small_business and note in _SMALL_BUSINESS_NOTES)
    ]
    story += [_p(note, _BASE) for note in notes]
    return story


def _chart(sheet: _Sheet) -> list[Flowable]:
    """kWh per local day of the period (a session counts on the day it started)."""
    invoice = sheet.invoice
    per_day: dict[date, Decimal] = {}
    for line in invoice.lines:
        day = line.started_at.astimezone(sheet.zone).date()
        per_day[day] = per_day.get(day, Decimal(0)) + line.energy_kwh
    first = min([invoice.period_start, *per_day])
    last = max([invoice.period_end, *per_day])
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    amounts = [per_day.get(day, Decimal(0)) for day in days]
    ticks = _ticks(min(Decimal(0), *amounts), max(Decimal(0), *amounts))
    # Drawn from reportlab's plain shapes, about 70 of them: its bar chart widget makes ten
    # times as many nodes and took a tenth of the rendering. Bar heights are the only floats on
    # the invoice: they are drawn, not added up.
    left, bottom = 12 * mm, 7 * mm
    width, height = BODY_WIDTH - 14 * mm, 32 * mm
    low, span = float(ticks[0]), float(ticks[-1] - ticks[0])

    def y(value: Decimal) -> float:
        return float(bottom + (float(value) - low) / span * height)

    slot = width / len(days)
    gap = min(1.5, slot / 4)
    drawing = Drawing(BODY_WIDTH, 42 * mm, initialFontName=SANS)
    label = partial(shapes.String, fontName=SANS, fontSize=6, fillColor=colors.black)
    for n, name in enumerate(_day_labels(sheet, days)):
        if name:
            drawing.add(label(left + (n + 0.5) * slot, bottom - 7, name, textAnchor="middle"))
    for tick in ticks:
        drawing.add(shapes.Line(left, y(tick), left + width, y(tick), strokeColor=SHADE, strokeWidth=0.5))
        drawing.add(label(left - 3, y(tick) - 2, sheet.localise(f"{tick.normalize():f}"), textAnchor="end"))
    for n, amount in enumerate(amounts):
        if amount:
            base, end = sorted((y(Decimal(0)), y(amount)))
            drawing.add(shapes.Rect(left + n * slot + gap / 2, base, slot - gap, end - base,
                             fillColor=BAR, strokeColor=None))
    drawing.add(shapes.Line(left, bottom, left, bottom + height, strokeColor=GRID, strokeWidth=0.5))
    drawing.add(shapes.Line(left, y(Decimal(0)), left + width, y(Decimal(0)), strokeColor=GRID, strokeWidth=0.5))
    return [Spacer(1, 5 * mm), KeepTogether([_p(sheet.t["chart"], _SMALL_BOLD), drawing])]


def _ticks(low: Decimal, high: Decimal) -> list[Decimal]:
    """The value axis: round steps (1, 2 or 5 times a power of ten, at most five of them over
    the span, one more where it crosses zero) from at or below `low` to at or above `high`."""
    span = high - low or Decimal(1)
    magnitude = Decimal(1).scaleb(math.floor(math.log10(span / 5)))  # span / 50 < it <= span / 5
    step = next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= 5)
    first = (low / step).to_integral_value(rounding=ROUND_FLOOR) * step
    last = (high / step).to_integral_value(rounding=ROUND_CEILING) * step
    if first == last:
        last += step
    return [first + n * step for n in range(int((last - first) / step) + 1)]


def _day_labels(sheet: _Sheet, days: list[date]) -> list[str]:
    one_month = len({(day.year, day.month) for day in days}) == 1
    step = math.ceil(len(days) / (31 if one_month else 15))  # as many labels as fit

    def label(day: date) -> str:
        if one_month:
            return str(day.day)
        return f"{day.day}.{day.month}." if sheet.language == "de" else f"{day.month}-{day.day}"

    return [label(day) if n % step == 0 else "" for n, day in enumerate(days)]


def _appendix(sheet: _Sheet) -> list[Flowable]:
    story: list[Flowable] = [
        _p(sheet.t["appendix"], _TITLE),
        _p(sheet.t["appendix_intro"], _BASE),
        Spacer(1, 2 * mm),
    ]
    story += (_evidence(sheet, no, line) for no, line in enumerate(sheet.invoice.lines, 1))
    return story


def _evidence(sheet: _Sheet, no: int, line: Line) -> _Evidence:
    t, evidence = sheet.t, line.evidence
    name = _attachment_name(line)
    key_cell, value_cell = (partial(_cell, width=width) for width in _FACT_WIDTHS)
    calibrated = (
        value_cell(t["calibrated_yes"])
        if evidence.calibrated
        else _Paragraph(
            escape(t["calibrated_no"]), ParagraphStyle("warning", _SMALL_BOLD, textColor=WARNING)
        )
    )
    facts: list[tuple[str | Paragraph, str | Paragraph]] = [
        (key_cell(t["session_id"]), value_cell(line.session_id)),
        (
            key_cell(t["start_end"]),
            value_cell(
                f"{sheet.moment(line.started_at, seconds=True)} – "
                f"{sheet.moment(line.ended_at, seconds=True)}"
            ),
        ),
        (key_cell(t["charge_point"]), value_cell(_charge_point(line))),
        (key_cell(t["meter_serial"]), value_cell(line.meter or t["missing"])),
        (key_cell(t["energy"]), value_cell(f"{sheet.number(line.energy_kwh)} kWh")),
        (key_cell(t["verdict"]), _p(evidence.verdict, _SMALL_BOLD)),
        (key_cell(t["calibrated"]), calibrated),
        (
            key_cell(t["transparency_file"]),
            value_cell(
                t["attached"].format(name=name)
                if evidence.transparency_xml is not None
                else t["not_attached"]
            ),
        ),
    ]
    lines: list[_Text] = []
    for label, value in (
        (t["begin_signed"], evidence.begin_signed),
        (t["end_signed"], evidence.end_signed),
        (t["public_key"], evidence.public_key),
        (t["url"], evidence.url),
    ):
        lines.append(_Text(_SMALL_BOLD, 0, label))
        if value is None:
            lines.append(_Text(_SMALL, 0, t["missing"]))
        else:
            lines += (_Text(_MONO, _MONO.leftIndent, chunk) for chunk in _verbatim(value))
    return _Evidence(t["evidence_for"].format(no=no), facts, _QrCode(evidence.url, QR_SIZE), lines)


_FACT_PADDING = 6  # points right of a fact's key and of its value
# The facts' columns (key, value), each less the padding to its right; the QR code is right of them.
_FACT_WIDTHS = (38 * mm - _FACT_PADDING, BODY_WIDTH - QR_SIZE - 42 * mm - _FACT_PADDING)


def _cell(text: str, *, width: float) -> str | Paragraph:
    """A cell of plain text in `_SMALL`: the text itself where it fits on one line of `width`
    (drawn as it is), else a paragraph that wraps."""
    return text if _fits(text, width) else _p(text, _SMALL)


def _verbatim(text: str) -> list[str]:
    """Signed data as signed: every character kept (spaces too), hard-wrapped at the frame width,
    because a verifier must be able to type it back in."""
    per_line = int((BODY_WIDTH - _MONO.leftIndent) // pdfmetrics.stringWidth("0", MONO, MONO_SIZE))
    return [
        part[i : i + per_line]
        for part in text.split("\n")
        for i in range(0, max(len(part), 1), per_line)
    ]


@dataclass(frozen=True)
class _Text:
    """One line of text in `style`'s font, size and leading, `indent` points in."""

    style: ParagraphStyle
    indent: float
    text: str


class _Evidence(Flowable):  # type: ignore[misc]  # reportlab ships no type hints
    """One session's block of the appendix, kept together on a page: a heading, the facts
    (key and value, each a line of text or a paragraph that wraps) beside the QR code, and the
    signed data, one `_Text` a line. Laid out and drawn here in one text object: as platypus
    paragraphs, preformatted text and nested tables it took 2 ms a session, most of a PDF's
    time. Only a block taller than a whole page splits, between its lines of signed data; the
    rest of it continues on the next page without heading or facts."""

    _HEAD_PADDING = 3  # points above and below the facts and QR code

    def __init__(
        self,
        heading: str | None,
        facts: Sequence[tuple[str | Paragraph, str | Paragraph]],
        code: _QrCode | None,
        lines: Sequence[_Text],
    ) -> None:
        super().__init__()
        self.heading, self.facts, self.code, self.lines = heading, facts, code, lines
        self.spaceBefore = _HEADING.spaceBefore if heading is not None else 0
        self.rows = [
            max(_cell_height(key, _FACT_WIDTHS[0]), _cell_height(value, _FACT_WIDTHS[1])) + 1
            for key, value in facts
        ]
        self.head = (
            0.0
            if code is None
            else max(sum(self.rows), code.height) + 2 * self._HEAD_PADDING
        )
        self.top = _HEADING.leading + _HEADING.spaceAfter if heading is not None else 0.0
        self.width = BODY_WIDTH
        self.height = (
            self.top + self.head + sum(line.style.leading for line in lines) + _EVIDENCE_GAP
        )

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        if self.height <= _FRAME_HEIGHT:
            return []  # on the next page, whole
        room = available_height - self.top - self.head - _EVIDENCE_GAP
        taken = 0
        while taken < len(self.lines) and room >= self.lines[taken].style.leading:
            room -= self.lines[taken].style.leading
            taken += 1
        if taken < 2:  # not even a label and its first line: all of it on the next page
            return []
        return [
            _Evidence(self.heading, self.facts, self.code, self.lines[:taken]),
            _Evidence(None, (), None, self.lines[taken:]),
        ]

    def draw(self) -> None:
        canvas = self.canv
        text = canvas.beginText()
        top = self.height
        if self.heading is not None:
            _text_at(text, _HEADING, 0, top - _HEADING.fontSize, self.heading)
            top -= self.top
        row_top = top - self._HEAD_PADDING
        for (key, value), height in zip(self.facts, self.rows, strict=True):
            for x, width, cell in (
                (0, _FACT_WIDTHS[0], key),
                (_FACT_WIDTHS[0] + _FACT_PADDING, _FACT_WIDTHS[1], value),
            ):
                if isinstance(cell, str):
                    _text_at(text, _SMALL, x, row_top - 0.5 - _SMALL.fontSize, cell)
                else:  # drawn in its place, so that the text reads (and copies) in order
                    canvas.drawText(text)
                    cell.drawOn(canvas, x, row_top - 0.5 - cell.wrap(width, _FRAME_HEIGHT)[1])
                    text = canvas.beginText()
            row_top -= height
        y = top - self.head
        for line in self.lines:
            _text_at(text, line.style, line.indent, y - line.style.fontSize, line.text)
            y -= line.style.leading
        canvas.drawText(text)
        if self.code is not None:
            self.code.drawOn(canvas, BODY_WIDTH - QR_SIZE, top - self._HEAD_PADDING - QR_SIZE)


_FRAME_HEIGHT = PAGE_HEIGHT - TOP_MARGIN - BOTTOM_MARGIN
_EVIDENCE_GAP = 3 * mm  # below each session's block


def _cell_height(cell: str | Paragraph, width: float) -> float:
    if isinstance(cell, str):
        return float(_SMALL.leading)
    return float(cell.wrap(width, _FRAME_HEIGHT)[1])


def _text_at(text: Any, style: ParagraphStyle, x: float, y: float, line: str) -> None:
    """`line` at (x, y) in `style`'s font and colour, in the text object `text`."""
    if (text._fontname, text._fontsize) != (style.fontName, style.fontSize):
        text.setFont(style.fontName, style.fontSize)
    text.setTextOrigin(x, y)
    text._textOut(line)  # as textOut, without measuring the line to move the cursor after it


class _QrCode(Flowable):  # type: ignore[misc]  # reportlab ships no type hints
    """A URL as a QR code (`qr_modules`), drawn as an image mask: one bit a module, dark where
    it is 1, scaled to whole modules inside the quiet zone. One inline image instead of a
    rectangle a dark run: formatting those took a tenth of a PDF's time. Not interpolated (PDF/A
    forbids it), so every module keeps its sharp edges."""

    border = 4  # modules of quiet zone, as ISO/IEC 18004 asks

    def __init__(self, url: str, size: float) -> None:
        super().__init__()
        self.url = url
        self.modules = qr_modules(url)
        self.width = self.height = size

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        count = len(self.modules)
        unit = self.width / (count + 2 * self.border)
        self.canv.saveState()
        self.canv.setFillColor(colors.black)
        self.canv.addLiteral(
            f"{fp_str(count * unit)} 0 0 {fp_str(count * unit)} {fp_str(self.border * unit)} "
            f"{fp_str(self.border * unit)} cm\n{_image_mask(self.modules)}"
        )
        self.canv.restoreState()


def _image_mask(rows: Sequence[str]) -> str:
    """An inline image mask of `rows` ("1" dark), first row at the top, each row padded to a
    whole byte, its samples in hexadecimal (the content stream stays text); 1 paints (/D)."""
    width = len(rows[0])
    padding = "0" * (-width % 8)
    data = "".join(format(int(row + padding, 2), f"0{(width + len(padding)) // 4}X") for row in rows)
    return (
        f"BI /W {width} /H {len(rows)} /IM true /D [1 0] /F /AHx ID\n{data}>\nEI"
    )


# --- QR codes -------------------------------------------------------------------------------
#
# `invoices.qr` encodes (ISO/IEC 18004: byte mode, level M, the smallest version that fits, Reed-
# Solomon blocks, placement) with mask 0 in ~0.04 ms. Choosing the mask as the standard asks means
# scoring all eight masked symbols (7.8.3): segno's own scoring takes ~5 ms a code, reportlab's
# encoder 10 to 25 ms in all. Here each masked symbol is one text of its rows and then its
# columns ("0" light, "1" dark, lines apart by "2") held as a big integer, so that masking is one
# XOR, and scored with a few whole-symbol bit operations (~0.2 ms for all eight; a string
# search only where finder-like patterns overlap): the rules and arithmetic of segno's scoring,
# the same choice (the first lowest score).
# The tests check the symbols against segno's (its padding aside, see invoices/qr.py) and decode
# what is drawn.

_AS_TEXT = bytes.maketrans(b"\x00\x01", b"01")
_LIGHT, _DARK, _APART = b"012"
_FINDER_LIKE = b"1011101"  # N3: 1:1:3:1:1, counted with 4 light modules on a side
# Format information (ISO/IEC 18004 Table C.1) for level M and masks 0 to 7, BCH-coded, masked.
_FORMAT_M = (0x5412, 0x5125, 0x5E7C, 0x5B4B, 0x45F9, 0x40CE, 0x4F97, 0x4AA0)
_MASK_PATTERNS: tuple[Callable[[int, int], bool], ...] = (  # (row, column): flip? (7.8.2)
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)


def qr_modules(text: str) -> tuple[str, ...]:
    """The QR code of `text` at error correction level M, one string per row of modules, "1"
    for dark, without the quiet zone."""
    version, modules = qr.data_matrix(text)
    layout = _qr_layout(version)
    size = layout.size
    square = modules.translate(_AS_TEXT)
    lines = [square[i : i + size] for i in range(0, size * size, size)]
    lines += [square[column::size] for column in range(size)]
    symbol = int.from_bytes(b"2".join(lines))
    # Scored as the standard has it: data unmasked then masked anew, format and version
    # information light (they are written after the choice).
    plain = (symbol & layout.scored) ^ layout.masks[0]
    scores = [_penalty(plain ^ flips, layout) for flips in layout.masks]
    best = scores.index(min(scores))
    chosen = bytearray((symbol ^ layout.masks[0] ^ layout.masks[best]).to_bytes(layout.length))
    for bit, at in layout.format_cells:
        chosen[at] = _DARK if _FORMAT_M[best] >> bit & 1 else _LIGHT
    return tuple(chosen[: layout.rows_length].decode("ascii").split("2"))


@dataclass(frozen=True)
class _QrLayout:
    """What the symbols of one version share, over the text of rows and columns; as integers,
    the text's first character is the highest byte (or bit)."""

    size: int  # modules a side
    length: int  # characters of the text
    rows_length: int  # characters of its rows (and separators)
    masks: tuple[int, ...]  # per pattern: byte 1 where it flips a module (data modules only)
    scored: int  # AND: format and version information made light ("1" & "0" is "0")
    pairs: int  # bits: the module and the one before it lie in one line
    inner: int  # bits: rows and columns from the second on, in the rows (2x2 blocks end there)
    format_cells: tuple[tuple[int, int], ...]  # (bit of the format word, character)
    modules: int  # bits: a module (not a line separator)
    # Bits s where a pattern ending at s (N3) starts fewer than k modules from its line's start
    # (line_starts[k - 1]) or ends fewer than k from its line's end (line_ends[k - 1]).
    line_starts: tuple[int, ...]
    line_ends: tuple[int, ...]


@cache
def _qr_layout(version: int) -> _QrLayout:
    size = version * 4 + 17
    stride = size + 1
    length = 2 * size * stride - 1
    function = [[False] * size for _ in range(size)]

    def mark(rows: range, columns: range) -> None:
        for row in rows:
            for column in columns:
                function[row][column] = True

    end = size - 8
    for top, left in ((0, 0), (0, end), (end, 0)):  # finder patterns and separators
        mark(range(top, top + 8), range(left, left + 8))
    mark(range(6, 7), range(size))  # timing patterns
    mark(range(size), range(6, 7))
    mark(range(8, 9), range(9))  # format information and the dark module
    mark(range(9), range(8, 9))
    mark(range(8, 9), range(end, size))
    mark(range(end, size), range(8, 9))
    if version >= 7:  # version information
        mark(range(6), range(size - 11, end))
        mark(range(size - 11, end), range(6))
    centres = _alignment_centres(version)
    for row in centres:
        for column in centres:
            if not (row < 9 and (column < 9 or column > end - 2) or column < 9 and row > end - 2):
                mark(range(row - 2, row + 3), range(column - 2, column + 3))
    # Both copies of the 15 format bits (7.9.1), stepping over the timing pattern; bit i (0 the
    # lowest) at these modules. The dark module stays dark.
    format_bits: dict[tuple[int, int], int] = {}
    for i in range(8):
        step = 1 if i >= 6 else 0
        format_bits[(i + step, 8)] = i
        format_bits[(8, i + step)] = 14 - i
        format_bits[(8, size - 1 - i)] = i
        format_bits[(size - 1 - i, 8)] = 14 - i
    del format_bits[(end, 8)]
    light = {*format_bits, (end, 8)}
    if version >= 7:
        light |= {
            cell for i in range(6) for k in range(size - 11, end) for cell in ((i, k), (k, i))
        }

    def text(module: Callable[[int, int], int], apart: int) -> int:
        lines = [bytes(module(row, column) for column in range(size)) for row in range(size)]
        lines += [bytes(module(row, column) for row in range(size)) for column in range(size)]
        return int.from_bytes(bytes([apart]).join(lines))

    def positions(where: Callable[[int, int], bool]) -> int:
        return int("".join("1" if where(*divmod(at, stride)) else "0" for at in range(length)), 2)

    # A pattern (N3) ending in `column` starts in column - 6 of the line.
    def starts_near(k: int, line: int, column: int) -> bool:
        return 0 <= column - 6 < k

    def ends_near(k: int, line: int, column: int) -> bool:
        return 6 <= column < size and column + k >= size

    def flipped(flip: Callable[[int, int], bool]) -> int:
        return text(lambda row, column: int(not function[row][column] and flip(row, column)), 0)

    return _QrLayout(
        size=size,
        length=length,
        rows_length=size * stride - 1,
        masks=tuple(flipped(flip) for flip in _MASK_PATTERNS),
        scored=text(lambda row, column: _LIGHT if (row, column) in light else _DARK, _APART),
        pairs=positions(lambda line, column: 0 < column < size),
        inner=positions(lambda line, column: 0 < line < size and 0 < column < size),
        format_cells=tuple(
            (bit, row * stride + column) for (row, column), bit in format_bits.items()
        ),
        modules=positions(lambda line, column: column < size),
        line_starts=tuple(positions(partial(starts_near, k)) for k in range(1, 5)),
        line_ends=tuple(positions(partial(ends_near, k)) for k in range(1, 5)),
    )


def _alignment_centres(version: int) -> list[int]:
    """Row and column centres of the alignment patterns (ISO/IEC 18004 Annex E)."""
    if version == 1:
        return []
    count = version // 7 + 2
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    last = version * 4 + 10  # the size less 7
    return [6, *(last - step * n for n in range(count - 2, -1, -1))]


def _penalty(masked: int, layout: _QrLayout) -> int:
    """N1 + N2 + N3 + N4 of ISO/IEC 18004 7.8.3.1 for one masked symbol, as segno counts them
    (a 1:1:3:1:1 pattern at the edge of a line counts; the search goes on behind one counted)."""
    size = layout.size
    stride = size + 1
    text = masked.to_bytes(layout.length)
    bits = int(text.replace(b"2", b"0"), 2)
    same = ~(bits ^ (bits >> 1)) & layout.pairs  # a module like the one before it in its line
    # N1: a run of k >= 5 holds k - 4 windows of 5 equal modules and k - 5 of 6; its 3 + (k - 5)
    # points are 3 per window of 5 less 2 per window of 6.
    five = same & (same >> 1) & (same >> 2) & (same >> 3)
    n1 = 3 * five.bit_count() - 2 * (five & (same >> 4)).bit_count()
    # N2: 3 per 2x2 block of one colour, counted at its lower right module.
    above = ~(bits ^ (bits >> stride))
    n2 = 3 * (above & same & (same >> stride) & layout.inner).bit_count()
    dark = bits.bit_count() // 2  # every module is in the text twice, in its row and column
    n4 = 10 * int(abs(dark / size**2 * 100 - 50) / 5)
    return n1 + n2 + _n3(text, bits, layout) + n4


def _n3(text: bytes, bits: int, layout: _QrLayout) -> int:
    """N3: 40 per 1:1:3:1:1 pattern with 4 light modules (or the edge) on a side, found for all
    places at once: bit s of `found` is a pattern whose last module is bit s. Searching in order
    (`_n3_in_order`, segno's way) goes on behind a counted pattern, so it skips a pattern
    overlapping that one (4 or 6 modules on); where there is one, the search decides."""
    light = ~bits & layout.modules
    found = (bits >> 6) & (light >> 5) & (bits >> 4) & (bits >> 3) & (bits >> 2) & (light >> 1) & bits
    if not found:
        return 0
    light_before = light_after = found
    for k in range(1, 5):
        light_before &= ~(bits >> 6 + k) | layout.line_starts[k - 1]
        light_after &= ~(bits << k) | layout.line_ends[k - 1]
    counted = light_before | light_after
    if counted & ((found << 4) | (found << 6)):
        return _n3_in_order(text, layout.size)
    return 40 * counted.bit_count()


def _n3_in_order(text: bytes, size: int) -> int:
    stride = size + 1
    n3 = 0
    at = text.find(_FINDER_LIKE)
    while at != -1:
        start = at - at % stride
        after = at + 7
        if (
            at - start in (0, size - 7)
            or b"1" not in text[max(at - 4, start) : at]
            or b"1" not in text[after : min(after + 4, start + size)]
        ):
            n3 += 40
        else:
            after = at + 4
        at = text.find(_FINDER_LIKE, after)
    return n3


def _decorate_page(sheet: _Sheet, canvas: Canvas, page: int, pages: int) -> None:
    """Every page: number and page count at the top, the issuer, tax ids and bank at the foot."""
    invoice, t = sheet.invoice, sheet.t
    issuer = invoice.issuer
    canvas.saveState()
    canvas.setFont(SANS, 7)
    canvas.setFillColor(colors.dimgrey)
    canvas.drawRightString(
        PAGE_WIDTH - MARGIN,
        PAGE_HEIGHT - 10 * mm,
        f"{sheet.title} {invoice.number} · {t['page'].format(page=page, pages=pages)}",
    )
    canvas.setStrokeColor(GRID)
    canvas.setLineWidth(0.5)
    top = BOTTOM_MARGIN - 6 * mm
    canvas.line(MARGIN, top, PAGE_WIDTH - MARGIN, top)
    ids = []
    if issuer.vat_id:
        ids.append(f"{t['vat_id']} {issuer.vat_id}")
    if issuer.tax_number:
        ids.append(f"{t['tax_number']} {issuer.tax_number}")
    if issuer.email:
        ids.append(f"{t['email']} {issuer.email}")
    bank = [
        text
        for text in (
            issuer.bank,
            f"{t['iban']} {_iban(issuer.iban)}" if issuer.iban else None,
            f"{t['bic']} {issuer.bic}" if issuer.bic else None,
        )
        if text
    ]
    columns = [_address(issuer, with_country=False), ids, bank]
    width = BODY_WIDTH / len(columns)
    for n, column in enumerate(columns):
        for row, text in enumerate(column):
            canvas.drawString(MARGIN + n * width, top - 3.5 * mm - row * 3 * mm, text)
    canvas.restoreState()


def _iban(iban: str) -> str:
    compact = iban.replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


@dataclass(frozen=True)
class _Info:
    """The document information, as the info dictionary and the XMP metadata both say it."""

    title: str
    author: str
    subject: str
    keywords: str
    created: datetime  # the issue date, midnight in the issuer's time zone
    e_invoice: bool

    @classmethod
    def of(cls, sheet: _Sheet, *, e_invoice: bool) -> _Info:
        invoice = sheet.invoice
        title = f"{sheet.title} {invoice.number}"
        zone = ZoneInfo(invoice.issuer.time_zone)
        return cls(
            title=title,
            author=invoice.issuer.name,
            subject=f"{title}, {invoice.issuer.name}",
            keywords=f"{sheet.title}, Factur-X, ZUGFeRD, EN 16931" if e_invoice else sheet.title,
            created=datetime.combine(invoice.issue_date, time(), tzinfo=zone),
            e_invoice=e_invoice,
        )

    @property
    def pdf_date(self) -> str:
        offset = self.created.strftime("%z")
        return f"D:{self.created:%Y%m%d%H%M%S}{offset[:3]}'{offset[3:]}'"

    def xmp(self) -> bytes:
        """XMP metadata for PDF/A-3B saying what the info dictionary says, entry by entry (ISO
        19005-3 6.6.2.3.1), written by factur-x's own generator; for an e-invoice with the
        Factur-X extension schema and fields (document type, file name, version, level)."""
        fields = {
            "pdfa3_flavor": "B",
            "title": self.title,
            "author": self.author,
            "subject": self.subject,
            "producer": PRODUCER,
            "creator_tool": CREATOR,
            "timestamp": self.created.isoformat(),
            "version": "1.0",
        }
        if self.e_invoice:
            fields |= {
                "documenttype": "INVOICE",
                "xml_filename": FACTURX_XML,
                "xmp_level": "EN 16931",
                "urn": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
            }
        # Read back as a plain tree (factur-x's is objectified, its texts fixed) to add the
        # info dictionary's Keywords and Trapped (reportlab writes both) in the PDF schema.
        root = etree.fromstring(etree.tostring(facturx.generate_xmp_object(fields)))
        producer = root.find(f".//{{{_XMP_PDF}}}Producer")
        assert producer is not None
        for name, value in (("Keywords", self.keywords), ("Trapped", "False")):
            etree.SubElement(producer.getparent(), f"{{{_XMP_PDF}}}{name}").text = value
        for description in root.iter(f"{{{_RDF}}}Description"):
            description.set(f"{{{_RDF}}}about", "")  # about this document (XMP part 1, 7.4)
        packet = etree.tostring(root, pretty_print=True, encoding="unicode").strip()
        return f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{packet}\n<?xpacket end="w"?>'.encode()


_XMP_PDF = "http://ns.adobe.com/pdf/1.3/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


@dataclass(frozen=True)
class _Attached:
    name: str
    content: bytes
    description: str
    relationship: str  # AFRelationship: Data (the e-invoice), Supplement (evidence)


class _Canvas(Canvas):  # type: ignore[misc]  # reportlab ships no type hints
    """A canvas that decorates each page only at `save`, when the page count is known, sets the
    creation date, attaches files in the document's EmbeddedFiles name tree (reportlab has
    no API for attachments, but its PDF object model writes them), and compresses the page
    contents with Flate alone."""

    def __init__(
        self,
        *args: Any,
        decorate: Callable[[Canvas, int, int], None],
        info: _Info,
        files: Sequence[_Attached],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._decorate = decorate
        self._pages: list[dict[str, Any]] = []
        created = info.pdf_date
        self.setDateFormatter(lambda *_: created)
        _end_streams_on_a_line(self._doc)
        _pdf_a(self._doc, info, files)

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        pages = self._pages
        for number, state in enumerate(pages, 1):
            self.__dict__.update(state)
            self._decorate(self, number, len(pages))
            super().showPage()
            _deflate_only(self._doc.Pages.pages[-1])
        super().save()


def _deflate_only(page: Any) -> None:
    """The page's content stream Flate-compressed, without the ASCII85 encoding reportlab puts
    on top by default (`rl_config.useA85`, process-wide): that text form makes the stream a
    quarter larger and, in pure Python, costs a tenth of the rendering. The PDF is binary
    anyway (fonts, attachments). As reportlab's `PDFPage.check_format` builds it otherwise."""
    stream = PDFStream(content=page.stream, filters=[PDFZCompress])
    stream.__Comment__ = "page stream"
    page.Contents = stream


class _StreamEndingOnALine(PDFStream):  # type: ignore[misc]  # reportlab ships no type hints
    """A stream whose data is followed by an end of line before `endstream`, outside its
    Length, as PDF/A asks (ISO 19005-3 6.1.7.1); reportlab writes `endstream` right after the
    data."""

    def format(self, document: Any) -> bytes:
        formatted: bytes = super().format(document)
        assert formatted.endswith(b"endstream\n")
        return formatted[: -len(b"endstream\n")] + b"\nendstream\n"


def _end_streams_on_a_line(doc: Any) -> None:
    """Every stream the document registers (the fonts' too, made while saving) ends on a line
    of its own (`_StreamEndingOnALine`)."""
    register = doc.Reference

    def reference(obj: Any, name: str | None = None) -> Any:
        if type(obj) is PDFStream:
            obj.__class__ = _StreamEndingOnALine
        return register(obj, name)

    doc.Reference = reference


def _pdf_a(doc: Any, info: _Info, files: Sequence[_Attached]) -> None:
    """What PDF/A-3 asks of the catalog beyond reportlab's own: the XMP metadata, an sRGB
    output intent (the pages paint in DeviceRGB), and the attached files, each in the
    EmbeddedFiles name tree (keys sorted, as name trees must be) and associated with the
    document (/AF) with its relationship and MIME type."""
    catalog = doc.Catalog
    catalog.__NoDefault__ = [*catalog.__NoDefault__, "AF", "OutputIntents"]  # what it writes
    metadata = PDFStream(
        PDFDictionary({"Type": PDFName("Metadata"), "Subtype": PDFName("XML")}), content=info.xmp()
    )
    metadata.filters = None  # left readable, as XMP is meant to be
    catalog.Metadata = doc.Reference(metadata)
    profile = PDFStream(PDFDictionary({"N": 3}), content=_srgb_profile(), filters=[PDFZCompress])
    catalog.OutputIntents = PDFArray(
        [
            PDFDictionary(
                {
                    "Type": PDFName("OutputIntent"),
                    "S": PDFName("GTS_PDFA1"),
                    "OutputConditionIdentifier": PDFString("sRGB IEC61966-2.1"),
                    "RegistryName": PDFString("http://www.color.org"),
                    "Info": PDFString("sRGB IEC61966-2.1"),
                    "DestOutputProfile": doc.Reference(profile),
                }
            )
        ]
    )
    if not files:
        return
    names: list[Any] = []
    specs: list[Any] = []
    for file in sorted(files, key=lambda file: file.name):
        stream = PDFStream(
            PDFDictionary(
                {
                    "Type": PDFName("EmbeddedFile"),
                    "Subtype": "/text#2Fxml",  # the MIME type as a name; PDFName leaves '/' as is
                    "Params": PDFDictionary(
                        {
                            "Size": len(file.content),
                            "ModDate": PDFString(info.pdf_date),
                            "CheckSum": PDFText(
                                hashlib.md5(file.content, usedforsecurity=False).digest(),
                                enc="raw",
                            ),
                        }
                    ),
                }
            ),
            content=file.content,
            filters=[PDFZCompress],
        )
        spec = doc.Reference(
            PDFDictionary(
                {
                    "Type": PDFName("Filespec"),
                    "F": PDFString(file.name),
                    "UF": PDFString(file.name),
                    "Desc": PDFString(file.description),
                    "EF": PDFDictionary(
                        {"F": doc.Reference(stream), "UF": doc.Reference(stream)}
                    ),
                    "AFRelationship": PDFName(file.relationship),
                }
            )
        )
        names += [PDFString(file.name), spec]
        specs.append(spec)
    catalog.Names = PDFDictionary({"EmbeddedFiles": PDFDictionary({"Names": PDFArray(names)})})
    catalog.AF = PDFArray(specs)
    catalog.PageMode = PDFName("UseAttachments")


@cache
def _srgb_profile() -> bytes:
    """The ICC's sRGB profile (sRGB2014.icc, version 2; the ICC allows copying it unaltered)."""
    return (Path(__file__).parent / "sRGB2014.icc").read_bytes()
