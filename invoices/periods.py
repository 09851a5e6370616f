"""From a session's evidence to OCPI charging periods the pricing engine can price.

What is billed comes from the Eichrecht assessment: the energy between the signed begin and end
readings, never the station's own figures, and time only as far as the meter's time status
allows (`wall-clock`: time of day and durations; `duration`: durations only; `no`: no time at
all). Sites without calibrated meters (a private garage) are priced from the unsigned readings,
and say so.

Periods are cut wherever the tariff may change its mind (times of day, dates, weekdays, session
durations, kWh thresholds) and wherever the car stops or resumes charging. The signed total is
split across the cuts along the unsigned register readings in between, interpolated linearly
(said in the notes); the split is rounded to the meter's resolution and the last period takes
the remainder, so the periods always add up to the signed total exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from invoices.pricing import (
    Period,
    PricingSession,
    UnpriceableSession,
    energy_thresholds,
    time_boundaries,
)
from ledger.ocpi_tariffs import Tariff

ZERO = Decimal(0)
KWH = Decimal(1000)
SPLIT_RESOLUTION = Decimal("0.000001")  # kWh (1 mWh): where an interpolated split is rounded


@dataclass(frozen=True)
class Evidence:
    """What the ledger holds of one ended session, in the station's clock (UTC)."""

    started_at: datetime
    ended_at: datetime
    assessment: dict[str, Any] | None  # the latest ChargingSession.Assessed
    readings: Sequence[
        tuple[datetime, Decimal]
    ] = ()  # unsigned register readings, Wh, in time order
    charging: Sequence[
        tuple[datetime, bool]
    ] = ()  # when charging started (True) or stopped (False)
    meter_start_wh: Decimal | None = None  # unsigned (OCPP 1.6 StartTransaction)
    meter_stop_wh: Decimal | None = None


@dataclass(frozen=True)
class Derived:
    session: PricingSession
    energy_source: str  # "signed" or "unsigned"
    time_billable: str  # "wall-clock", "duration" or "no"
    notes: tuple[str, ...] = field(default=())


