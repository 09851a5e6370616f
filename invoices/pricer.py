"""Prices every ended session from its evidence, and re-prices when a tariff is corrected.

The `Pricer` follows two logs, each with its own position (in `projection_tracking`):

- the ledger's `ChargingSession.Assessed` events: a session is assessed when it ends and again
  whenever its Eichrecht verdict changes (a signed record arriving late), so each one is priced
  once when it ends and its verdict is known, and re-priced when the evidence changes;
- the registry's `Tariff.Published` events that correct a version: every session priced with
  the corrected version is re-priced with the correction (found in the `pricing` read model).

Pricing a session (`price_outcome`) reads its events (`gather`), asks the registry who the
customer was at the start (the id tag's assignment), which tariff applied (customer, group,
charge point, site) and which version was valid at the start, derives the OCPI charging periods
(`invoices.periods`) and prices them (`invoices.pricing`). A session that cannot be priced gets
an `unpriced` outcome with the reason, never a price of 0. Outcomes are recorded on the
session's `SessionPrice` through the group committer (`RecordPrice`); recording the same outcome
again adds nothing, so a page applied twice, by this process after a crash or by another server
process, changes nothing: the positions are at-least-once, the records exactly-once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from invoices.ocpi import cdr_totals
from invoices.periods import Derived, Evidence, derive
from invoices.pricing import UnpriceableSession, price
from ledger.application import Ledger, Registry
from ledger.committer import GroupCommitter, UnitOfWork
from ledger.errors import InvalidValue
from ledger.frames import INBOUND
from ledger.ocpi_tariffs import PricingError, TariffError, parse_tariff
from ledger.priced import PRICED, UNPRICED, SessionPrice
from ledger.registry import ChargePoint, IdTag
from ledger.sessions import ChargingSession
from ledger.tariffs import DEFAULT_TIME_ZONE, Site, Tariff
from ledger.values import parse_time
from projections.view import View, topics

log = logging.getLogger(__name__)

SESSIONS = "pricer"  # position in the ledger's log
TARIFFS = "pricer-tariffs"  # position in the registry's log
SESSION_TOPICS = topics(ChargingSession, "Assessed")
TARIFF_TOPICS = topics(Tariff, "Published")
SYSTEM = "pricer"

ENERGY_REGISTER = "Energy.Active.Import.Register"
# OCPP 1.6 connector status and 2.x chargingState: energy flows only while "Charging"; any other
# state of a session that has not ended is OCPI parking time (connected, not charging).
CHARGING = "Charging"
_STATES_16 = {"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Available", "Preparing"}


# -- the session's evidence -------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the session's events say about it, for pricing and for the price record."""

    session_id: str
    charge_point: str
    transaction_id: str
    family: str
    evse_id: int | None
    id_token: str | None
    ended: bool
    evidence: Evidence | None  # None while the session has not both started and ended


def gather(ledger: Ledger, session_id: UUID) -> Facts:
    events = ledger.session_events(session_id)
    opened = events[0]
    started = next((e for e in events if isinstance(e, ChargingSession.Started)), None)
    ended = next((e for e in events if isinstance(e, ChargingSession.Ended)), None)
    assessment = None
    readings: list[tuple[datetime, Decimal]] = []
    states: list[tuple[datetime, bool]] = []
    id_token = None
    for event in events:
        if isinstance(event, ChargingSession.Assessed):
            assessment = event.assessment
        if isinstance(event, ChargingSession.Updated) and event.after_end:
            continue  # kept as evidence, changes nothing billable
        if id_token is None and getattr(event, "id_token", None):
            id_token = str(event.id_token)
        readings.extend(register_readings(getattr(event, "meter_values", None) or []))
        state = getattr(event, "charging_state", None)
        when = getattr(event, "station_time", None)
        if isinstance(state, str) and when is not None:
            states.append((when, state == CHARGING))
    evse_id = started.evse_id if started is not None and started.evse_id is not None else None
    connector = started.connector_id if started is not None else None
    evidence = None
    if started is not None and ended is not None:
        if opened.family == "ocpp1.6" and connector is not None:
            states.extend(
                _status_notifications(
                    ledger, opened.charge_point, connector,
                    int(started.source_frame["seq"]), int(ended.source_frame["seq"]),
                )
            )
        readings.sort(key=lambda r: r[0])
        evidence = Evidence(
            started_at=started.station_time,
            ended_at=ended.station_time,
            assessment=assessment,
            readings=tuple(readings),
            charging=tuple(sorted(states, key=lambda s: s[0])),
            meter_start_wh=started.meter_start,
            meter_stop_wh=ended.meter_stop,
        )
    return Facts(
        session_id=str(session_id),
        charge_point=opened.charge_point,
        transaction_id=opened.transaction_id,
        family=opened.family,
        evse_id=evse_id if evse_id is not None else connector,
        id_token=id_token,
        ended=ended is not None,
        evidence=evidence,
    )


