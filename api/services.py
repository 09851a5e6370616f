"""The running parts, built once from the settings: store, applications, committer."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from api.settings import Settings
from invoices.files import InvoiceFiles
from invoices.pricer import Pricer
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
    pricer: Pricer
    files: InvoiceFiles  # the delivered files of issued invoices, as first rendered

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
        pricing = projections["pricing"]
        pricer = Pricer(registry, ledger, committer, pricing.view, priced_sessions=lambda: pricing)
        committer.listeners.append(pricer.wake)
        files = InvoiceFiles(projections["invoices"].view)
        return cls(settings, database, registry, ledger, committer, projections, pricer, files)

    def start(self, *, projections: bool = True) -> None:
        self.committer.start()
        if projections:
            for runner in self.projections.values():
                runner.start()
            self.pricer.start()

    def wait_for_read_models(self, *names: str, timeout: float = 5.0) -> None:
        """Read-after-write: return once the read models (all, or those named) have applied
        what is stored now. All of them: the sessions stored now are priced first (when the
        pricer runs in this process), so the prices are among what the read models show."""
        if not names and self.pricer.running:
            self.pricer.wait(timeout)
        for name, runner in self.projections.items():
            if not names or name in names:
                runner.wait(runner.status().head, timeout)

    def settle_prices(self, timeout: float = 10.0) -> None:
        """Read-after-write for prices: what is stored now is priced, and the priced-sessions
        read model shows it."""
        self.pricer.wait(timeout)
        self.wait_for_read_models("pricing", timeout=timeout)

    def reading(self) -> AbstractContextManager[Cursor]:
        """A cursor on the read models (they share one database)."""
        return self.projections["registry"].view.reading()

    def close(self) -> None:
        self.pricer.stop()
        self.committer.stop()
        for runner in self.projections.values():
            runner.stop()
            runner.view.close()
        self.registry.close()
        self.ledger.close()
