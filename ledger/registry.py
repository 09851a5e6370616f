"""What the operator registers: charge points (with their Basic-auth password), customers,
their id tags, and the API keys people use the HTTP API with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from ledger.errors import Conflict, InvalidValue, NotFound
from ledger.ids import api_key_id, charge_point_id, id_tag_id, meter_keyring_id
from ledger.signed.keys import KeyFormatError, PublicKey, parse_public_key
from ledger.values import Validity

# OCPP: the charge point identity is part of the URL; 2.0.1 allows up to 48 printable characters
# and forbids ':' (it separates user and password in Basic auth).
_CHARGE_POINT = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """scrypt (stdlib), salted; the clear text is never stored."""
    if not 16 <= len(password) <= 40:
        # OCPP security profile 1/2: the AuthorizationKey is 16 to 40 characters.
        raise InvalidValue("a charge point password has 16 to 40 characters")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, key_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    key = base64.b64decode(key_b64)
    candidate = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt_b64),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(key),
    )
    return hmac.compare_digest(candidate, key)


class ChargePoint(Aggregate):
    site = ""  # the site's code ("" none); set by describe, absent in old events

    @staticmethod
    def create_id(name: str) -> UUID:
        return charge_point_id(name)

    @classmethod
    def register(cls, name: str, password: str | None = None) -> ChargePoint:
        if not _CHARGE_POINT.match(name):
            raise InvalidValue(
                "a charge point id has 1 to 48 characters of A-Z a-z 0-9 * - _ = + | @ ."
            )
        return cls(name=name, password_hash=hash_password(password) if password else None)

    @event("Registered")
    def __init__(self, name: str, password_hash: str | None) -> None:
        self.name = name
        self.password_hash = password_hash
        self.disabled = False
        self.label = ""
        self.location = ""

    def set_password(self, password: str | None) -> None:
        self._password_set(password_hash=hash_password(password) if password else None)

    @event("PasswordSet")
    def _password_set(self, password_hash: str | None) -> None:
        self.password_hash = password_hash

    def disable(self) -> None:
        if not self.disabled:
            self._disabled()

    @event("Disabled")
    def _disabled(self) -> None:
        self.disabled = True

    def enable(self) -> None:
        if self.disabled:
            self._enabled()

    @event("Enabled")
    def _enabled(self) -> None:
        self.disabled = False

    def describe(
        self, *, label: str | None = None, location: str | None = None, site: str | None = None
    ) -> None:
        """Change what people call it, where it is and its site ("" for none); only what
        changes makes an event."""
        changes = _changes(self, label=label, location=location, site=site)
        for value in changes.values():
            _check_text(value, 200)
        if changes:
            self._described(changes=changes)

    @event("Described")
    def _described(self, changes: dict[str, str]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)


# OCPP 1.6 IdToken is CiString20; 2.0.1 IdTokenType.idToken is up to 36 (2.1: 255).
_MAX_TOKEN = 255

ACCEPTED = "Accepted"
BLOCKED = "Blocked"
EXPIRED = "Expired"
INVALID = "Invalid"


@dataclass(frozen=True)
class Assignment(Validity):
    """An id tag belongs to a customer for a period: from `valid_from` (inclusive, None: since
    always) until `valid_until` (exclusive, None: until further notice)."""

    customer_id: str
    valid_from: datetime | None
    valid_until: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
        }


TOKEN_KINDS = ("rfid", "emaid", "app", "other")


class IdTag(Aggregate):
    """An RFID uid, eMAID or app token that Authorize accepts. Looked up by its value only:
    stations send the same token as `Local` in Authorize and `ISO14443` in TransactionEvent.

    A tag may belong to customers for periods (`Assignment`s that never overlap); a session is
    the customer's whose period covers its start. A tag with no assignment is the operator's."""

    @staticmethod
    def create_id(token: str) -> UUID:
        return id_tag_id(token)

    @classmethod
    def add(cls, token: str, *, label: str = "", expires_at: datetime | None = None) -> IdTag:
        if not token or len(token) > _MAX_TOKEN or not token.isprintable():
            raise InvalidValue("an id tag has 1 to 255 printable characters")
        _check_aware(expires_at, "expires_at")
        _check_text(label, 200)
        return cls(token=token, label=label, expires_at=expires_at)

    @event("Added")
    def __init__(self, token: str, label: str, expires_at: datetime | None) -> None:
        self.token = token
        self.label = label
        self.expires_at = expires_at
        self.blocked = False
        self.kind = "other"
        self.assignments: list[Assignment] = []

    def block(self) -> None:
        if not self.blocked:
            self._blocked()

    @event("Blocked")
    def _blocked(self) -> None:
        self.blocked = True

    def unblock(self) -> None:
        if self.blocked:
            self._unblocked()

    @event("Unblocked")
    def _unblocked(self) -> None:
        self.blocked = False

    def describe(self, *, label: str | None = None, kind: str | None = None) -> None:
        if kind is not None and kind not in TOKEN_KINDS:
            raise InvalidValue(f"an id tag's kind is one of {', '.join(TOKEN_KINDS)}")
        if label is not None:
            _check_text(label, 200)
        changes = _changes(self, label=label, kind=kind)
        if changes:
            self._described(changes=changes)

    @event("Described")
    def _described(self, changes: dict[str, str]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def assign(
        self,
        customer_id: UUID,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> None:
        """Give the tag to a customer for a period. Assigning the same period again changes
        nothing (a retried request); a period overlapping another one is refused."""
        _check_aware(valid_from, "valid_from")
        _check_aware(valid_until, "valid_until")
        if valid_from is not None and valid_until is not None and valid_until <= valid_from:
            raise InvalidValue("valid_until must be later than valid_from")
        new = Assignment(str(customer_id), valid_from, valid_until)
        if new in self.assignments:
            return
        if any(new.overlaps(existing) for existing in self.assignments):
            raise Conflict("the id tag is assigned to a customer in an overlapping period")
        self._assigned(customer_id=new.customer_id, valid_from=valid_from, valid_until=valid_until)

    @event("Assigned")
    def _assigned(
        self, customer_id: str, valid_from: datetime | None, valid_until: datetime | None
    ) -> None:
        self.assignments.append(Assignment(customer_id, valid_from, valid_until))
        self.assignments.sort(key=lambda a: a.valid_from or _EARLIEST)

    def end_assignment(self, valid_until: datetime) -> None:
        """End the open-ended assignment (the tenant moved out, the card was handed back)."""
        _check_aware(valid_until, "valid_until")
        current = [a for a in self.assignments if a.valid_until is None]
        if not current:
            raise Conflict("the id tag has no open-ended assignment to end")
        if current[0].valid_from is not None and valid_until <= current[0].valid_from:
            raise InvalidValue("valid_until must be later than the assignment's valid_from")
        self._assignment_ended(customer_id=current[0].customer_id, valid_until=valid_until)

    @event("AssignmentEnded")
    def _assignment_ended(self, customer_id: str, valid_until: datetime) -> None:
        self.assignments = [
            Assignment(a.customer_id, a.valid_from, valid_until)
            if a.valid_until is None and a.customer_id == customer_id
            else a
            for a in self.assignments
        ]

    def customer_at(self, when: datetime) -> str | None:
        return next((a.customer_id for a in self.assignments if a.covers(when)), None)

    def status_at(self, when: datetime) -> str:
        if self.blocked:
            return BLOCKED
        if self.expires_at is not None and when >= self.expires_at:
            return EXPIRED
        if not self.assignments or self.customer_at(when) is not None:
            return ACCEPTED
        # Assigned, but not now: after the last period it has expired, before it is not valid yet.
        last_until = max((a.valid_until for a in self.assignments if a.valid_until), default=None)
        return EXPIRED if last_until is not None and when >= last_until else INVALID


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _changes(aggregate: Aggregate, **values: str | None) -> dict[str, str]:
    """The given values that differ from the aggregate's (None: leave as it is)."""
    return {k: v for k, v in values.items() if v is not None and v != getattr(aggregate, k)}


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# EU VAT ids: two-letter country prefix and 2 to 13 characters (BR-CO-9 / VIES formats).
_VAT_ID = re.compile(r"^[A-Z]{2}[0-9A-Za-z+*.]{2,13}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
CUSTOMER_KINDS = ("person", "company")
LANGUAGES = ("de", "en")
ADDRESS_FIELDS = ("street", "postal_code", "city", "country")


def _check_text(value: str, limit: int, *, field: str = "text", required: bool = False) -> None:
    if required and not value.strip():
        raise InvalidValue(f"{field} must not be empty")
    if len(value) > limit or any(not (c.isprintable() or c == "\n") for c in value):
        raise InvalidValue(f"{field}: at most {limit} printable characters")


def _check_aware(value: datetime | None, field: str) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidValue(f"{field} must carry a time zone")


def _check_customer(fields: dict[str, Any]) -> None:
    if "name" in fields:
        _check_text(fields["name"], 200, field="name", required=True)
    if fields.get("email") and not _EMAIL.match(fields["email"]):
        raise InvalidValue("email is not an e-mail address")
    if fields.get("vat_id") and not _VAT_ID.match(fields["vat_id"]):
        raise InvalidValue("vat_id is not an EU VAT identification number (e.g. DE123456789)")
    if "kind" in fields and fields["kind"] not in CUSTOMER_KINDS:
        raise InvalidValue(f"kind is one of {', '.join(CUSTOMER_KINDS)}")
    if "language" in fields and fields["language"] not in LANGUAGES:
        raise InvalidValue(f"language is one of {', '.join(LANGUAGES)}")
    if "group" in fields:
        _check_text(fields["group"], 64, field="group")
    if "buyer_reference" in fields:
        _check_text(fields["buyer_reference"], 200, field="buyer_reference")
    address = fields.get("billing_address")
    if address is not None:
        unknown = set(address) - set(ADDRESS_FIELDS)
        if unknown:
            raise InvalidValue(f"billing_address has no field {sorted(unknown)[0]!r}")
        for key, value in address.items():
            _check_text(value, 200, field=f"billing_address.{key}")
        if address.get("country") and not _COUNTRY.match(address["country"]):
            raise InvalidValue("billing_address.country is an ISO 3166 alpha-2 code (DE)")


class Customer(Aggregate):
    """Who is billed: a tenant, a driver, a company."""

    group = ""  # a customer group, for its tariff ("" none); set by update, absent in old events
    # The buyer's reference for their invoices (EN 16931 BT-10; a public-sector buyer's
    # Leitweg-ID, which XRechnung requires); set by update, absent in old events.
    buyer_reference = ""

    @classmethod
    def register(cls, **fields: Any) -> Customer:
        fields = {
            "kind": "person",
            "email": "",
            "billing_address": {},
            "vat_id": "",
            "language": "de",
        } | fields
        _check_customer(fields)
        later = {key: fields.pop(key) for key in ("group", "buyer_reference") if key in fields}
        customer = cls(**fields)
        customer.update(**later)  # fields added after the first release: events of their own
        return customer

    @event("Registered")
    def __init__(
        self,
        name: str,
        kind: str,
        email: str,
        billing_address: dict[str, str],
        vat_id: str,
        language: str,
    ) -> None:
        self.name = name
        self.kind = kind
        self.email = email
        self.billing_address = billing_address
        self.vat_id = vat_id
        self.language = language

    def update(self, **fields: Any) -> None:
        changes = {k: v for k, v in fields.items() if getattr(self, k) != v}
        _check_customer(changes)
        if changes:
            self._updated(changes=changes)

    @event("Updated")
    def _updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)


