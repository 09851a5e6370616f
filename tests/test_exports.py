"""Accounting and roaming exports: DATEV EXTF, CSV, OCPI CDR. Pure functions, no database.

Every DATEV file is read back twice: with `read_datev` and independently with the csv module on
cp1252, so a bug shared by writer and reader cannot hide.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from invoices.document import Customer, Invoice, vat_breakdown
from invoices.exports import (
    DATEV_COLUMNS,
    DatevConfig,
    ExportError,
    cdr_json,
    datev_buchungsstapel,
    invoices_csv,
    ocpi_cdr,
    read_datev,
    sessions_csv,
)
from tests.invoice_samples import (
    KEY,
    OCMF_BEGIN,
    OCMF_END,
    SMALL_BUSINESS,
    TENANT,
    cancellation_of,
    line,
    sample_invoice,
)

CREATED = datetime(2026, 12, 31, 8, 30, 0, 123000, tzinfo=UTC)  # 09:30:00.123 in Berlin
DECEMBER = {"period_start": date(2026, 12, 1), "period_end": date(2026, 12, 31)}
FIRST_14 = (
    "Umsatz (ohne Soll/Haben-Kz)",
    "Soll/Haben-Kennzeichen",
    "WKZ Umsatz",
    "Kurs",
    "Basis-Umsatz",
    "WKZ Basis-Umsatz",
    "Konto",
    "Gegenkonto (ohne BU-Schlüssel)",
    "BU-Schlüssel",
    "Belegdatum",
    "Belegfeld 1",
    "Belegfeld 2",
    "Skonto",
    "Buchungstext",
)
LOCATION = {
    "id": "SONNENHOF",
    "address": "Sonnenweg 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DEU",
    "coordinates": {"latitude": "52.530000", "longitude": "13.384000"},
    "evse_id": "DE*SON*E1",
    "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET",
    "connector_power_type": "AC_3_PHASE",
}
UPDATED = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def skr03() -> DatevConfig:
    return DatevConfig.skr03(
        consultant_number=29098, client_number=55003, fiscal_year_start=date(2026, 1, 1)
    )


def skr04() -> DatevConfig:
    return DatevConfig.skr04(
        consultant_number=29098, client_number=55003, fiscal_year_start=date(2026, 1, 1)
    )


def export(invoices: list[Invoice], config: DatevConfig | None = None) -> bytes:
    return datev_buchungsstapel(invoices, config=config or skr03(), created_at=CREATED, **DECEMBER)


def raw_rows(data: bytes) -> list[list[str]]:
    """The file as the csv module reads it, without any help from invoices.exports."""
    return list(csv.reader(io.StringIO(data.decode("cp1252"), newline=""), delimiter=";"))


def amount(text: str) -> Decimal:
    assert "." not in text and text.count(",") == 1 and len(text.split(",")[1]) == 2
    return Decimal(text.replace(",", "."))


def invoice_with_rates() -> Invoice:
    lines = (line(0), line(1, vat="7"), line(2))
    vat, net, tax, gross = vat_breakdown(lines, small_business=False)
    return replace(
        sample_invoice(), lines=lines, vat=vat, total_net=net, total_vat=tax, total_gross=gross
    )


# --- DATEV -----------------------------------------------------------------------------------


def test_header_as_datev_specifies_it() -> None:
    data = export([sample_invoice()])
    header, _ = read_datev(data)
    raw = raw_rows(data)[0]

    assert len(raw) == 31
    assert raw[:6] == ["EXTF", "700", "21", "Buchungsstapel", "13", "20261231093000123"]
    assert raw[7] == "RE" and raw[8] == "Ladebuch"
    assert raw[10:16] == ["29098", "55003", "20260101", "4", "20261201", "20261231"]
    assert raw[18:22] == ["1", "0", "0", "EUR"]
    assert raw[26] == "03"  # SKR, field 27
    assert header["Kennzeichen"] == "EXTF" and header["Formatversion"] == "13"
    assert header["Beraternummer"] == "29098" and header["Mandantennummer"] == "55003"
    assert (header["Datum vom"], header["Datum bis"]) == ("20261201", "20261231")
    assert header["Sachkontenrahmen"] == "03"
    first_line = data.split(b"\r\n")[0]
    assert first_line.startswith(b'"EXTF";700;21;"Buchungsstapel";13;20261231093000123;;"RE";')
    assert b';"EUR";;;;;"03";' in first_line  # the text fields quoted, the numbers not
    assert read_datev(export([sample_invoice()], skr04()))[0]["Sachkontenrahmen"] == "04"


def test_column_line_is_the_complete_format_13_set() -> None:
    raw = raw_rows(export([sample_invoice()]))
    assert tuple(raw[1]) == DATEV_COLUMNS
    assert len(raw[1]) == 125 and len(set(raw[1])) == 125
    assert tuple(raw[1][:14]) == FIRST_14
    assert raw[1][113:118] == [
        "Festschreibung",
        "Leistungsdatum",
        "Datum Zuord. Steuerperiode",
        "Fälligkeit",
        "Generalumkehr (GU)",
    ]
    assert raw[1][-1] == "Abw. Skontokonto"
    assert all(len(row) == 125 for row in raw[2:])


def test_one_booking_per_invoice_and_per_storno_skr03() -> None:
    invoice = sample_invoice()
    storno = cancellation_of(invoice)
    data = export([invoice, storno])
    header, bookings = read_datev(data)
    raw = raw_rows(data)[2:]

    assert len(bookings) == len(raw) == 2
    booked, reversed_ = bookings
    assert amount(booked["Umsatz (ohne Soll/Haben-Kz)"]) == invoice.total_gross
    assert amount(reversed_["Umsatz (ohne Soll/Haben-Kz)"]) == -storno.total_gross
    assert (booked["Soll/Haben-Kennzeichen"], reversed_["Soll/Haben-Kennzeichen"]) == ("S", "H")
    for booking in bookings:
        assert booking["Konto"] == "1400"
        assert booking["Gegenkonto (ohne BU-Schlüssel)"] == "8400"
        assert booking["BU-Schlüssel"] == ""  # 8400 is an automatic account
        assert booking["WKZ Umsatz"] == "EUR"
        assert booking["Generalumkehr (GU)"] == ""
        assert booking["Leistungsdatum"] == "30112026"
    assert booked["Belegfeld 1"] == "LB-2026-000001"
    assert reversed_["Belegfeld 1"] == "LB-2026-000002"
    assert reversed_["Beleginfo - Art 1"] == "Storno zu"
    assert reversed_["Beleginfo - Inhalt 1"] == "LB-2026-000001"
    assert booked["Buchungstext"] == "Rechnung LB-2026-000001 Max Mieter"
    assert reversed_["Buchungstext"] == "Storno LB-2026-000002 zu LB-2026-000001 Max Mieter"
    # The independent reading sees the same values in the same places.
    assert [row[0] for row in raw] == [b["Umsatz (ohne Soll/Haben-Kz)"] for b in bookings]
    assert [row[1] for row in raw] == ["S", "H"]
    assert [(row[6], row[7], row[10]) for row in raw] == [
        ("1400", "8400", "LB-2026-000001"),
        ("1400", "8400", "LB-2026-000002"),
    ]
    # Belegdatum DDMM inside the header's from/to.
    for booking in bookings:
        day, month = int(booking["Belegdatum"][:2]), int(booking["Belegdatum"][2:])
        booked_on = date(int(header["Datum vom"][:4]), month, day)
        assert header["Datum vom"] <= booked_on.strftime("%Y%m%d") <= header["Datum bis"]
    assert [b["Belegdatum"] for b in bookings] == ["0112", "0512"]
    # Amounts: decimal comma, no thousands separator, no quotes.
    assert f'\r\n{booked["Umsatz (ohne Soll/Haben-Kz)"]};"S";'.encode() in data


def test_skr04_accounts() -> None:
    _, bookings = read_datev(export([sample_invoice()], skr04()))
    assert bookings[0]["Konto"] == "1200"
    assert bookings[0]["Gegenkonto (ohne BU-Schlüssel)"] == "4400"


@pytest.mark.parametrize(("config", "revenue"), [(skr03, "8195"), (skr04, "4185")])
def test_small_business_books_on_the_section_19_revenue_account(
    config: Callable[[], DatevConfig], revenue: str
) -> None:
    invoice = sample_invoice(issuer=SMALL_BUSINESS)
    _, bookings = read_datev(export([invoice], config()))
    assert len(bookings) == 1
    assert bookings[0]["Gegenkonto (ohne BU-Schlüssel)"] == revenue
    assert bookings[0]["BU-Schlüssel"] == ""
    assert amount(bookings[0]["Umsatz (ohne Soll/Haben-Kz)"]) == invoice.total_gross


def test_an_invoice_with_two_rates_books_one_line_per_rate() -> None:
    invoice = invoice_with_rates()
    config = replace(
        skr03(),
        revenue_accounts={Decimal(19): "8400", Decimal(7): "8300"},
        tax_keys={Decimal(7): "2"},
    )
    _, bookings = read_datev(export([invoice], config))
    assert len(bookings) == 2
    by_account = {b["Gegenkonto (ohne BU-Schlüssel)"]: b for b in bookings}
    assert set(by_account) == {"8300", "8400"}
    assert by_account["8300"]["BU-Schlüssel"] == "2"
    assert by_account["8400"]["BU-Schlüssel"] == ""
    parts = {part.rate: part.net + part.tax for part in invoice.vat}
    assert amount(by_account["8300"]["Umsatz (ohne Soll/Haben-Kz)"]) == parts[Decimal(7)]
    assert sum(amount(b["Umsatz (ohne Soll/Haben-Kz)"]) for b in bookings) == invoice.total_gross
    assert by_account["8300"]["Buchungstext"] == "Rechnung LB-2026-000001 7 % Max Mieter"
    assert all(b["Belegfeld 1"] == "LB-2026-000001" for b in bookings)

    with pytest.raises(ExportError, match="no revenue account configured for VAT rate 7 %"):
        export([invoice])


def test_crlf_line_ends_only() -> None:
    data = export([sample_invoice(), cancellation_of(sample_invoice())])
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n") == 4
    assert b"\r" not in data.replace(b"\r\n", b"")


def test_cp1252_umlauts_quotes_and_characters_outside_cp1252() -> None:
    customer = replace(TENANT, name='Jörg "Jo" Müller → Straße 😀 €')
    data = export([sample_invoice(customer=customer)])
    data.decode("cp1252")  # strictly valid
    assert 'Jörg ""Jo"" Müller ? Straße ? €'.encode("cp1252") in data
    _, bookings = read_datev(data)
    assert bookings[0]["Buchungstext"] == 'Rechnung LB-2026-000001 Jörg "Jo" Müller ? Straße ? €'
    assert raw_rows(data)[2][13] == bookings[0]["Buchungstext"]


def test_buchungstext_is_cut_to_60_characters_without_breaking_the_quoting() -> None:
    name = 'Wohnungseigentümergemeinschaft "Sonnenhof" Haus 4, Tiefgarage Stellplatz 17'
    data = export([sample_invoice(customer=replace(TENANT, name=name))])
    text = read_datev(data)[1][0]["Buchungstext"]
    assert len(text) == 60
    assert text == f"Rechnung LB-2026-000001 {name}"[:60].rstrip()
    assert raw_rows(data)[2][13] == text
    line_breaks = replace(TENANT, name="Max\r\nMieter\t")
    assert read_datev(export([sample_invoice(customer=line_breaks)]))[1][0]["Buchungstext"] == (
        "Rechnung LB-2026-000001 Max  Mieter"
    )


def test_belegfeld_1_longer_than_36_characters_is_refused() -> None:
    export([sample_invoice(number="R" * 36)])
    with pytest.raises(ExportError, match="Belegfeld 1"):
        export([sample_invoice(number="R" * 37)])
    with pytest.raises(ValueError, match="Belegfeld 1"):
        export([sample_invoice(number="LB 2026.1")])


def test_an_invoice_outside_the_batch_or_the_fiscal_year_is_refused() -> None:
    with pytest.raises(ExportError, match="outside the batch"):
        datev_buchungsstapel(
            [sample_invoice()],
            config=skr03(),
            created_at=CREATED,
            period_start=date(2026, 12, 2),
            period_end=date(2026, 12, 31),
        )
    with pytest.raises(ExportError, match="fiscal year"):
        datev_buchungsstapel(
            [sample_invoice()],
            config=skr03(),
            created_at=CREATED,
            period_start=date(2026, 12, 1),
            period_end=date(2027, 1, 31),
        )
    with pytest.raises(ExportError, match="timezone-aware"):
        datev_buchungsstapel([], config=skr03(), created_at=datetime(2026, 12, 31), **DECEMBER)


def test_config_is_frozen_and_checked() -> None:
    config = skr03()
    with pytest.raises(FrozenInstanceError):
        config.skr = "04"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.revenue_accounts[Decimal(7)] = "8300"  # type: ignore[index]
    assert config.revenue_accounts[Decimal("19.00")] == "8400"
    longer = DatevConfig.skr04(
        consultant_number=1001,
        client_number=1,
        fiscal_year_start=date(2026, 1, 1),
        account_length=5,
    )
    assert (longer.receivables_account, longer.revenue_accounts[Decimal(19)]) == ("12000", "44000")
    with pytest.raises(ExportError):
        replace(config, skr="05")
    with pytest.raises(ExportError):
        replace(config, consultant_number=1000)
    with pytest.raises(ExportError):
        replace(config, tax_keys={Decimal(19): "3a"})
    with pytest.raises(ExportError):
        replace(config, label="x" * 31)


def test_debitor_accounts_per_customer() -> None:
    config = replace(skr03(), debitor_accounts={TENANT.customer_id: "10001"})
    assert read_datev(export([sample_invoice()], config))[1][0]["Konto"] == "10001"


def test_read_datev_refuses_other_files() -> None:
    with pytest.raises(ExportError):
        read_datev(b'"EXTF";700;16;"Debitoren/Kreditoren";5\r\nKonto\r\n')
    with pytest.raises(ExportError):
        read_datev(b"number;kind\r\n")


# --- CSV -------------------------------------------------------------------------------------


def test_invoices_csv_parses_back_with_equal_totals() -> None:
    invoice = sample_invoice()
    fleet = sample_invoice(
        number="LB-2026-000003",
        customer=Customer(name='=HYPERLINK("http://x")', address=TENANT.address, customer_id="c-3"),
    )
    invoices = [invoice, cancellation_of(invoice), fleet]
    data = invoices_csv(invoices)
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))

    assert [row["number"] for row in rows] == [i.number for i in invoices]
    assert [row["kind"] for row in rows] == ["invoice", "cancellation", "invoice"]
    assert rows[1]["cancels"] == "LB-2026-000001"
    assert rows[0]["customer_name"] == "Max Mieter"
    assert rows[0]["customer_id"] == TENANT.customer_id
    assert (rows[0]["period_start"], rows[0]["issue_date"]) == ("2026-11-01", "2026-12-01")
    assert rows[2]["customer_name"] == '\'=HYPERLINK("http://x")'  # no formula for Excel
    for column, total in (("net", "total_net"), ("vat", "total_vat"), ("gross", "total_gross")):
        assert sum(Decimal(row[column]) for row in rows) == sum(getattr(i, total) for i in invoices)
    assert Decimal(rows[1]["gross"]) == -invoice.total_gross
    assert rows[0]["gross"] == format(invoice.total_gross, "f")  # decimal point, exact


def test_sessions_csv_one_row_per_line() -> None:
    invoices = [sample_invoice(parking=True), sample_invoice(issuer=SMALL_BUSINESS, lines=1)]
    data = sessions_csv(invoices)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert len(rows) == 4
    first = rows[0]
    assert first["session_id"] == "00000000-0000-4000-8000-000000000000"
    assert (first["started_at"], first["ended_at"]) == (
        "2026-11-02T17:00:00Z",
        "2026-11-02T19:00:00Z",
    )
    assert (first["charge_point"], first["evse_id"], first["meter"]) == (
        "WB1",
        "1",
        "BQ27400330016",
    )
    assert first["energy_kwh"] == "11.525"
    assert first["vat_rate"] == "19"
    assert rows[3]["vat_rate"] == ""  # §19: the invoice shows no VAT
    assert sum(Decimal(row["net"]) for row in rows) == sum(i.total_net for i in invoices)


# --- OCPI CDR --------------------------------------------------------------------------------


def cdr_of(invoice: Invoice | None, index: int = 0, **extra: Any) -> dict[str, Any]:
    source = invoice.lines[index] if invoice is not None else line(index)
    arguments: dict[str, Any] = {
        "country_code": "DE",
        "party_id": "SON",
        "location": LOCATION,
        "token_uid": "04A1B2C3",
        "last_updated": UPDATED,
        **extra,
    }
    return ocpi_cdr(source, invoice, **arguments)


def test_cdr_has_the_documented_fields_and_the_signed_data() -> None:
    invoice = sample_invoice(parking=True)
    cdr = cdr_of(invoice)
    for required in (
        "country_code",
        "party_id",
        "id",
        "start_date_time",
        "end_date_time",
        "cdr_token",
        "auth_method",
        "cdr_location",
        "currency",
        "charging_periods",
        "total_cost",
        "total_energy",
        "total_time",
        "last_updated",
    ):
        assert required in cdr
    assert (cdr["country_code"], cdr["party_id"], cdr["currency"]) == ("DE", "SON", "EUR")
    assert len(str(cdr["id"])) == 36 and cdr["id"] != cdr["session_id"]
    assert cdr["session_id"] == invoice.lines[0].session_id
    assert cdr["start_date_time"] == "2026-11-02T17:00:00Z"
    assert cdr["end_date_time"] == "2026-11-02T19:00:00Z"
    assert cdr["cdr_token"] == {
        "country_code": "DE",
        "party_id": "SON",
        "uid": "04A1B2C3",
        "type": "RFID",
        "contract_id": TENANT.customer_id,
    }
    assert cdr["auth_method"] == "WHITELIST"
    location = cdr["cdr_location"]
    assert isinstance(location, dict)
    assert (location["evse_uid"], location["connector_id"]) == ("WB1*1", "1")
    assert location["country"] == "DEU"
    assert cdr["meter_id"] == "BQ27400330016"
    assert cdr["invoice_reference_id"] == invoice.number
    line0 = invoice.lines[0]
    assert cdr["total_cost"] == {
        "excl_vat": line0.net,
        "incl_vat": (line0.net * Decimal("1.19")).quantize(Decimal("0.01")),
    }
    assert cdr["total_energy"] == Decimal("11.525")
    assert cdr["total_time"] == Decimal(2)
    assert '"total_time":2,' in cdr_json(cdr)
    assert cdr["total_parking_time"] == Decimal("0.5")
    assert cdr["charging_periods"] == [
        {
            "start_date_time": "2026-11-02T17:00:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": Decimal("11.525")},
                {"type": "PARKING_TIME", "volume": Decimal("0.5")},
            ],
        }
    ]
    assert "credit" not in cdr and "tariffs" not in cdr

    signed = cdr["signed_data"]
    assert isinstance(signed, dict)
    assert signed["encoding_method"] == "OCMF"
    assert base64.b64decode(signed["public_key"]) == bytes.fromhex(KEY)
    assert signed["url"] == line0.evidence.url
    assert [v["nature"] for v in signed["signed_values"]] == ["Start", "End"]
    assert [v["plain_data"] for v in signed["signed_values"]] == [OCMF_BEGIN, OCMF_END]
    assert [base64.b64decode(v["signed_data"]).decode() for v in signed["signed_values"]] == [
        OCMF_BEGIN,
        OCMF_END,
    ]


def test_cdr_without_parking_and_without_invoice() -> None:
    cdr = cdr_of(None, currency="EUR", contract_id="DE-SON-C12345678-9")
    assert cdr["id"] == cdr["session_id"] == line(0).session_id
    assert "total_parking_time" not in cdr and "invoice_reference_id" not in cdr
    assert cdr["charging_periods"][0]["dimensions"] == [
        {"type": "ENERGY", "volume": Decimal("11.525")}
    ]
    assert cdr["cdr_token"]["contract_id"] == "DE-SON-C12345678-9"
    with pytest.raises(ExportError, match="currency"):
        cdr_of(None)


def test_section_19_cdr_has_no_vat() -> None:
    cdr = cdr_of(sample_invoice(issuer=SMALL_BUSINESS))
    assert cdr["total_cost"]["excl_vat"] == cdr["total_cost"]["incl_vat"]


def test_storno_gives_the_credit_cdr_of_the_original() -> None:
    invoice = sample_invoice()
    original = cdr_of(invoice)
    credit = cdr_of(cancellation_of(invoice))
    assert credit["credit"] is True
    assert credit["credit_reference_id"] == original["id"]
    assert credit["id"] == f"{original['id']}-C"
    assert credit["total_cost"] == {  # only the costs are negative
        key: -value for key, value in original["total_cost"].items()
    }
    assert credit["total_energy"] == original["total_energy"]
    assert credit["charging_periods"] == original["charging_periods"]


def test_cdr_refuses_an_incomplete_location_and_foreign_lines() -> None:
    partial = {k: v for k, v in LOCATION.items() if k not in ("coordinates", "evse_id")}
    with pytest.raises(ExportError, match=r"missing \['coordinates', 'evse_id'\]"):
        cdr_of(sample_invoice(), location=partial)
    with pytest.raises(ExportError, match="unknown"):
        cdr_of(sample_invoice(), location={**LOCATION, "colour": "green"})
    with pytest.raises(ExportError, match="not a line"):
        ocpi_cdr(
            line(7),
            sample_invoice(),
            country_code="DE",
            party_id="SON",
            location=LOCATION,
            token_uid="04A1B2C3",
            last_updated=UPDATED,
        )


def test_cdr_json_writes_exact_numbers() -> None:
    small = replace(line(0, kwh="0.3", price="0.1"), energy_kwh=Decimal("0.1") + Decimal("0.2"))
    cdr = ocpi_cdr(
        small,
        None,
        country_code="DE",
        party_id="SON",
        location=LOCATION,
        token_uid="04A1B2C3",
        last_updated=UPDATED,
        currency="EUR",
    )
    text = cdr_json(cdr)
    assert json.loads(text, parse_float=Decimal) == cdr
    assert '"total_energy":0.3,' in text  # not 0.30000000000000004
    assert json.loads(text)["total_energy"] == 0.3
    invoice_cdr = cdr_of(sample_invoice())
    assert json.loads(cdr_json(invoice_cdr), parse_float=Decimal) == invoice_cdr
    assert '"excl_vat":4.49,' in cdr_json(invoice_cdr)
    with pytest.raises(TypeError, match="float"):
        cdr_json({"total_energy": 0.3})


def test_cdr_hours_have_four_decimals() -> None:
    from datetime import timedelta

    odd = replace(line(0), ended_at=line(0).started_at + timedelta(hours=1, seconds=1))
    cdr = ocpi_cdr(
        odd,
        None,
        country_code="DE",
        party_id="SON",
        location=LOCATION,
        token_uid="04A1B2C3",
        last_updated=UPDATED,
        currency="EUR",
    )
    assert cdr["total_time"] == Decimal("1.0003")  # 3601 s = 1.000277... h
