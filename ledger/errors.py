"""One root exception for the write model; each subclass carries the ids it is about."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""


class NotFound(LedgerError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class AlreadyExists(LedgerError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} already exists")
        self.kind = kind
        self.key = key


class Conflict(LedgerError):
    """The command contradicts what is stored (an overlapping period, a resolved entry)."""


class InvalidValue(LedgerError):
    """A value that the domain refuses (empty id, float money, naive datetime, ...)."""


class StoreUnavailable(LedgerError):
    """The event store could not be reached or refused the write."""
