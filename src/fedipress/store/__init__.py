"""The store: the only place with SQL. Followers, the announced ledger, the delivery queue,
interactions, the remote-key cache and blocks, behind the `Store` protocol.

    store = open_store(config.state_dir / "state.db")

See docs/store.md for the schema, the transaction rules and the durability choices.
"""

from __future__ import annotations

from pathlib import Path

from .migrations import MIGRATIONS, Migration, applied_migrations, apply_migrations
from .protocol import (
    DELIVERY_STATES,
    ActivityKind,
    CachedActor,
    CachedKey,
    ClaimedDelivery,
    Delivery,
    DeliveryState,
    Follower,
    FollowerState,
    FollowRequest,
    InboxRecord,
    Interaction,
    InteractionCounts,
    InteractionKind,
    LedgerEntry,
    LedgerState,
    PlannedActivity,
    PlanResult,
    ResolvedMention,
    Store,
)
from .sqlite import BUSY_TIMEOUT_MS, SQLiteStore, open_store

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DELIVERY_STATES",
    "MIGRATIONS",
    "ActivityKind",
    "CachedActor",
    "CachedKey",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryState",
    "FollowRequest",
    "Follower",
    "FollowerState",
    "InboxRecord",
    "Interaction",
    "InteractionCounts",
    "InteractionKind",
    "LedgerEntry",
    "LedgerState",
    "Migration",
    "PlanResult",
    "PlannedActivity",
    "ResolvedMention",
    "SQLiteStore",
    "Store",
    "applied_migrations",
    "apply_migrations",
    "default_store_path",
    "open_store",
]

STATE_DB = "state.db"


def default_store_path(state_dir: Path) -> Path:
    """Where the state database lives by default: `<state_dir>/state.db` (config.state_dir)."""
    return state_dir / STATE_DB
