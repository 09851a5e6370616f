"""Replay the recorded OCPP conformance traces over a real WebSocket and check the ledger.

Every trace in `shared/conformance/ocpp-traces/` is replayed against a real `ladebuch serve`
process, on SQLite and on PostgreSQL: the charge point and its id tags are registered first, then
every `in` frame is sent in order. A CALL must get a CALLRESULT with its message id; a
CALLRESULT the station sent to the recorded central system's own calls (RemoteStart..., SetVariables)
must get no answer. OCPP 1.6 transaction ids are the recorded central system's; they are mapped
to the ids our server hands out before MeterValues/StopTransaction are sent.

The expectations below were worked out by reading the trace files, not computed by this code.
Each session lists, in order, the events it must hold and the message (first 8 characters of
its message id) each comes from.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from ledger.application import build_applications
from ledger.values import parse_exact
from tests.conftest import CONFORMANCE, Server

pytestmark = pytest.mark.e2e

TRACES = CONFORMANCE / "ocpp-traces"
ANSWER_TIMEOUT = 15.0  # seconds to wait for the answer to a CALL
SILENCE = 0.3  # seconds during which no answer may arrive to a station's CALLRESULT

ACCEPTED = "Accepted"
OCPP16 = "ocpp1.6"
OCPP2 = "ocpp2"

# Event kinds as this test names them: an Updated flagged after_end is "Updated/after_end".
STARTED, UPDATED, AFTER_END, ENDED = "Started", "Updated", "Updated/after_end", "Ended"


# -- expectations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedSession:
    recorded_id: str  # the transaction id in the trace (1.6: the recorded central system's)
    events: tuple[tuple[str, str], ...]  # (kind, message id prefix) after Opened, in order
    ended: bool = True
    meter_start: int | None = None  # 1.6 only: Started.meter_start (Wh)
    meter_stop: int | None = None  # 1.6 only: Ended.meter_stop (Wh)
    reason: str | None = None  # Ended.reason
    ended_seq_no: int | None = None  # 2.x only
    authorization: str | None = ACCEPTED
    signed_in_ended: int = 0  # signed readings kept verbatim in the Ended event


@dataclass(frozen=True)
class ExpectedTrace:
    """Every MeterValues/StopTransaction in the traces names a transaction started earlier in
    the same trace, so nothing is quarantined."""

    file: str
    charge_point: str
    family: str
    frames: int  # inbound frames sent + answers received
    sessions: tuple[ExpectedSession, ...]
    quarantined: int = 0


EXPECTED = [
    ExpectedTrace(
        file="sap-ocpp16-station3-of-20.jsonl",
        charge_point="SIM16-00003",
        family=OCPP16,
        frames=54,  # 27 CALLs, 27 answers
        sessions=(
            ExpectedSession(
                "15",
                events=(
                    (STARTED, "7708df87"),
                    (UPDATED, "b347fc4f"),  # Transaction.Begin
                    (UPDATED, "825e837b"),
                    (UPDATED, "b078944a"),
                    (UPDATED, "890d7168"),  # Transaction.End
                    (ENDED, "c8992e2e"),
                ),
                meter_start=0,
                meter_stop=115,
                reason="Local",
                signed_in_ended=1,
            ),
            ExpectedSession(
                "24",
                events=(
                    (STARTED, "57be1262"),
                    (UPDATED, "f8a33086"),
                    (UPDATED, "f6fe2590"),
                    (UPDATED, "3b4931cc"),
                    (UPDATED, "d3968e9a"),
                    (ENDED, "500fdeb1"),
                ),
                meter_start=0,
                meter_stop=61,
                reason="Local",
                signed_in_ended=1,
            ),
        ),
    ),
    ExpectedTrace(
        file="sap-ocpp16-station20-of-20-metervalues-after-stop.jsonl",
        charge_point="SIM16-00020",
        family=OCPP16,
        frames=56,
        sessions=(
            ExpectedSession(
                "14",
                events=(
                    (STARTED, "3fa7f627"),
                    (UPDATED, "8f038819"),
                    (UPDATED, "c44f463b"),
                    (UPDATED, "a2c3c424"),
                    (UPDATED, "10450a35"),
                    (ENDED, "593e30e2"),
                    # A periodic MeterValues for transaction 14 after its StopTransaction: kept as
                    # evidence, flagged, and the billed meterStop stays 61.
                    (AFTER_END, "21818858"),
                ),
                meter_start=0,
                meter_stop=61,
                reason="Local",
                signed_in_ended=1,
            ),
            ExpectedSession(
                "39",
                events=(
                    (STARTED, "86ce5f34"),
                    (UPDATED, "cc4eb509"),
                    (UPDATED, "83ca7e95"),
                    (UPDATED, "a31f91f4"),
                    (UPDATED, "f5f16cbd"),
                    (ENDED, "0bdb9908"),
                ),
                meter_start=0,
                meter_stop=61,
                reason="Local",
                signed_in_ended=1,
            ),
        ),
    ),
    ExpectedTrace(
        file="sap-ocpp16-sigint-mid-transaction.jsonl",
        charge_point="SIM16-00001",
        family=OCPP16,
        frames=88,
        sessions=(
            ExpectedSession(
                "1",
                events=(
                    (STARTED, "0877e120"),
                    (UPDATED, "89c989e7"),
                    (UPDATED, "5510bccb"),
                    (UPDATED, "96ce4f46"),
                    (UPDATED, "a794b5ce"),  # Transaction.End ...
                    (UPDATED, "1b75c5ab"),  # ... then one more Sample.Periodic, still before Stop
                    (ENDED, "0bfc024f"),
                ),
                meter_start=0,
                meter_stop=92,
                reason="Local",
                signed_in_ended=2,
            ),
            ExpectedSession(
                "2",
                events=(
                    (STARTED, "7b0c9b02"),
                    (UPDATED, "ea9d01bb"),
                    (UPDATED, "e22e6319"),
                    (UPDATED, "d5763c04"),
                    (UPDATED, "1f0895ef"),
                    (UPDATED, "c5628c6d"),
                    (ENDED, "cffafeb5"),
                ),
                meter_start=0,
                meter_stop=48,
                reason="Local",
                signed_in_ended=2,
            ),
            ExpectedSession(
                "3",
                events=(
                    (STARTED, "2431a7be"),
                    (UPDATED, "d66f6a46"),
                    (UPDATED, "839a2b6b"),
                    # Two Transaction.End MeterValues 3 ms apart. They are NOT the same content:
                    # timestamps 19:47:39.587Z / .591Z and different signed OCMF (TM, SD), so
                    # both are readings and both are kept.
                    (UPDATED, "4a3c8287"),
                    (UPDATED, "4c2784c6"),
                    # StopTransaction twice, 3 ms apart (a41b922f: no reason, 17dceff3: "Local",
                    # different timestamps and signed End): the first ends the session; the
                    # second changes nothing billable, its readings are kept after the end.
                    (ENDED, "a41b922f"),
                    (AFTER_END, "17dceff3"),
                ),
                meter_start=0,
                meter_stop=52,
                reason=None,
                signed_in_ended=2,
            ),
        ),
    ),
    ExpectedTrace(
        file="sap-ocpp201-station3-of-20.jsonl",
        charge_point="SIM201-00003",
        family=OCPP2,
        frames=51,  # 25 CALLs, 25 answers, 1 CALLRESULT to the recorded SetVariables
        sessions=(
            ExpectedSession(
                "c8c63e5b-1236-4d56-98ec-cee1d1f35653",
                events=(
                    (STARTED, "512dd616"),  # seqNo 0
                    (UPDATED, "b650a28f"),  # seqNo 1
                    (ENDED, "08b61c4e"),  # seqNo 2
                    (AFTER_END, "c9afbd48"),  # seqNo 3, after the Ended (seqNo 2)
                ),
                reason="Local",
                ended_seq_no=2,
                signed_in_ended=2,
            ),
            ExpectedSession(
                "c9f1cc81-ac44-4ea3-982a-810b438687aa",
                events=(
                    (STARTED, "afc406ce"),
                    (UPDATED, "957c186d"),
                    (UPDATED, "cdc0981b"),
                    (ENDED, "e18cdf05"),
                ),
                reason="Local",
                ended_seq_no=3,
                signed_in_ended=2,
            ),
            ExpectedSession(
                "b288bf33-cf09-4067-aaf8-09323679a9e6",
                events=(
                    (STARTED, "80670b4a"),
                    (UPDATED, "3937c8d8"),
                    (UPDATED, "33cca924"),
                    (ENDED, "590fb610"),
                ),
                reason="Local",
                ended_seq_no=3,
                signed_in_ended=2,
            ),
        ),
    ),
    ExpectedTrace(
        file="sap-ocpp201-remote-start-stop.jsonl",
        charge_point="SIM201-00001",
        family=OCPP2,
        frames=25,  # 11 CALLs, 11 answers, 3 CALLRESULTs (SetVariables, RequestStart, RequestStop)
        sessions=(
            ExpectedSession(
                "af76dfbf-c005-4d54-9e3d-2d1ebc6b5774",
                events=(
                    (STARTED, "b5a4c729"),
                    (UPDATED, "1b67cc19"),
                    (UPDATED, "a5966094"),
                    (ENDED, "6090c860"),
                ),
                reason="Remote",
                ended_seq_no=3,
                authorization=None,  # the Started event carries no idToken
                signed_in_ended=1,
            ),
        ),
    ),
    ExpectedTrace(
        file="vcp-ocpp16-remote-stop-real-ocmf.jsonl",
        charge_point="VCP16-1",
        family=OCPP16,
        frames=18,  # 8 CALLs, 8 answers, 2 CALLRESULTs (RemoteStart/RemoteStopTransaction)
        sessions=(
            ExpectedSession(
                "1",
                events=(
                    (STARTED, "957374f5"),
                    (UPDATED, "f34eca25"),
                    (ENDED, "000cd22c"),  # transactionData with the real OCMF SignedData
                ),
                meter_start=0,
                meter_stop=250,
                reason=None,
                signed_in_ended=1,
            ),
        ),
    ),
    ExpectedTrace(
        file="vcp-ocpp201-remote-stop-real-ocmf.jsonl",
        charge_point="VCP201-1",
        family=OCPP2,
        frames=20,  # 9 CALLs, 9 answers, 2 CALLRESULTs (RequestStart/RequestStopTransaction)
        sessions=(
            ExpectedSession(
                "f793df22-4603-42dd-b2ae-a9533457ae2f",
                # Every TransactionEvent of this station carries seqNo 0: none may be dropped.
                events=(
                    (STARTED, "09e1fdbc"),
                    (UPDATED, "ce7afb8a"),
                    (UPDATED, "2c13b44c"),
                    (ENDED, "6c9374cf"),
                ),
                reason=None,
                ended_seq_no=0,
                signed_in_ended=1,
            ),
        ),
    ),
]


def test_every_trace_has_expectations() -> None:
    assert sorted(p.name for p in TRACES.glob("*.jsonl")) == sorted(e.file for e in EXPECTED)


# -- replay -------------------------------------------------------------------------------------


def load_trace(name: str) -> list[dict[str, Any]]:
    with open(TRACES / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def inbound_calls(trace: list[dict[str, Any]], action: str | None = None) -> list[list[Any]]:
    """The CALLs the charge point sent, in order (only those of `action` when given)."""
    return [
        f["msg"]
        for f in trace
        if f["dir"] == "in" and f["msg"][0] == 2 and action in (None, f["msg"][2])
    ]


def id_tags(trace: list[dict[str, Any]]) -> set[str]:
    """Every idTag and idToken.idToken anywhere in the trace's frames."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "idTag" and isinstance(value, str):
                    found.add(value)
                elif key == "idToken" and isinstance(value, dict):
                    found.add(value["idToken"])
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for frame in trace:
        walk(frame.get("msg"))
    return found


