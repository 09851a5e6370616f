"""ECDSA verification on the seven curves OCMF allows, from a public key's point bytes.

The curve comes from the record's signature method, never from the key's own OID: that is what the
Transparenzsoftware does, and a key whose point is not on the named curve simply does not verify.
OpenSSL (through `cryptography`) does six of the curves; secp192k1 it lacks, so that one goes
through the pure-Python `ecdsa` package (tlsfuzzer's, the library pyocmf and many others use) with
the SEC 2 domain parameters, checked in the tests against real meter signatures.

Signatures are DER ECDSA-Sig-Value. Some meters write an INTEGER that is not minimal or that would
read as negative; the Transparenzsoftware reads both integers as unsigned, and so do we
(`lenient_der`), after first trying the strict encoding as it came.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import ecdsa
import ecdsa.ellipticcurve
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature


class NotAPoint(ValueError):
    """The key bytes are no point of the named curve (or no point at all)."""


@dataclass(frozen=True)
class Curve:
    name: str  # as OCMF names it in SA, e.g. "secp256r1"
    bits: int
    openssl: ec.EllipticCurve | None


# SEC 2 v2, section 2.2.1: secp192k1 (a = 0, b = 3).
_P192K1 = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFEE37
_N192K1 = 0xFFFFFFFFFFFFFFFFFFFFFFFE26F2FC170F69466A74DEFD8D
_GX192K1 = 0xDB4FF10EC057E9AE26B07D0280B7F4341DA5D1B1EAE06C7D
_GY192K1 = 0x9B2F2F6D9C5628A7844163D015BE86344082AA88D95E2F9D
_CURVE_FP_192K1 = ecdsa.ellipticcurve.CurveFp(_P192K1, 0, 3, 1)
SECP192K1 = ecdsa.curves.Curve(
    "SECP192k1",
    _CURVE_FP_192K1,
    ecdsa.ellipticcurve.PointJacobi(
        _CURVE_FP_192K1, _GX192K1, _GY192K1, 1, _N192K1, generator=True
    ),
    (1, 3, 132, 0, 31),
    "secp192k1",
)

CURVES: dict[str, Curve] = {
    "secp192k1": Curve("secp192k1", 192, None),
    "secp192r1": Curve("secp192r1", 192, ec.SECP192R1()),
    "secp256k1": Curve("secp256k1", 256, ec.SECP256K1()),
    "secp256r1": Curve("secp256r1", 256, ec.SECP256R1()),
    "brainpool256r1": Curve("brainpool256r1", 256, ec.BrainpoolP256R1()),
    "secp384r1": Curve("secp384r1", 384, ec.SECP384R1()),
    "brainpool384r1": Curve("brainpool384r1", 384, ec.BrainpoolP384R1()),
}
# The Transparenzsoftware also accepts the "P" spelling of the brainpool curves.
ALIASES = {"brainpoolp256r1": "brainpool256r1", "brainpoolp384r1": "brainpool384r1"}

# Every OCMF method and Alfen sign SHA-256 of the message. The caller hashes once, for the record's
# id and for every key it tries, and the verifiers take that digest.
_ECDSA_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))


def curve_named(name: str) -> Curve | None:
    key = name.lower()
    return CURVES.get(ALIASES.get(key, key))


class Verifier(Protocol):
    def __call__(self, signature_der: bytes, digest: bytes) -> bool:
        """Whether the signature holds over the message whose SHA-256 digest this is."""
        ...


def verifier(curve: Curve, point: bytes) -> Verifier:
    """A verifier for one key (cached: keys repeat, loading them costs more than a verification)."""
    return _verifier(curve.name, point)


@lru_cache(maxsize=4096)
def _verifier(curve_name: str, point: bytes) -> Verifier:
    curve = CURVES[curve_name]
    if curve.openssl is None:
        return _ecdsa_verifier(point)
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve.openssl, point)
    except ValueError as error:
        raise NotAPoint(f"the key is not a point on {curve.name}") from error
    verify = key.verify

    def check(signature_der: bytes, digest: bytes) -> bool:
        try:
            verify(signature_der, digest, _ECDSA_SHA256)
            return True
        except (InvalidSignature, ValueError):
            pass
        # Not strict DER, or really invalid: read the integers as the Transparenzsoftware does.
        lenient = lenient_der(signature_der)
        if lenient is None or lenient == signature_der:
            return False
        try:
            verify(lenient, digest, _ECDSA_SHA256)
            return True
        except (InvalidSignature, ValueError):
            return False

    return check


def _ecdsa_verifier(point: bytes) -> Verifier:
    try:
        decoded = ecdsa.ellipticcurve.PointJacobi.from_bytes(_CURVE_FP_192K1, point)
    except (ecdsa.errors.MalformedPointError, ValueError, AssertionError) as error:
        raise NotAPoint("the key is not a point on secp192k1") from error
    # from_bytes leaves the point without its order, which the verification's precomputation needs.
    x, y = decoded.x(), decoded.y()
    if not _CURVE_FP_192K1.contains_point(x, y):
        raise NotAPoint("the key is not a point on secp192k1")
    public = ecdsa.ellipticcurve.PointJacobi(_CURVE_FP_192K1, x, y, 1, _N192K1)
    key = ecdsa.VerifyingKey.from_public_point(public, curve=SECP192K1, hashfunc=hashlib.sha256)
    key.precompute(lazy=True)

    def check(signature_der: bytes, digest: bytes) -> bool:
        pair = read_der_integers(signature_der)
        if pair is None:
            return False
        r, s = pair
        if not (0 < r < _N192K1 and 0 < s < _N192K1):
            return False
        try:
            return bool(
                key.verify_digest(
                    (r, s),
                    digest,
                    sigdecode=lambda sig, order: sig,
                    allow_truncate=True,
                )
            )
        except ecdsa.BadSignatureError:
            return False

    return check


def read_der_integers(data: bytes) -> tuple[int, int] | None:
    """(r, s) of a DER ECDSA-Sig-Value, each INTEGER read as unsigned; None if it is no such thing."""
    if len(data) < 8 or data[0] != 0x30:
        return None
    position, length = _length(data, 1)
    if length is None or position + length != len(data):
        return None
    numbers = []
    for _ in range(2):
        if position >= len(data) or data[position] != 0x02:
            return None
        position, length = _length(data, position + 1)
        if length is None or length == 0 or position + length > len(data):
            return None
        numbers.append(int.from_bytes(data[position : position + length], "big"))
        position += length
    if position != len(data):
        return None
    return numbers[0], numbers[1]


def _length(data: bytes, position: int) -> tuple[int, int | None]:
    if position >= len(data):
        return position, None
    first = data[position]
    if first < 0x80:
        return position + 1, first
    count = first & 0x7F
    if count == 0 or count > 2 or position + 1 + count > len(data):
        return position, None
    return position + 1 + count, int.from_bytes(data[position + 1 : position + 1 + count], "big")


def lenient_der(data: bytes) -> bytes | None:
    pair = read_der_integers(data)
    if pair is None or pair[0] == 0 or pair[1] == 0:
        return None
    return encode_dss_signature(*pair)


def raw_to_der(raw: bytes) -> bytes:
    """A raw r||s signature (Alfen) as DER."""
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )
