"""The pricing engine: what one charging session costs under one OCPI 2.2.1 tariff, exactly.

Pure: no I/O, no clock, no randomness; the same tariff and session give the same `Priced` on
every run, so the result can be recorded in an event and recomputed on replay for checking.

The input (`PricingSession`, `Period`) mirrors an OCPI CDR (`mod_cdrs` §10.3.1) and its
ChargingPeriods (§10.4.6) one to one: a period starts at `start` and ends where the next one
starts (the last one at the session's end), and carries the CdrDimension volumes (§10.4.2) that
matter for pricing: ENERGY (kWh), TIME, PARKING_TIME and RESERVATION_TIME (here in *seconds*,
see below), MAX/MIN_CURRENT (A) and MAX/MIN_POWER (kW). `invoices.ocpi.parse_session` reads
the JSON form.

The rules, with the specification text they come from (`mod_tariffs` = Tariffs module,
`mod_cdrs` = CDRs module, OCPI 2.2.1):

1. Per period and per dimension, the first element (in list order) that has a component for
   that dimension and whose restrictions all hold at the start of the period applies
   (mod_tariffs, Tariff object: "the first Tariff Element with a Price Component for that
   dimension in the list with matching Tariff Restrictions will be used"). Restrictions are
   evaluated in the site's time zone (`time_zone`, IANA, via zoneinfo) at the period's start:
   `end_time < start_time` wraps midnight; `start_*`/`min_*` are inclusive, `end_date` and
   every `max_*` exclusive (TariffRestrictions class); `min/max_kwh` compare the energy charged
   in the session *before* the period, `min/max_duration` the time since the session started
   (real seconds, so across a DST change too), `min/max_current` and `min/max_power` the
   period's MIN_/MAX_ values (current >= min_current, current < max_current).
2. No element for a dimension: that part is free ("there will be no costs for that Tariff
   Dimension"); the volume is listed in `Priced.free`. This is pricing, not failure.
3. FLAT is charged once per session: from the first element with a FLAT component that holds
   at the start of the first period in which any such element holds (normally the session's
   start; a FLAT restricted to, say, `min_duration` can so become due later - a blocking fee).
   A reservation has its own FLAT (reservation or expiry fee) from the reservation elements.
4. step_size is applied once per session and dimension, to the dimension's total priced
   volume, with the step of the last component that priced it; the rounding surplus is billed
   in that last period at that component's price (mod_cdrs, CDR object, step_size: "only the
   total amount ... is used", "the step_size of the last relevant PriceComponent is used").
   ENERGY steps are Wh, time steps seconds. When TIME and PARKING_TIME are both priced in a
   session, TIME is not rounded ("step_size is only taken into account for the total parking
   duration"; ocpi/ocpi#546 confirms the resulting 0.73 in the free-switching example).
5. Reservations (ReservationRestrictionType): RESERVATION_TIME volume is priced by the TIME
   components of elements with `reservation: RESERVATION`; for an expired reservation
   (`reservation_expired`) elements with `RESERVATION_EXPIRES` come first, then RESERVATION
   ones, and no session FLAT is due (there was no charging session). Elements with a
   `reservation` restriction never price charging, and other elements never price reservations.
6. `vat` absent: no VAT, the amount including VAT equals the amount excluding it, and the
   line's `vat` is None (not 0 - "Not providing a VAT is different from 0% VAT").
7. min_price / max_price clamp the session's total excluding VAT and the total including VAT
   separately (Tariff object, notes on min_price and max_price); a limit without `incl_vat`
   clamps only the excl. VAT total. Per-dimension totals are not clamped.
8. The tariff must be valid at the session's start (Tariff object note on start/end_date_time:
   "a driver accepts the tariff which is valid when they start their charging session").

Exactness. No amount is rounded here. Durations are kept in seconds, because hours are not
exact decimals (7 minutes are 0.11666... h). Internally every amount is kept multiplied by
3600 (price per hour x seconds; price per kWh x kWh x 3600), where it is an exact product of
decimals, and sums are exact; only the final division by 3600 can leave the decimals. An amount
whose value is a finite decimal is returned exactly (in its shortest spelling, "4.4"); one
that is not (7 minutes at 1.00/h is 0.11666... EUR) is returned to 30 decimal places and
marked `exact=False`. Totals are divided once, after summing, not added up from the cut lines,
so a total that is a rounding tie at the cent (0.125) is exactly that. Rounding to the cent
happens on invoice lines.

Unpriceable. `UnpriceableSession(reason)` when the engine cannot price the session faithfully:
the tariff is not valid at the start, currencies differ, a restriction needs a value the period
lacks (a `max_current` element and a period without MAX_CURRENT/MIN_CURRENT), or (with
`strict_periods`, the default) a period runs across an instant at which a different element
would apply - a time-of-day, date, weekday, duration or kWh boundary - because a CDR "SHALL"
start a new period there (mod_cdrs, CDR object) and pricing the whole period at its start
would be wrong. `time_boundaries` and `energy_thresholds` tell a caller where to split.
`InvalidSession` (a subclass) is for malformed input: naive datetimes, unsorted periods,
negative volumes (energy fed back into the grid is not priceable with a 2.2.1 tariff).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, localcontext
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz as dateutil_tz

from ledger.ocpi_tariffs import (
    DimensionType,
    PriceComponent,
    PricingError,
    ReservationRestriction,
    Tariff,
    TariffRestrictions,
)

__all__ = [
    "Amount",
    "Dimension",
    "FreeVolume",
    "InvalidSession",
    "Period",
    "Priced",
    "PricedComponent",
    "PricedLine",
    "PricingSession",
    "UnpriceableSession",
    "energy_thresholds",
    "price",
    "time_boundaries",
    "to_decimal",
]

ZERO = Decimal(0)
INEXACT_PLACES = 30  # decimal places of an amount that is not a finite decimal
_HUNDRED = Decimal(100)
_SECONDS_PER_HOUR = Decimal(3600)
# Amounts are kept scaled by 3600 (money x seconds per hour), where every one of them is an
# exact product of decimals; only the final division by 3600 can leave the finite decimals.
_EXACT = Context(prec=200, traps=[Inexact])
_ONE = Decimal(1)
_WH_PER_KWH = Decimal(1000)
_UTC = timezone.utc


class UnpriceableSession(PricingError):
    """The engine cannot price this session faithfully; `reason` says why. The session must be
    recorded as unpriced with the reason, never priced at 0."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidSession(UnpriceableSession, ValueError):
    """Malformed session data; `field` names the value (e.g. `periods[2].energy_kwh`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Dimension(StrEnum):
    """What a priced line is for: the CDR dimension, or FLAT (session fee) and RESERVATION_FLAT
    (reservation or expiry fee)."""

    ENERGY = "ENERGY"
    TIME = "TIME"
    PARKING_TIME = "PARKING_TIME"
    RESERVATION_TIME = "RESERVATION_TIME"
    FLAT = "FLAT"
    RESERVATION_FLAT = "RESERVATION_FLAT"

    @property
    def component_type(self) -> DimensionType:
        """The tariff component type that prices this dimension."""
        return _COMPONENT_TYPE[self]

    @property
    def unit(self) -> str:
        """Unit of volumes and billed quantities: kWh, s (seconds) or session."""
        return _UNIT[self]


_COMPONENT_TYPE = {
    Dimension.ENERGY: DimensionType.ENERGY,
    Dimension.TIME: DimensionType.TIME,
    Dimension.PARKING_TIME: DimensionType.PARKING_TIME,
    Dimension.RESERVATION_TIME: DimensionType.TIME,
    Dimension.FLAT: DimensionType.FLAT,
    Dimension.RESERVATION_FLAT: DimensionType.FLAT,
}
_UNIT = {
    Dimension.ENERGY: "kWh",
    Dimension.TIME: "s",
    Dimension.PARKING_TIME: "s",
    Dimension.RESERVATION_TIME: "s",
    Dimension.FLAT: "session",
    Dimension.RESERVATION_FLAT: "session",
}
_VOLUME_DIMENSIONS = (
    Dimension.ENERGY,
    Dimension.TIME,
    Dimension.PARKING_TIME,
    Dimension.RESERVATION_TIME,
)


# --- input -------------------------------------------------------------------------------------

_PERIOD_VOLUMES = ("energy_kwh", "charging_seconds", "parking_seconds", "reservation_seconds")
_PERIOD_LEVELS = ("max_current", "min_current", "max_power", "min_power")


def _aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidSession(field, f"a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidSession(field, "a timezone-aware datetime (UTC inside)")
    return value


def _exact(value: object, field: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{field}: a binary float is not an exact quantity; use Decimal")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise InvalidSession(field, f"a Decimal, not {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise InvalidSession(field, f"{result} is not finite")
    return result


@dataclass(frozen=True, slots=True)
class Period:
    """One OCPI ChargingPeriod. Volumes are what happened *in* this period: energy in kWh, time
    charging / parked (connected, not charging) / reserved in seconds (OCPI hours x 3600).
    The current and power levels are the period's CdrDimensions MAX_CURRENT etc. (A, kW);
    None where unknown."""

    start: datetime
    energy_kwh: Decimal = ZERO
    charging_seconds: Decimal = ZERO
    parking_seconds: Decimal = ZERO
    reservation_seconds: Decimal = ZERO
    max_current: Decimal | None = None
    min_current: Decimal | None = None
    max_power: Decimal | None = None
    min_power: Decimal | None = None

    def __post_init__(self) -> None:
        _aware(self.start, "start")
        for name in _PERIOD_VOLUMES:
            value = _exact(getattr(self, name), name)
            if value < 0:
                what = "energy fed back into the grid" if name == "energy_kwh" else "a duration"
                raise InvalidSession(name, f"{value} is negative ({what} cannot be priced)")
            object.__setattr__(self, name, value)
        for name in _PERIOD_LEVELS:
            level = getattr(self, name)
            if level is not None:
                object.__setattr__(self, name, _exact(level, name))


@dataclass(frozen=True, slots=True)
class PricingSession:
    """A session to price: from `start` to `end` (aware), its periods in time order, the site's
    IANA time zone for the restrictions, optionally its currency (checked against the tariff),
    and whether it was a reservation that expired without a charging session."""

    start: datetime
    end: datetime
    time_zone: str
    periods: tuple[Period, ...]
    currency: str | None = None
    reservation_expired: bool = False

    def __post_init__(self) -> None:
        start = _aware(self.start, "start")
        end = _aware(self.end, "end")
        if end < start:
            raise InvalidSession("end", "before start")
        _zone(self.time_zone)
        periods = tuple(self.periods)
        object.__setattr__(self, "periods", periods)
        if not periods:
            raise InvalidSession("periods", "at least one charging period")
        previous = start
        for index, period in enumerate(periods):
            if not isinstance(period, Period):
                raise InvalidSession(f"periods[{index}]", f"a Period, not {type(period).__name__}")
            if period.start < previous:
                what = "the session's start" if index == 0 else "the previous period's start"
                raise InvalidSession(f"periods[{index}].start", f"before {what}")
            if period.start > end:
                raise InvalidSession(f"periods[{index}].start", "after the session's end")
            previous = period.start

    def period_end(self, index: int) -> datetime:
        """Where period `index` ends: at the next period's start, the last at the session's end."""
        return self.periods[index + 1].start if index + 1 < len(self.periods) else self.end


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    if not isinstance(name, str) or not name:
        raise InvalidSession("time_zone", "an IANA time zone name like 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    # python-dateutil ships its own copy of the tz database, for machines without one.
    found: tzinfo | None = dateutil_tz.gettz(name) if "/" in name or name == "UTC" else None
    if found is None:
        raise InvalidSession("time_zone", f"{name!r} is not an IANA time zone")
    return found


# --- output ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Amount:
    """Money excluding and including VAT. `exact` is False when the true value is not a finite
    decimal and was carried to INEXACT_PLACES places."""

    excl_vat: Decimal
    incl_vat: Decimal
    exact: bool = True


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One dimension of one period, priced by one component. `volume` is what was consumed,
    `quantity` what is billed (volume plus any step_size surplus, which lands on the last
    period), both in `dimension.unit`; `unit_price` is per kWh, per hour or per session."""

    period_index: int
    dimension: Dimension
    element_index: int
    component_index: int
    volume: Decimal
    quantity: Decimal
    unit_price: Decimal
    vat: Decimal | None
    amount: Amount