def register(server: Server, trace: list[dict[str, Any]]) -> None:
    (charge_point,) = {f["cp"] for f in trace}
    done = server.cli("charge-points", "add", charge_point)
    assert done.returncode == 0, done.stderr
    for tag in sorted(id_tags(trace)):
        done = server.cli("id-tags", "add", tag)
        assert done.returncode == 0, done.stderr


@dataclass
class Replay:
    charge_point: str
    protocol: str
    url: str
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (direction, text), in order
    transaction_ids: dict[int, int] = field(default_factory=dict)  # recorded id -> ours
    answers: dict[str, str] = field(default_factory=dict)  # message id -> our answer text

    async def call(self, ws: Any, text: str) -> list[Any]:
        """Send a CALL; its answer must be a CALLRESULT with the same message id."""
        sent = json.loads(text)
        await ws.send(text)
        self.transcript.append(("in", text))
        answer_text = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT)
        self.transcript.append(("out", answer_text))
        answer: list[Any] = json.loads(answer_text)
        assert answer[:2] == [3, sent[1]], f"{sent[2]} {sent[1]} answered with {answer_text}"
        self.answers[sent[1]] = answer_text
        return answer

    async def send_silent(self, ws: Any, text: str) -> None:
        """Send a frame that gets no answer (a CALLRESULT/CALLERROR to a call we never made)."""
        await ws.send(text)
        self.transcript.append(("in", text))
        try:
            unexpected = await asyncio.wait_for(ws.recv(), SILENCE)
        except TimeoutError:
            return
        pytest.fail(f"no answer expected to {text[:80]}, got {unexpected}")


