"""The store: the only place with SQL. Followers, the announced ledger, the delivery queue,
interactions, the remote-key cache and blocks, behind the `Store` protocol.

    store = open_store(config.state_dir / "state.db")          # SQLite, the default
    store = open_store("postgresql://fedipress@db.example/blog")  # PostgreSQL
    store = open_store(store_location(config))    # what FEDIPRESS_DATABASE_URL / site.yaml say

See https://github.com/fedipress/fedipress/blob/main/docs/store.md for the schema, the
transaction rules and the durability choices.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import SiteConfig
    from .migrations import MIGRATIONS, Migration, applied_migrations, apply_migrations
    from .postgres import PostgresStore, migrate_postgres_store
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
        HostHealth,
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
        SharedLimits,
        Store,
        Visibility,
    )
    from .sqlite import BUSY_TIMEOUT_MS, SQLiteStore, StoreParts

# The names below are loaded on first use: `fedipress build` reads only the snapshot
# (store/snapshot.py) and would otherwise pay for every dataclass of the protocol and the SQLite
# store at start-up (~20 ms of a 10,000-post rebuild).
_LAZY = {
    **dict.fromkeys(("MIGRATIONS", "Migration", "applied_migrations", "apply_migrations"),
                    "migrations"),
    **dict.fromkeys(("BUSY_TIMEOUT_MS", "SQLiteStore", "StoreParts"), "sqlite"),
    **dict.fromkeys(("PostgresStore", "migrate_postgres_store"), "postgres"),
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
    "HostHealth",
    "InboxRecord",
    "Interaction",
    "InteractionCounts",
    "InteractionKind",
    "LedgerEntry",
    "LedgerState",
    "Migration",
    "PlanResult",
    "PostgresStore",
    "PlannedActivity",
    "QuoteAuthorization",
    "ResolvedMention",
    "SQLiteStore",
    "SharedLimits",
    "Store",
    "Visibility",
    "StoreParts",
    "applied_migrations",
    "apply_migrations",
    "default_store_path",
    "is_database_url",
    "migrate_postgres_store",
    "open_site_store",
    "open_store",
    "shared_limits",
    "site_store_location",
    "store_location",
]

STATE_DB = "state.db"


def default_store_path(state_dir: Path) -> Path:
    """Where the state database lives by default: `<state_dir>/state.db` (config.state_dir)."""
    return state_dir / STATE_DB


DATABASE_URL_ENV = "FEDIPRESS_DATABASE_URL"


def is_database_url(location: object) -> bool:
    """True for a PostgreSQL URL (`postgresql://…` or `postgres://…`), False for a file path."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def store_location(state_dir: Path, configured: str | None = None) -> Path | str:
    """Where this blog's store is: `FEDIPRESS_DATABASE_URL` when set, else site.yaml's `store:`
    (`configured`), else the SQLite file `<state_dir>/state.db`."""
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        if not is_database_url(from_env):
            from ..errors import StoreError

            raise StoreError(
                f"{DATABASE_URL_ENV}: expected a postgresql://… URL, got {from_env[:40]!r};"
                " unset it to use the SQLite file in .fedipress/"
            )
        return from_env
    return configured or default_store_path(state_dir)


def open_store(location: Path | str) -> StoreParts:
    """Open the store at `location`: a SQLite file path (created and migrated if needed) or a
    PostgreSQL URL (never migrated here: `fedipress store migrate`). Raises StoreError."""
    if is_database_url(location):
        from .postgres import open_postgres_store

        return open_postgres_store(str(location))
    from .sqlite import open_store as open_sqlite_store

    return open_sqlite_store(Path(location))


def site_store_location(config: SiteConfig) -> Path | str:
    """`store_location` for a loaded site: the environment, site.yaml `store:`, or state.db."""
    return store_location(config.state_dir, config.store_url)


def open_site_store(config: SiteConfig) -> StoreParts:
    """Open the blog's store wherever it is (see `store_location`)."""
    return open_store(site_store_location(config))


def shared_limits(store: object) -> SharedLimits | None:
    """The store as SharedLimits when its engine shares limits between processes (PostgreSQL);
    None on SQLite, where each process keeps its limits in memory."""
    from typing import cast

    return cast("SharedLimits", store) if getattr(store, "shares_limits", False) else None
