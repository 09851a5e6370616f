"""The EN 16931 e-invoice: CII XML from the invoice snapshot, offline validation (XSD and the
EN 16931 schematron in saxonche), and the Factur-X PDF/A-3. No database."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from invoices.document import Customer, Invoice
from invoices.einvoice import (
    EN16931,
    GUIDELINES,
    XRECHNUNG,
    EInvoiceError,
    cii_xml,
    validate,
)
from invoices.pdf import attachments, render
from tests.invoice_samples import (
    FLEET,
    ISSUER,
    SMALL_BUSINESS,
    TENANT,
    cancellation_of,
    line,
    sample_invoice,
)

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
GUIDELINE = "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
TOTALS = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
FLEET_WITH_EMAIL = replace(FLEET, email="einkauf@flotte.example")


def parsed(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def text(tree: etree._Element, path: str) -> str:
    found: str | None = tree.findtext(path, namespaces=NS)
    assert found is not None, path
    return found


def amount(tree: etree._Element, path: str) -> Decimal:
    return Decimal(text(tree, path))


# --- XML and validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "invoice",
    [sample_invoice(), sample_invoice(lines=5, parking=True), sample_invoice(customer=FLEET)],
    ids=["tenant", "parking", "fleet"],
)
def test_invoice_is_valid_en16931(invoice: Invoice) -> None:
    xml = cii_xml(invoice)

    assert validate(xml) == []
    tree = parsed(xml)
    assert text(tree, "rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert text(tree, GUIDELINE) == "urn:cen.eu:en16931:2017"


def test_totals_and_lines_are_the_invoices() -> None:
    invoice = sample_invoice(lines=4, parking=True)
    tree = parsed(cii_xml(invoice))

    assert amount(tree, f"{TOTALS}/ram:GrandTotalAmount") == Decimal("24.94")  # 20.96 + 3.98

    assert amount(tree, f"{TOTALS}/ram:LineTotalAmount") == invoice.total_net
    assert amount(tree, f"{TOTALS}/ram:TaxBasisTotalAmount") == invoice.total_net
    assert amount(tree, f"{TOTALS}/ram:TaxTotalAmount") == invoice.total_vat
    assert amount(tree, f"{TOTALS}/ram:GrandTotalAmount") == invoice.total_gross
    assert amount(tree, f"{TOTALS}/ram:DuePayableAmount") == invoice.total_gross
    breakdown = tree.findall(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)
    rates = [
        (
            amount(b, "ram:RateApplicablePercent"),
            amount(b, "ram:BasisAmount"),
            amount(b, "ram:CalculatedAmount"),
        )
        for b in breakdown
    ]
    assert rates == [(rate.rate, rate.net, rate.tax) for rate in invoice.vat]
    items = tree.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS)
    assert [amount(i, ".//ram:LineTotalAmount") for i in items] == [li.net for li in invoice.lines]
    name, description = text(items[0], ".//ram:Name"), text(items[0], ".//ram:Description")
    assert name == "Ladevorgang WB1/1 2026-11-02 18:00–20:00"
    assert description.startswith("11,525 kWh; Energie 11,525 kWh × 0,39 EUR/kWh; Parkzeit 0,5 h")
    assert [q.attrib["unitCode"] for q in tree.iterfind(".//ram:BilledQuantity", NS)] == ["C62"] * 4
    assert text(tree, f"{SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:StartDateTime/*") == "20261101"
    assert text(tree, f"{SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:EndDateTime/*") == "20261130"
    assert text(tree, f"{SETTLEMENT}//ram:TypeCode") == "58"
    assert text(tree, f"{SETTLEMENT}//ram:IBANID") == "DE02120300000000202051"
    seller_ids = tree.iterfind(".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert [(i.get("schemeID"), i.text) for i in seller_ids] == [
        ("VA", "DE123456789"),
        ("FC", "27/123/45678"),
    ]


def test_small_business_is_exempt_with_the_section_19_reason() -> None:
    invoice = sample_invoice(issuer=SMALL_BUSINESS)
    xml = cii_xml(invoice)

    assert validate(xml) == []
    tree = parsed(xml)
    (breakdown,) = tree.findall(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)
    assert text(breakdown, "ram:CategoryCode") == "E"
    assert text(breakdown, "ram:ExemptionReason") == "Kleinunternehmer gemäß § 19 UStG"
    assert breakdown.find("ram:ExemptionReasonCode", NS) is None  # VATEX-EU-O is category O's
    assert amount(breakdown, "ram:CalculatedAmount") == 0
    assert amount(tree, f"{TOTALS}/ram:GrandTotalAmount") == invoice.total_net
    line_categories = tree.iterfind(".//ram:IncludedSupplyChainTradeLineItem//ram:CategoryCode", NS)
    assert {c.text for c in line_categories} == {"E"}
    note = text(tree, "rsm:ExchangedDocument/ram:IncludedNote/ram:Content")
    assert note == "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet."
    assert text(tree, ".//ram:SellerTradeParty/ram:ID") == SMALL_BUSINESS.tax_number  # BR-CO-26


def test_cancellation_is_a_credit_note_with_positive_amounts() -> None:
    original = sample_invoice(parking=True)
    xml = cii_xml(cancellation_of(original))

    assert validate(xml) == []
    tree = parsed(xml)
    assert text(tree, "rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert text(tree, f"{SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == (
        original.number
    )
    assert amount(tree, f"{TOTALS}/ram:GrandTotalAmount") == original.total_gross
    assert amount(tree, f"{TOTALS}/ram:TaxTotalAmount") == original.total_vat
    assert text(tree, f"{SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "1"
    assert "-" not in "".join(tree.xpath(".//ram:LineTotalAmount/text()", namespaces=NS))


def test_xrechnung_cancellation_is_valid() -> None:
    xml = cii_xml(cancellation_of(sample_invoice(customer=FLEET_WITH_EMAIL)), profile=XRECHNUNG)

    assert validate(xml, profile=XRECHNUNG) == []
    assert text(parsed(xml), "rsm:ExchangedDocument/ram:TypeCode") == "381"


def test_xrechnung_carries_the_buyer_reference_and_contact() -> None:
    xml = cii_xml(sample_invoice(customer=FLEET_WITH_EMAIL), profile=XRECHNUNG)

    assert validate(xml, profile=XRECHNUNG) == []
    tree = parsed(xml)
    assert text(tree, GUIDELINE) == GUIDELINES[XRECHNUNG]
    assert text(tree, ".//ram:BuyerReference") == "04011000-12345-34"  # BT-10
    seller, buyer = ".//ram:SellerTradeParty", ".//ram:BuyerTradeParty"
    assert text(tree, f"{seller}/ram:DefinedTradeContact//ram:URIID") == ISSUER.email
    assert text(tree, f"{seller}/ram:URIUniversalCommunication/ram:URIID") == ISSUER.email
    assert text(tree, f"{seller}/ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/"
                "ram:CompleteNumber") == "+49 30 1234567"  # BR-DE-6
    assert (
        text(tree, f"{buyer}/ram:URIUniversalCommunication/ram:URIID") == "einkauf@flotte.example"
    )
    assert text(tree, f"{buyer}/ram:SpecifiedTaxRegistration/ram:ID") == "DE987654321"
    # The Factur-X schematron knows only its own guideline id: it is what tells the two apart.
    assert [f for f in validate(xml, profile=EN16931) if f.startswith("FX-SCH-A-000556")]


@pytest.mark.parametrize(
    ("customer", "missing"),
    [(TENANT, "customer.buyer_reference"), (FLEET, "customer.email")],
    ids=["no-buyer-reference", "no-email"],
)
def test_xrechnung_names_what_is_missing(customer: Customer, missing: str) -> None:
    """Also the seller's telephone (BR-DE-6)."""
    with pytest.raises(ValueError, match=missing) as raised:
        cii_xml(sample_invoice(customer=customer), profile=XRECHNUNG)
    assert isinstance(raised.value, EInvoiceError)
    assert any(m.startswith(missing) for m in raised.value.missing)
    without_phone = replace(sample_invoice(customer=FLEET_WITH_EMAIL),
                            issuer=replace(ISSUER, phone=None))
    with pytest.raises(EInvoiceError, match=r"issuer\.phone \(BT-42, BR-DE-6\)"):
        cii_xml(without_phone, profile=XRECHNUNG)


