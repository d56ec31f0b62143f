"""Delivery benchmark: one Create to many followers through the real publish path.

    python benchmarks/bench_delivery.py --followers 10000 --inboxes 2000 --delay 0.05 --runs 3
    python benchmarks/bench_delivery.py --scale 1000,10000,50000 --inboxes 2000  # memory
    python benchmarks/bench_delivery.py --followers 100000 --inboxes 5000 --postgres --workers 2

Three processes, loopback only:
  sink    one process, one asyncio event loop, listening on `--inboxes` sockets, each on its
          own loopback address (127.1.x.y: the whole of 127/8 is loopback on Linux), so the
          worker's per-host cap applies per inbox as it would on the fediverse. A bare
          asyncio.Protocol (not a framework) so that the receiving side costs as little CPU
          as possible on this shared 2-core machine; every POST is answered 202 after
          `--delay` s (call_later, no task per request) and its HTTP signature is checked
          against the blog's public key (counted, not trusted blindly)
  driver  a fresh process per run: a three-post site built by the real Builder, a real SQLite
          store holding `--followers` followers spread evenly over the shared inboxes, then
          exactly what `fedipress publish` does: plan_changes (backfill=1: one Create),
          queue_plan (one row per de-duplicated inbox, streamed from the store) and
          DeliveryWorker.run_until() signing every request (RSA-2048, draft-cavage + Digest)
  workers with `--workers N` (N > 1): the driver plans as above, then N `fedipress worker`-like
          processes (DeliveryWorker.run_forever on the same store, each its own process,
          stopping once nothing is pending) drain the queue together; the drain time is the
          wall time from their start to the last one's exit (process start-up included)
  parent  starts both, checks the sink saw exactly one verified POST per inbox, prints medians

`--postgres` runs the store on PostgreSQL: a throwaway cluster (Debian's postgresql package,
tests/support/postgres.py) started for the benchmark, one fresh migrated database per run.

Reported per run: seconds to queue (plan_changes + queue_plan) and to drain, requests/s,
signing time per request (time inside the signing httpx.Auth: median, mean, p99), the driver's
CPU seconds, and its peak RSS during the publish alone (VmHWM is reset after the store is
filled, so the figure is what publishing costs, not the benchmark's set-up).
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
KEYS = HERE.parent / "tests" / "fixtures" / "keys"
# Measure the checkout this script lives in, whatever copy of fedipress is installed.
sys.path.insert(0, str(HERE.parent / "src"))
DRAIN_LIMIT = timedelta(seconds=300)  # the drain's deadline: the benchmark is bounded


def _address(i: int) -> str:
    # 127.1.0.1, 127.1.0.2, ... one loopback address per inbox server (up to 62,500).
    return f"127.1.{i // 250}.{i % 250 + 1}"


# --- sink process --------------------------------------------------------------------------------


class _Sink(asyncio.Protocol):
    """A minimal HTTP/1.1 server: Content-Length bodies, keep-alive, one request at a time."""

    def __init__(self, stats: dict[str, Any], delay: float, check: Any) -> None:
        self.stats = stats
        self.delay = delay
        self.check = check
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body is still on its way
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            method, target, _ = lines[0].split(" ", 2)
            if method == "GET":  # /__stats for the parent
                self.stats["cpu_seconds"] = time.process_time()
                self._answer(200, json.dumps(self.stats).encode())
                continue
            self.stats["posts"] += 1
            self.stats["bytes"] += length
            if self.check(method, target, headers, body):
                self.stats["verified"] += 1
            asyncio.get_running_loop().call_later(self.delay, self._answer, 202, b"")

    def _answer(self, status: int, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n"
                                 b"Content-Type: application/json\r\n\r\n%s"
                                 % (status, len(body), body))


def _serve(inboxes: int, port: int, delay: float) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from fedipress.activitypub.httpsig import verify_request

    public_key = load_pem_public_key((KEYS / "blog-public.pem").read_bytes())
    stats: dict[str, Any] = {"posts": 0, "verified": 0, "bytes": 0, "connections": 0}

    def check(method: str, target: str, headers: dict[str, str], body: bytes) -> bool:
        try:
            verify_request(method, target, headers, body, public_key=public_key,  # type: ignore[arg-type]
                           now=datetime.now(UTC), scheme="http")
        except Exception:  # noqa: BLE001 - a bad signature is counted, not fatal
            return False
        return True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for i in range(inboxes):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((_address(i), port))
            sock.listen(256)
            sock.setblocking(False)
            await loop.create_server(lambda: _Sink(stats, delay, check), sock=sock)
        print("ready", flush=True)
        await asyncio.Event().wait()  # until the parent terminates us

    asyncio.run(main())


# --- driver process --------------------------------------------------------------------------


def _proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so the peak covers what follows.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


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


def _site(root: Path) -> Any:
    """A three-post site built by the real Builder; returns its SiteConfig."""
    sys.path.insert(0, str(HERE))
    import corpus

    from fedipress.config import load_config
    from fedipress.generator.build import build_site

    corpus.write_site(root, corpus.generate_posts(3), seed=1)
    config = load_config(root / "site.yaml")
    build_site(config, log=lambda _line: None)
    return config


def _drive(followers: int, inboxes: int, port: int, concurrency: int,
           database_url: str | None = None, workers: int = 1) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from fedipress.federation.delivery import DeliveryWorker
    from fedipress.federation.publish import load_manifest, plan_changes, queue_plan
    from fedipress.model import Site
    from fedipress.store import Follower, open_store

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        config = _site(Path(tmp) / "site")
        location = database_url or str(Path(tmp) / "state.db")
        store = open_store(location if database_url else Path(location))

        def follower(i: int) -> Follower:
            # Follower i lives on server i % inboxes: every inbox gets followers/inboxes.
            base = f"http://{_address(i % inboxes)}:{port}"
            return Follower(actor_id=f"{base}/users/u{i}", inbox=f"{base}/users/u{i}/inbox",
                            shared_inbox=f"{base}/inbox", handle=None, name=None,
                            followed_at=now)

        store.upsert_followers(follower(i) for i in range(followers))
        key = load_pem_private_key((KEYS / "blog-private.pem").read_bytes(), password=None)
        setup_rss = _proc_status("VmRSS")
        peak_reset = _reset_peak_rss()
        cpu0 = time.process_time()

        # What `fedipress publish --backfill 1` does once the site is built.
        started = time.perf_counter()
        now = datetime.now(UTC)
        plan = plan_changes(store.get_ledger(), load_manifest(config),
                            site=Site(config=config, posts=(), pages=()), now=now, backfill=1)
        queued = queue_plan(store, plan, now)
        queue_seconds = time.perf_counter() - started
        if workers > 1:
            store.close()
            drained = _drain_in_processes(location, config.url("actor.json"), workers,
                                          concurrency)
            return {
                "followers": followers, "inboxes": inboxes, "activities": len(plan.activities),
                "deliveries": queued.deliveries, "queue_seconds": queue_seconds,
                "cpu_seconds": time.process_time() - cpu0, "setup_rss_kib": setup_rss,
                "peak_is_publish_only": peak_reset, **drained,
            }
        auth = _TimedAuth(DeliveryWorker.for_site(store, config, key, owner="x").auth)
        worker = DeliveryWorker(store, auth=auth, owner="bench", user_agent="fedipress-bench",
                                allow_private=True, concurrency=concurrency)
        started = time.perf_counter()
        summary = asyncio.run(worker.run_until(datetime.now(UTC) + DRAIN_LIMIT))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        store.close()
    times = sorted(auth.times)
    return {
        "followers": followers, "inboxes": inboxes, "activities": len(plan.activities),
        "deliveries": queued.deliveries, "queue_seconds": queue_seconds, "seconds": seconds,
        "sent": summary.sent, "failed": summary.failed, "retrying": summary.retrying,
        **_sign_stats(times),
        "cpu_seconds": cpu, "setup_rss_kib": setup_rss,
        "peak_rss_kib": _proc_status("VmHWM"), "peak_is_publish_only": peak_reset,
    }


def _sign_stats(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "sign_median_ms": statistics.median(times) * 1000 if times else 0.0,
        "sign_mean_ms": statistics.fmean(times) * 1000 if times else 0.0,
        "sign_p99_ms": times[int(len(times) * 0.99)] * 1000 if times else 0.0,
    }


def _drain_in_processes(location: str, actor: str, workers: int,
                        concurrency: int) -> dict[str, Any]:
    """N worker processes on the store at `location` until nothing is pending."""
    me = [sys.executable, str(Path(__file__).resolve())]
    started = time.perf_counter()
    procs = [subprocess.Popen([*me, "--role", "work", "--database-url", location, "--actor",
                               actor, "--concurrency", str(concurrency), "--port", "0"],
                              stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    rows = []
    for proc in procs:
        out, _ = proc.communicate(timeout=DRAIN_LIMIT.total_seconds() + 60)
        if proc.returncode != 0:
            raise SystemExit("a worker process failed")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds, "workers": workers,
        "sent": sum(r["sent"] for r in rows), "failed": sum(r["failed"] for r in rows),
        "retrying": 0, "sent_per_worker": [r["sent"] for r in rows],
        **_sign_stats([t for r in rows for t in r["sign_times"]]),
        "worker_cpu_seconds": [r["cpu_seconds"] for r in rows],
        "peak_rss_kib": max(r["peak_rss_kib"] for r in rows),
        "worker_peak_rss_kib": [r["peak_rss_kib"] for r in rows],
    }


def _work(location: str, actor: str, concurrency: int) -> dict[str, Any]:
    """One worker process: deliver from the shared queue until nothing is pending."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from fedipress.federation.delivery import DeliveryWorker, owner_id
    from fedipress.federation.signing import SigningAuth
    from fedipress.store import open_store

    store = open_store(location if location.startswith("postgresql://") else Path(location))
    key = load_pem_private_key((KEYS / "blog-private.pem").read_bytes(), password=None)
    auth = _TimedAuth(SigningAuth.for_actor(actor, key))  # type: ignore[arg-type]
    worker = DeliveryWorker(store, auth=auth, owner=owner_id("bench"),
                            user_agent="fedipress-bench", allow_private=True,
                            concurrency=concurrency, idle_poll=0.2)
    cpu0 = time.process_time()

    async def run() -> Any:
        stop = asyncio.Event()

        async def watch() -> None:
            while store.delivery_counts()["pending"] > 0:
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(watch())
        summary = await worker.run_forever(stop)
        await watcher
        return summary

    summary = asyncio.run(asyncio.wait_for(run(), DRAIN_LIMIT.total_seconds()))
    store.close()
    return {"sent": summary.sent, "failed": summary.failed, "sign_times": auth.times,
            "cpu_seconds": time.process_time() - cpu0, "peak_rss_kib": _proc_status("VmHWM")}


