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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

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
    # The payload with numbers as Decimal; None until first asked for (verifying in bulk reads
    # only the signature section; the payload is known to be a valid JSON object all the same).
    parsed_payload: dict[str, Any] | None = field(repr=False, compare=False)
    signature: dict[str, Any]

    @property
    def payload(self) -> dict[str, Any]:
        if self.parsed_payload is None:
            object.__setattr__(self, "parsed_payload", _json_object(self.payload_bytes, "payload"))
        assert self.parsed_payload is not None
        return self.parsed_payload

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
    found = _split_fast(data)
    if found is None:
        payload_bytes, signature_bytes, payload = _split_careful(data)
        signature = _json_object(signature_bytes, "signature section") if signature_bytes else {}
        return Ocmf(payload_bytes, payload, signature)
    payload_bytes, signature_bytes = found
    signature = _signature_section(signature_bytes)
    return Ocmf(payload_bytes, None, signature)


def _split_careful(data: bytes) -> tuple[bytes, bytes, dict[str, Any]]:
    payload_bytes, signature_bytes = split(data)
    return payload_bytes, signature_bytes, _json_object(payload_bytes, "payload")


def _split_fast(data: bytes) -> tuple[bytes, bytes] | None:
    """split for the common case, checking the payload with orjson's validating parser; or None.

    If the bytes up to the second `|` are one valid JSON object ending in `}`, that object is
    exactly what split's bracket count finds, so this gives the same split, several times faster
    than walking the bytes or parsing the payload with Decimal numbers. The Decimal parse then
    cannot fail: orjson is as strict as the careful parser (RFC 8259, UTF-8, no NaN, no lone
    surrogates) except for exponents Decimal refuses, which the careful path takes. Anything
    else (a `|` inside a payload string, invalid JSON, deep nesting, huge numbers) returns None
    and takes the careful path, whose errors are the ones reported.
    """
    if len(data) > MAX_OCMF_BYTES or not data.startswith(b"OCMF|{"):
        return None
    end = data.find(b"|", 5)
    if end < 0 or data[end - 1] != 0x7D:  # "}"
        return None
    payload_bytes = data[5:end]
    try:
        if not isinstance(orjson.loads(payload_bytes), dict):
            return None
    except orjson.JSONDecodeError:
        return None
    if _long_exponent(payload_bytes):
        return None
    return payload_bytes, data[end + 1 :].strip()


def _long_exponent(text: bytes) -> bool:
    """Whether the text may hold an exponent of 18 digits or more, which Decimal refuses and
    orjson reads (1e-999999999999999999 as 0.0). Over-eager inside strings, never short."""
    shape = text.translate(_EXPONENT_SHAPE)
    return _EXPONENT in shape or _SIGNED_EXPONENT in shape


# Digits to "0", e and E to "e", signs to "-", everything else to " ".
_EXPONENT_SHAPE = bytes(
    0x30 if 0x30 <= b <= 0x39 else 0x65 if b in b"eE" else 0x2D if b in b"+-" else 0x20
    for b in range(256)
)
_EXPONENT = b"e" + b"0" * 18
_SIGNED_EXPONENT = b"e-" + b"0" * 18


def _signature_section(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)  # only strings are read from it (SA, SE, SM, SD)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    return _json_object(raw, "signature section")  # the careful parser says what is wrong


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
        for name in READING_FIELDS:
            if name in entry:
                carried[name] = entry[name]
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
