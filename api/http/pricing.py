"""Prices: each session's price record with its history (`/v1/sessions/{id}/price`), an
operator's re-pricing, the priced sessions of a period and their totals per customer
(`/v1/priced-sessions`).

Sessions are priced by the server (`invoices.pricer`) when they end; `?fresh=true` waits until
what is stored now is priced and shown. A customer's key sees only that customer's prices.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.http import paging, problems
from api.http.models import (
    PricedSessionOut,
    PriceRecordOut,
    PriceTotalsOut,
    RepriceIn,
    SessionPriceOut,
)
from api.http.paging import CursorParam, FromParam, Limit, Page, ToParam
from api.http.problems import Problem
from api.http.security import Admin, Principal, Reader, read_fresh, services
from api.services import Services
from invoices.pricer import reprice
from ledger.priced import SessionPrice
from ledger.sessions import ChargingSession
from ledger.tariffs import Tariff
from projections import queries

router = APIRouter(
    tags=["prices"],
    responses=problems.responses(*problems.COMMON, 409),
    dependencies=[Depends(read_fresh)],
)
KIND = "priced-sessions"


def _history(svc: Services, session_id: UUID) -> list[PriceRecordOut]:
    events = svc.ledger.events.get(SessionPrice.create_id(session_id))
    return [
        PriceRecordOut(
            version=event.originator_version, status=event.outcome["status"],
            reason=event.outcome.get("reason"), replaces=event.replaces, cause=event.cause,
            by=event.by, at=event.at, outcome=event.outcome,
        )
        for event in events
        if isinstance(event, SessionPrice.Priced)
    ]


def _price(svc: Services, session_id: UUID, principal: Principal) -> SessionPriceOut:
    history = _history(svc, session_id)
    if not history or not principal.sees_customer(history[-1].outcome.get("customer_id")):
        raise Problem("not-found", f"session {session_id} has no price (yet)")
    return SessionPriceOut(session_id=str(session_id), current=history[-1], history=history)


@router.get("/v1/sessions/{session_id}/price", response_model=SessionPriceOut)
def get_price(request: Request, session_id: UUID, principal: Reader) -> SessionPriceOut:
    """The session's current price (or why it has none) and every earlier outcome."""
    return _price(services(request), session_id, principal)


@router.post("/v1/sessions/{session_id}/price", response_model=SessionPriceOut)
def reprice_session(request: Request, session_id: UUID, body: RepriceIn, principal: Admin) -> SessionPriceOut:
    """An operator's correction: price the session again now (with the assigned tariff or the
    one given). The new outcome is a new event pointing to the one it replaces; if nothing
    changed, nothing is recorded."""
    svc = services(request)
    session = svc.ledger.current(ChargingSession, session_id)
    if session is None:
        raise Problem("not-found", f"no session {session_id}")
    if not session.ended:
        raise Problem("conflict", "the session has not ended: it is priced when it ends")
    if body.tariff is not None and svc.registry.get_or_none(Tariff, Tariff.create_id(body.tariff)) is None:
        raise Problem("not-found", f"no tariff {body.tariff!r}")
    reprice(
        svc.registry, svc.ledger, svc.committer, session_id,
        cause=f"re-priced by the operator: {body.reason}", by=principal.name, tariff_code=body.tariff,
    )
    svc.wait_for_read_models("pricing")
    return _price(svc, session_id, principal)


def _row(row: dict[str, Any]) -> PricedSessionOut:
    return PricedSessionOut.model_validate(row)


@router.get("/v1/priced-sessions", response_model=Page[PricedSessionOut])
def list_priced_sessions(
    request: Request, principal: Reader, limit: Limit = 50, cursor: CursorParam = None,
    customer_id: UUID | None = None,
    charge_point: Annotated[str | None, Query(max_length=48)] = None,
    status: Literal["priced", "unpriced"] | None = None,
    from_: FromParam = None, to: ToParam = None,
) -> Page[PricedSessionOut]:
    """Newest first; `from`/`to` select by the session's end. A customer's key lists only that
    customer's."""
    paging.check_range(from_, to)
    before = paging.decode(KIND, cursor, int)
    own = principal.only_customer()
    if own is not None and customer_id is not None and str(customer_id) != own:
        return Page(items=[])
    with services(request).reading() as cur:
        rows = queries.list_priced_sessions(
            cur, limit=limit + 1, before=before, customer_id=own or (str(customer_id) if customer_id else None),
            ended_from=from_, ended_to=to, charge_point=charge_point, status=status,
        )
    rows, next_cursor = paging.page(KIND, rows, limit, "first_position")
    return Page(items=[_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/priced-sessions/totals", response_model=PriceTotalsOut)
def price_totals(
    request: Request, principal: Reader, customer_id: UUID | None = None,
    from_: FromParam = None, to: ToParam = None,
) -> dict[str, Any]:
    """Per customer and currency: the sessions ended in [from, to) that are priced, their energy
    and their exact totals excl./incl. VAT (rounded to cents only on invoice lines); and how many
    have no price. A customer's key gets only that customer's."""
    paging.check_range(from_, to)
    own = principal.only_customer()
    if own is not None and customer_id is not None and str(customer_id) != own:
        return {"from": from_, "to": to, "totals": [], "unpriced": []}
    with services(request).reading() as cur:
        totals, unpriced = queries.price_totals(
            cur, customer_id=own or (str(customer_id) if customer_id else None),
            ended_from=from_, ended_to=to,
        )
    return {"from": from_, "to": to, "totals": totals, "unpriced": unpriced}
