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
    Infinity (which Python's parser accepts) are refused. An object that looks like the event
    store's own encoding of a type (exactly the keys `_type_` and `_data_`) is renamed (see
    `storable`); the frame itself keeps the text as sent."""
    hook = storable if "_type_" in text or "\\u" in text else None
    return json.loads(text, parse_float=Decimal, parse_constant=_not_json, object_hook=hook)


def storable(obj: dict[str, Any]) -> dict[str, Any]:
    """eventsourcing's JSON transcoder decodes any object with exactly the keys `_type_` and
    `_data_` as a custom type: station data of that shape would make its event undecodable. Such
    an object is kept with `_type_` renamed to `_type_ (as sent)`."""
    if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
        return {"_type_ (as sent)": obj["_type_"], "_data_": obj["_data_"]}
    return obj


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


class Validity:
    """A period from `valid_from` (inclusive; None: since always) until `valid_until` (exclusive;
    None: until further notice). Mixed into the frozen dataclasses that carry those two fields."""

    valid_from: datetime | None
    valid_until: datetime | None

    def covers(self, when: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= when) and (
            self.valid_until is None or when < self.valid_until
        )

    def overlaps(self, other: Validity) -> bool:
        starts_before_other_ends = (
            self.valid_from is None or other.valid_until is None or self.valid_from < other.valid_until
        )
        ends_after_other_starts = (
            self.valid_until is None or other.valid_from is None or other.valid_from < self.valid_until
        )
        return starts_before_other_ends and ends_after_other_starts
