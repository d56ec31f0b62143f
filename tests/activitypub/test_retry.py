"""The pure retry policy: Mastodon's status table and schedule, Retry-After, giving up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedipress.activitypub.retry import (
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP,
    RetryDecision,
    base_delay,
    next_delay,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def decide(
    attempt: int = 1,
    status: int | None = 503,
    retry_after: str | None = None,
    rand: float = 0.0,
    error: str | None = None,
) -> RetryDecision:
    return next_delay(
        attempt, status=status, retry_after=retry_after, now=NOW, rand=rand, error=error
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_done(status: int) -> None:
    d = decide(status=status)
    assert (d.outcome, d.delay, d.next_at, d.gone) == ("done", None, None, False)


@pytest.mark.parametrize("status", [400, 403, 404, 405, 406, 413, 422, 451, 501])
def test_unsalvageable_statuses_are_permanent(status: int) -> None:
    d = decide(status=status)
    assert (d.outcome, d.delay, d.gone) == ("permanent", None, False)
    assert str(status) in d.reason


def test_410_is_permanent_and_gone() -> None:
    d = decide(status=410)
    assert (d.outcome, d.gone) == ("permanent", True)


@pytest.mark.parametrize("status", [401, 408, 429, 500, 502, 503, 504, 520, 599, 301, 302, 100])
def test_retried_statuses(status: int) -> None:
    d = decide(status=status)
    assert d.outcome == "retry"
    assert d.delay == timedelta(seconds=15)
    assert d.next_at == NOW + timedelta(seconds=15)


@pytest.mark.parametrize("error", ["timeout", "connection refused", None])
def test_network_errors_are_retried(error: str | None) -> None:
    d = decide(status=None, error=error)
    assert d.outcome == "retry"
    assert d.reason == (error or "network error")


def test_mastodon_schedule_without_jitter() -> None:
    # c⁴ + 15 s for retry c = 0…15 (reliability-anchors.md §2.1).
    delays = [decide(attempt=a, rand=0.0).delay for a in range(1, MAX_ATTEMPTS)]
    assert [d.total_seconds() for d in delays if d] == [c**4 + 15 for c in range(16)]
    assert sum((d for d in delays if d), timedelta()) == timedelta(seconds=178_552)  # ≈ 49.6 h


def test_jitter_adds_up_to_half_of_c4() -> None:
    assert decide(attempt=5, rand=0.0).delay == timedelta(seconds=4**4 + 15)
    assert decide(attempt=5, rand=0.5).delay == timedelta(seconds=4**4 + 15 + 0.25 * 4**4)
    jittered = decide(attempt=5, rand=0.999).delay
    assert jittered is not None and jittered < timedelta(seconds=4**4 * 1.5 + 15)


def test_gives_up_after_the_last_attempt() -> None:
    assert MAX_ATTEMPTS == 17
    assert decide(attempt=MAX_ATTEMPTS - 1).outcome == "retry"
    d = decide(attempt=MAX_ATTEMPTS, status=503)
    assert (d.outcome, d.delay, d.next_at) == ("expired", None, None)
    assert "17 attempts" in d.reason
    # A final answer still counts as what it is, even on the last attempt.
    assert decide(attempt=MAX_ATTEMPTS, status=202).outcome == "done"
    assert decide(attempt=MAX_ATTEMPTS, status=410).gone


def test_retry_after_seconds_is_honoured_when_larger() -> None:
    assert decide(attempt=1, status=429, retry_after="120").delay == timedelta(seconds=120)
    # smaller than the schedule: the schedule wins
    assert decide(attempt=10, status=429, retry_after="120").delay == timedelta(seconds=9**4 + 15)


def test_retry_after_http_date() -> None:
    when = "Wed, 01 May 2024 13:00:00 GMT"
    assert decide(status=503, retry_after=when).delay == timedelta(hours=1)
    past = "Wed, 01 May 2024 11:00:00 GMT"
    assert decide(status=503, retry_after=past).delay == timedelta(seconds=15)


def test_retry_after_is_capped() -> None:
    assert decide(status=429, retry_after="999999").delay == RETRY_AFTER_CAP
    assert decide(status=429, retry_after="9" * 5000).delay == RETRY_AFTER_CAP
    far = "Fri, 01 May 2099 12:00:00 GMT"
    assert decide(status=503, retry_after=far).delay == RETRY_AFTER_CAP
    # ... but a long scheduled delay is not shortened by the cap.
    assert decide(attempt=16, retry_after="1").delay == timedelta(seconds=15**4 + 15)


@pytest.mark.parametrize("value", ["", "soon", "-5", "1.5", "Mon, 99 Foo 2024", "\x00"])
def test_unreadable_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after(value, NOW) is None
    assert decide(status=503, retry_after=value).delay == timedelta(seconds=15)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        decide(attempt=0)
    with pytest.raises(ValueError):
        base_delay(-1)
    with pytest.raises(ValueError):
        base_delay(0, rand=1.5)


@given(st.integers(min_value=1, max_value=MAX_ATTEMPTS - 2))
def test_delays_never_decrease_without_jitter(attempt: int) -> None:
    first, second = decide(attempt=attempt), decide(attempt=attempt + 1)
    assert first.delay is not None and second.delay is not None
    assert first.delay <= second.delay


@given(st.lists(st.floats(min_value=0.0, max_value=0.999999), min_size=16, max_size=16))
def test_total_schedule_is_two_to_three_days(rands: list[float]) -> None:
    total = timedelta()
    for attempt, rand in enumerate(rands, start=1):
        d = decide(attempt=attempt, rand=rand)
        assert d.outcome == "retry" and d.delay is not None
        total += d.delay
    assert decide(attempt=len(rands) + 1).outcome == "expired"
    assert timedelta(hours=49) <= total <= timedelta(hours=75)


@given(
    attempt=st.integers(min_value=1, max_value=40),
    status=st.one_of(st.none(), st.integers(min_value=100, max_value=599)),
    retry_after=st.one_of(st.none(), st.text(max_size=40)),
    rand=st.floats(min_value=0.0, max_value=0.999999),
)
def test_any_answer_gets_a_coherent_decision(
    attempt: int, status: int | None, retry_after: str | None, rand: float
) -> None:
    d = decide(attempt=attempt, status=status, retry_after=retry_after, rand=rand)
    if d.outcome == "retry":
        assert d.delay is not None and d.next_at == NOW + d.delay
        assert timedelta(seconds=15) <= d.delay <= max(RETRY_AFTER_CAP, base_delay(15, 1.0))
        assert attempt < MAX_ATTEMPTS
    else:
        assert d.delay is None and d.next_at is None
    assert d.gone == (status == 410)