def rewrite_transaction_id(msg: list[Any], ids: dict[int, int]) -> list[Any] | None:
    """The frame with the recorded 1.6 transactionId replaced by ours, or None if unchanged."""
    if msg[0] != 2 or msg[2] not in ("MeterValues", "StopTransaction"):
        return None
    recorded = msg[3].get("transactionId")
    if recorded not in ids:
        return None  # never started in this trace: sent as recorded
    return [msg[0], msg[1], msg[2], {**msg[3], "transactionId": ids[recorded]}]


OnOpen = Callable[[Any, Replay], Awaitable[None]]


async def replay(server: Server, trace: list[dict[str, Any]], then: OnOpen | None = None) -> Replay:
    (charge_point,) = {f["cp"] for f in trace}
    (protocol,) = {f["proto"] for f in trace}
    run = Replay(charge_point, protocol, f"{server.ws_url}/{charge_point}")
    recorded_answers = {
        f["msg"][1]: f["msg"] for f in trace if f["dir"] == "out" and f["msg"][0] == 3
    }
    async with websockets.connect(run.url, subprotocols=[Subprotocol(protocol)]) as ws:
        assert ws.subprotocol == protocol
        for frame in trace:
            if frame["dir"] != "in":
                continue
            msg = frame["msg"]
            rewritten = (
                rewrite_transaction_id(msg, run.transaction_ids) if protocol == OCPP16 else None
            )
            text = json.dumps(rewritten if rewritten is not None else msg)
            if msg[0] != 2:
                await run.send_silent(ws, text)
                continue
            answer = await run.call(ws, text)
            if msg[2] == "StartTransaction":
                recorded_id = recorded_answers[msg[1]][2]["transactionId"]
                assert recorded_id not in run.transaction_ids
                run.transaction_ids[recorded_id] = answer[2]["transactionId"]
        if then is not None:
            await then(ws, run)
    return run


