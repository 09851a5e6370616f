"""Small ledger commands that are not OCPP messages: a station's connection opening and
closing, and an operator resolving a quarantine entry. Each is a committer `Unit`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.committer import UnitOfWork
from ledger.errors import LedgerError, NotFound
from ledger.sessions import Connection, QuarantineEntry


@dataclass(frozen=True)
class OpenConnection:
    connection: str
    charge_point: str
    protocol: str
    peer: str
    at: datetime

    def run(self, uow: UnitOfWork) -> None:
        if uow.get(Connection, Connection.create_id(self.connection)) is None:
            uow.add(Connection(
                connection=self.connection, charge_point=self.charge_point,
                protocol=self.protocol, peer=self.peer, at=self.at,
            ))

    def fail(self, uow: UnitOfWork, exc: Exception) -> None:
        raise exc


@dataclass(frozen=True)
class CloseConnection:
    connection: str
    at: datetime

    def run(self, uow: UnitOfWork) -> None:
        found = uow.get(Connection, Connection.create_id(self.connection))
        if found is not None:
            found.close(self.at)

    def fail(self, uow: UnitOfWork, exc: Exception) -> None:
        raise exc


@dataclass(frozen=True)
class ResolveQuarantine:
    """Returns the refusal instead of raising it: a refused command is an answer, not a failure
    of the writer."""

    entry_id: UUID
    resolution: str
    note: str
    by: str

    def run(self, uow: UnitOfWork) -> LedgerError | None:
        entry = uow.get(QuarantineEntry, self.entry_id)
        if entry is None:
            return NotFound("quarantine entry", str(self.entry_id))
        try:
            entry.resolve(self.resolution, self.note, self.by)
        except LedgerError as refused:
            return refused
        return None

    def fail(self, uow: UnitOfWork, exc: Exception) -> LedgerError | None:
        raise exc