def test_a_wrong_vat_total_is_caught() -> None:
    tree = parsed(cii_xml(sample_invoice()))
    tax_total = tree.find(f"{TOTALS}/ram:TaxTotalAmount", NS)
    assert tax_total is not None
    tax_total.text = str(Decimal(tax_total.text or "") + Decimal("0.01"))

    failures = validate(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))

    assert any(f.startswith("BR-CO-15: Invoice total amount with VAT") for f in failures), failures
    assert any(f.startswith("BR-CO-14:") for f in failures), failures


def test_xsd_violations_are_reported() -> None:
    tree = parsed(cii_xml(sample_invoice()))
    seller = tree.find(".//ram:SellerTradeParty", NS)
    assert seller is not None
    etree.SubElement(seller, f"{{{NS['ram']}}}Shoesize").text = "44"

    failures = validate(etree.tostring(tree))

    assert any(f.startswith("XSD: ") and "Shoesize" in f for f in failures), failures


def _with(xml: bytes, path: str, value: str, attribute: str | None = None) -> bytes:
    """`xml` with the text (or `attribute`) of every element at `path` set to `value`."""
    tree = parsed(xml)
    found = tree.findall(path, NS | {"udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"})
    assert found, path
    for element in found:
        if attribute is None:
            element.text = value
        else:
            element.set(attribute, value)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def test_the_lean_schematron_reports_what_factur_x_ships_reports() -> None:
    """The schematron runs rewritten (code lists read once, idle walks gone: `einvoice._lean`);
    its report is the shipped stylesheet's, byte for byte: for valid invoices and for ones that
    break code lists (currency, country, unit, VAT category, date format, guideline, document
    type), totals, and empty elements."""
    from importlib.resources import files

    from invoices.einvoice import _SCHEMATRON, _lean, _svrl

    assert _lean("<xsl:stylesheet/>") is None  # not the stylesheet it was written for: as shipped
    shipped = files(facturx).joinpath(_SCHEMATRON).read_text(encoding="utf-8")
    lean = _lean(shipped)  # this factur-x's stylesheet is the one it was written for
    assert lean is not None and lean.count("key('ladebuch-code'") == 59 == shipped.count("<xsl:when test=\"string-length($codeValue")
    assert "<xsl:apply-templates />" in shipped and "<xsl:apply-templates />" not in lean
    patterns = shipped.count('" select="/" />')
    assert patterns == 66 == lean.count('on-no-match="shallow-skip"')
    assert lean.count('<xsl:template match="@*|node()"') == 0 < shipped.count('<xsl:template match="@*|node()"')
    line_tax = "*/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
    valid = [cii_xml(sample_invoice()), cii_xml(sample_invoice(lines=3, customer=FLEET)),
             cii_xml(sample_invoice(issuer=SMALL_BUSINESS)), cii_xml(cancellation_of(sample_invoice())),
             cii_xml(sample_invoice(customer=FLEET_WITH_EMAIL), profile=XRECHNUNG)]
    xml = valid[0]
    # Comments and processing instructions: the shipped walks pass them by, shallow-skip visits them.
    valid.insert(1, xml.replace(b"<ram:ID>", b"<!-- a comment --><?a-pi data?><ram:ID>", 3))
    assert valid[1].count(b"<?a-pi data?>") == 3
    broken = [
        _with(xml, f"{SETTLEMENT}/ram:InvoiceCurrencyCode", "EUX"),
        _with(xml, ".//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID", "XX"),
        _with(xml, ".//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID", "de"),
        _with(xml, ".//ram:BilledQuantity", "ZZZ", attribute="unitCode"),
        _with(xml, f"{line_tax}/ram:CategoryCode", "Q"),
        _with(xml, ".//udt:DateTimeString", "999", attribute="format"),
        _with(xml, GUIDELINE, "urn:nope"),
        _with(xml, "rsm:ExchangedDocument/ram:TypeCode", "999"),
        _with(xml, f"{TOTALS}/ram:TaxTotalAmount", "0.01"),
        _with(xml, ".//ram:SellerTradeParty/ram:Name", ""),
    ]
    for n, document in enumerate(valid + broken):
        report = _svrl(document)
        assert report == _svrl(document, as_shipped=True), n
        assert ("failed-assert" in report) == (n >= len(valid) - 1), n  # XRechnung's own id too
    assert validate(valid[-1], profile=XRECHNUNG) == []
    assert all(validate(document) for document in broken)


