"""The OCPI 2.2.1 Tariff object as immutable values, and the strict parser that builds them.

What a tariff *is* lives here; what a session *costs* under it lives in `invoices.pricing`.
Section references are to OCPI 2.2.1, module Tariffs (`mod_tariffs`): the Tariff object
(§11.3.1), TariffElement (§11.4.4), PriceComponent (§11.4.2), TariffRestrictions (§11.4.6),
DayOfWeek / ReservationRestrictionType / TariffDimensionType / TariffType (§11.4.1, 11.4.3,
11.4.5, 11.4.7) and the types module's Price and DisplayText classes (§16.5, §16.3).

Money is exact. JSON must reach `parse_tariff` with its numbers as `Decimal`: parse with
`loads_exact`, which marks every fractional JSON number as a `JsonNumber`. The rule for numbers:

- a `float` is refused (`FloatRefused`, also a `TypeError`): it is already inexact;
- a `JsonNumber` (a fraction that arrived *as a JSON number*) is refused when a binary float
  would read it differently (`0.1`, `1.9`, `5.2`), with a message asking for a string; exact
  ones (`0.25`, `2.5`, `0.5`) pass. Every other reader of the same document - an eMSP, a
  spreadsheet, JavaScript - parses numbers into binary floats, and a price must mean the same
  thing to all of them;
- a string of decimal digits (`"0.10"`) and a plain `Decimal` (built deliberately by Python code,
  or read back from a stored document) are taken as written; integers are exact.

Decisions where the specification leaves room (each one is tested):

- `country_code`, `party_id` and `last_updated` are required by OCPI for tariffs exchanged with
  eMSPs; here they are optional, because operators also write tariffs for their own customers
  (the version history records who published what when). The spec's own PUT example omits
  `last_updated`.
- Unknown fields are refused, naming them; every documented field of 2.2.1 is accepted, plus
  OCPI 2.3's `tax_included` (`NO` and `N/A` map onto 2.2.1; `YES`, prices including taxes, does
  not, and is refused), 2.3's price-limit shape `{before_taxes, after_taxes}` for
  `min_price`/`max_price`, and 2.3's `preauthorize_amount` (kept, not used for pricing).
- `step_size` must be >= 1 except on `FLAT`, which has no unit (the spec's own Free of Charge
  example has `step_size: 0`).
- Restrictions that can never hold are refused: `min_* >= max_*` (every `max_*` is exclusive),
  `max_* = 0`, `start_time == end_time` (the spec defines `end < start` as wrapping midnight but
  not equality; leave both out for the whole day), `start_date >= end_date`, a weekday listed
  twice, a reservation element with a component other than FLAT or TIME.
- Two components of the same type in one element are refused (which one applies is undefined).
- `vat` absent means no VAT applies, which is different from `0` (the spec says so in
  PriceComponent); a VAT above 100 % is refused as a unit mistake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from dateutil.parser import isoparse

__all__ = [
    "CURRENCIES",
    "DayOfWeek",
    "DimensionType",
    "DisplayText",
    "FloatRefused",
    "InvalidJson",
    "JsonNumber",
    "Price",
    "PriceComponent",
    "PricingError",
    "ReservationRestriction",
    "Tariff",
    "TariffElement",
    "TariffError",
    "TariffRestrictions",
    "TariffType",
    "TaxIncluded",
    "loads_exact",
    "parse_decimal",
    "parse_tariff",
]


class PricingError(Exception):
    """Root of every error the tariff model and the pricing engine raise on purpose."""


class TariffError(PricingError, ValueError):
    """A tariff document that is refused; `field` is the path of the offending value, e.g.
    `elements[1].price_components[0].price`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class FloatRefused(TariffError, TypeError):
    """A binary float reached the money model: parse JSON with `loads_exact`."""


class InvalidJson(PricingError, ValueError):
    """Text that `loads_exact` does not take as JSON (syntax, NaN/Infinity, a duplicate key)."""