@dataclass(frozen=True, slots=True)
class PricedComponent:
    """One tariff component's share of the session (its lines summed): an invoice line."""

    dimension: Dimension
    element_index: int
    component_index: int
    quantity: Decimal
    unit_price: Decimal
    vat: Decimal | None
    step_size: int
    amount: Amount


@dataclass(frozen=True, slots=True)
class FreeVolume:
    """Volume no element priced (free by the spec's rule)."""

    period_index: int
    dimension: Dimension
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Priced:
    """The price of a session. Costs per dimension are before min/max_price; `total_cost` is
    after them, `cost_before_limits` before; `limit_excl_vat`/`limit_incl_vat` say which limit
    (if any) set each total. Times are in seconds; the `*_hours` properties give OCPI's hours."""

    tariff_id: str
    currency: str
    lines: tuple[PricedLine, ...]
    components: tuple[PricedComponent, ...]
    free: tuple[FreeVolume, ...]
    total_cost: Amount
    cost_before_limits: Amount
    limit_excl_vat: str | None
    limit_incl_vat: str | None
    total_fixed_cost: Amount
    total_energy_cost: Amount
    total_time_cost: Amount
    total_parking_cost: Amount
    total_reservation_cost: Amount
    total_energy: Decimal
    total_charging_seconds: Decimal
    total_parking_seconds: Decimal
    total_reservation_seconds: Decimal

    @property
    def exact(self) -> bool:
        """Whether every amount here is exact (no repeating decimal was cut)."""
        totals = (
            self.total_cost,
            self.cost_before_limits,
            self.total_fixed_cost,
            self.total_energy_cost,
            self.total_time_cost,
            self.total_parking_cost,
            self.total_reservation_cost,
        )
        return (
            all(amount.exact for amount in totals)
            and all(line.amount.exact for line in self.lines)
            and all(component.amount.exact for component in self.components)
        )

    @property
    def total_time_hours(self) -> Decimal:
        """OCPI total_time: charging plus parking, in hours (exact when a finite decimal)."""
        return to_decimal(
            Fraction(self.total_charging_seconds + self.total_parking_seconds) / 3600
        )[0]

    @property
    def total_parking_hours(self) -> Decimal:
        return to_decimal(Fraction(self.total_parking_seconds) / 3600)[0]


