#!/usr/bin/env python
"""HTTP API read benchmark: a session's detail and a page of 100 sessions, beside a trivial
endpoint on the same server stack, with wrk.

    .venv/bin/python benchmarks/api.py [--backend sqlite|postgresql] [--repeat R]
                                       [--duration S] [--threads T] [--connections C]
                                       [--sessions N] [--charge-points K] [--readings M]
                                       [--profile SECONDS]

Needs wrk (Debian's package: `apt-get install -y wrk`).

What it does, in one run:

1. Makes a fresh database: SQLite in a temporary directory (default), or with
   --backend postgresql a new database on the server of LADEBUCH_TEST_DATABASE_URL (default
   postgresql://postgres@127.0.0.1:5432/postgres). Migrates it. Either is removed at the end;
   the server logs, wrk's Lua script and the profiles stay in the temporary directory.
2. Starts a real `ladebuch serve` (tests.conftest.Server: uvicorn, uvloop and httptools when
   installed, log level warning), creates an admin key with `ladebuch keys create`, and through
   the API registers K charge points (default 50) and 20 customers with one RFID tag each.
3. Fills the ledger the way production does: K WebSocket clients (OCPP 1.6, the helpers of
   benchmarks/ingest.py) each charge N / K sessions one after the other: StartTransaction, M
   MeterValues (default 10; energy, power, current per phase) and StopTransaction with its
   transactionData, every call answered after its frames and events are committed. N defaults
   to 3,000 sessions (36,000 calls). Then waits until the read models hold everything
   (`?fresh=true`) and checks the session count. That server is stopped.
4. Starts a fresh server on the filled database and measures, with wrk (T threads, C
   connections, S seconds, `--latency`; Authorization header and a JSON report from a Lua
   script; the header goes to all three), three GET endpoints one after the other:
   - trivial: /health (no auth, no database; the same uvicorn + FastAPI + middleware stack);
   - detail:  /v1/sessions/{id} of one typical session (M + 3 events, 2 x (M + 2) frames: the
     middle item of the newest page). The server keeps rendered details (never stale: keyed by
     the session's event count and customer); --detail-cache-bytes 0 renders every request
     afresh, as for an auditor clicking through sessions never opened before;
   - page:    /v1/sessions?limit=100 (the newest 100 sessions, with their customers).
   Every endpoint first gets an unmeasured warm-up. Then R repetitions (--repeat, default 3),
   the order of the endpoints reversed every other repetition. Per run: requests/s, p50/p99
   latency, CPU per request of the server process (and of the PostgreSQL backends serving the
   database) and of wrk. Any error (an HTTP 4xx/5xx, a socket error, a timeout) fails the benchmark.
5. Prints the medians and the median over the repetitions of the ratios detail / trivial and
   page / trivial (requests/s), against the goal detail / trivial >= 0.4.
6. With --profile S: one more detail run and one more page run while py-spy (pip install
   py-spy) samples the server for S seconds each (GIL-holding samples); prints where the time
   goes (benchmarks/ingest.py's summary: by thread, package, hottest frames).

Both the server and wrk run on this machine: on a small one they share the cores, which is
part of why the figures are comparable only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The repository root goes first: this file's own directory (where `ingest` lives) is on the
# path too, and this file's name must not hide the `api` package.
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import ingest  # noqa: E402 - benchmarks/ingest.py, found through this file's directory
from ingest import OursServer  # noqa: E402 - tests.conftest.Server, with its pid

from ledger.store import Database, migrate  # noqa: E402
from tests.conftest import create_pg_database, drop_pg_database  # noqa: E402

GOAL = 0.4
TRIVIAL, DETAIL, PAGE = "trivial", "detail", "page"
ENDPOINTS = (TRIVIAL, DETAIL, PAGE)
PAGE_SIZE = 100
CUSTOMERS = 20
TAGS = [f"04A1{i:08X}" for i in range(1, CUSTOMERS + 1)]
STOP_REASONS = ("EVDisconnected", "Local", "Remote")
# wrk's report, as one JSON line after this marker (written by the Lua script's done()).
MARKER = "LADEBUCH-WRK "

WRK_SCRIPT = """\
wrk.headers["Authorization"] = "Bearer %(key)s"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "p50_us": %%.0f, "p99_us": %%.0f, '
    .. '"max_us": %%.0f, "bytes": %%d, "connect": %%d, "read": %%d, "write": %%d, '
    .. '"status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class BenchError(RuntimeError):
    pass