def test_a_line_without_vat_rate_needs_a_small_business() -> None:
    invoice = replace(sample_invoice(), lines=(line(0, vat=None),))
    with pytest.raises(EInvoiceError, match="no positive VAT rate"):
        cii_xml(invoice)


# --- the ZUGFeRD / Factur-X PDF/A-3 -------------------------------------------------------------

XMP = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
}


@pytest.fixture(scope="module")
def facturx_pdf() -> tuple[Invoice, bytes, bytes]:
    invoice = sample_invoice(lines=3)
    xml = cii_xml(invoice)
    return invoice, xml, render(invoice, e_invoice=xml)


def xmp_of(reader: PdfReader) -> etree._Element:
    stream = reader.trailer["/Root"]["/Metadata"].get_object()
    assert "/Filter" not in stream  # readable without a PDF library
    data = stream.get_data()
    assert data.startswith('<?xpacket begin="\ufeff"'.encode()) and data.endswith(b'<?xpacket end="w"?>')
    return etree.fromstring(data.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])


def test_the_factur_x_pdf_carries_the_xml_and_each_transparency_file(
    facturx_pdf: tuple[Invoice, bytes, bytes],
) -> None:
    invoice, xml, data = facturx_pdf
    reader = PdfReader(io.BytesIO(data))

    assert reader.attachments == {"factur-x.xml": [xml]} | {
        name: [content] for name, content in attachments(invoice).items()
    }
    assert facturx.get_facturx_xml_from_pdf(data) == ("factur-x.xml", xml)
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"
    root = reader.trailer["/Root"]
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    specs = [spec.get_object() for spec in names[1::2]]
    assert [spec["/F"] for spec in specs] == sorted(reader.attachments)  # a sorted name tree
    assert [ref.get_object() for ref in root["/AF"]] == specs  # each associated with the document
    for spec in specs:
        assert spec["/UF"] == spec["/F"] and spec["/Desc"]
        assert spec["/AFRelationship"] == ("/Data" if spec["/F"] == "factur-x.xml" else "/Supplement")
        stream = spec["/EF"]["/F"].get_object()
        assert stream["/Subtype"] == "/text/xml"
        assert stream["/Params"]["/ModDate"] == "D:20261201000000+01'00'"
        assert stream["/Params"]["/Size"] == len(stream.get_data())
    assert root["/PageMode"] == "/UseAttachments"


