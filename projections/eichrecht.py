"""The Eichrecht read model: per session, how its signed records verified and whether its energy
and time are billable (the latest `Assessed`), for lists and filters without replaying events."""

from __future__ import annotations

import json
from typing import Any

from ledger.sessions import ChargingSession
from projections.view import Cursor, View, topics

NAME = "eichrecht"
TOPICS = topics(ChargingSession, "Opened", "RecordVerified", "ClaimedKeyDiffers", "Assessed")

_COUNTERS = {
    "verified": "records_verified",
    "claimed-key-only": "records_claimed_only",
    "invalid": "records_invalid",
    "unsupported": "records_unsupported",
}


class EichrechtView(View):
    tables = ("rm_session_eichrecht",)


def apply(view: View, cur: Cursor, notifications: list[tuple[int, Any]]) -> None:
    for position, event in notifications:
        session_id = str(event.originator_id)
        if type(event).__name__ == "Opened":
            cur.execute(
                "INSERT INTO rm_session_eichrecht (session_id, charge_point, records, "
                "records_verified, records_claimed_only, records_invalid, records_unsupported, "
                "key_alerts, assessed, position) VALUES (%s, %s, 0, 0, 0, 0, 0, 0, %s, %s)",
                (session_id, event.charge_point, False, position),
            )
        elif isinstance(event, ChargingSession.RecordVerified):
            counter = _COUNTERS.get(str(event.verdict.get("signature")))
            extra = f", {counter} = {counter} + 1" if counter else ""
            cur.execute(
                f"UPDATE rm_session_eichrecht SET records = records + 1{extra}, position = %s "
                "WHERE session_id = %s",
                (position, session_id),
            )
        elif isinstance(event, ChargingSession.ClaimedKeyDiffers):
            cur.execute(
                "UPDATE rm_session_eichrecht SET key_alerts = key_alerts + 1, position = %s "
                "WHERE session_id = %s",
                (position, session_id),
            )
        elif isinstance(event, ChargingSession.Assessed):
            a = event.assessment
            cur.execute(
                "UPDATE rm_session_eichrecht SET assessed = %s, energy_billable = %s, energy = %s, "
                "unit = %s, energy_wh = %s, time_billable = %s, meter = %s, reasons = %s, "
                "time_reasons = %s, position = %s WHERE session_id = %s",
                (True, bool(a.get("energy_billable")), a.get("energy"), a.get("unit"),
                 a.get("energy_wh"), a.get("time_billable"), a.get("meter"),
                 json.dumps(a.get("reasons") or [], ensure_ascii=False),
                 json.dumps(a.get("time_reasons") or [], ensure_ascii=False), position, session_id),
            )

