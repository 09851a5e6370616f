"""/v1/verify: a verdict on each signed meter value in a file someone hands in.

The body is the file itself, as `ladebuch verify` reads it: a Transparenzsoftware XML file, OCPP
JSON (a signedMeterValue, a SampledValue, a whole message or frame, a list of them) or text with
one signed record a line. Nothing stored is read, so every role may ask. The signature is checked
against the key that came with the data: `claimed-key-only` at best, never `verified`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.http import problems
from api.http.problems import Problem
from api.http.security import ANYONE, Principal, allow
from ledger.signed.inputs import verify_file

router = APIRouter(
    prefix="/v1/verify",
    tags=["verify"],
    responses=problems.responses(*problems.COMMON, 415),
)

Anyone = Annotated[Principal, Depends(allow(*ANYONE))]

MEDIA_TYPES = ("application/json", "application/xml", "text/xml", "text/plain")
_FILE = "The file's content, as it is"
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "A Transparenzsoftware XML file (`<values>`), OCPP JSON, or text with one "
    "signed record (OCMF string, Alfen line, hex or base64 of one) a line.",
    "content": {
        "application/json": {"schema": {"description": _FILE}},
        "application/xml": {"schema": {"description": _FILE}},
        "text/plain": {"schema": {"type": "string", "description": _FILE}},
    },
}


class KeyOut(BaseModel):
    source: Literal["registered", "claimed"] | None = None
    fingerprint: str = Field(description="SHA-256 of the key's point, hex")
    spki_hex: str | None = None


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str


class VerdictOut(BaseModel):
    """One signed record's verdict (more fields may follow)."""

    model_config = ConfigDict(extra="allow")

    label: str = Field(description="Where in the file the record was")
    format: str
    signature: Literal[
        "verified", "claimed-key-only", "invalid", "no-key", "unsupported", "no-signed-data"
    ]
    reason: str | None = None
    record_id: str | None = Field(None, description="SHA-256 (hex) of the signed bytes")
    method: str | None = None
    key: KeyOut | None = Field(None, description="The key the signature holds against")
    claimed_key_fingerprint: str | None = None
    fields: dict[str, Any] = {}
    readings: list[dict[str, Any]] = []
    checks: list[CheckOut] = []
    signed_data: str | None = Field(None, description="As the Transparenzsoftware reads it")


class VerifyOut(BaseModel):
    records: list[VerdictOut]


@router.post("", response_model=VerifyOut, openapi_extra={"requestBody": REQUEST_BODY})
async def verify(request: Request, _: Anyone) -> VerifyOut:
    """Check every signed record in the file; a file that is no such file, or holds nothing
    signed, is one record whose verdict says why."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise Problem(
            "unsupported-media-type",
            f"send the file as {', '.join(MEDIA_TYPES)}, not {media_type or 'no content type'}",
        )
    body = await request.body()
    if not body.strip():
        raise Problem("invalid-value", "the body is empty: send the file's content")
    records = await asyncio.to_thread(verify_file, body)
    return VerifyOut.model_validate({"records": records})
