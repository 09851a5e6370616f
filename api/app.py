"""The ASGI application: OCPP over WebSocket and the HTTP API on one port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from api.http import (
    charge_points,
    customers,
    exports,
    invoices,
    keys,
    meter_keys,
    operations,
    pricing,
    problems,
    quarantine,
    sessions,
    sites,
    tariffs,
    verify,
)
from api.http.paging import reject_unknown_query
from api.http.problems import BodyLimit
from api.ocpp.endpoint import OcppEndpoint
from api.services import Services
from api.settings import Settings

OCPP_PREFIX = "/ocpp/"


class Ladebuch:
    """The ASGI entry point. OCPP sockets at /ocpp/{charge_point_id} go straight to the OCPP
    endpoint; everything else to FastAPI. Charge points stay connected for weeks, and FastAPI's
    routing and middleware would keep about 12 kB of state alive per idle socket."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].startswith(OCPP_PREFIX):
            charge_point_id = scope["path"][len(OCPP_PREFIX) :]
            if charge_point_id and "/" not in charge_point_id:
                await self.api.state.ocpp(scope, receive, send, charge_point_id)
                return
        await self.api(scope, receive, send)


def create_app(settings: Settings | None = None) -> Ladebuch:
    return Ladebuch(create_api(settings))


def create_api(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await asyncio.to_thread(Services.build, settings)
        services.start()
        app.state.services = services
        app.state.ocpp = OcppEndpoint(services)
        try:
            yield
        finally:
            await asyncio.to_thread(services.close)

    app = FastAPI(
        title="Ladebuch",
        version="0.1.0",
        summary="Event-sourced billing ledger for EV charging",
        description=(
            "OCPP charge points connect at `/ocpp/{charge_point_id}`. The HTTP API is under "
            "`/v1`; send an API key as `Authorization: Bearer <key>` (`ladebuch keys create`). "
            "Errors are `application/problem+json` with a stable `type`."
        ),
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
    )
    problems.install(app)
    for router in (charge_points.router, customers.router, sessions.router, quarantine.router,
                   keys.router, meter_keys.router, tariffs.router, pricing.router, invoices.router, exports.router, sites.router, verify.router, operations.router):
        app.include_router(router)
    operations.install_metrics(app)
    app.state.rendered_sessions = sessions.RenderedCache(settings.detail_cache_bytes)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(operations.Measure, api=app)
    return app
