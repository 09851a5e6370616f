"""Read models built from the event store, each rebuildable from event 0.

`runner.Runner` pulls the ledger's notification log into a `view.View` (tables owned by
`migrations/`, written in one transaction with their tracking record). `build_runners` lists
every projection the server keeps up to date.
"""

from __future__ import annotations

from ledger.application import Ledger
from ledger.store import Database
from projections import sessions
from projections.runner import Runner


def build_runners(database: Database, ledger: Ledger) -> dict[str, Runner]:
    return {
        sessions.NAME: Runner(
            sessions.NAME, ledger, sessions.SessionsView(database), sessions.TOPICS, sessions.apply
        ),
    }
