"""Signed meter values (ledger.signed): `examine` against the real vectors of the reference
verifiers, round trips on all seven OCMF curves, and inputs made to break it.

No database: everything here is pure functions. Sections, in order:

1. conformance: the 209 vectors of the Transparenzsoftware and Chargy, exact verdicts and counts;
2. round trips: sign with `cryptography` (or `ecdsa` for secp192k1), verify, tamper;
3. keys: every spelling of one key is one fingerprint; secp192k1's domain parameters;
4. signature encodings: the lenient DER the Transparenzsoftware accepts, and what it refuses;
5. transport and identity: wrappers, resent records, `|` in a signed string, number text;
6. hostile input (hypothesis): `examine` returns a Verdict whatever it is given, and a tampered
   record never verifies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import ecdsa
import ecdsa.ellipticcurve
import ecdsa.numbertheory
import ecdsa.util
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.signed import ocmf
from ledger.signed.curves import CURVES, SECP192K1
from ledger.signed.keys import PublicKey, parse_public_key
from ledger.signed.verify import Signature, Verdict, examine, identify
from tests.conftest import CONFORMANCE

# --------------------------------------------------------------------------------------------
# 1. Conformance: the real vectors
# --------------------------------------------------------------------------------------------

VECTORS: list[dict[str, Any]] = json.loads(
    (CONFORMANCE / "signed-meter-values" / "real_vectors.json").read_text(encoding="utf-8")
)["vectors"]
VERIFIABLE = ("OCMF", "ALFEN")  # every other format is recognised but not verified yet


def vector_id(index: int, vector: dict[str, Any]) -> str:
    """`004-OCMF-valid-test`: position, format, expected verdict, source file."""
    label = (
        f"{index:03d}-{vector['format']}-{vector['expected']}-{Path(vector['source_path']).stem}"
    )
    return re.sub(r"[^A-Za-z0-9_.]+", "-", label).strip("-")


def vectors(*formats: str, exclude: bool = False) -> list[Any]:
    return [
        pytest.param(vector, id=vector_id(index, vector))
        for index, vector in enumerate(VECTORS)
        if (vector["format"] in formats) != exclude
    ]


def claimed_key(vector: dict[str, Any]) -> str | None:
    # An Alfen line carries its own key; every other format gets the key the source holds.
    return None if vector["format"] == "ALFEN" else vector["public_key"]


def registered_key(vector: dict[str, Any]) -> PublicKey:
    if vector["format"] == "ALFEN":  # base32 of the compressed point, as in the line
        text = vector["public_key"]
        return parse_public_key(base64.b32decode(text + "=" * (-len(text) % 8)).hex())
    return parse_public_key(vector["public_key"])


@pytest.mark.parametrize("vector", vectors(*VERIFIABLE))
def test_real_vector_with_the_key_that_came_along(vector: dict[str, Any]) -> None:
    verdict = examine(vector["signed_data"], claimed_key(vector))

    assert verdict.format == vector["format"]
    if vector["expected"] == "valid":
        assert verdict.signature == Signature.CLAIMED_KEY_ONLY, verdict.reason
        assert verdict.key_source == "claimed"
    else:
        assert vector["expected"] == "invalid"
        assert verdict.signature == Signature.INVALID, verdict.reason


@pytest.mark.parametrize("vector", vectors(*VERIFIABLE))
def test_real_vector_with_a_registered_key(vector: dict[str, Any]) -> None:
    key = registered_key(vector)

    verdict = examine(vector["signed_data"], registered_keys=[key])

    if vector["expected"] == "valid":
        assert verdict.signature == Signature.VERIFIED, verdict.reason
        assert verdict.key_source == "registered"
        assert verdict.key_fingerprint == key.fingerprint
        if "public_key_spki_hex" in vector:
            assert verdict.key_spki_hex == vector["public_key_spki_hex"].upper()
    else:
        assert verdict.signature == Signature.INVALID, verdict.reason
        assert verdict.key_fingerprint is None


@pytest.mark.parametrize("vector", vectors(*VERIFIABLE, exclude=True))
def test_real_vector_in_a_format_not_verified_yet(vector: dict[str, Any]) -> None:
    verdict = examine(vector["signed_data"], vector["public_key"] or None)

    assert verdict.signature == Signature.UNSUPPORTED, verdict.reason


def test_real_vector_verdict_counts() -> None:
    tally = Counter(
        (
            vector["format"] if vector["format"] in VERIFIABLE else "other",
            examine(vector["signed_data"], claimed_key(vector)).signature,
        )
        for vector in VECTORS
    )

    assert tally == {
        ("OCMF", Signature.CLAIMED_KEY_ONLY): 164,
        ("ALFEN", Signature.CLAIMED_KEY_ONLY): 13,
        ("OCMF", Signature.INVALID): 7,
        ("ALFEN", Signature.INVALID): 2,
        ("other", Signature.UNSUPPORTED): 23,  # 5 Chargy-extension OCMF, 18 SML-based
    }


# --------------------------------------------------------------------------------------------
# 2. Round trips on all seven curves
# --------------------------------------------------------------------------------------------

CURVE_NAMES = tuple(CURVES)
_OPENSSL_CURVES: dict[str, ec.EllipticCurve] = {
    "secp192r1": ec.SECP192R1(),
    "secp256k1": ec.SECP256K1(),
    "secp256r1": ec.SECP256R1(),
    "brainpool256r1": ec.BrainpoolP256R1(),
    "secp384r1": ec.SECP384R1(),
    "brainpool384r1": ec.BrainpoolP384R1(),
}
# The group orders, from the ecdsa package: independent of the code under test.
ORDERS: dict[str, int] = {
    "secp192k1": SECP192K1.order,
    "secp192r1": ecdsa.NIST192p.order,
    "secp256k1": ecdsa.SECP256k1.order,
    "secp256r1": ecdsa.NIST256p.order,
    "brainpool256r1": ecdsa.BRAINPOOLP256r1.order,
    "secp384r1": ecdsa.NIST384p.order,
    "brainpool384r1": ecdsa.BRAINPOOLP384r1.order,
}
# Another curve of the same size where there is one: a key on one is no point on the other.
WRONG_CURVE = {
    "secp192k1": "secp192r1",
    "secp192r1": "secp192k1",
    "secp256k1": "secp256r1",
    "secp256r1": "brainpool256r1",
    "brainpool256r1": "secp256k1",
    "secp384r1": "brainpool384r1",
    "brainpool384r1": "secp384r1",
}

# One payload with the things a verifier gets wrong: a `|` in a signed string, a number whose
# text is not its shortest form, and a second reading that leaves out what did not change.
PAYLOAD = (
    b'{"FV":"1.0","GI":"ABL SBC-301","GS":"808829900001","GV":"1.4p3","PG":"T12",'
    b'"MV":"Phoenix Contact","MM":"EEM-350-D-MCB","MS":"BQ27400330016","MF":"1.0",'
    b'"IS":true,"IL":"TRUSTED","IF":["RFID_PLAIN","OCPP_RS_TLS"],"IT":"ISO14443",'
    b'"ID":"1F2D3A4B","TT":"Tarif A | 0,39 EUR/kWh",'
    b'"RD":[{"TM":"2024-03-01T10:03:15,000+0100 S","TX":"B","RV":2935.600,"RI":"1-b:1.8.0",'
    b'"RU":"kWh","RT":"AC","EF":"","ST":"G"},'
    b'{"TM":"2024-03-01T11:20:41,000+0100 S","TX":"E","RV":2947.125}]}'
)
RECORD_ID = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass(frozen=True)
class Signer:
    """A fresh key pair on one curve, from a library other than the one under test's path."""

    curve: str
    sign: Callable[[bytes], bytes]  # message -> DER ECDSA-Sig-Value over SHA-256
    point: bytes  # uncompressed SEC 1: 04 || X || Y
    spki: bytes  # DER SubjectPublicKeyInfo

    @property
    def order(self) -> int:
        return ORDERS[self.curve]

    @property
    def key(self) -> PublicKey:
        return parse_public_key(self.spki.hex())


