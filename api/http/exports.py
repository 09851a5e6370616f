"""/v1/exports: what the accountant takes to the books, and /v1/sessions/{id}/cdr: what an
operator passes to roaming partners.

- `datev`: the DATEV EXTF Buchungsstapel of an issuer's invoices and Stornorechnungen issued in
  a month (Belegdatum), with SKR03 or SKR04 accounts;
- `invoices.csv` and `invoice-lines.csv`: the same invoices, and their lines (one per session);
- `priced-sessions.csv`: every session priced (or not) that ended in a period, with the number
  of the valid invoice it is on;
- the OCPI 2.2.1 CDR of one priced session, with its signed meter data.

Everything renders from frozen invoice documents and price records (`invoices.exports`).
Exports are for the staff: admin, auditor and accountant; a customer gets 403.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from api.http import problems
from api.http.models import In
from api.http.paging import FromParam, ToParam, check_range
from api.http.problems import Problem
from api.http.security import BooksReader, read_fresh, services
from api.services import Services
from invoices import exports, issuing
from invoices.document import Invoice as Document
from ledger.errors import Conflict
from ledger.invoicing import Invoice, SessionClaim
from ledger.invoicing import Issuer as IssuerAggregate
from ledger.priced import PRICED, SessionPrice
from projections import queries

router = APIRouter(
    tags=["exports"],
    responses=problems.responses(*problems.COMMON, 409),
    dependencies=[Depends(read_fresh)],
)
Period = Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$",
                              description="The month of the invoices' issue dates, e.g. 2026-11")]
IssuerQuery = Annotated[str, Query(min_length=1, max_length=36, description="The issuer's code")]
CSV = "text/csv; charset=utf-8"


def _download(content: bytes, name: str, media_type: str) -> Response:
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _issued(svc: Services, issuer: str, period: str) -> list[Document]:
    """The issuer's invoices and Stornorechnungen issued in the month, by date and number."""
    if svc.registry.get_or_none(IssuerAggregate, IssuerAggregate.create_id(issuer)) is None:
        raise Problem("not-found", f"no issuer {issuer}")
    start, end = issuing.month(period)
    with svc.reading() as cur:
        ids = [row[0] for row in cur.execute(
            "SELECT invoice_id FROM rm_invoices WHERE issuer = %s AND issue_date >= %s "
            "AND issue_date <= %s AND state IN ('issued', 'cancelled')",
            (issuer, start.isoformat(), end.isoformat()),
        ).fetchall()]
    documents = []
    for invoice_id in ids:
        invoice = svc.registry.get_or_none(Invoice, UUID(str(invoice_id)))
        if invoice is not None and invoice.document is not None:
            documents.append(Document.from_json(invoice.document))
    return sorted(documents, key=lambda d: (d.issue_date, d.number))


@router.get("/v1/exports/datev", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "EXTF Buchungsstapel, cp1252"}})
def datev(
    request: Request, _: BooksReader, issuer: IssuerQuery, period: Period,
    consultant_number: Annotated[int, Query(description="DATEV Beraternummer (1001-9999999)")],
    client_number: Annotated[int, Query(description="DATEV Mandantennummer (1-99999)")],
    chart: Literal["skr03", "skr04"] = "skr03",
    fiscal_year_start: Annotated[date | None, Query(description="Default: 1 January")] = None,
    receivables_account: Annotated[str | None, Query(pattern=r"^[0-9]{4,9}$")] = None,
    account_length: Annotated[int, Query(ge=4, le=8)] = 4,
) -> Response:
    """The DATEV EXTF Buchungsstapel (format version 13) of the invoices issued in `period`:
    one booking per invoice and VAT rate, each Stornorechnung booked on the other side. The
    accounts are the chart's defaults (SKR03 8400/1400, SKR04 4400/1200; §19 8195/4185)."""
    svc = services(request)
    documents = _issued(svc, issuer, period)
    start, end = issuing.month(period)
    settings: dict[str, Any] = {"receivables_account": receivables_account} if receivables_account else {}
    try:
        config = getattr(exports.DatevConfig, chart)(
            consultant_number=consultant_number, client_number=client_number,
            fiscal_year_start=fiscal_year_start or date(start.year, 1, 1),
            account_length=account_length, **settings,
        )
        content = exports.datev_buchungsstapel(
            documents, config=config, period_start=start, period_end=end, created_at=datetime.now(UTC),
        )
    except exports.ExportError as exc:
        raise Problem("invalid-value", str(exc)) from None
    return _download(content, f"EXTF_Buchungsstapel_{issuer}_{period}.csv", "text/csv; charset=windows-1252")


