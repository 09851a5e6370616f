"""The ASGI application: OCPP over WebSocket and the HTTP API on one port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket

from api.ocpp.endpoint import OcppEndpoint
from api.services import Services
from api.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
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
        lifespan=lifespan,
    )

    @app.websocket("/ocpp/{charge_point_id}")
    async def ocpp(websocket: WebSocket, charge_point_id: str) -> None:
        await app.state.ocpp(websocket, charge_point_id)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, object]:
        services: Services = app.state.services
        return {
            "status": "ok",
            "connected_charge_points": len(app.state.ocpp.connections),
            "committed_batches": services.committer.batches,
            "committed_units": services.committer.units,
        }

    return app
