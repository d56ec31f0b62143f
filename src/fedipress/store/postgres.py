"""The PostgreSQL backend of the store: the same `Store` protocol and the same SQL as SQLite,
on a server several processes and machines share.

    store = open_postgres_store("postgresql://fedipress@db.example/fedipress")

What differs from SQLite is only what must (postgres_base.py: the pool, transactions and the
dialect; here: claiming and follower upserts):
- `claim_due` takes rows with `SELECT … FOR UPDATE SKIP LOCKED`: any number of workers in any
  number of processes claim at once, never the same row; a lease that expires (its worker was
  killed) makes the row claimable again;
- `upsert_follower` learns whether the follower is new from the insert itself
  (`RETURNING xmax = 0`), so two inbox processes receiving the same Follow agree on it.
The schema is never changed on open: `fedipress store migrate` applies migrations.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .migrations import MIGRATIONS, Migration
from .postgres_limits import SharedLimitsMixin
from .protocol import ClaimedDelivery, Follower
from .sqlite import StoreParts
from .sqlite_base import _ts
from .sqlite_queue import _delivery

__all__ = ["PostgresStore", "migrate_postgres_store", "open_postgres_store"]

_CAPPED_CLAIM_LOCK = 0x66656470  # advisory lock: capped claimers count busy hosts one at a time

_DUE = (
    "(d.state = 'pending' AND d.next_attempt_at <= %(now)s)"
    " OR (d.state = 'in_flight' AND d.lease_expires_at <= %(now)s)"
)

_CLAIM = (
    "UPDATE deliveries AS d SET state = 'in_flight', lease_owner = %(owner)s,"
    " lease_expires_at = %(until)s, attempts = d.attempts + 1"
    " FROM activities AS a"
    f" WHERE d.id = ANY(%(ids)s) AND ({_DUE}) AND a.activity_id = d.activity_id"
    " RETURNING d.id, d.activity_id, d.inbox, d.attempts, d.next_attempt_at, d.state,"
    " d.last_error, d.last_status, d.lease_owner, d.lease_expires_at, a.body, a.kind, a.object_id"
)


class PostgresStore(SharedLimitsMixin, StoreParts):
    """The `Store` protocol on PostgreSQL. Use `open_postgres_store(url)` to get one.

    Thread-safe like SQLiteStore; unlike it, writers in other threads and processes do not wait
    for each other except on the rows they share."""

    def upsert_follower(self, follower: Follower, follow_activity: bytes | None = None) -> bool:
        """Add or refresh a follower; True when this call inserted it (exactly one of two
        processes storing the same new follower at once gets True)."""
        params = self._follower_params(follower, follow_activity)
        with self._write() as c:
            row = c.execute(self._UPSERT_FOLLOWER + " RETURNING (xmax = 0)", params).fetchone()
        return bool(row[0])

    def claim_due(
        self,
        owner: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        per_host_limit: int | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries to `owner` until now + `lease` (see
        SQLiteStore.claim_due). Rows another claimer holds are skipped, not waited for."""
        if limit <= 0:
            return []
        args: dict[str, Any] = {"now": _ts(now), "limit": limit}
        with self._write() as c:
            raw = c.raw
            if per_host_limit is None:
                ids = self._due_ids(raw, args, limit)
            else:
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (_CAPPED_CLAIM_LOCK,))
                ids = self._due_capped_ids(raw, args, limit, per_host_limit)
            if not ids:
                return []
            rows = raw.execute(
                _CLAIM, {**args, "ids": ids, "owner": owner, "until": _ts(now + lease)}
            ).fetchall()
        rows.sort(key=lambda r: (r[4], r[0]))
        return [ClaimedDelivery(_delivery(r), bytes(r[10]), r[11], r[12]) for r in rows]

    @staticmethod
    def _due_ids(raw: Any, args: dict[str, Any], limit: int) -> list[int]:
        """The oldest due rows nobody else is claiming, locked until this claim commits.

        Two index walks (pending by due time, expired leases by expiry) rather than one OR,
        so a claim reads `limit` rows, not the whole queue."""
        found: list[tuple[str, int]] = []
        for where, order in (
            ("d.state = 'pending' AND d.next_attempt_at <= %(now)s", "d.next_attempt_at"),
            ("d.state = 'in_flight' AND d.lease_expires_at <= %(now)s", "d.lease_expires_at"),
        ):
            found += raw.execute(
                f"SELECT d.next_attempt_at, d.id FROM deliveries AS d WHERE {where}"
                f" ORDER BY {order}, d.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                args,
            ).fetchall()
        found.sort()
        return [int(r[1]) for r in found[:limit]]

    @staticmethod
    def _due_capped_ids(raw: Any, args: dict[str, Any], limit: int, cap: int) -> list[int]:
        """Due ids, oldest first, at most `cap` in flight per host counting every worker's
        live leases. Capped claimers hold an advisory lock while counting, so two of them
        never both take a host's last slot; rows are streamed and the walk stops at `limit`."""
        busy: dict[str, int] = dict(
            raw.execute(
                "SELECT host, COUNT(*) FROM deliveries "
                "WHERE state = 'in_flight' AND lease_expires_at > %(now)s GROUP BY host",
                args,
            ).fetchall()
        )
        expired = raw.execute(
            "SELECT next_attempt_at, id, host FROM deliveries "
            "WHERE state = 'in_flight' AND lease_expires_at <= %(now)s "
            "ORDER BY next_attempt_at, id",
            args,
        ).fetchall()
        chosen: list[int] = []
        with raw.cursor(name="fedipress_due") as pending:
            pending.itersize = max(500, limit * 2)
            pending.execute(
                "SELECT next_attempt_at, id, host FROM deliveries "
                "WHERE state = 'pending' AND next_attempt_at <= %(now)s "
                "ORDER BY next_attempt_at, id",
                args,
            )
            for _at, row_id, host in heapq.merge(expired, pending):
                taken = busy.get(host, 0)
                if taken < cap:
                    busy[host] = taken + 1
                    chosen.append(int(row_id))
                    if len(chosen) >= limit:
                        break
        return chosen


def open_postgres_store(url: str, *, max_connections: int = 10) -> PostgresStore:
    """Connect to the PostgreSQL store at `url` (no password in it: PGPASSWORD or a libpq
    password file). Raises StoreError when it cannot connect, when the database was migrated by
    a newer fedipress, or when it needs `fedipress store migrate`."""
    return PostgresStore(url, max_connections=max_connections)


def migrate_postgres_store(url: str, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply pending migrations to the database at `url`; returns the names applied now."""
    import psycopg

    from ..errors import StoreError
    from .postgres_base import migrate_postgresql, redact_url

    where = redact_url(url)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            return migrate_postgresql(conn, where, migrations)
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        raise StoreError(
            f"{where}: cannot connect to the PostgreSQL store: {lines[-1] if lines else exc}"
        ) from None
