"""Charging sessions and the quarantine, built from OCPP transaction messages.

`station_time` is the business time the charge point stamped on a message; the event's own
`timestamp` is when we recorded it.

A session is one transaction of one charge point: OCPP 1.6 transactions carry the integer id we
hand out, 2.0.1/2.1 transactions the station's string id. Every message that belongs to a session
becomes one event that keeps its meter values verbatim (signed data included); a message that
repeats one already applied (same content) adds nothing. Messages for a transaction we never saw
go to the quarantine, with the reason, instead of being dropped.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import Conflict, InvalidValue
from ledger.ids import connection_id, quarantine_id, session_id

OCPP16 = "ocpp1.6"
OCPP2 = "ocpp2"


class ChargingSession(Aggregate):
    @staticmethod
    def create_id(charge_point: str, family: str, transaction_id: str) -> UUID:
        return session_id(charge_point, family, transaction_id)

    @event("Opened")
    def __init__(self, charge_point: str, family: str, transaction_id: str, protocol: str) -> None:
        self.charge_point = charge_point
        self.family = family
        self.transaction_id = transaction_id
        self.protocol = protocol
        self.started = False
        self.authorization_status: str | None = None
        self.ended = False
        self.ended_at: datetime | None = None
        self.ended_seq_no: int | None = None
        self.digests: set[str] = set()
        self.evse_id: int | None = None
        self.records: dict[str, dict[str, Any]] = {}  # record id → its verdict, in arrival order
        self.assessment: dict[str, Any] | None = None

    # -- commands -------------------------------------------------------------------------------

    def start(
        self,
        *,
        digest: str,
        source_frame: dict[str, Any],
        station_time: datetime,
        connector_id: int | None,
        evse_id: int | None,
        id_token: str | None,
        id_token_type: str | None,
        authorization_status: str | None,
        meter_start: Decimal | None,
        meter_values: list[Any],
        seq_no: int | None = None,
        offline: bool = False,
        trigger_reason: str | None = None,
        charging_state: str | None = None,
    ) -> bool:
        """Apply a start; False when this exact content was applied before."""
        if digest in self.digests:
            return False
        if self.started:
            # A second, different Started (2.x): keep it as an update, never restart the session.
            return self.update(
                digest=digest,
                source_frame=source_frame,
                source_action="TransactionEvent",
                station_time=station_time,
                meter_values=meter_values,
                seq_no=seq_no,
                offline=offline,
                trigger_reason=trigger_reason,
                charging_state=charging_state,
                id_token=id_token,
                id_token_type=id_token_type,
            )
        self.trigger_event(
            self.Started,
            digest=digest,
            source_frame=source_frame,
            station_time=station_time,
            connector_id=connector_id,
            evse_id=evse_id,
            id_token=id_token,
            id_token_type=id_token_type,
            authorization_status=authorization_status,
            meter_start=meter_start,
            meter_values=meter_values,
            seq_no=seq_no,
            offline=offline,
            trigger_reason=trigger_reason,
            charging_state=charging_state,
        )
        return True

    def update(
        self,
        *,
        digest: str,
        source_frame: dict[str, Any],
        source_action: str,
        station_time: datetime | None,
        meter_values: list[Any],
        seq_no: int | None = None,
        offline: bool = False,
        trigger_reason: str | None = None,
        charging_state: str | None = None,
        id_token: str | None = None,
        id_token_type: str | None = None,
        after_end: bool | None = None,
    ) -> bool:
        """Apply meter values or a 2.x Updated; False when this exact content was applied before.

        What arrives after the end is kept as evidence, flagged `after_end`, and changes nothing
        billable. For 2.x "after" means after the Ended event in seqNo order (an offline station
        may deliver an earlier Updated late); stations that repeat one seqNo are ordered by time.
        """
        if digest in self.digests:
            return False
        self.trigger_event(
            self.Updated,
            digest=digest,
            source_frame=source_frame,
            source_action=source_action,
            station_time=station_time,
            meter_values=meter_values,
            seq_no=seq_no,
            offline=offline,
            trigger_reason=trigger_reason,
            charging_state=charging_state,
            id_token=id_token,
            id_token_type=id_token_type,
            after_end=self._is_after_end(seq_no, station_time) if after_end is None else after_end,
        )
        return True

    def end(
        self,
        *,
        digest: str,
        source_frame: dict[str, Any],
        station_time: datetime,
        meter_stop: Decimal | None,
        reason: str | None,
        id_token: str | None,
        id_token_type: str | None,
        meter_values: list[Any],
        seq_no: int | None = None,
        offline: bool = False,
        trigger_reason: str | None = None,
        source_action: str = "StopTransaction",
    ) -> bool:
        """Apply the end. A second, different end for an ended session changes nothing billable:
        its readings are kept as evidence after the end. False when nothing was recorded."""
        if digest in self.digests:
            return False
        if self.ended:
            return self.update(
                digest=digest,
                source_frame=source_frame,
                source_action=source_action,
                station_time=station_time,
                meter_values=meter_values,
                seq_no=seq_no,
                offline=offline,
                trigger_reason=trigger_reason,
                id_token=id_token,
                id_token_type=id_token_type,
                after_end=True,
            )
        self.trigger_event(
            self.Ended,
            digest=digest,
            source_frame=source_frame,
            station_time=station_time,
            meter_stop=meter_stop,
            reason=reason,
            id_token=id_token,
            id_token_type=id_token_type,
            meter_values=meter_values,
            seq_no=seq_no,
            offline=offline,
            trigger_reason=trigger_reason,
        )
        return True

    def record_signed(
        self,
        *,
        record_id: str,
        verdict: dict[str, Any],
        context: str | None,
        source_frame: dict[str, Any],
        claimed_key: str | None,
    ) -> bool:
        """Keep one signed record's verdict; the same record again (MeterValues, then
        StopTransaction) is the same record id and adds nothing."""
        if record_id in self.records:
            return False
        self.trigger_event(
            self.RecordVerified,
            record_id=record_id,
            verdict=verdict,
            context=context,
            source_frame=source_frame,
            claimed_key=claimed_key,
        )
        return True

    def alert_key(self, *, record_id: str, claimed_fingerprint: str, registered: list[str]) -> None:
        """The key the station sent differs from every key the operator registered."""
        self.trigger_event(
            self.ClaimedKeyDiffers,
            record_id=record_id,
            claimed_fingerprint=claimed_fingerprint,
            registered_fingerprints=registered,
        )

    def assess(self, assessment: dict[str, Any]) -> bool:
        """Record the session's Eichrecht verdict when it is new or differs from the last one."""
        if assessment == self.assessment:
            return False
        self.trigger_event(self.Assessed, assessment=assessment, records=list(self.records))
        return True

    def _is_after_end(self, seq_no: int | None, station_time: datetime | None) -> bool:
        if not self.ended:
            return False
        if seq_no is None or self.ended_seq_no is None:
            return True
        if seq_no != self.ended_seq_no:
            return seq_no > self.ended_seq_no
        return station_time is None or self.ended_at is None or station_time >= self.ended_at

    # -- events ---------------------------------------------------------------------------------

    class Started(Aggregate.Event):
        digest: str
        source_frame: dict[str, Any]
        station_time: datetime
        connector_id: int | None
        evse_id: int | None
        id_token: str | None
        id_token_type: str | None
        authorization_status: str | None
        meter_start: Decimal | None
        meter_values: list[Any]
        seq_no: int | None
        offline: bool
        trigger_reason: str | None
        charging_state: str | None

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.digests.add(self.digest)
            aggregate.started = True
            aggregate.authorization_status = self.authorization_status
            aggregate.evse_id = self.evse_id if self.evse_id is not None else self.connector_id

    class Updated(Aggregate.Event):
        digest: str
        source_frame: dict[str, Any]
        source_action: str
        station_time: datetime | None
        meter_values: list[Any]
        seq_no: int | None
        offline: bool
        trigger_reason: str | None
        charging_state: str | None
        id_token: str | None
        id_token_type: str | None
        after_end: bool

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.digests.add(self.digest)

    class Ended(Aggregate.Event):
        digest: str
        source_frame: dict[str, Any]
        station_time: datetime
        meter_stop: Decimal | None
        reason: str | None
        id_token: str | None
        id_token_type: str | None
        meter_values: list[Any]
        seq_no: int | None
        offline: bool
        trigger_reason: str | None

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.digests.add(self.digest)
            aggregate.ended = True
            aggregate.ended_at = self.station_time
            aggregate.ended_seq_no = self.seq_no

    class RecordVerified(Aggregate.Event):
        record_id: str
        verdict: dict[str, Any]
        context: str | None
        source_frame: dict[str, Any]
        claimed_key: str | None

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.records[self.record_id] = self.verdict

    class ClaimedKeyDiffers(Aggregate.Event):
        record_id: str
        claimed_fingerprint: str
        registered_fingerprints: list[str]

    class Assessed(Aggregate.Event):
        assessment: dict[str, Any]
        records: list[str]

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.assessment = self.assessment


