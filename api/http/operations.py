"""/health (liveness), /health/ready (readiness) and /metrics (Prometheus text format).

Liveness says the process answers. Readiness says it can do its work: the event store answers
and every read model is within `LADEBUCH_READY_MAX_LAG` events of the store. Metrics mix this
process's own counters (HTTP latency, open OCPP connections, commits) with totals read from the
read models (frames, sessions), which are the same whichever process is scraped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.security import services
from api.services import Services
from projections import queries

router = APIRouter(tags=["operations"])


class Liveness(BaseModel):
    status: str
    connected_charge_points: int
    committed_batches: int = Field(description="Transactions of this process's group committer")
    committed_units: int = Field(description="Commands in them")


class ReadModel(BaseModel):
    position: int
    head: int
    lag: int


class Readiness(BaseModel):
    status: str
    store: str
    read_models: dict[str, ReadModel]


@router.get("/health", response_model=Liveness)
def health(request: Request) -> Liveness:
    committer = services(request).committer
    return Liveness(
        status="ok", connected_charge_points=len(request.app.state.ocpp.connections),
        committed_batches=committer.batches, committed_units=committer.units,
    )


@router.get("/health/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(request: Request) -> Any:
    svc = services(request)
    max_lag = svc.settings.ready_max_lag
    try:
        models = {name: runner.status() for name, runner in svc.projections.items()}
    except Exception as exc:  # noqa: BLE001 - any store failure means: not ready
        body = Readiness(status="unavailable", store=f"unreachable: {type(exc).__name__}",
                         read_models={})
        return JSONResponse(body.model_dump(), status_code=503)
    lagging = [name for name, status in models.items() if status.lag > max_lag]
    body = Readiness(
        status="lagging" if lagging else "ok", store="ok",
        read_models={name: ReadModel(position=s.position, head=s.head, lag=s.lag)
                     for name, s in models.items()},
    )
    return JSONResponse(body.model_dump(), status_code=503 if lagging else 200)


class _StoreCollector(Collector):
    """Values read at scrape time from the services and the read models."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        svc: Services | None = getattr(self.app.state, "services", None)
        if svc is None:
            return
        connections = GaugeMetricFamily(
            "ladebuch_ocpp_connections", "Charge points connected to this process"
        )
        connections.add_metric([], len(self.app.state.ocpp.connections))
        yield connections
        commits = CounterMetricFamily(
            "ladebuch_committed_units", "Commands committed by this process's group committer"
        )
        commits.add_metric([], svc.committer.units)
        yield commits
        lag = GaugeMetricFamily(
            "ladebuch_projection_lag_events", "Events stored but not yet in the read model",
            labels=["projection"],
        )
        position = GaugeMetricFamily(
            "ladebuch_projection_position", "Last notification id applied", labels=["projection"]
        )
        for name, runner in svc.projections.items():
            status = runner.status()
            lag.add_metric([name], status.lag)
            position.add_metric([name], status.position)
        yield lag
        yield position
        with svc.reading() as cur:
            frames = cur.execute(
                "SELECT COALESCE(SUM(frames_in), 0), COALESCE(SUM(frames_out), 0), "
                "COALESCE(SUM(call_errors), 0) FROM rm_charge_point_status"
            ).fetchone()
            sessions = queries.count_sessions(cur)
        frames_family = CounterMetricFamily(
            "ladebuch_frames", "OCPP frames stored (all processes)", labels=["direction"]
        )
        frames_family.add_metric(["in"], int(frames[0]))
        frames_family.add_metric(["out"], int(frames[1]))
        yield frames_family
        errors = CounterMetricFamily(
            "ladebuch_call_errors", "CALLERRORs answered to charge points (all processes)"
        )
        errors.add_metric([], int(frames[2]))
        yield errors
        family = GaugeMetricFamily("ladebuch_sessions", "Charging sessions by state", labels=["state"])
        for state in ("opened", "active", "ended"):
            family.add_metric([state], sessions.get(state, 0))
        yield family


def install_metrics(app: FastAPI) -> None:
    registry = CollectorRegistry()
    registry.register(_StoreCollector(app))
    latency = Histogram(
        "ladebuch_http_request_duration_seconds", "HTTP request latency",
        ["method", "route", "status"], registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )

    app.state.latency = latency

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class Measure:
    """Pure ASGI middleware: each HTTP request's latency by method, route template and status."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The route's template, never the raw path: ids would make unbounded label values.
            template = getattr(scope.get("route"), "path", "unmatched")
            latency = getattr(self.api.state, "latency", None)
            if latency is not None:
                latency.labels(scope["method"], template, str(status)).observe(
                    time.perf_counter() - started
                )
