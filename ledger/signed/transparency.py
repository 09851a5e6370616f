"""The S.A.F.E. Transparenzsoftware's XML input file: write one for a customer, read one back.

```
<?xml version="1.0" encoding="UTF-8"?>
<values>
  <value transactionId="1" context="Transaction.Begin">
    <signedData format="OCMF" encoding="plain">OCMF|{...}|{...}</signedData>
    <publicKey encoding="hex">3059...</publicKey>
  </value>
  ...
</values>
```

No namespace. `format` names the Transparenzsoftware's parser (`OCMF`, `ALFEN`, `ISA_EDL_40_P`,
`EDL_40_P`, `EDL_40_SIG`, `EDL_40_MENNEKES`, `PCDF`; absent: it guesses); `encoding` is `plain`,
`hex`, `base64` or `base32`. The Transparenzsoftware trims the element text, and the signature
covers exact bytes, so a signed string is written with nothing around it, and in base64 when plain
XML text would not carry it unchanged (a carriage return, which XML parsers turn into a line feed,
or a character XML 1.0 cannot hold).

Reading refuses DTDs (`<!DOCTYPE`, hence every entity declaration): defusedxml is not installed,
and a file without a DTD cannot expand entities or reach outside itself. The parse is streamed and
keeps only what it needs, under a size limit.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from xml.parsers import expat

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# Characters XML 1.0 text holds unchanged; "\r" is missing on purpose (parsers normalise it to "\n").
_NOT_PLAIN = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TRIMMED = "".join(chr(c) for c in range(0x21))  # what Java's String.trim() removes
_INTEGER = re.compile(r"-?[0-9]+")
_KEY_SEPARATORS = re.compile(r"[\s:]+")
_SML_START = bytes.fromhex("1b1b1b1b01010101")  # binary: passed on as hex
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


class TransparencyFileError(ValueError):
    """Bytes that are not a Transparenzsoftware input file we can read."""


class Value(NamedTuple):
    """One signed record for `document`."""

    transaction_id: int | str  # the Transparenzsoftware reads it as an integer
    context: str | None  # "Transaction.Begin", "Transaction.End", ...
    signed_data: str  # exactly as signed: the OCMF string, the Alfen line
    format: str | None  # "OCMF", "ALFEN", ...
    public_key_hex: str | None  # DER SubjectPublicKeyInfo in hex


def document(values: Iterable[tuple[int | str, str | None, str, str | None, str | None]]) -> bytes:
    """The input file for the Transparenzsoftware, UTF-8 encoded."""
    root = ET.Element("values")
    for transaction_id, context, signed_data, format_, public_key_hex in values:
        attributes = {"transactionId": _transaction_id(transaction_id)}
        if context:
            attributes["context"] = context
        value = ET.SubElement(root, "value", attributes)
        if not isinstance(signed_data, str) or not signed_data:
            raise ValueError("a value needs its signed data")
        encoding = "plain" if _survives_as_text(signed_data) else "base64"
        signed = ET.SubElement(
            value,
            "signedData",
            {"format": format_, "encoding": encoding} if format_ else {"encoding": encoding},
        )
        if encoding == "plain":
            signed.text = signed_data
        else:
            try:
                raw = signed_data.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the signed data is not valid Unicode text") from None
            signed.text = base64.b64encode(raw).decode("ascii")
        if public_key_hex:
            key = _KEY_SEPARATORS.sub("", public_key_hex)
            if not _HEX.fullmatch(key):
                raise ValueError(f"the public key is not hex: {public_key_hex[:40]!r}")
            ET.SubElement(value, "publicKey", {"encoding": "hex"}).text = key.upper()
    body = ET.tostring(root, encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>' + body.encode("utf-8")


def _transaction_id(value: int | str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return value.strip()
    raise ValueError(f"transactionId must be an integer for the Transparenzsoftware: {value!r}")


def _survives_as_text(text: str) -> bool:
    return text == text.strip(_TRIMMED) and not _NOT_PLAIN.search(text)


@dataclass(frozen=True)
class Entry:
    """One `<value>` of a file, its signed data decoded from the declared encoding."""

    index: int  # 1-based position among the file's values; 0 for a lone <signedMeterValue>
    transaction_id: str | None
    context: str | None
    format: str | None
    data: str  # binary content (SML, or not UTF-8) comes as hex, as the verifier reads it
    public_key: str | None  # as found; base64 and base32 keys turned into hex
    problem: str | None = None  # why the signed data could not be taken out

    @property
    def label(self) -> str:
        """Where the value is: `value 2 transactionId=1 context=Transaction.End`."""
        if self.index == 0:
            return "signedMeterValue"
        parts = [f"value {self.index}"]
        if self.transaction_id is not None:
            parts.append(f"transactionId={self.transaction_id}")
        if self.context is not None:
            parts.append(f"context={self.context}")
        return " ".join(parts)


def read(xml_bytes: bytes) -> list[Entry]:
    """The values of a Transparenzsoftware file. A file whose root is `<signedMeterValue>` (the
    EMH/Mennekes XML record on its own) is one entry holding the whole document."""
    if len(xml_bytes) > MAX_DOCUMENT_BYTES:
        raise TransparencyFileError(f"the XML is larger than {MAX_DOCUMENT_BYTES} bytes")
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    try:
        parser.Parse(xml_bytes, True)
    except expat.ExpatError as error:
        raise TransparencyFileError(f"not well-formed XML: {error}") from None
    if reader.root == "signedMeterValue":
        text = xml_bytes.decode("utf-8-sig", "replace").strip()
        return [Entry(0, None, None, None, text, None)]
    return reader.entries


def _refuse_dtd(*_: Any) -> None:
    raise TransparencyFileError("the XML declares a DTD or entities; refused")


def _local(tag: str) -> str:
    return tag.rsplit(":", 1)[-1]


@dataclass
class _Field:
    attributes: dict[str, str]
    text: list[str] = field(default_factory=list)
    has_elements: bool = False
    repeated: bool = False  # the value has more than one such element


class _Reader:
    """Expat handlers that keep only root, values and their signedData/publicKey."""

    def __init__(self) -> None:
        self.depth = 0
        self.root: str | None = None
        self.entries: list[Entry] = []
        self.count = 0
        self.value: dict[str, str] | None = None
        self.fields: dict[str, _Field] = {}
        self.current: _Field | None = None

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        name = _local(tag)
        if self.depth == 1:
            if name not in ("values", "signedMeterValue"):
                raise TransparencyFileError(
                    f"not a Transparenzsoftware file: the root element is <{tag}>, not <values>"
                )
            self.root = name
        elif self.root != "values":
            return
        elif self.depth == 2 and name == "value":
            self.value, self.fields = attributes, {}
        elif self.depth == 3 and self.value is not None and name in ("signedData", "publicKey"):
            self.current = _Field(attributes)
            if name in self.fields:
                self.fields[name].repeated = True  # this one's text goes nowhere
            else:
                self.fields[name] = self.current
        elif self.depth > 3 and self.current is not None:
            self.current.has_elements = True

    def text(self, data: str) -> None:
        if self.depth == 3 and self.current is not None:
            self.current.text.append(data)

    def end(self, tag: str) -> None:
        if self.depth == 3:
            self.current = None
        elif self.depth == 2 and self.value is not None:
            self.count += 1
            self.entries.append(_entry(self.count, self.value, self.fields))
            self.value = None
        self.depth -= 1


def _entry(index: int, attributes: dict[str, str], fields: dict[str, _Field]) -> Entry:
    signed, key = fields.get("signedData"), fields.get("publicKey")
    public_key = _key(key) if key is not None else None
    base: dict[str, Any] = {
        "index": index,
        "transaction_id": attributes.get("transactionId"),
        "context": attributes.get("context"),
        "format": signed.attributes.get("format") if signed else None,
        "public_key": public_key,
    }
    if signed is None:
        return Entry(data="", problem="the value has no signedData", **base)
    if signed.repeated:
        return Entry(data="", problem="the value has more than one signedData", **base)
    if signed.has_elements:
        return Entry(
            data="",
            problem="signedData holds XML elements; signed XML must be escaped text",
            **base,
        )
    data, problem = _decode("".join(signed.text).strip(_TRIMMED), signed.attributes.get("encoding"))
    return Entry(data=data, problem=problem, **base)


def _decode(text: str, encoding: str | None) -> tuple[str, str | None]:
    name = (encoding or "plain").strip().lower()
    if name == "plain":
        return text, None
    compact = "".join(text.split())
    try:
        if name == "hex":
            raw = bytes.fromhex(compact)
        elif name == "base64":
            raw = base64.b64decode(compact, validate=True)
        elif name == "base32":
            raw = base64.b32decode(compact)
        else:
            return "", f"unknown signedData encoding {encoding!r} (plain, hex, base64 or base32)"
    except (binascii.Error, ValueError):
        return "", f"the signedData is not valid {name}"
    if raw.startswith(_SML_START):
        return raw.hex(), None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.hex(), None


def _key(key: _Field) -> str | None:
    value = "".join(key.text).strip(_TRIMMED)
    if not value:
        return None
    name = (key.attributes.get("encoding") or "").strip().lower()
    if name in ("base64", "base32"):
        compact = "".join(value.split())
        try:
            raw = (
                base64.b64decode(compact, validate=True)
                if name == "base64"
                else base64.b32decode(compact)
            )
        except (binascii.Error, ValueError):
            return value  # the key parser will say what is wrong with it
        return raw.hex().upper()
    return value  # hex, or "plain" (hex text, as the Transparenzsoftware's own examples have it)
