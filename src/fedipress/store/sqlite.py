"""The SQLite backend of the store: one file, WAL mode, one guarded writer connection.

Concurrency model (the SQLite row of reliability-anchors §0 and §3):
- every connection sets busy_timeout (30 s) *before* journal_mode=WAL, then synchronous=NORMAL
  and foreign_keys=ON;
- all writes go through one writer connection guarded by a re-entrant lock, each in a
  `BEGIN IMMEDIATE` transaction so two processes never deadlock upgrading a read lock;
- transactions that plan deliveries run with synchronous=FULL: once they commit, a power loss
  cannot roll back a plan whose deliveries may already have been sent;
- reads use one connection per thread (WAL readers never block the writer), except on a thread
  inside a write transaction, which reads through the writer to see its own uncommitted rows.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

from ..errors import StoreError
from .protocol import (
    Follower,
    PlannedActivity,
    PlanResult,
)
from .sqlite_actors import ActorsMixin
from .sqlite_base import BUSY_TIMEOUT_MS
from .sqlite_followers import FollowersMixin
from .sqlite_hosts import HostsMixin
from .sqlite_inbox import InboxMixin
from .sqlite_queue import QueueMixin
from .sqlite_quotes import QuotesMixin
from .sqlite_remote import RemoteMixin

__all__ = ["BUSY_TIMEOUT_MS", "SQLiteStore", "StoreParts", "open_store"]


class StoreParts(FollowersMixin, QueueMixin, InboxMixin, RemoteMixin, ActorsMixin, HostsMixin,
                 QuotesMixin):
    """Every `Store` method, written once in portable SQL over an engine base.

    The parts by topic (sqlite_followers, sqlite_queue: ledger, planning, deliveries,
    sqlite_inbox, sqlite_remote, sqlite_actors, sqlite_hosts, sqlite_quotes) speak through
    `_write()`, `_all()` and `_one()`;
    the engine base supplies them: sqlite_base for SQLite, postgres_base for PostgreSQL (which
    also replaces what must differ there, such as claiming with SKIP LOCKED).
    """

    def record_follow_and_plan_accept(
        self,
        follower: Follower,
        accept_activity: PlannedActivity,
        inbox: str,
        now: datetime,
        follow_activity: bytes | None = None,
    ) -> PlanResult:
        """Store the follower and queue its Accept in one transaction (§2.2 point 8)."""
        with self.transaction():
            self.upsert_follower(follower, follow_activity)
            return self.plan_deliveries(accept_activity, [inbox], now)

    def remove_actor(self, actor_id: str) -> tuple[int, int]:
        """FollowersMixin.remove_actor, and the actor's cached document goes too (a deleted or
        blocked actor must not be served from the actor cache)."""
        with self._write():
            removed = super().remove_actor(actor_id)
            self.delete_actor(actor_id)
        return removed

    def remove_domain(self, domain: str) -> tuple[int, int]:
        """RemoteMixin.remove_domain, and the domain's cached actor documents go too."""
        with self._write():
            removed = super().remove_domain(domain)
            self._forget_cached_domain(domain)
        return removed


class SQLiteStore(StoreParts):
    """The `Store` protocol on one SQLite file. Use `open_store(path)` to get one.

    Thread-safe: any thread may call any method. `transaction()` makes the calls made on the
    current thread inside its block one atomic, durable (synchronous=FULL) unit; other threads'
    writes wait for it. The methods live in parts by topic (see StoreParts); sqlite_base holds
    the connections and transactions.
    """


def open_store(path: Path) -> SQLiteStore:
    """Open (creating and migrating if needed) the state database at `path`.

    The parent directory is created with mode 0700 and a new file with mode 0600: it holds
    who follows the blog and what they said. Raises StoreError when the file cannot be used
    (not a database, unreadable, or created by a newer fedipress).
    """
    path = Path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the state database: {exc.strerror}") from exc
    try:
        return SQLiteStore(path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot use the state database: {exc}") from exc
