"""/v1/sessions: charging sessions, their meter values, and the raw frames behind them."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from api.http import paging, problems
from api.http.models import (
    EichrechtOut,
    FrameOut,
    FrameRefOut,
    SessionDetail,
    SessionEventOut,
    SessionOut,
    SignedRecordOut,
)
from api.http.paging import CursorParam, FromParam, Limit, Page, ToParam
from api.http.problems import Problem
from api.http.security import Principal, Reader, read_fresh, services
from api.services import Services
from ledger.frames import OUTBOUND, frame_row
from ledger.sessions import ChargingSession
from projections import queries

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=problems.responses(*problems.COMMON), dependencies=[Depends(read_fresh)])
KIND = "sessions"


def _out(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in SessionOut.model_fields if k in row}
    out["id"] = row["session_id"]
    out["customer_id"] = row["customer_id"]
    if row.get("energy_billable") is not None:
        out["energy_billable"] = bool(row["energy_billable"])  # SQLite answers 0/1
    return out


@router.get("", response_model=Page[SessionOut])
def list_sessions(
    request: Request, principal: Reader, limit: Limit = 50, cursor: CursorParam = None,
    charge_point: Annotated[str | None, Query(max_length=48)] = None,
    customer_id: UUID | None = None,
    from_: FromParam = None,
    to: ToParam = None,
    state: Literal["opened", "active", "ended"] | None = None,
    billable: bool | None = Query(None, description="Only sessions whose energy is (not) billable"),
) -> Page[SessionOut]:
    """Newest first. A customer's key lists only that customer's sessions."""
    paging.check_range(from_, to)
    before = paging.decode(KIND, cursor, int)
    own = principal.only_customer()
    if own is not None and customer_id is not None and str(customer_id) != own:
        return Page(items=[])  # another customer's: as if there were none
    wanted = own or (str(customer_id) if customer_id else None)
    with services(request).reading() as cur:
        rows = queries.list_sessions(
            cur, limit=limit + 1, before=before, charge_point=charge_point, customer_id=wanted,
            started_from=from_, started_to=to, state=state, billable=billable,
        )
    rows, next_cursor = paging.page(KIND, rows, limit, "opened_position")
    return Page(items=[SessionOut.model_validate(_out(r)) for r in rows], next_cursor=next_cursor)


def _visible(svc: Services, session_id: UUID, principal: Principal) -> dict[str, Any]:
    with svc.reading() as cur:
        row = queries.session(cur, str(session_id))
    if row is None or not principal.sees_customer(row["customer_id"]):
        raise Problem("not-found", f"no session {session_id}")
    return row


@router.get("/{session_id}", response_model=SessionDetail)
def get_session(request: Request, principal: Reader, session_id: UUID) -> Response:
    """The session with every event (meter values as the station sent them, exact) and the
    frames they came from, each followed by our answer."""
    svc = services(request)
    row = _visible(svc, session_id, principal)
    rendered: RenderedCache = request.app.state.rendered_sessions
    # The customer is decided at read time (tag assignments), so it is part of the key.
    key = (str(session_id), int(row["events"]), row["customer_id"], row["eichrecht_position"])
    body = rendered.get(key)
    if body is None:
        body = _detail(svc, session_id, row).model_dump_json().encode()
        rendered.put(key, body)
    return Response(body, media_type="application/json")


def _detail(svc: Services, session_id: UUID, row: dict[str, Any]) -> SessionDetail:
    events = []
    refs: list[int] = []
    records: list[SignedRecordOut] = []
    alerts: list[dict[str, Any]] = []
    assessment: dict[str, Any] | None = None
    for event in svc.ledger.session_events(session_id):
        source = getattr(event, "source_frame", None)
        if source is not None:
            refs.append(int(source["seq"]))
        if isinstance(event, ChargingSession.RecordVerified):
            records.append(SignedRecordOut(
                record_id=event.record_id, context=event.context, frame=FrameRefOut.model_validate(event.source_frame), verdict=event.verdict
            ))
        elif isinstance(event, ChargingSession.ClaimedKeyDiffers):
            alerts.append({
                "record_id": event.record_id,
                "claimed_fingerprint": event.claimed_fingerprint,
                "registered_fingerprints": event.registered_fingerprints,
            })
        elif isinstance(event, ChargingSession.Assessed):
            assessment = event.assessment
        events.append(SessionEventOut(
            version=event.originator_version, kind=type(event).__name__,
            station_time=getattr(event, "station_time", None),
            after_end=bool(getattr(event, "after_end", False)),
            meter_values=list(getattr(event, "meter_values", None) or []),
            frame=source,
        ))
    frames = _frames(svc, row["charge_point"], refs)
    return SessionDetail.model_validate(
        {
            **_out(row),
            "events": events,
            "frames": [FrameOut.model_validate(f) for f in frames],
            "eichrecht": EichrechtOut(assessment=assessment, records=records, key_alerts=alerts),
        }
    )


class RenderedCache:
    """Session details as sent, by (session, number of events, customer, position of its Eichrecht
    summary). Evidence is never edited, so a detail changes only when the session gets a new
    event, another customer or a newer summary, and then its key changes: an entry can never be
    stale. Bounded by bytes, least recently used dropped first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[tuple[str, int, str | None, int | None], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str | None, int | None]) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, str | None, int | None], body: bytes) -> None:
        with self._lock:
            if key in self._items or len(body) > self.max_bytes:
                return
            self._items[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)


def _frames(svc: Services, charge_point: str, seqs: list[int]) -> list[dict[str, Any]]:
    """The frames at `seqs` and, after each, our answer when it is the next frame."""
    candidates = svc.ledger.frames_at(charge_point, [n for s in seqs for n in (s, s + 1)])
    by_seq = {r.originator_version: r for r in candidates}
    wanted = set(seqs)
    rows = []
    for seq, record in sorted(by_seq.items()):
        call = by_seq.get(seq - 1)
        answer = (
            seq not in wanted and call is not None and seq - 1 in wanted
            and record.direction == OUTBOUND and record.message_id == call.message_id
        )
        if seq in wanted or answer:
            rows.append(frame_row(charge_point, record))
    return rows


@router.get(
    "/{session_id}/frames",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}},
                     "description": "The session's frames as JSON lines"}},
)
def export_session_frames(
    request: Request, session_id: UUID, principal: Reader
) -> StreamingResponse:
    """The evidence export of one session: its frames and our answers, as JSON lines."""
    svc = services(request)
    row = _visible(svc, session_id, principal)
    with svc.reading() as cur:
        seqs = [e["frame_seq"] for e in queries.session_evidence(cur, str(session_id))]
    rows = _frames(svc, row["charge_point"], seqs)
    return StreamingResponse(
        (json.dumps(r, ensure_ascii=False) + "\n" for r in rows), media_type="application/x-ndjson"
    )




@router.get(
    "/{session_id}/transparency.xml",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}},
                     "description": "The Transparenzsoftware input file of the session"}},
)
def transparency_file(request: Request, session_id: UUID, principal: Reader) -> Response:
    """The session's signed begin and end readings with their public key, as the S.A.F.E.
    Transparenzsoftware (and Chargy) open them: what a customer checks the invoice with."""
    svc = services(request)
    _visible(svc, session_id, principal)
    body = svc.ledger.transparency_file(session_id)
    if body is None:
        raise Problem("not-found", f"session {session_id} holds no signed meter data")
    return Response(
        body,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="session-{session_id}.xml"'},
    )
