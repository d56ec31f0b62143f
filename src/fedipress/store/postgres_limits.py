"""PostgresStore part: limits several inbox processes share (migration 0007_scaling).

A token bucket per key (client address, signing host) and the last refetch time of each remote
key, each updated by ONE statement, so concurrent processes never both take the last token or
both refetch a key. Times are epoch seconds from the caller (wall clock: monotonic clocks do
not agree between processes or machines).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache
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



@lru_cache(maxsize=8)
def _take_chain(count: int) -> str:
    """One statement taking a token of `count` buckets in turn: bucket i is touched only when
    bucket i-1 allowed (each a data-modifying CTE fed by the one before), so a request refused
    by its first limit costs nothing from the next, exactly as separate calls would."""
    ctes = []
    for i in range(count):
        refill = (f"LEAST(%(burst{i})s, b.tokens + GREATEST(0, %(now)s - b.at) * %(rate{i})s)")
        source = "" if i == 0 else f" FROM t{i - 1} WHERE t{i - 1}.allowed = 1"
        ctes.append(
            f"t{i} AS (INSERT INTO rate_buckets AS b (key, tokens, at, allowed)"
            f" SELECT %(key{i})s, %(burst{i})s - 1, %(now)s, 1{source}"
            f" ON CONFLICT (key) DO UPDATE SET"
            f" tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END,"
            f" allowed = CASE WHEN {refill} >= 1 THEN 1 ELSE 0 END,"
            f" at = GREATEST(b.at, %(now)s) RETURNING allowed, tokens)"
        )
    columns = ", ".join(f"t{i}.allowed, t{i}.tokens" for i in range(count))
    joins = "".join(f" LEFT JOIN t{i} ON true" for i in range(1, count))
    return f"WITH {', '.join(ctes)} SELECT {columns} FROM t0{joins}"


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

    def take_rate_tokens(
        self, takes: Sequence[tuple[str, float, int]], now: float
    ) -> tuple[int, float] | None:
        """`take_rate_token` for several (key, per_minute, burst) in order, in one statement
        (one round trip): None when every bucket allowed, else (index of the first bucket that
        refused, seconds until it has a token); buckets after a refusal are not touched."""
        if len(takes) < 2:
            if not takes:
                return None
            key, per_minute, burst = takes[0]
            wait = self.take_rate_token(key, now, per_minute, burst)
            return None if wait is None else (0, wait)
        if len({key for key, _, _ in takes}) != len(takes):
            raise ValueError("take_rate_tokens needs distinct keys")
        params: dict[str, Any] = {"now": now}
        for i, (key, per_minute, burst) in enumerate(takes):
            params.update({f"key{i}": key, f"burst{i}": float(burst),
                           f"rate{i}": per_minute / 60.0})
        row = self._single(_take_chain(len(takes)), params)
        if next(self._calls) % _PRUNE_EVERY == 0:
            slowest = max(burst / (per_minute / 60.0) for _, per_minute, burst in takes)
            self._single("DELETE FROM rate_buckets WHERE at < %(at)s", {"at": now - slowest})
        assert row is not None
        for i, (_, per_minute, _) in enumerate(takes):
            allowed, tokens = row[2 * i], row[2 * i + 1]
            if allowed is None or not int(allowed):
                # A bucket not reached (None) cannot be the first refusal: the one before is.
                assert allowed is not None
                return i, (1.0 - float(tokens)) / (per_minute / 60.0)
        return None

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
