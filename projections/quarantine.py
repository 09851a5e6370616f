"""The quarantine read model: messages kept but not applied, and how operators resolved them."""

from __future__ import annotations

from typing import Any

from ledger.sessions import QuarantineEntry
from projections.view import Cursor, View, topics

NAME = "quarantine"
TOPICS = topics(QuarantineEntry, "Quarantined", "Resolved")


class QuarantineView(View):
    tables = ("rm_quarantine",)


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    for position, event in notifications:
        entry_id = str(event.originator_id)
        if type(event).__name__ == "Quarantined":
            cur.execute(
                "INSERT INTO rm_quarantine (entry_id, charge_point, action, protocol, message_id, "
                "transaction_id, reason, frame_seq, frame_hash, quarantined_at, resolved, position) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (entry_id, event.charge_point, event.action, event.protocol, event.message_id,
                 event.transaction_id, event.reason, event.source_frame["seq"],
                 event.source_frame["hash"], event.timestamp, False, position),
            )
        else:
            cur.execute(
                "UPDATE rm_quarantine SET resolved = %s, resolution = %s, note = %s, "
                "resolved_by = %s, resolved_at = %s WHERE entry_id = %s",
                (True, event.resolution, event.note, event.by, event.timestamp, entry_id),
            )