def test_it_is_pdf_a_3b_its_xmp_saying_what_the_info_dictionary_says(
    facturx_pdf: tuple[Invoice, bytes, bytes],
) -> None:
    """ISO 19005-3: identification, every document information entry in the XMP as well (6.6.2.3.1),
    an sRGB output intent for the DeviceRGB the pages paint in (6.2.4.3), a file ID."""
    _, _, data = facturx_pdf
    reader = PdfReader(io.BytesIO(data))
    xmp = xmp_of(reader)
    info = reader.metadata
    assert info is not None

    def one(path: str) -> str:
        (found,) = xmp.findall(f".//{path}", XMP)
        return str(found.text)

    assert (one("pdfaid:part"), one("pdfaid:conformance")) == ("3", "B")
    assert one("dc:title/rdf:Alt/rdf:li") == info["/Title"] == "Rechnung LB-2026-000001"
    assert one("dc:creator/rdf:Seq/rdf:li") == info["/Author"] == ISSUER.name
    assert one("dc:description/rdf:Alt/rdf:li") == info["/Subject"]
    assert one("pdf:Keywords") == info["/Keywords"]
    assert one("pdf:Producer") == info["/Producer"]
    assert one("pdf:Trapped") == info["/Trapped"].lstrip("/")
    assert one("xmp:CreatorTool") == info["/Creator"]
    assert info["/CreationDate"] == info["/ModDate"] == "D:20261201000000+01'00'"
    assert one("xmp:CreateDate") == one("xmp:ModifyDate") == "2026-12-01T00:00:00+01:00"
    assert all(d.get(f"{{{XMP['rdf']}}}about") == "" for d in xmp.iter(f"{{{XMP['rdf']}}}Description"))
    (intent,) = [i.get_object() for i in reader.trailer["/Root"]["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/OutputConditionIdentifier"] == "sRGB IEC61966-2.1"
    profile = intent["/DestOutputProfile"].get_object()
    icc = profile.get_data()
    assert profile["/N"] == 3 and icc[36:40] == b"acsp" and icc[16:20] == b"RGB "
    assert len(reader.trailer["/ID"]) == 2
    # Each stream's data is exactly its /Length, then an end of line before endstream (6.1.7.1).
    starts = [m.end() for m in re.finditer(rb"\nstream\n", data)]
    assert len(starts) == data.count(b"endstream") > 10
    for start in starts:
        head = data[data.rindex(b" obj\n", 0, start) : start]
        length = int(re.findall(rb"/Length (\d+)", head)[-1])
        assert data[start + length : start + length + 10] == b"\nendstream", head


def test_the_xmp_names_the_xml_as_factur_x_does(facturx_pdf: tuple[Invoice, bytes, bytes]) -> None:
    """The Factur-X extension schema and fields are what factur-x's own generate_xmp_bytes
    writes for level EN 16931."""
    _, _, data = facturx_pdf
    ours = xmp_of(PdfReader(io.BytesIO(data)))
    packet = facturx.generate_xmp_bytes("factur-x", "en16931", None, {"title": "x"})
    theirs = etree.fromstring(packet.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])

    def factur_x_parts(xmp: etree._Element) -> list[bytes]:
        schemas = xmp.find(".//pdfaExtension:schemas", XMP)
        fields = xmp.find(".//fx:DocumentType/..", XMP)
        assert schemas is not None and fields is not None
        return [etree.tostring(schemas, method="c14n"), *(etree.tostring(f, method="c14n") for f in fields)]

    assert factur_x_parts(ours) == factur_x_parts(theirs)
    assert [etree.QName(f).localname for f in ours.find(".//fx:DocumentType/..", XMP)] == [
        "DocumentType", "DocumentFileName", "Version", "ConformanceLevel"]


