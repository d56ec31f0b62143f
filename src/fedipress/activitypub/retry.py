"""The delivery retry policy: an attempt's outcome in, the next step out. Pure.

Modelled on Mastodon's delivery worker (app/workers/activitypub/delivery_worker.rb): 2xx is
done; 4xx other than 401/408/429, and 501, can never succeed and are dropped at once (410 Gone
also tells the caller to remove the follower); everything else (401, 408, 429, 5xx, 3xx,
timeouts, refused connections) is retried after `c⁴ + 15 s + rand·0.5·c⁴` for retry number
`c` = 0…15, so 17 attempts span about 49.6 h without jitter and up to about 74 h with it.
A `Retry-After` answer is honoured when it asks for more than that, up to 12 hours.

The caller owns the clock and the random number: pass `now` and `rand` in [0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_AFTER_CAP",
    "RetryDecision",
    "base_delay",
    "next_delay",
    "parse_retry_after",
]

MAX_ATTEMPTS = 17  # the first try plus Mastodon's 16 retries
RETRY_AFTER_CAP = timedelta(hours=12)  # a server may ask us to wait, but not for days
_RETRIED_4XX = frozenset({401, 408, 429})

Outcome = Literal["done", "retry", "permanent", "expired"]


@dataclass(frozen=True)
class RetryDecision:
    """What to do after an attempt.

    `outcome`: "done" (delivered), "retry" (try again after `delay`, i.e. at `next_at`),
    "permanent" (never retry; `gone` means 410: the caller removes the follower) or
    "expired" (the retry budget is used up). `reason` is a short text for logs and reports.
    """

    outcome: Outcome
    reason: str
    delay: timedelta | None = None
    next_at: datetime | None = None
    gone: bool = False


def base_delay(retry: int, rand: float = 0.0) -> timedelta:
    """Mastodon's delay before retry number `retry` (0-based): c⁴ + 15 s + rand·0.5·c⁴."""
    if retry < 0:
        raise ValueError("retry must be >= 0")
    if not 0.0 <= rand <= 1.0:
        raise ValueError("rand must be in [0, 1]")
    power = retry**4
    return timedelta(seconds=power + 15 + rand * 0.5 * power)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` value (delta seconds or an HTTP date) as a non-negative delay.

    Anything unreadable is ignored (None) rather than trusted."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Long digit strings are clamped before int() (which refuses > 4300 digits anyway).
        return timedelta(seconds=int(value) if len(value) <= 9 else 10**9)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def _classify(status: int | None, error: str | None) -> tuple[Outcome, str, bool]:
    if status is None:
        return "retry", error or "network error", False
    if 200 <= status < 300:
        return "done", f"HTTP {status}", False
    if status == 410:
        return "permanent", "HTTP 410 Gone", True
    if (400 <= status < 500 and status not in _RETRIED_4XX) or status == 501:
        return "permanent", f"HTTP {status}", False
    # 401/408/429, other 5xx, and anything odd (3xx is not followed on a POST, 1xx) is retried.
    return "retry", f"HTTP {status}", False


def next_delay(
    attempt: int,
    *,
    status: int | None,
    retry_after: str | None,
    now: datetime,
    rand: float,
    error: str | None = None,
) -> RetryDecision:
    """Decide after attempt number `attempt` (1 = the first try) ended with `status`.

    `status` None means no HTTP answer (timeout, refused, TLS); `error` names it. `rand` is a
    uniform random number in [0, 1) for jitter, `now` the time the attempt ended.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    outcome, reason, gone = _classify(status, error)
    if outcome != "retry":
        return RetryDecision(outcome, reason, gone=gone)
    if attempt >= MAX_ATTEMPTS:
        return RetryDecision("expired", f"gave up after {attempt} attempts ({reason})")
    delay = base_delay(attempt - 1, rand)
    asked = parse_retry_after(retry_after, now)
    if asked is not None:
        delay = max(delay, min(asked, RETRY_AFTER_CAP))
    return RetryDecision("retry", reason, delay=delay, next_at=now + delay)
