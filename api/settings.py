"""Settings: one frozen object built from `LADEBUCH_*` environment variables at start-up.

Nothing below `api/` reads the environment; everything gets what it needs from here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

DEFAULT_DATABASE_URL = "sqlite:///var/ladebuch.sqlite3"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8180
    log_level: str = "info"
    # Seconds a station waits between heartbeats (BootNotification.interval).
    heartbeat_interval: int = 300
    # Larger OCPP frames are answered with a CALLERROR and recorded; the WebSocket stays open.
    ocpp_max_frame_bytes: int = 262_144
    # Frames beyond this close the WebSocket (1009) before they reach us.
    ws_max_bytes: int = 4 * 1_048_576
    db_pool_size: int = 5
    aggregate_cache_size: int = 20_000
    public_url: str = ""
    # /health/ready answers 503 while a read model is further behind the store than this.
    ready_max_lag: int = 1000
    # HTTP request bodies larger than this are refused with 413.
    max_body_bytes: int = 1_048_576
    # Session details kept rendered (bytes); 0 turns the cache off.
    detail_cache_bytes: int = 32 * 1_048_576

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"LADEBUCH_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = int(raw) if f.type in ("int", int) else raw
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.log_level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"LADEBUCH_LOG_LEVEL: unknown level {settings.log_level!r}")
        return settings

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def ocpp_url(self) -> str:
        base = self.base_url.replace("https://", "wss://").replace("http://", "ws://")
        return f"{base}/ocpp/"
