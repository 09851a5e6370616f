"""What an auditor hands in, taken apart into signed records, and a verdict on each.

Recognised, by the first character that is not white space:

- `<`: a Transparenzsoftware input file (`<values>`), or an EMH/Mennekes `<signedMeterValue>` on
  its own (reported unsupported);
- `{` or `[`: JSON, or JSON lines (one document a line). An OCPP 2.x `signedMeterValue` object and
  the OCA application note's wrapper (both carry `signedMeterData`) are one record each; so is an
  OCPP 1.6 `SampledValue` with `format: "SignedData"`, whose `value` is the signed data (plain,
  hex, base64 or the wrapper). Anything else is walked for those: a MeterValues, StopTransaction
  or TransactionEvent payload, an OCPP-J frame, a list of them, a trace or the evidence export
  (where a frame is JSON text inside a string);
- anything else: UTF-8 text, one signed record (an OCMF string, an Alfen line, hex or base64 of
  one) a line.

Nothing here raises on bad input: a file that cannot be read, or holds nothing signed, is one
record whose verdict says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.signed import transparency
from ledger.signed.keys import PublicKey
from ledger.signed.verify import Signature, Verdict, examine

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_RECORDS = 10_000
# JSON inside a JSON string (the frame text in the evidence export) is read to this depth.
_MAX_EMBEDDED = 3


@dataclass(frozen=True)
class Input:
    data: str
    claimed_key: str | None  # the key that came with the data: a claim, not a trust anchor
    label: str  # where in the file the record was
    verdict: Verdict | None = None  # decided while reading: unreadable, or nothing signed


def verify_file(content: bytes, registered_keys: Sequence[PublicKey] = ()) -> list[dict[str, Any]]:
    """One verdict (`Verdict.to_json()` with the record's `label`) per record in the file."""
    return [
        {"label": item.label, **_verdict(item, registered_keys).to_json()}
        for item in records_in(content)
    ]


def _verdict(item: Input, registered_keys: Sequence[PublicKey]) -> Verdict:
    if item.verdict is not None:
        return item.verdict
    try:
        return examine(item.data, item.claimed_key, registered_keys)
    except UnicodeError:
        # JSON can spell unpaired surrogates (\ud800), which no signed byte string contains.
        return Verdict("unknown", Signature.INVALID, "the signed data is not valid Unicode text")


def records_in(content: bytes) -> list[Input]:
    try:
        found = _records(content)
    except RecursionError:
        return [_unreadable("file", "the file is nested too deeply")]
    if len(found) > MAX_RECORDS:
        rest = f"the file holds more than {MAX_RECORDS} records; the rest were not checked"
        found = [*found[:MAX_RECORDS], _unreadable(f"records after {MAX_RECORDS}", rest)]
    return found


def _records(content: bytes) -> list[Input]:
    if len(content) > MAX_FILE_BYTES:
        return [_unreadable("file", f"the file is larger than {MAX_FILE_BYTES} bytes")]
    content = content.removeprefix(b"\xef\xbb\xbf")
    start = content.lstrip()[:1]
    if not start:
        return [_nothing("file", "the file is empty")]
    if start == b"<":
        return _from_xml(content)
    if start in (b"{", b"["):
        found = _from_json(content)
        if found is not None:
            return found
    return _from_text(content)


def _from_xml(content: bytes) -> list[Input]:
    try:
        entries = transparency.read(content)
    except transparency.TransparencyFileError as error:
        return [_unreadable("file", str(error))]
    if not entries:
        return [_nothing("file", "the XML holds no <value>")]
    return [
        Input(entry.data, entry.public_key, entry.label)
        if entry.problem is None
        else _unreadable(entry.label, entry.problem)
        for entry in entries
    ]


def _from_json(content: bytes) -> list[Input] | None:
    """The records of a JSON document or of JSON lines; None if it is neither."""
    documents: list[tuple[str, Any]] = []
    try:
        documents.append(("$", json.loads(content)))
    except RecursionError:
        return [_unreadable("file", "the JSON is nested too deeply")]
    except ValueError:
        for number, line in enumerate(content.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                documents.append((f"line {number} $", json.loads(line)))
            except RecursionError:
                return [_unreadable(f"line {number}", "the JSON is nested too deeply")]
            except ValueError:
                return None
    return _walk(documents) or [_nothing("file", "no signed meter value in the JSON")]


def _walk(documents: list[tuple[str, Any]]) -> list[Input]:
    """Signed values in document order (an explicit stack: JSON may nest deeper than Python)."""
    found: list[Input] = []
    stack: list[tuple[str, Any, int]] = [(path, doc, 0) for path, doc in reversed(documents)]
    while stack:
        path, node, embedded = stack.pop()
        if isinstance(node, dict):
            if "signedMeterData" in node:  # OCPP 2.x signedMeterValue, or the OCA wrapper
                found.append(Input(json.dumps(node, ensure_ascii=False), None, path))
            elif _is_signed_sampled_value(node):  # OCPP 1.6
                found.append(_sampled_value(path, node["value"]))
            else:
                items = [(f"{path}.{key}", child, embedded) for key, child in node.items()]
                stack.extend(reversed(items))
        elif isinstance(node, list):
            items = [(f"{path}[{i}]", child, embedded) for i, child in enumerate(node)]
            stack.extend(reversed(items))
        elif isinstance(node, str) and embedded < _MAX_EMBEDDED and _looks_like_json(node):
            try:
                inner = json.loads(node)
            except (ValueError, RecursionError):
                continue
            stack.append((f"{path}:$", inner, embedded + 1))
    return found


def _is_signed_sampled_value(node: dict[str, Any]) -> bool:
    form = node.get("format")
    return isinstance(form, str) and form.lower() == "signeddata" and "value" in node


def _sampled_value(path: str, value: Any) -> Input:
    if isinstance(value, str):
        return Input(value, None, path)
    if isinstance(value, dict):
        return Input(json.dumps(value, ensure_ascii=False), None, path)
    return _unreadable(path, "the SignedData sampled value's value is not text")


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    return stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]")


def _from_text(content: bytes) -> list[Input]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return [_unreadable("file", "the file is neither XML, JSON nor UTF-8 text")]
    # Only "\n" ends a line: str.splitlines would also split at characters a signed string may
    # hold (U+2028, form feed, ...).
    found = [
        Input(line.strip(), None, f"line {number}")
        for number, line in enumerate(text.split("\n"), 1)
        if line.strip()
    ]
    return found or [_nothing("file", "the file holds only white space")]


def _unreadable(label: str, reason: str) -> Input:
    return Input("", None, label, Verdict("unknown", Signature.INVALID, reason))


def _nothing(label: str, reason: str) -> Input:
    return Input("", None, label, Verdict("none", Signature.NO_SIGNED_DATA, reason))
