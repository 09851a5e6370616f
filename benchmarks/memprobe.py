#!/usr/bin/env python
"""Where the memory of an idle charge point goes: `ladebuch serve` under tracemalloc.

    .venv/bin/python benchmarks/memprobe.py [--idle K] [--frames F] [--baseline]

Starts the server as `python -m api.cli serve` runs it (uvicorn with ws="websockets-sansio"),
or with --baseline the bare `ocpp` server of ingest.py, with tracemalloc on, opens K/10 idle
connections (handshake + one BootNotification each), takes a snapshot, opens the other 9K/10,
takes another, and prints the difference per connection, grouped by the allocating line and by
the innermost Ladebuch/uvicorn/websockets/starlette/ocpp frame.
tracemalloc sees Python allocations only (not libuv, libpq or malloc fragmentation), and makes
the server slow; the numbers are for attribution, ingest.py's VmRSS ones are the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import ingest  # noqa: E402 - found through the path set just above

# Runs inside the server process: tracemalloc, and a thread that takes a snapshot whenever
# a trigger file appears.
_WRAPPER = r"""
import os, sys, threading, time, tracemalloc
tracemalloc.start(int(os.environ["MEMPROBE_FRAMES"]))
directory = os.environ["MEMPROBE_DIR"]

def watch():
    n = 0
    while True:
        trigger = os.path.join(directory, f"take-{n}")
        if os.path.exists(trigger):
            import gc
            gc.collect()
            tracemalloc.take_snapshot().dump(os.path.join(directory, f"snap-{n}.tmp"))
            os.rename(os.path.join(directory, f"snap-{n}.tmp"), os.path.join(directory, f"snap-{n}"))
            n += 1
        time.sleep(0.05)

threading.Thread(target=watch, daemon=True).start()
"""

_OURS = _WRAPPER + "from api.cli import main\nraise SystemExit(main(['serve']))\n"
_BASELINE = _WRAPPER + (
    f"sys.path.insert(0, {str(HERE)!r})\nimport ingest\n"
    "ingest.serve_baseline(int(os.environ['MEMPROBE_PORT']))\n"
)


async def snapshot(directory: Path, n: int) -> tracemalloc.Snapshot:
    (directory / f"take-{n}").touch()
    path = directory / f"snap-{n}"
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("no snapshot from the server")
        await asyncio.sleep(0.1)
    return tracemalloc.Snapshot.load(str(path))


_INTERESTING = (
    "api/",
    "ledger/",
    "uvicorn/",
    "websockets/",
    "starlette/",
    "fastapi/",
    "ocpp/",
    "ingest.py",
    "eventsourcing/",
    "psycopg",
)


def report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, connections: int) -> None:
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(filters), after.filter_traces(filters)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(
        f"\nPython allocations per connection: {total / connections / 1024:.1f} kB "
        f"(over {connections} connections)\n"
    )
    print("by allocating line:")
    for stat in after.compare_to(before, "lineno")[:25]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / connections:8.0f} B  {stat.count_diff / connections:6.1f} blocks  "
            f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
        )
    grouped: dict[str, int] = {}
    packages: dict[str, int] = {}
    for stat in after.compare_to(before, "traceback"):
        where, package = "?", "other"
        for frame in reversed(stat.traceback):  # tracemalloc orders the oldest call first
            name = frame.filename.split("site-packages/")[-1]
            name = name.split("/main/")[-1]
            if any(name.startswith(p) or f"/{p}" in name for p in _INTERESTING):
                where = f"{name}:{frame.lineno}"
                package = name.split("/")[0] if "/" in name else name
                break
        grouped[where] = grouped.get(where, 0) + stat.size_diff
        packages[package] = packages.get(package, 0) + stat.size_diff
    print("\nby package of the innermost frame in the server's own stack:")
    for where, size in sorted(packages.items(), key=lambda kv: -kv[1]):
        print(f"  {size / connections:8.0f} B  {where}")
    print("\nby that frame:")
    for where, size in sorted(grouped.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {size / connections:8.0f} B  {where}")


async def main_async(args: argparse.Namespace) -> None:
    from ledger.store import migrate
    from tests.conftest import create_pg_database, drop_pg_database, free_port

    names = [f"PROBE-{i:05d}" for i in range(1, args.idle + 1)]
    database, dbname = create_pg_database()
    directory = Path(tempfile.mkdtemp(prefix="ladebuch-memprobe-"))
    process = None
    try:
        migrate(database)
        await asyncio.to_thread(ingest.register, database, names)
        port = free_port()
        env = {
            **os.environ,
            "LADEBUCH_DATABASE_URL": database.url,
            "LADEBUCH_PORT": str(port),
            "LADEBUCH_LOG_LEVEL": "warning",
            "MEMPROBE_DIR": str(directory),
            "MEMPROBE_FRAMES": str(args.frames),
            "MEMPROBE_PORT": str(port),
        }
        log = open(directory / "server.log", "w")  # noqa: SIM115, ASYNC230
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
            [sys.executable, "-c", _BASELINE if args.baseline else _OURS],
            cwd=HERE.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        class Target:
            name = "baseline" if args.baseline else "ours"
            ws_url = f"ws://127.0.0.1:{port}/ocpp"
            pid = process.pid

        deadline = time.monotonic() + 60
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((directory / "server.log").read_text()) from None
                await asyncio.sleep(0.2)
        tenth = max(1, args.idle // 10)
        first = await ingest.open_idle(Target, names[:tenth], "1.6")
        await asyncio.sleep(1)
        rss1 = ingest._rss_kb(process.pid)
        snap1 = await snapshot(directory, 0)
        rest = await ingest.open_idle(Target, names[tenth:], "1.6")
        await asyncio.sleep(2)
        rss2 = ingest._rss_kb(process.pid)
        snap2 = await snapshot(directory, 1)
        print(
            f"{Target.name}: VmRSS {rss1} kB -> {rss2} kB: "
            f"{(rss2 - rss1) / (args.idle - tenth):.1f} kB per connection (with tracemalloc on)"
        )
        report(snap1, snap2, args.idle - tenth)
        await ingest.close_all(first + rest)
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        drop_pg_database(dbname)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.idle + 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.idle + 1024), hard))
    ingest._install_uvloop()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