# -- what the ledger holds ----------------------------------------------------------------------


def kind(event: Any) -> str:
    name = type(event).__name__
    if name == "Updated" and event.after_end:
        return AFTER_END
    return name


def recorded_meter_values(action: str, payload: dict[str, Any]) -> list[Any]:
    if action == "StartTransaction":
        return []
    key = "transactionData" if action == "StopTransaction" else "meterValue"
    return list(payload.get(key, []))


def signed_readings(meter_values: list[Any]) -> list[str]:
    """Signed data as the station sent it: 1.6 `format: SignedData` values, 2.x signedMeterData."""
    found = []
    for meter_value in meter_values:
        for sampled in meter_value["sampledValue"]:
            if sampled.get("format") == "SignedData":
                found.append(sampled["value"])
            if "signedMeterValue" in sampled:
                found.append(sampled["signedMeterValue"]["signedMeterData"])
    return found


def has_float(node: Any) -> bool:
    if isinstance(node, float):
        return True
    if isinstance(node, dict):
        return any(has_float(v) for v in node.values())
    if isinstance(node, list):
        return any(has_float(v) for v in node)
    return False


def check_ledger(
    server: Server, run: Replay, expected: ExpectedTrace, trace: list[dict[str, Any]]
) -> None:
    """Evidence, quarantine, sessions and their events, against the expectations."""
    by_message_id = {msg[1]: msg for msg in inbound_calls(trace)}

    audit = server.cli("audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    n = len(run.transcript)
    assert f"{expected.charge_point}: {n} frames verified, ok" in audit.stdout, audit.stdout
    assert f"1 chains, {n} frames, 0 broken" in audit.stdout, audit.stdout

    registry, ledger = build_applications(server.database)
    try:
        frames = list(ledger.frames(expected.charge_point))
        # The evidence log holds exactly what went over the wire, in order.
        assert [(f.direction, f.text) for f in frames] == run.transcript
        frame_at = {f.originator_version: f for f in frames}

        assert len(list(ledger.quarantine_entries())) == expected.quarantined

        sessions = list(ledger.sessions())
        assert len(sessions) == len(expected.sessions)
        for session, want in zip(sessions, expected.sessions):
            if expected.family == OCPP16:
                transaction_id = str(run.transaction_ids[int(want.recorded_id)])
            else:
                transaction_id = want.recorded_id
            context = f"{expected.file} transaction {want.recorded_id}"
            assert session.charge_point == expected.charge_point, context
            assert session.family == expected.family, context
            assert session.transaction_id == transaction_id, context
            assert session.started is True, context
            assert session.ended is want.ended, context
            assert session.authorization_status == want.authorization, context
            assert session.ended_seq_no == want.ended_seq_no, context

            events = ledger.session_events(session.id)
            assert type(events[0]).__name__ == "Opened", context
            got = []
            for event in events[1:]:
                if kind(event) not in (STARTED, UPDATED, AFTER_END, ENDED):
                    continue  # RecordVerified, Assessed: checked by the Eichrecht tests
                frame = frame_at[event.source_frame["seq"]]
                assert frame.direction == "in" and frame.message_type == 2, context
                assert frame.text is not None and frame.message_id is not None, context
                assert event.source_frame["hash"] == frame.hash, context
                got.append((kind(event), frame.message_id[:8]))

                # Readings are kept verbatim: exactly the sent payload's, fractions as Decimal.
                _, _, action, payload = parse_exact(frame.text)
                assert frame.action == action, context
                assert event.meter_values == recorded_meter_values(action, payload), context
                assert not has_float(event.meter_values), context
                if expected.family == OCPP2:
                    assert event.seq_no == payload["seqNo"], context
                else:
                    assert event.seq_no is None, context
                if kind(event) in (UPDATED, AFTER_END):
                    assert event.source_action == action, context
            assert got == list(want.events), context

            started = events[1]
            ended = next(e for e in events if type(e).__name__ == "Ended")
            if expected.family == OCPP16:
                assert want.meter_start is not None and want.meter_stop is not None
                assert started.meter_start == Decimal(want.meter_start), context
                assert ended.meter_stop == Decimal(want.meter_stop), context
            else:
                assert started.meter_start is None and ended.meter_stop is None, context
            assert ended.reason == want.reason, context

            # Signed data in the Ended event is the trace's text, character for character.
            ended_msg = by_message_id[frame_at[ended.source_frame["seq"]].message_id]
            in_trace = signed_readings(recorded_meter_values(ended_msg[2], ended_msg[3]))
            kept = signed_readings(ended.meter_values)
            assert len(kept) == want.signed_in_ended, context
            assert kept == in_trace, context
    finally:
        registry.close()
        ledger.close()


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expected", EXPECTED, ids=[e.file.removesuffix(".jsonl") for e in EXPECTED]
)
def test_trace_replay(server: Server, expected: ExpectedTrace) -> None:
    trace = load_trace(expected.file)
    assert {f["cp"] for f in trace} == {expected.charge_point}
    register(server, trace)

    run = asyncio.run(replay(server, trace))

    assert len(run.transcript) == expected.frames
    if expected.family == OCPP16:
        ours = list(run.transaction_ids.values())
        assert len(set(ours)) == len(expected.sessions) == len(ours)
    check_ledger(server, run, expected, trace)