ROLES = ("admin", "auditor", "accountant", "customer")
_KEY_PREFIX = "lb_"


def hash_api_key(token: str) -> str:
    """API keys carry 256 random bits, so one SHA-256 is enough (no slow hash per request)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    token: str  # shown once, never stored


class ApiKey(Aggregate):
    """A bearer token for the HTTP API: `lb_<key id>_<secret>`. Only its hash is stored."""

    @staticmethod
    def create_id(key_id: str) -> UUID:
        return api_key_id(key_id)

    @classmethod
    def issue(
        cls,
        *,
        name: str,
        role: str,
        customer_id: UUID | None = None,
        expires_at: datetime | None = None,
    ) -> NewApiKey:
        if role not in ROLES:
            raise InvalidValue(f"role is one of {', '.join(ROLES)}")
        if (role == "customer") != (customer_id is not None):
            raise InvalidValue("a customer key needs a customer, and only a customer key has one")
        _check_text(name, 200, field="name")
        _check_aware(expires_at, "expires_at")
        key_id = uuid4().hex
        token = f"{_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = cls(
            key_id=key_id,
            name=name,
            role=role,
            customer_id=None if customer_id is None else str(customer_id),
            key_hash=hash_api_key(token),
            expires_at=expires_at,
        )
        return NewApiKey(key, token)

    @event("Issued")
    def __init__(
        self,
        key_id: str,
        name: str,
        role: str,
        customer_id: str | None,
        key_hash: str,
        expires_at: datetime | None,
    ) -> None:
        self.key_id = key_id
        self.name = name
        self.role = role
        self.customer_id = customer_id
        self.key_hash = key_hash
        self.expires_at = expires_at
        self.revoked = False

    def revoke(self) -> None:
        if not self.revoked:
            self._revoked()

    @event("Revoked")
    def _revoked(self) -> None:
        self.revoked = True

    def accepts(self, token: str, now: datetime) -> bool:
        return (
            not self.revoked
            and (self.expires_at is None or now < self.expires_at)
            and hmac.compare_digest(hash_api_key(token), self.key_hash)
        )

    @staticmethod
    def key_id_of(token: str) -> str | None:
        """The key id inside a token, or None if the token is not shaped like ours."""
        if not token.startswith(_KEY_PREFIX):
            return None
        key_id, sep, secret = token[len(_KEY_PREFIX) :].partition("_")
        if not sep or len(key_id) != 32 or not secret:
            return None
        try:
            int(key_id, 16)
        except ValueError:
            return None
        return key_id


@dataclass(frozen=True)
class MeterKey:
    """A public key the operator registered for a meter: the trust anchor its signatures are
    checked against. `evse_id` and `meter_serial` narrow which records it is for (None: any)."""

    fingerprint: str
    public_key: str  # as the operator gave it
    evse_id: int | None
    meter_serial: str | None
    label: str
    registered_at: datetime
    registered_by: str
    retired_at: datetime | None = None
    retired_reason: str | None = None

    def applies_to(self, evse_id: int | None, meter_serial: str | None, when: datetime) -> bool:
        if self.retired_at is not None and when >= self.retired_at:
            return False
        if self.evse_id is not None and evse_id is not None and self.evse_id != evse_id:
            return False
        return (
            self.meter_serial is None or meter_serial is None or self.meter_serial == meter_serial
        )


class MeterKeyring(Aggregate):
    """The meter keys registered for one charge point (from the meters' labels or the BNetzA
    registration). A key that arrives over OCPP is only a claim; these are what we trust."""

    @staticmethod
    def create_id(charge_point: str) -> UUID:
        return meter_keyring_id(charge_point)

    @event("Opened")
    def __init__(self, charge_point: str) -> None:
        self.charge_point = charge_point
        self.keys: dict[str, MeterKey] = {}

    def register(
        self,
        public_key: str,
        *,
        evse_id: int | None,
        meter_serial: str | None,
        label: str,
        at: datetime,
        by: str,
    ) -> MeterKey:
        """Register a key; the same key again with the same scope is a no-op."""
        try:
            fingerprint = parse_public_key(public_key).fingerprint
        except KeyFormatError as error:
            raise InvalidValue(f"public_key: {error}") from None
        if evse_id is not None and evse_id < 0:
            raise InvalidValue("evse_id must not be negative")
        meter_serial = meter_serial.strip() if meter_serial else None
        existing = self.keys.get(fingerprint)
        if existing is not None and existing.retired_at is None:
            if (existing.evse_id, existing.meter_serial) == (evse_id, meter_serial):
                return existing
            raise Conflict(
                "this key is already registered for another EVSE or meter; retire it first"
            )
        self._registered(
            fingerprint=fingerprint,
            public_key=public_key.strip(),
            evse_id=evse_id,
            meter_serial=meter_serial,
            label=label,
            at=at,
            by=by,
        )
        return self.keys[fingerprint]

    @event("KeyRegistered")
    def _registered(
        self,
        fingerprint: str,
        public_key: str,
        evse_id: int | None,
        meter_serial: str | None,
        label: str,
        at: datetime,
        by: str,
    ) -> None:
        self.keys[fingerprint] = MeterKey(
            fingerprint, public_key, evse_id, meter_serial, label, at, by
        )

    def retire(self, fingerprint: str, *, at: datetime, reason: str) -> MeterKey:
        """Retire a key from `at` on: records signed before stay verified by it. Again: a no-op."""
        key = self.keys.get(fingerprint)
        if key is None:
            raise NotFound("meter key", fingerprint)
        if key.retired_at is None:
            self._retired(fingerprint=fingerprint, at=at, reason=reason)
        return self.keys[fingerprint]

    @event("KeyRetired")
    def _retired(self, fingerprint: str, at: datetime, reason: str) -> None:
        key = self.keys[fingerprint]
        self.keys[fingerprint] = MeterKey(
            key.fingerprint,
            key.public_key,
            key.evse_id,
            key.meter_serial,
            key.label,
            key.registered_at,
            key.registered_by,
            at,
            reason,
        )

    def trusted(
        self, evse_id: int | None, meter_serial: str | None, when: datetime
    ) -> list[PublicKey]:
        return [
            parse_public_key(key.public_key)
            for key in self.keys.values()
            if key.applies_to(evse_id, meter_serial, when)
        ]
