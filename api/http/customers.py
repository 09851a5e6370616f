"""/v1/customers and /v1/id-tags: who is billed, and the tokens that identify them when
charging, each assigned to a customer for a period. Authorize answers from these."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.http import paging, problems
from api.http.models import CustomerIn, CustomerOut, CustomerPatch, IdTagIn, IdTagOut, IdTagPatch
from api.http.paging import CursorParam, Limit, Page
from api.http.problems import Problem
from api.http.security import (
    BOOKS_READ,
    CUSTOMER,
    Admin,
    Principal,
    Reader,
    read_fresh,
    services,
)
from api.services import Services
from projections import queries

router = APIRouter(tags=["customers and id tags"], responses=problems.responses(*problems.COMMON, 409), dependencies=[Depends(read_fresh)])
CUSTOMERS, TAGS = "customers", "id-tags"
READERS = (*BOOKS_READ, CUSTOMER)


def _customer_out(row: dict[str, Any]) -> CustomerOut:
    return CustomerOut.model_validate(
        {**row, "id": row["customer_id"], "billing_address": json.loads(row["billing_address"]),
         "group": row["customer_group"]}
    )


def _customer(svc: Services, customer_id: UUID, principal: Principal) -> CustomerOut:
    if not principal.sees_customer(str(customer_id)):
        raise Problem("not-found", f"no customer {customer_id}")
    with svc.reading() as cur:
        rows = queries.list_customers(cur, limit=1, customer_id=str(customer_id))
    if not rows:
        raise Problem("not-found", f"no customer {customer_id}")
    return _customer_out(rows[0])


@router.get("/v1/customers", response_model=Page[CustomerOut])
def list_customers(
    request: Request, principal: Reader, limit: Limit = 50, cursor: CursorParam = None,
) -> Page[CustomerOut]:
    """In the order they were created. A customer's key lists only its own record."""
    after = paging.decode(CUSTOMERS, cursor, int)
    with services(request).reading() as cur:
        rows = queries.list_customers(
            cur, limit=limit + 1, after=after, customer_id=principal.only_customer()
        )
    rows, next_cursor = paging.page(CUSTOMERS, rows, limit, "position")
    return Page(items=[_customer_out(r) for r in rows], next_cursor=next_cursor)


@router.post("/v1/customers", status_code=201, response_model=CustomerOut)
def create_customer(
    request: Request, body: CustomerIn, principal: Admin
) -> CustomerOut:
    svc = services(request)
    customer = svc.registry.register_customer(**_fields(body.model_dump()))
    svc.wait_for_read_models("registry")
    return _customer(svc, customer.id, principal)


@router.get("/v1/customers/{customer_id}", response_model=CustomerOut)
def get_customer(
    request: Request, customer_id: UUID, principal: Reader
) -> CustomerOut:
    return _customer(services(request), customer_id, principal)


@router.patch("/v1/customers/{customer_id}", response_model=CustomerOut)
def update_customer(
    request: Request, principal: Admin, customer_id: UUID, body: CustomerPatch,
) -> CustomerOut:
    svc = services(request)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    svc.registry.update_customer(customer_id, **_fields(changes))
    svc.wait_for_read_models("registry")
    return _customer(svc, customer_id, principal)


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    """The domain keeps only the address lines that are filled in."""
    if "billing_address" in values:
        values["billing_address"] = {k: v for k, v in values["billing_address"].items() if v}
    return values


# -- id tags ----------------------------------------------------------------------------------


def _tag_out(row: dict[str, Any], principal: Principal) -> IdTagOut:
    own = principal.only_customer()
    periods = [a for a in row["assignments"] if own is None or a["customer_id"] == own]
    return IdTagOut.model_validate({**row, "id": row["tag_id"], "assignments": periods})


def _tag(svc: Services, tag_id: UUID, principal: Principal) -> IdTagOut:
    with svc.reading() as cur:
        rows = queries.list_id_tags(
            cur, limit=1, tag_id=str(tag_id), customer_id=principal.only_customer()
        )
    if not rows:
        raise Problem("not-found", f"no id tag {tag_id}")
    return _tag_out(rows[0], principal)


@router.get("/v1/id-tags", response_model=Page[IdTagOut])
def list_id_tags(
    request: Request, principal: Reader, limit: Limit = 50, cursor: CursorParam = None,
    customer_id: UUID | None = Query(None, description="Tags this customer ever had"),
) -> Page[IdTagOut]:
    after = paging.decode(TAGS, cursor, int)
    own = principal.only_customer()
    if own is not None and customer_id is not None and str(customer_id) != own:
        return Page(items=[])
    with services(request).reading() as cur:
        rows = queries.list_id_tags(
            cur, limit=limit + 1, after=after,
            customer_id=own or (str(customer_id) if customer_id else None),
        )
    rows, next_cursor = paging.page(TAGS, rows, limit, "position")
    return Page(items=[_tag_out(r, principal) for r in rows], next_cursor=next_cursor)


@router.get("/v1/id-tags/{tag_id}", response_model=IdTagOut)
def get_id_tag(
    request: Request, tag_id: UUID, principal: Reader
) -> IdTagOut:
    return _tag(services(request), tag_id, principal)


@router.post("/v1/customers/{customer_id}/id-tags", status_code=201, response_model=IdTagOut)
def assign_id_tag(
    request: Request, customer_id: UUID, body: IdTagIn, principal: Admin
) -> IdTagOut:
    """Give a token to the customer for a period (the tag is created if it is new). The same
    request again changes nothing; a period overlapping another assignment is a 409."""
    svc = services(request)
    tag = svc.registry.assign_id_tag(
        body.token, customer_id, valid_from=body.valid_from, valid_until=body.valid_until,
        label=body.label, kind=body.kind,
    )
    svc.wait_for_read_models("registry")
    return _tag(svc, tag.id, principal)


@router.patch("/v1/id-tags/{tag_id}", response_model=IdTagOut)
def update_id_tag(
    request: Request, tag_id: UUID, body: IdTagPatch, principal: Admin
) -> IdTagOut:
    svc = services(request)
    svc.registry.change_id_tag(
        tag_id, blocked=body.blocked, label=body.label, kind=body.kind,
        end_assignment_at=body.end_assignment_at,
    )
    svc.wait_for_read_models("registry")
    return _tag(svc, tag_id, principal)
