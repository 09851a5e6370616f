"""Group commit: one writer thread turns many concurrent commands into one transaction.

Charge points wait for each answer, and an answer may only be sent after its events are
durable. Committing each message alone serialises every charge point on the event table's lock
(eventsourcing takes it so notification ids follow commit order), so the writer takes whatever
commands queued up while the previous transaction was committing and saves them together.
Nothing waits on a timer: under low load a batch is one command, under high load it grows.

A command is a `Unit`: `run(uow)` loads aggregates through the `UnitOfWork`, changes them and
returns the answer. Units must be re-runnable: if the batch's save fails because another process
wrote the same aggregate first, or one unit raises, the touched aggregates are evicted from the
cache and each unit runs again alone. A unit whose `run` raises gets `fail(uow, exc)`, which
records what must be recorded anyway (the frames and the error answer).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, PersistenceError

from ledger.application import Ledger, Registry
from ledger.errors import StoreUnavailable
from ledger.frames import FrameLog
from ledger.store import POSTGRESQL

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
A = TypeVar("A", bound=Aggregate)

MAX_BATCH = 512
_ATTEMPTS = 3


class Unit(Protocol[T_co]):
    def run(self, uow: UnitOfWork) -> T_co: ...

    def fail(self, uow: UnitOfWork, exc: Exception) -> T_co: ...


class UnitOfWork:
    """The aggregates one batch touches; saved together by the committer."""

    def __init__(self, committer: GroupCommitter) -> None:
        self._committer = committer
        self.ledger = committer.ledger
        self.registry = committer.registry
        self._touched: dict[UUID, Aggregate] = {}

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        found = self._touched.get(aggregate_id)
        if found is None:
            found = self.ledger.get_or_none(cls, aggregate_id)
            if found is None:
                return None
            self._touched[aggregate_id] = found
        if not isinstance(found, cls):
            raise TypeError(f"{aggregate_id} is a {type(found).__name__}, not a {cls.__name__}")
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._touched[aggregate.id] = aggregate

    def frame_log(self, charge_point: str) -> FrameLog:
        log_id = FrameLog.create_id(charge_point)
        found: Any = self._touched.get(log_id)
        if found is None:
            tail = self._committer.tails.get(charge_point)
            if tail is not None:
                found = FrameLog.resume(charge_point, *tail)
            else:
                # Not known here yet: load the tail only, never the whole chain.
                found = self.ledger.frame_log_tail(charge_point) or FrameLog(charge_point)
            self._touched[log_id] = found
        assert isinstance(found, FrameLog)
        return found

    def allocate_transaction_id(self, start_key: str, charge_point: str) -> int:
        return self._committer.allocate_transaction_id(start_key, charge_point)

    def touched(self) -> list[Aggregate]:
        return list(self._touched.values())


@dataclass
class _Item(Generic[T]):
    unit: Unit[T]
    future: Future[T] = field(default_factory=Future)


_STOP = object()


class GroupCommitter:
    def __init__(self, registry: Registry, ledger: Ledger, *, backend: str) -> None:
        self.registry = registry
        self.ledger = ledger
        self.backend = backend
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="ladebuch-committer", daemon=True)
        # charge point -> (version, hash) of the last committed frame. A chain's tail is all a
        # new frame needs; keeping just that (not the aggregate in the repository cache) keeps
        # a connected station small. A tail made stale by another process fails on the
        # (id, version) key, is dropped and reloaded.
        self.tails: dict[str, tuple[int, str]] = {}
        self.batches = 0
        self.units = 0
        # Called (on the writer thread) after every commit: read models wake up with it.
        self.listeners: list[Callable[[], None]] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def submit(self, unit: Unit[T]) -> Future[T]:
        item: _Item[T] = _Item(unit)
        self._queue.put(item)
        return item.future

    def run_now(self, unit: Unit[T]) -> T:
        """Run one unit and wait for its commit (for the CLI and tests)."""
        if self._thread.is_alive():
            return self.submit(unit).result()
        item: _Item[T] = _Item(unit)
        self._process([item])
        return item.future.result()

    # -- the writer thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._process(batch)
            except Exception as exc:  # noqa: BLE001 - the writer must survive anything
                log.exception("committer batch failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
            if stop:
                return

    def _process(self, batch: list[_Item[Any]]) -> None:
        uow = UnitOfWork(self)
        try:
            results = [item.unit.run(uow) for item in batch]
            self._save(uow)
        except Exception as exc:  # noqa: BLE001 - whatever failed, no unsaved change may stay cached
            # Saving collects the pending events, which advances the cached aggregates: they
            # are evicted before anything else reads them, then each unit runs again alone.
            self._evict(uow)
            if isinstance(exc, PersistenceError) and not isinstance(exc, IntegrityError):
                # The store is unreachable (the recorder has already retried): no answers.
                log.error("event store write failed: %s", exc)
                for item in batch:
                    item.future.set_exception(StoreUnavailable(str(exc)))
                return
            if len(batch) == 1:
                self._process_one(batch[0])
            else:
                for item in batch:
                    self._process_one(item)
            return
        self.batches += 1
        self.units += len(batch)
        for item, result in zip(batch, results):
            item.future.set_result(result)
        self._notify()

    def _process_one(self, item: _Item[Any]) -> None:
        """Run one unit alone: retry a lost race; if it cannot be saved for another reason,
        record what `fail` records instead (the frame and an error answer)."""
        failure: Exception | None = None
        for _attempt in range(_ATTEMPTS):
            uow = UnitOfWork(self)
            try:
                if failure is None:
                    result = item.unit.run(uow)
                else:
                    result = item.unit.fail(uow, failure)
                self._save(uow)
            except IntegrityError:
                self._evict(uow)  # another process wrote first: run again on fresh state
                continue
            except PersistenceError as exc:
                self._evict(uow)
                log.error("event store write failed: %s", exc)
                item.future.set_exception(StoreUnavailable(str(exc)))
                return
            except Exception as exc:  # noqa: BLE001 - recorded through fail()
                self._evict(uow)
                if failure is not None:
                    log.exception("could not record the failure of a unit either")
                    item.future.set_exception(exc)
                    return
                log.exception("unit failed; recording the failure instead")
                failure = exc
                continue
            self.batches += 1
            self.units += 1
            item.future.set_result(result)
            self._notify()
            return
        item.future.set_exception(StoreUnavailable("write conflict persisted after retries"))

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _save(self, uow: UnitOfWork) -> None:
        logs: list[FrameLog] = []
        saving: list[Any] = []
        for aggregate in uow.touched():
            if not aggregate.pending_events:
                continue
            if isinstance(aggregate, FrameLog):
                logs.append(aggregate)
                saving.extend(aggregate.collect_events())  # saved as events: not cached whole
            else:
                saving.append(aggregate)
        if saving:
            self.ledger.save(*saving)
        for frame_log in logs:
            self.tails[frame_log.charge_point] = (frame_log.version, frame_log.last_hash)

    def _evict(self, uow: UnitOfWork) -> None:
        cache = self.ledger.repository.cache
        for aggregate in uow.touched():
            if isinstance(aggregate, FrameLog):
                self.tails.pop(aggregate.charge_point, None)
            elif cache is not None:
                try:
                    cache.get(aggregate.id, evict=True)
                except KeyError:
                    pass

    # -- OCPP 1.6 transaction ids ---------------------------------------------------------------

    def allocate_transaction_id(self, start_key: str, charge_point: str) -> int:
        """The integer id for this start: a new one, or the one a repeated start got before."""
        datastore: Any = self.ledger.recorder.datastore  # type: ignore[attr-defined]
        if self.backend == POSTGRESQL:
            with datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(
                    "INSERT INTO ocpp16_transaction_ids (start_key, charge_point) VALUES (%s, %s) "
                    "ON CONFLICT (start_key) DO UPDATE SET start_key = EXCLUDED.start_key "
                    "RETURNING transaction_id",
                    (start_key, charge_point),
                )
                row = curs.fetchone()
                return int(row["transaction_id"])
        with datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO ocpp16_transaction_ids (start_key, charge_point) VALUES (?, ?) "
                "ON CONFLICT (start_key) DO NOTHING",
                (start_key, charge_point),
            )
            curs.execute(
                "SELECT transaction_id FROM ocpp16_transaction_ids WHERE start_key = ?", (start_key,)
            )
            return int(curs.fetchone()[0])
