"""Errors as `application/problem+json` (RFC 9457), each with a stable `type`.

A client branches on `type`; `title` is the same for every occurrence of a type and `detail`
says what happened this time. Nothing the API does on bad input ends in a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import AlreadyExists, Conflict, InvalidValue, NotFound, StoreUnavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:ladebuch:problem:"

# slug -> (status, title): the catalogue of every problem type the API answers with.
TYPES: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "The request body is not valid JSON"),
    "bad-cursor": (400, "The pagination cursor is not one this list handed out"),
    "unauthorized": (401, "A valid API key is required"),
    "forbidden": (403, "This API key's role may not do this"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "already-exists": (409, "The resource exists already"),
    "conflict": (409, "The request contradicts what is stored"),
    "concurrent-change": (409, "Someone changed the resource at the same time; retry"),
    "body-too-large": (413, "The request body is too large"),
    "unsupported-media-type": (415, "The request body's media type is not one this operation takes"),
    "validation-error": (422, "The request does not match the API's schema"),
    "invalid-value": (422, "A value was refused"),
    "bad-time-range": (422, "The time range is not valid"),
    "unpriceable-session": (422, "The session cannot be priced under this tariff"),
    "store-unavailable": (503, "The event store is unavailable"),
    "internal-error": (500, "Internal error"),
}


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str = Field(examples=[TYPE_PREFIX + "not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="For validation errors")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problems an operation may answer with."""
    slugs: dict[int, list[str]] = {}
    for slug, (status, _) in TYPES.items():
        slugs.setdefault(status, []).append(f"`{TYPE_PREFIX}{slug}`")
    return {
        status: {"description": "Problem types: " + ", ".join(slugs[status]),
                 "content": {MEDIA_TYPE: {"schema": ProblemDetails.model_json_schema()}}}
        for status in statuses
    }


# What any operation behind an API key may answer (with its own additions).
COMMON = (400, 401, 403, 404, 413, 422, 503)


class Problem(Exception):
    def __init__(self, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.extra = extra


def problem_response(
    slug: str, detail: str, *, instance: str | None = None, headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    status, title = TYPES[slug]
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_STATUS_SLUG = {400: "malformed-json", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
                406: "not-acceptable", 413: "body-too-large", 415: "unsupported-media-type"}


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        headers = {"WWW-Authenticate": "Bearer"} if exc.slug == "unauthorized" else None
        return problem_response(exc.slug, exc.detail, instance=request.url.path, headers=headers,
                                **exc.extra)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"location": [str(part) for part in e.get("loc", ())], "message": str(e.get("msg")),
             "type": str(e.get("type"))}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response("malformed-json", "the body could not be parsed as JSON",
                                    instance=request.url.path)
        detail = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
        return problem_response("validation-error", detail, instance=request.url.path,
                                errors=errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = _STATUS_SLUG.get(exc.status_code, "internal-error" if exc.status_code >= 500 else "invalid-value")
        return problem_response(slug, str(exc.detail), instance=request.url.path,
                                headers=getattr(exc, "headers", None))

    async def on_ledger(request: Request, exc: Exception) -> JSONResponse:
        slug = {NotFound: "not-found", AlreadyExists: "already-exists", Conflict: "conflict",
                InvalidValue: "invalid-value", StoreUnavailable: "store-unavailable",
                IntegrityError: "concurrent-change"}[type(exc)]
        detail = str(exc) if slug != "concurrent-change" else "the resource changed meanwhile"
        return problem_response(slug, detail, instance=request.url.path)

    async def on_anything(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response("internal-error", "the server failed; the error is logged",
                                instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for cls in (NotFound, AlreadyExists, Conflict, InvalidValue, StoreUnavailable, IntegrityError):
        app.add_exception_handler(cls, on_ledger)
    app.add_exception_handler(Exception, on_anything)


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413: by Content-Length before reading,
    and by counting when the body comes without one (it is buffered, at most `limit` bytes)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            "body-too-large", f"the body exceeds {self.limit} bytes", instance=scope.get("path")
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replaying() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying
