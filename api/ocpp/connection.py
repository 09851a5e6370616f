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

_MESSAGE_ID = re.compile(r'^\s*\[\s*\d+\s*,\s*"([^"\\]{1,36})"')
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
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


# Answers that carry the central system's clock. A station that restarts its message-id counter
# after a reboot would get a stale time back; their handlers change nothing, so they are answered
# afresh instead of replayed.
_CLOCK_ANSWERS = frozenset({"BootNotification", "Heartbeat"})


def replayable(action: str, answer: str) -> bool:
    """Only results are replayed to a retry: an error answer (say the store was briefly
    unreachable) must not stick to the message id forever."""
    return action not in _CLOCK_ANSWERS and _answer_type(answer) == MessageType.CallResult


def _is_message_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 36


def _is_utf8(parsed: Any) -> bool:
    try:
        json.dumps(parsed, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        return False
    return True


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
        parsed: Any = None
        try:
            parsed = self._parse(raw_msg)
            msg = self._message(parsed)
        except OCPPError as error:
            message_id = self._message_id_of(parsed, raw_msg)
            exchange.message_id = message_id
            exchange.decide = lambda uow, ref, e=error: self.call_error(message_id, e)
            await self._commit_and_answer(exchange)
            return

        exchange.message_type = parsed[0]
        exchange.message_id = parsed[1]
        if isinstance(msg, Call):
            exchange.action = msg.action
            await self._handle_inbound_call(exchange, msg)
            return
        if parsed[0] == SEND and isinstance(parsed[2], str):
            exchange.action = parsed[2][:64]
        # A CallResult/CallError to one of our calls, or a 2.1 CALLRESULTERROR or SEND (which
        # get no answer): record it.
        await self._commit_and_answer(exchange)
        if isinstance(msg, (CallResult, CallError)) and self._lock is not None:
            self._response_queue.put_nowait(msg)  # only when we have called the station

    def _parse(self, raw: str) -> list[Any]:
        """The frame as an OCPP-J array, numbers exact. Whatever is not JSON as OCPP-J allows it
        (NaN and Infinity, numbers Python refuses, nesting too deep, lone UTF-16 surrogates
        that no store can hold as text) is a format violation, never an exception."""
        try:
            parsed = parse_exact(raw)
        except (ValueError, RecursionError) as exc:
            raise self._formation_violation(f"not valid JSON: {str(exc)[:120]}") from None
        if _ESCAPED_SURROGATE.search(raw) and not _is_utf8(parsed):
            raise self._formation_violation("a string holds a lone UTF-16 surrogate")
        if not isinstance(parsed, list):
            raise ProtocolError(details={"cause": "an OCPP-J message is a JSON array"})
        if not parsed or not isinstance(parsed[0], int) or isinstance(parsed[0], bool):
            raise ProtocolError(details={"cause": "the array does not start with a MessageTypeId"})
        return parsed

    def _message(self, parsed: list[Any]) -> Call | CallResult | CallError | None:
        """The `ocpp` library's message object for the array (None for the answerless 2.1
        kinds), after the checks its `unpack` leaves out."""
        kind = parsed[0]
        expected = {
            MessageType.Call: (4,),
            MessageType.CallResult: (3,),
            MessageType.CallError: (4, 5),
        }
        if self._ocpp_version == "2.1":
            expected |= {CALL_RESULT_ERROR: (4, 5), SEND: (4,)}
        if kind not in expected:
            if self._ocpp_version == "1.6":
                raise ProtocolError(details={"cause": f"MessageTypeId {kind} is not OCPP-J 1.6"})
            raise MessageTypeNotSupportedError(details={"cause": f"MessageTypeId {kind}"})
        if len(parsed) not in expected[kind]:
            raise ProtocolError(
                details={"cause": f"a message of type {kind} has {expected[kind][0]} elements"}
            )
        if not _is_message_id(parsed[1]):
            raise self._formation_violation("MessageId must be a string of 1 to 36 characters")
        if kind == MessageType.Call:
            if not isinstance(parsed[2], str) or not parsed[2]:
                raise self._formation_violation("Action must be a non-empty string")
            if not isinstance(parsed[3], dict):
                raise self._formation_violation("Payload must be a JSON object")
            return Call(parsed[1], parsed[2], parsed[3])
        if kind == MessageType.CallResult:
            return CallResult(parsed[1], parsed[2])
        if kind == MessageType.CallError:
            return CallError(*parsed[1:])
        return None

    async def _handle_inbound_call(self, exchange: Exchange, msg: Call) -> None:
        exact = msg.payload  # parsed exactly: fractions are Decimal
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
        if answer is not None and replayable(msg.action, answer):
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

    @staticmethod
    def _sniff_message_id(raw: str) -> str:
        """The id of a frame too large to parse, when it is plain (no escapes)."""
        match = _MESSAGE_ID.match(raw[:200])
        return match.group(1) if match else UNKNOWN_ID

    def _message_id_of(self, parsed: Any, raw: str) -> str:
        if isinstance(parsed, list):
            return parsed[1] if len(parsed) > 1 and _is_message_id(parsed[1]) else UNKNOWN_ID
        return self._sniff_message_id(raw)


