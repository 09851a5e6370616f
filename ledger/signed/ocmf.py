"""OCMF (Open Charge Metering Format, versions 0.1 to 1.4): split, parse, read.

`OCMF|{payload}|{signature}`. The signature covers SHA-256 of the payload bytes exactly as they
came, so the payload is found by walking its JSON object to the closing brace (a `|` inside a
signed string such as `TT` must not split it) and is never re-serialised. Numbers are read as
Decimal from their own text, so `2935.600` stays `2935.600`. Readings may omit a field equal to the
previous reading's: `readings()` carries those forward.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_OCMF_BYTES = 64 * 1024  # OCPP 2.1 allows 32768 characters of base64; real records are < 3 kB
DEFAULT_SIGNATURE_METHOD = "ECDSA-secp256r1-SHA256"
IDENTIFICATION_ERRORS = frozenset({"MISMATCH", "INVALID", "OUTDATED", "UNKNOWN"})
END_TYPES = frozenset("ELRAP")
READING_FIELDS = ("TM", "TX", "RV", "RI", "RU", "RT", "CL", "EF", "ST")


class OcmfError(ValueError):
    """The text is not OCMF we can read; the message says what is wrong, for the verdict."""


@dataclass(frozen=True)
class Ocmf:
    payload_bytes: bytes
    payload: dict[str, Any]
    signature: dict[str, Any]

    @property
    def signature_method(self) -> str:
        method = self.signature.get("SA", DEFAULT_SIGNATURE_METHOD)
        return method if isinstance(method, str) else ""

    @property
    def signature_encoding(self) -> str:
        encoding = self.signature.get("SE", "hex")
        return encoding if isinstance(encoding, str) else ""

    @property
    def signature_mime(self) -> str:
        mime = self.signature.get("SM", "application/x-der")
        return mime if isinstance(mime, str) else ""

    def text(self, key: str) -> str | None:
        value = self.payload.get(key)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Reading:
    time: datetime | None
    time_status: str | None  # U unknown, I informative, S synchronised, R relative
    time_text: str | None
    type: str | None  # TX
    value: Decimal | None
    value_text: str | None
    obis: str | None
    unit: str | None
    current_type: str | None
    cumulated_loss: Decimal | None
    error_flags: str
    status: str | None


def split(data: bytes) -> tuple[bytes, bytes]:
    """(payload bytes, signature bytes) of `OCMF|{...}|{...}`."""
    if len(data) > MAX_OCMF_BYTES:
        raise OcmfError(f"the OCMF record is longer than {MAX_OCMF_BYTES} bytes")
    if not data.startswith(b"OCMF|"):
        raise OcmfError("the record does not start with 'OCMF|'")
    end = _object_end(data, 5)
    if end is None:
        raise OcmfError("the payload is not one complete JSON object")
    if data[end : end + 1] != b"|":
        raise OcmfError("no '|' after the payload")
    return data[5:end], data[end + 1 :].strip()


def _object_end(data: bytes, start: int) -> int | None:
    if data[start : start + 1] != b"{":
        return None
    depth, in_string, escaped = 0, False, False
    for position in range(start, len(data)):
        byte = data[position]
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
        elif byte in (0x7D, 0x5D):
            depth -= 1
            if depth == 0:
                return position + 1
    return None


def parse(data: bytes) -> Ocmf:
    payload_bytes, signature_bytes, payload = _split_valid(data) or _split_careful(data)
    signature = _json_object(signature_bytes, "signature section") if signature_bytes else {}
    return Ocmf(payload_bytes, payload, signature)


def _split_careful(data: bytes) -> tuple[bytes, bytes, dict[str, Any]]:
    payload_bytes, signature_bytes = split(data)
    return payload_bytes, signature_bytes, _json_object(payload_bytes, "payload")


def _split_valid(data: bytes) -> tuple[bytes, bytes, dict[str, Any]] | None:
    """split and the payload's parse in one pass of the C JSON scanner, or None.

    A payload that is valid JSON ends exactly where split's bracket count ends it, so for the
    common case this gives the same bytes and the same object several times faster than walking
    the bytes in Python. Anything else (invalid JSON or UTF-8, NaN, deep nesting, no '|' after
    the payload) returns None and takes the careful path, whose errors are the ones reported.
    """
    if len(data) > MAX_OCMF_BYTES or not data.startswith(b"OCMF|{"):
        return None
    try:
        text = data.decode("utf-8")
        payload, end = _DECODER.raw_decode(text, 5)
    except (ValueError, RecursionError, ArithmeticError):  # ArithmeticError: InvalidOperation
        return None
    if not data.isascii():
        end = len(text[:end].encode("utf-8"))
    if data[end : end + 1] != b"|":
        return None
    return data[5:end], data[end + 1 :].strip(), payload


def _refuse_constant(name: str) -> Any:
    raise OcmfError(f"{name} is not a JSON number")


# One decoder for every record (json.loads with hooks builds a new one on each call).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse_constant)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise OcmfError(f"the {what} is not UTF-8") from None
    except RecursionError:
        raise OcmfError(f"the {what} is nested too deeply") from None
    except InvalidOperation:  # Decimal refuses an exponent such as 1e9999999999999999999
        raise OcmfError(f"the {what} holds a number out of range") from None
    except ValueError as error:  # JSONDecodeError, and ints beyond Python's digit limit
        if isinstance(error, OcmfError):
            raise
        raise OcmfError(f"the {what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise OcmfError(f"the {what} is not a JSON object")
    return value


def readings(ocmf: Ocmf) -> list[Reading]:
    """The RD entries with omitted fields carried forward from the previous reading."""
    entries = ocmf.payload.get("RD")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise OcmfError("RD is not a list")
    result: list[Reading] = []
    carried: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise OcmfError("an RD entry is not an object")
        for field in READING_FIELDS:
            if field in entry:
                carried[field] = entry[field]
        result.append(_reading(carried))
    return result


def _reading(fields: dict[str, Any]) -> Reading:
    time_text = _str(fields.get("TM"))
    time, status = parse_time(time_text) if time_text is not None else (None, None)
    value_text, value = _number(fields.get("RV"))
    _, loss = _number(fields.get("CL"))
    return Reading(
        time=time,
        time_status=status,
        time_text=time_text,
        type=_str(fields.get("TX")),
        value=value,
        value_text=value_text,
        obis=_str(fields.get("RI")),
        unit=_str(fields.get("RU")),
        current_type=_str(fields.get("RT")),
        cumulated_loss=loss,
        error_flags=_str(fields.get("EF")) or "",
        status=_str(fields.get("ST")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> tuple[str | None, Decimal | None]:
    """The number's own text and its exact value; vendors also send strings, with spaces."""
    if isinstance(value, Decimal):
        return str(value), value if value.is_finite() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            return value, None
        return value, number if number.is_finite() else None
    return None, None


_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[,.](\d{1,6}))?"
    r"(Z|[+-]\d{2}:?\d{2})?(?:\s+([UISR]))?\s*"
)


def parse_time(text: str) -> tuple[datetime | None, str | None]:
    """`2019-08-13T10:03:15,000+0000 I` → (aware datetime, time status); (None, None) if unreadable."""
    match = _TIME.fullmatch(text)
    if match is None:
        return None, None
    year, month, day, hour, minute, second, fraction, offset, status = match.groups()
    try:
        zone = timezone.utc
        if offset and offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        elif offset is None:
            return None, status
        micro = int((fraction or "0").ljust(6, "0"))
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
    except ValueError:
        return None, status
    try:
        return moment.astimezone(timezone.utc), status
    except OverflowError:  # e.g. 9999-12-31T23:59:59-2359
        return None, status


def pagination(ocmf: Ocmf) -> tuple[str, int] | None:
    """PG `T12` → ("T", 12); None where it is missing or not of that shape (some stations send T<uuid>)."""
    value = ocmf.text("PG")
    if value and value[0] in "TF" and value[1:].isdigit() and len(value) < 20:
        return value[0], int(value[1:])
    return None
