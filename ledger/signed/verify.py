"""One signed record in, one verdict out: never an exception, whatever the input.

`examine` takes signed data as it arrived (plain OCMF, hex, base64, the OCA JSON wrapper, an Alfen
line, an SML-based format) with the key that came along (a claim) and the keys the operator
registered for that meter (the trust anchors), and returns a `Verdict`:

- `verified`: the signature holds against a registered key;
- `claimed-key-only`: it holds, but only against the key that came with the data;
- `invalid`: it does not hold, or the data is not readable as the format it claims to be;
- `no-key`: readable, but there is no key to check it against;
- `unsupported`: a format we recognise but do not verify yet (EDL40, ISA-EDL40, EMH/Mennekes XML,
  signature methods outside the OCMF specification);
- `no-signed-data`: nothing signed in it.

A record is identified by SHA-256 of the bytes its signature covers, so the same reading sent in
MeterValues and again in StopTransaction is one record, while a re-encoded signature (ECDSA is
malleable) is not a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cached_property, lru_cache, partial
from typing import Any

from ledger.signed import alfen, ocmf
from ledger.signed.curves import (
    CURVES,
    Curve,
    NotAPoint,
    curve_named,
    raw_to_der,
    read_der_integers,
    verifier,
)
from ledger.signed.keys import MAX_KEY_TEXT, KeyFormatError, PublicKey, parse_public_key
from ledger.values import storable

MAX_SIGNED_TEXT = 128 * 1024
_HEX = re.compile(r"[0-9A-Fa-f\s]+")
_SML_START = bytes.fromhex("1b1b1b1b01010101")


class Signature(StrEnum):
    VERIFIED = "verified"
    CLAIMED_KEY_ONLY = "claimed-key-only"
    INVALID = "invalid"
    NO_KEY = "no-key"
    UNSUPPORTED = "unsupported"
    NO_SIGNED_DATA = "no-signed-data"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Details:
    fields: dict[str, Any]
    readings: list[dict[str, Any]]
    checks: list[Check]


NO_DETAILS = Details({}, [], [])


@dataclass(frozen=True, init=False)
class Verdict:
    format: str
    signature: Signature
    reason: str | None = None
    record_id: str | None = None  # SHA-256 (hex) of the signed bytes
    signed_data: str | None = None  # the record as the Transparenzsoftware reads it (OCMF|...|...)
    method: str | None = None
    key_source: str | None = None  # "registered" or "claimed": the key the signature held against
    key_fingerprint: str | None = None
    key_spki_hex: str | None = None
    claimed_key_fingerprint: str | None = None
    claimed_key: str | None = None  # the key text that came with the data (a claim)
    # What the record says (fields, readings, billing checks), worked out when first asked for:
    # verifying many records in bulk need not interpret them.
    interpret: Callable[[], Details] | None = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        format: str,
        signature: Signature,
        reason: str | None = None,
        record_id: str | None = None,
        signed_data: str | None = None,
        method: str | None = None,
        key_source: str | None = None,
        key_fingerprint: str | None = None,
        key_spki_hex: str | None = None,
        claimed_key_fingerprint: str | None = None,
        claimed_key: str | None = None,
        interpret: Callable[[], Details] | None = None,
    ) -> None:
        # The frozen dataclass's own __init__ sets each field through object.__setattr__, which
        # costs a fiftieth of a verification; writing the instance dict does the same in a tenth.
        values = self.__dict__
        values["format"] = format
        values["signature"] = signature
        values["reason"] = reason
        values["record_id"] = record_id
        values["signed_data"] = signed_data
        values["method"] = method
        values["key_source"] = key_source
        values["key_fingerprint"] = key_fingerprint
        values["key_spki_hex"] = key_spki_hex
        values["claimed_key_fingerprint"] = claimed_key_fingerprint
        values["claimed_key"] = claimed_key
        values["interpret"] = interpret

    @cached_property
    def details(self) -> Details:
        return self.interpret() if self.interpret is not None else NO_DETAILS

    @property
    def fields(self) -> dict[str, Any]:
        return self.details.fields

    @property
    def readings(self) -> list[dict[str, Any]]:
        return self.details.readings

    @property
    def checks(self) -> list[Check]:
        return self.details.checks

    @property
    def signature_holds(self) -> bool:
        return self.signature in (Signature.VERIFIED, Signature.CLAIMED_KEY_ONLY)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "signature": str(self.signature),
            "reason": self.reason,
            "record_id": self.record_id,
            "method": self.method,
            "key": None
            if self.key_fingerprint is None
            else {
                "source": self.key_source,
                "fingerprint": self.key_fingerprint,
                "spki_hex": self.key_spki_hex,
            },
            "claimed_key_fingerprint": self.claimed_key_fingerprint,
            "claimed_key": self.claimed_key,
            "fields": self.fields,
            "readings": self.readings,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "signed_data": self.signed_data,
        }


def examine(
    data: str | bytes | None,
    claimed_key: str | None = None,
    registered_keys: Sequence[PublicKey] = (),
) -> Verdict:
    try:
        return _examine(data, claimed_key, registered_keys)
    except RecursionError:
        return Verdict("unknown", Signature.INVALID, "the signed data is nested too deeply")


@dataclass(frozen=True)
class Identity:
    """What a signed record is, without checking its signature."""

    format: str  # "OCMF", "ALFEN", ...; "unknown" and "none" for what is no signed data we know
    record_id: str | None
    claimed_key: str | None  # the key that came with the data (also inside a wrapper)
    fields: dict[str, Any]
    readings: list[dict[str, Any]]


def identify(data: str | bytes | None) -> Identity:
    """The cheap first look at ingest: the record's id (to skip one already kept), the key it
    came with and its fields (to pick the registered keys), without an ECDSA verification."""
    try:
        found = _examine(data, None, (), check=False)
    except RecursionError:
        return Identity("unknown", None, None, {}, [])
    return Identity(found.format, found.record_id, found.claimed_key, found.fields, found.readings)


def _examine(
    data: str | bytes | None,
    claimed_key: str | None,
    registered: Sequence[PublicKey],
    check: bool = True,
) -> Verdict:
    if data is None or (isinstance(data, str | bytes) and (not data or data.isspace())):
        return Verdict("none", Signature.NO_SIGNED_DATA, "no signed data")
    if not isinstance(data, str | bytes):
        return Verdict("unknown", Signature.INVALID, "the signed data is not text")
    if len(data) > MAX_SIGNED_TEXT:
        return Verdict(
            "unknown",
            Signature.INVALID,
            f"the signed data is longer than {MAX_SIGNED_TEXT} characters",
        )
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
    except UnicodeEncodeError:  # lone surrogates, as a JSON "\ud800" escape yields
        return Verdict("unknown", Signature.INVALID, "the signed data is not valid Unicode")
    unwrapped = unwrap(raw.strip(), claimed_key)
    if isinstance(unwrapped, Verdict):
        return unwrapped
    record, claimed = unwrapped
    if record.startswith(b"OCMF|"):
        return _examine_ocmf(record, claimed, registered, check)
    if record.startswith(b"AP;"):
        return _examine_alfen(record, registered, check)
    return Verdict("unknown", Signature.INVALID, "not a signed meter value format we know")


def unwrap(
    raw: bytes, claimed_key: str | None, depth: int = 0
) -> tuple[bytes, str | None] | Verdict:
    """The record itself, out of the JSON wrapper, hex or base64 it came in; or a verdict on why not."""
    if raw.startswith((b"OCMF|", b"AP;")):
        return raw, claimed_key
    if depth > 2:
        return Verdict("unknown", Signature.INVALID, "the signed data is wrapped too many times")
    if raw.startswith(b"{"):
        return _unwrap_json(raw, claimed_key, depth)
    if raw.startswith(b"<"):
        if b"signedMeterValue" in raw[:200] or b"<?xml" in raw[:10]:
            return Verdict(
                "EMH/Mennekes XML", Signature.UNSUPPORTED, "format not supported yet: SML-based XML"
            )
        return Verdict("unknown", Signature.INVALID, "unrecognised XML")
    text = raw.decode("ascii", "replace")
    if _HEX.fullmatch(text):
        compact = "".join(text.split())
        if compact[:16].lower() == _SML_START.hex():
            return Verdict(
                "SML/EDL40",
                Signature.UNSUPPORTED,
                "format not supported yet: SML (EDL40, ISA-EDL40)",
            )
        if len(compact) % 2 == 0:
            decoded = bytes.fromhex(compact)
            if decoded.startswith((b"OCMF|", b"AP;", b"{")):
                return unwrap(decoded.strip(), claimed_key, depth + 1)
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return Verdict("unknown", Signature.INVALID, "not a signed meter value format we know")
    if decoded.startswith(_SML_START):
        return Verdict(
            "SML/EDL40", Signature.UNSUPPORTED, "format not supported yet: SML (EDL40, ISA-EDL40)"
        )
    if decoded.startswith((b"OCMF|", b"AP;", b"{", b"<")):
        return unwrap(decoded.strip(), claimed_key, depth + 1)
    return Verdict("unknown", Signature.INVALID, "not a signed meter value format we know")


def _unwrap_json(
    raw: bytes, claimed_key: str | None, depth: int
) -> tuple[bytes, str | None] | Verdict:
    # The OCA application note's wrapper: {"signedMeterData", "publicKey", "encodingMethod", ...}
    try:
        wrapper = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Verdict("unknown", Signature.INVALID, "the signed data wrapper is not valid JSON")
    if not isinstance(wrapper, dict) or not isinstance(wrapper.get("signedMeterData"), str):
        return Verdict(
            "unknown", Signature.INVALID, "the JSON wrapper has no signedMeterData string"
        )
    method = wrapper.get("encodingMethod")
    if isinstance(method, str) and method.upper() not in ("OCMF", "ALFEN", ""):
        return Verdict(method, Signature.UNSUPPORTED, f"format not supported yet: {method}")
    try:
        inner = wrapper["signedMeterData"].strip().encode("utf-8")
    except UnicodeEncodeError:
        return Verdict("unknown", Signature.INVALID, "signedMeterData is not valid Unicode")
    key = wrapper.get("publicKey")
    return unwrap(inner, key if isinstance(key, str) and key.strip() else claimed_key, depth + 1)


def _claimed(claimed_key: str | None) -> tuple[PublicKey | None, str | None]:
    if claimed_key is None or not claimed_key.strip():
        return None, None
    if len(claimed_key) > MAX_KEY_TEXT:  # refused anyway; kept out of the cache
        return _read_claim.__wrapped__(claimed_key)
    return _read_claim(claimed_key)


@lru_cache(maxsize=1024)
def _read_claim(text: str) -> tuple[PublicKey | None, str | None]:
    # Cached: a station sends the same key with every record, and reading it costs as much as
    # a tenth of a verification.
    try:
        return parse_public_key(text), None
    except KeyFormatError as error:
        return None, f"the key that came with the data is unreadable: {error}"


@lru_cache(maxsize=1024)
def _spki_hex(key: PublicKey, curve: str) -> str:
    return key.spki(curve).hex().upper()


def _decide(
    format_: str,
    curve: Curve,
    signature_der: bytes,
    digest: bytes,  # SHA-256 of the signed message
    claimed: PublicKey | None,
    registered: Iterable[PublicKey],
    check: bool = True,
) -> tuple[Signature, str | None, PublicKey | None, str | None]:
    """(verdict, reason, the key it held against, "registered"/"claimed")."""
    if not check:  # identify(): never leaves this module as a verdict
        return Signature.NO_KEY, "not checked", None, None
    registered = list(registered)
    for key in registered:
        if _holds(curve, key, signature_der, digest):
            return Signature.VERIFIED, None, key, "registered"
    if registered:
        if claimed is not None and _holds(curve, claimed, signature_der, digest):
            return (
                Signature.INVALID,
                "holds only against the claimed key, not the registered one",
                None,
                None,
            )
        return (
            Signature.INVALID,
            "the signature does not verify against the registered key",
            None,
            None,
        )
    if claimed is None:
        if read_der_integers(signature_der) is None:
            return Signature.INVALID, "the signature is not a DER ECDSA signature", None, None
        return Signature.NO_KEY, "no registered key and no key with the data", None, None
    if _holds(curve, claimed, signature_der, digest):
        return (
            Signature.CLAIMED_KEY_ONLY,
            "verified only against the key that came with the data",
            claimed,
            "claimed",
        )
    return Signature.INVALID, f"the signature does not verify ({format_}, {curve.name})", None, None


def _holds(curve: Any, key: PublicKey, signature_der: bytes, digest: bytes) -> bool:
    try:
        return verifier(curve, key.point)(signature_der, digest)
    except NotAPoint:
        return False


def _examine_ocmf(
    record: bytes, claimed_key: str | None, registered: Sequence[PublicKey], check: bool = True
) -> Verdict:
    try:
        parsed = ocmf.parse(record)
    except ocmf.OcmfError as error:
        return Verdict("OCMF", Signature.INVALID, str(error))
    digest = hashlib.sha256(parsed.payload_bytes).digest()
    method = parsed.signature_method
    claim_text = claimed_key.strip() if claimed_key else None
    common: dict[str, Any] = {
        "format": "OCMF",
        "record_id": digest.hex(),
        "signed_data": record.decode("utf-8", "replace"),
        "method": method,
        "interpret": partial(_interpret_ocmf, parsed),
        "claimed_key": claim_text or None,
    }
    curve = curve_of_method(method)
    if curve is None:
        return Verdict(
            signature=Signature.UNSUPPORTED,
            reason=f"signature method {method!r} is not one of the OCMF specification",
            **common,
        )
    claimed, claim_problem = _claimed(claimed_key)
    common["claimed_key_fingerprint"] = claimed.fingerprint if claimed else None
    signature = _ocmf_signature(parsed)
    if isinstance(signature, str):
        return Verdict(signature=Signature.INVALID, reason=signature, **common)
    if claim_problem and not registered:
        return Verdict(signature=Signature.NO_KEY, reason=claim_problem, **common)
    verdict, reason, key, source = _decide(
        "OCMF", curve, signature, digest, claimed, registered, check
    )
    return Verdict(
        signature=verdict,
        reason=reason,
        key_source=source,
        key_fingerprint=key.fingerprint if key else None,
        key_spki_hex=_spki_hex(key, curve.name) if key else None,
        **common,
    )


def _ocmf_signature(parsed: ocmf.Ocmf) -> bytes | str:
    """The DER signature out of the signature section, or why it cannot be read."""
    sd = parsed.signature.get("SD")
    if not isinstance(sd, str) or not sd:
        return "no signature (SD)"
    mime = parsed.signature_mime
    if mime != "application/x-der" and mime.lower() != "application/x-der":
        return f"signature mime type {mime!r} is not application/x-der"
    encoding = parsed.signature_encoding.lower()
    try:
        if encoding == "hex":
            return bytes.fromhex(sd)
        if encoding == "base64":
            return base64.b64decode(sd, validate=True)
    except (binascii.Error, ValueError):
        return f"SD is not valid {encoding}"
    return f"unknown signature encoding {parsed.signature_encoding!r}"


def _interpret_ocmf(parsed: ocmf.Ocmf) -> Details:
    fields = _ocmf_fields(parsed)
    try:
        readings = ocmf.readings(parsed)
        return Details(fields, [_reading_json(r) for r in readings], ocmf_checks(parsed, readings))
    except (ocmf.OcmfError, ArithmeticError, ValueError, OverflowError) as error:
        # Worked out after examine() returned: whatever the payload holds, a verdict, never a raise.
        return Details(fields, [], [Check("readings", False, f"unreadable: {error}")])


@lru_cache(maxsize=64)
def curve_of_method(method: str) -> Curve | None:
    """The curve of an OCMF signature method `ECDSA-<curve>-SHA256`; None for any other method."""
    parts = method.split("-")
    if len(parts) == 3 and parts[0] == "ECDSA" and parts[2] == "SHA256":
        return curve_named(parts[1])
    return None


def _ocmf_fields(parsed: ocmf.Ocmf) -> dict[str, Any]:
    payload = parsed.payload
    wanted = (
        "FV",
        "GI",
        "GS",
        "GV",
        "PG",
        "MV",
        "MM",
        "MS",
        "MF",
        "IS",
        "IL",
        "IF",
        "IT",
        "ID",
        "TT",
        "CF",
        "CT",
        "CI",
        "LC",
    )
    return {key: _jsonable(payload[key]) for key in wanted if key in payload}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return storable({str(k): _jsonable(v) for k, v in value.items()})
    return value


def _reading_json(reading: ocmf.Reading) -> dict[str, Any]:
    return {
        "time": reading.time.isoformat() if reading.time else None,
        "time_text": reading.time_text,
        "time_status": reading.time_status,
        "type": reading.type,
        "value": reading.value_text if reading.value is not None else None,
        "unit": reading.unit,
        "obis": reading.obis,
        "current_type": reading.current_type,
        "error_flags": reading.error_flags,
        "status": reading.status,
    }


def ocmf_checks(parsed: ocmf.Ocmf, readings: Sequence[ocmf.Reading]) -> list[Check]:
    """The billing-relevant checks on one record (the session's verdict combines records)."""
    checks: list[Check] = []
    level = parsed.text("IL")
    checks.append(
        Check(
            "identification",
            level not in ocmf.IDENTIFICATION_ERRORS,
            f"IL={level}" if level else "IL absent",
        )
    )
    if not readings:
        checks.append(Check("readings", False, "the record holds no reading"))
    for index, reading in enumerate(readings):
        label = f"RD[{index}] TX={reading.type}"
        checks.append(Check("meter-status", reading.status == "G", f"{label}: ST={reading.status}"))
        checks.append(
            Check(
                "energy-error",
                "E" not in reading.error_flags,
                f"{label}: EF={reading.error_flags!r}",
            )
        )
        checks.append(
            Check(
                "value",
                reading.value is not None,
                f"{label}: RV={reading.value_text!r} {reading.unit}",
            )
        )
        time_ok = (
            reading.time is not None
            and "t" not in reading.error_flags
            and reading.time_status in ("S", "R")
        )
        checks.append(
            Check(
                "time",
                time_ok,
                f"{label}: TM={reading.time_text!r}, status {reading.time_status}, EF={reading.error_flags!r}",
            )
        )
    return checks


def _examine_alfen(record: bytes, registered: Sequence[PublicKey], check: bool = True) -> Verdict:
    try:
        line = alfen.parse(record.decode("ascii"))
    except (alfen.AlfenError, UnicodeDecodeError) as error:
        return Verdict("ALFEN", Signature.INVALID, f"unreadable Alfen line: {error}")
    digest = hashlib.sha256(line.dataset).digest()
    fields = {
        "adapter_id": line.adapter_id,
        "adapter_firmware": line.adapter_firmware,
        "meter_id": line.meter_id,
        "status": f"{line.status:08X}",
        "session_id": line.session_id,
        "paging": line.paging,
        "uid": line.uid,
    }
    readings = [
        {
            "time": line.time.isoformat(),
            "time_status": None,
            "type": alfen.TYPES[line.type],
            "value": str(line.value),
            "unit": line.unit,
            "obis": line.obis,
            "status": None,
            "error_flags": "",
        }
    ]
    common: dict[str, Any] = {
        "format": "ALFEN",
        "record_id": digest.hex(),
        "signed_data": record.decode("ascii"),
        "method": "ECDSA-secp192r1-SHA256",
        "interpret": partial(Details, fields, readings, []),
        "claimed_key": line.key.hex().upper(),
    }
    try:
        claimed = parse_public_key(line.key.hex())
    except KeyFormatError as error:
        return Verdict(
            signature=Signature.INVALID, reason=f"the embedded key is unreadable: {error}", **common
        )
    verdict, reason, key, source = _decide(
        "ALFEN",
        CURVES["secp192r1"],
        raw_to_der(line.signature),
        digest,
        claimed,
        registered,
        check,
    )
    return Verdict(
        signature=verdict,
        reason=reason,
        key_source=source,
        key_fingerprint=key.fingerprint if key else None,
        key_spki_hex=_spki_hex(key, "secp192r1") if key else None,
        claimed_key_fingerprint=claimed.fingerprint,
        **common,
    )
