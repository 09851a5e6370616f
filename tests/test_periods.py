"""From a session's evidence to OCPI charging periods (invoices/periods.py): what is billed comes
from the Eichrecht assessment, and the split between periods always adds up to the signed total."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoices.ocpi import cdr_totals
from invoices.periods import Evidence, derive
from invoices.pricing import UnpriceableSession, price
from ledger.ocpi_tariffs import parse_tariff

BERLIN = "Europe/Berlin"
ENERGY_ONLY = parse_tariff(
    {
        "id": "E",
        "currency": "EUR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "19", "step_size": 1}]}
        ],
    }
)
# Cheaper from 22:00 local; time of day matters.
NIGHT = parse_tariff(
    {
        "id": "N",
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": "0.20", "step_size": 1}],
                "restrictions": {"start_time": "22:00", "end_time": "06:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": "0.40", "step_size": 1}]},
        ],
    }
)
PARKING = parse_tariff(
    {
        "id": "P",
        "currency": "EUR",
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": "0.30", "step_size": 1},
                    {"type": "PARKING_TIME", "price": "6.00", "step_size": 60},
                ]
            }
        ],
    }
)
FIRST_10_KWH = parse_tariff(
    {
        "id": "K",
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": "0.25", "step_size": 1}],
                "restrictions": {"max_kwh": "10"},
            },
            {"price_components": [{"type": "ENERGY", "price": "0.35", "step_size": 1}]},
        ],
    }
)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour, minute, tzinfo=UTC)


def assessment(
    energy_wh: str, begin: datetime, end: datetime, time: str = "wall-clock", **extra: Any
) -> dict[str, Any]:
    return {
        "energy_billable": True,
        "energy_wh": energy_wh,
        "time_billable": time,
        "begin_time": begin.isoformat(),
        "end_time": end.isoformat(),
        "reasons": [],
        **extra,
    }


def test_energy_only_one_period_from_the_signed_reading() -> None:
    evidence = Evidence(
        at(10),
        at(11),
        assessment("12345.6", at(10, 1), at(11, 1)),
        meter_start_wh=Decimal(0),
        meter_stop_wh=Decimal(99999),
    )
    derived = derive(evidence, ENERGY_ONLY, time_zone=BERLIN, calibrated=True)
    (period,) = derived.session.periods
    assert period.energy_kwh == Decimal(
        "12.3456"
    )  # the signed total, never the station's meterStop
    assert derived.session.start == at(10, 1) and derived.session.end == at(11, 1)
    assert period.charging_seconds == 3600 and derived.energy_source == "signed"
    # step_size 1 Wh: 12,345.6 Wh is billed as 12,346 Wh.
    assert cdr_totals(price(ENERGY_ONLY, derived.session))["total_cost"]["excl_vat"] == "3.7038"


def test_time_of_use_split_at_the_boundary_along_the_readings() -> None:
    # 20:30 to 21:30 UTC is 21:30 to 22:30 in Berlin: the night price starts at 21:00 UTC.
    readings = [
        (at(20, 30), Decimal(1000)),
        (at(20, 50), Decimal(2000)),
        (at(21, 10), Decimal(5000)),
        (at(21, 30), Decimal(7000)),
    ]
    evidence = Evidence(
        at(20, 30), at(21, 30), assessment("6000", at(20, 30), at(21, 30)), readings=readings
    )
    derived = derive(evidence, NIGHT, time_zone=BERLIN, calibrated=True)
    starts = [p.start for p in derived.session.periods]
    assert starts == [at(20, 30), at(21)]
    first, second = (p.energy_kwh for p in derived.session.periods)
    assert first == Decimal("2.5") and second == Decimal(
        "3.5"
    )  # 1000 Wh, then half of 3000 Wh before 21:00
    assert first + second == Decimal(6)
    assert any("interpolating" in note for note in derived.notes)
    totals = cdr_totals(price(NIGHT, derived.session))
    assert totals["total_cost"]["excl_vat"] == "1.7"  # 2.5 x 0.40 + 3.5 x 0.20


def test_not_billable_energy_is_not_priced_and_says_why() -> None:
    refused = {
        "energy_billable": False,
        "reasons": ["the end reading's meter status is 'E', not 'G'"],
    }
    with pytest.raises(UnpriceableSession, match="meter status"):
        derive(Evidence(at(10), at(11), refused), ENERGY_ONLY, time_zone=BERLIN, calibrated=True)
    with pytest.raises(UnpriceableSession, match="no Eichrecht assessment"):
        derive(Evidence(at(10), at(11), None), ENERGY_ONLY, time_zone=BERLIN, calibrated=True)


def test_time_status_limits_what_time_can_do() -> None:
    informative = assessment("5000", at(10, 2), at(11, 2), time="no")
    with pytest.raises(UnpriceableSession, match="time of day"):
        derive(Evidence(at(10), at(11), informative), NIGHT, time_zone=BERLIN, calibrated=True)
    derived = derive(
        Evidence(at(10), at(11), informative), PARKING, time_zone=BERLIN, calibrated=True
    )
    assert all(p.charging_seconds == 0 and p.parking_seconds == 0 for p in derived.session.periods)
    assert any("no time is billed" in note for note in derived.notes)
    relative = assessment("5000", at(10, 2), at(10, 47), time="duration")
    timed = derive(
        Evidence(at(10), at(11), relative), ENERGY_ONLY, time_zone=BERLIN, calibrated=True
    )
    assert timed.session.start == at(10) and timed.session.end == at(
        10, 45
    )  # the meter's 45 minutes


def test_parking_after_charging_stops() -> None:
    evidence = Evidence(
        at(10),
        at(12),
        assessment("10000", at(10), at(12)),
        charging=[(at(10), True), (at(11), False)],
    )
    derived = derive(evidence, PARKING, time_zone=BERLIN, calibrated=True)
    charging, parking = derived.session.periods
    assert (charging.energy_kwh, charging.charging_seconds, charging.parking_seconds) == (
        Decimal(10),
        3600,
        0,
    )
    assert (parking.energy_kwh, parking.charging_seconds, parking.parking_seconds) == (
        Decimal(0),
        0,
        3600,
    )
    assert (
        cdr_totals(price(PARKING, derived.session))["total_cost"]["excl_vat"] == "9"
    )  # 3.00 + 6.00


def test_a_kwh_threshold_cuts_a_period() -> None:
    evidence = Evidence(at(10), at(12), assessment("20000", at(10), at(12)))
    derived = derive(evidence, FIRST_10_KWH, time_zone=BERLIN, calibrated=True)
    assert [p.energy_kwh for p in derived.session.periods] == [Decimal(10), Decimal(10)]
    assert derived.session.periods[1].start == at(11)
    assert cdr_totals(price(FIRST_10_KWH, derived.session))["total_cost"]["excl_vat"] == "6"


def test_a_garage_without_calibrated_meters_prices_the_unsigned_readings_and_says_so() -> None:
    evidence = Evidence(
        at(10), at(11), None, meter_start_wh=Decimal(1000), meter_stop_wh=Decimal(3500)
    )
    derived = derive(evidence, ENERGY_ONLY, time_zone=BERLIN, calibrated=False)
    assert derived.energy_source == "unsigned" and derived.session.periods[0].energy_kwh == Decimal(
        "2.5"
    )
    assert any("not calibrated" in note for note in derived.notes)
    with pytest.raises(UnpriceableSession, match="backwards"):
        derive(
            Evidence(at(10), at(11), None, meter_start_wh=Decimal(5), meter_stop_wh=Decimal(1)),
            ENERGY_ONLY,
            time_zone=BERLIN,
            calibrated=False,
        )


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=200_000),
    steps=st.lists(st.integers(min_value=0, max_value=20_000), min_size=0, max_size=12),
    minutes=st.integers(min_value=2, max_value=600),
)
def test_periods_always_add_up_to_the_signed_total(
    total: int, steps: list[int], minutes: int
) -> None:
    start = at(18)
    end = start + timedelta(minutes=minutes)
    readings = []
    register = Decimal(50_000)
    for index, step in enumerate(steps, start=1):
        register += step
        readings.append((start + (end - start) * index / (len(steps) + 1), register))
    evidence = Evidence(
        start, end, assessment(str(Decimal(total) / 10), start, end), readings=readings
    )
    for tariff in (NIGHT, FIRST_10_KWH, ENERGY_ONLY):
        derived = derive(evidence, tariff, time_zone=BERLIN, calibrated=True)
        assert sum(p.energy_kwh for p in derived.session.periods) == Decimal(total) / 10 / 1000
        assert all(p.energy_kwh >= 0 for p in derived.session.periods)
        price(tariff, derived.session)  # the engine accepts every cut