# --- parent ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(port: int) -> dict[str, Any]:
    with httpx.Client(trust_env=False) as client:
        return dict(client.get(f"http://{_address(0)}:{port}/__stats", timeout=10).json())


def _row_line(row: dict[str, Any]) -> str:
    rate = row["sent"] / row["seconds"] if row["seconds"] else 0.0
    return (f"followers {row['followers']:>7,}  deliveries {row['deliveries']:>6,}  "
            f"{row['seconds']:6.2f} s  {rate:7.1f} req/s  queue {row['queue_seconds']:.2f} s  "
            f"signing median {row['sign_median_ms']:.2f} ms mean {row['sign_mean_ms']:.2f} ms"
            f" p99 {row['sign_p99_ms']:.2f} ms  driver CPU {row['cpu_seconds']:.2f} s  "
            f"RSS {row['setup_rss_kib'] / 1024:.0f} MiB before publish, peak"
            f" {row['peak_rss_kib'] / 1024:.0f} MiB  sent {row['sent']:,}"
            f" failed {row['failed']} received {row['received']:,}"
            f" verified {row['verified']:,}"
            + (f"  per worker sent {row['sent_per_worker']} peak RSS"
               f" {[round(k / 1024) for k in row['worker_peak_rss_kib']]} MiB"
               if "sent_per_worker" in row else ""))


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--inboxes", type=int, default=2_000,
                        help="shared inboxes, one loopback server address each (capped at"
                             " the follower count)")
    parser.add_argument("--delay", type=float, default=0.05, help="sink answer delay (s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="DeliveryWorker concurrency (its default: 32)")
    parser.add_argument("--scale", help="comma-separated follower counts, --runs runs each")
    parser.add_argument("--json", type=Path, help="also write every row here")
    parser.add_argument("--postgres", action="store_true",
                        help="keep the store in PostgreSQL (a throwaway cluster, a fresh"
                             " database per run) instead of a SQLite file")
    parser.add_argument("--workers", type=int, default=1,
                        help="delivery worker processes draining the queue together")
    parser.add_argument("--role", choices=["serve", "drive", "work"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--actor", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.scale.split(",")] if args.scale else [args.followers]
    if not 1 <= args.inboxes <= 60_000 or min(sizes) < 1 or not 1 <= args.runs <= 50:
        parser.error("need 1 <= --inboxes <= 60000, follower counts >= 1, 1 <= --runs <= 50")
    if not 0 <= args.delay <= 10:
        parser.error("need 0 <= --delay <= 10")

    if args.role == "serve":
        _serve(args.inboxes, args.port, args.delay)
        return 0
    if args.role == "drive":
        print(json.dumps(_drive(args.followers, min(args.inboxes, args.followers), args.port,
                                args.concurrency, args.database_url, args.workers)))
        return 0
    if args.role == "work":
        print(json.dumps(_work(args.database_url, args.actor, args.concurrency)))
        return 0
    if not 1 <= args.workers <= 16:
        parser.error("need 1 <= --workers <= 16")
    cluster = template = None
    if args.postgres:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from support.postgres import migrated_template, missing_reason, start_cluster

        reason = missing_reason()
        if reason:
            raise SystemExit(f"--postgres: {reason}")
        cluster = start_cluster()
        template = migrated_template(cluster)

    port = _free_port()
    me = [sys.executable, str(Path(__file__).resolve())]
    servers = min(args.inboxes, max(sizes))
    sink = subprocess.Popen([*me, "--role", "serve", "--inboxes", str(servers), "--port",
                             str(port), "--delay", str(args.delay)],
                            stdout=subprocess.PIPE, text=True)
    rows: list[dict[str, Any]] = []
    try:
        assert sink.stdout is not None
        if sink.stdout.readline().strip() != "ready":
            raise SystemExit("the inbox sink did not start")
        engine = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{servers:,} loopback inbox servers answering after {args.delay * 1000:.0f} ms;"
              f" store {engine}; {args.workers} worker process{'es' * (args.workers > 1)};"
              f" concurrency {args.concurrency} each; {os.cpu_count()} CPUs; {_load()}",
              flush=True)
        for n in sizes:
            for _ in range(args.runs):
                before = _stats(port)
                extra = ["--workers", str(args.workers)]
                if cluster is not None:
                    extra += ["--database-url", cluster.create_database("bench", template)]
                proc = subprocess.run(
                    [*me, "--role", "drive", "--inboxes", str(args.inboxes), "--port",
                     str(port), "--followers", str(n), "--concurrency", str(args.concurrency),
                     *extra],
                    capture_output=True, text=True, timeout=DRAIN_LIMIT.total_seconds() + 300)
                if proc.returncode != 0:
                    raise SystemExit(f"driver failed:\n{proc.stderr[-4000:]}")
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                after = _stats(port)
                row["received"] = after["posts"] - before["posts"]
                row["verified"] = after["verified"] - before["verified"]
                row["sink_cpu_seconds"] = after["cpu_seconds"] - before.get("cpu_seconds", 0.0)
                row["load"] = os.getloadavg()[0]
                rows.append(row)
                print(_row_line(row), flush=True)
                if not (row["received"] == row["verified"] == row["sent"]
                        == row["deliveries"] == min(n, args.inboxes)):
                    raise SystemExit("not every inbox got exactly one verified POST")
        for n in sizes:
            mine = [r for r in rows if r["followers"] == n]

            def med(key: str, mine: list[dict[str, Any]] = mine) -> float:
                return float(statistics.median(r[key] for r in mine))

            print(f"median of {len(mine)}: followers {n:,}  {med('seconds'):.2f} s  "
                  f"{statistics.median(r['sent'] / r['seconds'] for r in mine):.1f} req/s  "
                  f"signing {med('sign_median_ms'):.2f} ms/request (mean"
                  f" {med('sign_mean_ms'):.2f}, p99 {med('sign_p99_ms'):.2f})  driver CPU"
                  f" {med('cpu_seconds'):.2f} s  sink CPU {med('sink_cpu_seconds'):.2f} s  "
                  f"peak RSS {med('peak_rss_kib') / 1024:.0f} MiB", flush=True)
        print(f"after: {_load()}")
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        if cluster is not None:
            cluster.stop()
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
