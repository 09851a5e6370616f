"""/v1/sites and /v1/tariff-assignments: where charge points stand (time zone, calibrated meters)
and which tariff prices whose sessions: a customer's own, else the customer group's, else the
charge point's, else the site's default, each for a period."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.http import paging, problems
from api.http.models import (
    ChargePointName,
    Scope,
    SiteCode,
    SiteIn,
    SiteOut,
    SitePatch,
    TariffAssignmentEnd,
    TariffAssignmentIn,
    TariffAssignmentOut,
    TariffChoiceOut,
)
from api.http.paging import CursorParam, Limit, Page, UtcTime
from api.http.problems import Problem
from api.http.security import Admin, BooksReader, read_fresh, services
from projections import queries

router = APIRouter(
    tags=["sites and tariff assignments"],
    responses=problems.responses(*problems.COMMON, 409),
    dependencies=[Depends(read_fresh)],
)
SITES, ASSIGNMENTS = "sites", "tariff-assignments"


def _site(request: Request, code: str) -> SiteOut:
    with services(request).reading() as cur:
        row = queries.site(cur, code)
    if row is None:
        raise Problem("not-found", f"no site {code!r}")
    return SiteOut.model_validate({**row, "calibrated": bool(row["calibrated"])})


@router.get("/v1/sites", response_model=Page[SiteOut])
def list_sites(request: Request, _: BooksReader, limit: Limit = 50, cursor: CursorParam = None) -> Page[SiteOut]:
    after = paging.decode(SITES, cursor, str)
    with services(request).reading() as cur:
        rows = queries.list_sites(cur, limit=limit + 1, after=after)
    rows, next_cursor = paging.page(SITES, rows, limit, "code")
    items = [SiteOut.model_validate({**r, "calibrated": bool(r["calibrated"])}) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.post("/v1/sites", status_code=201, response_model=SiteOut)
def create_site(request: Request, body: SiteIn, _: Admin) -> SiteOut:
    svc = services(request)
    svc.registry.create_site(body.code, name=body.name, time_zone=body.time_zone, calibrated=body.calibrated)
    svc.wait_for_read_models("registry")
    return _site(request, body.code)


@router.get("/v1/sites/{code}", response_model=SiteOut)
def get_site(request: Request, code: SiteCode, _: BooksReader) -> SiteOut:
    return _site(request, code)


@router.patch("/v1/sites/{code}", response_model=SiteOut)
def update_site(request: Request, code: SiteCode, body: SitePatch, _: Admin) -> SiteOut:
    svc = services(request)
    svc.registry.update_site(code, name=body.name, time_zone=body.time_zone, calibrated=body.calibrated)
    svc.wait_for_read_models("registry")
    return _site(request, code)


@router.get("/v1/tariff-assignments", response_model=Page[TariffAssignmentOut])
def list_assignments(
    request: Request, _: BooksReader, limit: Limit = 50, cursor: CursorParam = None,
    scope: Scope | None = None, key: Annotated[str | None, Query(max_length=64)] = None,
    tariff: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[TariffAssignmentOut]:
    after = paging.decode(ASSIGNMENTS, cursor, int)
    with services(request).reading() as cur:
        rows = queries.list_tariff_assignments(cur, limit=limit + 1, after=after, scope=scope, key=key, tariff=tariff)
    rows, next_cursor = paging.page(ASSIGNMENTS, rows, limit, "position")
    return Page(
        items=[TariffAssignmentOut.model_validate({**r, "key": r["scope_key"]}) for r in rows],
        next_cursor=next_cursor,
    )


@router.post("/v1/tariff-assignments", status_code=201, response_model=list[TariffAssignmentOut])
def assign(request: Request, body: TariffAssignmentIn, _: Admin) -> list[TariffAssignmentOut]:
    """Assign a tariff for a period; a period that overlaps one of the scope's others is a 409.
    Answers every period of the scope."""
    svc = services(request)
    svc.registry.assign_tariff(
        body.scope, body.key, body.tariff, valid_from=body.valid_from, valid_until=body.valid_until
    )
    return _periods(request, body.scope, body.key)


@router.post("/v1/tariff-assignments/end", response_model=list[TariffAssignmentOut])
def end_assignment(request: Request, body: TariffAssignmentEnd, _: Admin) -> list[TariffAssignmentOut]:
    """End the scope's period that covers `valid_until` there (e.g. a tenant moves out)."""
    services(request).registry.end_tariff_assignment(body.scope, body.key, valid_until=body.valid_until)
    return _periods(request, body.scope, body.key)


def _periods(request: Request, scope: str, key: str) -> list[TariffAssignmentOut]:
    svc = services(request)
    svc.wait_for_read_models("registry")
    return [
        TariffAssignmentOut(scope=scope, key=key, period=index, tariff=p.tariff,
                            valid_from=p.valid_from, valid_until=p.valid_until)
        for index, p in enumerate(svc.registry.tariff_assignments(scope, key))
    ]


@router.get("/v1/tariff-assignments/resolve", response_model=TariffChoiceOut)
def resolve(
    request: Request, _: BooksReader, charge_point: ChargePointName, at: UtcTime,
    customer_id: UUID | None = None,
) -> TariffChoiceOut:
    """Which tariff prices a session of this customer at this charge point starting at `at`."""
    found = services(request).registry.tariff_for(charge_point, customer_id, at)
    if found is None:
        return TariffChoiceOut(scope=None, key=None, tariff=None)
    scope, key, tariff = found
    return TariffChoiceOut(scope=scope, key=key, tariff=tariff)
