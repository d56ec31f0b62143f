"""A lean HTTP load generator that sends really signed ActivityPub POSTs (loopback only).

Used by bench_inbox.py; importable on its own:

    senders = [Sender.numbered(i) for i in range(500)]
    requests = sign_likes(senders, key, host="127.0.0.1:8080", path="/inbox",
                          object_id=post_id, count=3000, now=datetime.now(UTC), tag="r300")
    step = asyncio.run(open_loop("127.0.0.1", 8080, requests, rate=300))
    step = asyncio.run(closed_loop("127.0.0.1", 8080, requests, concurrency=16, seconds=10))

Why not httpx: on a 2-core machine the generator competes with the service it measures, and an
httpx request costs ~1 ms of client CPU, as much as the service's own work. Here each request
is prepared (body, Digest, draft-cavage rsa-sha256 Signature from fedipress's own signer) before
the timed step, and sending is a write on a kept-alive asyncio stream plus a minimal response
parse, so the generator stays a small fraction of one core.

Open loop (`open_loop`): request i is due at start + i/rate whatever happened before, and its
latency is measured from that due time, so a stalled server shows up as latency instead of
silently lowering the offered load (no coordinated omission). Closed loop (`closed_loop`):
`concurrency` connections each send the next request as soon as the last one is answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Sender", "StepResult", "closed_loop", "cpu_seconds", "open_loop", "sign_likes"]

AS2 = "application/activity+json"
# uvicorn closes a kept-alive connection after 5 s idle; reusing one it is closing loses the
# request, so idle connections older than this are dropped instead of reused.
MAX_IDLE = 3.0


@dataclass(frozen=True)
class Sender:
    """A remote account: its actor id, key id and the client address its requests carry."""

    actor: str
    key_id: str
    forwarded_for: str

    @classmethod
    def numbered(cls, i: int) -> Sender:
        # One server per sender (127.3.x.y, never contacted: the service has its key cached)
        # and one client address, so per-server and per-address rate limits see real spread.
        host = f"127.3.{i // 250}.{i % 250 + 1}"
        actor = f"http://{host}/users/sender{i}"
        return cls(actor, f"{actor}#main-key", f"10.3.{i // 250}.{i % 250 + 1}")


def sign_likes(
    senders: Sequence[Sender],
    private_key: Any,
    *,
    host: str,
    path: str,
    object_id: str,
    count: int,
    now: datetime,
    tag: str,
) -> list[bytes]:
    """`count` raw HTTP/1.1 requests, each a Like with a unique id, senders taken in turn."""
    from fedipress.activitypub.httpsig import sign_cavage

    out: list[bytes] = []
    for n in range(count):
        sender = senders[n % len(senders)]
        body = json.dumps({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{sender.actor}/likes/{tag}-{n}", "type": "Like",
            "actor": sender.actor, "object": object_id,
        }).encode()
        headers = {"Host": host, "Content-Type": AS2, "Content-Length": str(len(body)),
                   "X-Forwarded-For": sender.forwarded_for, "User-Agent": "fedipress-loadgen"}
        headers.update(sign_cavage("POST", f"http://{host}{path}", headers, body,
                                   key_id=sender.key_id, private_key=private_key, now=now))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body)
    return out


@dataclass
class StepResult:
    """One step: what was sent, what came back, latencies in seconds (sorted)."""

    mode: str
    level: float  # offered rate (open loop) or concurrency (closed loop)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    connections: int = 0

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * p))]

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "level": self.level, "seconds": self.seconds,
            "requests": len(self.latencies) + self.errors, "accepted": self.accepted,
            "per_second": self.per_second, "errors": self.errors,
            "p50_ms": self.percentile(0.50) * 1000, "p95_ms": self.percentile(0.95) * 1000,
            "p99_ms": self.percentile(0.99) * 1000, "max_ms": self.percentile(1.0) * 1000,
            "connections": self.connections, "error_kinds": dict(self.error_kinds),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class _Connection:
    """One kept-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True
        self.idle_since = time.monotonic()

    def fresh(self) -> bool:
        return time.monotonic() - self.idle_since < MAX_IDLE and not self.reader.at_eof()

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                self.reusable = False
        if chunked:
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        elif length:
            await self.reader.readexactly(length)
        self.idle_since = time.monotonic()
        return status

    def close(self) -> None:
        self.writer.close()


async def _send_one(host: str, port: int, raw: bytes, idle: list[_Connection],
                    result: StepResult) -> tuple[int | None, _Connection | None]:
    conn = None
    while idle and conn is None:
        conn = idle.pop()
        if not conn.fresh():
            conn.close()
            conn = None
    try:
        if conn is None:
            conn = await _Connection.open(host, port)
            result.connections += 1
        status = await conn.send(raw)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        result.errors += 1
        result.error_kinds[type(exc).__name__] += 1
        if conn is not None:
            conn.close()
        return None, None
    return status, conn


async def open_loop(host: str, port: int, requests: Sequence[bytes], rate: float,
                    max_connections: int = 512) -> StepResult:
    """Send `requests` at `rate` per second on schedule; latency from each due time."""
    loop = asyncio.get_running_loop()
    result = StepResult("open", rate)
    idle: list[_Connection] = []
    gate = asyncio.Semaphore(max_connections)
    start = loop.time() + 0.05
    last_done = start

    async def one(due: float, raw: bytes) -> None:
        nonlocal last_done
        async with gate:
            status, conn = await _send_one(host, port, raw, idle, result)
        done = loop.time()
        last_done = max(last_done, done)
        if status is None:
            return
        result.latencies.append(done - due)
        result.statuses[status] += 1
        if conn is not None:
            if conn.reusable:
                idle.append(conn)
            else:
                conn.close()

    tasks: set[asyncio.Task[None]] = set()
    for i, raw in enumerate(requests):
        due = start + i / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(one(due, raw))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)
    result.seconds = max(last_done - start, 1e-9)
    for conn in idle:
        conn.close()
    result.latencies.sort()
    return result


async def closed_loop(host: str, port: int, requests: Iterable[bytes], concurrency: int,
                      seconds: float) -> StepResult:
    """`concurrency` connections, each sending back to back for `seconds` (or until the
    prepared requests run out, which ends the step early: its rate is over its own time)."""
    loop = asyncio.get_running_loop()
    result = StepResult("closed", concurrency)
    source: Iterator[bytes] = iter(requests)
    start = loop.time()
    stop = start + seconds
    last_done = start

    async def user() -> None:
        nonlocal last_done
        idle: list[_Connection] = []
        while loop.time() < stop:
            raw = next(source, None)
            if raw is None:
                break
            sent = loop.time()
            status, conn = await _send_one(host, port, raw, idle, result)
            last_done = max(last_done, loop.time())
            if status is None:
                continue
            result.latencies.append(loop.time() - sent)
            result.statuses[status] += 1
            if conn is not None and conn.reusable:
                idle.append(conn)
            elif conn is not None:
                conn.close()
        for conn in idle:
            conn.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    result.seconds = max(last_done - start, 1e-9)
    result.latencies.sort()
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
