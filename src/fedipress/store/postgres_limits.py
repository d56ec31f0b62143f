"""PostgresStore part: limits several inbox processes share (migration 0007_scaling).

A token bucket per key (client address, signing host) and the last refetch time of each remote
key, each updated by ONE statement, so concurrent processes never both take the last token or
both refetch a key. Times are epoch seconds from the caller (wall clock: monotonic clocks do
not agree between processes or machines).
"""

from __future__ import annotations

import itertools
from typing import Any

from .postgres_base import PostgresBase

__all__ = ["SharedLimitsMixin"]

_PRUNE_EVERY = 1000  # calls between sweeps of rows that no longer limit anything

_TAKE = """
    INSERT INTO rate_buckets AS b (key, tokens, at, allowed)
    VALUES (%(key)s, %(burst)s - 1, %(now)s, 1)
    ON CONFLICT (key) DO UPDATE SET
        tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END,
        allowed = CASE WHEN {refill} >= 1 THEN 1 ELSE 0 END,
        at = GREATEST(b.at, %(now)s)
    RETURNING allowed, tokens
""".format(refill="LEAST(%(burst)s, b.tokens + GREATEST(0, %(now)s - b.at) * %(rate)s)")

_REFETCH = """
    INSERT INTO key_refetches AS r (key_id, at) VALUES (%(key)s, %(now)s)
    ON CONFLICT (key_id) DO UPDATE SET at = excluded.at
        WHERE r.at <= excluded.at - %(interval)s
    RETURNING 1
"""


class SharedLimitsMixin(PostgresBase):
    shares_limits = True  # the inbox uses these instead of its in-memory limiters
    _calls = itertools.count(1)

    def take_rate_token(
        self, key: str, now: float, per_minute: float, burst: int
    ) -> float | None:
        """Take one token of `key`'s bucket (`burst` at most, refilled at `per_minute`):
        None when allowed, else the seconds until a token is free."""
        rate = per_minute / 60.0
        # One statement, atomic on its own: no BEGIN/COMMIT round trips on every request.
        row = self._single(_TAKE, {"key": key, "now": now, "burst": float(burst), "rate": rate})
        if next(self._calls) % _PRUNE_EVERY == 0:
            # A bucket idle for burst/rate seconds is full again: the row says nothing.
            self._single("DELETE FROM rate_buckets WHERE at < %(at)s",
                         {"at": now - burst / rate})
        assert row is not None
        allowed, tokens = int(row[0]), float(row[1])
        return None if allowed else (1.0 - tokens) / rate

    def claim_key_refetch(self, key_id: str, now: float, interval: float) -> bool:
        """True when no process refetched `key_id` in the last `interval` seconds (and records
        this one); False means another refetch is too recent."""
        row = self._single(_REFETCH, {"key": key_id, "now": now, "interval": interval})
        if next(self._calls) % _PRUNE_EVERY == 0:
            self._single("DELETE FROM key_refetches WHERE at < %(at)s", {"at": now - interval})
        return row is not None

    def _single(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run one statement: in the thread's transaction if there is one, else on its own
        (autocommit), which is atomic for a single statement."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            cursor = current.raw.execute(sql, params)
        else:
            self._check_open()
            with self._pool.connection() as raw:
                cursor = raw.execute(sql, params)
                return cursor.fetchone() if cursor.description else None
        return cursor.fetchone() if cursor.description else None