def to_decimal(value: Fraction) -> tuple[Decimal, bool]:
    """A fraction as a Decimal: exactly when it is a finite decimal (its denominator has no
    prime factors but 2 and 5), else to INEXACT_PLACES places (half-even); and whether exact."""
    numerator, denominator = value.numerator, value.denominator
    if denominator == 1:
        return Decimal(numerator), True
    twos = (denominator & -denominator).bit_length() - 1
    rest = denominator >> twos
    fives = 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest == 1:
        places = max(twos, fives)
        return Decimal(f"{numerator * (10**places // denominator)}E-{places}"), True
    with localcontext() as context:
        context.prec = len(str(abs(numerator))) + INEXACT_PLACES + 8
        quotient = Decimal(numerator) / Decimal(denominator)
        return quotient.quantize(Decimal(1).scaleb(-INEXACT_PLACES), ROUND_HALF_EVEN), False


def _unscale(scaled: Decimal) -> tuple[Decimal, bool]:
    try:
        value = _EXACT.divide(scaled, _SECONDS_PER_HOUR)
    except Inexact:
        return to_decimal(Fraction(scaled) / 3600)
    # One spelling per value ("4.4", not "4.400"), never in exponent notation.
    if value == value.to_integral_value():
        return value.quantize(_ONE, context=_EXACT), True
    return value.normalize(_EXACT), True


