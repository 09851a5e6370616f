"""What the operator registers: charge points (with their Basic-auth password) and id tags."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidValue
from ledger.ids import charge_point_id, id_tag_id

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
        password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=len(key)
    )
    return hmac.compare_digest(candidate, key)


class ChargePoint(Aggregate):
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


# OCPP 1.6 IdToken is CiString20; 2.0.1 IdTokenType.idToken is up to 36 (2.1: 255).
_MAX_TOKEN = 255

ACCEPTED = "Accepted"
BLOCKED = "Blocked"
EXPIRED = "Expired"
INVALID = "Invalid"


class IdTag(Aggregate):
    """An RFID uid, eMAID or app token that Authorize accepts. Looked up by its value only:
    stations send the same token as `Local` in Authorize and `ISO14443` in TransactionEvent."""

    @staticmethod
    def create_id(token: str) -> UUID:
        return id_tag_id(token)

    @classmethod
    def add(cls, token: str, *, label: str = "", expires_at: datetime | None = None) -> IdTag:
        if not token or len(token) > _MAX_TOKEN or not token.isprintable():
            raise InvalidValue("an id tag has 1 to 255 printable characters")
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidValue("expires_at must carry a time zone")
        return cls(token=token, label=label, expires_at=expires_at)

    @event("Added")
    def __init__(self, token: str, label: str, expires_at: datetime | None) -> None:
        self.token = token
        self.label = label
        self.expires_at = expires_at
        self.blocked = False

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

    def status_at(self, when: datetime) -> str:
        if self.blocked:
            return BLOCKED
        if self.expires_at is not None and when >= self.expires_at:
            return EXPIRED
        return ACCEPTED
