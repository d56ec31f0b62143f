"""Delivery benchmark: one Create to many followers through the real DeliveryWorker.

    python benchmarks/bench_delivery.py --followers 10000 --inboxes 2000 --delay 0.05 --runs 3
    python benchmarks/bench_delivery.py --scale 10000,50000 --inboxes 2000   # memory vs followers

Three processes, loopback only:
  server  one uvicorn process listening on `--inboxes` sockets, each on its own loopback
          address (127.1.x.y, one "server" per shared inbox, so the per-host cap applies per
          inbox as it would on the fediverse); every POST is answered 202 after `--delay` s
  driver  a fresh process per run: a real SQLite store with `--followers` followers spread
          over the shared inboxes, one Create planned (one row per de-duplicated inbox), then
          DeliveryWorker.run_until() drains it, signing every request (RSA-2048, cavage)
  parent  starts both, checks the server saw exactly one POST per inbox, prints medians

Reported: wall time of the drain, requests/s, signing time per request (time spent inside
the signing httpx.Auth, median and p99), and the driver's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
KEY = HERE.parent / "tests" / "fixtures" / "keys" / "blog-private.pem"
BLOG = "https://bench.example/"


def _address(i: int) -> str:
    # 127.0.0.0/8 is all loopback on Linux: 127.1.0.1, 127.1.0.2, ... one per inbox server.
    return f"127.1.{i // 250}.{i % 250 + 1}"


# --- server process ----------------------------------------------------------------------------


def _serve(inboxes: int, port: int, delay: float) -> None:
    import uvicorn

    received = {"posts": 0, "bytes": 0, "signed": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "GET":  # /__stats
            data = json.dumps(received).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": data})
            return
        received["posts"] += 1
        received["bytes"] += len(body)
        if any(k == b"signature" for k, _ in scope["headers"]):
            received["signed"] += 1
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sockets = []
    for i in range(inboxes):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((_address(i), port))
        s.listen(128)
        sockets.append(s)
    config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print("ready", flush=True)
    server.run(sockets=sockets)


# --- driver process ----------------------------------------------------------------------------


def _vmhwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _TimedAuth(httpx.Auth):
    """Wraps an httpx.Auth and records the time spent in its signing steps."""

    def __init__(self, inner: httpx.Auth) -> None:
        self.inner = inner
        self.times: list[float] = []
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body

    def _timed(self, flow: Generator[Any, Any, None]) -> Generator[Any, Any, None]:
        started = time.perf_counter()
        req = next(flow)
        self.times.append(time.perf_counter() - started)
        while True:
            response = yield req
            started = time.perf_counter()
            try:
                req = flow.send(response)
            except StopIteration:
                return
            self.times.append(time.perf_counter() - started)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[Any, Any]:
        if self.requires_request_body:
            await request.aread()
        flow = self._timed(self.inner.auth_flow(request))
        req = next(flow)
        while True:
            response = yield req
            if self.requires_response_body:
                await response.aread()
            try:
                req = flow.send(response)
            except StopIteration:
                return


def _drive(followers: int, inboxes: int, port: int, concurrency: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from fedipress.delivery import DeliveryWorker
    from fedipress.signing import SigningAuth
    from fedipress.store import Follower, PlannedActivity, open_store

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "state.db")
        store.upsert_followers(
            Follower(
                actor_id=f"http://{_address(i % inboxes)}:{port}/users/u{i}",
                inbox=f"http://{_address(i % inboxes)}:{port}/users/u{i}/inbox",
                shared_inbox=f"http://{_address(i % inboxes)}:{port}/inbox",
                handle=None, name=None, followed_at=now,
            )
            for i in range(followers)
        )
        body = json.dumps({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{BLOG}posts/bench/#create", "type": "Create", "actor": f"{BLOG}actor.json",
            "object": {"id": f"{BLOG}posts/bench/", "type": "Note",
                       "content": "<p>" + "benchmark " * 150 + "</p>"},
        }).encode()
        activity = PlannedActivity(f"{BLOG}posts/bench/#create", f"{BLOG}posts/bench/",
                                   "Create", body)
        planned = store.plan_deliveries(activity, store.iter_delivery_inboxes(), now)
        key = load_pem_private_key(KEY.read_bytes(), password=None)
        auth = _TimedAuth(SigningAuth.for_actor(f"{BLOG}actor.json", key))  # type: ignore[arg-type]
        worker = DeliveryWorker(store, auth=auth, owner="bench", user_agent="fedipress-bench",
                                allow_private=True, concurrency=concurrency)
        started = time.perf_counter()
        summary = asyncio.run(worker.run_until(datetime.now(UTC) + timedelta(seconds=120)))
        seconds = time.perf_counter() - started
        store.close()
    times = sorted(auth.times)
    return {
        "followers": followers, "deliveries": planned.deliveries, "seconds": seconds,
        "sent": summary.sent, "failed": summary.failed, "retrying": summary.retrying,
        "sign_median_ms": statistics.median(times) * 1000 if times else 0.0,
        "sign_p99_ms": times[int(len(times) * 0.99)] * 1000 if times else 0.0,
        "rss_kib": _vmhwm_kib(),
    }


# --- parent ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(port: int) -> dict[str, int]:
    with httpx.Client(trust_env=False) as client:
        return dict(client.get(f"http://{_address(0)}:{port}/__stats", timeout=10).json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--inboxes", type=int, default=2_000, help="shared inboxes (servers)")
    parser.add_argument("--delay", type=float, default=0.05, help="server answer delay (s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="DeliveryWorker concurrency")
    parser.add_argument("--scale", help="comma-separated follower counts: one run each")
    parser.add_argument("--role", choices=["serve", "drive"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.inboxes <= 60_000 or args.followers < args.inboxes:
        parser.error("need 1 <= --inboxes <= 60000 and --followers >= --inboxes")

    if args.role == "serve":
        _serve(args.inboxes, args.port, args.delay)
        return 0
    if args.role == "drive":
        print(json.dumps(_drive(args.followers, args.inboxes, args.port, args.concurrency)))
        return 0

    port = _free_port()
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--inboxes", str(args.inboxes), "--port", str(port)]
    server = subprocess.Popen([*me, "--role", "serve", *common, "--delay", str(args.delay)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("the inbox server did not start")
        time.sleep(0.5)
        sizes = [int(s) for s in args.scale.split(",")] if args.scale else \
            [args.followers] * args.runs
        rows = []
        print(f"{args.inboxes:,} loopback inbox servers answering after {args.delay * 1000:.0f} ms;"
              f" {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
        for n in sizes:
            before = _stats(port)["posts"]
            proc = subprocess.run(
                [*me, "--role", "drive", *common, "--followers", str(n),
                 "--concurrency", str(args.concurrency)],
                capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise SystemExit(f"driver failed:\n{proc.stderr[-4000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["received"] = _stats(port)["posts"] - before
            rows.append(row)
            print(f"followers {n:>7,}  deliveries {row['deliveries']:>6,}  "
                  f"{row['seconds']:6.2f} s  {row['sent'] / row['seconds']:7.1f} req/s  "
                  f"signing median {row['sign_median_ms']:.2f} ms p99 {row['sign_p99_ms']:.2f} ms"
                  f"  peak RSS {row['rss_kib'] / 1024:.0f} MiB  sent {row['sent']:,}"
                  f" failed {row['failed']} received {row['received']:,}", flush=True)
            if row["received"] != row["deliveries"] or row["sent"] != row["deliveries"]:
                raise SystemExit("not every inbox got exactly one POST")
        if not args.scale:
            print(f"median {statistics.median(r['seconds'] for r in rows):.2f} s over"
                  f" {len(rows)} runs; signing median"
                  f" {statistics.median(r['sign_median_ms'] for r in rows):.2f} ms/request")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
