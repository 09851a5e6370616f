"""The two eventsourcing applications: the registry (what the operator set up) and the ledger
(what charge points sent). Each has its own events table; both live in one database."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder, StoredEvent, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.errors import AlreadyExists, InvalidValue, NotFound
from ledger.frames import GENESIS, FrameLog
from ledger.invoicing import Issuer
from ledger.registry import (
    INVALID,
    ApiKey,
    ChargePoint,
    Customer,
    IdTag,
    MeterKey,
    MeterKeyring,
    NewApiKey,
)
from ledger.sessions import ChargingSession, QuarantineEntry
from ledger.signed.evidence import transparency_file
from ledger.store import POSTGRESQL, Database
from ledger.tariffs import (
    SCOPES,
    Site,
    Tariff,
    TariffAssignments,
    TariffPeriod,
    TariffVersion,
    checked_tariff,
)

A = TypeVar("A", bound=Aggregate)

_PAGE = 500
_TABLE = re.compile(r"^[a-z_]+$")
_KEYS_KEPT = 10_000


class DateAsISO(Transcoding):
    """Calendar dates (an invoice's period and issue date) as ISO 8601 text."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class _Base(Application[UUID]):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def get_or_none(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            found: Any = self.repository.get(aggregate_id, projector_func=_fold)
        except AggregateNotFoundError:
            return None
        if not isinstance(found, cls):
            raise TypeError(f"{aggregate_id} is a {type(found).__name__}, not a {cls.__name__}")
        return found

    @property
    def postgres(self) -> bool:
        return isinstance(self.recorder, PostgresApplicationRecorder)

    def aggregates(self, cls: type[A], ids: Collection[UUID]) -> dict[UUID, A]:
        """Several aggregates, read fresh from the store (not the aggregate cache) in one query
        per `_PAGE` ids; ids of no aggregate are left out."""
        return {i: _folded(cls, i, events) for i, events in self.events_of(ids).items()}

    def events_of(self, ids: Collection[UUID]) -> dict[UUID, list[Any]]:
        """The events of several aggregates, each in order, read in one query per `_PAGE` ids
        (issuing reads 30 sessions for an invoice: one round trip instead of 30)."""
        wanted = sorted(set(ids))
        found: dict[UUID, list[Any]] = {}
        for start in range(0, len(wanted), _PAGE):
            chunk = wanted[start : start + _PAGE]
            marks = ", ".join(["%s"] * len(chunk))
            for aggregate_id, event in self._select(f"originator_id IN ({marks})", chunk):
                found.setdefault(aggregate_id, []).append(event)
        return found

    def _select(self, where: str, params: Sequence[Any]) -> list[tuple[UUID, Any]]:
        """(aggregate id, event) of the stored events `where` holds, by aggregate and version,
        on either store: `where` has `%s` placeholders, UUID parameters are ids."""
        recorder: Any = self.recorder
        table = recorder.events_table_name
        assert _TABLE.match(table), table
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {table} "  # noqa: S608
            f"WHERE {where} ORDER BY originator_id, originator_version"
        )
        if self.postgres:
            with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
                cur.execute(statement, list(params))
                rows = cur.fetchall()
        else:  # ids are stored as hex text
            values = [p.hex if isinstance(p, UUID) else p for p in params]
            with recorder.datastore.transaction(commit=False) as cur:
                cur.execute(statement.replace("%s", "?"), values)
                rows = cur.fetchall()
        found = []
        for row in rows:
            originator = row["originator_id"]
            aggregate_id = originator if isinstance(originator, UUID) else UUID(str(originator))
            stored = StoredEvent(
                originator_id=aggregate_id,
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            found.append((aggregate_id, self.mapper.to_domain_event(stored)))
        return found

    def originators(self, topic_prefix: str) -> Iterator[UUID]:
        """Ids of aggregates whose first event's topic starts with `topic_prefix`, in creation order."""
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=_PAGE)
            for notification in page:
                if notification.originator_version == 1 and notification.topic.startswith(
                    topic_prefix
                ):
                    yield UUID(str(notification.originator_id))
            if len(page) < _PAGE:
                return
            start = page[-1].id + 1