def test_without_an_e_invoice_it_is_pdf_a_without_factur_x(
    facturx_pdf: tuple[Invoice, bytes, bytes],
) -> None:
    invoice, _, _ = facturx_pdf
    reader = PdfReader(io.BytesIO(render(invoice)))
    xmp = xmp_of(reader)
    assert xmp.find(".//pdfaid:part", XMP) is not None
    assert xmp.find(".//fx:DocumentType", XMP) is None and xmp.find(".//pdfaExtension:schemas", XMP) is None
    assert "factur-x.xml" not in reader.attachments and len(reader.attachments) == 3


def test_a_cancellation_is_a_factur_x_pdf_a_too() -> None:
    storno = cancellation_of(sample_invoice(lines=2))
    xml = cii_xml(storno)
    data = render(storno, e_invoice=xml)
    reader = PdfReader(io.BytesIO(data))
    xmp, info = xmp_of(reader), reader.metadata
    assert info is not None and info["/Title"] == f"Stornorechnung {storno.number}"
    assert xmp.findtext(".//dc:title/rdf:Alt/rdf:li", namespaces=XMP) == info["/Title"]
    assert xmp.findtext(".//fx:DocumentType", namespaces=XMP) == "INVOICE"  # credit notes too
    assert facturx.get_facturx_xml_from_pdf(data) == ("factur-x.xml", xml)
    assert validate(xml) == []


def test_the_xml_is_written_as_drafthorse_writes_it() -> None:
    """`einvoice._serialized` writes the document in one pass; drafthorse's own `serialize`
    (four passes, with its XSD check) gives the same bytes, for every kind of invoice."""
    from invoices.einvoice import _cii_document, _serialized

    for invoice, profile in (
        (sample_invoice(lines=5, parking=True), EN16931),
        (sample_invoice(customer=FLEET), EN16931),
        (sample_invoice(issuer=SMALL_BUSINESS), EN16931),
        (cancellation_of(sample_invoice()), EN16931),
        (sample_invoice(customer=FLEET_WITH_EMAIL), XRECHNUNG),
    ):
        document = _cii_document(invoice, profile)
        assert _serialized(document) == document.serialize(schema="FACTUR-X_EN16931")
        assert b'xmlns:xs="http://www.w3.org/2001/XMLSchema"' in _serialized(document)
