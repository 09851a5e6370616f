"""Who is asking: bearer API keys and their roles.

- admin: everything (the landlord or the operator);
- auditor: reads everything, changes nothing;
- accountant: customers and sessions (later invoices and exports), read-only;
- customer: only their own sessions, id tags and customer record. Another customer's resource
  is answered exactly like one that does not exist (404), never with a 403 that confirms it.

A role that may not use a kind of resource at all gets 403 before anything is looked up, so
the answer says nothing about whether a particular resource exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.http.problems import Problem
from api.services import Services

ADMIN, AUDITOR, ACCOUNTANT, CUSTOMER = "admin", "auditor", "accountant", "customer"
STAFF_READ = (ADMIN, AUDITOR)
BOOKS_READ = (ADMIN, AUDITOR, ACCOUNTANT)
ANYONE = (ADMIN, AUDITOR, ACCOUNTANT, CUSTOMER)

_bearer = HTTPBearer(auto_error=False, description="An API key: `ladebuch keys create`")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    customer_id: str | None

    @property
    def name(self) -> str:
        return f"api-key:{self.key_id}"

    def sees_customer(self, customer_id: str | None) -> bool:
        return self.role != CUSTOMER or (customer_id is not None and customer_id == self.customer_id)

    def only_customer(self) -> str | None:
        """The customer a list is restricted to, for a customer's key."""
        return self.customer_id if self.role == CUSTOMER else None


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None:
        raise Problem("unauthorized", "send an API key as `Authorization: Bearer <key>`")
    key = services(request).registry.authenticate(credentials.credentials, datetime.now(UTC))
    if key is None:
        raise Problem("unauthorized", "the API key is unknown, revoked or expired")
    return Principal(key.key_id, key.role, key.customer_id)


def allow(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and lets only `roles` through. The checks that need no
    I/O are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a round trip
    through a worker thread per dependency and request."""

    async def check(principal: Principal = Depends(_principal)) -> Principal:
        if principal.role not in roles:
            raise Problem("forbidden", f"the {principal.role} role may not do this")
        return principal

    return check


# Handler parameters: `principal: Admin` lets admins in, `principal: Reader` readers, ...
Admin = Annotated[Principal, Depends(allow(ADMIN))]
StaffReader = Annotated[Principal, Depends(allow(*STAFF_READ))]
Reader = Annotated[Principal, Depends(allow(*BOOKS_READ, CUSTOMER))]
BooksReader = Annotated[Principal, Depends(allow(*BOOKS_READ))]


async def read_fresh(
    request: Request,
    fresh: bool = Query(
        False, description="Wait until the read models hold everything stored when the request "
        "arrived (read-after-write for changes made elsewhere, e.g. by a charge point)",
    ),
    _: Principal = Depends(_principal),
) -> None:
    """Authenticated first: nobody without a key can make the server wait."""
    if fresh:
        try:
            await run_in_threadpool(services(request).wait_for_read_models)
        except TimeoutError:
            raise Problem("store-unavailable", "the read models did not catch up in time") from None
