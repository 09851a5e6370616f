"""Tariffs as events: each OCPI tariff (by its code) is a list of published versions, each valid
for a period. Publishing never changes a version; a correction is a new version that supersedes
one for the same period, so a session priced with the old one can be re-priced and both stay.

The document of a version is the OCPI 2.2.1 Tariff object as validated by `ledger.ocpi_tariffs`,
with every number as its exact decimal string. Tariffs live in the registry: what the operator
set up, read fresh on every use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from ledger.errors import Conflict, InvalidValue, NotFound
from ledger.ids import site_id, tariff_assignments_id, tariff_id
from ledger.ocpi_tariffs import Tariff as OcpiTariff
from ledger.ocpi_tariffs import TariffError, parse_tariff
from ledger.values import Validity


@dataclass(frozen=True)
class TariffVersion(Validity):
    """One published version: valid from `valid_from` (inclusive) until `valid_until` (exclusive,
    None: until further notice)."""

    version: int
    document: dict[str, Any]
    valid_from: datetime
    valid_until: datetime | None
    published_at: datetime
    published_by: str
    corrects: int | None = None
    superseded_by: int | None = None



class Tariff(Aggregate):
    @staticmethod
    def create_id(code: str) -> UUID:
        return tariff_id(code)

    @event("Created")
    def __init__(self, code: str, currency: str) -> None:
        self.code = code
        self.currency = currency
        self.versions: dict[int, TariffVersion] = {}

    def current_versions(self) -> list[TariffVersion]:
        return [v for v in self.versions.values() if v.superseded_by is None]

    def version_at(self, when: datetime) -> TariffVersion | None:
        """The version that prices a session starting at `when` (corrections included)."""
        for version in self.current_versions():
            if version.covers(when):
                return version
        return None

    def publish(
        self,
        document: dict[str, Any],
        *,
        valid_from: datetime,
        valid_until: datetime | None,
        at: datetime,
        by: str,
    ) -> TariffVersion:
        """A new version for a period no current version covers. Publishing the same document
        for the same period again answers the version published before."""
        self._check(document, valid_from, valid_until)
        for version in self.current_versions():
            if (version.document, version.valid_from, version.valid_until) == (
                document,
                valid_from,
                valid_until,
            ):
                return version
            if version.overlaps(TariffPeriod(self.code, valid_from, valid_until)):
                raise Conflict(
                    f"overlapping validity: version {version.version} is valid from "
                    f"{version.valid_from.isoformat()}"
                    + (f" until {version.valid_until.isoformat()}" if version.valid_until else "")
                    + "; end it first or correct it"
                )
        number = len(self.versions) + 1
        self._published(
            version=number,
            document=document,
            valid_from=valid_from,
            valid_until=valid_until,
            at=at,
            by=by,
            corrects=None,
        )
        return self.versions[number]

    def correct(self, version: int, document: dict[str, Any], *, at: datetime, by: str) -> TariffVersion:
        """A corrected version for the same period; the corrected one is kept, superseded."""
        old = self.versions.get(version)
        if old is None:
            raise NotFound("tariff version", f"{self.code}/{version}")
        if old.superseded_by is not None:
            raise Conflict(f"version {version} was already corrected by version {old.superseded_by}")
        self._check(document, old.valid_from, old.valid_until)
        if document == old.document:
            raise InvalidValue("the correction is the same document as the version it corrects")
        number = len(self.versions) + 1
        self._published(
            version=number,
            document=document,
            valid_from=old.valid_from,
            valid_until=old.valid_until,
            at=at,
            by=by,
            corrects=version,
        )
        return self.versions[number]

    def end(self, version: int, *, valid_until: datetime, at: datetime, by: str) -> TariffVersion:
        """End an open or later-ending version at `valid_until`, to make room for the next one.
        This is a correction too: the ended version supersedes the open one."""
        old = self.versions.get(version)
        if old is None:
            raise NotFound("tariff version", f"{self.code}/{version}")
        if old.superseded_by is not None:
            raise Conflict(f"version {version} was already corrected by version {old.superseded_by}")
        if valid_until <= old.valid_from:
            raise InvalidValue("valid_until must be after the version's valid_from")
        if old.valid_until is not None and valid_until >= old.valid_until:
            raise InvalidValue("valid_until must shorten the version's validity")
        number = len(self.versions) + 1
        self._published(
            version=number,
            document=old.document,
            valid_from=old.valid_from,
            valid_until=valid_until,
            at=at,
            by=by,
            corrects=version,
        )
        return self.versions[number]

    def _check(self, document: dict[str, Any], valid_from: datetime, valid_until: datetime | None) -> None:
        if valid_from.tzinfo is None or (valid_until is not None and valid_until.tzinfo is None):
            raise InvalidValue("valid_from and valid_until need a time zone")
        if valid_until is not None and valid_until <= valid_from:
            raise InvalidValue("valid_until must be after valid_from")
        if document.get("currency") != self.currency:
            raise InvalidValue(f"currency: this tariff is in {self.currency}")
        if document.get("id") != self.code:
            raise InvalidValue(f"id: this is tariff {self.code!r}")

    @event("Published")
    def _published(
        self,
        version: int,
        document: dict[str, Any],
        valid_from: datetime,
        valid_until: datetime | None,
        at: datetime,
        by: str,
        corrects: int | None,
    ) -> None:
        self.versions[version] = TariffVersion(
            version, document, valid_from, valid_until, at, by, corrects
        )
        if corrects is not None:
            old = self.versions[corrects]
            self.versions[corrects] = TariffVersion(
                old.version,
                old.document,
                old.valid_from,
                old.valid_until,
                old.published_at,
                old.published_by,
                old.corrects,
                version,
            )


def checked_tariff(data: Any) -> tuple[OcpiTariff, dict[str, Any]]:
    """The validated OCPI tariff and its document as stored (every number as its exact decimal
    string); a `TariffError` becomes an `InvalidValue` naming the field."""
    if not isinstance(data, dict):
        raise InvalidValue("tariff: an OCPI Tariff object")
    try:
        model = parse_tariff(data)
    except TariffError as error:
        raise InvalidValue(str(error)) from None
    return model, _document(data)


def _document(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # str() would write 1E+2, which the parser refuses on reading
    if isinstance(value, dict):
        return {str(k): _document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_document(v) for v in value]
    return value


# -- sites and assignments ----------------------------------------------------------------------

_SITE_CODE = re.compile(r"^[A-Za-z0-9._\-]{1,36}$")
DEFAULT_TIME_ZONE = "Europe/Berlin"


def check_time_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"time_zone: {name!r} is no IANA time zone (e.g. Europe/Berlin)") from None


class Site(Aggregate):
    """Where charge points stand: the time zone tariffs are evaluated in, and whether its meters
    are calibrated (a private garage may have none: then unsigned readings are priced, and every
    document says so)."""

    @staticmethod
    def create_id(code: str) -> UUID:
        return site_id(code)

    @classmethod
    def create(cls, code: str, *, name: str, time_zone: str, calibrated: bool) -> Site:
        if not _SITE_CODE.match(code):
            raise InvalidValue("code: 1 to 36 letters, digits, '.', '_' or '-'")
        if not name.strip() or len(name) > 200:
            raise InvalidValue("name: 1 to 200 characters")
        check_time_zone(time_zone)
        return cls(code=code, name=name, time_zone=time_zone, calibrated=calibrated)

    @event("Created")
    def __init__(self, code: str, name: str, time_zone: str, calibrated: bool) -> None:
        self.code = code
        self.name = name
        self.time_zone = time_zone
        self.calibrated = calibrated

    def update(self, *, name: str | None = None, time_zone: str | None = None, calibrated: bool | None = None) -> None:
        if name is not None and (not name.strip() or len(name) > 200):
            raise InvalidValue("name: 1 to 200 characters")
        if time_zone is not None:
            check_time_zone(time_zone)
        changes = {
            key: value
            for key, value in (("name", name), ("time_zone", time_zone), ("calibrated", calibrated))
            if value is not None and value != getattr(self, key)
        }
        if changes:
            self._updated(changes=changes)

    @event("Updated")
    def _updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)


# Which tariff applies to a session: the customer's own, else the customer's group's, else the
# charge point's, else its site's default; each for a period.
SCOPES = ("customer", "group", "charge-point", "site")


@dataclass(frozen=True)
class TariffPeriod(Validity):
    """A tariff assigned from `valid_from` (inclusive; None: since always) until `valid_until`
    (exclusive; None: until further notice)."""

    tariff: str
    valid_from: datetime | None
    valid_until: datetime | None


class TariffAssignments(Aggregate):
    """The tariffs assigned to one scope (a customer, a customer group, a charge point, a site),
    in periods that never overlap. A new period after an open one needs that one ended first."""

    @staticmethod
    def create_id(scope: str, key: str) -> UUID:
        return tariff_assignments_id(scope, key)

    @event("Opened")
    def __init__(self, scope: str, key: str) -> None:
        self.scope = scope
        self.key = key
        self.periods: list[TariffPeriod] = []

    def assign(self, tariff: str, *, valid_from: datetime | None, valid_until: datetime | None) -> bool:
        """False when exactly this period is assigned already."""
        for value, name in ((valid_from, "valid_from"), (valid_until, "valid_until")):
            if value is not None and value.tzinfo is None:
                raise InvalidValue(f"{name} needs a time zone")
        if valid_from is not None and valid_until is not None and valid_until <= valid_from:
            raise InvalidValue("valid_until must be after valid_from")
        new = TariffPeriod(tariff, valid_from, valid_until)
        if new in self.periods:
            return False
        for period in self.periods:
            if period.overlaps(new):
                raise Conflict(
                    f"overlapping validity: tariff {period.tariff} is assigned to this {self.scope} "
                    f"from {period.valid_from.isoformat() if period.valid_from else 'always'}"
                    f" until {period.valid_until.isoformat() if period.valid_until else 'further notice'}"
                )
        self._assigned(
            scope=self.scope, key=self.key, tariff=tariff, valid_from=valid_from, valid_until=valid_until
        )
        return True

    @event("Assigned")
    def _assigned(
        self, scope: str, key: str, tariff: str, valid_from: datetime | None, valid_until: datetime | None
    ) -> None:
        self.periods.append(TariffPeriod(tariff, valid_from, valid_until))

    def end(self, *, valid_until: datetime) -> TariffPeriod:
        """End the period that covers `valid_until` there; ending it there again is a no-op."""
        if valid_until.tzinfo is None:
            raise InvalidValue("valid_until needs a time zone")
        for index, period in enumerate(self.periods):
            if period.valid_until == valid_until:
                return period
            if period.covers(valid_until):
                if period.valid_from == valid_until:
                    raise InvalidValue("valid_until must be after the period's valid_from")
                self._ended(scope=self.scope, key=self.key, index=index, valid_until=valid_until)
                return self.periods[index]
        raise NotFound(f"{self.scope} tariff period covering", valid_until.isoformat())

    @event("AssignmentEnded")
    def _ended(self, scope: str, key: str, index: int, valid_until: datetime) -> None:
        old = self.periods[index]
        self.periods[index] = TariffPeriod(old.tariff, old.valid_from, valid_until)

    def tariff_at(self, when: datetime) -> str | None:
        for period in self.periods:
            if period.covers(when):
                return period.tariff
        return None
