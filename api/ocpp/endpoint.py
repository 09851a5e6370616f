"""The handshake at `/ocpp/{charge_point_id}`: subprotocol, identity, Basic auth.

Refusals happen before the WebSocket is accepted, as plain HTTP answers: 400 when no OCPP
version we speak was offered, 404 for an unknown charge point, 401 for a disabled one or a
wrong or missing password (security profile 1; profile 2 is the same behind TLS).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from fastapi import WebSocket
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from api.ocpp.connection import (
    RECENT_CALLS,
    SUBPROTOCOLS,
    Disconnected,
    OcppConnection,
    replayable,
)
from api.services import Services
from ledger.commands import CloseConnection, OpenConnection
from ledger.frames import FrameLog
from ledger.registry import verify_password
from ledger.values import digest, parse_exact

log = logging.getLogger(__name__)

# Server preference when a station offers several.
PREFERENCE = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")


class OcppEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.connections: dict[str, OcppConnection] = {}
        self.refused = 0

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, charge_point_id: str
    ) -> None:
        websocket = WebSocket(scope, receive, send)  # for the handshake only
        offered = list(websocket.scope.get("subprotocols") or [])
        subprotocol = next((p for p in PREFERENCE if p in offered), None)
        peer = websocket.client.host if websocket.client else "?"
        if subprotocol is None:
            await self._refuse(
                websocket, 400, f"no OCPP version we speak was offered ({', '.join(SUBPROTOCOLS)})",
                charge_point_id, peer,
            )
            return
        registry = self.services.registry
        charge_point = await asyncio.to_thread(registry.find_charge_point, charge_point_id)
        if charge_point is None:
            await self._refuse(websocket, 404, "unknown charge point", charge_point_id, peer)
            return
        if charge_point.disabled:
            await self._refuse(websocket, 401, "charge point is disabled", charge_point_id, peer)
            return
        if charge_point.password_hash is not None:
            password = _basic_password(websocket.headers.get("authorization"), charge_point_id)
            ok = password is not None and await asyncio.to_thread(
                verify_password, password, charge_point.password_hash
            )
            if not ok:
                await self._refuse(
                    websocket, 401, "wrong or missing Basic credentials", charge_point_id, peer,
                    headers={"WWW-Authenticate": 'Basic realm="ladebuch"'},
                )
                return

        settings = self.services.settings
        await websocket.accept(subprotocol=subprotocol)
        # From here on only raw ASGI messages pass; the small Socket replaces Starlette's
        # WebSocket for the weeks a station stays connected.
        socket = Socket(receive, send)
        del websocket
        connection = OcppConnection(
            charge_point=charge_point_id,
            subprotocol=subprotocol,
            websocket=socket,
            committer=self.services.committer,
            max_frame_bytes=settings.ocpp_max_frame_bytes,
            heartbeat_interval=settings.heartbeat_interval,
        )
        connection.recent.update(await asyncio.to_thread(self._recent_answers, charge_point_id))
        previous = self.connections.get(charge_point_id)
        self.connections[charge_point_id] = connection
        if previous is not None:
            # The station reconnected; the old socket is dead or a duplicate. Newest wins.
            log.info("%s reconnected; closing its previous connection", charge_point_id)
            asyncio.ensure_future(_close_quietly(previous._connection))
        log.info("%s connected (%s) from %s", charge_point_id, subprotocol, peer)
        committer = self.services.committer
        try:
            await asyncio.wrap_future(committer.submit(OpenConnection(
                connection.connection_id, charge_point_id, subprotocol, peer, datetime.now(UTC)
            )))
            await connection.start()
        except Disconnected:
            pass
        except Exception:
            log.exception("%s: connection failed; closing so the station retries", charge_point_id)
            await _close_quietly(socket, code=1011)
        finally:
            if self.connections.get(charge_point_id) is connection:
                del self.connections[charge_point_id]
            log.info("%s disconnected", charge_point_id)
            closed = committer.submit(CloseConnection(connection.connection_id, datetime.now(UTC)))
            closed.add_done_callback(_log_failure)

    async def disconnect(self, charge_point_id: str) -> None:
        """Close the station's connection in this process, if it has one (after a disable)."""
        connection = self.connections.get(charge_point_id)
        if connection is not None:
            await _close_quietly(connection._connection, code=1008)

    def _recent_answers(
        self, charge_point_id: str, window: int = 2 * RECENT_CALLS
    ) -> dict[str, tuple[str, str]]:
        """The answers to this station's last calls, so a retry after reconnecting gets the same."""
        ledger = self.services.ledger
        stored = ledger.recorder.select_events(
            FrameLog.create_id(charge_point_id), desc=True, limit=window
        )
        calls: dict[str, str] = {}
        answers: dict[str, tuple[str, str]] = {}
        for item in reversed(stored):
            if item.originator_version == 1:
                continue
            record = ledger.mapper.to_domain_event(item)
            if not isinstance(record, FrameLog.Recorded) or record.text is None or not record.message_id:
                continue
            if record.direction == "in" and record.message_type == 2:
                try:
                    parsed = parse_exact(record.text)
                    calls[record.message_id] = digest([parsed[2], parsed[3]])
                except (ValueError, LookupError, TypeError):
                    continue
            elif record.direction == "out" and record.message_type == 3:
                request = calls.get(record.message_id)
                if request is not None and replayable(record.action or "", record.text):
                    answers[record.message_id] = (request, record.text)
        return answers

    async def _refuse(
        self,
        websocket: WebSocket,
        status: int,
        reason: str,
        charge_point_id: str,
        peer: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.refused += 1
        log.warning("refused OCPP handshake for %r from %s: %d %s", charge_point_id, peer, status, reason)
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(
                PlainTextResponse(reason + "\n", status_code=status, headers=headers)
            )
        else:
            await websocket.close(code=1008, reason=reason)


class Socket:
    """An accepted WebSocket as raw ASGI receive/send."""

    __slots__ = ("receive", "_send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self._send = send

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int = 1000) -> None:
        await self._send({"type": "websocket.close", "code": code})


def _basic_password(header: str | None, charge_point_id: str) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or user != charge_point_id:
        return None
    return password


async def _close_quietly(websocket: Any, code: int = 1000) -> None:
    try:
        await websocket.close(code=code)
    except Exception:  # noqa: BLE001 - already closed is fine
        pass


def _log_failure(future: Future[None]) -> None:
    if future.exception() is not None:
        log.error("could not record a closed connection: %s", future.exception())