def register_readings(meter_values: Iterable[Any]) -> list[tuple[datetime, Decimal]]:
    """The unsigned readings of the energy import register (total of all phases, at the outlet),
    in Wh, from OCPP 1.6 or 2.x meter values as the station sent them."""
    found = []
    for meter_value in meter_values:
        if not isinstance(meter_value, dict) or not isinstance(meter_value.get("timestamp"), str):
            continue
        try:
            when = parse_time(meter_value["timestamp"])
        except InvalidValue:
            continue
        for sampled in meter_value.get("sampledValue") or ():
            wh = _register_wh(sampled)
            if wh is not None:
                found.append((when, wh))
    return found


def _register_wh(sampled: Any) -> Decimal | None:
    if not isinstance(sampled, dict):
        return None
    if sampled.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER or sampled.get("phase"):
        return None
    if sampled.get("format") == "SignedData" or sampled.get("location", "Outlet") != "Outlet":
        return None
    value = sampled.get("value")
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    unit = sampled.get("unit")
    measure = sampled.get("unitOfMeasure")
    multiplier = 0
    if isinstance(measure, dict):
        unit = measure.get("unit", unit)
        raw = measure.get("multiplier", 0)
        multiplier = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    number = number.scaleb(multiplier)
    if unit in (None, "Wh"):
        return number
    if unit == "kWh":
        return number * 1000
    return None


def _status_notifications(
    ledger: Ledger, charge_point: str, connector: int, first: int, last: int
) -> list[tuple[datetime, bool]]:
    """OCPP 1.6: the connector's StatusNotifications between the start and the stop frames."""
    found = []
    for frame in ledger.frames(charge_point, after=first):
        if frame.originator_version > last:
            break
        if frame.direction != INBOUND or frame.action != "StatusNotification" or frame.text is None:
            continue
        try:
            message = json.loads(frame.text)
            payload = message[3]
            status = payload["status"]
            if payload.get("connectorId") != connector or status not in _STATES_16:
                continue
            when = parse_time(payload["timestamp"]) if payload.get("timestamp") else frame.received_at
        except (ValueError, LookupError, TypeError, InvalidValue):
            continue
        found.append((when, status == CHARGING))
    return found


# -- pricing one session ----------------------------------------------------------------------


def price_outcome(
    registry: Registry, ledger: Ledger, session_id: UUID, *, tariff_code: str | None = None
) -> dict[str, Any]:
    """The session's price record: `priced` with every component, or `unpriced` with the reason.
    `tariff_code` prices with that tariff instead of the assigned one (a manual correction, or
    a re-pricing with the tariff a session was priced with before)."""
    facts = gather(ledger, session_id)
    outcome: dict[str, Any] = {
        "session_id": facts.session_id,
        "charge_point": facts.charge_point,
        "transaction_id": facts.transaction_id,
        "evse_id": facts.evse_id,
        "id_token": facts.id_token,
    }
    evidence = facts.evidence
    if evidence is None:
        return _unpriced(outcome, "the session has not ended")
    customer_id = _customer(registry, facts.id_token, evidence.started_at)
    time_zone, calibrated, site = _site(registry, facts.charge_point)
    outcome.update(
        customer_id=customer_id,
        site=site,
        time_zone=time_zone,
        calibrated=calibrated,
        started_at=evidence.started_at.isoformat(),
        ended_at=evidence.ended_at.isoformat(),
    )
    if tariff_code is not None:
        scope, key, code = "chosen", tariff_code, tariff_code
    else:
        resolved = registry.tariff_for(
            facts.charge_point, UUID(customer_id) if customer_id else None, evidence.started_at
        )
        if resolved is None:
            return _unpriced(
                outcome,
                "no tariff applies: none is assigned to the customer, their group, the charge "
                "point or its site at the session's start",
            )
        scope, key, code = resolved
    tariff = registry.get_or_none(Tariff, Tariff.create_id(code))
    version = None if tariff is None else tariff.version_at(evidence.started_at)
    if version is None:
        outcome["tariff"] = {"id": code, "version": None, "scope": scope, "key": key}
        return _unpriced(
            outcome, f"tariff {code} has no version valid at the session's start"
        )
    outcome["tariff"] = {"id": code, "version": version.version, "scope": scope, "key": key}
    try:
        model = parse_tariff(version.document)
        derived = derive(evidence, model, time_zone=time_zone, calibrated=calibrated)
        priced = price(model, derived.session)
    except UnpriceableSession as exc:
        return _unpriced(outcome, exc.reason)
    except (PricingError, TariffError) as exc:
        return _unpriced(outcome, f"the tariff cannot price this session: {exc}")
    outcome.update(
        status=PRICED,
        reason=None,
        energy_source=derived.energy_source,
        time_billable=derived.time_billable,
        meter=None if evidence.assessment is None else evidence.assessment.get("meter"),
        notes=list(derived.notes),
        charging_periods=_periods(derived),
        **cdr_totals(priced),
    )
    return outcome


