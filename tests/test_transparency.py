"""Files with signed meter values: the Transparenzsoftware's XML (ledger.signed.transparency),
everything else an auditor hands in (ledger.signed.inputs), `ladebuch verify` and POST /v1/verify.

Sections, in order:

1. the XML file: exact bytes, byte-for-byte round trips, every real vector through a file;
2. reading files written as the Transparenzsoftware's and Chargy's own are, and refusing DTDs;
3. `records_in`: each input shape built around real vectors, and garbage;
4. the command line (a real process) and the HTTP API (in process, both stores).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.signed import inputs, transparency
from ledger.signed.inputs import records_in, verify_file
from ledger.signed.keys import parse_public_key
from ledger.signed.transparency import TransparencyFileError, document, read
from ledger.signed.verify import Signature, examine
from tests.conftest import CONFORMANCE
from tests.test_api import Api, api, problem  # noqa: F401 (api is a fixture)

VECTORS: list[dict[str, Any]] = json.loads(
    (CONFORMANCE / "signed-meter-values" / "real_vectors.json").read_text(encoding="utf-8")
)["vectors"]
HOLDS = (Signature.VERIFIED, Signature.CLAIMED_KEY_ONLY)


def key_hex(vector: dict[str, Any]) -> str | None:
    """The vector's key as hex for a `<publicKey encoding="hex">` (Alfen's is in the line)."""
    if vector.get("public_key_spki_hex"):
        return str(vector["public_key_spki_hex"])
    encoding, key = vector["public_key_encoding"], vector["public_key"]
    if encoding.startswith("hex"):
        return "".join(key.split())
    if encoding.startswith("base64"):
        return base64.b64decode(key).hex().upper()
    return None


OCMF_VALID = next(
    v
    for v in VECTORS
    if v["format"] == "OCMF"
    and v["expected"] == "valid"
    and "secp256r1" in v["note"]
    and v.get("public_key_spki_hex")
)
OCMF_INVALID = next(v for v in VECTORS if v["source_path"].endswith("kcp30_fail.xml"))
ALFEN_VALID = next(v for v in VECTORS if v["format"] == "ALFEN" and v["expected"] == "valid")
EMH = next(v for v in VECTORS if v["format"].startswith("XML signedMeterValue"))


# --------------------------------------------------------------------------------------------
# 1. The XML file
# --------------------------------------------------------------------------------------------


def test_a_file_is_the_values_the_transparenzsoftware_reads_exactly() -> None:
    written = document(
        [
            (1, "Transaction.Begin", 'OCMF|{"FV":"1.0"}|{"SD":"30"}', "OCMF", "30 59:ab"),
            ("1", "Transaction.End", 'OCMF|{"FV":"1.0","TT":"a&b<c>"}|{}', "OCMF", None),
        ]
    )
    assert written == (
        b'<?xml version="1.0" encoding="UTF-8"?><values>'
        b'<value transactionId="1" context="Transaction.Begin">'
        b'<signedData format="OCMF" encoding="plain">OCMF|{"FV":"1.0"}|{"SD":"30"}</signedData>'
        b'<publicKey encoding="hex">3059AB</publicKey></value>'
        b'<value transactionId="1" context="Transaction.End">'
        b'<signedData format="OCMF" encoding="plain">OCMF|{"FV":"1.0","TT":"a&amp;b&lt;c&gt;"}|{}'
        b"</signedData></value></values>"
    )


@pytest.mark.parametrize(
    "bad",
    [
        ("abc", None, "OCMF|{}|{}", "OCMF", None),  # a UUID-like OCPP 2.0.1 id is no integer
        (True, None, "OCMF|{}|{}", "OCMF", None),
        (1, None, "", "OCMF", None),
        (1, None, "OCMF|{}|{}", "OCMF", "not a key"),
        (1, None, "OCMF|{}|{}", "OCMF", "30A"),
    ],
)
def test_a_file_is_refused_what_the_transparenzsoftware_could_not_read(bad: Any) -> None:
    with pytest.raises(ValueError):
        document([bad])


PLAIN = [
    # quotes stay text, `|` inside a signed string, what XML must escape, non-ASCII
    'OCMF|{"FV":"1.0","TT":"Tarif \\"Nacht\\" | 0,29 €/kWh & <mehr> ]]>","RD":[]}|{"SD":"3045"}',
    'OCMF|{"ID":"Müller ß 充电 🚗","TT":"&amp; is not an entity here"}|{"SD":"00"}',
    'OCMF|{"TT":"tab\there",\n"X":1,"Y":"\u2028\u0085"}|{"SD":"00"}',
]
NOT_PLAIN = [
    'OCMF|{"a":1,\r\n"b":2}|{}',  # an XML parser would turn \r\n into \n
    'OCMF|{"a":"\x01"}|{}',  # not allowed in XML 1.0 at all
    'OCMF|{"a":"\ufffe"}|{}',
    " OCMF|{}|{}\n",  # the Transparenzsoftware trims the element text
]


@pytest.mark.parametrize("signed", PLAIN)
def test_signed_strings_go_as_plain_text_and_come_back_byte_for_byte(signed: str) -> None:
    written = document([(7, "Transaction.Begin", signed, "OCMF", None)])
    escaped = signed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f'encoding="plain">{escaped}</signedData>'.encode() in written
    assert b"&quot;" not in written
    [entry] = read(written)
    assert entry.data.encode("utf-8") == signed.encode("utf-8")
    assert (entry.transaction_id, entry.context, entry.format) == ("7", "Transaction.Begin", "OCMF")


@pytest.mark.parametrize("signed", NOT_PLAIN)
def test_what_plain_xml_would_change_goes_as_base64(signed: str) -> None:
    written = document([(7, None, signed, "OCMF", None)])
    assert b'encoding="base64"' in written
    assert read(written)[0].data == signed


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_any_text_survives_the_file(texts: list[str]) -> None:
    written = document([(i, "Transaction.Begin", t, "OCMF", None) for i, t in enumerate(texts)])
    assert [e.data for e in read(written)] == texts


def test_every_real_vector_survives_the_file_with_the_verdict_it_has_alone() -> None:
    values = []
    for index, vector in enumerate(VECTORS):
        found = re.search(r"transactionId=(\d+)", vector["source_context"])
        context = re.search(r"context=(Transaction\.\w+)", vector["source_context"])
        form = vector["format"] if vector["format"] in ("OCMF", "ALFEN", "ISA_EDL_40_P") else None
        values.append(
            (
                found.group(1) if found else index,
                context.group(1) if context else None,
                vector["signed_data"],
                form,
                key_hex(vector),
            )
        )
    written = document(values)
    entries = read(written)
    assert [e.data for e in entries] == [v["signed_data"] for v in VECTORS]
    records = verify_file(written)
    assert len(records) == len(VECTORS) == 209
    outcome: dict[tuple[str, str], set[str]] = {}
    for record, vector, entry in zip(records, VECTORS, entries, strict=True):
        key = key_hex(vector)
        if key is not None:
            assert entry.public_key is not None
            assert entry.public_key == re.sub(r"[\s:]", "", key).upper()
        alone = examine(vector["signed_data"], entry.public_key).to_json()
        assert record == {"label": entry.label, **alone}
        outcome.setdefault((vector["format"], vector["expected"]), set()).add(record["signature"])
    assert outcome[("OCMF", "valid")] == outcome[("ALFEN", "valid")] == {"claimed-key-only"}
    assert outcome[("OCMF", "invalid")] == outcome[("ALFEN", "invalid")] == {"invalid"}
    assert outcome[("XML signedMeterValue (EMH/Mennekes-style)", "unknown")] == {"unsupported"}


# --------------------------------------------------------------------------------------------
# 2. Files as others write them
# --------------------------------------------------------------------------------------------


def _spaced(hex_text: str) -> str:
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def test_a_file_written_the_way_the_transparenzsoftware_examples_are() -> None:
    data, key = OCMF_VALID["signed_data"], OCMF_VALID["public_key_spki_hex"]
    b64 = base64.b64encode(data.encode()).decode()
    # Line breaks and indentation around the signed string, a transactionId on signedData,
    # a spaced hex key, "plain" for a hex key, base64 data and keys, no encoding at all.
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<values>
<value transactionId="1" context="Transaction.Begin">
        <signedData format="OCMF" encoding="plain" transactionId="29">
        {escape(data)}
        </signedData>
        <publicKey encoding="hex">{_spaced(key)}</publicKey>
    </value><value transactionId="1" context="Transaction.End">
    <signedData format="OCMF" encoding="base64">{b64[:40]}
    {b64[40:]}</signedData>
    <publicKey encoding="base64">{base64.b64encode(bytes.fromhex(key)).decode()}</publicKey>
</value>
<value><signedData format="OCMF" encoding="hex">{data.encode().hex()}</signedData>
<publicKey encoding="plain">{key}</publicKey></value>
<value><signedData format="OCMF">{escape(data)}</signedData></value>
</values>
"""
    entries = read(text.encode())
    assert [e.data for e in entries] == [data] * 4
    assert [e.label for e in entries] == [
        "value 1 transactionId=1 context=Transaction.Begin",
        "value 2 transactionId=1 context=Transaction.End",
        "value 3",
        "value 4",
    ]
    assert [parse_public_key(e.public_key or "").fingerprint for e in entries[:3]] == [
        parse_public_key(key).fingerprint
    ] * 3
    assert entries[3].public_key is None
    signatures = [r["signature"] for r in verify_file(text.encode())]
    assert signatures == ["claimed-key-only"] * 3 + ["no-key"]


