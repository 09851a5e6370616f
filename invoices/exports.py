"""Accounting and roaming exports of issued invoices: DATEV, plain CSV, OCPI CDRs.

Everything here renders from the frozen `Invoice` snapshot (`invoices.document`) and nothing
else, so an export made today and one made in eight years agree.

DATEV (`datev_buchungsstapel`, `read_datev`): the EXTF "Buchungsstapel", header version 700,
format category 21, format version 13 (DOMAIN.md §6; developer.datev.de, "DATEV-Format"). Line 1
is the 31-field header, line 2 the complete 125-column name line of format version 13, then
every booking with all 125 fields (unused ones empty), so no importer has to guess about short
rows. `;` separated, CRLF, cp1252 (a character cp1252 lacks becomes `?`), non-empty text fields in
double quotes with embedded quotes doubled, amounts with a decimal comma and no thousands
separator.

- One booking per VAT rate of an invoice: `Umsatz` is that rate's gross (net + VAT of the rate,
  as the invoice shows it), `Konto` the receivables account (or the customer's debitor, see
  `DatevConfig.debitor_accounts`), `Gegenkonto` the revenue account of that rate. The revenue
  accounts 8400/4400 are DATEV automatic accounts that split the VAT off themselves, so the
  default BU-Schlüssel is empty; a non-automatic account needs its key in
  `DatevConfig.tax_keys`. A §19 UStG issuer books everything on 8195/4185 without a key.
- The side follows the sign, DATEV's `Umsatz` is always positive: a positive gross is `S`
  (receivables debited, revenue credited), a negative one `H`. A Stornorechnung negates every
  amount of the invoice it cancels, so it books `H`: the reverse of the original, as its own
  document with its own number and date. We do not set Generalumkehr (field 118): that flag
  corrects a wrong *booking* as if it had never been made, while a Stornorechnung is an issued
  document that stays in the books; whether to book it as GU is the accountant's decision in
  DATEV, not the invoicing system's. The cancelled invoice's number goes into
  `Beleginfo - Art 1/Inhalt 1` ("Storno zu" / number) and into the `Buchungstext`.
- A rate part whose gross is 0,00 books nothing and is left out.
- `Belegdatum` is the issue date (DDMM) and must lie within the batch's from/to, which must
  lie within one fiscal year; `Leistungsdatum` is the end of the supply period (DDMMYYYY).

CSV (`invoices_csv`, `sessions_csv`): for spreadsheets and scripts. UTF-8 with BOM (Excel then
reads the umlauts right), `;` separated, CRLF, one header row, decimal point and ISO 8601 dates
and times: the amounts are the exact decimal text of the invoice (`Decimal(text)` reads them
back without loss, in any locale). German Excel shows such numbers as text; import them via
"Daten > Aus Text/CSV" with the locale "Englisch (USA)". Amounts of a Stornorechnung are negative,
as on the document. A text cell starting with `= + - @`, TAB or CR gets a leading `'` so a
spreadsheet does not run a customer's name as a formula (CSV injection).

OCPI (`ocpi_cdr`, `cdr_json`): one OCPI 2.2.1 CDR (mod_cdrs §10.3.1) per priced session, with
`Decimal` numbers that `cdr_json` writes as exact JSON numbers.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any
from uuid import uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from invoices.document import CANCELLATION, INVOICE, Invoice, Line, cents
from ledger.ids import NAMESPACE

__all__ = [
    "DATEV_COLUMNS",
    "DATEV_HEADER_FIELDS",
    "DatevConfig",
    "ExportError",
    "cdr_json",
    "datev_buchungsstapel",
    "invoices_csv",
    "ocpi_cdr",
    "read_datev",
    "sessions_csv",
]


class ExportError(ValueError):
    """The export cannot be made as asked; the message names the invoice or field."""


# --- DATEV -----------------------------------------------------------------------------------

# The 31 header fields (developer.datev.de, "Header"); `read_datev` returns them by these names.
DATEV_HEADER_FIELDS: tuple[str, ...] = (
    "Kennzeichen",
    "Versionsnummer",
    "Formatkategorie",
    "Formatname",
    "Formatversion",
    "Erzeugt am",
    "Importiert",
    "Herkunft",
    "Exportiert von",
    "Importiert von",
    "Beraternummer",
    "Mandantennummer",
    "WJ-Beginn",
    "Sachkontenlänge",
    "Datum vom",
    "Datum bis",
    "Bezeichnung",
    "Diktatkürzel",
    "Buchungstyp",
    "Rechnungslegungszweck",
    "Festschreibung",
    "WKZ",
    "Reserviert 23",
    "Derivatskennzeichen",
    "Reserviert 25",
    "Reserviert 26",
    "Sachkontenrahmen",
    "ID der Branchenlösung",
    "Reserviert 29",
    "Reserviert 30",
    "Anwendungsinformation",
)

# Buchungsstapel format version 13: the column names as DATEV's own sample file writes them.
DATEV_COLUMNS: tuple[str, ...] = (
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
    "Postensperre",
    "Diverse Adressnummer",
    "Geschäftspartnerbank",
    "Sachverhalt",
    "Zinssperre",
    "Beleglink",
    *(f"Beleginfo - {kind} {n}" for n in range(1, 9) for kind in ("Art", "Inhalt")),
    "KOST1 - Kostenstelle",
    "KOST2 - Kostenstelle",
    "Kost-Menge",
    "EU-Land u. UStID (Bestimmung)",
    "EU-Steuersatz (Bestimmung)",
    "Abw. Versteuerungsart",
    "Sachverhalt L+L",
    "Funktionsergänzung L+L",
    "BU 49 Hauptfunktionstyp",
    "BU 49 Hauptfunktionsnummer",
    "BU 49 Funktionsergänzung",
    *(
        name
        for n in range(1, 21)
        for name in (f"Zusatzinformation - Art {n}", f"Zusatzinformation- Inhalt {n}")
    ),
    "Stück",
    "Gewicht",
    "Zahlweise",
    "Forderungsart",
    "Veranlagungsjahr",
    "Zugeordnete Fälligkeit",
    "Skontotyp",
    "Auftragsnummer",
    "Buchungstyp",
    "USt-Schlüssel (Anzahlungen)",
    "EU-Land (Anzahlungen)",
    "Sachverhalt L+L (Anzahlungen)",
    "EU-Steuersatz (Anzahlungen)",
    "Erlöskonto (Anzahlungen)",
    "Herkunft-Kz",
    "Buchungs GUID",
    "KOST-Datum",
    "SEPA-Mandatsreferenz",
    "Skontosperre",
    "Gesellschaftername",
    "Beteiligtennummer",
    "Identifikationsnummer",
    "Zeichnernummer",
    "Postensperre bis",
    "Bezeichnung SoBil-Sachverhalt",
    "Kennzeichen SoBil-Buchung",
    "Festschreibung",
    "Leistungsdatum",
    "Datum Zuord. Steuerperiode",
    "Fälligkeit",
    "Generalumkehr (GU)",
    "Steuersatz",
    "Land",
    "Abrechnungsreferenz",
    "BVV-Position",
    "EU-Land u. UStID (Ursprung)",
    "EU-Steuersatz (Ursprung)",
    "Abw. Skontokonto",
)
assert len(DATEV_COLUMNS) == 125 and len(set(DATEV_COLUMNS)) == 125
assert len(DATEV_HEADER_FIELDS) == 31
_COLUMN = {name: index for index, name in enumerate(DATEV_COLUMNS)}

_BELEGFELD_1 = re.compile(r"[A-Za-z0-9$%&*+\-/]{1,36}\Z")  # DATEV allows only these characters
_ACCOUNT = re.compile(r"[0-9]{1,9}\Z")
_TAX_KEY = re.compile(r"[0-9]{1,4}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_UMSATZ = Decimal("9999999999.99")  # ^\d{1,10},\d{2}$


def _rate_key(rate: object) -> Decimal | None:
    if rate is None:
        return None
    if isinstance(rate, Decimal):
        return rate
    if isinstance(rate, int | str) and not isinstance(rate, bool):
        return Decimal(rate)
    raise ExportError(f"a VAT rate must be a Decimal, int or decimal string, not {rate!r}")


def _sachkonto(account: str, length: int) -> str:
    """SKR's four-digit account extended to the client's account length (DATEV appends 0s)."""
    return account.ljust(length, "0")


@dataclass(frozen=True)
class DatevConfig:
    """The client's DATEV settings, agreed with the tax adviser.

    `revenue_accounts` and `tax_keys` are keyed by the VAT rate in percent (`Decimal("19")`;
    `None` is a line without VAT from an issuer who is not a §19 small business). `tax_keys`
    holds the BU-Schlüssel (up to four digits, DATEV's 2025 table) and stays empty for automatic
    accounts. `debitor_accounts` maps a customer id to a personal account (Debitor, one digit
    longer than `account_length`); customers without one are booked on `receivables_account`
    (1400 / 1200 are DATEV's collective receivables accounts; an adviser may prefer 1410 / 1210
    or debitors for open-item tracking). `fiscal_year_start` is the first day of the fiscal
    year the batch belongs to. `exporter` (<= 25 characters) and `label` (<= 30) are shown in
    DATEV's batch list; `time_zone` is the zone "Erzeugt am" is written in.
    """

    skr: str
    consultant_number: int
    client_number: int
    fiscal_year_start: date
    receivables_account: str
    revenue_accounts: Mapping[Decimal | None, str]
    small_business_account: str
    tax_keys: Mapping[Decimal | None, str] = field(default_factory=dict)
    debitor_accounts: Mapping[str, str] = field(default_factory=dict)
    account_length: int = 4
    exporter: str = "Ladebuch"
    label: str = "Ladebuch Ausgangsrechnungen"
    time_zone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if self.skr not in ("03", "04"):
            raise ExportError(f"skr must be '03' or '04', not {self.skr!r}")
        if not 1001 <= self.consultant_number <= 9999999:
            raise ExportError("the Beraternummer must lie between 1001 and 9999999")
        if not 1 <= self.client_number <= 99999:
            raise ExportError("the Mandantennummer must lie between 1 and 99999")
        if not 4 <= self.account_length <= 8:
            raise ExportError("the account length (Sachkontenlänge) must lie between 4 and 8")
        for name, limit in (("exporter", 25), ("label", 30)):
            value = getattr(self, name)
            if len(value) > limit or _CONTROL.search(value):
                raise ExportError(f"{name} must be at most {limit} printable characters")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ExportError(f"unknown time zone {self.time_zone!r}") from None
        # Read-only copies: a frozen config must not change through a dict someone still holds.
        revenue = {_rate_key(rate): account for rate, account in self.revenue_accounts.items()}
        keys = {_rate_key(rate): key for rate, key in self.tax_keys.items()}
        object.__setattr__(self, "revenue_accounts", MappingProxyType(revenue))
        object.__setattr__(self, "tax_keys", MappingProxyType(keys))
        object.__setattr__(self, "debitor_accounts", MappingProxyType(dict(self.debitor_accounts)))
        sachkonten = [self.small_business_account, *revenue.values()]
        for account in sachkonten:
            if not _ACCOUNT.match(account) or len(account) != self.account_length:
                raise ExportError(f"{account!r} is not a {self.account_length}-digit account")
        for account in (self.receivables_account, *self.debitor_accounts.values()):
            if not _ACCOUNT.match(account) or len(account) not in (
                self.account_length,
                self.account_length + 1,
            ):
                raise ExportError(
                    f"{account!r} is neither a {self.account_length}-digit account nor a "
                    f"{self.account_length + 1}-digit debitor"
                )
        for key in keys.values():
            if not _TAX_KEY.match(key):
                raise ExportError(f"the BU-Schlüssel {key!r} is not one to four digits")

    @classmethod
    def skr03(
        cls,
        *,
        consultant_number: int,
        client_number: int,
        fiscal_year_start: date,
        account_length: int = 4,
        **settings: Any,
    ) -> DatevConfig:
        """SKR03: receivables 1400, revenue 19 % 8400, §19 revenue 8195, no tax keys."""
        return cls._chart(
            "03",
            ("1400", "8400", "8195"),
            consultant_number,
            client_number,
            fiscal_year_start,
            account_length,
            settings,
        )

    @classmethod
    def skr04(
        cls,
        *,
        consultant_number: int,
        client_number: int,
        fiscal_year_start: date,
        account_length: int = 4,
        **settings: Any,
    ) -> DatevConfig:
        """SKR04: receivables 1200, revenue 19 % 4400, §19 revenue 4185, no tax keys."""
        return cls._chart(
            "04",
            ("1200", "4400", "4185"),
            consultant_number,
            client_number,
            fiscal_year_start,
            account_length,
            settings,
        )

    @classmethod
    def _chart(
        cls,
        skr: str,
        accounts: tuple[str, str, str],
        consultant_number: int,
        client_number: int,
        fiscal_year_start: date,
        account_length: int,
        settings: dict[str, Any],
    ) -> DatevConfig:
        receivables, revenue, small_business = (_sachkonto(a, account_length) for a in accounts)
        defaults: dict[str, Any] = {
            "receivables_account": receivables,
            "revenue_accounts": {Decimal(19): revenue},
            "small_business_account": small_business,
        }
        return cls(
            skr=skr,
            consultant_number=consultant_number,
            client_number=client_number,
            fiscal_year_start=fiscal_year_start,
            account_length=account_length,
            **{**defaults, **settings},
        )


def _clean(text: str, limit: int) -> str:
    """Printable cp1252 text of at most `limit` characters (DATEV counts characters, and cp1252
    has one byte per character). Control characters become spaces (DATEV forbids them in text
    fields), characters outside cp1252 become `?`; cutting happens before quoting, so a doubled
    quote is never split."""
    text = _CONTROL.sub(" ", text)
    text = text.encode("cp1252", errors="replace").decode("cp1252")
    return text[:limit].rstrip()


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _text_field(text: str, limit: int) -> str:
    cleaned = _clean(text, limit)
    return _quoted(cleaned) if cleaned else ""


def _umsatz(amount: Decimal, number: str) -> str:
    if amount != cents(amount):
        raise ExportError(f"{number}: {amount} is not an amount in cents")
    if abs(amount) > _MAX_UMSATZ:
        raise ExportError(f"{number}: {amount} exceeds DATEV's ten integer digits")
    return f"{abs(amount):.2f}".replace(".", ",")


def _rate_text(rate: Decimal | None) -> str:
    if rate is None:
        return "ohne USt"
    return f"{rate.normalize():f} %".replace(".", ",")


def _bookings(invoice: Invoice, config: DatevConfig, start: date, end: date) -> list[str]:
    number = invoice.number
    if not _BELEGFELD_1.match(number):
        raise ExportError(
            f"invoice number {number!r} cannot be Belegfeld 1: DATEV takes at most 36 of the "
            "characters A-Z a-z 0-9 $ % & * + - /"
        )
    if invoice.currency != "EUR":
        raise ExportError(f"{number}: only EUR invoices can be booked (not {invoice.currency})")
    if not start <= invoice.issue_date <= end:
        raise ExportError(
            f"{number}: issued {invoice.issue_date}, outside the batch {start} to {end}"
        )
    if sum((part.net + part.tax for part in invoice.vat), Decimal(0)) != invoice.total_gross:
        raise ExportError(f"{number}: the VAT breakdown does not add up to the gross total")
    cancellation = invoice.kind == CANCELLATION
    if cancellation and not invoice.cancels:
        raise ExportError(f"{number}: a cancellation must name the invoice it cancels")
    if invoice.kind not in (INVOICE, CANCELLATION):
        raise ExportError(f"{number}: unknown invoice kind {invoice.kind!r}")
    debitor = config.debitor_accounts.get(invoice.customer.customer_id, config.receivables_account)
    several = len([part for part in invoice.vat if part.net + part.tax]) > 1
    rows = []
    for part in invoice.vat:
        gross = part.net + part.tax
        if not gross:
            continue
        if invoice.issuer.small_business:
            revenue, key = config.small_business_account, ""
        else:
            if part.rate not in config.revenue_accounts:
                raise ExportError(
                    f"{number}: no revenue account configured for VAT rate {_rate_text(part.rate)}"
                )
            revenue = config.revenue_accounts[part.rate]
            key = config.tax_keys.get(part.rate, "")
        words = (
            ["Storno", number, "zu", invoice.cancels or ""]
            if cancellation
            else ["Rechnung", number]
        )
        if several:
            words.append(_rate_text(part.rate))
        words.append(invoice.customer.name)
        row = [""] * len(DATEV_COLUMNS)
        row[_COLUMN["Umsatz (ohne Soll/Haben-Kz)"]] = _umsatz(gross, number)
        row[_COLUMN["Soll/Haben-Kennzeichen"]] = _quoted("S" if gross > 0 else "H")
        row[_COLUMN["WKZ Umsatz"]] = _quoted(invoice.currency)
        row[_COLUMN["Konto"]] = debitor
        row[_COLUMN["Gegenkonto (ohne BU-Schlüssel)"]] = revenue
        row[_COLUMN["BU-Schlüssel"]] = _quoted(key) if key else ""
        row[_COLUMN["Belegdatum"]] = invoice.issue_date.strftime("%d%m")
        row[_COLUMN["Belegfeld 1"]] = _quoted(number)
        row[_COLUMN["Buchungstext"]] = _text_field(" ".join(words), 60)
        if cancellation:
            row[_COLUMN["Beleginfo - Art 1"]] = _quoted("Storno zu")
            row[_COLUMN["Beleginfo - Inhalt 1"]] = _text_field(invoice.cancels or "", 210)
        row[_COLUMN["Leistungsdatum"]] = invoice.period_end.strftime("%d%m%Y")
        rows.append(";".join(row))
    return rows


def datev_buchungsstapel(
    invoices: Sequence[Invoice],
    *,
    config: DatevConfig,
    period_start: date,
    period_end: date,
    created_at: datetime,
) -> bytes:
    """The DATEV EXTF Buchungsstapel (format version 13) of `invoices`, cp1252 bytes.

    `period_start`/`period_end` are the batch's "Datum vom/bis" (inclusive); every invoice's
    issue date must lie within them and they within the fiscal year starting at
    `config.fiscal_year_start`. `created_at` (aware) is written as "Erzeugt am" in the config's
    time zone, to the millisecond. See the module docstring for the booking conventions.
    """
    if created_at.tzinfo is None:
        raise ExportError("created_at must be timezone-aware")
    if period_start > period_end:
        raise ExportError(f"the batch starts {period_start}, after its end {period_end}")
    year_start = config.fiscal_year_start
    next_year = year_start.replace(year=year_start.year + 1)
    if not year_start <= period_start <= period_end < next_year:
        raise ExportError(
            f"the batch {period_start} to {period_end} must lie within the fiscal year "
            f"starting {year_start} (one DATEV batch per fiscal year)"
        )
    created = created_at.astimezone(ZoneInfo(config.time_zone))
    header = [
        _quoted("EXTF"),
        "700",
        "21",
        _quoted("Buchungsstapel"),
        "13",
        created.strftime("%Y%m%d%H%M%S") + f"{created.microsecond // 1000:03d}",
        "",
        _quoted("RE"),
        _quoted(_clean(config.exporter, 25)),
        _quoted(""),
        str(config.consultant_number),
        str(config.client_number),
        year_start.strftime("%Y%m%d"),
        str(config.account_length),
        period_start.strftime("%Y%m%d"),
        period_end.strftime("%Y%m%d"),
        _quoted(_clean(config.label, 30)),
        _quoted(""),
        "1",
        "0",
        "0",
        _quoted("EUR"),
        "",
        "",
        "",
        "",
        _quoted(config.skr),
        "",
        "",
        _quoted(""),
        _quoted(""),
    ]
    lines = [";".join(header), ";".join(DATEV_COLUMNS)]
    for invoice in invoices:
        lines.extend(_bookings(invoice, config, period_start, period_end))
    # Every character is cp1252 by now (`_clean`); "replace" only guards the invariant.
    return "".join(line + "\r\n" for line in lines).encode("cp1252", errors="replace")


def read_datev(data: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(header fields by `DATEV_HEADER_FIELDS` name, bookings as column name -> value) of an
    EXTF Buchungsstapel; quotes are removed, empty fields are "". Rows shorter than the column
    line are padded with ""; a longer row, another format or a missing column line raise
    `ExportError`."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise ExportError(f"not cp1252 text: {error}") from None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"'))
    if len(rows) < 2:
        raise ExportError("a Buchungsstapel has a header line and a column line")
    header_row, columns, *bookings = rows
    if header_row[:1] not in (["EXTF"], ["DTVF"]) or header_row[2:3] != ["21"]:
        raise ExportError("not a DATEV Buchungsstapel (EXTF, category 21)")
    if len(header_row) > len(DATEV_HEADER_FIELDS):
        raise ExportError(f"the header has {len(header_row)} fields, at most 31 are defined")
    header = dict(zip(DATEV_HEADER_FIELDS, header_row + [""] * 31, strict=False))
    result = []
    for number, row in enumerate(bookings, start=3):
        if not row:
            continue
        if len(row) > len(columns):
            raise ExportError(
                f"line {number} has {len(row)} fields, the column line {len(columns)}"
            )
        result.append(dict(zip(columns, row + [""] * (len(columns) - len(row)), strict=True)))
    return header, result


# --- CSV -------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ExportError(f"{moment} has no time zone")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


INVOICE_COLUMNS = (
    "number",
    "kind",
    "cancels",
    "issue_date",
    "period_start",
    "period_end",
    "customer_id",
    "customer_name",
    "net",
    "vat",
    "gross",
    "currency",
)
SESSION_COLUMNS = (
    "invoice_number",
    "session_id",
    "started_at",
    "ended_at",
    "charge_point",
    "evse_id",
    "meter",
    "energy_kwh",
    "net",
    "vat_rate",
)


def invoices_csv(invoices: Sequence[Invoice]) -> bytes:
    """One row per invoice or Stornorechnung (`INVOICE_COLUMNS`); see the module docstring."""
    return _csv(
        INVOICE_COLUMNS,
        [
            (
                _cell(invoice.number),
                invoice.kind,
                _cell(invoice.cancels or ""),
                invoice.issue_date.isoformat(),
                invoice.period_start.isoformat(),
                invoice.period_end.isoformat(),
                _cell(invoice.customer.customer_id),
                _cell(invoice.customer.name),
                _number(invoice.total_net),
                _number(invoice.total_vat),
                _number(invoice.total_gross),
                invoice.currency,
            )
            for invoice in invoices
        ],
    )


def sessions_csv(invoices: Sequence[Invoice]) -> bytes:
    """One row per invoice line (`SESSION_COLUMNS`): times in UTC (ISO 8601, `Z`), energy with
    the meter's own decimals, the line's net; `vat_rate` in percent, empty when the line bears
    no VAT (also every line of a §19 issuer, whose invoice shows none)."""
    return _csv(
        SESSION_COLUMNS,
        [
            (
                _cell(invoice.number),
                _cell(line.session_id),
                _utc(line.started_at),
                _utc(line.ended_at),
                _cell(line.charge_point),
                "" if line.evse_id is None else str(line.evse_id),
                _cell(line.meter or ""),
                _number(line.energy_kwh),
                _number(line.net),
                "" if invoice.issuer.small_business else _number(line.vat_rate),
            )
            for invoice in invoices
            for line in invoice.lines
        ],
    )


PRICED_SESSION_COLUMNS = (
    "session_id",
    "customer_id",
    "charge_point",
    "started_at",
    "ended_at",
    "status",
    "reason",
    "tariff_id",
    "tariff_version",
    "currency",
    "energy_kwh",
    "net",
    "gross",
    "invoice_number",
)


def priced_sessions_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One row per session's current price record (`PRICED_SESSION_COLUMNS`), priced or not:
    the exact amounts excl./incl. VAT as priced (not rounded; an invoice rounds each line to
    the cent), the energy as priced, and the number of the valid invoice the session is on,
    if any. `rows` hold the columns of the priced-sessions read model and `invoice_number`."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return _utc(value)
        if isinstance(value, Decimal):
            return _number(value)
        return _cell(str(value))

    sources = {"energy_kwh": "total_energy", "net": "total_excl_vat", "gross": "total_incl_vat"}
    return _csv(
        PRICED_SESSION_COLUMNS,
        [tuple(text(row.get(sources.get(c, c))) for c in PRICED_SESSION_COLUMNS) for row in rows],
    )


# --- OCPI CDR --------------------------------------------------------------------------------

_TOKEN_TYPES = frozenset({"AD_HOC_USER", "APP_USER", "OTHER", "RFID"})
_AUTH_METHODS = frozenset({"AUTH_REQUEST", "COMMAND", "WHITELIST"})
_LOCATION_FIELDS = (  # CdrLocation (mod_cdrs §10.4.4) in the spec's order; True: required
    ("id", True),
    ("name", False),
    ("address", True),
    ("city", True),
    ("postal_code", False),
    ("state", False),
    ("country", True),
    ("coordinates", True),
    ("evse_uid", True),
    ("evse_id", True),
    ("connector_id", True),
    ("connector_standard", True),
    ("connector_format", True),
    ("connector_power_type", True),
)
_FOUR_PLACES = Decimal("0.0001")


def _ocpi_number(value: Decimal) -> Decimal:
    """OCPI numbers have four decimals unless said otherwise: longer ones are rounded half-up,
    shorter ones (a meter's 3 decimals) stay exact."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        return value.quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP)
    return value


def _ocpi_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ExportError(f"{moment} has no time zone")
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def _hours(start: datetime, end: datetime) -> Decimal:
    span = end - start
    if span.days < 0:
        raise ExportError(f"the session ends ({end}) before it starts ({start})")
    seconds = Decimal(span.days * 86400 + span.seconds)
    if span.microseconds:
        seconds += Decimal(span.microseconds).scaleb(-6)
    return _ocpi_number(seconds / 3600)


def _cdr_id(invoice_number: str, session_id: str) -> str:
    return str(uuid5(NAMESPACE, "\x1f".join(("ocpi-cdr", invoice_number, session_id))))


def _encoding_method(signed: str) -> str:
    if signed.startswith("OCMF|"):
        return "OCMF"
    if signed.startswith("AP;"):
        return "Alfen Eichrecht"
    raise ExportError("unknown signed data format: pass encoding_method")


def _public_key(key: str) -> str:
    """SignedData.public_key is base64; the evidence keeps the key as hex."""
    try:
        return base64.b64encode(bytes.fromhex(key)).decode("ascii")
    except ValueError:
        return key  # not hex: already in the form the meter published it


def _check(value: str, name: str, limit: int) -> str:
    if not value or len(value) > limit:
        raise ExportError(f"{name} must be 1 to {limit} characters, not {value!r}")
    return value


def ocpi_cdr(
    line: Line,
    invoice: Invoice | None,
    *,
    country_code: str,
    party_id: str,
    location: Mapping[str, Any],
    token_uid: str,
    last_updated: datetime,
    token_type: str = "RFID",
    contract_id: str | None = None,
    emsp: tuple[str, str] | None = None,
    auth_method: str = "WHITELIST",
    currency: str | None = None,
    encoding_method: str | None = None,
) -> dict[str, Any]:
    """The OCPI 2.2.1 CDR of one priced session (`line`, of `invoice` when it is invoiced).

    From the line and invoice: `id` (the session id for an uninvoiced session; for an invoiced
    one a uuid5 of invoice number and session, so a re-issued invoice gives a new CDR),
    `start_date_time`, `end_date_time`, `session_id`, `meter_id`, `currency` (the invoice's),
    `charging_periods` (one period from the session's start: ENERGY, plus TIME / PARKING_TIME
    with the hours the line billed), `total_cost` (excl_vat: the line's net; incl_vat: net plus
    the line's VAT rounded half-up to the cent, or the net for a §19 issuer or a line without
    VAT; the invoice computes VAT once per rate, so the sum of the CDRs may differ from its VAT
    by cents), `total_energy` (exact), `total_time` (start to end), `total_parking_time` (only
    when the line billed PARKING_TIME; a line keeps no measured parking time), `signed_data`
    (encoding_method "OCMF" or "Alfen Eichrecht" from the data, else `encoding_method`; the
    public key as base64; `signed_values` "Start"/"End" with `plain_data` the record exactly as
    the meter signed it and `signed_data` the same record base64-encoded: OCPI leaves open how
    a self-signed format like OCMF fills the two, ocpi/ocpi#550; `url` the transparency file),
    `remark` (the Eichrecht verdict), `invoice_reference_id`. A Stornorechnung gives the Credit
    CDR (§10.2.1): `credit`, `credit_reference_id` (the cancelled invoice's CDR id) and an id
    of that plus "-C"; only `total_cost` is negative, volumes stay as in the original.

    From the caller, as an `Invoice` cannot know them: `country_code`/`party_id` (the CPO),
    `cdr_token` (`token_uid`, `token_type`, `contract_id` - default the customer id, else the
    uid - and `emsp` (country code, party id) of the token's owner, default the CPO),
    `auth_method`, `last_updated`, `currency` when there is no invoice, and `location`: the
    CdrLocation fields `id`, `address`, `city`, `country` (ISO 3166-1 alpha-3), `coordinates`,
    `evse_id` (eMI3), `connector_standard`, `connector_format`, `connector_power_type`
    (optional `name`, `postal_code`, `state`). `evse_uid` defaults to "<charge point>*<evse>"
    and `connector_id` to "1" (OCPP 1.6 connectors are OCPI EVSEs); `location` may override
    them. Not written: `tariffs` (the invoice keeps prices, not the tariff object) and the
    per-dimension costs. Numbers are `Decimal`s: serialise with `cdr_json`.
    """
    if invoice is not None and line not in invoice.lines:
        raise ExportError(f"session {line.session_id} is not a line of {invoice.number}")
    if len(country_code) != 2 or not country_code.isalpha():
        raise ExportError(f"country_code must be ISO 3166-1 alpha-2, not {country_code!r}")
    if len(party_id) != 3 or not party_id.isalnum():
        raise ExportError(f"party_id must be three letters or digits, not {party_id!r}")
    if token_type not in _TOKEN_TYPES:
        raise ExportError(f"token_type must be one of {sorted(_TOKEN_TYPES)}")
    if auth_method not in _AUTH_METHODS:
        raise ExportError(f"auth_method must be one of {sorted(_AUTH_METHODS)}")
    if last_updated.tzinfo is None:
        raise ExportError("last_updated must be timezone-aware")
    if invoice is not None:
        if currency is not None and currency != invoice.currency:
            raise ExportError(f"currency {currency} differs from the invoice's {invoice.currency}")
        currency = invoice.currency
    if currency is None or not re.fullmatch(r"[A-Z]{3}", currency):
        raise ExportError("currency (ISO 4217) is required for a session without invoice")

    credit = invoice is not None and invoice.kind == CANCELLATION
    if invoice is None:
        cdr_id, reference = _check(line.session_id, "session_id", 36), None
    elif credit:
        if not invoice.cancels:
            raise ExportError(f"{invoice.number}: a cancellation must name the invoice it cancels")
        reference = _cdr_id(invoice.cancels, line.session_id)
        cdr_id = reference + "-C"
    else:
        cdr_id, reference = _cdr_id(invoice.number, line.session_id), None

    small_business = invoice is not None and invoice.issuer.small_business
    rate = None if small_business else line.vat_rate
    net = line.net
    gross = net if not rate else cents(net + net * rate / 100)
    if credit:
        net, gross = -abs(net), -abs(gross)

    hours: dict[str, Decimal] = {}
    for component in line.components:
        if component.type in ("TIME", "PARKING_TIME"):
            hours[component.type] = hours.get(component.type, Decimal(0)) + abs(component.quantity)
    energy = abs(line.energy_kwh)
    dimensions = [{"type": "ENERGY", "volume": energy}] + [
        {"type": kind, "volume": _ocpi_number(hours[kind])}
        for kind in ("TIME", "PARKING_TIME")
        if kind in hours
    ]

    evse = line.charge_point if line.evse_id is None else f"{line.charge_point}*{line.evse_id}"
    given = {"evse_uid": evse, "connector_id": "1", **location}
    unknown = sorted(set(given) - {name for name, _ in _LOCATION_FIELDS})
    missing = [name for name, required in _LOCATION_FIELDS if required and given.get(name) is None]
    if unknown or missing:
        raise ExportError(
            f"cdr_location: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}"
        )
    _check(str(given["evse_uid"]), "cdr_location.evse_uid", 36)

    token_country, token_party = emsp or (country_code, party_id)
    customer_id = invoice.customer.customer_id if invoice is not None else ""
    cdr: dict[str, Any] = {
        "country_code": country_code.upper(),
        "party_id": party_id.upper(),
        "id": cdr_id,
        "start_date_time": _ocpi_time(line.started_at),
        "end_date_time": _ocpi_time(line.ended_at),
        "session_id": _check(line.session_id, "session_id", 36),
        "cdr_token": {
            "country_code": token_country.upper(),
            "party_id": token_party.upper(),
            "uid": _check(token_uid, "token_uid", 36),
            "type": token_type,
            "contract_id": _check(contract_id or customer_id or token_uid, "contract_id", 36),
        },
        "auth_method": auth_method,
        "cdr_location": {name: given[name] for name, _ in _LOCATION_FIELDS if name in given},
    }
    if line.meter:
        cdr["meter_id"] = line.meter
    cdr["currency"] = currency
    cdr["charging_periods"] = [
        {"start_date_time": _ocpi_time(line.started_at), "dimensions": dimensions}
    ]
    evidence = line.evidence
    signed = [
        (nature, text)
        for nature, text in (("Start", evidence.begin_signed), ("End", evidence.end_signed))
        if text
    ]
    if signed:
        signed_data: dict[str, Any] = {
            "encoding_method": encoding_method or _encoding_method(signed[0][1]),
        }
        if evidence.public_key:
            signed_data["public_key"] = _public_key(evidence.public_key)
        signed_data["signed_values"] = [
            {
                "nature": nature,
                "plain_data": text,
                "signed_data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            }
            for nature, text in signed
        ]
        signed_data["url"] = evidence.url
        cdr["signed_data"] = signed_data
    cdr["total_cost"] = {"excl_vat": net, "incl_vat": gross}
    cdr["total_energy"] = energy
    cdr["total_time"] = _hours(line.started_at, line.ended_at)
    if "PARKING_TIME" in hours:
        cdr["total_parking_time"] = _ocpi_number(hours["PARKING_TIME"])
    if evidence.verdict:
        cdr["remark"] = evidence.verdict[:255]
    if invoice is not None:
        cdr["invoice_reference_id"] = _check(invoice.number, "invoice_reference_id", 39)
    if credit:
        cdr["credit"] = True
        cdr["credit_reference_id"] = reference
    cdr["last_updated"] = _ocpi_time(last_updated)
    return cdr


def cdr_json(cdr: Mapping[str, Any]) -> str:
    """`cdr` as JSON text with every `Decimal` written as an exact JSON number (`11.525`, never
    through a binary float); a float anywhere raises `TypeError`."""
    return _json_text(cdr)


def _json_text(value: Any) -> str:
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise TypeError(f"a binary float ({value!r}) is not exact: use Decimal")
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {key!r}")
            items.append(json.dumps(key, ensure_ascii=False) + ":" + _json_text(item))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
