#!/usr/bin/env python
"""Pricing benchmark: sessions priced per second by `invoices.pricing.price`, on a simple energy
tariff beside a bare-Decimal hand computation of the same price, and on a time-of-use tariff
with parking over 20 charging periods.

    .venv/bin/python benchmarks/pricing.py [--sessions N] [--tou-sessions M] [--rounds R]
                                           [--clock cpu|wall] [--profile simple|tou]

There is no Python pricing library to hold ours against, so the baseline for the simple case is
the least work that gives the same number: `price x kWh + flat`, VAT added per component, with
bare `Decimal` (no tariff lookup, no restrictions, no step_size, no exactness bookkeeping, no
result objects). The ratio ours / bare says what the engine's generality costs on the case that
needs none of it.

What it does, in one run:

1. Workloads. (a) simple: a tariff of one element, FLAT 0.50 EUR and ENERGY 0.39 EUR/kWh, both
   19 % VAT, step 1 Wh; N sessions (default 20,000) of one period each, every one with its own
   energy (0.001 to 80 kWh) and start. (b) time-of-use + parking: FLAT, ENERGY 0.45 on weekdays
   07:00-22:00 and 0.29 otherwise, TIME 1.20 EUR/h between 08:00 and 20:00 after the first
   hour (min_duration), PARKING_TIME 6 EUR/h (step 300 s) between 07:00 and 22:00, free at
   night; M sessions (default 2,000) of 20 half-hour periods in Europe/Berlin - 14 charging,
   6 parked - starting at half hours spread over two weeks (DST change included), so no
   restriction boundary falls inside a period and the engine's strict period check runs and
   passes on every session.
2. Every result is checked before timing starts: the engine's total for every simple session
   must equal the bare computation exactly (a mismatch aborts the run), and every time-of-use
   session must price (none unpriceable).
3. R rounds (default 5); in each, ours and bare on the simple workload in an order that
   alternates every round, then ours on the time-of-use workload; a short unmeasured warm-up in
   the first round. Reported: median sessions/s of each, the median over the rounds of the
   per-round ratio ours / bare, and the goal: >= 5,000 simple sessions/s on one core.

--clock cpu (default) times with the process's CPU time, which a busy shared machine disturbs
far less than wall time; the loops are single-threaded. --clock wall uses time.perf_counter.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from invoices.pricing import Period, PricingSession, price  # found through the path set above
from ledger.ocpi_tariffs import Tariff, parse_tariff

UTC = timezone.utc
WARM_UP = 200
GOAL = 5_000
SIMPLE = {
    "id": "SIMPLE",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": "0.50", "vat": "19", "step_size": 1},
                {"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1},
            ]
        }
    ],
}
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
TIME_OF_USE = {
    "id": "TOU",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": "0.35", "vat": "19", "step_size": 1}]},
        {
            "price_components": [{"type": "ENERGY", "price": "0.45", "vat": "19", "step_size": 1}],
            "restrictions": {"start_time": "07:00", "end_time": "22:00", "day_of_week": WEEKDAYS},
        },
        {"price_components": [{"type": "ENERGY", "price": "0.29", "vat": "19", "step_size": 1}]},
        {
            "price_components": [{"type": "TIME", "price": "1.20", "vat": "19", "step_size": 60}],
            "restrictions": {"start_time": "08:00", "end_time": "20:00", "min_duration": 3600},
        },
        {
            "price_components": [
                {"type": "PARKING_TIME", "price": "6.00", "vat": "19", "step_size": 300}
            ],
            "restrictions": {"start_time": "07:00", "end_time": "22:00"},
        },
    ],
}
FLAT = Decimal("0.50")
PER_KWH = Decimal("0.39")
VAT_FACTOR = Decimal("1.19")


def simple_sessions(count: int) -> list[PricingSession]:
    sessions = []
    base = datetime(2024, 6, 3, 6, tzinfo=UTC)
    for index in range(count):
        start = base + timedelta(minutes=7 * index)
        energy = Decimal(1 + (index * 7919) % 80_000) / 1000  # 0.001 .. 80.000 kWh
        period = Period(start, energy_kwh=energy, charging_seconds=Decimal(3600))
        sessions.append(
            PricingSession(start, start + timedelta(hours=1), "Europe/Berlin", (period,))
        )
    return sessions


def tou_sessions(count: int) -> list[PricingSession]:
    sessions = []
    base = datetime(2024, 3, 24, 23, tzinfo=UTC)  # Monday 00:00 CET; DST starts on the 31st
    half_hour = timedelta(minutes=30)
    for index in range(count):
        start = base + half_hour * ((index * 37) % (14 * 48))
        periods = []
        for slot in range(20):
            at = start + half_hour * slot
            if slot < 14:
                energy = Decimal(2000 + (index * 31 + slot * 97) % 9000) / 1000
                periods.append(
                    Period(
                        at,
                        energy_kwh=energy,
                        charging_seconds=Decimal(1800),
                        max_power=Decimal(22),
                    )
                )
            else:
                periods.append(Period(at, parking_seconds=Decimal(1800)))
        sessions.append(
            PricingSession(start, start + half_hour * 20, "Europe/Berlin", tuple(periods))
        )
    return sessions


# --- what is timed: each returns how many sessions it priced ---


def run_ours(tariff: Tariff, batch: list[PricingSession]) -> int:
    return sum(1 for session in batch if price(tariff, session).total_cost.excl_vat >= 0)


def bare(session: PricingSession) -> tuple[Decimal, Decimal]:
    energy = session.periods[0].energy_kwh
    excl = FLAT + PER_KWH * energy
    return excl, FLAT * VAT_FACTOR + PER_KWH * energy * VAT_FACTOR


def run_bare(_: Tariff, batch: list[PricingSession]) -> int:
    return sum(1 for session in batch if bare(session)[0] >= 0)


def check(
    simple: Tariff, sessions: list[PricingSession], tou: Tariff, tou_batch: list[PricingSession]
) -> None:
    for session in sessions:
        ours = price(simple, session).total_cost
        if (ours.excl_vat, ours.incl_vat) != bare(session) or not ours.exact:
            raise SystemExit(f"mismatch at {session.start}: ours {ours}, bare {bare(session)}")
    for session in tou_batch:
        price(tou, session)  # raises UnpriceableSession if a period were not split right


def measure(
    run: Callable[[Tariff, list[PricingSession]], int],
    tariff: Tariff,
    batch: list[PricingSession],
    clock: Callable[[], float],
) -> float:
    gc.collect()
    started = clock()
    priced = run(tariff, batch)
    elapsed = clock() - started
    if priced != len(batch):
        raise SystemExit(f"{run.__name__}: {len(batch) - priced} of {len(batch)} not priced")
    return len(batch) / elapsed


def bench(args: argparse.Namespace) -> dict[str, list[float]]:
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    simple, tou = parse_tariff(SIMPLE), parse_tariff(TIME_OF_USE)
    started = time.perf_counter()
    simple_batch, tou_batch = simple_sessions(args.sessions), tou_sessions(args.tou_sessions)
    check(simple, simple_batch, tou, tou_batch)
    print(
        f"  {args.sessions:,} simple and {args.tou_sessions:,} time-of-use sessions built and "
        f"checked ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    rates: dict[str, list[float]] = {"ours": [], "bare": [], "tou": []}
    for round_ in range(args.rounds):
        started = time.perf_counter()
        order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
        for name in order:
            run = run_ours if name == "ours" else run_bare
            if round_ == 0:
                run(simple, simple_batch[:WARM_UP])
            rates[name].append(measure(run, simple, simple_batch, clock))
        if round_ == 0:
            run_ours(tou, tou_batch[: WARM_UP // 20])
        rates["tou"].append(measure(run_ours, tou, tou_batch, clock))
        print(
            f"  round {round_ + 1}/{args.rounds} ({' -> '.join(order)} -> tou): "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    return rates


def report(args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    ours, bare_rate = statistics.median(rates["ours"]), statistics.median(rates["bare"])
    ratio = statistics.median(o / b for o, b in zip(rates["ours"], rates["bare"]))
    tou = statistics.median(rates["tou"])
    print()
    print(f"sessions/s ({args.clock} time), median of {args.rounds} rounds")
    head = f"{'workload':<40}{'ours':>12}{'bare':>12}{'ours/bare':>12}"
    print(head)
    print("-" * len(head))
    print(
        f"{'(a) simple: FLAT + ENERGY, 1 period':<40}{ours:>12,.0f}{bare_rate:>12,.0f}{ratio:>12.3f}"
    )
    print(f"{'(b) time-of-use + parking, 20 periods':<40}{tou:>12,.0f}{'n/a':>12}{'n/a':>12}")
    print("-" * len(head))
    print("bare: price x kWh + flat with Decimal, the same numbers; no library exists for (b)")
    print()
    print("GOALS")
    verdict = "met" if ours >= GOAL else "MISSED"
    print(f"  >= {GOAL:,} simple sessions/s on one core: {ours:,.0f}, {verdict}")


def profile(which: str, count: int) -> None:
    tariff = parse_tariff(SIMPLE if which == "simple" else TIME_OF_USE)
    batch = simple_sessions(count) if which == "simple" else tou_sessions(count)
    run_ours(tariff, batch[:WARM_UP])
    profiler = cProfile.Profile()
    profiler.enable()
    run_ours(tariff, batch)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    print(f"\ncProfile of price on the {which} workload, {count:,} sessions (overhead included)")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sessions", type=int, default=20_000, help="simple sessions (default 20,000)"
    )
    parser.add_argument(
        "--tou-sessions", type=int, default=2_000, help="time-of-use sessions (default 2,000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="what to time (default cpu)"
    )
    parser.add_argument("--profile", choices=("simple", "tou"), help="also profile one workload")
    args: Any = parser.parse_args(argv)
    if args.sessions < WARM_UP or args.tou_sessions < WARM_UP // 20 or args.rounds < 1:
        parser.error(f"--sessions must be >= {WARM_UP}, --tou-sessions >= 10, --rounds >= 1")
    print(
        f"Ladebuch pricing benchmark: invoices.pricing.price vs bare Decimal; "
        f"{args.sessions:,} simple + {args.tou_sessions:,} time-of-use sessions, {args.rounds} "
        f"rounds; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    started = time.perf_counter()
    report(args, bench(args))
    if args.profile:
        profile(args.profile, args.sessions if args.profile == "simple" else args.tou_sessions)
    print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