def _topic(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _fold(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate` without its per-event `isinstance` against a runtime
    protocol, which took a quarter of issuing an invoice (its 30 sessions' ~500 events)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _folded(cls: type[A], aggregate_id: UUID, events: list[Any]) -> A:
    aggregate: Any = _fold(None, events)
    if not isinstance(aggregate, cls):
        raise TypeError(f"{aggregate_id} is a {type(aggregate).__name__}, not a {cls.__name__}")
    return aggregate


def transparency_of(session: ChargingSession, events: Sequence[Any]) -> bytes | None:
    """The session's Transparenzsoftware file (`Ledger.transparency_file`) from the session and
    its events as `Ledger.session_with_events` reads them."""
    records = [
        (event.verdict, event.context)
        for event in events
        if isinstance(event, ChargingSession.RecordVerified)
    ]
    return transparency_file(records, session.assessment, session.transaction_id)


class Registry(_Base):
    """Charge points, customers, id tags and API keys. Small, read fresh on every use, so a
    block or a disable made by another process is seen at once. API keys, read on every HTTP
    request, are kept once read; each use checks with one indexed query (no decoding) that no
    event was stored for the key since, so a revocation by another process counts at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys: dict[str, ApiKey] = {}

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

    def describe_charge_point(
        self, name: str, *, label: str | None = None, location: str | None = None,
        site: str | None = None,
    ) -> ChargePoint:
        charge_point = self.charge_point(name)
        if site:
            self.site(site)
        charge_point.describe(label=label, location=location, site=site)
        self.save(charge_point)
        return charge_point

    def charge_points(self) -> list[ChargePoint]:
        prefix = _topic(ChargePoint)
        return [self.repository.get(i) for i in self.originators(prefix)]

    def meter_keyring(self, charge_point: str) -> MeterKeyring | None:
        return self.get_or_none(MeterKeyring, MeterKeyring.create_id(charge_point))

    def register_meter_key(
        self,
        charge_point: str,
        public_key: str,
        *,
        evse_id: int | None = None,
        meter_serial: str | None = None,
        label: str = "",
        at: datetime,
        by: str,
    ) -> MeterKey:
        self.charge_point(charge_point)
        keyring = self.meter_keyring(charge_point) or MeterKeyring(charge_point=charge_point)
        key = keyring.register(
            public_key, evse_id=evse_id, meter_serial=meter_serial, label=label, at=at, by=by
        )
        self.save(keyring)
        return key

    def retire_meter_key(
        self, charge_point: str, fingerprint: str, *, at: datetime, reason: str
    ) -> MeterKey:
        keyring = self.meter_keyring(charge_point)
        if keyring is None:
            raise NotFound("meter key", fingerprint)
        key = keyring.retire(fingerprint, at=at, reason=reason)
        self.save(keyring)
        return key

    def meter_keys(self, charge_point: str) -> list[MeterKey]:
        keyring = self.meter_keyring(charge_point)
        return [] if keyring is None else list(keyring.keys.values())

    # -- tariffs --------------------------------------------------------------------------------

    def tariff(self, code: str) -> Tariff:
        found = self.get_or_none(Tariff, Tariff.create_id(code))
        if found is None:
            raise NotFound("tariff", code)
        return found

    def publish_tariff(
        self,
        data: dict[str, Any],
        *,
        valid_from: datetime | None,
        valid_until: datetime | None,
        at: datetime,
        by: str,
    ) -> tuple[Tariff, TariffVersion]:
        """Validate an OCPI tariff and publish it as a new version of the tariff with its id.
        The version's validity defaults to the tariff's own start/end_date_time, else from now."""
        model, document = checked_tariff(data)
        tariff = self.get_or_none(Tariff, Tariff.create_id(model.id)) or Tariff(
            code=model.id, currency=model.currency
        )
        version = tariff.publish(
            document,
            valid_from=valid_from or model.start_date_time or at,
            valid_until=valid_until if valid_until is not None else model.end_date_time,
            at=at,
            by=by,
        )
        self.save(tariff)
        return tariff, version

    def correct_tariff(
        self, code: str, version: int, data: dict[str, Any], *, at: datetime, by: str
    ) -> tuple[Tariff, TariffVersion]:
        model, document = checked_tariff(data)
        if model.id != code:
            raise InvalidValue(f"id: the correction must keep the tariff's id {code!r}")
        tariff = self.tariff(code)
        corrected = tariff.correct(version, document, at=at, by=by)
        self.save(tariff)
        return tariff, corrected

    def end_tariff_version(
        self, code: str, version: int, *, valid_until: datetime, at: datetime, by: str
    ) -> tuple[Tariff, TariffVersion]:
        tariff = self.tariff(code)
        ended = tariff.end(version, valid_until=valid_until, at=at, by=by)
        self.save(tariff)
        return tariff, ended

    # -- sites and tariff assignments -----------------------------------------------------------

    def site(self, code: str) -> Site:
        found = self.get_or_none(Site, Site.create_id(code))
        if found is None:
            raise NotFound("site", code)
        return found

    def create_site(self, code: str, *, name: str, time_zone: str, calibrated: bool) -> Site:
        if self.get_or_none(Site, Site.create_id(code)) is not None:
            raise AlreadyExists("site", code)
        site = Site.create(code, name=name, time_zone=time_zone, calibrated=calibrated)
        self.save(site)
        return site

    def update_site(
        self, code: str, *, name: str | None = None, time_zone: str | None = None,
        calibrated: bool | None = None,
    ) -> Site:
        site = self.site(code)
        site.update(name=name, time_zone=time_zone, calibrated=calibrated)
        self.save(site)
        return site

    def assign_tariff(
        self, scope: str, key: str, tariff: str, *, valid_from: datetime | None,
        valid_until: datetime | None,
    ) -> TariffAssignments:
        """Assign a tariff to a customer, a customer group, a charge point or a site, for a
        period that overlaps none of that scope's other periods."""
        key = self._check_scope(scope, key)
        self.tariff(tariff)
        assignments = self.get_or_none(
            TariffAssignments, TariffAssignments.create_id(scope, key)
        ) or TariffAssignments(scope=scope, key=key)
        assignments.assign(tariff, valid_from=valid_from, valid_until=valid_until)
        self.save(assignments)
        return assignments

    def end_tariff_assignment(self, scope: str, key: str, *, valid_until: datetime) -> TariffAssignments:
        key = self._check_scope(scope, key)
        assignments = self.get_or_none(TariffAssignments, TariffAssignments.create_id(scope, key))
        if assignments is None:
            raise NotFound(f"{scope} tariff assignment", key)
        assignments.end(valid_until=valid_until)
        self.save(assignments)
        return assignments

    def tariff_assignments(self, scope: str, key: str) -> list[TariffPeriod]:
        key = self._check_scope(scope, key)
        found = self.get_or_none(TariffAssignments, TariffAssignments.create_id(scope, key))
        return [] if found is None else list(found.periods)

    def tariff_for(
        self, charge_point: str, customer_id: UUID | None, when: datetime
    ) -> tuple[str, str, str] | None:
        """(scope, key, tariff code) that prices a session of this customer at this charge point
        starting at `when`: the customer's own, the group's, the charge point's, the site's."""
        candidates: list[tuple[str, str]] = []
        if customer_id is not None:
            customer = self.get_or_none(Customer, customer_id)
            candidates.append(("customer", str(customer_id)))
            if customer is not None and customer.group:
                candidates.append(("group", customer.group))
        candidates.append(("charge-point", charge_point))
        found = self.find_charge_point(charge_point)
        if found is not None and found.site:
            candidates.append(("site", found.site))
        for scope, key in candidates:
            assignments = self.get_or_none(TariffAssignments, TariffAssignments.create_id(scope, key))
            tariff = assignments.tariff_at(when) if assignments is not None else None
            if tariff is not None:
                return scope, key, tariff
        return None

    def _check_scope(self, scope: str, key: str) -> str:
        """The scope's key as ids are made of it (a customer id in its one spelling)."""
        if scope == "customer":
            try:
                customer_id = UUID(key)
            except ValueError:
                raise NotFound("customer", key) from None
            self.customer(customer_id)
            return str(customer_id)
        if scope == "charge-point":
            self.charge_point(key)
        elif scope == "site":
            self.site(key)
        elif scope == "group":
            if not key.strip() or len(key) > 64:
                raise InvalidValue("a customer group is named by 1 to 64 characters")
        else:
            raise InvalidValue(f"scope is one of {', '.join(SCOPES)}")
        return key

    def add_id_tag(
        self, token: str, *, label: str = "", expires_at: datetime | None = None
    ) -> IdTag:
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

    def id_tag_by_id(self, tag_id: UUID) -> IdTag:
        found = self.get_or_none(IdTag, tag_id)
        if found is None:
            raise NotFound("id tag", str(tag_id))
        return found

    def assign_id_tag(
        self,
        token: str,
        customer_id: UUID,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        label: str | None = None,
        kind: str | None = None,
    ) -> IdTag:
        """Give a tag (new or known) to a customer for a period."""
        self.customer(customer_id)
        tag = self.get_or_none(IdTag, IdTag.create_id(token)) or IdTag.add(token)
        tag.describe(label=label, kind=kind)
        tag.assign(customer_id, valid_from, valid_until)
        self.save(tag)
        return tag

    def change_id_tag(
        self,
        tag_id: UUID,
        *,
        blocked: bool | None = None,
        label: str | None = None,
        kind: str | None = None,
        end_assignment_at: datetime | None = None,
    ) -> IdTag:
        tag = self.id_tag_by_id(tag_id)
        if blocked is True:
            tag.block()
        elif blocked is False:
            tag.unblock()
        tag.describe(label=label, kind=kind)
        if end_assignment_at is not None:
            tag.end_assignment(end_assignment_at)
        self.save(tag)
        return tag

    # -- issuers ---------------------------------------------------------------------------------

    def register_issuer(self, code: str, **fields: Any) -> Issuer:
        if self.get_or_none(Issuer, Issuer.create_id(code)) is not None:
            raise AlreadyExists("issuer", code)
        issuer = Issuer.register(code, **fields)
        self.save(issuer)
        return issuer

    def issuer(self, code: str) -> Issuer:
        found = self.get_or_none(Issuer, Issuer.create_id(code))
        if found is None:
            raise NotFound("issuer", code)
        return found

    def update_issuer(self, code: str, **fields: Any) -> Issuer:
        issuer = self.issuer(code)
        issuer.update(**fields)
        self.save(issuer)
        return issuer

    # -- customers ------------------------------------------------------------------------------

    def register_customer(self, **fields: Any) -> Customer:
        customer = Customer.register(**fields)
        self.save(customer)
        return customer

    def customer(self, customer_id: UUID) -> Customer:
        found = self.get_or_none(Customer, customer_id)
        if found is None:
            raise NotFound("customer", str(customer_id))
        return found

    def update_customer(self, customer_id: UUID, **fields: Any) -> Customer:
        customer = self.customer(customer_id)
        customer.update(**fields)
        self.save(customer)
        return customer

    # -- API keys -------------------------------------------------------------------------------

    def issue_api_key(
        self,
        *,
        name: str,
        role: str,
        customer_id: UUID | None = None,
        expires_at: datetime | None = None,
    ) -> NewApiKey:
        if customer_id is not None:
            self.customer(customer_id)
        issued = ApiKey.issue(name=name, role=role, customer_id=customer_id, expires_at=expires_at)
        self.save(issued.key)
        return issued

    def api_key(self, key_id: str) -> ApiKey:
        found = self.get_or_none(ApiKey, ApiKey.create_id(key_id))
        if found is None:
            raise NotFound("api key", key_id)
        return found

    def revoke_api_key(self, key_id: str) -> ApiKey:
        key = self.api_key(key_id)
        key.revoke()
        self.save(key)
        return key

    def authenticate(self, token: str, now: datetime) -> ApiKey | None:
        """The key a bearer token belongs to, if it is valid now (read fresh: a revocation by
        another process counts at once)."""
        key_id = ApiKey.key_id_of(token)
        if key_id is None:
            return None
        key = self._keys.get(key_id)
        if key is None or self.recorder.select_events(key.id, gt=key.version, limit=1):
            # Unknown here, or changed since (revoked): read it from the store.
            key = self.get_or_none(ApiKey, ApiKey.create_id(key_id))
            if key is None:
                return None
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
            self._keys[key_id] = key
        return key if key.accepts(token, now) else None


class Ledger(_Base):
    """Frames, charging sessions and the quarantine. Written by the group committer only: its
    aggregate cache holds sessions (frame chains are tracked by the committer as their tails),
    is updated on save, and a write that raced another process fails on the (id, version) key
    and is retried from the store."""

    def current(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate as stored now, for readers. The aggregate cache is the committer's: it
        knows this process's writes, not those of the other server processes sharing the store
        (a session another process ended, a price it recorded), so a reader must not trust it."""
        return self.aggregates(cls, [aggregate_id]).get(aggregate_id)

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

    def session_with_events(self, session_id: UUID) -> tuple[ChargingSession, list[Any]] | None:
        """The session and its events, read once (the aggregate is folded from them)."""
        return self.sessions_with_events([session_id]).get(session_id)

    def sessions_with_events(
        self, session_ids: Collection[UUID]
    ) -> dict[UUID, tuple[ChargingSession, list[Any]]]:
        """Several sessions and their events (`events_of`); unknown ids are left out."""
        return {
            i: (_folded(ChargingSession, i, events), events)
            for i, events in self.events_of(session_ids).items()
        }

    def transparency_file(self, session_id: UUID) -> bytes | None:
        """The session's begin and end signed records as a Transparenzsoftware file; None when
        the session holds no signed data. Raises NotFound for an unknown session."""
        found = self.session_with_events(session_id)
        if found is None:
            raise NotFound("session", str(session_id))
        return transparency_of(*found)

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

    def frames_at(self, charge_point: str, seqs: list[int]) -> list[FrameLog.Recorded]:
        """The frames of a charge point at these sequence numbers, in order, in one query
        (a session's evidence: scattered frames among the station's other traffic)."""
        wanted = sorted({s for s in seqs if s > 1})
        if not wanted:
            return []
        marks = ", ".join(["%s"] * len(wanted))
        found = []
        for _, record in self._select(
            f"originator_id = %s AND originator_version IN ({marks})",
            [FrameLog.create_id(charge_point), *wanted],
        ):
            assert isinstance(record, FrameLog.Recorded)
            found.append(record)
        return found



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
