"""The files an issued invoice is delivered as, and the archive that keeps them.

- `pdf`: the printed invoice as a ZUGFeRD/Factur-X PDF/A-3: `pdf.render` of the frozen
  document, with the EN 16931 CII XML embedded as factur-x.xml and each session's
  transparency file beside it;
- `xml`: the same EN 16931 CII XML on its own (Factur-X profile EN16931);
- `xrechnung`: the XRechnung 3.0 CII XML, for business customers (a public-sector buyer needs
  their Leitweg-ID as buyer reference);
- `evidence`: a ZIP of each session's Transparenzsoftware file, with a short README.

Each is a pure function of the issued document: the same invoice gives the same bytes. Every
e-invoice XML is validated (XSD and EN 16931 schematron) before it leaves; an invalid one is a
defect of ours and is never delivered.

`InvoiceFiles` keeps each file as first rendered, so a download in eight years gives the bytes
the customer got today even after reportlab or factur-x changed their output (GoBD: an invoice
is archived unchanged). The first download of any of an invoice's files renders them all
(`render_all`: the XML is built and validated once and the PDF carries those very bytes); the
first rendering to be stored wins, so concurrent first downloads on several processes store
each file once.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from invoices import einvoice, pdf
from invoices.document import CANCELLATION, Invoice
from projections.view import Cursor

PDF, XML, XRECHNUNG, EVIDENCE = "pdf", "xml", "xrechnung", "evidence"
KINDS = (PDF, XML, XRECHNUNG, EVIDENCE)
MEDIA_TYPES = {
    PDF: "application/pdf",
    XML: "application/xml",
    XRECHNUNG: "application/xml",
    EVIDENCE: "application/zip",
}
_SUFFIXES = {PDF: ".pdf", XML: ".xml", XRECHNUNG: "-xrechnung.xml", EVIDENCE: "-evidence.zip"}


class FileUnavailable(ValueError):
    """This invoice has no such file: XRechnung for a consumer, or evidence without signed data."""


class InvalidEInvoice(RuntimeError):
    """The XML we built fails validation: a defect of ours, never delivered."""


@dataclass(frozen=True)
class File:
    kind: str
    name: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def file_name(invoice: Invoice, kind: str) -> str:
    """`<number><suffix>`, the number made safe for a file name (a format may hold '/')."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", invoice.number)
    return safe + _SUFFIXES[kind]


def render(invoice: Invoice, kind: str) -> File:
    """One file of an issued invoice. Raises `FileUnavailable` when the invoice has none of this
    kind, `einvoice.EInvoiceError` when XRechnung lacks data, `InvalidEInvoice` on our defect."""
    if kind not in _BUILDERS:
        raise FileUnavailable(f"no file kind {kind!r}; known: {', '.join(KINDS)}")
    return File(kind, file_name(invoice, kind), MEDIA_TYPES[kind], _BUILDERS[kind](invoice))


def render_all(invoice: Invoice) -> list[File]:
    """Every file the invoice has, with the CII XML built and validated once: the PDF carries
    the very bytes of `invoice.xml`. XRechnung is left out where the snapshot lacks what it
    needs (`render(invoice, XRECHNUNG)` says what), the evidence ZIP where no session holds
    signed data."""
    xml = cii(invoice)
    made = [File(XML, file_name(invoice, XML), MEDIA_TYPES[XML], xml),
            File(PDF, file_name(invoice, PDF), MEDIA_TYPES[PDF], invoice_pdf(invoice, xml))]
    for kind in (XRECHNUNG, EVIDENCE):
        try:
            made.append(render(invoice, kind))
        except (FileUnavailable, einvoice.EInvoiceError):
            continue
    return made


def invoice_pdf(invoice: Invoice, xml: bytes | None = None) -> bytes:
    """The Factur-X PDF/A-3: the rendered invoice, its CII XML (`xml`, else built here) and the
    transparency files."""
    return pdf.render(invoice, e_invoice=cii(invoice) if xml is None else xml)


def cii(invoice: Invoice, profile: str = einvoice.EN16931) -> bytes:
    """The CII XML in `profile`, validated."""
    xml = einvoice.cii_xml(invoice, profile=profile)
    failures = einvoice.validate(xml, profile=profile)
    if failures:
        raise InvalidEInvoice(f"the {profile} XML of {invoice.number} fails: {'; '.join(failures)}")
    return xml


