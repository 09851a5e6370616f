"""/v1/charge-points: register, describe, disable, set or rotate the password, and the
monitoring view (connection, boot, heartbeat, connectors)."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.http import paging, problems
from api.http.models import (
    ChargePointIn,
    ChargePointName,
    ChargePointOut,
    ChargePointPatch,
    PasswordIn,
    PasswordOut,
)
from api.http.paging import CursorParam, FromParam, Limit, Page, ToParam
from api.http.problems import Problem
from api.http.security import (
    Admin,
    StaffReader,
    read_fresh,
    services,
)
from api.services import Services
from ledger.frames import frame_row
from projections import queries

router = APIRouter(prefix="/v1/charge-points", tags=["charge points"], responses=problems.responses(*problems.COMMON, 409), dependencies=[Depends(read_fresh)])
KIND = "charge-points"


def _out(row: dict[str, Any], connectors: list[dict[str, Any]]) -> ChargePointOut:
    status = {c: row[c] for c in queries.STATUS_COLUMNS}
    status["connected"] = bool(status["connected"])
    for counter in ("frames_in", "frames_out", "call_errors"):
        status[counter] = status[counter] or 0
    return ChargePointOut.model_validate({
        "id": row["name"], "label": row["label"], "location": row["location"], "site": row["site"],
        "disabled": row["disabled"], "has_password": row["has_password"],
        "registered_at": row["registered_at"], "status": {**status, "connectors": connectors},
    })


def _one(svc: Services, name: str) -> ChargePointOut:
    with svc.reading() as cur:
        row = queries.charge_point(cur, name)
        if row is None:
            raise Problem("not-found", f"no charge point {name!r}")
        return _out(row, queries.connectors(cur, [name])[name])


@router.get("", response_model=Page[ChargePointOut])
def list_charge_points(
    request: Request, _: StaffReader, limit: Limit = 50, cursor: CursorParam = None,
    connected: bool | None = Query(None, description="Only those with an open connection (or not)"),
) -> Page[ChargePointOut]:
    after = paging.decode(KIND, cursor, str)
    svc = services(request)
    with svc.reading() as cur:
        rows = queries.list_charge_points(cur, limit=limit + 1, after=after, connected=connected)
        rows, next_cursor = paging.page(KIND, rows, limit, "name")
        by_name = queries.connectors(cur, [r["name"] for r in rows])
    return Page(items=[_out(r, by_name[r["name"]]) for r in rows], next_cursor=next_cursor)


@router.post("", status_code=201, response_model=ChargePointOut)
def register(
    request: Request, body: ChargePointIn, _: Admin
) -> ChargePointOut:
    svc = services(request)
    svc.registry.register_charge_point(body.id, body.password)
    if body.label or body.location:
        svc.registry.describe_charge_point(body.id, label=body.label, location=body.location)
    svc.wait_for_read_models("registry")
    return _one(svc, body.id)


@router.get("/{charge_point}", response_model=ChargePointOut)
def get_charge_point(
    request: Request, charge_point: ChargePointName, _: StaffReader
) -> ChargePointOut:
    return _one(services(request), charge_point)


@router.patch("/{charge_point}", response_model=ChargePointOut)
async def update(
    request: Request, _: Admin, charge_point: ChargePointName, body: ChargePointPatch,
) -> ChargePointOut:
    svc = services(request)

    def change() -> None:
        svc.registry.describe_charge_point(
            charge_point, label=body.label, location=body.location, site=body.site
        )
        if body.disabled is True:
            svc.registry.disable_charge_point(charge_point)
        elif body.disabled is False:
            svc.registry.enable_charge_point(charge_point)
        svc.wait_for_read_models("registry")

    await asyncio.to_thread(change)
    if body.disabled:
        # Refused from the next handshake on; a connection open in this process ends now.
        await request.app.state.ocpp.disconnect(charge_point)
    return await asyncio.to_thread(_one, svc, charge_point)


@router.post("/{charge_point}/password", response_model=PasswordOut)
def set_password(
    request: Request, _: Admin, charge_point: ChargePointName, body: PasswordIn,
) -> PasswordOut:
    """Set or rotate the Basic-auth password. The new one counts from the next handshake."""
    password = body.password or secrets.token_urlsafe(30)[:40]
    svc = services(request)
    svc.registry.set_charge_point_password(charge_point, password)
    svc.wait_for_read_models("registry")
    return PasswordOut(password=password)


@router.get(
    "/{charge_point}/frames",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}},
                     "description": "One frame per line, in order (the evidence export)"}},
)
def export_frames(
    request: Request, _: StaffReader, charge_point: ChargePointName,
    from_: FromParam = None, to: ToParam = None,
) -> StreamingResponse:
    """Every frame of a charge point, both directions, verbatim, as JSON lines: what an
    auditor checks the hash chain and the sessions against."""
    paging.check_range(from_, to)
    svc = services(request)
    if svc.registry.find_charge_point(charge_point) is None:
        raise Problem("not-found", f"no charge point {charge_point!r}")

    def lines() -> Any:
        for record in svc.ledger.frames(charge_point):
            if from_ is not None and record.received_at < from_:
                continue
            if to is not None and record.received_at >= to:
                continue
            yield json.dumps(frame_row(charge_point, record), ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
