"""The running parts, built once from the settings: store, applications, committer."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from api.settings import Settings
from ledger.application import Ledger, Registry, build_applications
from ledger.committer import GroupCommitter
from ledger.errors import LedgerError
from ledger.store import Database, default_migrations_dir, migration_files, schema_version
from projections import build_runners
from projections.runner import Runner
from projections.view import Cursor


@dataclass
class Services:
    settings: Settings
    database: Database
    registry: Registry
    ledger: Ledger
    committer: GroupCommitter
    projections: dict[str, Runner]

    @classmethod
    def build(cls, settings: Settings, *, check_schema: bool = True) -> Services:
        database = Database.from_url(settings.database_url, pool_size=settings.db_pool_size)
        if check_schema:
            expected = len(migration_files(default_migrations_dir(), database.backend))
            found = schema_version(database)
            if found < expected:
                raise LedgerError(
                    f"the database is at schema version {found}, this code needs {expected}: "
                    "run `ladebuch migrate` first"
                )
        registry, ledger = build_applications(database, cache_size=settings.aggregate_cache_size)
        committer = GroupCommitter(registry, ledger, backend=database.backend)
        projections = build_runners(database, ledger, registry)
        for runner in projections.values():
            committer.listeners.append(runner.wake)
        return cls(settings, database, registry, ledger, committer, projections)

    def start(self, *, projections: bool = True) -> None:
        self.committer.start()
        if projections:
            for runner in self.projections.values():
                runner.start()

    def wait_for_read_models(self, *names: str, timeout: float = 5.0) -> None:
        """Read-after-write: return once the read models (all, or those named) have applied
        what is stored now."""
        for name, runner in self.projections.items():
            if not names or name in names:
                runner.wait(runner.status().head, timeout)

    def reading(self) -> AbstractContextManager[Cursor]:
        """A cursor on the read models (they share one database)."""
        return self.projections["registry"].view.reading()

    def close(self) -> None:
        self.committer.stop()
        for runner in self.projections.values():
            runner.stop()
            runner.view.close()
        self.registry.close()
        self.ledger.close()