def test_chargy_s_alfen_container_and_the_emh_xml_inside_and_alone() -> None:
    alfen = ALFEN_VALID["signed_data"]
    chargy = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<values>\n  <chargingStation><id>DE*GEF*E1'
        f'</id></chargingStation>\n  <value>\n    <signedData format="ALFEN">{alfen}</signedData>'
        "\n  </value>\n</values>"
    ).encode()
    [record] = verify_file(chargy)
    assert (record["label"], record["format"], record["signature"]) == (
        "value 1",
        "ALFEN",
        "claimed-key-only",
    )

    # EMH/Mennekes XML travels as escaped text, without format or encoding (hummel.xml's way).
    emh = EMH["signed_data"]
    inside = f'<?xml version="1.0"?><values>\n<value transactionId="9850" context="Transaction.Begin">\n<signedData>\n{escape(emh)}\n</signedData>\n</value></values>'
    [entry] = read(inside.encode())
    assert entry.data == emh and entry.format is None
    [alone] = read(emh.encode())
    assert alone.data == emh and alone.label == "signedMeterValue"
    for file in (inside.encode(), emh.encode()):
        [record] = verify_file(file)
        assert record["signature"] == "unsupported"
        assert record["format"] == "EMH/Mennekes XML"


@pytest.mark.parametrize(
    ("xml", "says"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">'
            b"]><values><value><signedData>&b;</signedData></value></values>",
            "DTD",
        ),
        (
            b'<!DOCTYPE values [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<values><value><signedData>&x;</signedData></value></values>",
            "DTD",
        ),
        (b'<!DOCTYPE values SYSTEM "http://example.invalid/v.dtd"><values/>', "DTD"),
        (b"<values><value><signedData>&x;</signedData></value></values>", "not well-formed"),
        (b"<values><value>", "not well-formed"),
        (b"<current><value/></current>", "root element is <current>"),
        (b"<html><body>OCMF|{}|{}</body></html>", "root element is <html>"),
    ],
)
def test_reading_refuses_dtds_entities_and_other_xml(xml: bytes, says: str) -> None:
    with pytest.raises(TransparencyFileError, match=re.escape(says)):
        read(xml)
    [record] = verify_file(xml)
    assert record["signature"] == "invalid" and says in record["reason"]


