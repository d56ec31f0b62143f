"""`fedipress deliveries`: what is still queued or has failed, and `retry` to requeue failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..activitypub.remote_html import terminal_safe
from ..config import SiteConfig
from ..store import Delivery, DeliveryState, default_store_path, open_store

__all__ = ["DeliveryQueue", "delivery_queue", "format_delivery", "retry_failed_deliveries"]

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

    def lines(self) -> list[str]:
        lines = [", ".join(f"{state} {n:,}" for state, n in self.counts.items())]
        lines += [format_delivery(row) for row in self.rows]
        if self.more:
            lines.append(f"… and {self.more:,} more")
        return lines


_SHOWN_STATES: tuple[DeliveryState, ...] = ("pending", "in_flight", "failed", "expired")


def delivery_queue(config: SiteConfig, *, limit: int = LIST_LIMIT) -> DeliveryQueue:
    """`fedipress deliveries [list]`."""
    store = open_store(default_store_path(config.state_dir))
    try:
        counts = store.delivery_counts()
        rows = store.list_deliveries(list(_SHOWN_STATES), limit=limit)
    finally:
        store.close()
    shown = sum(counts[s] for s in _SHOWN_STATES)
    return DeliveryQueue(counts=dict(counts), rows=tuple(rows), more=max(0, shown - len(rows)))


def retry_failed_deliveries(config: SiteConfig) -> int:
    """`fedipress deliveries retry`: requeue every failed delivery; how many."""
    store = open_store(default_store_path(config.state_dir))
    try:
        return store.requeue_failed(datetime.now(UTC))
    finally:
        store.close()

