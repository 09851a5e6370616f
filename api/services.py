"""The running parts, built once from the settings: store, applications, committer."""

from __future__ import annotations

from dataclasses import dataclass

from api.settings import Settings
from ledger.application import Ledger, Registry, build_applications
from ledger.committer import GroupCommitter
from ledger.errors import LedgerError
from ledger.store import Database, default_migrations_dir, migration_files, schema_version


@dataclass
class Services:
    settings: Settings
    database: Database
    registry: Registry
    ledger: Ledger
    committer: GroupCommitter

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
        return cls(settings, database, registry, ledger, committer)

    def start(self) -> None:
        self.committer.start()

    def close(self) -> None:
        self.committer.stop()
        self.registry.close()
        self.ledger.close()