def test_reading_has_a_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transparency, "MAX_DOCUMENT_BYTES", 100)
    with pytest.raises(TransparencyFileError, match="larger than 100 bytes"):
        read(b"<values>" + b" " * 100 + b"</values>")


def test_values_that_cannot_be_decoded_say_why() -> None:
    xml = (
        b"<values>"
        b'<value><signedData encoding="base64">not base64!</signedData></value>'
        b'<value><signedData encoding="rot13">BPZS</signedData></value>'
        b"<value><signedData><signedMeterValue/></signedData></value>"
        b'<value transactionId="4"><publicKey encoding="hex">3059</publicKey></value>'
        b'<value><signedData encoding="hex">1b1b1b1b01010101 7605</signedData></value>'
        b"<value><signedData>OCMF|{}|{}</signedData><signedData>OCMF|{}|{}</signedData></value>"
        b"</values>"
    )
    entries = read(xml)
    assert [e.problem for e in entries] == [
        "the signedData is not valid base64",
        "unknown signedData encoding 'rot13' (plain, hex, base64 or base32)",
        "signedData holds XML elements; signed XML must be escaped text",
        "the value has no signedData",
        None,
        "the value has more than one signedData",
    ]
    records = verify_file(xml)
    assert [r["signature"] for r in records] == ["invalid"] * 4 + ["unsupported", "invalid"]
    assert records[3]["label"] == "value 4 transactionId=4"
    assert records[4]["format"] == "SML/EDL40"  # binary content comes as hex