def _amount(excl: Decimal, incl: Decimal) -> Amount:
    """An Amount from amounts scaled by 3600."""
    excl_value, excl_exact = _unscale(excl)
    incl_value, incl_exact = excl_value, excl_exact
    if incl != excl:
        incl_value, incl_exact = _unscale(incl)
    return Amount(excl_value, incl_value, excl_exact and incl_exact)


# --- restrictions ------------------------------------------------------------------------------


class _Context:
    """What restrictions are evaluated against: one instant of one period."""

    __slots__ = ("duration", "energy", "index", "local", "period")

    def __init__(
        self,
        index: int,
        period: Period,
        local: datetime | None,
        energy: Decimal,
        duration: timedelta,
    ) -> None:
        self.index = index
        self.period = period
        self.local = local
        self.energy = energy
        self.duration = duration


class _Matcher:
    """One element's restrictions, prepared for evaluation."""

    __slots__ = (
        "end_time",
        "max_duration",
        "min_duration",
        "needs_local",
        "restrictions",
        "start_time",
        "weekdays",
    )

    def __init__(self, restrictions: TariffRestrictions) -> None:
        self.restrictions = restrictions
        self.start_time = restrictions.start_time
        self.end_time = restrictions.end_time
        self.weekdays = (
            frozenset(day.weekday for day in restrictions.day_of_week)
            if restrictions.day_of_week
            else None
        )
        self.needs_local = bool(
            self.weekdays is not None
            or restrictions.start_time is not None
            or restrictions.end_time is not None
            or restrictions.start_date is not None
            or restrictions.end_date is not None
        )
        self.min_duration = (
            None
            if restrictions.min_duration is None
            else timedelta(seconds=restrictions.min_duration)
        )
        self.max_duration = (
            None
            if restrictions.max_duration is None
            else timedelta(seconds=restrictions.max_duration)
        )

    def holds(self, ctx: _Context) -> bool | str:
        """True or False, or (when a needed value is missing) the name of what is missing."""
        r = self.restrictions
        if self.needs_local:
            local = ctx.local
            assert local is not None
            if self.weekdays is not None and local.weekday() not in self.weekdays:
                return False
            if r.start_date is not None or r.end_date is not None:
                day = local.date()
                if r.start_date is not None and day < r.start_date:
                    return False
                if r.end_date is not None and day >= r.end_date:
                    return False
            start, end = self.start_time, self.end_time
            if start is not None or end is not None:
                clock = local.time()
                if start is not None and end is not None:
                    inside = start <= clock < end if start < end else clock >= start or clock < end
                elif start is not None:
                    inside = clock >= start
                else:
                    assert end is not None
                    inside = clock < end
                if not inside:
                    return False
        if r.min_kwh is not None and ctx.energy < r.min_kwh:
            return False
        if r.max_kwh is not None and ctx.energy >= r.max_kwh:
            return False
        if self.min_duration is not None and ctx.duration < self.min_duration:
            return False
        if self.max_duration is not None and ctx.duration >= self.max_duration:
            return False
        missing: str | bool = True
        period = ctx.period
        for low, high, lowest, highest, what in (
            (r.min_current, r.max_current, period.min_current, period.max_current, "current"),
            (r.min_power, r.max_power, period.min_power, period.max_power, "power"),
        ):
            if low is not None:
                # Holds when the level is >= low: known from MIN_*, refuted by MAX_* < low.
                if lowest is not None:
                    if lowest < low:
                        return False
                elif highest is not None and highest < low:
                    return False
                else:
                    missing = f"min_{what} (the period has no MIN_{what.upper()})"
            if high is not None:
                # Holds when the level is < high: known from MAX_*, refuted by MIN_* >= high.
                if highest is not None:
                    if highest >= high:
                        return False
                elif lowest is not None and lowest >= high:
                    return False
                else:
                    missing = f"max_{what} (the period has no MAX_{what.upper()})"
        return missing