class JsonNumber(Decimal):
    """A `Decimal` that arrived as a JSON number with a fraction or exponent (not as a string).

    The value is exactly the digits of the JSON text; the type only remembers where it came from,
    so that `parse_tariff` can refuse numbers that binary-float readers see differently."""

    __slots__ = ()


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJson(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON with every fractional number as a `JsonNumber` (exact, never a float) and
    integers as `int`; NaN, Infinity and duplicate object keys are refused (`InvalidJson`)."""
    try:
        return json.loads(
            text,
            parse_float=JsonNumber,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"not JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"not UTF-8 JSON: {exc}") from None


# --- enumerations -------------------------------------------------------------------------------


class DimensionType(StrEnum):
    """TariffDimensionType (§11.4.5): what a PriceComponent prices."""

    ENERGY = "ENERGY"  # per kWh, step_size in Wh
    FLAT = "FLAT"  # once, no unit
    PARKING_TIME = "PARKING_TIME"  # per hour not charging, step_size in s
    TIME = "TIME"  # per hour charging (or reserved, in a reservation element), step_size in s


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @property
    def weekday(self) -> int:
        """Monday 0 ... Sunday 6, as `date.weekday()`."""
        return _WEEKDAYS.index(self)


_WEEKDAYS = list(DayOfWeek)


class ReservationRestriction(StrEnum):
    """ReservationRestrictionType (§11.4.3)."""

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class TaxIncluded(StrEnum):
    """OCPI 2.3's TaxIncluded; only the values that map onto 2.2.1 are accepted."""

    NO = "NO"
    NOT_APPLICABLE = "N/A"


# ISO 4217 alphabetic codes of money a charging session can be priced in: the active currency
# and fund codes. Left out on purpose: precious metals (XAU, XAG, XPD, XPT), bond-market and
# supranational units (XBA-XBD, XDR, XSU, XUA), the test code XTS and "no currency" XXX.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD
    XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()
)


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Price:
    """Price class (§16.5): an amount excluding VAT and, optionally, including it."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """PriceComponent (§11.4.2). `price` is per kWh (ENERGY), per hour (TIME, PARKING_TIME) or
    per session (FLAT), excluding VAT; `vat` is a percentage, None meaning no VAT applies."""

    type: DimensionType
    price: Decimal
    vat: Decimal | None
    step_size: int


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """TariffRestrictions (§11.4.6). Times and dates are local to the site; every `min_*` is
    inclusive, every `max_*` exclusive, `end_date` exclusive; all restrictions are ANDed."""

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple[DayOfWeek, ...] = ()
    reservation: ReservationRestriction | None = None


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None

    def component(self, kind: DimensionType) -> tuple[int, PriceComponent] | None:
        """This element's component for `kind` and its index, if it has one."""
        for index, component in enumerate(self.price_components):
            if component.type is kind:
                return index, component
        return None


@dataclass(frozen=True, slots=True)
class Tariff:
    """Tariff object (§11.3.1). `energy_mix` is kept as given (JSON), not interpreted."""

    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    country_code: str | None = None
    party_id: str | None = None
    type: TariffType | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    energy_mix: Any = None
    last_updated: datetime | None = None
    tax_included: TaxIncluded | None = None
    preauthorize_amount: Decimal | None = None

    def valid_at(self, when: datetime) -> bool:
        """Whether the tariff is active at `when` (§11.3.1: active from `start_date_time`, "no
        longer valid after" `end_date_time`, so the end instant itself still counts)."""
        if self.start_date_time is not None and when < self.start_date_time:
            return False
        return self.end_date_time is None or when <= self.end_date_time


# --- parsing -----------------------------------------------------------------------------------

_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_TIME_TEXT = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]\Z")
_DATE_TEXT = re.compile(r"[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\Z")
_CISTRING = re.compile(r"[\x20-\x7e]+\Z")  # printable ASCII, OCPI CiString
_COUNTRY = re.compile(r"[A-Za-z]{2}\Z")
_PARTY = re.compile(r"[A-Za-z0-9]{3}\Z")
_LANGUAGE = re.compile(r"[A-Za-z]{2}\Z")
_HUNDRED = Decimal(100)

