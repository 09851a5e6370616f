"""/v1/charge-points/{id}/meter-keys: the meter public keys an operator registers as trust anchors.

Signed meter values are verified against these; a key that arrives over OCPP is only a claim.
Keys are events in the registry (registered, retired), read fresh, so a new key counts for the
next signed value that arrives, on every server process.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request

from api.http import problems
from api.http.models import ChargePointName, MeterKeyIn, MeterKeyOut, MeterKeyRetirement
from api.http.paging import Page
from api.http.security import Admin, StaffReader, read_fresh, services
from ledger.registry import MeterKey

router = APIRouter(
    prefix="/v1/charge-points/{charge_point}/meter-keys",
    tags=["meter keys"],
    responses=problems.responses(*problems.COMMON, 409),
    dependencies=[Depends(read_fresh)],
)


def _out(key: MeterKey) -> MeterKeyOut:
    return MeterKeyOut.model_validate(dataclasses.asdict(key))


@router.get("", response_model=Page[MeterKeyOut])
def list_meter_keys(request: Request, charge_point: ChargePointName, _: StaffReader) -> Page[MeterKeyOut]:
    """Every key registered for the charge point, retired ones included (a handful: one page)."""
    registry = services(request).registry
    registry.charge_point(charge_point)
    return Page(items=[_out(key) for key in registry.meter_keys(charge_point)])


@router.post("", status_code=201, response_model=MeterKeyOut)
def register_meter_key(
    request: Request, charge_point: ChargePointName, body: MeterKeyIn, principal: Admin
) -> MeterKeyOut:
    """Register a key; the same key with the same scope again answers the existing one."""
    key = services(request).registry.register_meter_key(
        charge_point,
        body.public_key,
        evse_id=body.evse_id,
        meter_serial=body.meter_serial,
        label=body.label,
        at=datetime.now(UTC),
        by=principal.name,
    )
    return _out(key)


@router.post("/{fingerprint}/retirement", response_model=MeterKeyOut)
def retire_meter_key(
    request: Request,
    charge_point: ChargePointName,
    fingerprint: str,
    body: MeterKeyRetirement,
    _: Admin,
) -> MeterKeyOut:
    """Stop trusting a key from `at` on (a replaced meter); records before stay verified by it."""
    key = services(request).registry.retire_meter_key(
        charge_point, fingerprint, at=body.at or datetime.now(UTC), reason=body.reason
    )
    return _out(key)