_Candidate = tuple[int, int, PriceComponent, "_Matcher | None"]


def _first(
    candidates: Sequence[_Candidate], ctx: _Context, dimension: Dimension
) -> _Candidate | None:
    for candidate in candidates:
        matcher = candidate[3]
        if matcher is None:
            return candidate
        verdict = matcher.holds(ctx)
        if verdict is True:
            return candidate
        if verdict is not False:
            raise UnpriceableSession(
                f"period {ctx.index}: element {candidate[0]} restricts {verdict}, so the "
                f"{dimension.value} price of the period cannot be decided"
            )
    return None


class _Compiled:
    """The tariff rearranged for lookups: per dimension, the candidate components in order."""

    __slots__ = ("by_dimension", "durations", "kwh", "needs_local", "times")

    def __init__(self, tariff: Tariff, expired: bool) -> None:
        regular: list[tuple[int, _Matchable]] = []
        reservation: list[tuple[int, _Matchable]] = []
        expires: list[tuple[int, _Matchable]] = []
        self.needs_local = False
        times: set[time] = set()
        durations: set[int] = set()
        kwh: set[Decimal] = set()
        for index, element in enumerate(tariff.elements):
            r = element.restrictions
            matcher = _Matcher(r) if r is not None and r != _NO_RESTRICTIONS else None
            if matcher is not None and r is not None:
                self.needs_local = self.needs_local or matcher.needs_local
                times.update(t for t in (r.start_time, r.end_time) if t is not None)
                durations.update(d for d in (r.min_duration, r.max_duration) if d is not None)
                kwh.update(k for k in (r.min_kwh, r.max_kwh) if k is not None)
            kind = None if r is None else r.reservation
            target = (
                regular
                if kind is None
                else reservation
                if kind is ReservationRestriction.RESERVATION
                else expires
            )
            target.append((index, (element.price_components, matcher)))
        reserved = (expires + reservation) if expired else reservation
        self.by_dimension: dict[Dimension, tuple[_Candidate, ...]] = {
            Dimension.ENERGY: _candidates(regular, DimensionType.ENERGY),
            Dimension.TIME: _candidates(regular, DimensionType.TIME),
            Dimension.PARKING_TIME: _candidates(regular, DimensionType.PARKING_TIME),
            Dimension.FLAT: _candidates(regular, DimensionType.FLAT),
            Dimension.RESERVATION_TIME: _candidates(reserved, DimensionType.TIME),
            Dimension.RESERVATION_FLAT: _candidates(reserved, DimensionType.FLAT),
        }
        self.times = frozenset(times)
        self.durations = frozenset(durations)
        self.kwh = frozenset(kwh)