def _unpriced(outcome: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**outcome, "status": UNPRICED, "reason": reason}


def _customer(registry: Registry, id_token: str | None, when: datetime) -> str | None:
    if id_token is None:
        return None
    tag = registry.get_or_none(IdTag, IdTag.create_id(id_token))
    return None if tag is None else tag.customer_at(when)


def _site(registry: Registry, charge_point: str) -> tuple[str, bool, str | None]:
    """(time zone, calibrated meters, site code) of the charge point's site."""
    found = registry.get_or_none(ChargePoint, ChargePoint.create_id(charge_point))
    code = None if found is None else found.site
    site = None if not code else registry.get_or_none(Site, Site.create_id(code))
    if site is None:
        return DEFAULT_TIME_ZONE, True, code or None
    return site.time_zone, site.calibrated, code


def _periods(derived: Derived) -> list[dict[str, Any]]:
    """The OCPI CDR charging periods the price was computed from (decimal strings)."""
    periods = []
    for period in derived.session.periods:
        dimensions = [{"type": "ENERGY", "volume": format(period.energy_kwh, "f")}]
        if period.charging_seconds:
            dimensions.append({"type": "TIME", "volume": format(period.charging_seconds / 3600, "f")})
        if period.parking_seconds:
            dimensions.append(
                {"type": "PARKING_TIME", "volume": format(period.parking_seconds / 3600, "f")}
            )
        periods.append({"start_date_time": period.start.astimezone(UTC).isoformat(), "dimensions": dimensions})
    return periods


# -- recording --------------------------------------------------------------------------------


@dataclass
class RecordPrice:
    """A committer unit: record an outcome on the session's price (idempotent). Without a
    `cause`, the record's own state says why: its first outcome, or a changed verdict.
    `keep_assignment` keeps the scope the earlier outcome's tariff was chosen by (a re-pricing
    with the same tariff after its correction)."""

    session_id: UUID
    outcome: dict[str, Any]
    cause: str | None = None
    by: str = SYSTEM
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    keep_assignment: bool = False

    def run(self, uow: UnitOfWork) -> tuple[bool, int]:
        """(whether a new event was recorded, the version of the current outcome)."""
        price_id = SessionPrice.create_id(self.session_id)
        record = uow.get(SessionPrice, price_id)
        if record is None:
            record = SessionPrice(session_id=self.session_id)
            uow.add(record)
        previous = record.outcome
        cause = self.cause or (
            "the session ended" if previous is None else "the session's Eichrecht verdict changed"
        )
        outcome = self.outcome
        if self.keep_assignment and outcome.get("tariff") and previous and previous.get("tariff"):
            outcome = {**outcome, "tariff": {
                **outcome["tariff"], "scope": previous["tariff"]["scope"], "key": previous["tariff"]["key"],
            }}
        changed = record.record(outcome, cause=cause, by=self.by, at=self.at)
        assert record.outcome_version is not None
        return changed, record.outcome_version

    def fail(self, uow: UnitOfWork, exc: Exception) -> tuple[bool, int]:
        raise exc


def reprice(
    registry: Registry, ledger: Ledger, committer: GroupCommitter, session_id: UUID, *,
    cause: str, by: str, tariff_code: str | None = None,
) -> tuple[bool, int, dict[str, Any]]:
    """Price a session now and record the outcome: (changed, version of the outcome, outcome)."""
    outcome = price_outcome(registry, ledger, session_id, tariff_code=tariff_code)
    changed, version = committer.run_now(RecordPrice(session_id, outcome, cause, by))
    return changed, version, outcome


# -- following the logs -----------------------------------------------------------------------


