"""Drain the delivery queue: signed POSTs with bounded concurrency, outcomes recorded durably.

    worker = DeliveryWorker(store, auth=SigningAuth.for_actor(actor, key), owner=owner_id("x"),
                            user_agent=user_agent(blog_url))
    summary = await worker.run_until(deadline)      # publish: retry within the run, then stop
    await worker.run_forever(stop_event)            # inbox service; wake() on new rows

Rows are leased from the store (`claim_due`), so several workers or processes never send the
same row at once, and a killed worker's rows come back when their lease expires (or at once,
via `recover_dead_leases`, when its process is known dead). A row leaves the queue only by a
committed outcome, so a crash between a 2xx and its commit means one duplicate POST, never a
loss. Every try sends the stored body bytes; only Date, Digest and Signature are regenerated.

Outcomes follow the pure `activitypub.retry` policy (Mastodon's): 2xx done; 401/408/429/5xx and
network errors retried with c⁴ + 15 s + jitter (Retry-After honoured); other 4xx failed; 410 Gone
removes the followers behind the inbox: the one follower for a personal inbox, every follower
on the server for a shared inbox (the server says the inbox is gone for all of them).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from ..activitypub.retry import next_delay
from ..config import SiteConfig
from ..errors import UnsafeURLError
from ..store import ClaimedDelivery, Store
from ..wording import plural
from .hosthealth import HostBreaker
from .netguard import GuardedTransport
from .remote import user_agent as make_user_agent
from .signing import SigningAuth, utc_now

__all__ = [
    "AS2_CONTENT_TYPE",
    "DeliveryResult",
    "DeliverySummary",
    "DeliveryWorker",
    "owner_id",
    "recover_dead_leases",
    "summary_line",
]

AS2_CONTENT_TYPE = "application/activity+json"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=30.0)
# Longer than one request can take (connect + write + read), so a live worker never loses a
# lease it is still using.
DEFAULT_LEASE = timedelta(seconds=60)
# How often an idle worker looks at the queue even without wake(); rows other processes add
# (the CLI while the service runs) are picked up within this time.
IDLE_POLL = 1.0

ClientFactory = Callable[[], httpx.AsyncClient]


def owner_id(role: str) -> str:
    """A lease owner name that says which process holds a row: `<role>@<host>:<pid>`."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_leases(store: Store, *, limit: int = 100_000) -> int:
    """Hand back rows leased by a process on this machine that no longer exists (SIGKILL).

    Without this a killed publish's rows wait for their lease to expire (DEFAULT_LEASE);
    with it, the next run resends them at once. Rows of other machines are left to expiry."""
    host = socket.gethostname()
    released = 0
    for row in store.list_deliveries(["in_flight"], limit=limit):
        owner = row.lease_owner or ""
        where = owner.rpartition("@")[2]
        row_host, _, pid = where.rpartition(":")
        if row_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        if not _pid_alive(int(pid)) and store.release(row.id, owner):
            released += 1
    return released


@dataclass(frozen=True)
class DeliveryResult:
    """One attempt: what happened to one (activity, inbox) row."""

    delivery_id: int
    activity_id: str
    inbox: str
    outcome: str  # "done", "retry", "permanent", "expired", "lost-lease"
    status: int | None
    reason: str
    removed_followers: int = 0