_Matchable = tuple[tuple[PriceComponent, ...], "_Matcher | None"]
_NO_RESTRICTIONS = TariffRestrictions()


def _candidates(
    elements: Iterable[tuple[int, _Matchable]], kind: DimensionType
) -> tuple[_Candidate, ...]:
    found: list[_Candidate] = []
    for index, (components, matcher) in elements:
        for component_index, component in enumerate(components):
            if component.type is kind:
                found.append((index, component_index, component, matcher))
                break
    return tuple(found)


def time_boundaries(
    tariff: Tariff, session_start: datetime, start: datetime, end: datetime, time_zone: str
) -> list[datetime]:
    """The instants strictly between `start` and `end` (UTC) at which a time-based restriction
    of `tariff` (time of day, date, weekday, session duration since `session_start`) can change
    which element applies: where a CDR must start a new charging period. Local times that a
    DST change skips or repeats are given for both offsets; a caller may split at all of them."""
    compiled = _Compiled(tariff, expired=False)
    return _time_candidates(compiled, _zone(time_zone), session_start, start, end)


def energy_thresholds(tariff: Tariff) -> tuple[Decimal, ...]:
    """The session energies (kWh) at which a min_kwh/max_kwh restriction flips, ascending."""
    return tuple(sorted(_Compiled(tariff, expired=False).kwh))


def _time_candidates(
    compiled: _Compiled, zone: tzinfo, session_start: datetime, start: datetime, end: datetime
) -> list[datetime]:
    found: set[datetime] = set()
    if compiled.needs_local:
        clock_times = set(compiled.times)
        clock_times.add(time(0, 0))  # dates and weekdays change at local midnight
        first: date = start.astimezone(zone).date() - timedelta(days=1)
        last: date = end.astimezone(zone).date() + timedelta(days=1)
        day = first
        while day <= last:
            for clock in clock_times:
                for fold in (0, 1):
                    local = datetime.combine(day, clock, tzinfo=zone).replace(fold=fold)
                    instant = local.astimezone(_UTC)
                    if start < instant < end:
                        found.add(instant)
            day += timedelta(days=1)
    for seconds in compiled.durations:
        instant = session_start + timedelta(seconds=seconds)
        if start < instant < end:
            found.add(instant.astimezone(_UTC))
    return sorted(found)


# --- the engine --------------------------------------------------------------------------------


class _Entry:
    __slots__ = ("candidate", "period_index", "quantity", "volume")

    def __init__(self, period_index: int, candidate: _Candidate, volume: Decimal) -> None:
        self.period_index = period_index
        self.candidate = candidate
        self.volume = volume
        self.quantity = volume


def _volumes(period: Period) -> tuple[tuple[Dimension, Decimal], ...]:
    return (
        (Dimension.ENERGY, period.energy_kwh),
        (Dimension.TIME, period.charging_seconds),
        (Dimension.PARKING_TIME, period.parking_seconds),
        (Dimension.RESERVATION_TIME, period.reservation_seconds),
    )


class _Sum:
    __slots__ = ("component", "excl", "incl", "quantity")

    def __init__(self, component: PriceComponent | None) -> None:
        self.component = component
        self.quantity = ZERO
        self.excl = ZERO
        self.incl = ZERO

    def add(self, quantity: Decimal, excl: Decimal, incl: Decimal) -> None:
        self.quantity += quantity
        self.excl += excl
        self.incl += incl


_TIMED = frozenset({Dimension.TIME, Dimension.PARKING_TIME, Dimension.RESERVATION_TIME})


def _step(entries: list[_Entry], unit: Decimal) -> None:
    """Round the dimension's total up to the last component's step; the surplus is billed on
    the last entry."""
    step = entries[-1].candidate[2].step_size * unit
    total = sum((entry.volume for entry in entries), ZERO)
    steps, remainder = divmod(total, step)
    if remainder:
        entries[-1].quantity += (steps + 1) * step - total


def price(tariff: Tariff, session: PricingSession, *, strict_periods: bool = True) -> Priced:
    """Price `session` under `tariff` by OCPI 2.2.1 (see the module docstring for the rules).

    Raises `UnpriceableSession` (or its subclass `InvalidSession`) with the reason when the
    session cannot be priced faithfully."""
    if not tariff.valid_at(session.start):
        raise UnpriceableSession(
            f"tariff {tariff.id} is not valid at the session's start {session.start.isoformat()}"
        )
    if session.currency is not None and session.currency != tariff.currency:
        raise UnpriceableSession(
            f"the session is in {session.currency}, tariff {tariff.id} in {tariff.currency}"
        )
    with localcontext() as context:
        # Additions and products of quantities stay exact: no silent rounding at 28 digits.
        context.prec = 200
        return _price(tariff, session, strict_periods)