_TARIFF_FIELDS = frozenset(
    {
        "country_code",
        "party_id",
        "id",
        "currency",
        "type",
        "tariff_alt_text",
        "tariff_alt_url",
        "min_price",
        "max_price",
        "elements",
        "start_date_time",
        "end_date_time",
        "energy_mix",
        "last_updated",
        "tax_included",
        "preauthorize_amount",
    }
)
_ELEMENT_FIELDS = frozenset({"price_components", "restrictions"})
_COMPONENT_FIELDS = frozenset({"type", "price", "vat", "step_size"})
_RESTRICTION_FIELDS = frozenset(
    {
        "start_time",
        "end_time",
        "start_date",
        "end_date",
        "min_kwh",
        "max_kwh",
        "min_current",
        "max_current",
        "min_power",
        "max_power",
        "min_duration",
        "max_duration",
        "day_of_week",
        "reservation",
    }
)


def parse_decimal(value: Any, field: str, *, allow_negative: bool = False) -> Decimal:
    """An exact decimal from a JSON value, by the module's number rule (see the docstring)."""
    if isinstance(value, bool):
        raise TariffError(field, "a number, not a boolean")
    if isinstance(value, float):
        raise FloatRefused(field, "a binary float is not exact money: parse JSON with loads_exact")
    if isinstance(value, JsonNumber):
        if not value.is_finite() or Decimal(float(value)) != value:
            raise TariffError(
                field,
                f"{value} is not exact as a binary floating-point number; "
                f'send it as a string: "{value}"',
            )
        result = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise TariffError(field, f"{value} is not a finite number")
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        if not _DECIMAL_TEXT.match(value):
            raise TariffError(field, f'{value!r} is not a decimal number like "0.25"')
        result = Decimal(value)
    else:
        raise TariffError(field, f"a number, not {type(value).__name__}")
    if result < 0 and not allow_negative:
        raise TariffError(field, f"{result} is negative")
    return result


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            raise FloatRefused(field, "an integer, not a binary float")
        raise TariffError(field, f"an integer, not {value!r}")
    if value < 0:
        raise TariffError(field, f"{value} is negative")
    return value


