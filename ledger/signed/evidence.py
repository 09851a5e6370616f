"""The file a customer checks a session with: the Transparenzsoftware XML of its begin and end.

One file per transaction, as the Transparenzsoftware wants it: the begin and the end record that
the session's assessment paired (one value when a single record holds both), each with the public
key it verified against (the registered key; else the key the station sent, which the software
then checks). A session whose assessment found no pair gets every signed record it has, so the
customer still sees what there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.signed.curves import curve_named
from ledger.signed.keys import KeyFormatError, parse_public_key
from ledger.signed.transparency import document

BEGIN, END = "Transaction.Begin", "Transaction.End"


def transparency_file(
    records: Sequence[tuple[dict[str, Any], str | None]],
    assessment: dict[str, Any] | None,
    transaction_id: str,
) -> bytes | None:
    """`records`: (verdict, OCPP context) in arrival order. None when nothing signed is there."""
    by_id = {verdict.get("record_id"): (verdict, context) for verdict, context in records}
    tpsid: int | str = transaction_id if transaction_id.strip().isdigit() else 1
    begin = (assessment or {}).get("begin_record")
    end = (assessment or {}).get("end_record")
    chosen: list[tuple[dict[str, Any], str | None]]
    if begin in by_id and end in by_id:
        chosen = (
            [(by_id[end][0], END)]
            if begin == end
            else [(by_id[begin][0], BEGIN), (by_id[end][0], END)]
        )
    else:
        chosen = [(verdict, context) for verdict, context in records]
    values = [
        (tpsid, context, verdict["signed_data"], verdict.get("format"), key_hex(verdict))
        for verdict, context in chosen
        if isinstance(verdict.get("signed_data"), str) and verdict["signed_data"]
    ]
    return document(values) if values else None


def key_hex(verdict: dict[str, Any]) -> str | None:
    """The SPKI (hex) to check the record with: the key it held against, else the claimed one."""
    if verdict.get("format") == "ALFEN":
        return None  # the key travels inside the Alfen line
    key = verdict.get("key") or {}
    if key.get("spki_hex"):
        return str(key["spki_hex"])
    claimed = verdict.get("claimed_key")
    method = str(verdict.get("method") or "").split("-")
    curve = curve_named(method[1]) if len(method) == 3 else None
    if not claimed or curve is None:
        return None
    try:
        return parse_public_key(claimed).spki(curve.name).hex().upper()
    except KeyFormatError:
        return None
