"""The store: the only place with SQL. Followers, the announced ledger, the delivery queue,
interactions, the remote-key cache and blocks, behind the `Store` protocol.

    store = open_store(config.state_dir / "state.db")

See https://github.com/fedipress/fedipress/blob/main/docs/store.md for the schema, the
transaction rules and the durability choices.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .migrations import MIGRATIONS, Migration, applied_migrations, apply_migrations
    from .protocol import (
        DELIVERY_STATES,
        ActivityKind,
        AnnouncedCounts,
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
        QuoteAuthorization,
        ResolvedMention,
        Store,
        Visibility,
    )
    from .sqlite import BUSY_TIMEOUT_MS, SQLiteStore, open_store

# The names below are loaded on first use: `fedipress build` reads only the snapshot
# (store/snapshot.py) and would otherwise pay for every dataclass of the protocol and the SQLite
# store at start-up (~20 ms of a 10,000-post rebuild).
_LAZY = {
    **dict.fromkeys(("MIGRATIONS", "Migration", "applied_migrations", "apply_migrations"),
                    "migrations"),
    **dict.fromkeys(("BUSY_TIMEOUT_MS", "SQLiteStore", "open_store"), "sqlite"),
}


def __getattr__(name: str) -> Any:
    if name in __all__ and name not in globals():
        module = importlib.import_module(f".{_LAZY.get(name, 'protocol')}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUSY_TIMEOUT_MS",
    "DELIVERY_STATES",
    "MIGRATIONS",
    "ActivityKind",
    "AnnouncedCounts",
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
    "QuoteAuthorization",
    "ResolvedMention",
    "SQLiteStore",
    "Store",
    "Visibility",
    "applied_migrations",
    "apply_migrations",
    "default_store_path",
    "open_store",
]

STATE_DB = "state.db"


def default_store_path(state_dir: Path) -> Path:
    """Where the state database lives by default: `<state_dir>/state.db` (config.state_dir)."""
    return state_dir / STATE_DB