class QuarantineEntry(Aggregate):
    """A message we kept but could not apply, with the reason. Resolving it is a later event."""

    @staticmethod
    def create_id(charge_point: str, action: str, digest: str) -> UUID:
        return quarantine_id(charge_point, action, digest)

    @event("Quarantined")
    def __init__(
        self,
        charge_point: str,
        action: str,
        digest: str,
        protocol: str,
        message_id: str,
        transaction_id: str | None,
        reason: str,
        payload: dict[str, Any],
        source_frame: dict[str, Any],
    ) -> None:
        self.charge_point = charge_point
        self.action = action
        self.transaction_id = transaction_id
        self.reason = reason
        self.resolved = False
        self.resolution: str | None = None

    def resolve(self, resolution: str, note: str, by: str) -> bool:
        """An operator's decision about the entry, as a new event; the entry itself stays.
        Resolving again the same way changes nothing; another way is refused."""
        if resolution not in RESOLUTIONS:
            raise InvalidValue(f"resolution is one of {', '.join(RESOLUTIONS)}")
        if self.resolved:
            if self.resolution == resolution:
                return False
            raise Conflict(f"the entry was already resolved as {self.resolution}")
        self._resolved(resolution=resolution, note=note, by=by)
        return True

    @event("Resolved")
    def _resolved(self, resolution: str, note: str, by: str) -> None:
        self.resolved = True
        self.resolution = resolution


# dismissed: nothing to bill (a station's glitch); corrected: the operator recorded what it
# should have been elsewhere (e.g. a manual session); accepted: the message is right as it is
# and will be applied by a later version of the rules.
RESOLUTIONS = ("dismissed", "corrected", "accepted")


class Connection(Aggregate):
    """One WebSocket connection of a charge point: when it opened and when it closed. The
    monitoring view shows a station online from its latest Opened until that one's Closed."""

    @staticmethod
    def create_id(connection: str) -> UUID:
        return connection_id(connection)

    @event("Opened")
    def __init__(
        self, connection: str, charge_point: str, protocol: str, peer: str, at: datetime
    ) -> None:
        self.connection = connection
        self.charge_point = charge_point
        self.closed = False

    def close(self, at: datetime) -> None:
        if not self.closed:
            self._closed(charge_point=self.charge_point, at=at)

    @event("Closed")
    def _closed(self, charge_point: str, at: datetime) -> None:
        self.closed = True
