"""Public keys as meters and charge points spell them, down to the curve point they carry.

Accepted: DER SubjectPublicKeyInfo as hex (spaces and colons allowed) or base64, the OCA
application note's `oca:base16:asn1:<hex>` (also base64 of that whole string, as stations send it),
base64 of the hex text, and a bare SEC 1 point (`04 || X || Y` or compressed, or X || Y alone) in hex. The curve a key is used on comes from
the signed record, not from the key's OID; the OID is kept only to tell the two apart in a report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

# DER of the named-curve OIDs (RFC 5480, RFC 5639), so that a bare point can be written as SPKI.
CURVE_OIDS = {
    "secp192k1": bytes.fromhex("2B8104001F"),
    "secp192r1": bytes.fromhex("2A8648CE3D030101"),
    "secp256k1": bytes.fromhex("2B8104000A"),
    "secp256r1": bytes.fromhex("2A8648CE3D030107"),
    "brainpool256r1": bytes.fromhex("2B2403030208010107"),
    "secp384r1": bytes.fromhex("2B81040022"),
    "brainpool384r1": bytes.fromhex("2B240303020801010B"),
}
_CURVE_BY_OID = {oid: name for name, oid in CURVE_OIDS.items()}
_EC_PUBLIC_KEY = bytes.fromhex("2A8648CE3D0201")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_SEPARATORS = re.compile(r"[\s:]+")
MAX_KEY_TEXT = 4096


class KeyFormatError(ValueError):
    """Text that is no public key in any of the spellings we know."""


@dataclass(frozen=True)
class PublicKey:
    point: bytes  # SEC 1 encoded point
    key_curve: str | None  # the curve the SPKI names, if it came as SPKI and we know the OID

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the point, hex: one key, whatever spelling it arrived in."""
        return hashlib.sha256(self.point).hexdigest()

    def spki(self, curve: str) -> bytes:
        """DER SubjectPublicKeyInfo of this point on `curve` (what the Transparenzsoftware reads)."""
        algorithm = _tlv(0x30, _tlv(0x06, _EC_PUBLIC_KEY) + _tlv(0x06, CURVE_OIDS[curve]))
        return _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + self.point))


def parse_public_key(text: str) -> PublicKey:
    if not isinstance(text, str) or not text.strip():
        raise KeyFormatError("no public key")
    if len(text) > MAX_KEY_TEXT:
        raise KeyFormatError("the public key is too long")
    value = text.strip()
    lowered = value.lower()
    if lowered.startswith("oca:"):
        return _from_oca(value)
    compact = _SEPARATORS.sub("", value)
    if _HEX.fullmatch(compact) and len(compact) % 2 == 0:
        return from_bytes(bytes.fromhex(compact))
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("the public key is neither hex nor base64") from None
    # Stations also send base64 of the hex text (with a trailing newline, even).
    if (
        _HEX.fullmatch(raw.strip().decode("ascii", "replace"))
        and len(raw.strip()) % 2 == 0
        and raw.strip()
    ):
        return from_bytes(bytes.fromhex(raw.strip().decode("ascii")))
    if raw[:4].lower() == b"oca:":
        try:
            return _from_oca(raw.decode("ascii"))
        except UnicodeDecodeError:
            raise KeyFormatError("the public key is garbled") from None
    return from_bytes(raw)


def _from_oca(value: str) -> PublicKey:
    # oca:base16:asn1:<hex> (OCA application note "Signed Meter Values in OCPP"); base64 variant too.
    parts = value.split(":", 3)
    if len(parts) != 4 or parts[2].lower() != "asn1":
        raise KeyFormatError(f"unknown key notation {':'.join(parts[:3])!r}")
    encoding, data = parts[1].lower(), _SEPARATORS.sub("", parts[3])
    try:
        if encoding == "base16":
            raw = bytes.fromhex(data)
        elif encoding == "base64":
            raw = base64.b64decode(data, validate=True)
        else:
            raise KeyFormatError(f"unknown key encoding {parts[1]!r}")
    except (binascii.Error, ValueError) as error:
        if isinstance(error, KeyFormatError):
            raise
        raise KeyFormatError(f"the key is not valid {encoding}") from None
    return from_bytes(raw)


def from_bytes(raw: bytes) -> PublicKey:
    if raw[:1] == b"\x30":
        return _from_spki(raw)
    if raw[:1] == b"\x04" and len(raw) % 2 == 1 and len(raw) >= 49:
        return PublicKey(raw, None)
    if raw[:1] in (b"\x02", b"\x03") and len(raw) in (25, 33, 49):
        return PublicKey(raw, None)
    if len(raw) in (
        48,
        64,
        96,
    ):  # bare X || Y without the 04 prefix (seen on Isabellenhütte receipts)
        return PublicKey(b"\x04" + raw, None)
    raise KeyFormatError("the key is neither DER SubjectPublicKeyInfo nor a SEC 1 point")


def _from_spki(raw: bytes) -> PublicKey:
    outer, rest = _read(raw, 0x30)
    if rest:
        raise KeyFormatError("bytes after the SubjectPublicKeyInfo")
    algorithm, body = _read(outer, 0x30)
    bits, rest = _read(body, 0x03)
    if rest or not bits or bits[0] != 0:
        raise KeyFormatError("the SubjectPublicKeyInfo has no whole public key bit string")
    oid, parameters = _read(algorithm, 0x06)
    if oid != _EC_PUBLIC_KEY:
        raise KeyFormatError("not an elliptic-curve public key")
    curve = None
    if parameters[:1] == b"\x06":
        named, _ = _read(parameters, 0x06)
        curve = _CURVE_BY_OID.get(named)
    point = bits[1:]
    if point[:1] not in (b"\x02", b"\x03", b"\x04"):
        raise KeyFormatError("the public key bit string holds no SEC 1 point")
    return PublicKey(point, curve)


def _read(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """(content, rest) of one DER TLV with `tag` at the start of data."""
    if len(data) < 2 or data[0] != tag:
        raise KeyFormatError("malformed DER in the public key")
    length, position = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 2 or len(data) < 2 + count:
            raise KeyFormatError("malformed DER length in the public key")
        length, position = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    end = position + length
    if end > len(data):
        raise KeyFormatError("truncated DER in the public key")
    return data[position:end], data[end:]


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content