def xrechnung(invoice: Invoice) -> bytes:
    if not invoice.customer.business:
        raise FileUnavailable(
            f"{invoice.number} is to a consumer: XRechnung is for business customers"
        )
    return cii(invoice, einvoice.XRECHNUNG)


_README = {
    "de": (
        "Nachweise zur {title} {number}\n\n"
        "Je Ladevorgang eine Transparenzdatei (transparency-<Vorgangs-ID>.xml) mit dem signierten\n"
        "Anfangs- und Endwert und dem öffentlichen Schlüssel des Zählers. Öffnen Sie sie in der\n"
        "S.A.F.E. Transparenzsoftware (https://www.safe-ev.de), um die Signaturen zu prüfen, und\n"
        "vergleichen Sie den Schlüssel mit dem am Ladepunkt angegebenen.\n"
    ),
    "en": (
        "Evidence for {title} {number}\n\n"
        "One transparency file per charging session (transparency-<session id>.xml) with the\n"
        "signed begin and end readings and the meter's public key. Open it in the S.A.F.E.\n"
        "Transparenzsoftware (https://www.safe-ev.de) to check the signatures, and compare the\n"
        "key with the one shown on the charge point.\n"
    ),
}


def evidence_zip(invoice: Invoice) -> bytes:
    """The sessions' transparency files in one ZIP; fixed timestamps, so stable bytes."""
    files = pdf.attachments(invoice)
    if not files:
        raise FileUnavailable(f"no session of {invoice.number} holds signed meter data")
    moment = (invoice.issue_date.year, invoice.issue_date.month, invoice.issue_date.day, 0, 0, 0)
    de = invoice.language == "de"
    title = ("Stornorechnung" if de else "cancellation") if invoice.kind == CANCELLATION else (
        "Rechnung" if de else "invoice")
    readme = _README["de" if de else "en"].format(title=title, number=invoice.number)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in [("README.txt", readme.encode()), *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=moment)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


_BUILDERS: dict[str, Callable[[Invoice], bytes]] = {
    PDF: invoice_pdf,
    XML: cii,
    XRECHNUNG: xrechnung,
    EVIDENCE: evidence_zip,
}


class _Store(Protocol):
    def transaction(self) -> Any: ...
    def reading(self) -> Any: ...


class InvoiceFiles:
    """The archive of delivered files (table `invoice_files`), over a read-model view's
    connections (SQLite or PostgreSQL)."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    def get(self, invoice_id: UUID, invoice: Invoice, kind: str) -> File:
        """The stored file. On the first request for any of an invoice's files all of them are
        rendered (`render_all`) and stored, the first writer winning; a kind the invoice has
        none of raises as `render` does."""
        found = self.stored(invoice_id, kind)
        if found is not None:
            return found
        if kind not in KINDS:
            raise FileUnavailable(f"no file kind {kind!r}; known: {', '.join(KINDS)}")
        self.archive(invoice_id, invoice)
        stored = self.stored(invoice_id, kind)
        if stored is None:
            render(invoice, kind)  # raises why this invoice has no such file
            raise FileUnavailable(f"{kind} of invoice {invoice_id} was not rendered")
        return stored

    def archive(self, invoice_id: UUID, invoice: Invoice) -> None:
        """All of the invoice's files rendered (`render_all`) and stored, unless they are
        stored already; the first writer wins."""
        with self._store.reading() as cur:
            if cur.execute(
                "SELECT 1 FROM invoice_files WHERE invoice_id = %s AND kind = %s",
                (str(invoice_id), XML),
            ).fetchone() is not None:
                return
        now = datetime.now(UTC)
        with self._store.transaction() as cur:
            cur.executemany(
                "INSERT INTO invoice_files (invoice_id, kind, name, media_type, sha256, "
                "content, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (invoice_id, kind) DO NOTHING",
                [(str(invoice_id), made.kind, made.name, made.media_type, made.sha256,
                  made.content, now) for made in render_all(invoice)],
            )

    def stored(self, invoice_id: UUID, kind: str) -> File | None:
        with self._store.reading() as cur:
            row = _one(cur, str(invoice_id), kind)
        if row is None:
            return None
        name, media_type, sha256, content = row
        content = bytes(content)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise RuntimeError(f"stored {kind} of invoice {invoice_id} does not match its SHA-256")
        return File(kind, name, media_type, content)


def _one(cur: Cursor, invoice_id: str, kind: str) -> Any:
    return cur.execute(
        "SELECT name, media_type, sha256, content FROM invoice_files "
        "WHERE invoice_id = %s AND kind = %s",
        (invoice_id, kind),
    ).fetchone()