# =============================================================================================
# The store: an empty database on either backend
# =============================================================================================


@contextlib.contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[Database]:
    """A migrated, empty database, removed afterwards (the logs stay in `workdir`)."""
    if backend == "sqlite":
        path = workdir / "ladebuch.sqlite3"
        database = Database.from_url(f"sqlite:///{path}")
        print(f"database {database.url} (removed at the end)", flush=True)
        try:
            migrate(database)
            yield database
        finally:
            for leftover in workdir.glob(f"{path.name}*"):  # with its -wal and -shm files
                leftover.unlink()
        return
    try:
        database, name = create_pg_database()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        raise BenchError(f"cannot create a PostgreSQL database: {exc}") from exc
    print(f"database {name} (created for this run, dropped at the end)", flush=True)
    try:
        migrate(database)
        yield database
    finally:
        drop_pg_database(name)


# =============================================================================================
# Filling the ledger through the OCPP endpoint, as charge points do
# =============================================================================================


def admin_client(server: OursServer) -> tuple[httpx.Client, str]:
    done = server.cli("keys", "create", "--role", "admin", "--name", "bench")
    key = done.stdout.strip()
    if done.returncode != 0 or not key:
        raise BenchError(f"ladebuch keys create failed: {done.stderr.strip()}")
    client = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    return client, key