@dataclass(frozen=True)
class DeliverySummary:
    """A run's outcome. `retrying` counts rows still queued (pending or in flight) at its end."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    gone: int = 0  # failures that were 410 Gone
    followers_removed: int = 0
    attempts: int = 0

    def line(self) -> str:
        return summary_line(self)


def summary_line(s: DeliverySummary) -> str:
    """`sent 1,204, retrying 3, failed 1 (410 gone: 1 follower removed)`."""
    text = f"sent {s.sent:,}, retrying {s.retrying:,}, failed {s.failed:,}"
    if s.gone:
        text += f" (410 gone: {plural(s.followers_removed, 'follower')} removed)"
    return text


class DeliveryWorker:
    """Delivers queued rows with at most `concurrency` requests at once, `per_host` per host.

    `auth` signs each request (SigningAuth); `client_factory` builds the httpx client (default:
    the guarded transport, timeouts, User-Agent); `clock` and `rand` are injectable for tests.
    `log` gets one line per request (never a key or a signature); `on_result` each outcome.
    """

    def __init__(
        self,
        store: Store,
        *,
        auth: httpx.Auth,
        owner: str,
        user_agent: str,
        client_factory: ClientFactory | None = None,
        allow_private: bool = False,
        concurrency: int = 32,
        per_host: int = 4,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = utc_now,
        rand: Callable[[], float] = random.random,
        log: Callable[[str], None] | None = None,
        on_result: Callable[[DeliveryResult], Any] | None = None,
        idle_poll: float = IDLE_POLL,
    ) -> None:
        if concurrency < 1 or per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")
        self.store = store
        self.auth = auth
        self.owner = owner
        self.user_agent = user_agent
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.per_host = per_host
        self.lease = lease
        self.clock = clock
        self.rand = rand
        self.log = log
        self.on_result = on_result
        self.idle_poll = idle_poll
        self._client_factory = client_factory or self._default_client
        self._wake = asyncio.Event()
        self.breaker = HostBreaker(store)

    @classmethod
    def for_site(
        cls, store: Store, config: SiteConfig, private_key: Any, *, owner: str, **options: Any
    ) -> DeliveryWorker:
        """A worker signing as `config`'s actor with `private_key`."""
        actor = config.url("actor.json")
        return cls(
            store,
            auth=SigningAuth.for_actor(actor, private_key),
            owner=owner,
            user_agent=make_user_agent(config.base_url),
            **options,
        )

    def _default_client(self) -> httpx.AsyncClient:
        # Few idle connections kept: httpcore rescans (and polls) every idle connection for
        # each request, quadratically in their number, and a publish mostly reaches each
        # shared inbox once. Two hosts' worth at the per-host cap still keeps the one case
        # reuse pays for (many rows to a big host) warm. 32 -> 8 idle: ~12% less CPU a request.
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=min(self.concurrency, 2 * self.per_host))
        return httpx.AsyncClient(
            transport=GuardedTransport(allow_private=self.allow_private, limits=limits),
            auth=self.auth,
            timeout=DEFAULT_TIMEOUT,
            follow_redirects=False,  # a redirected POST is a failed delivery, retried later
            trust_env=False,
            headers={"User-Agent": self.user_agent},
        )

    def wake(self) -> None:
        """New rows were queued: look at the queue now rather than at the next poll."""
        self._wake.set()

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, client: httpx.AsyncClient, row: ClaimedDelivery) -> DeliveryResult:
        status: int | None = None
        retry_after: str | None = None
        error: str | None = None
        try:
            response = await client.post(
                row.inbox, content=row.body, headers={"Content-Type": AS2_CONTENT_TYPE}
            )
            status = response.status_code
            retry_after = response.headers.get("retry-after")
        except UnsafeURLError as exc:
            return self._finish_failed(row, None, f"refused: {exc}")
        except httpx.TimeoutException as exc:
            error = f"timeout ({type(exc).__name__})"
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        now = self.clock()
        decision = next_delay(row.delivery.attempts, status=status, retry_after=retry_after,
                              now=now, rand=self.rand(), error=error)
        self._host_health(row.delivery.host, decision.outcome, now)
        if decision.outcome == "done":
            ok = self.store.mark_delivered(row.id, self.owner, now)
            return self._result(row, "done" if ok else "lost-lease", status, decision.reason)
        if decision.outcome == "retry":
            assert decision.next_at is not None
            ok = self.store.mark_retry(row.id, self.owner, decision.next_at, decision.reason,
                                       status)
            return self._result(row, "retry" if ok else "lost-lease", status,
                                f"{decision.reason}; next try {decision.next_at:%H:%M:%S}")
        if decision.outcome == "expired":
            ok = self.store.mark_failed(row.id, self.owner, decision.reason, status, expired=True)
            return self._result(row, "expired" if ok else "lost-lease", status, decision.reason)
        result = self._finish_failed(row, status, decision.reason)
        if decision.gone and result.outcome == "permanent":
            removed = self._remove_gone(row.inbox)
            result = DeliveryResult(result.delivery_id, result.activity_id, result.inbox,
                                    result.outcome, status, result.reason, removed)
        return result

    def _host_health(self, host: str, outcome: str, now: datetime) -> None:
        # The per-host circuit breaker (hosthealth.py): a success resumes a failing host, a
        # retryable failure counts (an unsalvageable 4xx says nothing about the host's health).
        if not host:
            return
        if outcome == "done":
            resumed = self.breaker.success(host, now)
            if resumed and self.log:
                self.log(f"{host} answers again: {resumed} paused deliveries are due now")
            if resumed:
                self.wake()
        elif outcome in ("retry", "expired"):
            paused = self.breaker.failure(host, now)
            if paused and self.log:
                self.log(f"{host} has failed every delivery for a day: {paused} deliveries"
                         " paused until it answers again or sends us anything")

    def _finish_failed(self, row: ClaimedDelivery, status: int | None, reason: str
                       ) -> DeliveryResult:
        ok = self.store.mark_failed(row.id, self.owner, reason, status)
        return self._result(row, "permanent" if ok else "lost-lease", status, reason)

    def _result(self, row: ClaimedDelivery, outcome: str, status: int | None, reason: str
                ) -> DeliveryResult:
        return DeliveryResult(row.id, row.activity_id, row.inbox, outcome, status, reason)

    def _remove_gone(self, inbox: str) -> int:
        # A personal inbox names one follower; a shared inbox stands for the whole server.
        gone = [
            f.actor_id
            for f in self.store.iter_followers(state=None)
            if f.inbox == inbox or f.shared_inbox == inbox
        ]
        return sum(1 for actor in gone if self.store.remove_follower(actor))

    # -- loops ------------------------------------------------------------------------------

    async def run_until(self, deadline: datetime) -> DeliverySummary:
        """Deliver what is due, retrying within the run, until nothing is due before
        `deadline` (rows due later stay queued) or the deadline passes."""
        return await self._run(lambda: self.clock() >= deadline, deadline)

    async def run_forever(self, stop: asyncio.Event) -> DeliverySummary:
        """Keep draining until `stop` is set; picks up new rows on wake() or within idle_poll."""
        return await self._run(stop.is_set, None, stop)

    async def _run(
        self,
        finished: Callable[[], bool],
        deadline: datetime | None,
        stop: asyncio.Event | None = None,
    ) -> DeliverySummary:
        counts = {"done": 0, "permanent": 0, "expired": 0, "gone": 0, "removed": 0,
                  "attempts": 0}
        running: dict[asyncio.Task[DeliveryResult], ClaimedDelivery] = {}
        async with self._client_factory() as client:
            try:
                while True:
                    free = self.concurrency - len(running)
                    if free > 0 and not finished():
                        for row in self.store.claim_due(self.owner, self.clock(), free,
                                                        self.lease, self.per_host):
                            task = asyncio.create_task(self._attempt(client, row))
                            running[task] = row
                    if not running:
                        wait = self._idle_wait(deadline)
                        if finished() or wait is None:
                            break
                    else:
                        wait = self.idle_poll if free > 0 else None
                    waiters: set[asyncio.Future[Any]] = set(running)
                    self._wake.clear()
                    wake_task = asyncio.ensure_future(self._wake.wait())
                    waiters.add(wake_task)
                    stop_task = None
                    # Once stopping, only the running attempts are worth waiting for: an
                    # already-set stop event would wake this loop at once, forever.
                    if stop is not None and not stop.is_set():
                        stop_task = asyncio.ensure_future(stop.wait())
                        waiters.add(stop_task)
                    done, _ = await asyncio.wait(waiters, timeout=wait,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    for extra in (wake_task, stop_task):
                        if extra is not None and not extra.done():
                            extra.cancel()
                    for task in [t for t in done if t in running]:
                        running.pop(task)
                        self._count(task.result(), counts)
            finally:
                # Cancelled or failing: hand unfinished rows back so nothing waits on a lease.
                for task, row in running.items():
                    task.cancel()
                    self.store.release(row.id, self.owner)
        state = self.store.delivery_counts()
        return DeliverySummary(
            sent=counts["done"],
            retrying=state["pending"] + state["in_flight"],
            failed=counts["permanent"] + counts["expired"],
            gone=counts["gone"],
            followers_removed=counts["removed"],
            attempts=counts["attempts"],
        )

    def _idle_wait(self, deadline: datetime | None) -> float | None:
        """Seconds to sleep before the next due row, or None when the run is over."""
        due = self.store.next_due_at()
        now = self.clock()
        if deadline is None:
            if due is None:
                return self.idle_poll
            return min(max((due - now).total_seconds(), 0.0), self.idle_poll)
        if due is None or due > deadline:
            return None
        return min(max((due - now).total_seconds(), 0.0), (deadline - now).total_seconds(),
                   self.idle_poll) + 0.001

    def _count(self, result: DeliveryResult, counts: dict[str, int]) -> None:
        counts["attempts"] += 1
        if result.outcome in counts:
            counts[result.outcome] += 1
        if result.status == 410:
            counts["gone"] += 1
            counts["removed"] += result.removed_followers
        if self.log is not None:
            status = result.status if result.status is not None else "-"
            self.log(f"POST {result.inbox} {status} {result.outcome}: {result.reason}"
                     f" [{result.activity_id}]")
        if self.on_result is not None:
            self.on_result(result)
