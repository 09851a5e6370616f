"""What a charging session costs: the price record beside its evidence.

The session itself stays evidence only; its price is a second aggregate with an id derived from
the session's, so pricing never contends with a station's late messages for the session's
version. The first outcome is `Priced` (or `Unpriced`, with the reason: a session the evidence
does not support is never priced at 0). A re-pricing (a corrected tariff version, changed
evidence, an operator's decision) is a further `Priced`/`Unpriced` event whose `replaces` names
the version of the event it supersedes; nothing is edited, and the history stays readable.

An outcome is a JSON object built by `invoices.pricer`: the tariff id and version that applied,
with its assignment scope, every component's billed quantity, unit price, VAT rate and amounts
excl./incl. VAT (exact decimal strings), the energy's source and the notes. Recording the same
outcome again adds nothing, so a retried or repeated pricing is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import session_price_id

PRICED = "priced"
UNPRICED = "unpriced"


class SessionPrice(Aggregate):
    @staticmethod
    def create_id(session_id: UUID) -> UUID:
        return session_price_id(str(session_id))

    @event("Opened")
    def __init__(self, session_id: UUID) -> None:
        self.session_id = str(session_id)
        self.outcome: dict[str, Any] | None = None
        self.outcome_version: int | None = None  # the aggregate version of the current outcome

    def record(self, outcome: dict[str, Any], *, cause: str, by: str, at: datetime) -> bool:
        """Record an outcome; False when it is the current one already (a retry, a repeat)."""
        if outcome.get("status") not in (PRICED, UNPRICED):
            raise ValueError("an outcome is priced or unpriced")
        if outcome == self.outcome:
            return False
        kind = self.Priced if outcome["status"] == PRICED else self.Unpriced
        self.trigger_event(
            kind, outcome=outcome, replaces=self.outcome_version, cause=cause, by=by, at=at
        )
        return True

    class Priced(Aggregate.Event):
        outcome: dict[str, Any]
        replaces: int | None
        cause: str
        by: str
        at: datetime

        def apply(self, aggregate: SessionPrice) -> None:
            aggregate.outcome = self.outcome
            aggregate.outcome_version = self.originator_version

    class Unpriced(Priced):
        pass
