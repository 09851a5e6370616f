"""Is a charging session billable under Eichrecht, from the signed records that came with it?

Energy is billable only from a begin reading (TX=B) and an end reading (TX E/L/R/A/P) of the same
meter (same serial and key), both in records whose signature holds against a key the operator
registered, as two records or one record holding both. Billable energy is end minus begin in the
meter's own unit and resolution, never rounded. Every reason against it is stated. Time is
billable only where the readings allow it: status `S` for wall-clock time, `R` for durations only;
never with error flag `t`, status `U`/`I`, or an end by power failure (`TX=P`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, Inexact, localcontext
from typing import Any

IDENTIFICATION_ERRORS = frozenset({"MISMATCH", "INVALID", "OUTDATED", "UNKNOWN"})
END_TYPES = frozenset("ELRAP")
UNIT_TO_WH = {"kWh": Decimal(1000), "Wh": Decimal(1)}


@dataclass(frozen=True)
class Assessment:
    energy_billable: bool
    energy: Decimal | None  # end - begin, in `unit`
    unit: str | None
    energy_wh: Decimal | None  # the same, exactly, in Wh
    time_billable: str  # "wall-clock", "duration" or "no"
    begin_record: str | None
    end_record: str | None
    begin_time: str | None
    end_time: str | None
    meter: str | None
    reasons: tuple[str, ...]  # why energy is not billable (empty when it is)
    time_reasons: tuple[str, ...]  # why time is not (or only as durations)

    def to_json(self) -> dict[str, Any]:
        return {
            "energy_billable": self.energy_billable,
            "energy": None if self.energy is None else str(self.energy),
            "unit": self.unit,
            "energy_wh": None if self.energy_wh is None else str(self.energy_wh),
            "time_billable": self.time_billable,
            "begin_record": self.begin_record,
            "end_record": self.end_record,
            "begin_time": self.begin_time,
            "end_time": self.end_time,
            "meter": self.meter,
            "reasons": list(self.reasons),
            "time_reasons": list(self.time_reasons),
        }


@dataclass(frozen=True)
class _Reading:
    record: dict[str, Any]
    index: int
    data: dict[str, Any]

    @property
    def type(self) -> str | None:
        value = self.data.get("type")
        return value if isinstance(value, str) else None


def assess(records: Sequence[dict[str, Any]]) -> Assessment:
    """`records`: the session's record verdicts (`Verdict.to_json()`), in the order they arrived."""
    reasons: list[str] = []
    readings = [
        _Reading(record, index, data)
        for record in records
        for index, data in enumerate(record.get("readings") or [])
    ]
    begins = [r for r in readings if r.type == "B"]
    ends = [r for r in readings if r.type is not None and r.type in END_TYPES]
    if not records:
        return _not_billable(("no signed meter data for this session",))
    if not begins:
        reasons.append("no signed begin reading (TX=B)")
    if not ends:
        reasons.append("no signed end reading (TX=E/L/R/A/P)")
    if not begins or not ends:
        return _not_billable(tuple(reasons))
    begin, end = begins[0], ends[-1]
    if len({_value_key(r) for r in begins}) > 1:
        reasons.append("more than one different begin reading")
    if len({_value_key(r) for r in ends}) > 1:
        reasons.append("more than one different end reading")
    for which, reading in (("begin", begin), ("end", end)):
        record = reading.record
        signature = record.get("signature")
        if signature == "claimed-key-only":
            reasons.append(
                f"the {which} record holds only against the key the station sent, not a registered one"
            )
        elif signature != "verified":
            reasons.append(f"the {which} record's signature is {signature}: {record.get('reason')}")
        if record.get("format") == "ALFEN":
            # Alfen's 4 status bytes have no public description: we cannot tell a fault apart.
            reasons.append(f"the {which} record is Alfen, whose meter status we do not interpret yet")
        elif reading.data.get("status") != "G":
            reasons.append(
                f"the {which} reading's meter status is {reading.data.get('status')!r}, not 'G'"
            )
        if "E" in (reading.data.get("error_flags") or ""):
            reasons.append(f"the {which} reading carries the energy error flag E")
        level = (record.get("fields") or {}).get("IL")
        if level in IDENTIFICATION_ERRORS:
            reasons.append(f"the {which} record's identification level is the error state {level}")
    meter_begin, meter_end = _meter(begin.record), _meter(end.record)
    if meter_begin != meter_end:
        reasons.append(f"begin and end come from different meters ({meter_begin} and {meter_end})")
    key_begin = begin.record.get("key", {}) or {}
    key_end = end.record.get("key", {}) or {}
    if key_begin.get("fingerprint") != key_end.get("fingerprint"):
        reasons.append("begin and end are signed with different keys")
    if begin.data.get("unit") != end.data.get("unit") or begin.data.get("obis") != end.data.get(
        "obis"
    ):
        reasons.append("begin and end are readings of different registers or units")
    if _between(readings, begin, end, "X"):
        reasons.append("an exception reading (TX=X) lies between begin and end")
    gap = _pagination_gap(records, begin.record, end.record)
    if gap:
        reasons.append(gap)
    energy = unit = energy_wh = None
    begin_value, end_value = _decimal(begin.data.get("value")), _decimal(end.data.get("value"))
    if begin_value is None or end_value is None:
        reasons.append("a begin or end value is not a number")
    else:
        unit = begin.data.get("unit")
        try:
            with localcontext() as exact:
                # Exact: never rounded at the default 28 digits, and huge values refused.
                exact.prec = 100
                exact.traps[Inexact] = True
                energy = end_value - begin_value
                energy_wh = energy * UNIT_TO_WH[unit] if unit in UNIT_TO_WH else None
        except ArithmeticError:
            energy = energy_wh = None
            reasons.append("a begin or end value is out of range")
        else:
            if energy < 0:
                reasons.append("the end reading is below the begin reading")
            if unit not in UNIT_TO_WH:
                reasons.append(f"the unit {unit!r} is no energy unit")
    time_billable, time_reasons = _time(begin, end)
    billable = not reasons
    return Assessment(
        energy_billable=billable,
        energy=energy,
        unit=unit,
        energy_wh=energy_wh,
        time_billable=time_billable if billable else "no",
        begin_record=begin.record.get("record_id"),
        end_record=end.record.get("record_id"),
        begin_time=begin.data.get("time"),
        end_time=end.data.get("time"),
        meter=meter_begin,
        reasons=tuple(reasons),
        time_reasons=tuple(time_reasons) if billable else ("energy is not billable",),
    )


