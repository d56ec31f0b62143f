"""`fedipress deliveries`: what is still queued or has failed, and `retry` to requeue failures."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ..config import SiteConfig
from ..store import Delivery, default_store_path, open_store
from ..wording import plural

__all__ = ["format_delivery", "run_deliveries_command"]

LIST_LIMIT = 200


def format_delivery(row: Delivery) -> str:
    """One line: state, attempts, next try, inbox, activity, last error."""
    status = f" HTTP {row.last_status}" if row.last_status is not None else ""
    error = f" — {row.last_error}{status}" if row.last_error or status else ""
    when = row.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S")
    nxt = f" next {when}Z" if row.state == "pending" else ""
    return (f"{row.state:<9} tries {row.attempts:<2}{nxt} {row.inbox} "
            f"[{row.activity_id}]{error}")


def run_deliveries_command(config: SiteConfig, args: argparse.Namespace) -> int:
    action = getattr(args, "deliveries_command", None) or "list"
    store = open_store(default_store_path(config.state_dir))
    try:
        if action == "retry":
            count = store.requeue_failed(datetime.now(UTC))
            print(f"requeued {plural(count, 'failed delivery', 'failed deliveries')};"
                  " `fedipress publish` (or the inbox service) sends them")
            return 0
        counts = store.delivery_counts()
        print(", ".join(f"{state} {n:,}" for state, n in counts.items()))
        rows = store.list_deliveries(["pending", "in_flight", "failed", "expired"],
                                     limit=LIST_LIMIT)
        for row in rows:
            print(format_delivery(row))
        shown = sum(counts[s] for s in ("pending", "in_flight", "failed", "expired"))
        if shown > len(rows):
            print(f"… and {shown - len(rows):,} more")
        return 0
    finally:
        store.close()
