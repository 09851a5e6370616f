"""A pulling projection runner: reads an application's notification log page by page.

eventsourcing's SQLite recorder cannot be subscribed to, so the runner pulls, on both
backends. It is woken by the group committer after each commit (and polls once a second for
writes of other server processes). Each page is applied in one transaction together with its
tracking record, after checking under lock that no other runner applied it first: several
server processes may run the same projection against one PostgreSQL database.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from projections.view import Cursor, View

log = logging.getLogger(__name__)

Apply = Callable[[View, Cursor, list[tuple[int, Any]]], None]


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


@dataclass(frozen=True)
class Page:
    """Notifications read after `start`, decoded: applying them takes the position to `reached`."""

    start: int
    reached: int
    head: int
    events: list[tuple[int, Any]]


class Runner:
    def __init__(
        self, name: str, app: Application[Any], view: View, topics: tuple[str, ...], apply: Apply,
        *, page: int = 1000,
    ) -> None:
        self.name = name
        self.app = app
        self.view = view
        self.topics = topics
        self.apply = apply
        self.page = page
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def position(self) -> int:
        return self.view.max_tracking_id(self.name) or 0

    def status(self) -> Status:
        return Status(self.name, self.position(), self.app.recorder.max_notification_id() or 0)

    def run_once(self) -> int:
        """Apply the next page; returns how many notifications the position advanced by."""
        page = self._read(self.position())
        return 0 if page is None else self._write(page)

    def _read(self, start: int) -> Page | None:
        """The page after `start`, decoded; None when `start` is at the head. Touches only the
        application, not the view, so it may run in another thread."""
        head = self.app.recorder.max_notification_id() or 0
        if start >= head:
            return None
        stop = min(head, start + self.page * 20)
        notifications = self.app.recorder.select_notifications(
            start=start + 1, limit=self.page, stop=stop, topics=self.topics
        )
        # A full page may end before `stop`; otherwise everything up to `stop` was read.
        reached = notifications[-1].id if len(notifications) == self.page else stop
        decoded = [(n.id, self.app.mapper.to_domain_event(n)) for n in notifications]
        return Page(start, reached, head, decoded)

    def _write(self, page: Page) -> int:
        """Apply a page with its tracking record, unless the position moved past its start."""
        with self.view.transaction() as cur:
            if self._locked_position(cur) != page.start:
                return 0  # another runner applied this page first
            if page.events:
                self.apply(self.view, cur, page.events)
            self.view.track(cur, Tracking(self.name, page.reached))
        return page.reached - page.start

    def _locked_position(self, cur: Cursor) -> int:
        cur.execute(
            "INSERT INTO projection_tracking (projection, notification_id) VALUES (%s, 0) "
            "ON CONFLICT (projection) DO NOTHING",
            (self.name,),
        )
        lock = "" if self.view.database.backend == "sqlite" else " FOR UPDATE"
        row = cur.execute(
            f"SELECT notification_id FROM projection_tracking WHERE projection = %s{lock}",
            (self.name,),
        ).fetchone()
        return int(row[0])

    def catch_up(self, progress: Callable[[Status], None] | None = None) -> int:
        """Apply pages until the head. While a page is written, the next one is read and decoded
        in a second thread: the database works on one while Python works on the other."""
        total = 0
        with ThreadPoolExecutor(1, thread_name_prefix=f"projection-{self.name}-read") as reader:
            page = self._read(self.position())
            while page is not None:
                ahead: Future[Page | None] | None = None
                if page.reached < page.head:
                    ahead = reader.submit(self._read, page.reached)
                advanced = self._write(page)
                if not advanced:
                    return total  # the page read ahead is of no use: it follows a lost page
                total += advanced
                if progress is not None:
                    progress(self.status())
                page = ahead.result() if ahead is not None else self._read(page.reached)
        return total

    def rebuild(self, progress: Callable[[Status], None] | None = None) -> int:
        self.view.reset(self.name)
        # A rebuild makes millions of short-lived objects and no garbage cycles: the cyclic
        # collector would only walk the pages held in memory, again and again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self.catch_up(progress)
        finally:
            if collecting:
                gc.enable()

    def wait(self, notification_id: int, timeout: float = 5.0) -> None:
        """Read-after-write: return once the view has applied up to `notification_id`."""
        if notification_id <= 0:
            return
        self._wake.set()
        self.view.wait(self.name, notification_id, timeout=timeout)

    # -- in the server: a background thread ------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"projection-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
            except Exception:  # noqa: BLE001 - keep projecting; the error is logged
                log.exception("projection %s failed; retrying", self.name)
                self._stop.wait(1.0)
            self._wake.wait(1.0)
            self._wake.clear()