# --------------------------------------------------------------------------------------------
# 3. What an auditor hands in
# --------------------------------------------------------------------------------------------

TIME = "2026-11-24T12:00:00Z"


def _shapes() -> dict[str, tuple[bytes, list[str]]]:
    """Each input shape around the real secp256r1 vector, with the labels its records get."""
    data, key = OCMF_VALID["signed_data"], OCMF_VALID["public_key_spki_hex"]
    b64 = base64.b64encode(data.encode()).decode()
    signed_meter_value = {  # OCPP 2.0.1: base64 data, the key as base64 of DER
        "signedMeterData": b64,
        "signingMethod": "ECDSA-secp256r1-SHA256",
        "encodingMethod": "OCMF",
        "publicKey": base64.b64encode(bytes.fromhex(key)).decode(),
    }
    oca = json.dumps(  # OCPP 1.6, the OCA application note's wrapper, key as oca:base16:asn1
        {
            "signedMeterData": b64,
            "encodingMethod": "OCMF",
            "signingMethod": "ECDSA-secp256r1-SHA256",
            "publicKey": base64.b64encode(f"oca:base16:asn1:{key}".encode()).decode(),
        }
    )
    sampled_16 = {"value": oca, "context": "Transaction.End", "format": "SignedData"}
    plain_16 = {"value": "1234", "context": "Transaction.End", "unit": "Wh"}
    meter_values = {
        "connectorId": 1,
        "transactionId": 7,
        "meterValue": [{"timestamp": TIME, "sampledValue": [plain_16, sampled_16]}],
    }
    transaction_event = {
        "eventType": "Ended",
        "timestamp": TIME,
        "triggerReason": "EVDeparted",
        "seqNo": 3,
        "transactionInfo": {"transactionId": "f793df22"},
        "meterValue": [
            {
                "timestamp": TIME,
                "sampledValue": [
                    {"value": 1234.0, "context": "Transaction.End"},
                    {
                        "value": 1234.0,
                        "context": "Transaction.End",
                        "signedMeterValue": signed_meter_value,
                    },
                ],
            }
        ],
    }
    frame = [2, "m-1", "MeterValues", meter_values]
    export_row = {"charge_point": "WB1", "seq": 4, "text": json.dumps(frame)}
    alfen = ALFEN_VALID["signed_data"]
    in_16 = "$.meterValue[0].sampledValue[1]"
    in_201 = "$.meterValue[0].sampledValue[1].signedMeterValue"
    return {
        "2.0.1 signedMeterValue": (json.dumps(signed_meter_value).encode(), ["$"]),
        "1.6 SampledValue with the OCA wrapper": (json.dumps(sampled_16).encode(), ["$"]),
        "1.6 MeterValues": (json.dumps(meter_values).encode(), [in_16]),
        "2.0.1 TransactionEvent": (json.dumps(transaction_event).encode(), [in_201]),
        "OCPP-J frame": (json.dumps(frame).encode(), ["$[3]" + in_16[1:]]),
        "a list of them": (
            json.dumps([signed_meter_value, transaction_event, frame]).encode(),
            ["$[0]", "$[1]" + in_201[1:], "$[2][3]" + in_16[1:]],
        ),
        "JSON lines, the evidence export": (
            f"{json.dumps(export_row)}\n\n{json.dumps(sampled_16)}\n".encode(),
            ["line 1 $.text:$[3]" + in_16[1:], "line 3 $"],
        ),
        "text, one record a line": (f"{data}\r\n\n  {alfen}\n".encode(), ["line 1", "line 3"]),
        "Transparenzsoftware XML": (
            document([(1, "Transaction.Begin", data, "OCMF", key)]),
            ["value 1 transactionId=1 context=Transaction.Begin"],
        ),
    }