def _expect(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise BenchError(
            f"{response.request.method} {response.request.url}: {response.status_code} "
            f"{response.text[:400]}"
        )
    return response.json()


def set_up(http: httpx.Client, charge_points: list[str]) -> None:
    """Charge points (no password) and customers, each with one RFID tag, through the API."""
    for name in charge_points:
        _expect(http.post("/v1/charge-points", json={"id": name}), 201)
    for i, token in enumerate(TAGS, 1):
        customer = _expect(
            http.post(
                "/v1/customers", json={"name": f"Mieterin {i}", "email": f"m{i}@example.org"}
            ),
            201,
        )
        _expect(http.post(f"/v1/customers/{customer['id']}/id-tags", json={"token": token}), 201)


@dataclass
class Station:
    """One charge point charging `sessions` sessions back to back, one call at a time."""

    name: str
    index: int
    sessions: int
    readings: int
    started: datetime
    register_wh: int = 0
    calls: int = 0

    def __post_init__(self) -> None:
        self.register_wh = 1_000_000 + 37_411 * self.index

    async def _call(self, ws: Any, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return await ingest._call(ws, f"{self.name}-{self.calls}", action, payload)

    async def run(self, ws_url: str) -> None:
        async with ingest._connect(f"{ws_url}/{self.name}", "1.6") as ws:
            for n in range(self.sessions):
                await self._session(ws, n)

    async def _session(self, ws: Any, n: int) -> None:
        # Sessions two hours apart, readings every five minutes, 11 kW.
        when = self.started + timedelta(hours=2 * n, minutes=self.index % 60)
        tag = TAGS[(self.index + n) % len(TAGS)]
        power = 11_040
        answer = await self._call(
            ws,
            "StartTransaction",
            {
                "connectorId": 1 + n % 2,
                "idTag": tag,
                "meterStart": self.register_wh,
                "timestamp": ingest._ts(when),
            },
        )
        if answer["idTagInfo"]["status"] != "Accepted":
            raise BenchError(f"StartTransaction of {self.name}: {answer}")
        transaction_id = int(answer["transactionId"])
        for step in range(1, self.readings + 1):
            when += timedelta(minutes=5)
            self.register_wh += power * 5 // 60
            await self._call(
                ws,
                "MeterValues",
                {
                    "connectorId": 1 + n % 2,
                    "transactionId": transaction_id,
                    "meterValue": [
                        {
                            "timestamp": ingest._ts(when),
                            "sampledValue": ingest._sampled_16(self.register_wh, power, step),
                        }
                    ],
                },
            )
        when += timedelta(minutes=3)
        self.register_wh += power * 3 // 60
        await self._call(
            ws,
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "idTag": tag,
                "meterStop": self.register_wh,
                "timestamp": ingest._ts(when),
                "reason": STOP_REASONS[n % len(STOP_REASONS)],
                "transactionData": [
                    {
                        "timestamp": ingest._ts(when),
                        "sampledValue": [
                            {
                                "value": str(self.register_wh),
                                "context": "Transaction.End",
                                "measurand": "Energy.Active.Import.Register",
                                "location": "Outlet",
                                "unit": "Wh",
                            }
                        ],
                    }
                ],
            },
        )


async def charge(server: OursServer, names: list[str], sessions: int, readings: int) -> int:
    """Every station charges its share of `sessions` at the same time; returns the calls made."""
    started = (datetime.now(UTC) - timedelta(days=120)).replace(minute=0, second=0, microsecond=0)
    share, extra = divmod(sessions, len(names))
    stations = [
        Station(name, i, share + (1 if i < extra else 0), readings, started)
        for i, name in enumerate(names)
    ]
    await asyncio.gather(*(s.run(server.ws_url) for s in stations if s.sessions))
    return sum(s.calls for s in stations)


def sessions_stored(http: httpx.Client) -> int:
    """Sessions in the read model, once it holds everything stored (from /metrics)."""
    _expect(http.get("/v1/sessions", params={"limit": 1, "fresh": "true"}))
    metrics = http.get("/metrics").text
    found = re.findall(r'^ladebuch_sessions\{state="\w+"\} ([\d.e+]+)$', metrics, re.MULTILINE)
    return sum(int(float(v)) for v in found)


def fill(database: Database, workdir: Path, args: argparse.Namespace) -> None:
    names = [f"API-CP-{i:04d}" for i in range(1, args.charge_points + 1)]
    server = OursServer(database, workdir / "fill.log")
    try:
        http, _ = admin_client(server)
        with http:
            set_up(http, names)
            started = time.perf_counter()
            calls = asyncio.run(charge(server, names, args.sessions, args.readings))
            seconds = time.perf_counter() - started
            stored = sessions_stored(http)
        print(
            f"filled: {stored:,} sessions from {len(names)} charge points, {calls:,} OCPP 1.6 "
            f"calls in {seconds:.0f} s ({calls / seconds:,.0f} calls/s), read models current "
            f"after {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if stored != args.sessions:
            raise BenchError(f"the read model holds {stored} sessions, want {args.sessions}")
    finally:
        server.stop()


# =============================================================================================
# wrk
# =============================================================================================


@dataclass(frozen=True)
class Run:
    endpoint: str
    rep: int  # 0 for warm-up and profile runs
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    bytes: int
    server_cpu: float
    pg_cpu: float
    wrk_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def per_request_us(self, cpu: float) -> float:
        return cpu / self.requests * 1e6


@dataclass
class Load:
    """wrk against one server, and what a run costs its process and its PostgreSQL backends."""

    wrk: str
    script: Path
    server_pid: int
    threads: int
    connections: int
    pg: ingest.PgBackends | None = None

    def run(self, endpoint: str, url: str, seconds: int, rep: int) -> Run:
        command = [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(self.script),
            url,
        ]
        pg_before = self.pg.snapshot() if self.pg else {}
        cpu_before = ingest._proc_cpu_seconds(self.server_pid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=seconds + 120
        )
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = ingest._proc_cpu_seconds(self.server_pid) - cpu_before
        pg_cpu = ingest.PgBackends.delta(pg_before, self.pg.snapshot()) if self.pg else 0.0
        wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
            children.ru_utime + children.ru_stime
        )
        report = next(
            (line[len(MARKER) :] for line in done.stdout.splitlines() if line.startswith(MARKER)),
            None,
        )
        if done.returncode != 0 or report is None:
            raise BenchError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
        r = json.loads(report)
        errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
        if errors or not r["requests"]:
            raise BenchError(f"wrk {url}: {r['requests']} requests, errors {errors}")
        return Run(
            endpoint,
            rep,
            int(r["requests"]),
            r["duration_us"] / 1e6,
            r["p50_us"] / 1e3,
            r["p99_us"] / 1e3,
            r["max_us"] / 1e3,
            int(r["bytes"]),
            server_cpu,
            pg_cpu,
            wrk_cpu,
        )


def write_script(path: Path, key: str) -> None:
    path.write_text(WRK_SCRIPT % {"key": key, "marker": MARKER})


# =============================================================================================
# The measurement
# =============================================================================================


@dataclass
class Targets:
    urls: dict[str, str]
    detail_events: int
    detail_frames: int
    sizes: dict[str, int] = field(default_factory=dict)


def targets(http: httpx.Client, base_url: str, readings: int) -> Targets:
    """The three URLs; the detail's session is the middle one of the newest page."""
    page_path = f"/v1/sessions?limit={PAGE_SIZE}"
    page = _expect(http.get(page_path))
    if len(page["items"]) != PAGE_SIZE:
        raise BenchError(f"the page holds {len(page['items'])} sessions, want {PAGE_SIZE}")
    session_id = page["items"][PAGE_SIZE // 2]["id"]
    detail_path = f"/v1/sessions/{session_id}"
    detail = _expect(http.get(detail_path))
    events, frames = len(detail["events"]), len(detail["frames"])
    # Opened, Started, an Updated per reading, Ended; each message's frame and our answer.
    if events != readings + 3 or frames != 2 * (readings + 2):
        raise BenchError(
            f"session {session_id}: {events} events and {frames} frames, "
            f"want {readings + 3} and {2 * (readings + 2)}"
        )
    paths = {TRIVIAL: "/health", DETAIL: detail_path, PAGE: page_path}
    sizes = {name: len(http.get(path).content) for name, path in paths.items()}
    return Targets({k: base_url + p for k, p in paths.items()}, events, frames, sizes)


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)

    def of(self, endpoint: str) -> list[Run]:
        return [r for r in self.runs if r.endpoint == endpoint and r.rep > 0]

    def ratios(self, endpoint: str) -> list[float]:
        """Per repetition: endpoint req/s over trivial req/s."""
        trivial = {r.rep: r.rate for r in self.of(TRIVIAL)}
        return [r.rate / trivial[r.rep] for r in self.of(endpoint) if r.rep in trivial]


def _print_run(label: str, run: Run) -> None:
    print(
        f"  {label:8s} {run.endpoint:8s} {run.rate:8,.0f} req/s  p50 {run.p50_ms:7.2f} ms  "
        f"p99 {run.p99_ms:7.2f} ms  max {run.max_ms:7.1f} ms  {run.requests:7,d} requests  "
        f"cpu/request: server {run.per_request_us(run.server_cpu):5.0f} us"
        + (f" + pg {run.per_request_us(run.pg_cpu):4.0f} us" if run.pg_cpu else "")
        + f", wrk {run.per_request_us(run.wrk_cpu):4.0f} us",
        flush=True,
    )


def measure(load: Load, target: Targets, args: argparse.Namespace) -> Results:
    results = Results()
    print(f"warm-up, {args.warmup} s each (not counted)", flush=True)
    for endpoint in ENDPOINTS:
        _print_run("warm-up", load.run(endpoint, target.urls[endpoint], args.warmup, 0))
    for rep in range(1, args.repeat + 1):
        order = ENDPOINTS if rep % 2 else tuple(reversed(ENDPOINTS))
        for endpoint in order:
            time.sleep(0.5)
            run = load.run(endpoint, target.urls[endpoint], args.duration, rep)
            results.runs.append(run)
            _print_run(f"run {rep}", run)
    return results


def profile(load: Load, server: OursServer, target: Targets, seconds: int, workdir: Path) -> None:
    for endpoint in (DETAIL, PAGE):
        out = workdir / f"profile-{endpoint}.txt"
        spy = ingest._profile(server, seconds, out)
        if spy is None:
            return
        print(
            f"\nprofiling the server for {seconds} s under the {endpoint} load (py-spy takes "
            "CPU too: this run is slower than the measured ones) ...",
            flush=True,
        )
        time.sleep(0.3)
        run = load.run(endpoint, target.urls[endpoint], seconds + 2, 0)
        _print_run("profile", run)
        _, err = spy.communicate()
        if spy.returncode != 0:
            print(f"py-spy failed: {err.decode()[-2000:]}")
            continue
        print(f"py-spy profile of the {endpoint} load ({out}):")
        ingest._summarise_profile(out, run.per_request_us(run.server_cpu))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_summary(
    results: Results, target: Targets, backend: str, sessions: int, args: argparse.Namespace
) -> float:
    """Prints the table; returns the median detail / trivial ratio."""
    width = 112
    print()
    print("=" * width)
    print(
        f"SUMMARY  ({backend}, {sessions:,} sessions, wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, {args.repeat} repetition(s), medians; {os.cpu_count()} CPUs "
        "shared by the server and wrk)"
    )
    print("=" * width)
    head = (
        f"{'endpoint':8s} {'bytes':>7s} | {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} | "
        f"{'ratio':>5s} | {'cpu us/request: server':>22s} {'+ pg':>5s} {'wrk':>5s} | runs req/s"
    )
    print(head)
    print("-" * len(head))
    medians: dict[str, float] = {}
    for endpoint in ENDPOINTS:
        runs = results.of(endpoint)
        rate = _median([r.rate for r in runs])
        medians[endpoint] = rate
        ratio = _median(results.ratios(endpoint))
        print(
            f"{endpoint:8s} {target.sizes[endpoint]:7,d} | {rate:8,.0f} "
            f"{_median([r.p50_ms for r in runs]):7.2f} {_median([r.p99_ms for r in runs]):7.2f} | "
            f"{ratio:5.2f} | {_median([r.per_request_us(r.server_cpu) for r in runs]):22.0f} "
            f"{_median([r.per_request_us(r.pg_cpu) for r in runs]):5.0f} "
            f"{_median([r.per_request_us(r.wrk_cpu) for r in runs]):5.0f} | "
            + ", ".join(f"{r.rate:,.0f}" for r in runs)
        )
    print("-" * len(head))
    print(
        f"  trivial: GET /health   detail: GET /v1/sessions/{{id}} ({target.detail_events} "
        f"events, {target.detail_frames} frames)   page: GET /v1/sessions?limit={PAGE_SIZE}"
    )
    detail = _median(results.ratios(DETAIL))
    for endpoint in (DETAIL, PAGE):
        ratios = results.ratios(endpoint)
        print(
            f"  ratio {endpoint} / trivial per repetition: "
            f"{', '.join(f'{r:.2f}' for r in ratios)}; median {_median(ratios):.2f} "
            f"(ratio of the medians {medians[endpoint] / medians[TRIVIAL]:.2f})"
        )
    print()
    verdict = "MET" if detail >= GOAL else "NOT MET"
    print(f"GOAL  detail req/s / trivial req/s >= {GOAL:.1f} ({backend}): {detail:.2f}  {verdict}")
    return detail


def bench(args: argparse.Namespace, wrk: str, workdir: Path) -> None:
    with fresh_database(args.backend, workdir) as database:
        fill(database, workdir, args)
        env = {"LADEBUCH_DETAIL_CACHE_BYTES": str(args.detail_cache_bytes)}
        server = OursServer(database, workdir / "server.log", env=env)
        pg: ingest.PgBackends | None = None
        try:
            http, key = admin_client(server)
            with http:
                target = targets(http, server.base_url, args.readings)
            script = workdir / "wrk.lua"
            write_script(script, key)
            if args.backend == "postgresql":
                pg = ingest.PgBackends(database)
            load = Load(wrk, script, server.process.pid, args.threads, args.connections, pg)
            print(f"server pid {server.process.pid} {server.base_url}", flush=True)
            for endpoint in ENDPOINTS:
                print(
                    f"  {endpoint:8s} {target.urls[endpoint]}  ({target.sizes[endpoint]:,} bytes)"
                )
            results = measure(load, target, args)
            print_summary(results, target, args.backend, args.sessions, args)
            if args.profile:
                profile(load, server, target, args.profile, workdir)
        finally:
            if pg is not None:
                pg.close()
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of warm-up per endpoint (default 3)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--detail-cache-bytes", type=int, default=32 * 1_048_576,
        help="the server's cache of rendered session details (default 32 MiB, as in "
        "production; 0 measures every detail rendered afresh)",
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--sessions", type=int, default=3000, help="sessions to store (default 3000)"
    )
    parser.add_argument(
        "--charge-points",
        type=int,
        default=50,
        help="charge points charging side by side (default 50)",
    )
    parser.add_argument(
        "--readings", type=int, default=10, help="MeterValues per session (default 10)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="also sample the server with py-spy under the detail and the page load",
    )
    args = parser.parse_args(argv)
    if args.sessions < PAGE_SIZE or args.charge_points < 1 or args.repeat < 1:
        parser.error(f"--sessions must be >= {PAGE_SIZE}, --charge-points and --repeat >= 1")
    if args.connections < args.threads or args.duration <= 0 or args.warmup <= 0:
        parser.error("--connections must be >= --threads; --duration and --warmup > 0")
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="ladebuch-bench-api-"))
    print(
        f"Ladebuch API benchmark ({args.backend}): {args.sessions:,} sessions of "
        f"{args.readings} readings, wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s x {args.repeat}; logs in {workdir}",
        flush=True,
    )
    started = time.perf_counter()
    try:
        bench(args, wrk, workdir)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
