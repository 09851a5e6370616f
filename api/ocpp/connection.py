"""One charge point's WebSocket session: framing, error answers, retries, evidence.

Every frame in either direction is appended to the charge point's frame log in the same
transaction as the domain events it causes, and an answer is sent only after that transaction
committed. A malformed frame, an unknown action or a payload that breaks the schema gets the
CALLERROR OCPP defines, is recorded like any other frame, and the connection stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.charge_point import ChargePoint
from ocpp.exceptions import (
    FormationViolationError,
    FormatViolationError,
    InternalError,
    NotSupportedError,
    OCPPError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.messages import (
    Call,
    CallError,
    CallResult,
    MessageType,
    get_validator,
    unpack,
    validate_payload,
)

from api.ocpp import schemas
from api.ocpp.handlers import ROUTES, CallContext
from ledger.committer import GroupCommitter, UnitOfWork
from ledger.errors import LedgerError
from ledger.frames import INBOUND, OUTBOUND, FrameLog, FrameRef
from ledger.values import digest, parse_exact, utcnow

log = logging.getLogger(__name__)

SUBPROTOCOLS = {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}

# OCPP 2.1 adds CALLRESULTERROR (5) and SEND (6, no answer).
CALL_RESULT_ERROR = 5
SEND = 6

_MESSAGE_ID = re.compile(r'^\s*\[\s*\d+\s*,\s*"((?:[^"\\]|\\.){1,36})"')
_MESSAGE_TYPE = re.compile(r"^\s*\[\s*(\d{1,3})\s*[,\]]")
_ACTION = re.compile(r"^[A-Za-z0-9]{1,64}$")
# A station has one call outstanding at a time and retries the one it got no answer to, plus
# the transaction messages it queued while offline: a short window per connection suffices
# (and keeps an idle connection small). The ledger's own idempotency covers the rest.
RECENT_CALLS = 32
UNKNOWN_ID = "-1"  # OCPP 2.0.1 part 4 §4.2.3: the id to answer with when the frame has none


# The ocpp library swaps these two descriptions; these are the OCPP-J specification's.
_DESCRIPTIONS = {
    "NotImplemented": "Requested Action is not known by receiver",
    "NotSupported": "Requested Action is recognized but not supported by the receiver",
    "MessageTypeNotSupported": (
        "A message with a Message Type Id received that is not supported by this implementation"
    ),
}


class MessageTypeNotSupportedError(OCPPError):  # type: ignore[misc]
    code = "MessageTypeNotSupported"
    default_description = _DESCRIPTIONS["MessageTypeNotSupported"]


class Disconnected(Exception):
    """The peer closed the WebSocket."""


@dataclass
class Exchange:
    """One inbound frame and the answer it causes, as one committer unit."""

    connection: OcppConnection
    received_at: datetime
    text: str | None
    data: bytes | None
    message_id: str | None
    message_type: int | None
    action: str | None
    decide: Callable[[UnitOfWork, FrameRef], str | None] | None = None

    def _record_inbound(self, uow: UnitOfWork) -> tuple[FrameLog, FrameRef]:
        conn = self.connection
        frame_log = uow.frame_log(conn.charge_point)
        ref = frame_log.record(
            direction=INBOUND,
            protocol=conn.subprotocol,
            received_at=self.received_at,
            text=self.text,
            data=self.data,
            message_id=self.message_id,
            message_type=self.message_type,
            action=self.action,
            connection=conn.connection_id,
        )
        return frame_log, ref

    def _record_outbound(self, frame_log: FrameLog, text: str, message_type: int) -> None:
        frame_log.record(
            direction=OUTBOUND,
            protocol=self.connection.subprotocol,
            received_at=utcnow(),
            text=text,
            message_id=self.message_id,
            message_type=message_type,
            action=self.action,
            connection=self.connection.connection_id,
        )

    def run(self, uow: UnitOfWork) -> str | None:
        frame_log, ref = self._record_inbound(uow)
        answer = self.decide(uow, ref) if self.decide else None
        if answer is not None:
            self._record_outbound(frame_log, answer, _answer_type(answer))
        return answer

    def fail(self, uow: UnitOfWork, exc: Exception) -> str | None:
        frame_log, _ = self._record_inbound(uow)
        if self.message_type not in (MessageType.Call, None):
            return None
        answer = self.connection.call_error(self.message_id or UNKNOWN_ID, exc)
        self._record_outbound(frame_log, answer, MessageType.CallError)
        return answer


@dataclass
class OutboundCall:
    """A call we send to the charge point, recorded before it leaves."""

    connection: OcppConnection
    text: str
    message_id: str
    action: str

    def run(self, uow: UnitOfWork) -> None:
        conn = self.connection
        uow.frame_log(conn.charge_point).record(
            direction=OUTBOUND,
            protocol=conn.subprotocol,
            received_at=utcnow(),
            text=self.text,
            message_id=self.message_id,
            message_type=MessageType.Call,
            action=self.action,
            connection=conn.connection_id,
        )

    def fail(self, uow: UnitOfWork, exc: Exception) -> None:
        raise exc


def _answer_type(text: str) -> int:
    return int(MessageType.CallError if text.startswith("[4") else MessageType.CallResult)


class OcppConnection(ChargePoint):  # type: ignore[misc]
    """The `ocpp` library's ChargePoint, with routing that records evidence and commits first."""

    def __init__(
        self,
        *,
        charge_point: str,
        subprotocol: str,
        websocket: Any,
        committer: GroupCommitter,
        max_frame_bytes: int,
        heartbeat_interval: int,
    ) -> None:
        # ChargePoint.__init__ builds a route map per instance; ours is built once per version.
        self.id = charge_point
        self.charge_point = charge_point
        self.subprotocol = subprotocol
        self._ocpp_version = SUBPROTOCOLS[subprotocol]
        self.route_map = ROUTES[self._ocpp_version]
        self._connection = websocket
        self._response_timeout = 30
        self._unique_id_generator = uuid.uuid4
        self.logger = log
        self.connection_id = uuid.uuid4().hex
        self.committer = committer
        self.max_frame_bytes = max_frame_bytes
        self.heartbeat_interval = heartbeat_interval
        # message id -> (digest of action and payload, the answer we sent); oldest first.
        self.recent: dict[str, tuple[str, str]] = {}
        self._lock: asyncio.Lock | None = None
        self._queue: asyncio.Queue[Any] | None = None

    # The library's `call()` uses these two; most stations are never called by us, so they are
    # made on first use (an idle connection is kept small).
    @property
    def _call_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def _response_queue(self) -> asyncio.Queue[Any]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    # -- receiving ------------------------------------------------------------------------------

    async def start(self) -> None:
        while True:
            message = await self._connection.receive()
            if message["type"] == "websocket.disconnect":
                raise Disconnected
            if message.get("text") is not None:
                await self.route_message(message["text"])
            else:
                await self.route_binary(message.get("bytes") or b"")

    async def route_binary(self, data: bytes) -> None:
        exchange = Exchange(self, utcnow(), None, data, None, None, None)
        exchange.decide = lambda uow, ref: self.call_error(
            UNKNOWN_ID, self._formation_violation("binary frames are not OCPP-J; send text frames")
        )
        await self._commit_and_answer(exchange)

    async def route_message(self, raw_msg: str) -> None:
        received_at = utcnow()
        exchange = Exchange(self, received_at, raw_msg, None, None, None, None)
        if len(raw_msg) > self.max_frame_bytes and len(raw_msg.encode()) > self.max_frame_bytes:
            message_id = self._sniff_message_id(raw_msg)
            exchange.message_id = message_id
            exchange.decide = lambda uow, ref: self.call_error(
                message_id,
                self._formation_violation(f"frame exceeds {self.max_frame_bytes} bytes"),
            )
            await self._commit_and_answer(exchange)
            return
        try:
            head = self._message_type_of(raw_msg)
            if head in (CALL_RESULT_ERROR, SEND) and self._ocpp_version == "2.1":
                # A CALLRESULTERROR to one of our results, or an answerless SEND: keep it.
                exchange.message_type = head
                exchange.message_id = self._sniff_message_id(raw_msg)
                if head == SEND:
                    exchange.action = self._sniff_action(raw_msg)
                await self._commit_and_answer(exchange)
                return
            msg = unpack(raw_msg)
            self._check_shape(msg)
        except OCPPError as error:
            message_id = self._sniff_message_id(raw_msg)
            exchange.message_id = message_id
            exchange.decide = lambda uow, ref, e=error: self.call_error(message_id, e)
            await self._commit_and_answer(exchange)
            return

        exchange.message_id = msg.unique_id
        exchange.message_type = msg.message_type_id
        if isinstance(msg, Call):
            exchange.action = msg.action
            await self._handle_inbound_call(exchange, msg)
            return
        # A CallResult/CallError to one of our calls, or an answerless 2.1 SEND: record it.
        await self._commit_and_answer(exchange)
        if msg.message_type_id in (MessageType.CallResult, MessageType.CallError) and self._lock:
            self._response_queue.put_nowait(msg)  # only when we have called the station

    async def _handle_inbound_call(self, exchange: Exchange, msg: Call) -> None:
        exact = parse_exact(exchange.text or "")[3]
        payload_digest = digest([msg.action, exact])
        remembered = self.recent.get(msg.unique_id)
        if remembered is not None and remembered[0] == payload_digest:
            # A retry of a call we answered: the same answer again, and no second domain event.
            previous_answer = remembered[1]
            exchange.decide = lambda uow, ref: previous_answer
            await self._commit_and_answer(exchange)
            return
        try:
            handlers = self.route_map.get(msg.action)
            if handlers is None:
                raise self._unhandled(msg.action)
            if not schemas.is_valid(MessageType.Call, msg.action, self._ocpp_version, msg.payload):
                # The library names the violation (and so the CALLERROR code).
                await validate_payload(msg, self._ocpp_version)
        except OCPPError as error:
            exchange.decide = lambda uow, ref, e=error: self.call_error(msg.unique_id, e)
            await self._commit_and_answer(exchange)
            return

        handler = handlers["_on_action"]

        def decide(uow: UnitOfWork, ref: FrameRef) -> str:
            ctx = CallContext(
                uow=uow,
                charge_point=self.charge_point,
                protocol=self.subprotocol,
                message_id=msg.unique_id,
                frame=ref,
                received_at=exchange.received_at,
                heartbeat_interval=self.heartbeat_interval,
            )
            response = CallResult(msg.unique_id, handler(ctx, exact), action=msg.action)
            schemas.check_response(msg.action, self._ocpp_version, response.payload)
            return str(response.to_json())

        exchange.decide = decide
        answer = await self._commit_and_answer(exchange)
        if answer is not None:
            self.recent.pop(msg.unique_id, None)
            self.recent[msg.unique_id] = (payload_digest, answer)
            if len(self.recent) > RECENT_CALLS:
                del self.recent[next(iter(self.recent))]

    async def _commit_and_answer(self, exchange: Exchange) -> str | None:
        """Commit the exchange, then send its answer. No answer goes out before the commit."""
        answer = await asyncio.wrap_future(self.committer.submit(exchange))
        if answer is not None:
            await self._connection.send_text(answer)
        return answer

    # -- sending our own calls (the library's `call()` uses this) ------------------------------

    async def _send(self, message: str) -> None:
        parsed = json.loads(message)
        unit = OutboundCall(self, message, parsed[1], parsed[2] if parsed[0] == MessageType.Call else "")
        await asyncio.wrap_future(self.committer.submit(unit))
        await self._connection.send_text(message)

    # -- errors ---------------------------------------------------------------------------------

    def _check_shape(self, msg: Any) -> None:
        """What `unpack` leaves unchecked: the id and action types, and an object payload."""
        if not isinstance(msg.unique_id, str) or not 0 < len(msg.unique_id) <= 36:
            raise self._formation_violation("MessageId must be a string of 1 to 36 characters")
        if isinstance(msg, Call):
            if not isinstance(msg.action, str) or not msg.action:
                raise self._formation_violation("Action must be a non-empty string")
            if not isinstance(msg.payload, dict):
                raise self._formation_violation("Payload must be a JSON object")

    def _unhandled(self, action: str) -> OCPPError:
        """OCPP-J: NotImplemented when the action is not known, NotSupported when it is known
        but not one a central system takes (a call meant for the charge point)."""
        try:
            if not _ACTION.match(action):
                raise ValueError(action)
            get_validator(MessageType.Call, action, self._ocpp_version)
        except (OSError, ValueError):
            return OcppNotImplemented(details={"cause": f"unknown action {action[:64]!r}"})
        return NotSupportedError(details={"cause": f"{action} is not a call a central system takes"})

    def _formation_violation(self, cause: str) -> OCPPError:
        if self._ocpp_version == "1.6":
            return FormationViolationError(details={"cause": cause})
        return FormatViolationError(details={"cause": cause})

    def call_error(self, message_id: str, exc: Exception) -> str:
        if isinstance(exc, OCPPError):
            error = exc
        elif isinstance(exc, LedgerError):
            error = TypeConstraintViolationError(details={"cause": str(exc)})
        else:
            log.error("internal error answering %s: %r", self.charge_point, exc)
            error = InternalError(details={"cause": "the central system failed to process the call"})
        code = error.code
        if self._ocpp_version == "1.6" and code == FormatViolationError.code:
            code = FormationViolationError.code  # 1.6 spells it FormationViolation
        if self._ocpp_version != "1.6" and code == FormationViolationError.code:
            code = FormatViolationError.code
        details = error.details if isinstance(error.details, dict) else {}
        cause = details.get("cause")
        safe = {"cause": str(cause)[:512]} if cause is not None else {}
        description = _DESCRIPTIONS.get(code, error.description)
        return str(CallError(message_id, code, description, safe).to_json())

    def _message_type_of(self, raw: str) -> int | None:
        """The MessageTypeId when the frame is a JSON array starting with an unknown one."""
        match = _MESSAGE_TYPE.match(raw)
        if match is None:
            return None
        kind = int(match.group(1))
        if kind in (MessageType.Call, MessageType.CallResult, MessageType.CallError):
            return kind
        if kind in (CALL_RESULT_ERROR, SEND) and self._ocpp_version == "2.1":
            return kind
        if self._ocpp_version == "1.6":
            raise ProtocolError(details={"cause": f"MessageTypeId {kind} is not OCPP-J 1.6"})
        raise MessageTypeNotSupportedError(details={"cause": f"MessageTypeId {kind}"})

    @staticmethod
    def _sniff_action(raw: str) -> str | None:
        try:
            parsed = json.loads(raw)
            return str(parsed[2])[:64]
        except (ValueError, IndexError, TypeError):
            return None

    @staticmethod
    def _sniff_message_id(raw: str) -> str:
        match = _MESSAGE_ID.match(raw[:200])
        return match.group(1) if match else UNKNOWN_ID


