"""A token-bucket rate limiter keyed by client IP or signing host. Pure: time comes in.

    limiter = RateLimiter(per_minute=300, burst=60)
    wait = limiter.hit("203.0.113.7", now=clock_seconds)
    if wait is not None: answer 429 with Retry-After: ceil(wait)

Memory is bounded: at most `max_keys` buckets, the least recently used forgotten first (a
forgotten key starts again with a full bucket, which only errs towards letting a request in).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`burst` requests at once, refilled at `per_minute` per minute, per key."""

    def __init__(self, *, per_minute: float, burst: int, max_keys: int = 10_000) -> None:
        if per_minute <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("per_minute and burst must be positive")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def hit(self, key: str, now: float) -> float | None:
        """Take one token for `key`: None when allowed, else the seconds until one is free."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        elapsed = max(0.0, now - bucket.at)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate
