"""The evidence log: every OCPP frame of a charge point, verbatim, in a hash chain.

One `FrameLog` aggregate per charge point; each frame is one `FrameLog.Recorded` event whose
version is the frame's sequence number. Every record carries the SHA-256 of its own content and
of the previous record's hash, so an edited, removed or reordered row breaks the chain
(`ledger.audit.verify_chains`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import frame_log_id

GENESIS = "0" * 64

INBOUND = "in"
OUTBOUND = "out"


def chain_hash(
    charge_point: str,
    seq: int,
    direction: str,
    protocol: str,
    received_at: datetime,
    text: str | None,
    data_b64: str | None,
    prev_hash: str,
) -> str:
    """SHA-256 over the record's own content followed by the previous record's hash."""
    content = json.dumps(
        [charge_point, seq, direction, protocol, received_at.isoformat(), text, data_b64],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return hashlib.sha256(content + prev_hash.encode()).hexdigest()


@dataclass(frozen=True)
class FrameRef:
    """Where a frame sits in the evidence log; domain events point to their frame with this."""

    charge_point: str
    seq: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"charge_point": self.charge_point, "seq": self.seq, "hash": self.hash}


class FrameLog(Aggregate):
    """The per-charge-point chain of frames. Only its tail (last hash) is state."""

    @staticmethod
    def create_id(charge_point: str) -> UUID:
        return frame_log_id(charge_point)

    @event("Opened")
    def __init__(self, charge_point: str) -> None:
        self.charge_point = charge_point
        self.last_hash = GENESIS
        self.frames = 0

    @classmethod
    def resume(cls, charge_point: str, version: int, last_hash: str) -> FrameLog:
        """The log as of its last record, without replaying the frames before it: a new record
        needs only the previous record's version and hash."""
        log = object.__new__(cls)
        log._id = cls.create_id(charge_point)
        log._version = version
        # Unknown from the tail alone, and read by nothing: new events carry their own time.
        log._created_on = None  # type: ignore[assignment]
        log._modified_on = None  # type: ignore[assignment]
        log._pending_events = []
        log.charge_point = charge_point
        log.last_hash = last_hash
        log.frames = version - 1
        return log

    def record(
        self,
        *,
        direction: str,
        protocol: str,
        received_at: datetime,
        text: str | None = None,
        data: bytes | None = None,
        message_id: str | None = None,
        message_type: int | None = None,
        action: str | None = None,
        connection: str | None = None,
    ) -> FrameRef:
        """Append one frame exactly as it was on the wire (text, or bytes for a binary frame)."""
        if (text is None) == (data is None):
            raise ValueError("a frame is either text or binary")
        data_b64 = base64.b64encode(data).decode() if data is not None else None
        seq = self.version + 1
        digest = chain_hash(
            self.charge_point, seq, direction, protocol, received_at, text, data_b64, self.last_hash
        )
        self._recorded(
            direction=direction,
            protocol=protocol,
            received_at=received_at,
            text=text,
            data_b64=data_b64,
            message_id=message_id,
            message_type=message_type,
            action=action,
            connection=connection,
            prev_hash=self.last_hash,
            hash=digest,
        )
        return FrameRef(self.charge_point, seq, digest)

    class Recorded(Aggregate.Event):
        direction: str
        protocol: str
        received_at: datetime
        text: str | None
        data_b64: str | None
        message_id: str | None
        message_type: int | None
        action: str | None
        connection: str | None
        prev_hash: str
        hash: str

    @event(Recorded)
    def _recorded(
        self,
        direction: str,
        protocol: str,
        received_at: datetime,
        text: str | None,
        data_b64: str | None,
        message_id: str | None,
        message_type: int | None,
        action: str | None,
        connection: str | None,
        prev_hash: str,
        hash: str,
    ) -> None:
        self.last_hash = hash
        self.frames += 1


def frame_row(charge_point: str, record: FrameLog.Recorded) -> dict[str, Any]:
    """A frame as one JSON object: the evidence export's line format (CLI and API)."""
    return {
        "charge_point": charge_point,
        "seq": record.originator_version,
        "received_at": record.received_at.isoformat(),
        "direction": record.direction,
        "protocol": record.protocol,
        "message_type": record.message_type,
        "message_id": record.message_id,
        "action": record.action,
        "connection": record.connection,
        "text": record.text,
        "binary_base64": record.data_b64,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }
