"""/v1/quarantine: messages kept but not applied, and an operator's decision about each."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.http import paging, problems
from api.http.models import QuarantineOut, ResolveIn
from api.http.paging import CursorParam, FromParam, Limit, Page, ToParam
from api.http.problems import Problem
from api.http.security import (
    Admin,
    StaffReader,
    read_fresh,
    services,
)
from api.services import Services
from ledger.commands import ResolveQuarantine
from projections import queries

router = APIRouter(prefix="/v1/quarantine", tags=["quarantine"], responses=problems.responses(*problems.COMMON, 409), dependencies=[Depends(read_fresh)])
KIND = "quarantine"


def _out(row: dict[str, Any]) -> QuarantineOut:
    return QuarantineOut.model_validate({**row, "id": row["entry_id"]})


def _one(svc: Services, entry_id: UUID) -> QuarantineOut:
    with svc.reading() as cur:
        rows = queries.list_quarantine(cur, limit=1, entry_id=str(entry_id))
    if not rows:
        raise Problem("not-found", f"no quarantine entry {entry_id}")
    return _out(rows[0])


@router.get("", response_model=Page[QuarantineOut])
def list_entries(
    request: Request, _: StaffReader, limit: Limit = 50, cursor: CursorParam = None,
    charge_point: Annotated[str | None, Query(max_length=48)] = None,
    resolved: bool | None = None, from_: FromParam = None, to: ToParam = None,
) -> Page[QuarantineOut]:
    """Newest first; `from`/`to` select by when the message was quarantined."""
    paging.check_range(from_, to)
    before = paging.decode(KIND, cursor, int)
    with services(request).reading() as cur:
        rows = queries.list_quarantine(
            cur, limit=limit + 1, before=before, charge_point=charge_point, resolved=resolved,
            quarantined_from=from_, quarantined_to=to,
        )
    rows, next_cursor = paging.page(KIND, rows, limit, "position")
    return Page(items=[_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/{entry_id}", response_model=QuarantineOut)
def get_entry(
    request: Request, entry_id: UUID, _: StaffReader
) -> QuarantineOut:
    return _one(services(request), entry_id)


@router.post("/{entry_id}/resolution", response_model=QuarantineOut)
async def resolve(
    request: Request, entry_id: UUID, body: ResolveIn, principal: Admin
) -> QuarantineOut:
    """Record how the entry was dealt with, as a new event; the entry and its frame stay.
    The same resolution again changes nothing; a different one is a 409."""
    svc = services(request)
    command = ResolveQuarantine(entry_id, body.resolution, body.note, principal.name)
    refused = await asyncio.wrap_future(svc.committer.submit(command))
    if refused is not None:
        raise refused
    await asyncio.to_thread(svc.wait_for_read_models, "quarantine")
    return await asyncio.to_thread(_one, svc, entry_id)
