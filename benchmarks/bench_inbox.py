"""Inbox benchmark: signature-verified POSTs per second and their latency, keys already cached.

    python benchmarks/bench_inbox.py --rates 100,200,300,400,600 --seconds 10 --runs 3
    python benchmarks/bench_inbox.py --rates '' --concurrency 1,4,16,64 --seconds 10
    python benchmarks/bench_inbox.py --rates 100,200,300,400 --postgres   # the store on PostgreSQL

Two processes on loopback, besides this parent:
  service    the real `fedipress inbox` command (python -m fedipress.cli inbox: uvicorn, the
             delivery loop beside it, INFO logging to a file, default InboxSettings) on a
             three-post site built by the real Builder. Its store already holds the public
             keys of `--senders` remote accounts, so every POST is verified (RSA-2048,
             draft-cavage rsa-sha256 + Digest) and nothing is fetched.
  generator  benchmarks/loadgen.py: Likes of a real post, each with a new id (so none is a
             replay), signed with fedipress's own signer before each step (the generator must
             not eat the CPU of the service it measures on a 2-core machine), sent over
             kept-alive connections. Open-loop steps at fixed `--rates` (latency measured from
             each request's due time), then closed-loop steps at `--concurrency`.

Rate limits are NOT raised: the default limits (300/min, burst 100, per client address and
per signing server) stay on, and the load comes from `--senders` accounts on distinct servers
(127.3.x.y) behind distinct client addresses (X-Forwarded-For, which the service reads from a
loopback peer, as behind a reverse proxy), as real inbox traffic does. With 500 senders each
sends at most ~1.2/s at 600 POSTs/s, under the 5/s refill.

With `--postgres` the service's store is a fresh database of a throwaway PostgreSQL cluster
(tests/support/postgres.py): the service then also keeps its rate limits in the store, as
several inbox processes must.

Printed per step: offered load, accepted POSTs/s, p50/p95/p99/max latency (ms), the service's
CPU per POST (from /proc) and any non-2xx statuses; with --runs N, the median of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KEYS = REPO / "tests" / "fixtures" / "keys"
sys.path.insert(0, str(REPO / "src"))  # measure this checkout, whatever is installed
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(root: Path, port: int, senders: int, database_url: str | None = None) -> str:
    """Site, key, build and key cache; returns the id of the post the Likes target."""
    import corpus

    from fedipress.config import load_config
    from fedipress.federation.publish import load_manifest
    from fedipress.generator.build import build_site
    from fedipress.store import CachedKey, open_store

    corpus.write_site(root, corpus.generate_posts(3), seed=1)
    text = (root / "site.yaml").read_text().replace(corpus.BASE_URL, f"http://127.0.0.1:{port}/")
    (root / "site.yaml").write_text(text)
    config = load_config(root / "site.yaml")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    key_file = config.state_dir / "private-key.pem"
    shutil.copyfile(KEYS / "blog-private.pem", key_file)
    key_file.chmod(0o600)
    build_site(config, log=lambda _line: None)
    post_id = str(sorted(load_manifest(config)["objects"])[0])
    pem = (KEYS / "remote-public.pem").read_text()
    now = datetime.now(UTC)
    with open_store(database_url or config.state_dir / "state.db") as store:
        for i in range(senders):
            s = loadgen.Sender.numbered(i)
            store.put_key(CachedKey(key_id=s.key_id, owner=s.actor, public_key_pem=pem,
                                    fetched_at=now))
    return post_id


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the inbox service exited:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the inbox service did not start listening within 60 s")


# --- generator process -----------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key((KEYS / "remote-private.pem").read_bytes(), None)
    senders = [loadgen.Sender.numbered(i) for i in range(args.senders)]
    host = f"127.0.0.1:{args.port}"
    counter = 0

    def prepared(count: int) -> tuple[list[bytes], float]:
        nonlocal counter
        counter += 1
        started = time.perf_counter()
        requests = loadgen.sign_likes(senders, key, host=host, path="/inbox",
                                      object_id=args.object, count=count,
                                      now=datetime.now(UTC), tag=f"{os.getpid()}-{counter}")
        return requests, (time.perf_counter() - started) / max(count, 1)

    def report(result: loadgen.StepResult, cpu: float, sign_s: float) -> None:
        row = result.summary()
        row["service_cpu_ms"] = cpu * 1000 / max(row["requests"], 1)
        row["sign_ms"] = sign_s * 1000
        row["load"] = os.getloadavg()[0]
        print(json.dumps(row), flush=True)

    # Warm-up, not reported: connections open, caches and code paths warm, the database
    # file and its WAL grown past their first allocations.
    warm, _ = prepared(_warmup_count(args))
    asyncio.run(loadgen.open_loop("127.0.0.1", args.port, warm, rate=WARMUP_RATE))
    for _ in range(args.runs):
        for rate in args.rate_list:
            requests, sign_s = prepared(int(rate * args.seconds))
            cpu0 = loadgen.cpu_seconds(args.server_pid)
            result = asyncio.run(loadgen.open_loop("127.0.0.1", args.port, requests, rate))
            report(result, loadgen.cpu_seconds(args.server_pid) - cpu0, sign_s)
        for concurrency in args.concurrency_list:
            requests, sign_s = prepared(int(args.budget_rate * args.seconds))
            cpu0 = loadgen.cpu_seconds(args.server_pid)
            result = asyncio.run(loadgen.closed_loop("127.0.0.1", args.port, requests,
                                                     concurrency, args.seconds))
            report(result, loadgen.cpu_seconds(args.server_pid) - cpu0, sign_s)


# --- parent ----------------------------------------------------------------------------------


WARMUP_RATE = 100.0


def _warmup_count(args: argparse.Namespace) -> int:
    return max(1, int(WARMUP_RATE * args.warmup))


def _numbers(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _line(row: dict[str, Any], prefix: str = "") -> str:
    what = (f"rate {row['level']:>5.0f}/s" if row["mode"] == "open"
            else f"concurrency {row['level']:>3.0f}")
    bad = {k: v for k, v in row["statuses"].items() if not k.startswith("2")}
    return (f"{prefix}{what}  {row['per_second']:7.1f} accepted POSTs/s  p50 {row['p50_ms']:6.1f}"
            f"  p95 {row['p95_ms']:6.1f}  p99 {row['p99_ms']:6.1f}  max {row['max_ms']:6.1f} ms"
            f"  service CPU {row['service_cpu_ms']:.2f} ms/POST  connections"
            f" {row['connections']}  non-2xx {bad or 0}  errors {row['errors']}"
            + (f" {row['error_kinds']}" if row.get("error_kinds") else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,200,300,400,600",
                        help="open-loop steps, POSTs per second (comma-separated; '' for none)")
    parser.add_argument("--concurrency", default="",
                        help="closed-loop steps, connections (comma-separated), e.g. 1,4,16,64")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    parser.add_argument("--runs", type=int, default=3, help="repeat the steps; medians printed")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds at 100 POSTs/s before the measured steps")
    parser.add_argument("--senders", type=int, default=500, help="remote accounts (servers)")
    parser.add_argument("--budget-rate", type=float, default=800.0,
                        help="closed loop: requests signed per step = this x --seconds")
    parser.add_argument("--json", type=Path, help="also write every step here")
    parser.add_argument("--postgres", action="store_true",
                        help="the service's store in PostgreSQL (a throwaway cluster)")
    parser.add_argument("--role", choices=["generate"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--object", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rate_list = _numbers(args.rates)
    args.concurrency_list = [int(c) for c in _numbers(args.concurrency)]
    if (not 0 <= args.warmup <= 60 or not 0 < args.seconds <= 60 or not 1 <= args.runs <= 20
            or args.senders < 1):
        parser.error("need 0 <= --warmup <= 60, 0 < --seconds <= 60, 1 <= --runs <= 20,"
                     " --senders >= 1")
    if any(not 0 < r <= 5000 for r in args.rate_list) or any(
            not 1 <= c <= 512 for c in args.concurrency_list):
        parser.error("rates must be in (0, 5000], concurrency in [1, 512]")
    if not args.rate_list and not args.concurrency_list:
        parser.error("nothing to measure: give --rates or --concurrency")
    if args.role == "generate":
        _generate(args)
        return 0

    rows: list[dict[str, Any]] = []
    cluster = database_url = None
    if args.postgres:
        sys.path.insert(0, str(REPO / "tests"))
        from support.postgres import migrated_template, missing_reason, start_cluster

        if reason := missing_reason():
            raise SystemExit(f"--postgres: {reason}")
        cluster = start_cluster()
        database_url = cluster.create_database("bench", migrated_template(cluster))
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        root = Path(tmp) / "site"
        post_id = _prepare(root, port, args.senders, database_url)
        log = Path(tmp) / "inbox.log"
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        env.pop("FEDIPRESS_PRIVATE_KEY", None)
        env.pop("FEDIPRESS_DATABASE_URL", None)
        if database_url:
            env["FEDIPRESS_DATABASE_URL"] = database_url
        with log.open("wb") as log_file:
            server = subprocess.Popen(
                [sys.executable, "-m", "fedipress.cli", "inbox", "--config",
                 str(root / "site.yaml"), "--port", str(port)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            _wait_listening(port, server, log)
            print(f"fedipress inbox on 127.0.0.1:{port} (pid {server.pid}); store"
                  f" {'PostgreSQL' if database_url else 'SQLite'}; {args.senders}"
                  f" senders; {os.cpu_count()} CPUs; load average"
                  f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
            generator = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--role", "generate",
                 "--port", str(port), "--server-pid", str(server.pid), "--object", post_id,
                 "--rates", args.rates, "--concurrency", args.concurrency,
                 "--seconds", str(args.seconds), "--runs", str(args.runs),
                 "--senders", str(args.senders), "--budget-rate", str(args.budget_rate),
                 "--warmup", str(args.warmup)],
                stdout=subprocess.PIPE, text=True, env=env)
            assert generator.stdout is not None
            for text in generator.stdout:
                row = json.loads(text)
                rows.append(row)
                print(_line(row), flush=True)
            if generator.wait(timeout=60) != 0:
                raise SystemExit("the load generator failed")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if database_url:
            import psycopg

            with psycopg.connect(database_url) as pg:
                stored = pg.execute("SELECT COUNT(*) FROM inbox_log").fetchone()[0]  # type: ignore[index]
            assert cluster is not None
            cluster.stop()
        else:
            conn = sqlite3.connect(root / ".fedipress" / "state.db")
            try:
                stored = conn.execute("SELECT COUNT(*) FROM inbox_log").fetchone()[0]
            finally:
                conn.close()
    accepted = sum(r["accepted"] for r in rows) + _warmup_count(args)
    steps = sorted({(r["mode"], r["level"]) for r in rows})
    for mode, level in steps:
        mine = [r for r in rows if (r["mode"], r["level"]) == (mode, level)]
        median = {k: statistics.median(r[k] for r in mine)
                  for k in ("per_second", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                            "service_cpu_ms", "errors")}
        merged = {**mine[0], **median, "connections": max(r["connections"] for r in mine),
                  "statuses": {k: sum(r["statuses"].get(k, 0) for r in mine)
                               for k in {k for r in mine for k in r["statuses"]}}}
        print(_line(merged, prefix=f"median of {len(mine)}: "), flush=True)
    print(f"stored {stored:,} inbox activities for {accepted:,} accepted POSTs;"
          f" load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "stored": stored,
                                         "warmup": _warmup_count(args)}, indent=2))
    if stored != accepted:
        raise SystemExit("the service accepted POSTs it did not store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