class Pricer:
    """Keeps every ended session priced: a background thread in each server process."""

    def __init__(
        self,
        registry: Registry,
        ledger: Ledger,
        committer: GroupCommitter,
        view: View,
        *,
        priced_sessions: Any = None,  # () -> projection runner of the `pricing` read model
        page: int = 200,
    ) -> None:
        self.registry = registry
        self.ledger = ledger
        self.committer = committer
        self.view = view
        self.priced_sessions = priced_sessions
        self.page = page
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def positions(self) -> tuple[int, int]:
        return (self.view.max_tracking_id(SESSIONS) or 0, self.view.max_tracking_id(TARIFFS) or 0)

    def catch_up(self) -> int:
        """Price what the logs hold beyond the positions; returns how many outcomes changed."""
        with self._lock:
            changed = self._follow_sessions()
            changed += self._follow_tariffs()
            return changed

    def _follow_sessions(self) -> int:
        changed = 0
        while True:
            start = self.view.max_tracking_id(SESSIONS) or 0
            head = self.ledger.recorder.max_notification_id() or 0
            if start >= head:
                return changed
            found = self.ledger.recorder.select_notifications(
                start=start + 1, limit=self.page, stop=head, topics=SESSION_TOPICS
            )
            reached = found[-1].id if len(found) == self.page else head
            seen = dict.fromkeys(UUID(str(n.originator_id)) for n in found)
            for session_id in seen:
                changed += self._record(session_id, None)
            self._advance(SESSIONS, start, reached)

    def _follow_tariffs(self) -> int:
        changed = 0
        while True:
            start = self.view.max_tracking_id(TARIFFS) or 0
            head = self.registry.recorder.max_notification_id() or 0
            if start >= head:
                return changed
            found = self.registry.recorder.select_notifications(
                start=start + 1, limit=self.page, stop=head, topics=TARIFF_TOPICS
            )
            reached = found[-1].id if len(found) == self.page else head
            corrections = []
            for notification in found:
                event: Any = self.registry.mapper.to_domain_event(notification)
                if event.corrects is not None:
                    corrections.append((event.document["id"], event.corrects, event.version))
            if corrections:
                self._settle_priced_sessions()
            for code, old, new in corrections:
                for session_id in self._priced_with(code, old):
                    changed += self._record(
                        session_id,
                        f"tariff {code} version {old} was corrected by version {new}",
                        tariff_code=code,
                    )
            self._advance(TARIFFS, start, reached)

    def _record(self, session_id: UUID, cause: str | None, *, tariff_code: str | None = None) -> int:
        outcome = price_outcome(self.registry, self.ledger, session_id, tariff_code=tariff_code)
        unit = RecordPrice(session_id, outcome, cause, keep_assignment=tariff_code is not None)
        changed, _ = self.committer.run_now(unit)
        return int(changed)

    def _settle_priced_sessions(self) -> None:
        if self.priced_sessions is not None:
            runner = self.priced_sessions()
            runner.wait(runner.status().head, timeout=30.0)

    def _priced_with(self, code: str, version: int) -> Sequence[UUID]:
        with self.view.reading() as cur:
            rows = cur.execute(
                "SELECT session_id FROM rm_priced_sessions WHERE tariff_id = %s "
                "AND tariff_version = %s ORDER BY session_id",
                (code, version),
            ).fetchall()
        return [UUID(str(row[0])) for row in rows]

    def _advance(self, name: str, start: int, reached: int) -> None:
        """Move the position from `start` to `reached`, unless another process moved it on."""
        with self.view.transaction() as cur:
            cur.execute(
                "INSERT INTO projection_tracking (projection, notification_id) VALUES (%s, 0) "
                "ON CONFLICT (projection) DO NOTHING",
                (name,),
            )
            cur.execute(
                "UPDATE projection_tracking SET notification_id = %s "
                "WHERE projection = %s AND notification_id = %s",
                (reached, name, start),
            )

    # -- in the server: a background thread ------------------------------------------------------

    def wait(self, timeout: float = 10.0) -> None:
        """Read-after-write: return once what is stored now has been priced."""
        self._wake.set()
        deadline = threading.Event()
        ledger_head = self.ledger.recorder.max_notification_id() or 0
        registry_head = self.registry.recorder.max_notification_id() or 0
        waited = 0.0
        while waited < timeout:
            sessions, tariffs = self.positions()
            if sessions >= ledger_head and tariffs >= registry_head:
                return
            if self._thread is None:
                self.catch_up()
                continue
            deadline.wait(0.01)
            waited += 0.01
        raise TimeoutError("the pricer did not catch up in time")

    @property
    def running(self) -> bool:
        return self._thread is not None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pricer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
            except Exception:  # noqa: BLE001 - keep pricing; the error is logged
                log.exception("pricer failed; retrying")
                self._stop.wait(1.0)
            self._wake.wait(1.0)
            self._wake.clear()