SHAPES = _shapes()


REGISTERED = [
    parse_public_key(OCMF_VALID["public_key_spki_hex"]),
    parse_public_key(base64.b32decode(ALFEN_VALID["public_key"]).hex()),  # Alfen's, from the line
]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_input_shape_gives_its_records_and_they_hold(shape: str) -> None:
    content, labels = SHAPES[shape]
    records = verify_file(content, REGISTERED)
    assert [r["label"] for r in records] == labels
    assert [r["signature"] for r in records] == ["verified"] * len(labels)
    assert {r["record_id"] for r in records} <= {
        examine(OCMF_VALID["signed_data"]).record_id,
        examine(ALFEN_VALID["signed_data"]).record_id,
    }
    # Without registered keys only the key that came along can hold; a bare OCMF line has none.
    bare = [r["format"] == "OCMF" and shape.startswith("text") for r in records]
    assert [r["signature"] for r in verify_file(content)] == [
        "no-key" if alone else "claimed-key-only" for alone in bare
    ]


@pytest.mark.parametrize("encode", ["plain", "hex", "base64"])
def test_a_1_6_sampled_value_without_a_key_is_verified_against_the_registered_one(
    encode: str,
) -> None:
    data = OCMF_VALID["signed_data"]
    value = {
        "plain": data,
        "hex": data.encode().hex(),
        "base64": base64.b64encode(data.encode()).decode(),
    }[encode]
    content = json.dumps({"value": value, "format": "SignedData", "context": "Transaction.Begin"})
    [alone] = verify_file(content.encode())
    assert (alone["signature"], alone["reason"]) == (
        "no-key",
        "no registered key and no key with the data",
    )
    registered = [parse_public_key(OCMF_VALID["public_key_spki_hex"])]
    [record] = verify_file(content.encode(), registered)
    assert record["signature"] == "verified" and record["key"]["source"] == "registered"


def test_recorded_traces_are_read_as_json_lines() -> None:
    traces = CONFORMANCE / "ocpp-traces"
    for name, label in (
        ("vcp-ocpp16-remote-stop-real-ocmf.jsonl", "line 18 $.msg[3].transactionData[0]"),
        ("vcp-ocpp201-remote-stop-real-ocmf.jsonl", "line 20 $.msg[3].meterValue[0]"),
    ):
        [record] = verify_file((traces / name).read_bytes())
        assert record["label"].startswith(label)
        assert record["signature"] == "claimed-key-only"


