"""Inbox benchmark: signature-verified POSTs per second and latency, keys already cached.

    python benchmarks/bench_inbox.py --seconds 10 --concurrency 16 --runs 3

Two processes on loopback:
  server     the real inbox service (create_app + uvicorn, one process, SQLite store in a
             temporary folder) with the sender's public key already in the store's key cache,
             so every POST is verified (RSA-2048, draft-cavage + Digest) but nothing is fetched;
             the per-IP/per-host rate limits are raised (the load comes from one address and
             this measures the service, not the limiter)
  generator  signs each request for real (a fresh Like with a new id each time, so none is a
             replay) and keeps `--concurrency` requests in flight for `--seconds`

Printed: accepted POSTs/s, p50/p99 latency (ms), and any non-2xx statuses.
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
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEYS = HERE.parent / "tests" / "fixtures" / "keys"
REMOTE_ACTOR = "http://127.0.0.1:9/users/loadgen"  # never fetched: its key is cached
AS2 = "application/activity+json"


def _site(root: Path, port: int) -> None:
    sys.path.insert(0, str(HERE))
    import corpus

    base = f"http://127.0.0.1:{port}/"
    corpus.write_site(root, corpus.generate_posts(3), seed=1)
    text = (root / "site.yaml").read_text().replace(corpus.BASE_URL, base)
    (root / "site.yaml").write_text(text)


def _serve(port: int) -> None:
    import uvicorn
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from fedipress.config import load_config
    from fedipress.inbox import InboxSettings, create_app
    from fedipress.remote import FetchPolicy, RemoteFetcher
    from fedipress.signing import SigningAuth, utc_now
    from fedipress.store import CachedKey, open_store

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        _site(root, port)
        config = load_config(root / "site.yaml")
        store = open_store(Path(tmp) / "state.db")
        store.put_key(CachedKey(key_id=f"{REMOTE_ACTOR}#main-key", owner=REMOTE_ACTOR,
                                public_key_pem=(KEYS / "remote-public.pem").read_text(),
                                fetched_at=datetime.now(UTC)))
        blog_key = load_pem_private_key((KEYS / "blog-private.pem").read_bytes(), None)
        settings = InboxSettings(ip_per_minute=1e9, ip_burst=1_000_000,
                                 host_per_minute=1e9, host_burst=1_000_000)

        async def main() -> None:
            auth = SigningAuth.for_actor(config.url("actor.json"), blog_key)  # type: ignore[arg-type]
            async with RemoteFetcher(policy=FetchPolicy(allow_private=True),
                                     user_agent="fedipress-bench", auth=auth) as fetcher:
                app = create_app(config, store, fetcher, clock=utc_now, settings=settings)
                server = uvicorn.Server(uvicorn.Config(
                    app, host="127.0.0.1", port=port, log_level="error", access_log=False,
                    lifespan="off"))
                print("ready", flush=True)
                await server.serve()

        asyncio.run(main())


def _generate(port: int, seconds: float, concurrency: int) -> dict[str, Any]:
    import httpx
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from fedipress.signing import SigningAuth

    key = load_pem_private_key((KEYS / "remote-private.pem").read_bytes(), None)
    auth = SigningAuth.for_actor(REMOTE_ACTOR, key)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}/"
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    counter = iter(range(10**9))

    async def user(client: httpx.AsyncClient, stop_at: float) -> None:
        while time.perf_counter() < stop_at:
            n = next(counter)
            body = json.dumps({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{REMOTE_ACTOR}/likes/{os.getpid()}-{n}", "type": "Like",
                "actor": REMOTE_ACTOR, "object": f"{base}posts/post-00000/",
            }).encode()
            started = time.perf_counter()
            response = await client.post(f"{base}inbox", content=body,
                                         headers={"Content-Type": AS2})
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    async def main() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(auth=auth, limits=limits, trust_env=False,
                                     timeout=30) as client:
            # Warm-up: connections open, the server's caches are hot.
            await asyncio.gather(*(user(client, time.perf_counter() + 1.0)
                                   for _ in range(concurrency)))
            latencies.clear()
            statuses.clear()
            started = time.perf_counter()
            await asyncio.gather(*(user(client, started + seconds) for _ in range(concurrency)))
            return time.perf_counter() - started

    elapsed = asyncio.run(main())
    lat = sorted(latencies)
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "seconds": elapsed, "requests": len(lat), "accepted": ok,
        "per_second": ok / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--role", choices=["serve", "generate"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600 or args.concurrency < 1:
        parser.error("need 0 < --seconds <= 600 and --concurrency >= 1")
    if args.role == "serve":
        _serve(args.port)
        return 0
    if args.role == "generate":
        print(json.dumps(_generate(args.port, args.seconds, args.concurrency)))
        return 0

    port = _free_port()
    me = [sys.executable, str(Path(__file__).resolve()), "--port", str(port)]
    server = subprocess.Popen([*me, "--role", "serve"], stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("the inbox service did not start")
        time.sleep(1.0)
        print(f"inbox service on 127.0.0.1:{port}; {os.cpu_count()} CPUs;"
              f" load average {os.getloadavg()[0]:.2f}")
        for run in range(1, args.runs + 1):
            proc = subprocess.run(
                [*me, "--role", "generate", "--seconds", str(args.seconds),
                 "--concurrency", str(args.concurrency)],
                capture_output=True, text=True, timeout=args.seconds + 120)
            if proc.returncode != 0:
                raise SystemExit(f"load generator failed:\n{proc.stderr[-4000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"run {run}: {row['per_second']:7.1f} accepted POSTs/s  p50 {row['p50_ms']:6.1f}"
                  f" ms  p99 {row['p99_ms']:6.1f} ms  statuses {row['statuses']}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"median {statistics.median(r['per_second'] for r in rows):.1f} POSTs/s,"
          f" p99 {statistics.median(r['p99_ms'] for r in rows):.1f} ms"
          f" (concurrency {args.concurrency}, {args.seconds:g} s per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