def derive(evidence: Evidence, tariff: Tariff, *, time_zone: str, calibrated: bool) -> Derived:
    """The pricing session for `evidence` under `tariff`; `UnpriceableSession` with the reason
    when the evidence does not support a price (never a price of 0)."""
    notes: list[str] = []
    if calibrated:
        total_kwh, start, end, time_billable = _signed(evidence, tariff, notes)
        source = "signed"
    else:
        total_kwh, start, end = _unsigned(evidence, notes)
        time_billable, source = "wall-clock", "unsigned"
        notes.append("the meter values are not calibrated (a site without calibrated meters)")
    if end <= start:
        raise UnpriceableSession("the session has no duration")
    charging = _charging_intervals(evidence, start, end, notes)
    cuts = {start, end}
    cuts.update(t for t in time_boundaries(tariff, start, start, end, time_zone))
    cuts.update(t for t, _ in charging if start < t < end)
    curve = _Curve(evidence.readings, start, end, total_kwh, charging, notes)
    for threshold in energy_thresholds(tariff):
        if ZERO < threshold < total_kwh:
            cuts.add(curve.time_at(threshold))
    points = sorted(cuts)
    energies = curve.split(points)
    periods = []
    for (begin, finish), energy in zip(zip(points, points[1:]), energies):
        seconds = Decimal((finish - begin) // timedelta(microseconds=1)) / Decimal(1_000_000)
        is_charging = _state_at(charging, begin)
        periods.append(
            Period(
                start=begin,
                energy_kwh=energy,
                charging_seconds=seconds if time_billable != "no" and is_charging else ZERO,
                parking_seconds=seconds if time_billable != "no" and not is_charging else ZERO,
            )
        )
    if time_billable == "no":
        notes.append("no time is billed: the meter's time status does not allow it")
    return Derived(
        PricingSession(start=start, end=end, time_zone=time_zone, periods=tuple(periods)),
        source,
        time_billable,
        tuple(notes),
    )


def _signed(
    evidence: Evidence, tariff: Tariff, notes: list[str]
) -> tuple[Decimal, datetime, datetime, str]:
    assessment = evidence.assessment
    if assessment is None:
        raise UnpriceableSession("the session has no Eichrecht assessment yet")
    if not assessment.get("energy_billable"):
        reasons = "; ".join(assessment.get("reasons") or ()) or "energy not billable"
        raise UnpriceableSession(f"energy is not billable: {reasons}")
    total_kwh = Decimal(str(assessment["energy_wh"])) / KWH
    time_billable = str(assessment.get("time_billable") or "no")
    if time_billable == "wall-clock":
        start, end = _time(assessment["begin_time"]), _time(assessment["end_time"])
        notes.append("times from the meter's signed readings")
        return total_kwh, start, end, time_billable
    if _depends_on_clock(tariff):
        raise UnpriceableSession(
            "the tariff depends on the time of day or the date, and the meter's time status does "
            "not allow wall-clock time"
        )
    start = evidence.started_at
    if time_billable == "duration":
        # Relative time: the meter's own duration, placed at the station's start.
        length = _time(assessment["end_time"]) - _time(assessment["begin_time"])
        notes.append(
            "duration from the meter's signed readings, placed at the station's start time"
        )
        return total_kwh, start, start + length, time_billable
    notes.append("times from the station's clock (not billed)")
    return total_kwh, start, evidence.ended_at, time_billable


def _unsigned(evidence: Evidence, notes: list[str]) -> tuple[Decimal, datetime, datetime]:
    if evidence.meter_start_wh is not None and evidence.meter_stop_wh is not None:
        wh = evidence.meter_stop_wh - evidence.meter_start_wh
    elif len(evidence.readings) >= 2:
        wh = evidence.readings[-1][1] - evidence.readings[0][1]
        notes.append("energy from the first and last register readings")
    else:
        raise UnpriceableSession("no meter readings to price from")
    if wh < 0:
        raise UnpriceableSession("the meter readings go backwards")
    return wh / KWH, evidence.started_at, evidence.ended_at


def _depends_on_clock(tariff: Tariff) -> bool:
    for element in tariff.elements:
        r = element.restrictions
        if r is not None and any(
            value is not None and value != ()
            for value in (r.start_time, r.end_time, r.start_date, r.end_date, r.day_of_week)
        ):
            return True
    return False


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _charging_intervals(
    evidence: Evidence, start: datetime, end: datetime, notes: list[str]
) -> list[tuple[datetime, bool]]:
    """State changes within the session, starting with the state at `start`."""
    changes = sorted(evidence.charging)
    if not changes:
        notes.append("no charging state reported: all time counted as charging")
        return [(start, True)]
    state = True
    for moment, charging in changes:
        if moment <= start:
            state = charging
    result = [(start, state)]
    for moment, charging in changes:
        if start < moment < end and charging != result[-1][1]:
            result.append((moment, charging))
    return result


def _state_at(charging: Sequence[tuple[datetime, bool]], moment: datetime) -> bool:
    state = charging[0][1]
    for change, value in charging:
        if change <= moment:
            state = value
    return state


class _Curve:
    """Cumulative session energy over time: the unsigned readings, scaled to the signed total;
    without readings, linear over the charging time."""

    def __init__(
        self,
        readings: Sequence[tuple[datetime, Decimal]],
        start: datetime,
        end: datetime,
        total_kwh: Decimal,
        charging: Sequence[tuple[datetime, bool]],
        notes: list[str],
    ) -> None:
        self.total = total_kwh
        inside = [(t, wh) for t, wh in readings if start < t < end]
        points: list[tuple[datetime, Decimal]]
        if len(inside) >= 1 and readings:
            base = readings[0][1] if readings[0][0] <= start else inside[0][1]
            last = readings[-1][1] if readings[-1][0] >= end else inside[-1][1]
            span = last - base
            points = [(start, ZERO)]
            if span > 0:
                points += [(t, (wh - base) / span * total_kwh) for t, wh in inside]
                notes.append("energy split between periods by interpolating the unsigned readings")
            points.append((end, total_kwh))
        else:
            points = self._by_charging_time(start, end, total_kwh, charging)
            notes.append("no readings in between: energy spread evenly over the charging time")
        # Monotonic, as a register is: a reading below an earlier one counts as the earlier.
        clean: list[tuple[datetime, Decimal]] = []
        for moment, value in points:
            value = min(max(value, clean[-1][1] if clean else ZERO), total_kwh)
            if clean and moment == clean[-1][0]:
                continue
            clean.append((moment, value))
        self.points = clean

    @staticmethod
    def _by_charging_time(
        start: datetime, end: datetime, total: Decimal, charging: Sequence[tuple[datetime, bool]]
    ) -> list[tuple[datetime, Decimal]]:
        edges = [t for t, _ in charging if start < t < end]
        moments = [start, *edges, end]
        spans = [(a, b, _state_at(charging, a)) for a, b in zip(moments, moments[1:])]
        charging_seconds = sum(((b - a).total_seconds() for a, b, on in spans if on), 0.0)
        points = [(start, ZERO)]
        done = Decimal(0)
        for a, b, on in spans:
            if on and charging_seconds > 0:
                done += (
                    total
                    * Decimal((b - a) // timedelta(microseconds=1))
                    / Decimal(int(round(charging_seconds * 1_000_000)))
                )
            points.append((b, min(done, total)))
        points[-1] = (end, total)
        return points

    def at(self, moment: datetime) -> Decimal:
        times = [t for t, _ in self.points]
        index = bisect_right(times, moment)
        if index == 0:
            return ZERO
        if index >= len(self.points):
            return self.total
        (t0, e0), (t1, e1) = self.points[index - 1], self.points[index]
        fraction = Decimal((moment - t0) // timedelta(microseconds=1)) / Decimal(
            (t1 - t0) // timedelta(microseconds=1)
        )
        return e0 + (e1 - e0) * fraction

    def time_at(self, energy: Decimal) -> datetime:
        """The first moment the session's energy reaches `energy` (kWh)."""
        for (t0, e0), (t1, e1) in zip(self.points, self.points[1:]):
            if e0 <= energy <= e1 and e1 > e0:
                micros = (t1 - t0) // timedelta(microseconds=1)
                offset = int((energy - e0) / (e1 - e0) * micros)
                return t0 + timedelta(microseconds=offset)
        return self.points[-1][0]

    def split(self, cuts: Sequence[datetime]) -> list[Decimal]:
        """The energy of each span between consecutive cuts, adding up to the total exactly."""
        shares = []
        done = ZERO
        for index, moment in enumerate(cuts[1:], start=1):
            if index == len(cuts) - 1:
                shares.append(self.total - done)
                break
            reached = self.at(moment).quantize(SPLIT_RESOLUTION, rounding=ROUND_HALF_EVEN)
            reached = min(max(reached, done), self.total)
            shares.append(reached - done)
            done = reached
        return shares