GARBAGE = [
    (b"", "no-signed-data", "the file is empty"),
    (b" \r\n\t ", "no-signed-data", "the file is empty"),
    (b'{"connectorId": 1, "meterValue": []}', "no-signed-data", "no signed meter value in"),
    (b'{"format": "SignedData", "value": 12}', "invalid", "value is not text"),
    (b"[" * 100_000, "invalid", "nested too deeply"),
    (b'{"a":' * 100_000, "invalid", "nested too deeply"),
    (b"\xff\xfe\x00\x01", "invalid", "neither XML, JSON nor UTF-8 text"),
    (b"<html>", "invalid", "the root element is <html>"),
    (b"<values><value>", "invalid", "not well-formed"),
    (b"{", "invalid", None),
    (b"hello", "invalid", "not a signed meter value format we know"),
    (b"<values/>", "no-signed-data", "the XML holds no <value>"),
]


@pytest.mark.parametrize(("content", "signature", "says"), GARBAGE)
def test_garbage_is_one_verdict_with_a_reason(
    content: bytes, signature: str, says: str | None
) -> None:
    [record] = verify_file(content)
    assert record["signature"] == signature
    assert record["reason"] and (says is None or says in record["reason"])


def test_a_file_has_size_and_record_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    [record] = verify_file(b" " * (inputs.MAX_FILE_BYTES + 1))
    assert record["reason"] == f"the file is larger than {inputs.MAX_FILE_BYTES} bytes"
    monkeypatch.setattr(inputs, "MAX_RECORDS", 2)
    found = records_in(b"a\nb\nc\n")
    assert [i.label for i in found] == ["line 1", "line 2", "records after 2"]
    assert found[2].verdict is not None and found[2].verdict.signature == Signature.INVALID


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["value", "format", "signedMeterData", "publicKey", "meterValue", "x"]),
            children | st.just("SignedData"),
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.binary(max_size=600)
    | st.text(max_size=300).map(str.encode)
    | JSONISH.map(lambda doc: json.dumps(doc).encode())
    | st.text(max_size=100).map(lambda t: f"<values><value><signedData>{t}".encode())
)
def test_no_input_raises(content: bytes) -> None:
    records = verify_file(content)
    assert records
    for record in records:
        assert record["label"] and record["signature"] in {str(s) for s in Signature}
        json.dumps(record)


# --------------------------------------------------------------------------------------------
# 4. `ladebuch verify` and POST /v1/verify
# --------------------------------------------------------------------------------------------

LADEBUCH = Path(sys.executable).parent / "ladebuch"


def ladebuch_verify(
    *args: str, cwd: Path, stdin: bytes | None = None
) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(
        [str(LADEBUCH), "verify", *args], cwd=cwd, input=stdin, capture_output=True, timeout=60
    )
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    return done.returncode, lines, done.stderr.decode()


def test_the_command_line_prints_json_lines_and_exits_with_what_it_found(tmp_path: Path) -> None:
    good = tmp_path / "good.xml"
    good.write_bytes(SHAPES["Transparenzsoftware XML"][0])
    bad = tmp_path / "bad.txt"
    bad.write_text(OCMF_INVALID["signed_data"] + "\n", encoding="utf-8")

    status, lines, _ = ladebuch_verify("good.xml", cwd=tmp_path)
    assert status == 0
    assert [(r["file"], r["label"], r["signature"]) for r in lines] == [
        ("good.xml", "value 1 transactionId=1 context=Transaction.Begin", "claimed-key-only")
    ]
    status, lines, _ = ladebuch_verify(
        "--key", OCMF_VALID["public_key_spki_hex"], str(good), cwd=tmp_path
    )
    assert status == 0 and lines[0]["signature"] == "verified"

    status, lines, _ = ladebuch_verify("good.xml", "bad.txt", cwd=tmp_path)
    assert status == 1
    assert [(r["file"], r["signature"]) for r in lines] == [
        ("good.xml", "claimed-key-only"),
        ("bad.txt", "no-key"),
    ]
    status, lines, _ = ladebuch_verify(
        "--key", OCMF_INVALID["public_key_spki_hex"], "bad.txt", cwd=tmp_path
    )
    assert status == 1 and lines[0]["signature"] == "invalid"

    status, lines, _ = ladebuch_verify("-", cwd=tmp_path, stdin=SHAPES["1.6 MeterValues"][0])
    assert status == 0 and [(r["file"], r["signature"]) for r in lines] == [
        ("-", "claimed-key-only")
    ]
    status, lines, _ = ladebuch_verify("-", cwd=tmp_path, stdin=b"\x00garbage")
    assert status == 1 and len(lines) == 1 and lines[0]["reason"]

    status, lines, err = ladebuch_verify("missing.xml", "good.xml", cwd=tmp_path)
    assert status == 2 and "missing.xml" in err
    assert [r["file"] for r in lines] == ["good.xml"]
    status, lines, err = ladebuch_verify("--key", "no key", "good.xml", cwd=tmp_path)
    assert status == 2 and "--key" in err and lines == []