def _not_billable(reasons: tuple[str, ...]) -> Assessment:
    return Assessment(
        False,
        None,
        None,
        None,
        "no",
        None,
        None,
        None,
        None,
        None,
        reasons,
        ("energy is not billable",),
    )


def _value_key(reading: _Reading) -> tuple[Any, ...]:
    return (
        reading.data.get("value"),
        reading.data.get("unit"),
        reading.data.get("time"),
        _meter(reading.record),
    )


def _meter(record: dict[str, Any]) -> str | None:
    fields = record.get("fields") or {}
    if record.get("format") == "ALFEN":
        return f"ALFEN {fields.get('meter_id')}"
    serial = fields.get("MS") or fields.get("GS")
    vendor = fields.get("MV") or fields.get("GI") or ""
    return f"{vendor} {serial}".strip() if serial else None


def _decimal(text: Any) -> Decimal | None:
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text.strip())
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _between(readings: Sequence[_Reading], begin: _Reading, end: _Reading, kind: str) -> bool:
    """A reading of `kind` after begin and up to end, in arrival and in-record order."""
    order = {(id(r.record), r.index): position for position, r in enumerate(readings)}
    start, stop = order[(id(begin.record), begin.index)], order[(id(end.record), end.index)]
    return any(r.type == kind and start < order[(id(r.record), r.index)] <= stop for r in readings)


def _pagination_gap(
    records: Sequence[dict[str, Any]], begin: dict[str, Any], end: dict[str, Any]
) -> str | None:
    """Every record of the meter between begin and end must be here: PG counts up by one."""
    if begin.get("format") == "ALFEN":
        first, last = (
            (begin.get("fields") or {}).get("paging"),
            (end.get("fields") or {}).get("paging"),
        )
        pages = {
            (r.get("fields") or {}).get("paging") for r in records if r.get("format") == "ALFEN"
        }
    else:
        first, last = _page(begin), _page(end)
        pages = {_page(r) for r in records if _meter(r) == _meter(begin)}
    if not isinstance(first, int) or not isinstance(last, int):
        return None  # no counter to check (2.0.1 stations sending T<uuid>): said in the record's fields
    if last < first:
        return f"the end record's page {last} comes before the begin record's page {first}"
    missing = [page for page in range(first, last + 1) if page not in pages]
    if missing:
        shown = ", ".join(str(page) for page in missing[:5])
        return f"signed records missing between begin and end (pagination gap at {shown})"
    return None


def _page(record: dict[str, Any]) -> int | None:
    value = (record.get("fields") or {}).get("PG")
    if isinstance(value, str) and value[:1] == "T" and value[1:].isdigit() and len(value) < 20:
        return int(value[1:])
    return None


def _time(begin: _Reading, end: _Reading) -> tuple[str, list[str]]:
    reasons: list[str] = []
    statuses = set()
    for which, reading in (("begin", begin), ("end", end)):
        status = reading.data.get("time_status")
        statuses.add(status)
        if "t" in (reading.data.get("error_flags") or ""):
            reasons.append(f"the {which} reading carries the time error flag t")
        if status in ("U", "I"):
            reasons.append(f"the {which} reading's time status is {status} (not synchronised)")
        elif status is None:
            reasons.append(f"the {which} reading has no time status")
        if reading.data.get("time") is None:
            reasons.append(f"the {which} reading's time is unreadable")
    if end.type == "P":
        reasons.append("the session ended by power failure (TX=P)")
    if reasons:
        return "no", reasons
    if statuses == {"S"}:
        return "wall-clock", []
    return "duration", [
        "only relative time (status R): durations are billable, clock times are not"
    ]
