"""/v1/api-keys: admins create keys for people (shown once), list and revoke them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import StringConstraints

from api.http import paging, problems
from api.http.models import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from api.http.paging import CursorParam, Limit, Page
from api.http.security import Admin, services
from projections import queries

router = APIRouter(prefix="/v1/api-keys", tags=["API keys"], responses=problems.responses(*problems.COMMON))
KIND = "api-keys"
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "id": row["key_id"]}


@router.get("", response_model=Page[ApiKeyOut])
def list_keys(
    request: Request, _: Admin, limit: Limit = 50, cursor: CursorParam = None,
) -> Page[ApiKeyOut]:
    after = paging.decode(KIND, cursor, int)
    with services(request).reading() as cur:
        rows = queries.list_api_keys(cur, limit=limit + 1, after=after)
    rows, next_cursor = paging.page(KIND, rows, limit, "position")
    return Page(items=[ApiKeyOut.model_validate(_out(r)) for r in rows], next_cursor=next_cursor)


@router.post("", status_code=201, response_model=ApiKeyCreated)
def create_key(
    request: Request, body: ApiKeyIn, _: Admin
) -> ApiKeyCreated:
    issued = services(request).registry.issue_api_key(
        name=body.name, role=body.role, customer_id=body.customer_id, expires_at=body.expires_at
    )
    key = issued.key
    return ApiKeyCreated.model_validate({
        "id": key.key_id, "name": key.name, "role": key.role, "customer_id": key.customer_id,
        "expires_at": key.expires_at, "revoked": False, "created_at": key.created_on,
        "token": issued.token,
    })


@router.delete("/{key_id}", status_code=204)
def revoke_key(
    request: Request, key_id: KeyId, _: Admin
) -> None:
    """Revoke a key; it is refused from the next request on, in every server process."""
    svc = services(request)
    svc.registry.revoke_api_key(key_id)
    svc.wait_for_read_models("registry")
