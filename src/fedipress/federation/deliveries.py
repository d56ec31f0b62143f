"""`fedipress deliveries`: what is still queued or has failed, `retry` to requeue failures,
and `prune` to remove the followers on hosts that have failed every delivery for a week."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..activitypub.remote_html import terminal_safe
from ..config import SiteConfig
from ..store import Delivery, DeliveryState, HostHealth, open_site_store
from .hosthealth import DEAD_AFTER

__all__ = ["DeliveryQueue", "PruneReport", "delivery_queue", "format_delivery",
           "prune_dead_hosts", "retry_failed_deliveries"]

LIST_LIMIT = 200


def format_delivery(row: Delivery) -> str:
    """One line: state, attempts, next try, inbox, activity, last error."""
    status = f" HTTP {row.last_status}" if row.last_status is not None else ""
    error = f" — {row.last_error}{status}" if row.last_error or status else ""
    when = row.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S")
    nxt = f" next {when}Z" if row.state == "pending" else ""
    # The error may quote a remote server's answer: never a terminal control sequence.
    return terminal_safe(f"{row.state:<9} tries {row.attempts:<2}{nxt} {row.inbox} "
                         f"[{row.activity_id}]{error}")


@dataclass(frozen=True)
class DeliveryQueue:
    """The queue at a glance: counts by state, the first `LIST_LIMIT` unfinished or failed
    rows, and how many more there are."""

    counts: dict[DeliveryState, int]
    rows: tuple[Delivery, ...]
    more: int
    paused: tuple[HostHealth, ...] = ()  # hosts whose deliveries wait (circuit breaker)
    dead: tuple[tuple[HostHealth, int], ...] = field(default=())  # failing a week: followers

    def lines(self) -> list[str]:
        lines = [", ".join(f"{state} {n:,}" for state, n in self.counts.items())]
        lines += [format_delivery(row) for row in self.rows]
        if self.more:
            lines.append(f"… and {self.more:,} more")
        for host in self.paused:
            assert host.paused_until is not None and host.first_failure_at is not None
            lines.append(f"paused    {host.host}: every delivery failed since"
                         f" {host.first_failure_at:%Y-%m-%d %H:%M}Z; next try"
                         f" {host.paused_until:%Y-%m-%d %H:%M}Z (sooner if it sends us anything)")
        for host, followers in self.dead:
            assert host.first_failure_at is not None
            lines.append(f"dead      {host.host}: every delivery failed since"
                         f" {host.first_failure_at:%Y-%m-%d}, {followers:,} follower"
                         f"{'s' * (followers != 1)} there; `fedipress deliveries prune` removes"
                         " them")
        return lines


_SHOWN_STATES: tuple[DeliveryState, ...] = ("pending", "in_flight", "failed", "expired")


def delivery_queue(config: SiteConfig, *, limit: int = LIST_LIMIT) -> DeliveryQueue:
    """`fedipress deliveries [list]`."""
    store = open_site_store(config)
    try:
        counts = store.delivery_counts()
        rows = store.list_deliveries(list(_SHOWN_STATES), limit=limit)
        now = datetime.now(UTC)
        paused = tuple(h for h in store.failing_hosts()
                       if h.paused_until is not None and h.paused_until > now)
        dead = tuple(store.dead_hosts(now - DEAD_AFTER))
    finally:
        store.close()
    shown = sum(counts[s] for s in _SHOWN_STATES)
    return DeliveryQueue(counts=dict(counts), rows=tuple(rows), more=max(0, shown - len(rows)),
                         paused=paused, dead=dead)


@dataclass(frozen=True)
class PruneReport:
    hosts: int
    followers: int
    deliveries: int

    def line(self) -> str:
        if not self.hosts:
            return "no host has failed every delivery for 7 days: nothing removed"
        return (f"removed {self.followers:,} follower{'s' * (self.followers != 1)} on"
                f" {self.hosts:,} dead host{'s' * (self.hosts != 1)} and gave up"
                f" {self.deliveries:,} queued deliver{'ies' if self.deliveries != 1 else 'y'}"
                " to them")


def prune_dead_hosts(config: SiteConfig) -> PruneReport:
    """`fedipress deliveries prune`: forget the followers on hosts that have failed every
    delivery for DEAD_AFTER (7 days); never done automatically."""
    store = open_site_store(config)
    try:
        hosts, followers, deliveries = store.prune_dead_hosts(datetime.now(UTC) - DEAD_AFTER)
    finally:
        store.close()
    return PruneReport(hosts, followers, deliveries)


def retry_failed_deliveries(config: SiteConfig) -> int:
    """`fedipress deliveries retry`: requeue every failed delivery; how many."""
    store = open_site_store(config)
    try:
        return store.requeue_failed(datetime.now(UTC))
    finally:
        store.close()

