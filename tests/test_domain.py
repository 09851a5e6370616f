"""Unit tests of the write model: no I/O."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.settings import Settings
from ledger.errors import InvalidValue
from ledger.frames import GENESIS, INBOUND, OUTBOUND, FrameLog, FrameRef, chain_hash
from ledger.registry import (
    ACCEPTED,
    BLOCKED,
    EXPIRED,
    ChargePoint,
    IdTag,
    hash_password,
    verify_password,
)
from ledger.sessions import OCPP2, OCPP16, ChargingSession
from ledger.store import POSTGRESQL, SQLITE, Database
from ledger.values import canonical, digest, iso, parse_exact, parse_time

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
FRAME = {"charge_point": "CP1", "seq": 2, "hash": "ab" * 32}


def started_session(family: str = OCPP16) -> ChargingSession:
    session = ChargingSession(charge_point="CP1", family=family, transaction_id="7", protocol="ocpp1.6")
    session.start(
        digest="start",
        source_frame=FRAME,
        station_time=T0,
        connector_id=1,
        evse_id=None,
        id_token="TAG",
        id_token_type=None,
        authorization_status=ACCEPTED,
        meter_start=Decimal(100),
        meter_values=[],
    )
    return session


def test_session_start_is_applied_once_per_content() -> None:
    session = started_session()
    again = session.start(
        digest="start", source_frame=FRAME, station_time=T0, connector_id=1, evse_id=None,
        id_token="TAG", id_token_type=None, authorization_status=ACCEPTED,
        meter_start=Decimal(100), meter_values=[],
    )
    assert again is False
    assert [type(e).__name__ for e in session.collect_events()] == ["Opened", "Started"]


def test_repeated_meter_values_add_nothing() -> None:
    session = started_session()
    kwargs = dict(digest="mv1", source_frame=FRAME, source_action="MeterValues", station_time=T0, meter_values=[{"x": "1"}])
    assert session.update(**kwargs) is True
    assert session.update(**kwargs) is False
    assert len([e for e in session.collect_events() if isinstance(e, ChargingSession.Updated)]) == 1


def test_second_stop_changes_nothing_and_later_values_are_flagged() -> None:
    session = started_session()
    end = dict(source_frame=FRAME, station_time=T0 + timedelta(hours=1), meter_stop=Decimal(200),
               reason=None, id_token=None, id_token_type=None, meter_values=[])
    assert session.end(digest="stop1", **end) is True
    assert session.end(digest="stop1", **end) is False  # the same stop again: nothing
    assert session.end(digest="stop2", **end | {"meter_stop": Decimal(250)}) is True
    session.update(digest="late", source_frame=FRAME, source_action="MeterValues",
                   station_time=T0 + timedelta(hours=2), meter_values=[])
    events = session.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "Started", "Ended", "Updated", "Updated"]
    # A different second stop is kept as evidence after the end; the end itself stays.
    assert (events[3].source_action, events[3].after_end) == ("StopTransaction", True)
    assert events[-1].after_end is True
    assert events[2].meter_stop == Decimal(200)
    assert session.ended_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("seq_no", "offset", "after_end"),
    [
        (1, timedelta(seconds=-30), False),  # an offline station delivers an earlier Updated late
        (5, timedelta(seconds=30), True),  # a later seqNo after the end
        (3, timedelta(seconds=1), True),  # a station repeating the Ended seqNo: ordered by time
        (3, timedelta(seconds=-1), False),
    ],
)
def test_ocpp2_updates_after_ended_are_ordered_by_seq_no(
    seq_no: int, offset: timedelta, after_end: bool
) -> None:
    session = started_session(OCPP2)
    session.end(digest="end", source_frame=FRAME, station_time=T0, meter_stop=None, reason="Local",
                id_token=None, id_token_type=None, meter_values=[], seq_no=3)
    session.update(digest="u", source_frame=FRAME, source_action="TransactionEvent",
                   station_time=T0 + offset, meter_values=[], seq_no=seq_no)
    assert session.collect_events()[-1].after_end is after_end


def test_frame_chain_links_each_record_to_the_previous() -> None:
    log = FrameLog("CP1")
    first = log.record(direction=INBOUND, protocol="ocpp1.6", received_at=T0, text='[2,"1","Heartbeat",{}]')
    second = log.record(direction=OUTBOUND, protocol="ocpp1.6", received_at=T0, text='[3,"1",{}]')
    events = log.collect_events()[1:]
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == first.hash
    assert second == FrameRef("CP1", 3, events[1].hash)
    assert first.hash == chain_hash("CP1", 2, INBOUND, "ocpp1.6", T0, '[2,"1","Heartbeat",{}]', None, GENESIS)
    # One changed byte changes the hash.
    assert first.hash != chain_hash("CP1", 2, INBOUND, "ocpp1.6", T0, '[2,"1","Heartbeat",{} ]', None, GENESIS)


def test_binary_frames_are_kept_as_bytes() -> None:
    log = FrameLog("CP1")
    log.record(direction=INBOUND, protocol="ocpp1.6", received_at=T0, data=b"\x00\xff")
    assert log.collect_events()[-1].data_b64 == "AP8="
    with pytest.raises(ValueError):
        log.record(direction=INBOUND, protocol="ocpp1.6", received_at=T0, text="x", data=b"x")


def test_value_objects_are_immutable() -> None:
    ref = FrameRef("CP1", 2, "h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.seq = 3  # type: ignore[misc]
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_passwords_are_stored_hashed() -> None:
    stored = hash_password("correct horse battery")
    assert "correct horse" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    with pytest.raises(InvalidValue):
        hash_password("short")


def test_charge_point_ids_are_checked() -> None:
    with pytest.raises(InvalidValue):
        ChargePoint.register("has:colon")
    with pytest.raises(InvalidValue):
        ChargePoint.register("x" * 49)
    assert ChargePoint.register("CP-0001").name == "CP-0001"


def test_id_tag_status() -> None:
    tag = IdTag.add("04A2B3", expires_at=T0)
    assert tag.status_at(T0 - timedelta(seconds=1)) == ACCEPTED
    assert tag.status_at(T0) == EXPIRED
    tag.block()
    assert tag.status_at(T0 - timedelta(days=1)) == BLOCKED
    with pytest.raises(InvalidValue):
        IdTag.add("x", expires_at=datetime(2026, 1, 1))


def test_numbers_parse_exactly() -> None:
    parsed = parse_exact('{"v": 0.1, "w": 1e-3, "n": 7}')
    assert parsed == {"v": Decimal("0.1"), "w": Decimal("0.001"), "n": 7}
    assert isinstance(parsed["v"], Decimal)
    with pytest.raises(InvalidValue):
        canonical(0.1)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _to_json(value: object) -> str:
    """JSON text with decimals written as numbers, as stations write meter values."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return "[" + ",".join(_to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_to_json(k)}:{_to_json(v)}" for k, v in value.items()) + "}"
    import json

    return json.dumps(value)