def test_vcp_ocpp16_signed_stop_data_kept_verbatim(server: Server) -> None:
    """The real OCMF SignedData in the StopTransaction's transactionData, exactly as sent."""
    expected = next(e for e in EXPECTED if e.file.startswith("vcp-ocpp16"))
    trace = load_trace(expected.file)
    register(server, trace)
    asyncio.run(replay(server, trace))

    (stop,) = inbound_calls(trace, "StopTransaction")
    (sampled,) = stop[3]["transactionData"][0]["sampledValue"]
    assert sampled["format"] == "SignedData"
    assert sampled["value"].startswith('{"signedMeterData":"T0NNRnx7')

    registry, ledger = build_applications(server.database)
    try:
        (session,) = ledger.sessions()
        ended = [e for e in ledger.session_events(session.id) if type(e).__name__ == "Ended"]
        assert len(ended) == 1
        (kept,) = ended[0].meter_values[0]["sampledValue"]
        assert kept["format"] == "SignedData"
        assert kept["value"] == sampled["value"]
        assert ended[0].meter_values == stop[3]["transactionData"]
    finally:
        registry.close()
        ledger.close()


def test_repeated_start_transaction_gets_the_same_id(server: Server) -> None:
    """A retried StartTransaction (same message id, or a new one with the same content) gets the
    transactionId of the first, on the same connection and after reconnecting, and adds no
    session; a MeterValues repeated under a new message id adds no reading."""
    expected = next(e for e in EXPECTED if e.file == "sap-ocpp16-station3-of-20.jsonl")
    trace = load_trace(expected.file)
    register(server, trace)
    starts = inbound_calls(trace, "StartTransaction")
    assert [s[1][:8] for s in starts] == ["7708df87", "57be1262"]
    (meter_values,) = [
        m for m in inbound_calls(trace, "MeterValues") if m[1].startswith("825e837b")
    ]

    first_answers: dict[str, str] = {}

    async def retry_starts(ws: Any, run: Replay) -> None:
        for start in starts:
            first_answer = first_answers.setdefault(start[1], run.answers[start[1]])
            transaction_id = json.loads(first_answer)[2]["transactionId"]
            # The same frame again: the very same answer, character for character.
            await run.call(ws, json.dumps(start))
            assert run.transcript[-1][1] == first_answer
            # The same content under a new message id: the same transactionId.
            copy = [2, str(uuid.uuid4()), "StartTransaction", start[3]]
            answer = await run.call(ws, json.dumps(copy))
            assert answer[2] == {"transactionId": transaction_id, "idTagInfo": {"status": ACCEPTED}}

    async def retry_on_same_connection(ws: Any, run: Replay) -> None:
        await retry_starts(ws, run)
        # Content dedupe: the same readings for the same transaction under a new message id.
        resent = rewrite_transaction_id(meter_values, run.transaction_ids)
        assert resent is not None
        resent[1] = str(uuid.uuid4())
        assert await run.call(ws, json.dumps(resent)) == [3, resent[1], {}]

    async def scenario() -> Replay:
        run = await replay(server, trace, then=retry_on_same_connection)
        # The station reconnects and retries the starts it may not have seen answered.
        async with websockets.connect(run.url, subprotocols=[Subprotocol(run.protocol)]) as ws:
            await retry_starts(ws, run)
        return run

    run = asyncio.run(scenario())

    # 54 frames of the trace, 2 x 2 starts + 1 MeterValues on the first connection, 2 x 2
    # starts after reconnecting: 9 more CALLs, 18 more frames.
    assert len(run.transcript) == expected.frames + 18
    # The sessions and their events are exactly those of the plain replay.
    check_ledger(server, run, expected, trace)
