"""Request and response bodies. Requests forbid unknown fields; every response has a model,
so the OpenAPI document says exactly what comes back. Energy is an exact decimal, sent as a
JSON string; times are UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from api.http.paging import UtcTime


def _utc_out(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


Time = Annotated[datetime, AfterValidator(_utc_out)]
Text200 = Annotated[str, StringConstraints(max_length=200)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- charge points ----------------------------------------------------------------------------

ChargePointName = Annotated[
    str, StringConstraints(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9*\-_=+|@.]+$")
]
Password = Annotated[str, StringConstraints(min_length=16, max_length=40)]


class ChargePointIn(In):
    id: ChargePointName = Field(description="The identity in the station's OCPP URL")
    password: Password | None = Field(None, description="Basic-auth password (security profile 1/2)")
    label: Text200 = ""
    location: Text200 = ""


class ChargePointPatch(In):
    site: Annotated[str, StringConstraints(max_length=36)] | None = Field(
        None, description="The site's code; \"\" for none"
    )
    label: Text200 | None = None
    location: Text200 | None = None
    disabled: StrictBool | None = Field(None, description="A disabled station's connections are refused")


class PasswordIn(In):
    password: Password | None = Field(None, description="Omit to have a random one generated")


class PasswordOut(BaseModel):
    password: str = Field(description="Shown once: configure it as the station's AuthorizationKey")


class Connector(BaseModel):
    evse_id: int = Field(description="OCPP 1.6 has no EVSE: its connector id stands for both")
    connector_id: int
    status: str
    error_code: str | None
    vendor_error_code: str | None
    info: str | None
    station_time: str | None
    received_at: Time


class ChargePointStatus(BaseModel):
    connected: bool
    protocol: str | None
    connected_at: Time | None
    disconnected_at: Time | None
    last_seen_at: Time | None
    last_boot_at: Time | None
    boot_reason: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    firmware_status: str | None
    last_heartbeat_at: Time | None
    last_error: str | None
    last_error_at: Time | None
    frames_in: int
    frames_out: int
    call_errors: int
    connectors: list[Connector]


class ChargePointOut(BaseModel):
    id: str
    label: str
    location: str
    site: str = Field(description="The site's code (its time zone prices sessions); \"\" for none")
    disabled: bool
    has_password: bool
    registered_at: Time
    status: ChargePointStatus


# -- customers and id tags --------------------------------------------------------------------


class Address(In):
    street: Text200 = ""
    postal_code: Annotated[str, StringConstraints(max_length=20)] = ""
    city: Text200 = ""
    country: Annotated[str, StringConstraints(pattern=r"^([A-Z]{2})?$")] = ""


class CustomerIn(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    kind: Literal["person", "company"] = "person"
    email: Text200 = ""
    billing_address: Address = Address()
    vat_id: Annotated[str, StringConstraints(max_length=15)] = ""
    language: Literal["de", "en"] = "de"
    buyer_reference: Text200 = Field("", description="EN 16931 BT-10, printed on invoices; a "
                                     "public-sector buyer's Leitweg-ID (needed for XRechnung)")


class CustomerPatch(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    kind: Literal["person", "company"] | None = None
    email: Text200 | None = None
    billing_address: Address | None = None
    vat_id: Annotated[str, StringConstraints(max_length=15)] | None = None
    language: Literal["de", "en"] | None = None
    buyer_reference: Text200 | None = None
    group: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="A customer group, for its tariff; \"\" for none"
    )


class CustomerOut(BaseModel):
    id: UUID
    name: str
    kind: str
    email: str
    billing_address: dict[str, str]
    vat_id: str
    language: str
    group: str
    buyer_reference: str
    created_at: Time


TokenKind = Literal["rfid", "emaid", "app", "other"]


class IdTagIn(In):
    token: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="RFID uid, eMAID or app token, as the station sends it"
    )
    kind: TokenKind | None = None
    label: Text200 | None = None
    valid_from: UtcTime | None = Field(None, description="Inclusive; omitted: since always")
    valid_until: UtcTime | None = Field(None, description="Exclusive; omitted: until further notice")


class IdTagPatch(In):
    blocked: StrictBool | None = None
    kind: TokenKind | None = None
    label: Text200 | None = None
    end_assignment_at: UtcTime | None = Field(
        None, description="End the open-ended assignment at this time (the card was handed back)"
    )


class AssignmentOut(BaseModel):
    customer_id: UUID
    valid_from: Time | None
    valid_until: Time | None


class IdTagOut(BaseModel):
    id: UUID
    token: str
    kind: str
    label: str
    blocked: bool
    expires_at: Time | None
    created_at: Time
    assignments: list[AssignmentOut]


# -- sessions ---------------------------------------------------------------------------------


class SessionOut(BaseModel):
    id: UUID
    charge_point: str
    protocol: str
    transaction_id: str
    state: Literal["opened", "active", "ended"]
    connector_id: int | None
    evse_id: int | None
    id_token: str | None
    id_token_type: str | None
    authorization_status: str | None
    customer_id: UUID | None
    started_at: Time | None = Field(description="The station's time, UTC")
    ended_at: Time | None
    meter_start_wh: Decimal | None
    meter_stop_wh: Decimal | None
    energy_wh: Decimal | None = Field(description="meter stop - meter start, unsigned readings")
    stop_reason: str | None
    readings: int
    after_end_readings: int
    energy_billable: bool | None = Field(
        description="Eichrecht: signed begin and end of one meter, verified against a registered key "
        "(null: not assessed yet; the detail says why not)"
    )
    billable_energy: Decimal | None = Field(description="end - begin in the meter's own unit, exact")
    billable_unit: str | None
    billable_energy_wh: Decimal | None
    time_billable: Literal["wall-clock", "duration", "no"] | None
    signed_records: int | None
    key_alerts: int | None


class FrameRefOut(BaseModel):
    charge_point: str
    seq: int
    hash: str


class SessionEventOut(BaseModel):
    version: int
    kind: str
    station_time: Time | None
    after_end: bool
    meter_values: list[dict[str, Any]]
    frame: FrameRefOut | None


class FrameOut(BaseModel):
    charge_point: str
    seq: int
    received_at: Time
    direction: Literal["in", "out"]
    protocol: str
    message_type: int | None
    message_id: str | None
    action: str | None
    connection: str | None
    text: str | None
    binary_base64: str | None
    prev_hash: str
    hash: str


class SignedRecordOut(BaseModel):
    record_id: str = Field(description="SHA-256 of the signed bytes: the same reading sent twice is one record")
    context: str | None = Field(description="The OCPP reading context it came with, e.g. Transaction.End")
    frame: FrameRefOut
    verdict: dict[str, Any] = Field(description="Signature verdict, parsed fields, readings and checks")


class EichrechtOut(BaseModel):
    assessment: dict[str, Any] | None = Field(
        description="Whether energy and time are billable, the energy in the meter's own unit, and why not"
    )
    records: list[SignedRecordOut]
    key_alerts: list[dict[str, Any]] = Field(
        description="Records whose key from the station differs from every key registered for the meter"
    )


class SessionDetail(SessionOut):
    events: list[SessionEventOut]
    frames: list[FrameOut] = Field(description="The frames behind the events and our answers")
    eichrecht: EichrechtOut


# -- quarantine -------------------------------------------------------------------------------


class QuarantineOut(BaseModel):
    id: UUID
    charge_point: str
    action: str
    protocol: str
    message_id: str
    transaction_id: str | None
    reason: str
    frame_seq: int
    frame_hash: str
    quarantined_at: Time
    resolved: bool
    resolution: str | None
    note: str | None
    resolved_by: str | None
    resolved_at: Time | None


class ResolveIn(In):
    resolution: Literal["dismissed", "corrected", "accepted"]
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


# -- API keys ---------------------------------------------------------------------------------


class ApiKeyIn(In):
    name: Text200 = ""
    role: Literal["admin", "auditor", "accountant", "customer"]
    customer_id: UUID | None = Field(None, description="Required for, and only for, a customer key")
    expires_at: UtcTime | None = None


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: str
    customer_id: UUID | None
    expires_at: Time | None
    revoked: bool
    created_at: Time


class ApiKeyCreated(ApiKeyOut):
    token: str = Field(description="Shown once; only its hash is stored")


# -- meter keys -------------------------------------------------------------------------------


class MeterKeyIn(In):
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        description="From the meter's label or its BNetzA registration: hex or base64 DER "
        "SubjectPublicKeyInfo, `oca:base16:asn1:<hex>`, or the bare point in hex"
    )
    evse_id: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        None, description="Only for this EVSE (OCPP 1.6: connector); omitted: any"
    )
    meter_serial: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="Only for records of this meter serial (OCMF MS); omitted: any"
    )
    label: Text200 = ""


class MeterKeyRetirement(In):
    reason: Text200 = Field(description="Why, e.g. 'meter replaced'")
    at: UtcTime | None = Field(None, description="From when on it is no longer trusted; omitted: now")


class MeterKeyOut(BaseModel):
    fingerprint: str = Field(description="SHA-256 of the key's point: one key, whatever its spelling")
    public_key: str
    evse_id: int | None
    meter_serial: str | None
    label: str
    registered_at: Time
    registered_by: str
    retired_at: Time | None
    retired_reason: str | None


# -- tariffs ----------------------------------------------------------------------------------


class TariffOut(BaseModel):
    code: str = Field(description="The OCPI tariff id")
    currency: str
    versions: int
    created_at: Time
    updated_at: Time


class TariffVersionOut(BaseModel):
    version: int
    valid_from: Time
    valid_until: Time | None
    corrects: int | None = Field(description="The version this one corrects (same period)")
    superseded_by: int | None = Field(description="The version that corrected this one")
    published_at: Time
    published_by: str
    tariff: dict[str, Any] = Field(description="The OCPI Tariff object, every number an exact decimal string")


class TariffDetail(BaseModel):
    code: str
    currency: str
    versions: list[TariffVersionOut]


# -- sites and tariff assignments ---------------------------------------------------------------

SiteCode = Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9._\-]+$")]


class SiteIn(In):
    code: SiteCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        "Europe/Berlin", description="IANA time zone: tariff restrictions are evaluated in it"
    )
    calibrated: StrictBool = Field(
        True, description="false: no calibrated meters (a private garage); unsigned readings are "
        "priced and every document says the values are not calibrated"
    )


class SitePatch(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    calibrated: StrictBool | None = None


class SiteOut(BaseModel):
    code: str
    name: str
    time_zone: str
    calibrated: bool
    created_at: Time


Scope = Literal["customer", "group", "charge-point", "site"]


class TariffAssignmentIn(In):
    scope: Scope
    key: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The customer's id, the group's name, the charge point's id or the site's code"
    )
    tariff: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    valid_from: UtcTime | None = Field(None, description="Inclusive; omitted: since always")
    valid_until: UtcTime | None = Field(None, description="Exclusive; omitted: until further notice")


class TariffAssignmentEnd(In):
    scope: Scope
    key: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    valid_until: UtcTime


class TariffAssignmentOut(BaseModel):
    scope: str
    key: str
    period: int
    tariff: str
    valid_from: Time | None
    valid_until: Time | None


class TariffChoiceOut(BaseModel):
    scope: str | None = Field(description="Where the tariff comes from; null: no tariff applies")
    key: str | None
    tariff: str | None


# -- prices -------------------------------------------------------------------------------------


class PriceRecordOut(BaseModel):
    version: int = Field(description="The event's version in the session's price record")
    status: Literal["priced", "unpriced"]
    reason: str | None = Field(description="Why the session is not priced")
    replaces: int | None = Field(description="The version of the earlier outcome this one supersedes")
    cause: str
    by: str
    at: Time
    outcome: dict[str, Any] = Field(
        description="Tariff id, version and scope; every component's quantity, unit price, VAT rate "
        "and cost excl./incl. VAT; the OCPI CDR totals and charging periods; notes. Amounts are "
        "exact decimal strings, not rounded to cents"
    )


class SessionPriceOut(BaseModel):
    session_id: str
    current: PriceRecordOut
    history: list[PriceRecordOut] = Field(description="Every outcome, oldest first")


class RepriceIn(In):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why the operator re-prices the session (kept with the new outcome)"
    )
    tariff: Annotated[str, StringConstraints(min_length=1, max_length=36)] | None = Field(
        None, description="Price with this tariff instead of the one assigned"
    )


class PricedSessionOut(BaseModel):
    session_id: str
    charge_point: str
    transaction_id: str
    customer_id: str | None
    site: str | None
    started_at: Time | None
    ended_at: Time | None
    status: Literal["priced", "unpriced"]
    reason: str | None
    tariff_id: str | None
    tariff_version: int | None
    tariff_scope: str | None
    currency: str | None
    total_excl_vat: str | None
    total_incl_vat: str | None
    total_energy: str | None = Field(description="kWh")
    record_version: int
    replaces: int | None
    priced_at: Time


class PriceTotalOut(BaseModel):
    customer_id: str | None
    currency: str
    sessions: int
    total_energy: str = Field(description="kWh, exact")
    total_excl_vat: str = Field(description="Exact, not rounded to cents")
    total_incl_vat: str


class UnpricedCountOut(BaseModel):
    customer_id: str | None
    sessions: int


class PriceTotalsOut(BaseModel):
    from_: Time | None = Field(alias="from", serialization_alias="from")
    to: Time | None
    totals: list[PriceTotalOut] = Field(description="Per customer and currency, sessions ended in the period")
    unpriced: list[UnpricedCountOut] = Field(description="Sessions ended in the period that have no price")


# -- issuers and invoices ---------------------------------------------------------------------

IssuerCode = Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9._\-]+$")]
NumberFormat = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class IssuerIn(In):
    code: IssuerCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    address: Address = Address()
    vat_id: Annotated[str, StringConstraints(max_length=15)] = ""
    tax_number: Annotated[str, StringConstraints(max_length=32)] = ""
    email: Text200 = ""
    iban: Annotated[str, StringConstraints(max_length=34)] = ""
    bic: Annotated[str, StringConstraints(max_length=11)] = ""
    bank: Text200 = ""
    phone: Annotated[str, StringConstraints(max_length=30)] = Field("", description="Contact telephone (XRechnung needs it)")
    small_business: StrictBool = Field(False, description="§19 UStG: no VAT shown, the §19 note printed")
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "Europe/Berlin"
    ranges: dict[Annotated[str, StringConstraints(min_length=1, max_length=36)], NumberFormat] = Field(
        default_factory=lambda: {"default": "{year}-{seq:06d}"},
        description="Number ranges by name: a format naming {seq} and optionally {year}, e.g. LB-{year}-{seq:06d}",
    )


class IssuerPatch(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    address: Address | None = None
    vat_id: Annotated[str, StringConstraints(max_length=15)] | None = None
    tax_number: Annotated[str, StringConstraints(max_length=32)] | None = None
    email: Text200 | None = None
    iban: Annotated[str, StringConstraints(max_length=34)] | None = None
    bic: Annotated[str, StringConstraints(max_length=11)] | None = None
    bank: Text200 | None = None
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    small_business: StrictBool | None = None
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    ranges: dict[Annotated[str, StringConstraints(min_length=1, max_length=36)], NumberFormat] | None = None


class IssuerOut(BaseModel):
    code: str
    name: str
    address: dict[str, str]
    vat_id: str
    tax_number: str
    email: str
    iban: str
    bic: str
    bank: str
    phone: str
    small_business: bool
    time_zone: str
    ranges: dict[str, str]
    missing_for_invoices: list[str] = Field(description="What §14 UStG needs that is not there yet")


class InvoiceRunIn(In):
    issuer: IssuerCode
    period: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] = Field(
        description="The calendar month in the issuer's time zone, e.g. 2026-11"
    )


class InvoiceRunOut(BaseModel):
    drafts: list[str]
    sessions: int
    without_customer: list[str] = Field(description="Priced sessions of the period without a customer")


class IssueIn(In):
    issue_date: date | None = Field(None, description="Default: today in the issuer's time zone")


class ReasonIn(In):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    issue_date: date | None = None


class InvoiceOut(BaseModel):
    id: str
    issuer: str
    customer_id: str
    kind: Literal["invoice", "cancellation"]
    state: Literal["draft", "discarded", "issued", "cancelled"]
    number: str | None
    period_start: date
    period_end: date
    issue_date: date | None
    currency: str | None
    total_net: str | None
    total_vat: str | None
    total_gross: str | None
    cancels: str | None = Field(description="The id of the invoice a cancellation negates")
    cancelled_by: str | None = Field(description="The number of the cancellation")
    sessions: list[str]
    document: dict[str, Any] | None = Field(None, description="The frozen document of an issued invoice")
    preview: dict[str, Any] | None = Field(
        default=None, description="A draft's detail: the document issuing it today would print (no number yet)")
    preview_problem: str | None = Field(
        default=None, description="A draft's detail: why it cannot be issued now (e.g. the issuer lacks data)")
