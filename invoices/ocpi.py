"""The OCPI JSON edge of pricing: a CDR- or Session-like document in, the CDR totals out.

`parse_session` reads the parts of an OCPI 2.2.1 CDR (`mod_cdrs` §10.3.1) or Session
(`mod_sessions` §9.3.1) that pricing needs - `start_date_time`, `end_date_time`, `currency`,
`charging_periods` with their CdrDimensions (§10.4.2, §10.4.3) - plus two fields of ours:
`time_zone` (required: the site's IANA zone, OCPI keeps it on the Location) and
`reservation_expired` (optional, default: true when the periods hold nothing but
RESERVATION_TIME). The other documented CDR and Session fields are accepted and ignored, so a
whole CDR can be given; unknown fields are refused, naming them.

Volumes are taken exactly as written: numbers must come as `Decimal` (`loads_exact`), or as
decimal strings; a float is refused. Unlike tariff prices, a session's measured volumes may be
JSON numbers that binary floats cannot represent (15.342 kWh is a meter reading, not a price
that different readers must agree on). TIME, PARKING_TIME and RESERVATION_TIME (hours) become
seconds (x 3600, exact). Session-only dimensions (CURRENT, POWER, ENERGY_IMPORT,
ENERGY_EXPORT, STATE_OF_CHARGE) are accepted and ignored. A period's `tariff_id` is ignored:
the tariff being applied is the one given to the engine.

`cdr_totals` gives the CDR's total fields (§10.3.1: total_cost, total_fixed_cost,
total_energy, total_energy_cost, total_time, total_time_cost, total_parking_time,
total_parking_cost, total_reservation_cost) with every number as a decimal string, plus
`components` (one entry per tariff component used: an invoice line) and what `Priced` knows
beyond OCPI (limits applied, exactness, free volumes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from dateutil.parser import isoparse

from invoices.pricing import Amount, InvalidSession, Period, Priced, PricingSession
from ledger.ocpi_tariffs import CURRENCIES

__all__ = ["cdr_totals", "parse_session"]

_SECONDS_PER_HOUR = Decimal(3600)
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")

# Documented CDR (mod_cdrs) and Session (mod_sessions) fields that pricing does not read.
_IGNORED = frozenset(
    {
        "country_code",
        "party_id",
        "id",
        "session_id",
        "cdr_token",
        "auth_method",
        "authorization_reference",
        "cdr_location",
        "location_id",
        "evse_uid",
        "connector_id",
        "meter_id",
        "tariffs",
        "signed_data",
        "total_cost",
        "total_fixed_cost",
        "total_energy",
        "total_energy_cost",
        "total_time",
        "total_time_cost",
        "total_parking_time",
        "total_parking_cost",
        "total_reservation_cost",
        "remark",
        "invoice_reference_id",
        "credit",
        "credit_reference_id",
        "home_charging_compensation",
        "kwh",
        "status",
        "last_updated",
    }
)
_READ = frozenset(
    {
        "start_date_time",
        "end_date_time",
        "currency",
        "charging_periods",
        "time_zone",
        "reservation_expired",
    }
)
_PERIOD_FIELDS = frozenset({"start_date_time", "dimensions", "tariff_id"})
_VOLUME_FIELDS = {
    "ENERGY": ("energy_kwh", Decimal(1)),
    "TIME": ("charging_seconds", _SECONDS_PER_HOUR),
    "PARKING_TIME": ("parking_seconds", _SECONDS_PER_HOUR),
    "RESERVATION_TIME": ("reservation_seconds", _SECONDS_PER_HOUR),
}
_LEVEL_FIELDS = {
    "MAX_CURRENT": "max_current",
    "MIN_CURRENT": "min_current",
    "MAX_POWER": "max_power",
    "MIN_POWER": "min_power",
}
_SESSION_ONLY = frozenset({"CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE"})


def _number(value: Any, field: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidSession(field, "a number, not a boolean")
    if isinstance(value, float):
        raise InvalidSession(field, "a binary float is not exact: parse JSON with loads_exact")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidSession(field, f"{value} is not finite")
        return Decimal(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_TEXT.match(value):
        return Decimal(value)
    raise InvalidSession(field, f"a number, not {value!r}")


def _datetime(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise InvalidSession(field, "an RFC 3339 date-time string")
    try:
        parsed: datetime = isoparse(value)
    except (ValueError, OverflowError):
        raise InvalidSession(field, f"{value!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:  # OCPI: no zone designator means UTC
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _period(value: Any, field: str) -> Period:
    if not isinstance(value, Mapping):
        raise InvalidSession(field, "an object")
    for key in value:
        if key not in _PERIOD_FIELDS:
            raise InvalidSession(f"{field}.{key}", "unknown field")
    if "start_date_time" not in value:
        raise InvalidSession(f"{field}.start_date_time", "required")
    start = _datetime(value["start_date_time"], f"{field}.start_date_time")
    dimensions = value.get("dimensions")
    if (
        isinstance(dimensions, (str, bytes))
        or not isinstance(dimensions, Sequence)
        or not dimensions
    ):
        raise InvalidSession(f"{field}.dimensions", "a list of at least one CdrDimension")
    fields: dict[str, Decimal] = {}
    seen: set[str] = set()
    for index, dimension in enumerate(dimensions):
        path = f"{field}.dimensions[{index}]"
        if not isinstance(dimension, Mapping):
            raise InvalidSession(path, "an object {type, volume}")
        for key in dimension:
            if key not in ("type", "volume"):
                raise InvalidSession(f"{path}.{key}", "unknown field")
        kind = dimension.get("type")
        if not isinstance(kind, str):
            raise InvalidSession(f"{path}.type", "required: a CdrDimensionType")
        if kind in seen:
            raise InvalidSession(f"{path}.type", f"{kind} given twice in one period")
        seen.add(kind)
        if "volume" not in dimension:
            raise InvalidSession(f"{path}.volume", "required")
        volume = _number(dimension["volume"], f"{path}.volume")
        if kind in _VOLUME_FIELDS:
            name, factor = _VOLUME_FIELDS[kind]
            if volume < 0:
                raise InvalidSession(
                    f"{path}.volume",
                    f"{volume} is negative ({'energy fed back into the grid' if kind == 'ENERGY' else 'a duration'} "
                    "cannot be priced)",
                )
            fields[name] = volume * factor
        elif kind in _LEVEL_FIELDS:
            fields[_LEVEL_FIELDS[kind]] = volume
        elif kind not in _SESSION_ONLY:
            raise InvalidSession(f"{path}.type", f"unknown CdrDimensionType {kind!r}")
    return Period(start, **fields)


def parse_session(data: Mapping[str, Any]) -> PricingSession:
    """A `PricingSession` from a CDR- or Session-like object (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise InvalidSession("", "an object")
    for key in data:
        if key not in _READ and key not in _IGNORED:
            raise InvalidSession(str(key), "unknown field")
    for key in ("start_date_time", "end_date_time", "time_zone", "charging_periods"):
        if data.get(key) is None:
            raise InvalidSession(key, "required")
    start = _datetime(data["start_date_time"], "start_date_time")
    end = _datetime(data["end_date_time"], "end_date_time")
    time_zone = data["time_zone"]
    if not isinstance(time_zone, str):
        raise InvalidSession("time_zone", "an IANA time zone name like 'Europe/Berlin'")
    currency = data.get("currency")
    if currency is not None and (not isinstance(currency, str) or currency not in CURRENCIES):
        raise InvalidSession("currency", f"{currency!r} is not an ISO 4217 currency code")
    raw = data["charging_periods"]
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or not raw:
        raise InvalidSession("charging_periods", "a list of at least one ChargingPeriod")
    periods = tuple(_period(item, f"charging_periods[{index}]") for index, item in enumerate(raw))
    expired = data.get("reservation_expired")
    if expired is None:
        expired = all(
            p.reservation_seconds > 0
            and not (p.energy_kwh or p.charging_seconds or p.parking_seconds)
            for p in periods
        )
    elif not isinstance(expired, bool):
        raise InvalidSession("reservation_expired", "true or false")
    try:
        return PricingSession(
            start=start,
            end=end,
            time_zone=time_zone,
            periods=periods,
            currency=currency,
            reservation_expired=expired,
        )
    except InvalidSession as error:
        # The model names its own fields; name them as the document does.
        field = error.field.replace("periods[", "charging_periods[").replace(
            ".start", ".start_date_time"
        )
        field = {"start": "start_date_time", "end": "end_date_time"}.get(field, field)
        raise InvalidSession(field, error.message) from None


def _text(value: Decimal) -> str:
    return format(value, "f")


def _price(amount: Amount) -> dict[str, str]:
    return {"excl_vat": _text(amount.excl_vat), "incl_vat": _text(amount.incl_vat)}


def cdr_totals(priced: Priced) -> dict[str, Any]:
    """The OCPI CDR totals of a priced session, every number a decimal string (hours exact when
    they are finite decimals, else to 30 places; see `invoices.pricing`)."""
    return {
        "currency": priced.currency,
        "tariff_id": priced.tariff_id,
        "total_cost": _price(priced.total_cost),
        "total_fixed_cost": _price(priced.total_fixed_cost),
        "total_energy": _text(priced.total_energy),
        "total_energy_cost": _price(priced.total_energy_cost),
        "total_time": _text(priced.total_time_hours),
        "total_time_cost": _price(priced.total_time_cost),
        "total_parking_time": _text(priced.total_parking_hours),
        "total_parking_cost": _price(priced.total_parking_cost),
        "total_reservation_cost": _price(priced.total_reservation_cost),
        "cost_before_limits": _price(priced.cost_before_limits),
        "limit_applied": {"excl_vat": priced.limit_excl_vat, "incl_vat": priced.limit_incl_vat},
        "exact": priced.exact,
        "components": [
            {
                "type": component.dimension.value,
                "element_index": component.element_index,
                "component_index": component.component_index,
                "quantity": _text(component.quantity),
                "unit": component.dimension.unit,
                "unit_price": _text(component.unit_price),
                "vat": None if component.vat is None else _text(component.vat),
                "step_size": component.step_size,
                "cost": _price(component.amount),
            }
            for component in priced.components
        ],
        "free": [
            {
                "period_index": item.period_index,
                "type": item.dimension.value,
                "volume": _text(item.volume),
                "unit": item.dimension.unit,
            }
            for item in priced.free
        ],
    }
