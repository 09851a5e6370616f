"""The two eventsourcing applications: the registry (what the operator set up) and the ledger
(what charge points sent). Each has its own events table; both live in one database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate

from ledger.errors import AlreadyExists, NotFound
from ledger.frames import GENESIS, FrameLog
from ledger.registry import INVALID, ChargePoint, IdTag
from ledger.sessions import ChargingSession, QuarantineEntry
from ledger.store import POSTGRESQL, Database

A = TypeVar("A", bound=Aggregate)

_PAGE = 500


class _Base(Application[UUID]):
    def get_or_none(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            found: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(found, cls):
            raise TypeError(f"{aggregate_id} is a {type(found).__name__}, not a {cls.__name__}")
        return found

    def originators(self, topic_prefix: str) -> Iterator[UUID]:
        """Ids of aggregates whose first event's topic starts with `topic_prefix`, in creation order."""
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=_PAGE)
            for notification in page:
                if notification.originator_version == 1 and notification.topic.startswith(topic_prefix):
                    yield UUID(str(notification.originator_id))
            if len(page) < _PAGE:
                return
            start = page[-1].id + 1


def _topic(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class Registry(_Base):
    """Charge points and id tags. Small, read fresh on every use (no cache), so a block or a
    disable made by another process is seen at once."""

    def register_charge_point(self, name: str, password: str | None = None) -> ChargePoint:
        if self.get_or_none(ChargePoint, ChargePoint.create_id(name)) is not None:
            raise AlreadyExists("charge point", name)
        charge_point = ChargePoint.register(name, password)
        self.save(charge_point)
        return charge_point

    def charge_point(self, name: str) -> ChargePoint:
        found = self.get_or_none(ChargePoint, ChargePoint.create_id(name))
        if found is None:
            raise NotFound("charge point", name)
        return found

    def find_charge_point(self, name: str) -> ChargePoint | None:
        return self.get_or_none(ChargePoint, ChargePoint.create_id(name))

    def set_charge_point_password(self, name: str, password: str | None) -> None:
        charge_point = self.charge_point(name)
        charge_point.set_password(password)
        self.save(charge_point)

    def disable_charge_point(self, name: str) -> None:
        charge_point = self.charge_point(name)
        charge_point.disable()
        self.save(charge_point)

    def enable_charge_point(self, name: str) -> None:
        charge_point = self.charge_point(name)
        charge_point.enable()
        self.save(charge_point)

    def charge_points(self) -> list[ChargePoint]:
        prefix = _topic(ChargePoint)
        return [self.repository.get(i) for i in self.originators(prefix)]

    def add_id_tag(self, token: str, *, label: str = "", expires_at: datetime | None = None) -> IdTag:
        if self.get_or_none(IdTag, IdTag.create_id(token)) is not None:
            raise AlreadyExists("id tag", token)
        tag = IdTag.add(token, label=label, expires_at=expires_at)
        self.save(tag)
        return tag

    def id_tag(self, token: str) -> IdTag:
        found = self.get_or_none(IdTag, IdTag.create_id(token))
        if found is None:
            raise NotFound("id tag", token)
        return found

    def block_id_tag(self, token: str) -> None:
        tag = self.id_tag(token)
        tag.block()
        self.save(tag)

    def unblock_id_tag(self, token: str) -> None:
        tag = self.id_tag(token)
        tag.unblock()
        self.save(tag)

    def id_tags(self) -> list[IdTag]:
        prefix = _topic(IdTag)
        return [self.repository.get(i) for i in self.originators(prefix)]

    def authorization_status(self, token: str, when: datetime) -> str:
        """Accepted, Blocked, Expired, or Invalid for a token we do not know."""
        tag = self.get_or_none(IdTag, IdTag.create_id(token))
        return INVALID if tag is None else tag.status_at(when)


class Ledger(_Base):
    """Frames, charging sessions and the quarantine. Written by the group committer only: its
    aggregate cache holds sessions (frame chains are tracked by the committer as their tails),
    is updated on save, and a write that raced another process fails on the (id, version) key
    and is retried from the store."""

    def frame_log_tail(self, charge_point: str) -> FrameLog | None:
        """The frame log with just its tail loaded: the last record is all a new record needs."""
        log_id = FrameLog.create_id(charge_point)
        last = self.recorder.select_events(log_id, desc=True, limit=1)
        if not last:
            return None
        stored = last[0]
        if stored.originator_version == 1:
            return FrameLog.resume(charge_point, 1, GENESIS)
        record = self.mapper.to_domain_event(stored)
        assert isinstance(record, FrameLog.Recorded)
        return FrameLog.resume(charge_point, stored.originator_version, record.hash)

    def sessions(self) -> Iterator[ChargingSession]:
        """Every charging session, in the order they were opened (a scan: for tools and tests;
        the API reads the sessions projection)."""
        for session_id in self.originators(_topic(ChargingSession)):
            yield self.repository.get(session_id)

    def session_events(self, session_id: UUID) -> list[Any]:
        return list(self.events.get(session_id))

    def quarantine_entries(self) -> Iterator[QuarantineEntry]:
        for entry_id in self.originators(_topic(QuarantineEntry)):
            yield self.repository.get(entry_id)

    def frames(self, charge_point: str, *, after: int = 0) -> Iterator[FrameLog.Recorded]:
        """Every frame of a charge point in order, paged from the store."""
        log_id = FrameLog.create_id(charge_point)
        gt = max(after, 1)
        while True:
            page = self.recorder.select_events(log_id, gt=gt, limit=_PAGE)
            for stored in page:
                record = self.mapper.to_domain_event(stored)
                assert isinstance(record, FrameLog.Recorded)
                yield record
            if len(page) < _PAGE:
                return
            gt = page[-1].originator_version


def build_applications(database: Database, *, cache_size: int = 20_000) -> tuple[Registry, Ledger]:
    registry = Registry(env=database.eventsourcing_env("registry"))
    ledger_env = database.eventsourcing_env("ledger") | {
        "AGGREGATE_CACHE_MAXSIZE": str(cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        # The committer evicts what a failed batch touched, so the cache hands out its own
        # objects instead of deep copies (a session holds hundreds of reading digests).
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }
    if database.backend == POSTGRESQL:
        ledger_env["POSTGRES_POOL_SIZE"] = str(max(database.pool_size, 4))
    ledger = Ledger(env=ledger_env)
    return registry, ledger