def _price(tariff: Tariff, session: PricingSession, strict: bool) -> Priced:
    compiled = _Compiled(tariff, session.reservation_expired)
    candidates = compiled.by_dimension
    zone = _zone(session.time_zone) if compiled.needs_local else None
    check_boundaries = strict and bool(compiled.needs_local or compiled.durations or compiled.kwh)
    instants = (
        _time_candidates(compiled, zone or _UTC, session.start, session.start, session.end)
        if check_boundaries and (compiled.needs_local or compiled.durations)
        else []
    )
    entries: dict[Dimension, list[_Entry]] = {dimension: [] for dimension in _VOLUME_DIMENSIONS}
    free: list[FreeVolume] = []
    flat: _Entry | None = None
    reservation_flat: _Entry | None = None
    energy = ZERO
    periods = session.periods
    for index, period in enumerate(periods):
        local = period.start.astimezone(zone) if zone is not None else None
        ctx = _Context(index, period, local, energy, period.start - session.start)
        found: dict[Dimension, _Candidate | None] = {}
        for dimension, volume in _volumes(period):
            if not volume:
                continue
            options = candidates[dimension]
            hit = _first(options, ctx, dimension) if options else None
            found[dimension] = hit
            if hit is None:
                free.append(FreeVolume(index, dimension, volume))
            else:
                entries[dimension].append(_Entry(index, hit, volume))
        reserving = period.reservation_seconds > 0 and not (
            period.energy_kwh or period.charging_seconds or period.parking_seconds
        )
        if reserving or session.reservation_expired:
            if reservation_flat is None and candidates[Dimension.RESERVATION_FLAT]:
                hit = _first(
                    candidates[Dimension.RESERVATION_FLAT], ctx, Dimension.RESERVATION_FLAT
                )
                if hit is not None:
                    reservation_flat = _Entry(index, hit, Decimal(1))
        elif flat is None and candidates[Dimension.FLAT]:
            hit = _first(candidates[Dimension.FLAT], ctx, Dimension.FLAT)
            if hit is not None:
                flat = _Entry(index, hit, Decimal(1))
        if check_boundaries and found:
            _check_boundaries(compiled, session, index, period, energy, found, zone, instants)
        energy += period.energy_kwh

    energy_entries = entries[Dimension.ENERGY]
    if energy_entries:
        _step(energy_entries, 1 / _WH_PER_KWH)
    for dimension in (Dimension.PARKING_TIME, Dimension.RESERVATION_TIME):
        if entries[dimension]:
            _step(entries[dimension], Decimal(1))
    if entries[Dimension.TIME] and not entries[Dimension.PARKING_TIME]:
        _step(entries[Dimension.TIME], Decimal(1))

    ordered: list[tuple[Dimension, _Entry]] = []
    if reservation_flat is not None:
        ordered.append((Dimension.RESERVATION_FLAT, reservation_flat))
    if flat is not None:
        ordered.append((Dimension.FLAT, flat))
    ordered.extend(
        (dimension, entry) for dimension in _VOLUME_DIMENSIONS for entry in entries[dimension]
    )
    ordered.sort(key=lambda item: item[1].period_index)

    lines: list[PricedLine] = []
    by_component: dict[tuple[Dimension, int, int], _Sum] = {}
    cost: dict[Dimension, _Sum] = {}
    total = _Sum(None)
    for dimension, entry in ordered:
        element_index, component_index, component, _ = entry.candidate
        # Scaled by 3600: price per hour x seconds, or price per kWh / session x quantity x 3600.
        excl = component.price * entry.quantity
        if dimension not in _TIMED:
            excl *= _SECONDS_PER_HOUR
        incl = excl if component.vat is None else excl * (_HUNDRED + component.vat) / _HUNDRED
        total.add(ZERO, excl, incl)
        cost.setdefault(dimension, _Sum(None)).add(ZERO, excl, incl)
        lines.append(
            PricedLine(
                period_index=entry.period_index,
                dimension=dimension,
                element_index=element_index,
                component_index=component_index,
                volume=entry.volume,
                quantity=entry.quantity,
                unit_price=component.price,
                vat=component.vat,
                amount=_amount(excl, incl),
            )
        )
        by_component.setdefault((dimension, element_index, component_index), _Sum(component)).add(
            entry.quantity, excl, incl
        )

    components = tuple(
        PricedComponent(
            dimension=dimension,
            element_index=element_index,
            component_index=component_index,
            quantity=summary.quantity,
            unit_price=summary.component.price,
            vat=summary.component.vat,
            step_size=summary.component.step_size,
            amount=_amount(summary.excl, summary.incl),
        )
        for (dimension, element_index, component_index), summary in by_component.items()
        if summary.component is not None
    )
    total_excl, total_incl = total.excl, total.incl

    before = _amount(total_excl, total_incl)
    final_excl, limit_excl = _clamp(
        total_excl,
        None if tariff.min_price is None else tariff.min_price.excl_vat,
        None if tariff.max_price is None else tariff.max_price.excl_vat,
    )
    final_incl, limit_incl = _clamp(
        total_incl,
        None if tariff.min_price is None else tariff.min_price.incl_vat,
        None if tariff.max_price is None else tariff.max_price.incl_vat,
    )

    def dimension_cost(*dimensions: Dimension) -> Amount:
        excl, incl = ZERO, ZERO
        for dimension in dimensions:
            sums = cost.get(dimension)
            if sums is not None:
                excl += sums.excl
                incl += sums.incl
        return _amount(excl, incl)

    return Priced(
        tariff_id=tariff.id,
        currency=tariff.currency,
        lines=tuple(lines),
        components=components,
        free=tuple(free),
        total_cost=before
        if limit_excl is None and limit_incl is None
        else _amount(final_excl, final_incl),
        cost_before_limits=before,
        limit_excl_vat=limit_excl,
        limit_incl_vat=limit_incl,
        total_fixed_cost=dimension_cost(Dimension.FLAT),
        total_energy_cost=dimension_cost(Dimension.ENERGY),
        total_time_cost=dimension_cost(Dimension.TIME),
        total_parking_cost=dimension_cost(Dimension.PARKING_TIME),
        total_reservation_cost=dimension_cost(
            Dimension.RESERVATION_TIME, Dimension.RESERVATION_FLAT
        ),
        total_energy=sum((p.energy_kwh for p in periods), ZERO),
        total_charging_seconds=sum((p.charging_seconds for p in periods), ZERO),
        total_parking_seconds=sum((p.parking_seconds for p in periods), ZERO),
        total_reservation_seconds=sum((p.reservation_seconds for p in periods), ZERO),
    )