@router.get("/v1/exports/invoices.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "One row per invoice"}})
def invoices_csv(request: Request, _: BooksReader, issuer: IssuerQuery, period: Period) -> Response:
    """The invoices and Stornorechnungen issued in `period`: number, dates, customer, totals."""
    documents = _issued(services(request), issuer, period)
    return _download(exports.invoices_csv(documents), f"invoices_{issuer}_{period}.csv", CSV)


@router.get("/v1/exports/invoice-lines.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "One row per invoice line"}})
def invoice_lines_csv(request: Request, _: BooksReader, issuer: IssuerQuery, period: Period) -> Response:
    """The lines (one per charging session) of the invoices issued in `period`."""
    documents = _issued(services(request), issuer, period)
    return _download(exports.sessions_csv(documents), f"invoice-lines_{issuer}_{period}.csv", CSV)


@router.get("/v1/exports/priced-sessions.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "One row per session"}})
def priced_sessions_csv(
    request: Request, _: BooksReader, from_: FromParam = None, to: ToParam = None,
    customer_id: UUID | None = None,
) -> Response:
    """Every session that ended in [from, to) with its current price record (or the reason it
    has none) and the valid invoice it is on."""
    check_range(from_, to)
    svc = services(request)
    rows: list[dict[str, Any]] = []
    before = None
    with svc.reading() as cur:
        while True:
            page = queries.list_priced_sessions(
                cur, limit=1000, before=before, ended_from=from_, ended_to=to,
                customer_id=str(customer_id) if customer_id else None,
            )
            rows += page
            if len(page) < 1000:
                break
            before = page[-1]["first_position"]
        numbers: dict[str, str] = {}
        ids = [str(row["session_id"]) for row in rows]
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            numbers.update(cur.execute(
                "SELECT s.session_id, i.number FROM rm_invoice_sessions s JOIN rm_invoices i "
                "ON i.invoice_id = s.invoice_id WHERE i.kind = 'invoice' AND i.state = 'issued' "
                f"AND s.session_id IN ({', '.join(['%s'] * len(chunk))})",  # noqa: S608
                chunk,
            ).fetchall())
    rows.reverse()  # oldest first
    for row in rows:
        row["invoice_number"] = numbers.get(str(row["session_id"]))
        for key in ("started_at", "ended_at"):
            if isinstance(row[key], str):
                row[key] = datetime.fromisoformat(row[key])
        for key in ("total_energy", "total_excl_vat", "total_incl_vat"):
            if row[key] is not None:
                row[key] = Decimal(str(row[key]))
    return _download(exports.priced_sessions_csv(rows), "priced-sessions.csv", CSV)


class CdrIn(In):
    country_code: str = Field(pattern=r"^[A-Z]{2}$", description="The CPO's ISO 3166-1 alpha-2 country")
    party_id: str = Field(pattern=r"^[A-Z0-9]{3}$", description="The CPO's OCPI party id")
    location: dict[str, Any] = Field(description=(
        "OCPI CdrLocation: id, address, city, country (alpha-3), coordinates {latitude, "
        "longitude}, evse_id, connector_standard, connector_format, connector_power_type; "
        "optional name, postal_code, state, evse_uid, connector_id"))
    token_type: Literal["AD_HOC_USER", "APP_USER", "OTHER", "RFID"] = "RFID"
    auth_method: Literal["AUTH_REQUEST", "COMMAND", "WHITELIST"] = "WHITELIST"
    contract_id: str | None = Field(None, max_length=36)
    emsp: tuple[str, str] | None = Field(None, description="The token owner's [country_code, party_id]")


@router.post("/v1/sessions/{session_id}/cdr", responses={200: {"description": "OCPI 2.2.1 CDR"}})
def session_cdr(request: Request, session_id: UUID, body: CdrIn, _: BooksReader) -> Response:
    """The OCPI 2.2.1 CDR of a priced session with its `signed_data`: from the valid invoice
    the session is on (a re-issued invoice gives a new CDR id), else from its price record.
    What the ledger does not hold about the location comes in the body."""
    svc = services(request)
    record = svc.ledger.current(SessionPrice, SessionPrice.create_id(session_id))
    outcome = None if record is None else record.outcome
    if outcome is None or outcome.get("status") != PRICED:
        raise Problem("not-found", f"session {session_id} is not priced")
    token = outcome.get("id_token")
    if not token:
        raise Problem("conflict", f"session {session_id} has no id token: a CDR needs cdr_token.uid")
    claim = svc.registry.get_or_none(SessionClaim, SessionClaim.create_id(str(session_id)))
    invoice = None if claim is None or claim.invoice is None else svc.registry.get_or_none(
        Invoice, UUID(str(claim.invoice)))
    document, currency = None, None  # an invoice gives its own currency
    if invoice is not None and invoice.document is not None:
        document = Document.from_json(invoice.document)
        line = next(line for line in document.lines if line.session_id == str(session_id))
    else:
        try:
            line, currency = issuing.line_of(svc.ledger, session_id, small_business=False,
                                             language="en", base_url=str(request.base_url))
        except Conflict as exc:
            raise Problem("conflict", str(exc)) from None
    try:
        cdr = exports.ocpi_cdr(
            line, document, country_code=body.country_code, party_id=body.party_id,
            location=body.location, token_uid=token, token_type=body.token_type,
            contract_id=body.contract_id, emsp=body.emsp, auth_method=body.auth_method,
            last_updated=datetime.now(UTC), currency=currency,
        )
    except exports.ExportError as exc:
        raise Problem("invalid-value", str(exc)) from None
    return Response(exports.cdr_json(cdr), media_type="application/json")
