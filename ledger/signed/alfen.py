"""Alfen signed meter values: `AP;<type>;<version>;<key>;<dataset>;<signature>;`, base32 throughout.

The signature is raw r||s on secp192r1 over SHA-256 of an 82-byte dataset; the compressed public
key travels in the line. Dataset layout (little-endian integers): adapter id 10, adapter firmware
version 4, firmware checksum 2, meter id 10, status 4, second index 4, timestamp 4 (Unix seconds),
OBIS id 6, unit 1, scaler 1 (signed power of ten), value 8, UID 20, session id 4, paging 4.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

DATASET_LENGTH = 82
TYPES = {"0": "B", "1": "E", "2": "C"}  # start, stop, intermediate → the OCMF TX letters
UNITS = {30: "Wh", 27: "W"}  # DLMS unit codes


class AlfenError(ValueError):
    pass


@dataclass(frozen=True)
class Alfen:
    type: str
    version: str
    key: bytes
    dataset: bytes
    signature: bytes

    @property
    def adapter_id(self) -> str:
        return self.dataset[0:10].hex().upper()

    @property
    def adapter_firmware(self) -> str:
        return self.dataset[10:14].decode("ascii", "replace")

    @property
    def meter_id(self) -> str:
        return self.dataset[16:26].hex().upper()

    @property
    def status(self) -> int:
        return int.from_bytes(self.dataset[26:30], "little")

    @property
    def second_index(self) -> int:
        return int.from_bytes(self.dataset[30:34], "little")

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(int.from_bytes(self.dataset[34:38], "little"), UTC)

    @property
    def obis(self) -> str:
        a, b, c, d, e, f = self.dataset[38:44]
        return f"{a}-{b}:{c}.{d}.{e}*{f}"

    @property
    def unit(self) -> str:
        code = self.dataset[44]
        return UNITS.get(code, f"unit {code}")

    @property
    def value(self) -> Decimal:
        scaler = int.from_bytes(self.dataset[45:46], "little", signed=True)
        raw = int.from_bytes(self.dataset[46:54], "little")
        return Decimal(raw).scaleb(scaler)

    @property
    def uid(self) -> str:
        return self.dataset[54:74].rstrip(b"\x00").hex().upper()

    @property
    def session_id(self) -> int:
        return int.from_bytes(self.dataset[74:78], "little")

    @property
    def paging(self) -> int:
        return int.from_bytes(self.dataset[78:82], "little")


def parse(text: str) -> Alfen:
    fields = text.strip().split(";")
    if fields[-1] == "":
        fields = fields[:-1]
    if len(fields) != 6 or fields[0] != "AP":
        raise AlfenError("an Alfen line has six fields: AP;type;version;key;dataset;signature;")
    _, kind, version, key, dataset, signature = fields
    if kind not in TYPES:
        raise AlfenError(f"unknown Alfen record type {kind!r}")
    decoded = [
        _base32(part, name)
        for part, name in ((key, "key"), (dataset, "dataset"), (signature, "signature"))
    ]
    if len(decoded[1]) != DATASET_LENGTH:
        raise AlfenError(f"the dataset has {len(decoded[1])} bytes, not {DATASET_LENGTH}")
    if len(decoded[2]) != 48:
        raise AlfenError(f"the signature has {len(decoded[2])} bytes, not 48 (r||s on secp192r1)")
    return Alfen(kind, version, decoded[0], decoded[1], decoded[2])


def _base32(text: str, name: str) -> bytes:
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise AlfenError(f"the {name} is not base32") from None
