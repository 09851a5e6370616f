"""Cursor pagination and time-range filters, the same on every list.

A cursor is opaque to clients: base64url of the list's name and the last row's sort key. A
cursor from another list, or one that was tampered with, is a 400 `bad-cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator

from api.http.problems import Problem

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
CursorParam = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page")
]


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("the date-time is out of range in UTC") from None


_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _iso_8601(value: Any) -> Any:
    """Only ISO 8601 text (pydantic alone would also take numbers as Unix times)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_8601.match(value):
        raise ValueError("expected an ISO 8601 date-time with a time zone, e.g. 2026-11-24T10:00:00Z")
    return value


UtcTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_utc)]
FromParam = Annotated[
    UtcTime | None, Query(alias="from", description="Inclusive; ISO 8601 with a time zone")
]
ToParam = Annotated[UtcTime | None, Query(description="Exclusive; ISO 8601 with a time zone")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode(kind: str, key: Any) -> str:
    raw = json.dumps([kind, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str | None, key_type: type) -> Any:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise Problem("bad-cursor", "the cursor is not one this API handed out") from None
    if found_kind != kind or type(key) is not key_type:
        raise Problem("bad-cursor", f"the cursor does not belong to the {kind} list")
    return key


def page(kind: str, rows: list[dict[str, Any]], limit: int, key: str) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of a page (queried with limit + 1) and the cursor of the next one."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode(kind, rows[-1][key])
    return rows, None


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise Problem("bad-time-range", "`from` must be earlier than `to`")



async def reject_unknown_query(request: Request) -> None:
    """A query parameter the operation does not know is a 422, not silently ignored: a typo in
    a filter (`?customer=` for `?customer_id=`) must not return everything unfiltered."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Problem(
            "validation-error", f"unknown query parameter {unknown[0]!r}",
            errors=[{"location": ["query", name], "message": "unknown query parameter",
                     "type": "extra_forbidden"} for name in unknown],
        )


def _query_names(route: APIRoute) -> frozenset[str]:
    """Computed once per route and kept on it."""
    names: frozenset[str] | None = getattr(route, "_ladebuch_query_names", None)
    if names is None:
        names = frozenset(_declared(route.dependant))
        route._ladebuch_query_names = names  # type: ignore[attr-defined]
    return names


def _declared(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names