@cache
def signer(curve: str) -> Signer:
    if curve == "secp192k1":  # OpenSSL lacks it: the pure-Python ecdsa package signs
        signing = ecdsa.SigningKey.generate(curve=SECP192K1, hashfunc=hashlib.sha256)
        public = signing.get_verifying_key()
        return Signer(
            curve,
            lambda message: signing.sign(
                message, hashfunc=hashlib.sha256, sigencode=ecdsa.util.sigencode_der
            ),
            public.to_string("uncompressed"),
            public.to_der(),
        )
    private = ec.generate_private_key(_OPENSSL_CURVES[curve])
    public_key = private.public_key()
    return Signer(
        curve,
        lambda message: private.sign(message, ec.ECDSA(hashes.SHA256())),
        public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def record(
    payload: bytes,
    signature_der: bytes,
    curve: str,
    *,
    method: str | None = None,
    encoding: str = "hex",
) -> str:
    """`OCMF|payload|{"SA":...,"SD":...}` as a meter writes it."""
    section: dict[str, str] = {"SA": method or f"ECDSA-{curve}-SHA256"}
    if encoding == "base64":
        section["SE"] = "base64"
        section["SD"] = base64.b64encode(signature_der).decode("ascii")
    else:
        section["SD"] = signature_der.hex().upper()
    return f"OCMF|{payload.decode('utf-8')}|{json.dumps(section, separators=(',', ':'))}"


def signed_record(curve: str, payload: bytes = PAYLOAD, **options: str) -> str:
    return record(payload, signer(curve).sign(payload), curve, **options)


@cache
def genuine(curve: str) -> str:
    """One signed record per curve, fixed for the run (a fresh signature varies in length)."""
    return signed_record(curve)


def der(r: int, s: int) -> bytes:
    return _der_sequence(_der_integer(r) + _der_integer(s))


def _der_integer(value: int, *, content: bytes | None = None) -> bytes:
    if content is None:
        content = value.to_bytes(value.bit_length() // 8 + 1, "big")  # minimal, sign bit clear
    return bytes([0x02, len(content)]) + content


def _der_sequence(content: bytes) -> bytes:
    assert len(content) < 0x100  # two 384-bit integers and some padding at most
    length = bytes([len(content)]) if len(content) < 0x80 else bytes([0x81, len(content)])
    return b"\x30" + length + content


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_round_trip_verifies_against_the_registered_key(curve: str) -> None:
    verdict = examine(signed_record(curve), registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.VERIFIED, verdict.reason
    assert verdict.format == "OCMF"
    assert verdict.method == f"ECDSA-{curve}-SHA256"
    assert verdict.record_id == RECORD_ID
    assert verdict.key_source == "registered"
    assert verdict.key_fingerprint == hashlib.sha256(signer(curve).point).hexdigest()
    assert verdict.key_spki_hex == signer(curve).spki.hex().upper()


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_round_trip_with_the_claimed_key_only(curve: str) -> None:
    verdict = examine(signed_record(curve), signer(curve).spki.hex())

    assert verdict.signature == Signature.CLAIMED_KEY_ONLY, verdict.reason
    assert verdict.key_source == "claimed"
    assert verdict.claimed_key_fingerprint == signer(curve).key.fingerprint


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_one_tampered_payload_byte_does_not_verify(curve: str) -> None:
    original = signed_record(curve)
    tampered = original.replace('"RV":2947.125', '"RV":2947.126')
    assert tampered != original

    verdict = examine(tampered, registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.INVALID
    assert verdict.record_id != RECORD_ID


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_the_wrong_curve_in_sa_does_not_verify(curve: str) -> None:
    signature = signer(curve).sign(PAYLOAD)
    wrong = record(PAYLOAD, signature, WRONG_CURVE[curve])

    assert examine(wrong, registered_keys=[signer(curve).key]).signature == Signature.INVALID
    assert examine(wrong, signer(curve).spki.hex()).signature == Signature.INVALID


@pytest.mark.parametrize(
    ("curve", "spelling"),
    [("brainpool256r1", "brainpoolP256r1"), ("brainpool384r1", "brainpoolP384r1")],
)
def test_brainpool_with_the_p_spelling_verifies(curve: str, spelling: str) -> None:
    text = signed_record(curve, method=f"ECDSA-{spelling}-SHA256")

    verdict = examine(text, registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.VERIFIED, verdict.reason
    assert verdict.method == f"ECDSA-{spelling}-SHA256"


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_base64_signature_encoding_verifies(curve: str) -> None:
    verdict = examine(signed_record(curve, encoding="base64"), registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.VERIFIED, verdict.reason
    assert verdict.record_id == RECORD_ID


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_the_malleable_twin_of_a_signature_is_the_same_record(curve: str) -> None:
    r, s = decode_dss_signature(signer(curve).sign(PAYLOAD))
    original = record(PAYLOAD, der(r, s), curve)
    twin = record(PAYLOAD, der(r, signer(curve).order - s), curve)
    assert twin != original

    first = examine(original, registered_keys=[signer(curve).key])
    second = examine(twin, registered_keys=[signer(curve).key])

    assert first.signature == second.signature == Signature.VERIFIED
    assert first.record_id == second.record_id == RECORD_ID


def test_a_verdict_is_immutable() -> None:
    verdict = examine(signed_record("secp256r1"))

    with pytest.raises(AttributeError):
        verdict.signature = Signature.VERIFIED  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# 3. Keys
# --------------------------------------------------------------------------------------------


def spellings(key: Signer) -> dict[str, str]:
    """One key as meters, charge points and the OCA application note spell it."""
    spki_hex = key.spki.hex().upper()
    oca = f"oca:base16:asn1:{spki_hex}"
    return {
        "hex SPKI with spaces": " ".join(re.findall("..", spki_hex)),
        "hex SPKI with colons, lower case": ":".join(re.findall("..", spki_hex.lower())),
        "base64 SPKI": base64.b64encode(key.spki).decode("ascii"),
        "OCA base16": oca,
        "base64 of OCA base16": base64.b64encode(oca.encode("ascii")).decode("ascii"),
        "bare 04 || X || Y": key.point.hex(),
        "bare X || Y": key.point[1:].hex(),
    }


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_every_spelling_of_a_key_is_one_fingerprint(curve: str) -> None:
    key = signer(curve)
    expected = hashlib.sha256(key.point).hexdigest()
    text = signed_record(curve)

    for name, spelling in spellings(key).items():
        assert parse_public_key(spelling).fingerprint == expected, name
        verdict = examine(text, spelling)
        assert verdict.signature == Signature.CLAIMED_KEY_ONLY, (name, verdict.reason)
        assert verdict.claimed_key_fingerprint == expected, name


# SEC 2 version 2.0, section 2.2.1, as printed there.
SEC2_SECP192K1 = {
    "p": "FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFE FFFFEE37",
    "n": "FFFFFFFF FFFFFFFF FFFFFFFE 26F2FC17 0F69466A 74DEFD8D",
    "G": "04 DB4FF10E C057E9AE 26B07D02 80B7F434 1DA5D1B1 EAE06C7D "
    "9B2F2F6D 9C5628A7 844163D0 15BE8634 4082AA88 D95E2F9D",
}


def test_secp192k1_domain_parameters_are_those_of_sec2() -> None:
    def number(text: str) -> int:
        return int(text.replace(" ", ""), 16)

    p, n = number(SEC2_SECP192K1["p"]), number(SEC2_SECP192K1["n"])
    generator = bytes.fromhex(SEC2_SECP192K1["G"].replace(" ", ""))
    gx, gy = int.from_bytes(generator[1:25], "big"), int.from_bytes(generator[25:], "big")
    curve, g = SECP192K1.curve, SECP192K1.generator

    assert p == 2**192 - 2**32 - 2**12 - 2**8 - 2**7 - 2**6 - 2**3 - 1
    assert (curve.p(), curve.a(), curve.b()) == (p, 0, 3)
    assert (g.x(), g.y(), SECP192K1.order) == (gx, gy, n)
    assert (gy * gy - gx**3 - 3) % p == 0  # the generator is on y^2 = x^3 + 3
    assert g * n == ecdsa.ellipticcurve.INFINITY
    assert g * (n - 1) != ecdsa.ellipticcurve.INFINITY
    assert ecdsa.numbertheory.is_prime(n) and ecdsa.numbertheory.is_prime(p)
    assert SECP192K1.oid == (1, 3, 132, 0, 31)


SECP192K1_VECTORS = [v for v in vectors("OCMF") if "secp192k1" in v.values[0]["note"]]


def test_there_are_two_real_secp192k1_vectors() -> None:
    assert len(SECP192K1_VECTORS) == 2


@pytest.mark.parametrize("vector", SECP192K1_VECTORS)
def test_secp192k1_parameters_verify_real_meter_signatures(vector: dict[str, Any]) -> None:
    # Straight through the ecdsa package with the curve object, beside examine's verdict.
    key = registered_key(vector)
    parsed = ocmf.parse(vector["signed_data"].encode("utf-8"))
    verifying = ecdsa.VerifyingKey.from_string(key.point, curve=SECP192K1)
    signature = bytes.fromhex(parsed.signature["SD"])
    tampered = parsed.payload_bytes.replace(b'"RV":', b'"RV":1', 1)

    assert parsed.signature_method == "ECDSA-secp192k1-SHA256"
    assert verifying.verify(
        signature, parsed.payload_bytes, hashlib.sha256, ecdsa.util.sigdecode_der
    )
    with pytest.raises(ecdsa.BadSignatureError):
        verifying.verify(signature, tampered, hashlib.sha256, ecdsa.util.sigdecode_der)
    assert examine(vector["signed_data"], registered_keys=[key]).signature == Signature.VERIFIED


# --------------------------------------------------------------------------------------------
# 4. Signature encodings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_an_integer_with_a_superfluous_leading_zero_still_verifies(curve: str) -> None:
    r, s = decode_dss_signature(signer(curve).sign(PAYLOAD))
    padded_r = _der_integer(r, content=b"\x00" + _der_integer(r)[2:])
    non_minimal = _der_sequence(padded_r + _der_integer(s))
    assert non_minimal != der(r, s)

    verdict = examine(record(PAYLOAD, non_minimal, curve), registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.VERIFIED, verdict.reason


@pytest.mark.parametrize("curve", CURVE_NAMES)
def test_an_integer_that_reads_as_negative_still_verifies(curve: str) -> None:
    # The real secp192r1 vector of the Transparenzsoftware (BouncyCastle reads it as unsigned).
    for _ in range(200):
        r, s = decode_dss_signature(signer(curve).sign(PAYLOAD))
        if r.bit_length() % 8 == 0:
            break
    else:
        pytest.fail("no signature with the top bit of r set in 200 tries")
    unpadded_r = _der_integer(r, content=r.to_bytes(r.bit_length() // 8, "big"))
    negative = _der_sequence(unpadded_r + _der_integer(s))

    verdict = examine(record(PAYLOAD, negative, curve), registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.VERIFIED, verdict.reason


@pytest.mark.parametrize("curve", CURVE_NAMES)
@pytest.mark.parametrize("where", ["after the sequence", "inside the sequence"])
def test_der_with_trailing_garbage_does_not_verify(curve: str, where: str) -> None:
    r, s = decode_dss_signature(signer(curve).sign(PAYLOAD))
    if where == "after the sequence":
        garbled = der(r, s) + b"\x00"
    else:
        garbled = _der_sequence(_der_integer(r) + _der_integer(s) + b"\x00")

    verdict = examine(record(PAYLOAD, garbled, curve), registered_keys=[signer(curve).key])

    assert verdict.signature == Signature.INVALID


def test_a_signature_that_is_not_der_does_not_verify() -> None:
    r, s = decode_dss_signature(signer("secp256r1").sign(PAYLOAD))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # r || s, as Isabellenhütte writes it

    verdict = examine(record(PAYLOAD, raw, "secp256r1"), registered_keys=[signer("secp256r1").key])

    assert verdict.signature == Signature.INVALID


# --------------------------------------------------------------------------------------------
# 5. Transport and identity
# --------------------------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def oca_wrapper(plain: str, spki: bytes) -> str:
    """The OCA application note's JSON, as OCPP 2.x stations send it (key inside, base64)."""
    return json.dumps(
        {
            "signedMeterData": b64(plain),
            "publicKey": b64(f"oca:base16:asn1:{spki.hex()}"),
            "encodingMethod": "OCMF",
            "signingMethod": "ECDSA-secp256r1-SHA256",
        }
    )


# name -> (plain record, SPKI) -> (data as sent, key sent beside it)
TRANSPORTS: dict[str, Callable[[str, bytes], tuple[str, str | None]]] = {
    "plain": lambda plain, spki: (plain, spki.hex()),
    "OCA JSON wrapper": lambda plain, spki: (oca_wrapper(plain, spki), None),
    "hex": lambda plain, spki: (plain.encode("utf-8").hex().upper(), spki.hex()),
    "base64": lambda plain, spki: (b64(plain), spki.hex()),
    "base64 with line breaks": lambda plain, spki: (
        "\r\n".join(re.findall(".{1,76}", b64(plain))),
        spki.hex(),
    ),
}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_every_transport_gives_the_same_record(transport: str) -> None:
    key = signer("secp256r1")
    plain = signed_record("secp256r1")
    data, claim = TRANSPORTS[transport](plain, key.spki)

    claimed = examine(data, claim)
    registered = examine(data, claim, [key.key])

    assert claimed.signature == Signature.CLAIMED_KEY_ONLY, claimed.reason
    assert claimed.claimed_key_fingerprint == key.key.fingerprint
    assert registered.signature == Signature.VERIFIED, registered.reason
    assert claimed.record_id == registered.record_id == RECORD_ID
    assert registered.signed_data == plain


def test_the_same_record_sent_twice_is_one_record() -> None:
    text = signed_record("secp256r1")  # say in MeterValues, then in StopTransaction
    key = signer("secp256r1").spki.hex()

    first, second = examine(text, key), examine(text.encode("utf-8"), key)

    assert first.record_id == second.record_id == RECORD_ID
    assert first == second


def test_a_bar_inside_a_signed_string_does_not_split_the_payload() -> None:
    text = signed_record("secp256r1")
    assert text.split("|")[1].encode("utf-8") != PAYLOAD  # a naive split would cut TT

    verdict = examine(text, registered_keys=[signer("secp256r1").key])

    assert verdict.signature == Signature.VERIFIED
    assert verdict.fields["TT"] == "Tarif A | 0,39 EUR/kWh"


def test_numbers_keep_their_text() -> None:
    text = signed_record("secp256r1")
    verdict = examine(text)
    parsed = ocmf.readings(ocmf.parse(text.encode("utf-8")))

    assert [reading["value"] for reading in verdict.readings] == ["2935.600", "2947.125"]
    assert parsed[0].value_text == "2935.600"
    assert parsed[0].value == Decimal("2935.600")
    assert str(parsed[0].value) == "2935.600"


def test_readings_carry_omitted_fields_forward() -> None:
    begin, end = ocmf.readings(ocmf.parse(signed_record("secp256r1").encode("utf-8")))

    assert (end.type, end.value_text, end.time_text) == (
        "E",
        "2947.125",
        "2024-03-01T11:20:41,000+0100 S",
    )
    carried = ("obis", "unit", "current_type", "error_flags", "status")
    assert (
        [getattr(end, name) for name in carried]
        == [getattr(begin, name) for name in carried]
        == ["1-b:1.8.0", "kWh", "AC", "", "G"]
    )
    assert end.time is not None and end.time.isoformat() == "2024-03-01T10:20:41+00:00"
    assert end.time_status == "S"


@settings(max_examples=100, deadline=None)
@given(number=st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,20})?", fullmatch=True))
def test_any_decimal_number_keeps_its_text(number: str) -> None:
    payload = f'{{"RD":[{{"TX":"B","RV":{number},"RU":"kWh"}}]}}'.encode()

    verdict = examine(signed_record("secp256r1", payload), signer("secp256r1").spki.hex())

    assert verdict.signature == Signature.CLAIMED_KEY_ONLY
    assert verdict.readings[0]["value"] == number


def test_a_vendor_string_value_keeps_its_text() -> None:
    payload = b'{"RD":[{"TM":"2024-03-01T10:03:15,000+0100 S","TX":"B","RV":" 12.50 ","RU":"kWh"}]}'
    (reading,) = ocmf.readings(ocmf.parse(b"OCMF|" + payload + b'|{"SD":"00"}'))

    assert (reading.value_text, reading.value) == (" 12.50 ", Decimal("12.50"))


# --------------------------------------------------------------------------------------------
# 6. Hostile input
# --------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALFEN_VECTOR = next(v for v in VECTORS if v["format"] == "ALFEN" and v["expected"] == "valid")
ALFEN_LINE, ALFEN_KEY = ALFEN_VECTOR["signed_data"], registered_key(ALFEN_VECTOR)

# Any character, lone surrogates included (a JSON "\ud800" escape in an OCPP frame makes one).
ANY_CHARACTER = st.characters(exclude_categories=())
# Starts that lead examine down each of its paths before the garbage begins.
PREFIXES = [
    "",
    "OCMF|",
    "OCMF|{",
    'OCMF|{"RD":[',
    "OCMF|{}|",
    "AP;0;3;",
    '{"signedMeterData":',
    "<",
]


def assert_is_verdict(verdict: object) -> None:
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.signature, Signature)
    json.dumps(verdict.to_json())  # what the HTTP API renders


def random_keys(points: list[bytes]) -> list[PublicKey]:
    return [PublicKey(point, None) for point in points]


@FUZZ
@given(
    data=st.one_of(
        st.text(ANY_CHARACTER),
        st.binary(),
        st.builds(str.__add__, st.sampled_from(PREFIXES), st.text(ANY_CHARACTER)),
        st.builds(bytes.__add__, st.sampled_from(PREFIXES).map(str.encode), st.binary()),
    ),
    claimed=st.one_of(st.none(), st.text(ANY_CHARACTER, max_size=200)),
    points=st.lists(st.binary(max_size=100), max_size=2),
)
# Lone surrogates: in the text itself, inside a payload, and escaped inside the OCA wrapper.
@example(data="\ud800", claimed=None, points=[])
@example(data='OCMF|{"TT":"\udfff"}|{"SD":"00"}', claimed="\ud800", points=[])
@example(data='{"signedMeterData":"\\ud800","publicKey":"\\udc00"}', claimed=None, points=[])
def test_any_input_gives_a_verdict(
    data: str | bytes, claimed: str | None, points: list[bytes]
) -> None:
    verdict = examine(data, claimed, random_keys(points))

    assert_is_verdict(verdict)
    assert not verdict.signature_holds


@FEW
@given(
    curve=st.sampled_from(CURVE_NAMES),
    claimed=st.one_of(st.none(), st.text(ANY_CHARACTER, max_size=200)),
    points=st.lists(
        st.one_of(
            st.binary(max_size=100),
            st.binary(min_size=48, max_size=96).map(b"\x04".__add__),
        ),
        max_size=3,
    ),
)
def test_no_other_key_verifies(curve: str, claimed: str | None, points: list[bytes]) -> None:
    verdict = examine(signed_record(curve), claimed, random_keys(points))

    assert_is_verdict(verdict)
    assert not verdict.signature_holds
    assert verdict.record_id == RECORD_ID


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param(signed_record("secp256r1"), signer("secp256r1").key, id="OCMF-secp256r1"),
        pytest.param(signed_record("secp192k1"), signer("secp192k1").key, id="OCMF-secp192k1"),
        pytest.param(b64(signed_record("secp256r1")), signer("secp256r1").key, id="OCMF-base64"),
        pytest.param(ALFEN_LINE, ALFEN_KEY, id="Alfen"),
    ],
)
def test_a_truncated_record_does_not_hold(text: str, key: PublicKey) -> None:
    whole = examine(text, registered_keys=[key])
    assert whole.signature == Signature.VERIFIED

    for length in range(len(text)):
        verdict = examine(text[:length], registered_keys=[key])
        assert isinstance(verdict, Verdict)
        if verdict.signature_holds:
            # Only what an Alfen line may leave out went: its closing ';' and base32 padding.
            assert text[length:].strip("=;") == "", length
            assert verdict.record_id == whole.record_id


@FUZZ
@given(subject=st.sampled_from(("Alfen",) + CURVE_NAMES), data=st.data())
def test_flipped_bytes_never_verify_a_changed_record(subject: str, data: st.DataObject) -> None:
    if subject == "Alfen":
        original, key, payload = ALFEN_LINE.encode("ascii"), ALFEN_KEY, range(0)
    else:
        original, key = genuine(subject).encode("utf-8"), signer(subject).key
        payload = range(len("OCMF|"), len("OCMF|") + len(PAYLOAD))
    flips = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)),
            min_size=1,
            max_size=4,
        )
    )
    tampered = bytearray(original)
    for position, value in flips:
        tampered[position] = value

    verdict = examine(bytes(tampered), registered_keys=[key])

    assert_is_verdict(verdict)
    # The signature section is not signed: a change there may still verify (hex in lower case,
    # another spelling of SA), but then the signed bytes, and so the record, are the same.
    if verdict.signature_holds:
        assert verdict.record_id == examine(original).record_id
    if any(tampered[i] != original[i] for i in payload):
        assert not verdict.signature_holds


# What the payload's boundary depends on: brackets, quotes, escapes, bars, bytes that are no UTF-8.
BOUNDARY_TOKENS = [b"{", b"}", b"[", b"]", b'"', b"\\", b"|", b":", b",", b"1.50", b"NaN"]
BOUNDARY_TOKENS += [b"a", b" ", b"\n", b"\xff", b"\xc3\xa9", b"\\u00e9", b'"SD"', b"true"]
TRICKY_TEXT = st.text(st.sampled_from('{}[]"\\|: aé\n'), max_size=8)
JSON_PAYLOADS = st.dictionaries(
    TRICKY_TEXT,
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False) | TRICKY_TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
).map(lambda value: json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


@FUZZ
@given(
    payload=st.one_of(
        JSON_PAYLOADS,
        st.lists(st.sampled_from(BOUNDARY_TOKENS), max_size=30).map(lambda t: b"{" + b"".join(t)),
    ),
    rest=st.lists(st.sampled_from(BOUNDARY_TOKENS), max_size=10).map(b"".join),
)
@example(payload=b'{"TT":"a|b"}', rest=b'|{"SD":"00"}')  # a bar inside a string: careful path
@example(payload=b'{"RV":1e-9999999999999999999}', rest=b"|{}")  # orjson reads 0.0; Decimal not
@example(payload=b'{"RV":1e-999999999999999999}', rest=b"|{}")  # 18 digits: both read it
@example(payload=b'{"RV":1e-0000000000000000000001}', rest=b"|{}")
@example(payload=b'{"ID":"\\ud800"}', rest=b"|{}")  # a lone surrogate: only json reads it
@example(payload=b'{"RV":123456789012345678901234567890}', rest=b"|{}")
@example(payload=b'{"a":1} ', rest=b"|{}")  # blank before the bar: split refuses it
def test_parse_ends_the_payload_where_split_does(payload: bytes, rest: bytes) -> None:
    # split walks the bytes; parse lets a JSON parser find the end when the payload is JSON, and
    # reads the payload's numbers as Decimal only when asked: that read must then succeed.
    data = b"OCMF|" + payload + rest
    try:
        payload_bytes, _ = ocmf.split(data)
    except ocmf.OcmfError as error:
        with pytest.raises(ocmf.OcmfError, match=re.escape(str(error))):
            ocmf.parse(data)
        return
    try:
        expected = ocmf._json_object(payload_bytes, "payload")
    except ocmf.OcmfError as error:
        with pytest.raises(ocmf.OcmfError, match=re.escape(str(error))):
            ocmf.parse(data)
        return
    try:
        parsed = ocmf.parse(data)
    except ocmf.OcmfError:
        return  # a signature section that is not JSON: the verdict tests cover it
    assert parsed.payload_bytes == payload_bytes
    assert parsed.payload == expected


NESTING_PLACES: dict[str, Callable[[str], str]] = {
    "payload RD": lambda inner: f'OCMF|{{"RD":{inner}}}|{{"SD":"3006020101020101"}}',
    "payload ID": lambda inner: f'OCMF|{{"ID":{inner}}}|{{"SD":"3006020101020101"}}',
    "payload vendor field": lambda inner: f'OCMF|{{"ZZ":{inner}}}|{{"SD":"3006020101020101"}}',
    "signature section": lambda inner: f'OCMF|{{}}|{{"SD":{inner}}}',
    "wrapper field": lambda inner: f'{{"signedMeterData":"x","a":{inner}}}',
    "wrapper signedMeterData": lambda inner: f'{{"signedMeterData":{inner}}}',
    "bare": lambda inner: inner,
}


@FEW
@given(
    place=st.sampled_from(sorted(NESTING_PLACES)),
    depth=st.integers(1, 100_000),
    brackets=st.sampled_from([("[", "]"), ('{"a":', "}")]),
    balanced=st.booleans(),
    encoded=st.booleans(),
)
@example(place="bare", depth=100_000, brackets=("[", "]"), balanced=False, encoded=False)
@example(place="payload RD", depth=100_000, brackets=("[", "]"), balanced=False, encoded=False)
@example(place="payload RD", depth=20_000, brackets=("[", "]"), balanced=True, encoded=False)
@example(place="payload ID", depth=995, brackets=("[", "]"), balanced=True, encoded=False)
@example(place="payload ID", depth=500, brackets=('{"a":', "}"), balanced=True, encoded=True)
@example(place="wrapper field", depth=10_000, brackets=('{"a":', "}"), balanced=True, encoded=False)
def test_deeply_nested_json_gives_a_verdict(
    place: str, depth: int, brackets: tuple[str, str], balanced: bool, encoded: bool
) -> None:
    opening, closing = brackets
    text = NESTING_PLACES[place](opening * depth + (closing * depth if balanced else ""))

    verdict = examine(b64(text) if encoded else text)

    assert isinstance(verdict, Verdict)
    assert not verdict.signature_holds


# Not JSON numbers, or beyond what Decimal can hold: the record is refused at parsing.
REFUSED_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e9999999999999999999",
    "-1e-9999999999999999999",
]
# Odd but readable (strings are vendor deviations the verdict reports without a value).
ACCEPTED_NUMBERS = [
    "-0",
    "1e999999999",
    "1E-999999999",
    "1" + "0" * 5000,  # 10**5000
    '"NaN"',
    '"sNaN"',
    '"-Infinity"',
    '"1e9999999999999999999"',
]
# Thousands of digits: more than int() takes from text (4300), which Decimal does not mind.
HUGE = st.builds(
    lambda lead, body, repeat: lead + body * repeat,
    st.sampled_from("123456789"),
    st.text("0123456789", min_size=5, max_size=10),
    st.integers(500, 1000),
)


@FEW
@given(
    number=st.one_of(
        st.sampled_from(REFUSED_NUMBERS + ACCEPTED_NUMBERS),
        HUGE,
        st.tuples(HUGE, HUGE).map(lambda pair: f"-{pair[0]}.{pair[1]}"),
    ),
    field=st.sampled_from(["RV", "CL", "RI", "TM"]),
    top_level=st.sampled_from([None, "PG", "FV", "IS", "ZZ"]),
)
def test_huge_and_special_numbers_give_a_verdict(
    number: str, field: str, top_level: str | None
) -> None:
    reading = {"TM": '"2024-03-01T10:03:15,000+0100 S"', "TX": '"B"', "RV": "1", "ST": '"G"'}
    reading[field] = number
    extra = f'"{top_level}":{number},' if top_level else ""
    body = ",".join(f'"{name}":{value}' for name, value in reading.items())
    payload = f'{{{extra}"RD":[{{{body}}}]}}'.encode()

    verdict = examine(
        signed_record("secp256r1", payload), registered_keys=[signer("secp256r1").key]
    )

    assert_is_verdict(verdict)
    if number in REFUSED_NUMBERS:
        assert verdict.signature == Signature.INVALID
    else:
        assert verdict.signature == Signature.VERIFIED, verdict.reason
        assert verdict.record_id == hashlib.sha256(payload).hexdigest()


@FEW
@given(
    text=st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters='"\\'))
)
def test_latin1_bytes_in_a_payload_are_invalid(text: str) -> None:
    # "für" in latin-1 is 66 FC 72: FC starts no UTF-8 sequence, so these bytes are never UTF-8.
    latin1 = f'{{"TT":"Tarif für {text}","RD":[]}}'.encode("latin-1")
    key = signer("secp256r1")
    section = json.dumps({"SD": key.sign(latin1).hex()}).encode("ascii")

    verdict = examine(b"OCMF|" + latin1 + b"|" + section, registered_keys=[key.key])

    assert_is_verdict(verdict)
    assert verdict.signature == Signature.INVALID  # JSON is UTF-8; this is not


