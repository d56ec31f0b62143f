"""The per-host circuit breaker around delivery (issue 15, point 3).

A host that has failed every delivery for a day (no success since its first failure) is paused:
its pending deliveries are moved `PAUSE_FOR` ahead in one store statement, rather than each
failing on its own schedule. When the pause ends, the rows due first probe the host again; a
failure re-pauses it at once. The first success, or anything the host sends to the inbox,
resumes it: its paused deliveries become due now. A host failing for `DEAD_AFTER` is reported
by `fedipress deliveries` with its followers; `fedipress deliveries prune` removes them (never
done automatically: a long outage is not a departure).

The store keeps the state (shared by every process); each process keeps only a cache of which
hosts are failing, refreshed every `REFRESH_SECONDS`, so a healthy host's success costs no write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from ..store import Store

__all__ = ["DEAD_AFTER", "PAUSE_AFTER", "PAUSE_FOR", "HostBreaker"]

PAUSE_AFTER = timedelta(days=1)
PAUSE_FOR = timedelta(hours=6)
DEAD_AFTER = timedelta(days=7)
REFRESH_SECONDS = 10.0


class HostBreaker:
    def __init__(self, store: Store, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.monotonic = monotonic
        self._failing: set[str] = set()
        self._loaded_at: float | None = None

    def maybe_failing(self, host: str) -> bool:
        """Whether `host` may be in a run of failures (from the cache; cheap)."""
        now = self.monotonic()
        if self._loaded_at is None or now - self._loaded_at >= REFRESH_SECONDS:
            self._failing = {h.host for h in self.store.failing_hosts()}
            self._loaded_at = now
        return host in self._failing

    def success(self, host: str, now: datetime) -> int:
        """A delivery to `host` succeeded; how many paused deliveries became due."""
        if not self.maybe_failing(host):
            return 0
        self._failing.discard(host)
        return self.store.record_host_success(host, now)

    def contact(self, host: str, now: datetime) -> int:
        """`host` sent us a verified request; how many paused deliveries became due."""
        if not self.maybe_failing(host):
            return 0
        self._failing.discard(host)
        return self.store.resume_host(host, now)

    def failure(self, host: str, now: datetime) -> int:
        """A delivery to `host` failed (retryable); how many deliveries a new pause moved."""
        health = self.store.record_host_failure(host, now)
        self._failing.add(host)
        since = health.first_failure_at
        if since is None or now - since < PAUSE_AFTER:
            return 0
        if health.paused_until is not None and health.paused_until > now:
            return 0
        return self.store.pause_host(host, now + PAUSE_FOR, now)
