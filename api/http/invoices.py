"""/v1/issuers, /v1/invoice-runs and /v1/invoices: who invoices, the monthly run that drafts one
invoice per customer, and each invoice's life (issue, discard, cancel by Stornorechnung).

An issued invoice is never edited or deleted; its document is frozen at issue. A customer's key
sees only that customer's invoices; the accountant reads all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.http import paging, problems
from api.http.models import (
    InvoiceOut,
    InvoiceRunIn,
    InvoiceRunOut,
    IssueIn,
    IssuerCode,
    IssuerIn,
    IssuerOut,
    IssuerPatch,
    ReasonIn,
)
from api.http.paging import CursorParam, Limit, Page
from api.http.problems import Problem
from api.http.security import Admin, BooksReader, Principal, Reader, read_fresh, services
from api.services import Services
from invoices import files, issuing
from invoices.document import Invoice as Document
from invoices.einvoice import EInvoiceError
from ledger.errors import LedgerError
from ledger.invoicing import DRAFT, Invoice, Issuer

router = APIRouter(
    tags=["invoices"],
    responses=problems.responses(*problems.COMMON, 409),
    dependencies=[Depends(read_fresh)],
)
KIND = "invoices"


def _issuer_out(issuer: Issuer) -> IssuerOut:
    return IssuerOut(
        code=issuer.code, name=issuer.name, address=issuer.address, vat_id=issuer.vat_id,
        tax_number=issuer.tax_number, email=issuer.email, iban=issuer.iban, bic=issuer.bic,
        bank=issuer.bank, phone=issuer.phone, small_business=issuer.small_business, time_zone=issuer.time_zone,
        ranges=issuer.ranges, missing_for_invoices=issuer.missing_for_invoices(),
    )


def _address(value: Any) -> dict[str, str]:
    return {k: v for k, v in value.model_dump().items() if v}


@router.post("/v1/issuers", status_code=201, response_model=IssuerOut)
def create_issuer(request: Request, body: IssuerIn, _: Admin) -> IssuerOut:
    fields = body.model_dump(exclude={"code"})
    fields["address"] = _address(body.address)
    issuer = services(request).registry.register_issuer(body.code, **fields)
    return _issuer_out(issuer)


@router.get("/v1/issuers/{code}", response_model=IssuerOut)
def get_issuer(request: Request, code: IssuerCode, _: BooksReader) -> IssuerOut:
    return _issuer_out(services(request).registry.issuer(code))


@router.patch("/v1/issuers/{code}", response_model=IssuerOut)
def update_issuer(request: Request, code: IssuerCode, body: IssuerPatch, _: Admin) -> IssuerOut:
    fields = body.model_dump(exclude_none=True)
    if body.address is not None:
        fields["address"] = _address(body.address)
    return _issuer_out(services(request).registry.update_issuer(code, **fields))


@router.post("/v1/invoice-runs", status_code=201, response_model=InvoiceRunOut)
def invoice_run(request: Request, body: InvoiceRunIn, _: Admin) -> InvoiceRunOut:
    """One draft per customer with priced sessions that ended in the month (in the issuer's time
    zone) and are on no valid invoice or open draft. Nothing to invoice is a 409."""
    svc = services(request)
    start, end = issuing.month(body.period)
    svc.settle_prices()
    svc.wait_for_read_models("invoices", "pricing")
    result = issuing.run(svc.registry, svc.projections["invoices"].view, issuer=body.issuer,
                         period_start=start, period_end=end)
    svc.wait_for_read_models("invoices")
    return InvoiceRunOut(drafts=[str(d) for d in result.drafts], sessions=result.sessions,
                         without_customer=result.without_customer)


def _invoice_out(invoice: Invoice, *, document: bool) -> InvoiceOut:
    data = invoice.document or {}
    cancels = invoice.cancels
    return InvoiceOut(
        id=str(invoice.id), issuer=invoice.issuer, customer_id=invoice.customer_id,
        kind=invoice.kind,  # type: ignore[arg-type]
        state=invoice.state,  # type: ignore[arg-type]
        number=invoice.number, period_start=invoice.period_start, period_end=invoice.period_end,
        issue_date=date.fromisoformat(data["issue_date"]) if data else None,
        currency=data.get("currency"), total_net=data.get("total_net"),
        total_vat=data.get("total_vat"), total_gross=data.get("total_gross"),
        cancels=cancels, cancelled_by=invoice.cancelled_by, sessions=list(invoice.sessions),
        document=data if document and data else None,
    )


def _visible(svc: Services, invoice_id: UUID, principal: Principal) -> Invoice:
    invoice = svc.registry.get_or_none(Invoice, invoice_id)
    if invoice is None or not principal.sees_customer(invoice.customer_id):
        raise Problem("not-found", f"no invoice {invoice_id}")
    if principal.role == "customer" and invoice.state in ("draft", "discarded"):
        raise Problem("not-found", f"no invoice {invoice_id}")  # drafts are the operator's
    return invoice


@router.get("/v1/invoices", response_model=Page[InvoiceOut])
def list_invoices(
    request: Request, principal: Reader, limit: Limit = 50, cursor: CursorParam = None,
    customer_id: UUID | None = None,
    issuer: Annotated[str | None, Query(max_length=36)] = None,
    state: Literal["draft", "discarded", "issued", "cancelled"] | None = None,
) -> Page[InvoiceOut]:
    """Newest first. A customer's key lists only that customer's issued invoices."""
    before = paging.decode(KIND, cursor, int)
    own = principal.only_customer()
    if own is not None and customer_id is not None and str(customer_id) != own:
        return Page(items=[])
    clauses, params = [], []
    for clause, value in (("customer_id = %s", own or (str(customer_id) if customer_id else None)),
                          ("issuer = %s", issuer), ("state = %s", state),
                          ("drafted_position < %s", before)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if own is not None:
        clauses.append("state IN ('issued', 'cancelled')")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    svc = services(request)
    with svc.reading() as cur:
        rows = cur.execute(
            f"SELECT invoice_id, drafted_position FROM rm_invoices {where} "  # noqa: S608
            "ORDER BY drafted_position DESC LIMIT %s", [*params, limit + 1],
        ).fetchall()
    found = [{"invoice_id": r[0], "drafted_position": r[1]} for r in rows]
    found, next_cursor = paging.page(KIND, found, limit, "drafted_position")
    items = []
    for row in found:
        invoice = svc.registry.get_or_none(Invoice, UUID(str(row["invoice_id"])))
        if invoice is not None:
            items.append(_invoice_out(invoice, document=False))
    return Page(items=items, next_cursor=next_cursor)


@router.get("/v1/invoices/{invoice_id}", response_model=InvoiceOut)
def get_invoice(request: Request, invoice_id: UUID, principal: Reader) -> InvoiceOut:
    """An issued invoice with its frozen document; a draft with a preview of what issuing it
    today would print, or the reason it cannot be issued now."""
    svc = services(request)
    invoice = _visible(svc, invoice_id, principal)
    out = _invoice_out(invoice, document=True)
    if invoice.state == DRAFT:
        try:
            out.preview = issuing.preview(
                svc.registry, svc.ledger, invoice_id, issue_date=_today(svc, invoice.issuer),
                base_url=str(request.base_url),
            ).to_json()
        except LedgerError as exc:
            out.preview_problem = str(exc)
    return out


def _today(svc: Services, issuer: str) -> date:
    zone = ZoneInfo(svc.registry.issuer(issuer).time_zone)
    return datetime.now(UTC).astimezone(zone).date()


@router.post("/v1/invoices/{invoice_id}/issue", response_model=InvoiceOut)
def issue_invoice(request: Request, invoice_id: UUID, body: IssueIn, principal: Admin) -> InvoiceOut:
    """Freeze the draft: its number, its document, its sessions claimed. Issuing again is a 409."""
    svc = services(request)
    draft = _visible(svc, invoice_id, principal)
    issued = issuing.issue(
        svc.registry, svc.ledger, invoice_id, issue_date=body.issue_date or _today(svc, draft.issuer),
        at=datetime.now(UTC), by=principal.name, base_url=str(request.base_url),
    )
    svc.wait_for_read_models("invoices")
    return _invoice_out(issued, document=True)


@router.post("/v1/invoices/{invoice_id}/discard", response_model=InvoiceOut)
def discard_invoice(request: Request, invoice_id: UUID, body: ReasonIn, principal: Admin) -> InvoiceOut:
    svc = services(request)
    _visible(svc, invoice_id, principal)
    discarded = issuing.discard(svc.registry, invoice_id, body.reason)
    svc.wait_for_read_models("invoices")
    return _invoice_out(discarded, document=False)


@router.post("/v1/invoices/{invoice_id}/cancel", status_code=201, response_model=InvoiceOut)
def cancel_invoice(request: Request, invoice_id: UUID, body: ReasonIn, principal: Admin) -> InvoiceOut:
    """Issue the Stornorechnung (a new invoice with its own number, negating this one); the
    sessions become invoiceable again. Answers the cancellation."""
    svc = services(request)
    original = _visible(svc, invoice_id, principal)
    storno = issuing.cancel(
        svc.registry, invoice_id, issue_date=body.issue_date or _today(svc, original.issuer),
        at=datetime.now(UTC), by=principal.name, reason=body.reason,
    )
    svc.wait_for_read_models("invoices")
    return _invoice_out(storno, document=True)


# The files of an issued invoice (or Stornorechnung): path -> kind of `invoices.files`.
FILES = {
    "invoice.pdf": (files.PDF, "The invoice as ZUGFeRD/Factur-X PDF/A-3 with its e-invoice XML "
                    "and each session's transparency file attached"),
    "invoice.xml": (files.XML, "The EN 16931 e-invoice (CII, Factur-X profile EN16931)"),
    "xrechnung.xml": (files.XRECHNUNG, "The XRechnung 3.0 e-invoice (CII), for business customers"),
    "evidence.zip": (files.EVIDENCE, "Each session's Transparenzsoftware file, to check the "
                     "signed meter values"),
}


def _file_route(path: str, kind: str, summary: str) -> None:
    def download(request: Request, invoice_id: UUID, principal: Reader) -> Response:
        svc = services(request)
        invoice = _visible(svc, invoice_id, principal)
        if invoice.document is None:
            raise Problem("conflict", f"invoice {invoice_id} is {invoice.state}: only an issued "
                          "invoice has files")
        try:
            found = svc.files.get(invoice_id, Document.from_json(invoice.document), kind)
        except files.FileUnavailable as exc:
            raise Problem("not-found", str(exc)) from None
        except EInvoiceError as exc:
            raise Problem("conflict", str(exc)) from None
        return Response(
            found.content, media_type=found.media_type,
            headers={"Content-Disposition": f'attachment; filename="{found.name}"',
                     "ETag": f'"{found.sha256}"', "Cache-Control": "private, max-age=31536000, immutable"},
        )

    download.__name__ = "download_" + kind
    download.__doc__ = (f"{summary}. Rendered once from the frozen document and archived: every "
                        "later download gives the same bytes. A draft has none (409).")
    router.add_api_route(
        f"/v1/invoices/{{invoice_id}}/{path}", download, methods=["GET"], response_class=Response,
        responses={200: {"content": {files.MEDIA_TYPES[kind]: {}}, "description": summary}},
    )


for _path, (_kind, _summary) in FILES.items():
    _file_route(_path, _kind, _summary)