@FEW
@given(
    garbage=st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]),
    offset=st.integers(0, len("Tarif A | 0,39 EUR/kWh")),
)
def test_invalid_utf8_inside_a_signed_payload_is_invalid(garbage: bytes, offset: int) -> None:
    position = PAYLOAD.index(b"Tarif") + offset
    payload = PAYLOAD[:position] + garbage + PAYLOAD[position:]
    key = signer("secp256r1")
    section = b'{"SD":"' + key.sign(payload).hex().encode() + b'"}'

    verdict = examine(b"OCMF|" + payload + b"|" + section, registered_keys=[key.key])

    assert_is_verdict(verdict)
    assert verdict.signature == Signature.INVALID


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "cp500"])
def test_a_record_in_another_encoding_does_not_hold(codec: str) -> None:
    text = signed_record("secp256r1").encode(codec)

    verdict = examine(text, registered_keys=[signer("secp256r1").key])

    assert_is_verdict(verdict)
    assert not verdict.signature_holds


@FEW
@given(
    size=st.integers(64 * 1024 - 1000, 300 * 1024),
    as_bytes=st.booleans(),
    encoded=st.booleans(),
)
@example(size=128 * 1024 + 1, as_bytes=False, encoded=False)
@example(size=64 * 1024 - 1000, as_bytes=True, encoded=True)
def test_oversized_input_gives_a_verdict(size: int, as_bytes: bool, encoded: bool) -> None:
    # A valid signed record, grown by a vendor field beyond anything a station sends.
    payload = PAYLOAD[:-1] + b',"ZZ":"' + b"x" * max(0, size - len(PAYLOAD)) + b'"}'
    text = signed_record("secp256r1", payload)
    data = b64(text) if encoded else text

    verdict = examine(
        data.encode() if as_bytes else data, registered_keys=[signer("secp256r1").key]
    )

    assert isinstance(verdict, Verdict)
    if len(text) > ocmf.MAX_OCMF_BYTES:
        assert verdict.signature == Signature.INVALID
        assert verdict.reason is not None and "longer than" in verdict.reason
    else:
        assert verdict.signature == Signature.VERIFIED


def test_identify_names_a_record_as_examine_does_without_verifying() -> None:
    for vector in VECTORS:
        identity, verdict = identify(vector["signed_data"]), examine(vector["signed_data"])
        assert (identity.format, identity.record_id) == (verdict.format, verdict.record_id)
        assert identity.fields == verdict.fields and identity.readings == verdict.readings
    wrapped = json.dumps({"signedMeterData": "T0NNRnx7fXx7fQ==", "publicKey": "oca:base16:asn1:00"})
    assert identify(wrapped).claimed_key == "oca:base16:asn1:00"  # the key inside the wrapper
    assert identify("[" * 100_000).format == "unknown"
    assert identify(None).format == "none"