def post(to: Api, body: bytes, headers: dict[str, str], media_type: str) -> Any:
    return to.client.post(
        "/v1/verify", content=body, headers={**headers, "Content-Type": media_type}
    )


def test_any_role_may_verify_a_file_and_nobody_without_a_key(api: Api) -> None:  # noqa: F811
    admin = api.key("admin")
    customer = api.post("/v1/customers", admin, {"name": "Mieter A"}).json()["id"]
    xml = SHAPES["Transparenzsoftware XML"][0]
    for role in ("admin", "auditor", "accountant", "customer"):
        headers = api.key(role, customer if role == "customer" else None)
        answer = post(api, xml, headers, "application/xml")
        assert answer.status_code == 200, answer.text
        [record] = answer.json()["records"]
        assert record["label"] == "value 1 transactionId=1 context=Transaction.Begin"
        assert record["signature"] == "claimed-key-only"
        assert record == {
            "label": record["label"],
            **examine(OCMF_VALID["signed_data"], OCMF_VALID["public_key_spki_hex"]).to_json(),
        }

    for headers in ({}, {"Authorization": "Bearer nope"}):
        refused = post(api, xml, headers, "application/xml")
        body = problem(refused, 401, "unauthorized")
        assert body["instance"] == "/v1/verify"
        assert refused.headers["www-authenticate"] == "Bearer"


def test_the_api_takes_what_the_command_line_takes(api: Api) -> None:  # noqa: F811
    customer = api.post("/v1/customers", api.key("admin"), {"name": "Mieter B"}).json()["id"]
    headers = api.key("customer", customer)
    for shape, media_type in (
        ("2.0.1 TransactionEvent", "application/json"),
        ("a list of them", "application/json; charset=utf-8"),
        ("text, one record a line", "text/plain"),
        ("Transparenzsoftware XML", "text/xml"),
    ):
        content, labels = SHAPES[shape]
        answer = post(api, content, headers, media_type)
        assert answer.status_code == 200, answer.text
        assert [r["label"] for r in answer.json()["records"]] == labels
        assert verify_file(content) == answer.json()["records"]

    for garbage, says in ((b"<values><value>", "not well-formed"), (b"[" * 60_000, "deeply")):
        answer = post(api, garbage, headers, "application/xml")
        assert answer.status_code == 200, answer.text
        [record] = answer.json()["records"]
        assert record["signature"] == "invalid" and says in record["reason"]
    problem(
        post(api, b"OCMF|{}|{}", headers, "application/x-www-form-urlencoded"),
        415,
        "unsupported-media-type",
    )
    problem(post(api, b"  \n", headers, "text/plain"), 422, "invalid-value")
    problem(post(api, b"x" * (65 * 1024), headers, "text/plain"), 413, "body-too-large")

    operation = api.client.get("/openapi.json").json()["paths"]["/v1/verify"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/xml",
        "text/plain",
    }
    assert {"401", "403", "413", "415", "422"} <= set(operation["responses"])