def _clamp(
    scaled: Decimal, low: Decimal | None, high: Decimal | None
) -> tuple[Decimal, str | None]:
    if low is not None and scaled < low * _SECONDS_PER_HOUR:
        return low * _SECONDS_PER_HOUR, "min_price"
    if high is not None and scaled > high * _SECONDS_PER_HOUR:
        return high * _SECONDS_PER_HOUR, "max_price"
    return scaled, None


def _check_boundaries(
    compiled: _Compiled,
    session: PricingSession,
    index: int,
    period: Period,
    energy: Decimal,
    found: dict[Dimension, _Candidate | None],
    zone: tzinfo | None,
    instants: list[datetime],
) -> None:
    """Refuse a period across which a different element would price one of its dimensions;
    `instants` are the session's time boundaries, ascending."""
    end = session.period_end(index)
    candidates = compiled.by_dimension

    def compare(ctx: _Context, where: str) -> None:
        for dimension, before in found.items():
            options = candidates[dimension]
            after = _first(options, ctx, dimension) if options else None
            if (None if after is None else after[:2]) != (None if before is None else before[:2]):
                was = "no element" if before is None else f"element {before[0]}"
                becomes = "no element" if after is None else f"element {after[0]}"
                raise UnpriceableSession(
                    f"period {index} runs across {where}, where {dimension.value} changes from "
                    f"{was} to {becomes}; the charging periods must be split there"
                )

    first = bisect_right(instants, period.start)
    for instant in instants[first : bisect_left(instants, end, lo=first)]:
        local = instant.astimezone(zone) if zone is not None else None
        ctx = _Context(index, period, local, energy, instant - session.start)
        compare(ctx, local.isoformat() if local is not None else instant.isoformat())
    if compiled.kwh and period.energy_kwh:
        local = period.start.astimezone(zone) if zone is not None else None
        for threshold in sorted(compiled.kwh):
            if energy < threshold < energy + period.energy_kwh:
                ctx = _Context(index, period, local, threshold, period.start - session.start)
                compare(ctx, f"{threshold} kWh charged")
