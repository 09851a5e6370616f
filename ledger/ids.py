"""Deterministic aggregate ids from natural keys.

With optimistic concurrency, a retried command that would create the same aggregate again
collides on (originator_id, version 1) instead of creating a second one.
"""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6d1c6f3e-4b8a-5d57-9a53-2f0d6c1e7b10")


def _id(kind: str, *parts: str) -> UUID:
    return uuid5(NAMESPACE, "\x1f".join((kind, *parts)))


def charge_point_id(charge_point: str) -> UUID:
    return _id("charge-point", charge_point)


def id_tag_id(token: str) -> UUID:
    return _id("id-tag", token)


def frame_log_id(charge_point: str) -> UUID:
    return _id("frame-log", charge_point)


def session_id(charge_point: str, protocol_family: str, transaction_id: str) -> UUID:
    """`protocol_family` is "ocpp1.6" (our integer ids) or "ocpp2" (the station's string ids)."""
    return _id("session", charge_point, protocol_family, transaction_id)


def quarantine_id(charge_point: str, action: str, payload_digest: str) -> UUID:
    return _id("quarantine", charge_point, action, payload_digest)


def api_key_id(key_id: str) -> UUID:
    return _id("api-key", key_id)


def connection_id(connection: str) -> UUID:
    return _id("connection", connection)


def meter_keyring_id(charge_point: str) -> UUID:
    return _id("meter-keyring", charge_point)


def tariff_id(code: str) -> UUID:
    return _id("tariff", code)


def site_id(code: str) -> UUID:
    return _id("site", code)


def tariff_assignments_id(scope: str, key: str) -> UUID:
    return _id("tariff-assignments", scope, key)


def session_price_id(session: str) -> UUID:
    """The price record of a charging session (by the session's own id)."""
    return _id("session-price", session)
