"""Value helpers shared by the aggregates: exact JSON, digests, business time."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from dateutil.parser import isoparse

from ledger.errors import InvalidValue


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def parse_exact(text: str) -> Any:
    """Parse JSON keeping every number exact: fractions become Decimal, never float; NaN and
    Infinity (which Python's parser accepts) are refused."""
    return json.loads(text, parse_float=Decimal, parse_constant=_not_json)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON: {type(obj).__name__}")


def canonical(obj: Any) -> bytes:
    """A stable byte form of a JSON-like value, for digests (not for evidence: that is the raw text)."""
    if isinstance(obj, float):
        raise InvalidValue("float in canonical form")
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode()


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def parse_time(value: str) -> datetime:
    """An OCPP dateTime as an aware UTC datetime. A zone-less value is taken as UTC, as OCPP requires."""
    try:
        parsed = isoparse(value)
    except (ValueError, OverflowError, TypeError) as exc:
        raise InvalidValue(f"not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        utc: datetime = parsed.astimezone(timezone.utc)
    except OverflowError as exc:
        raise InvalidValue(f"date-time out of range: {value!r}") from exc
    return utc


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    """UTC, millisecond precision, 'Z' suffix: the form OCPP stations expect."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