@given(_json)
def test_exact_parsing_keeps_numbers_exact(value: object) -> None:
    parsed = parse_exact(_to_json(value))
    assert not _has_float(parsed)
    assert parsed == value  # Decimal equality: no digit lost or invented


def test_times_are_utc() -> None:
    assert parse_time("2026-11-24T11:00:00+01:00") == T0
    assert parse_time("2026-11-24T10:00:00") == T0  # OCPP times are UTC when no zone is given
    assert iso(T0) == "2026-11-24T10:00:00.000Z"
    with pytest.raises(InvalidValue):
        parse_time("yesterday")


def test_database_urls() -> None:
    sqlite = Database.from_url("sqlite:///var/x.db")
    assert (sqlite.backend, sqlite.sqlite_path) == (SQLITE, "var/x.db")
    assert Database.from_url("sqlite:////tmp/x.db").sqlite_path == "/tmp/x.db"
    pg = Database.from_url("postgresql://u:p%40ss@db:6543/ledger")
    assert (pg.backend, pg.user, pg.password, pg.host, pg.port, pg.dbname) == (
        POSTGRESQL, "u", "p@ss", "db", 6543, "ledger",
    )
    with pytest.raises(InvalidValue):
        Database.from_url("mysql://x")


def test_settings_from_environment() -> None:
    settings = Settings.from_env({"LADEBUCH_PORT": "9000", "LADEBUCH_DATABASE_URL": "sqlite:///a.db"})
    assert (settings.port, settings.database_url) == (9000, "sqlite:///a.db")
    with pytest.raises(ValueError):
        Settings.from_env({"LADEBUCH_LOG_LEVEL": "loud"})
    with pytest.raises(ValueError):
        Settings.from_env({"LADEBUCH_PORT": "eighty"})


def test_schema_checks_leave_the_payload_as_sent() -> None:
    """The compiled validators must not fill in schema defaults (sampledValue.context and the
    like): the domain keeps what the station sent."""
    import copy

    from ocpp.messages import MessageType

    from api.ocpp import schemas

    payload = {
        "evseId": 1,
        "meterValue": [{"timestamp": "2026-11-24T10:00:00Z", "sampledValue": [{"value": Decimal("1.5")}]}],
    }
    before = copy.deepcopy(payload)
    assert schemas.is_valid(MessageType.Call, "MeterValues", "2.0.1", payload)
    assert payload == before
    assert not schemas.is_valid(MessageType.Call, "MeterValues", "2.0.1", {"evseId": "one"})
