"""/v1/tariffs: OCPI 2.2.1 tariffs, published as versions with a validity period, and the tariff
calculator (`POST /v1/tariffs/quote`).

Bodies are read as exact JSON (numbers as Decimal, never float): a price that arrives as a JSON
number not exact in binary (0.1) is refused, naming the field, so that no float ever reaches money.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import TypeAdapter, ValidationError

from api.http import paging, problems
from api.http.models import TariffDetail, TariffOut, TariffVersionOut
from api.http.paging import CursorParam, Limit, Page, UtcTime
from api.http.problems import Problem
from api.http.security import Admin, BooksReader, read_fresh, services
from invoices.ocpi import cdr_totals, parse_session
from invoices.pricing import InvalidSession, UnpriceableSession, price
from ledger.ocpi_tariffs import TariffError, loads_exact, parse_tariff
from projections import queries

router = APIRouter(
    prefix="/v1/tariffs",
    tags=["tariffs"],
    responses=problems.responses(*problems.COMMON, 409, 415),
    dependencies=[Depends(read_fresh)],
)
KIND = "tariffs"
_UTC_TIME: TypeAdapter[datetime] = TypeAdapter(UtcTime)
TariffCode = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9._\-]+$")]

_OCPI_TARIFF = {"type": "object", "description": "An OCPI 2.2.1 Tariff object (mod_tariffs)"}
_TIME = {"type": "string", "format": "date-time"}
PUBLISH_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["tariff"], "additionalProperties": False,
        "properties": {
            "tariff": _OCPI_TARIFF,
            "valid_from": {**_TIME, "description": "Inclusive; default: the tariff's start_date_time, else now"},
            "valid_until": {**_TIME, "description": "Exclusive; default: the tariff's end_date_time, else open"},
        },
    }}},
}
CORRECTION_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["tariff"], "additionalProperties": False,
        "properties": {"tariff": _OCPI_TARIFF},
    }}},
}
QUOTE_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["tariff", "session"], "additionalProperties": False,
        "properties": {
            "tariff": _OCPI_TARIFF,
            "session": {"type": "object", "description": "An OCPI CDR or Session (start_date_time, "
                        "end_date_time, charging_periods with dimensions) plus `time_zone` (IANA)"},
        },
    }}},
}
END_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["valid_until"], "additionalProperties": False,
        "properties": {"valid_until": {**_TIME, "description": "Exclusive, with a zone"}},
    }}},
}


async def exact_body(request: Request, allowed: set[str], required: set[str]) -> dict[str, Any]:
    """The JSON body with every number as an exact Decimal; problem+json when it is not an
    object with exactly the allowed fields."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Problem("unsupported-media-type", "send the body as application/json")
    raw = await request.body()
    try:
        body = loads_exact(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Problem("malformed-json", f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise Problem("validation-error", "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Problem("validation-error", f"{unknown[0]}: unknown field")
    missing = sorted(required - set(body))
    if missing:
        raise Problem("validation-error", f"{missing[0]}: required")
    return body


def time_field(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):  # a JSON number would be read as a Unix time
        raise Problem("validation-error", f"{name}: an ISO 8601 time with a zone")
    try:
        return _UTC_TIME.validate_python(value)
    except ValidationError as error:
        raise Problem("validation-error", f"{name}: {error.errors()[0]['msg']}") from None


def _detail(request: Request, code: str) -> TariffDetail:
    """From the registry read model (writes above wait for it), every version in order."""
    with services(request).reading() as cur:
        tariff = queries.tariff(cur, code)
        versions = queries.tariff_versions(cur, code)
    if tariff is None:
        raise Problem("not-found", f"no tariff {code!r}")
    return TariffDetail(
        code=code, currency=tariff["currency"],
        versions=[
            TariffVersionOut.model_validate({**v, "tariff": json.loads(v["document"])})
            for v in versions
        ],
    )


@router.get("", response_model=Page[TariffOut])
def list_tariffs(
    request: Request, _: BooksReader, limit: Limit = 50, cursor: CursorParam = None
) -> Page[TariffOut]:
    after = paging.decode(KIND, cursor, str)
    with services(request).reading() as cur:
        rows = queries.list_tariffs(cur, limit=limit + 1, after=after)
    rows, next_cursor = paging.page(KIND, rows, limit, "code")
    return Page(items=[TariffOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("", status_code=201, response_model=TariffDetail, openapi_extra={"requestBody": PUBLISH_BODY})
async def publish_tariff(request: Request, principal: Admin) -> TariffDetail:
    """Publish an OCPI tariff as a new version of the tariff with its `id`. A period that a
    current version covers is a 409 (`overlapping validity`): end or correct that one first.
    The same tariff for the same period again answers the version published before."""
    body = await exact_body(request, {"tariff", "valid_from", "valid_until"}, {"tariff"})
    valid_from, valid_until = time_field(body, "valid_from"), time_field(body, "valid_until")

    def publish() -> TariffDetail:  # the registry is synchronous: off the event loop
        tariff, _ = services(request).registry.publish_tariff(
            body["tariff"], valid_from=valid_from, valid_until=valid_until,
            at=datetime.now(UTC), by=principal.name,
        )
        services(request).wait_for_read_models("registry")
        return _detail(request, tariff.code)

    return await asyncio.to_thread(publish)


@router.post("/quote", openapi_extra={"requestBody": QUOTE_BODY})
async def quote(request: Request, _: BooksReader) -> dict[str, Any]:
    """The tariff calculator: price an OCPI session under an OCPI tariff, exactly as the
    specification says, and answer the OCPI CDR totals and each component (amounts exact, not
    rounded: rounding to cents happens on invoice lines). Nothing is stored."""
    body = await exact_body(request, {"tariff", "session"}, {"tariff", "session"})
    return await asyncio.to_thread(quote_totals, body["tariff"], body["session"])


def quote_totals(tariff_data: Any, session_data: Any) -> dict[str, Any]:
    """Shared with `ladebuch price`: problems name the field, prefixed by `tariff.`/`session.`."""
    try:
        tariff = parse_tariff(tariff_data)
    except TariffError as error:
        raise Problem("invalid-value", f"tariff.{error.field}: {error.message}",
                      field=f"tariff.{error.field}") from None
    try:
        session = parse_session(session_data)
    except InvalidSession as error:
        raise Problem("invalid-value", f"session.{error.field}: {error.message}",
                      field=f"session.{error.field}") from None
    try:
        return cdr_totals(price(tariff, session))
    except InvalidSession as error:
        raise Problem("invalid-value", f"session.{error.field}: {error.message}",
                      field=f"session.{error.field}") from None
    except UnpriceableSession as error:
        raise Problem("unpriceable-session", error.reason) from None


@router.get("/{code}", response_model=TariffDetail)
def get_tariff(request: Request, code: TariffCode, _: BooksReader) -> TariffDetail:
    """The tariff with every version ever published, superseded ones included."""
    return _detail(request, code)


@router.post(
    "/{code}/versions/{version}/correction", response_model=TariffDetail,
    openapi_extra={"requestBody": CORRECTION_BODY},
)
async def correct_tariff(request: Request, code: TariffCode, version: int, principal: Admin) -> TariffDetail:
    """A corrected version for the same period; the corrected one stays, superseded."""
    body = await exact_body(request, {"tariff"}, {"tariff"})

    def correct() -> TariffDetail:
        services(request).registry.correct_tariff(
            code, version, body["tariff"], at=datetime.now(UTC), by=principal.name
        )
        services(request).wait_for_read_models("registry")
        return _detail(request, code)

    return await asyncio.to_thread(correct)


@router.post(
    "/{code}/versions/{version}/end", response_model=TariffDetail,
    openapi_extra={"requestBody": END_BODY},
)
async def end_tariff_version(request: Request, code: TariffCode, version: int, principal: Admin) -> TariffDetail:
    """End a version earlier (to publish the next one from then on), as a superseding version."""
    body = await exact_body(request, {"valid_until"}, {"valid_until"})
    valid_until = time_field(body, "valid_until")
    if valid_until is None:
        raise Problem("validation-error", "valid_until: required")
    ends = valid_until

    def end() -> TariffDetail:
        services(request).registry.end_tariff_version(
            code, version, valid_until=ends, at=datetime.now(UTC), by=principal.name
        )
        services(request).wait_for_read_models("registry")
        return _detail(request, code)

    return await asyncio.to_thread(end)