def _string(value: Any, field: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise TariffError(field, f"a string, not {type(value).__name__}")
    if not value:
        raise TariffError(field, "empty")
    if len(value) > max_length:
        raise TariffError(field, f"longer than {max_length} characters")
    return value


def _object(value: Any, field: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TariffError(field, f"an object, not {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise TariffError(_join(field, str(key)), "unknown field")
    return value


def _list(value: Any, field: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TariffError(field, f"a list, not {type(value).__name__}")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _present(data: Mapping[str, Any], key: str) -> bool:
    # OCPI: "Fields that are not specified may be considered as null values".
    return data.get(key) is not None


def _datetime(value: Any, field: str) -> datetime:
    """An OCPI DateTime (RFC 3339, UTC; no zone designator means UTC) as an aware UTC value."""
    text = _string(value, field, 35)
    try:
        parsed: datetime = isoparse(text)
    except (ValueError, OverflowError) as exc:
        raise TariffError(field, f"{text!r} is not an RFC 3339 date-time") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _time(value: Any, field: str) -> time:
    if not isinstance(value, str) or not _TIME_TEXT.match(value):
        raise TariffError(field, f'{value!r} is not a time of day "HH:MM" (00:00 to 23:59)')
    return time(int(value[:2]), int(value[3:]))


def _date(value: Any, field: str) -> date:
    if not isinstance(value, str) or not _DATE_TEXT.match(value):
        raise TariffError(field, f'{value!r} is not a date "YYYY-MM-DD"')
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TariffError(field, f"{value!r} is not a calendar date") from None


def _member(kind: type[StrEnum], value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise TariffError(field, f"unknown value {value!r}; one of {known}") from None


def _price(value: Any, field: str) -> Price:
    """A 2.2.1 Price `{excl_vat, incl_vat?}` or a 2.3 PriceLimit `{before_taxes, after_taxes?}`."""
    if not isinstance(value, Mapping):
        raise TariffError(field, f"an object, not {type(value).__name__}")
    keys = set(value)
    if keys & {"before_taxes", "after_taxes"}:
        data = _object(value, field, frozenset({"before_taxes", "after_taxes"}))
        excl_key, incl_key = "before_taxes", "after_taxes"
    else:
        data = _object(value, field, frozenset({"excl_vat", "incl_vat"}))
        excl_key, incl_key = "excl_vat", "incl_vat"
    if not _present(data, excl_key):
        raise TariffError(_join(field, excl_key), "required")
    excl = parse_decimal(data[excl_key], _join(field, excl_key))
    incl = (
        parse_decimal(data[incl_key], _join(field, incl_key)) if _present(data, incl_key) else None
    )
    if incl is not None and incl < excl:
        raise TariffError(_join(field, incl_key), f"{incl} is below {excl_key} {excl}")
    return Price(excl, incl)


def _component(value: Any, field: str) -> PriceComponent:
    data = _object(value, field, _COMPONENT_FIELDS)
    for key in ("type", "price", "step_size"):
        if not _present(data, key):
            raise TariffError(_join(field, key), "required")
    kind: DimensionType = _member(DimensionType, data["type"], _join(field, "type"))
    price = parse_decimal(data["price"], _join(field, "price"))
    vat = parse_decimal(data["vat"], _join(field, "vat")) if _present(data, "vat") else None
    if vat is not None and vat > _HUNDRED:
        raise TariffError(_join(field, "vat"), f"{vat} is not a percentage (19 for 19 %)")
    step = _integer(data["step_size"], _join(field, "step_size"))
    if step < 1 and kind is not DimensionType.FLAT:
        raise TariffError(_join(field, "step_size"), f"{step}: at least 1 ({kind.value})")
    return PriceComponent(kind, price, vat, step)


def _bounds(
    data: Mapping[str, Any], field: str, low: str, high: str
) -> tuple[Decimal | None, Decimal | None]:
    lo = parse_decimal(data[low], _join(field, low)) if _present(data, low) else None
    hi = parse_decimal(data[high], _join(field, high)) if _present(data, high) else None
    if hi is not None and hi == 0:
        raise TariffError(_join(field, high), "0 can never hold (max_* is exclusive)")
    if lo is not None and hi is not None and lo >= hi:
        raise TariffError(
            _join(field, low), f"{lo} is not below {high} {hi}: the element can never apply"
        )
    return lo, hi


def _restrictions(value: Any, field: str) -> TariffRestrictions:
    data = _object(value, field, _RESTRICTION_FIELDS)
    start_time = (
        _time(data["start_time"], _join(field, "start_time"))
        if _present(data, "start_time")
        else None
    )
    end_time = (
        _time(data["end_time"], _join(field, "end_time")) if _present(data, "end_time") else None
    )
    if start_time is not None and start_time == end_time:
        raise TariffError(
            _join(field, "end_time"),
            "equals start_time; leave both out for the whole day",
        )
    start_date = (
        _date(data["start_date"], _join(field, "start_date"))
        if _present(data, "start_date")
        else None
    )
    end_date = (
        _date(data["end_date"], _join(field, "end_date")) if _present(data, "end_date") else None
    )
    if start_date is not None and end_date is not None and start_date >= end_date:
        raise TariffError(
            _join(field, "end_date"), f"{end_date} is not after start_date {start_date} (exclusive)"
        )
    min_kwh, max_kwh = _bounds(data, field, "min_kwh", "max_kwh")
    min_current, max_current = _bounds(data, field, "min_current", "max_current")
    min_power, max_power = _bounds(data, field, "min_power", "max_power")
    min_duration = (
        _integer(data["min_duration"], _join(field, "min_duration"))
        if _present(data, "min_duration")
        else None
    )
    max_duration = (
        _integer(data["max_duration"], _join(field, "max_duration"))
        if _present(data, "max_duration")
        else None
    )
    if max_duration == 0:
        raise TariffError(_join(field, "max_duration"), "0 can never hold (exclusive)")
    if min_duration is not None and max_duration is not None and min_duration >= max_duration:
        raise TariffError(
            _join(field, "min_duration"),
            f"{min_duration} is not below max_duration {max_duration}: the element can never apply",
        )
    days: list[DayOfWeek] = []
    if _present(data, "day_of_week"):
        for index, day in enumerate(_list(data["day_of_week"], _join(field, "day_of_week"))):
            path = f"{_join(field, 'day_of_week')}[{index}]"
            member: DayOfWeek = _member(DayOfWeek, day, path)
            if member in days:
                raise TariffError(path, f"{member.value} listed twice")
            days.append(member)
    reservation: ReservationRestriction | None = (
        _member(ReservationRestriction, data["reservation"], _join(field, "reservation"))
        if _present(data, "reservation")
        else None
    )
    return TariffRestrictions(
        start_time=start_time,
        end_time=end_time,
        start_date=start_date,
        end_date=end_date,
        min_kwh=min_kwh,
        max_kwh=max_kwh,
        min_current=min_current,
        max_current=max_current,
        min_power=min_power,
        max_power=max_power,
        min_duration=min_duration,
        max_duration=max_duration,
        day_of_week=tuple(days),
        reservation=reservation,
    )


def _element(value: Any, field: str) -> TariffElement:
    data = _object(value, field, _ELEMENT_FIELDS)
    if not _present(data, "price_components"):
        raise TariffError(_join(field, "price_components"), "required")
    raw = _list(data["price_components"], _join(field, "price_components"))
    if not raw:
        raise TariffError(_join(field, "price_components"), "at least one price component")
    components: list[PriceComponent] = []
    for index, item in enumerate(raw):
        path = f"{_join(field, 'price_components')}[{index}]"
        component = _component(item, path)
        if any(c.type is component.type for c in components):
            raise TariffError(
                _join(path, "type"),
                f"a second {component.type.value} component in one element (which one applies "
                "is undefined)",
            )
        components.append(component)
    restrictions = (
        _restrictions(data["restrictions"], _join(field, "restrictions"))
        if _present(data, "restrictions")
        else None
    )
    if restrictions is not None and restrictions.reservation is not None:
        for index, component in enumerate(components):
            if component.type not in (DimensionType.FLAT, DimensionType.TIME):
                raise TariffError(
                    f"{_join(field, 'price_components')}[{index}].type",
                    f"{component.type.value} in a reservation element (only FLAT and TIME)",
                )
    return TariffElement(tuple(components), restrictions)


def parse_tariff(data: Mapping[str, Any]) -> Tariff:
    """Validate an OCPI 2.2.1 Tariff object (as parsed by `loads_exact`) into a `Tariff`.

    Raises `TariffError` naming the first offending field."""
    data = _object(data, "", _TARIFF_FIELDS)
    for key in ("id", "currency", "elements"):
        if not _present(data, key):
            raise TariffError(key, "required")
    tariff_id = _string(data["id"], "id", 36)
    if not _CISTRING.match(tariff_id):
        raise TariffError("id", "printable ASCII only (OCPI CiString)")
    currency = data["currency"]
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise TariffError("currency", f'{currency!r} is not an ISO 4217 currency code like "EUR"')
    country_code = None
    if _present(data, "country_code"):
        country_code = _string(data["country_code"], "country_code", 2)
        if not _COUNTRY.match(country_code):
            raise TariffError("country_code", f"{country_code!r} is not an ISO 3166 alpha-2 code")
    party_id = None
    if _present(data, "party_id"):
        party_id = _string(data["party_id"], "party_id", 3)
        if not _PARTY.match(party_id):
            raise TariffError("party_id", f"{party_id!r} is not a 3-character party id")
    tariff_type: TariffType | None = (
        _member(TariffType, data["type"], "type") if _present(data, "type") else None
    )
    texts: list[DisplayText] = []
    if _present(data, "tariff_alt_text"):
        for index, item in enumerate(_list(data["tariff_alt_text"], "tariff_alt_text")):
            path = f"tariff_alt_text[{index}]"
            entry = _object(item, path, frozenset({"language", "text"}))
            for key in ("language", "text"):
                if not _present(entry, key):
                    raise TariffError(_join(path, key), "required")
            language = _string(entry["language"], _join(path, "language"), 2)
            if not _LANGUAGE.match(language):
                raise TariffError(_join(path, "language"), f"{language!r} is not ISO 639-1")
            texts.append(DisplayText(language, _string(entry["text"], _join(path, "text"), 512)))
    alt_url = (
        _string(data["tariff_alt_url"], "tariff_alt_url", 255)
        if _present(data, "tariff_alt_url")
        else None
    )
    min_price = _price(data["min_price"], "min_price") if _present(data, "min_price") else None
    max_price = _price(data["max_price"], "max_price") if _present(data, "max_price") else None
    if min_price is not None and max_price is not None:
        if min_price.excl_vat > max_price.excl_vat:
            raise TariffError(
                "min_price", f"{min_price.excl_vat} is above max_price {max_price.excl_vat}"
            )
        if (
            min_price.incl_vat is not None
            and max_price.incl_vat is not None
            and min_price.incl_vat > max_price.incl_vat
        ):
            raise TariffError(
                "min_price",
                f"incl. VAT {min_price.incl_vat} is above max_price {max_price.incl_vat}",
            )
    raw_elements = _list(data["elements"], "elements")
    if not raw_elements:
        raise TariffError("elements", "at least one element")
    elements = tuple(
        _element(item, f"elements[{index}]") for index, item in enumerate(raw_elements)
    )
    start = (
        _datetime(data["start_date_time"], "start_date_time")
        if _present(data, "start_date_time")
        else None
    )
    end = (
        _datetime(data["end_date_time"], "end_date_time")
        if _present(data, "end_date_time")
        else None
    )
    if start is not None and end is not None and start >= end:
        raise TariffError("end_date_time", f"{end.isoformat()} is not after start_date_time")
    last_updated = (
        _datetime(data["last_updated"], "last_updated") if _present(data, "last_updated") else None
    )
    tax_included: TaxIncluded | None = None
    if _present(data, "tax_included"):
        if data["tax_included"] == "YES":
            raise TariffError(
                "tax_included",
                "YES (prices include taxes) does not map onto OCPI 2.2.1, where prices exclude "
                "VAT; send prices excluding VAT with tax_included NO",
            )
        tax_included = _member(TaxIncluded, data["tax_included"], "tax_included")
        if tax_included is TaxIncluded.NOT_APPLICABLE:
            for e, element in enumerate(elements):
                for c, component in enumerate(element.price_components):
                    if component.vat is not None:
                        raise TariffError(
                            f"elements[{e}].price_components[{c}].vat",
                            "a VAT rate although tax_included is N/A (no taxes apply)",
                        )
    preauthorize = (
        parse_decimal(data["preauthorize_amount"], "preauthorize_amount")
        if _present(data, "preauthorize_amount")
        else None
    )
    return Tariff(
        id=tariff_id,
        currency=currency,
        elements=elements,
        country_code=country_code,
        party_id=party_id,
        type=tariff_type,
        tariff_alt_text=tuple(texts),
        tariff_alt_url=alt_url,
        min_price=min_price,
        max_price=max_price,
        start_date_time=start,
        end_date_time=end,
        energy_mix=data.get("energy_mix"),
        last_updated=last_updated,
        tax_included=tax_included,
        preauthorize_amount=preauthorize,
    )
