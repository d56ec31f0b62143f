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
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from ..errors import StoreError
from .migrations import apply_migrations
from .protocol import (
    DELIVERY_STATES,
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
    PlannedActivity,
    PlanResult,
)

__all__ = ["BUSY_TIMEOUT_MS", "SQLiteStore", "open_store"]

BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500  # rows per executemany / IN (...) list: well under SQLite's variable limit

Row = tuple[Any, ...]


def _ts(moment: datetime) -> str:
    """Aware datetime -> fixed-width UTC text that sorts as it compares."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware datetimes, got naive {moment!r}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _opt_ts(moment: datetime | None) -> str | None:
    return None if moment is None else _ts(moment)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _opt_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _chunks(items: Iterable[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _marks(n: int) -> str:
    return ", ".join("?" * n)


_FOLLOWER_COLS = (
    "actor_id, inbox, shared_inbox, handle, name, followed_at, follow_activity_id, state"
)


def _follower(row: Row) -> Follower:
    return Follower(
        actor_id=row[0],
        inbox=row[1],
        shared_inbox=row[2],
        handle=row[3],
        name=row[4],
        followed_at=_dt(row[5]),
        follow_activity_id=row[6],
        state=row[7],
    )


_LEDGER_COLS = "object_id, content_hash, announced_at, published_at, state, last_activity_id"

_DELIVERY_COLS = (
    "d.id, d.activity_id, d.inbox, d.attempts, d.next_attempt_at, d.state, d.last_error, "
    "d.last_status, d.lease_owner, d.lease_expires_at"
)


def _delivery(row: Row) -> Delivery:
    return Delivery(
        id=row[0],
        activity_id=row[1],
        inbox=row[2],
        attempts=row[3],
        next_attempt_at=_dt(row[4]),
        state=row[5],
        last_error=row[6],
        last_status=row[7],
        lease_owner=row[8],
        lease_expires_at=_opt_dt(row[9]),
    )


_INTERACTION_COLS = (
    "activity_id, kind, actor_id, object_id, published, received_at, author_name, "
    "author_handle, author_avatar_url, author_profile_url, content_html, url, in_reply_to, "
    "approved, reply_object_id, updated"
)


def _interaction(row: Row) -> Interaction:
    return Interaction(
        activity_id=row[0],
        kind=row[1],
        actor_id=row[2],
        object_id=row[3],
        published=_dt(row[4]),
        received_at=_dt(row[5]),
        author_name=row[6],
        author_handle=row[7],
        author_avatar_url=row[8],
        author_profile_url=row[9],
        content_html=row[10],
        url=row[11],
        in_reply_to=row[12],
        approved=bool(row[13]),
        reply_object_id=row[14],
        updated=_opt_dt(row[15]),
    )


def _block_target(target: str) -> str:
    """Normalise a block: an actor id stays as is; a domain is lower-cased, '*.' stripped."""
    target = target.strip()
    if "://" in target:
        if not _host(target):
            raise StoreError(f"cannot block {target!r}: not an actor URL")
        return target
    domain = target.lower().removeprefix("*.").strip(".")
    if not domain or "/" in domain or "@" in domain or " " in domain:
        raise StoreError(f"cannot block {target!r}: give a domain (spam.example) or an actor URL")
    return domain


def _domain_suffixes(host: str) -> list[str]:
    """ "a.b.example" -> ["a.b.example", "b.example", "example"]: a block on any one matches."""
    labels = host.lower().strip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
        check_same_thread=False,  # guarded by our lock (writer) or used by one thread (readers)
    )
    try:
        # busy_timeout first: switching to WAL takes a lock and may otherwise fail at once.
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise StoreError(
                f"{path}: SQLite refused WAL mode (got {mode!r}); keep the state database "
                "on a local disk, not a network share"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteStore:
    """The `Store` protocol on one SQLite file. Use `open_store(path)` to get one.

    Thread-safe: any thread may call any method. `transaction()` makes the calls made on the
    current thread inside its block one atomic, durable (synchronous=FULL) unit; other threads'
    writes wait for it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0  # nesting of write transactions; only touched while holding _lock
        self._tx_thread: int | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = _connect(path)
        try:
            apply_migrations(self._writer, path)
        except BaseException:
            self._writer.close()
            raise

    # --- connections and transactions --------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                for reader in self._readers:
                    reader.close()
                self._readers.clear()
            self._writer.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One atomic write. Nested calls (same thread) become savepoints of the outer one."""
        with self._lock:
            self._check_open()
            conn = self._writer
            if self._depth:
                savepoint = f"sp{self._depth}"
                conn.execute(f"SAVEPOINT {savepoint}")
                self._depth += 1
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                    raise
                else:
                    conn.execute(f"RELEASE {savepoint}")
                finally:
                    self._depth -= 1
                return
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._depth, self._tx_thread = 1, threading.get_ident()
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                else:
                    conn.execute("COMMIT")
                finally:
                    self._depth, self._tx_thread = 0, None
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group store calls made on this thread into one atomic, durable transaction.

        >>> with store.transaction():
        ...     store.upsert_follower(follower)
        ...     store.plan_deliveries(accept, [follower.inbox], now)
        """
        with self._write(durable=True):
            yield

    def _reader(self) -> sqlite3.Connection:
        self._check_open()
        if self._depth and self._tx_thread == threading.get_ident():
            return self._writer  # see this transaction's own writes
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._reader().execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return cast(Row | None, self._reader().execute(sql, params).fetchone())

    # --- maintenance -------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """ "ok", or SQLite's description of what is broken."""
        rows = self._all("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)

    def journal_mode(self) -> str:
        return str(self._all("PRAGMA journal_mode")[0][0])

    def checkpoint(self) -> None:
        """Fold the WAL back into the main file (after a large publish, or before a backup)."""
        with self._lock:
            self._check_open()
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup(self, target: Path) -> None:
        """A consistent copy via SQLite's online backup (never copy state.db without -wal)."""
        dest = sqlite3.connect(str(target))
        try:
            with self._lock:
                self._check_open()
                self._writer.backup(dest)
        finally:
            dest.close()

    # --- followers ---------------------------------------------------------------------------

    _UPSERT_FOLLOWER = f"""
        INSERT INTO followers ({_FOLLOWER_COLS}, host, follow_activity)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (actor_id) DO UPDATE SET
            host = excluded.host,
            inbox = excluded.inbox,
            shared_inbox = excluded.shared_inbox,
            handle = COALESCE(excluded.handle, followers.handle),
            name = COALESCE(excluded.name, followers.name),
            follow_activity_id =
                COALESCE(excluded.follow_activity_id, followers.follow_activity_id),
            follow_activity = COALESCE(excluded.follow_activity, followers.follow_activity),
            state = excluded.state
    """  # followed_at is kept: a repeated Follow does not make an old follower new

    @staticmethod
    def _follower_params(f: Follower, follow_activity: bytes | None) -> tuple[Any, ...]:
        return (
            f.actor_id,
            f.inbox,
            f.shared_inbox,
            f.handle,
            f.name,
            _ts(f.followed_at),
            f.follow_activity_id,
            f.state,
            _host(f.actor_id),
            follow_activity,
        )

    def upsert_follower(self, follower: Follower, follow_activity: bytes | None = None) -> bool:
        """Add or refresh a follower; True when the actor was not a follower before.

        `follow_activity` (the Follow's raw JSON) is kept for follow requests awaiting approval.
        """
        params = self._follower_params(follower, follow_activity)
        with self._write() as c:
            existed = c.execute(
                "SELECT 1 FROM followers WHERE actor_id = ?", (follower.actor_id,)
            ).fetchone()
            c.execute(self._UPSERT_FOLLOWER, params)
        return existed is None

    def upsert_followers(self, followers: Iterable[Follower]) -> int:
        """Bulk upsert in one transaction (imports, tests); returns how many were given."""
        count = 0
        with self._write() as c:
            for chunk in _chunks(followers):
                c.executemany(
                    self._UPSERT_FOLLOWER, [self._follower_params(f, None) for f in chunk]
                )
                count += len(chunk)
        return count

    def remove_follower(self, actor_id: str) -> bool:
        with self._write() as c:
            return c.execute("DELETE FROM followers WHERE actor_id = ?", (actor_id,)).rowcount > 0

    def get_follower(self, actor_id: str) -> Follower | None:
        row = self._one(f"SELECT {_FOLLOWER_COLS} FROM followers WHERE actor_id = ?", (actor_id,))
        return None if row is None else _follower(row)

    def count_followers(self, state: FollowerState | None = "accepted") -> int:
        if state is None:
            row = self._one("SELECT COUNT(*) FROM followers")
        else:
            row = self._one("SELECT COUNT(*) FROM followers WHERE state = ?", (state,))
        return int(row[0]) if row else 0

    def iter_followers(
        self, state: FollowerState | None = "accepted", batch: int = 1000
    ) -> Iterator[Follower]:
        """Stream followers ordered by actor id, `batch` rows per query.

        Keyset pagination: no cursor or read transaction stays open between batches, so the
        iterator may be consumed slowly, from another thread, or inside a transaction.
        """
        states = ("accepted", "pending") if state is None else (state,)
        last = ""
        while True:
            rows = self._all(
                f"SELECT {_FOLLOWER_COLS} FROM followers "
                f"WHERE state IN ({_marks(len(states))}) AND actor_id > ? "
                "ORDER BY actor_id LIMIT ?",
                (*states, last, batch),
            )
            for row in rows:
                yield _follower(row)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def iter_delivery_inboxes(self, batch: int = 1000) -> Iterator[str]:
        """Distinct inboxes of accepted followers (shared inbox preferred), streamed in order."""
        last = ""
        while True:
            rows = self._all(
                "SELECT DISTINCT COALESCE(shared_inbox, inbox) FROM followers "
                "WHERE state = 'accepted' AND COALESCE(shared_inbox, inbox) > ? "
                "ORDER BY COALESCE(shared_inbox, inbox) LIMIT ?",
                (last, batch),
            )
            for row in rows:
                yield row[0]
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def followers_by_host(self) -> list[tuple[str, int]]:
        """(host of the follower's actor id, accepted followers there), most first."""
        rows = self._all(
            "SELECT host, COUNT(*) AS n FROM followers WHERE state = 'accepted' "
            "GROUP BY host ORDER BY n DESC, host"
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def move_follower(self, old_id: str, new: Follower) -> bool:
        """Replace follower `old_id` by `new` (a Move); False, doing nothing, if not following."""
        with self._write() as c:
            if c.execute("DELETE FROM followers WHERE actor_id = ?", (old_id,)).rowcount == 0:
                return False
            c.execute(self._UPSERT_FOLLOWER, self._follower_params(new, None))
            return True

    def remove_actor(self, actor_id: str) -> tuple[int, int]:
        """Forget an actor that was deleted: (followers removed, interactions removed).

        Their cached keys go too, since the keys died with the actor.
        """
        with self._write() as c:
            followers = c.execute("DELETE FROM followers WHERE actor_id = ?", (actor_id,)).rowcount
            interactions = c.execute(
                "DELETE FROM interactions WHERE actor_id = ?", (actor_id,)
            ).rowcount
            c.execute("DELETE FROM remote_keys WHERE owner = ?", (actor_id,))
        return followers, interactions

    def list_follow_requests(self) -> list[FollowRequest]:
        rows = self._all(
            f"SELECT {_FOLLOWER_COLS}, follow_activity FROM followers "
            "WHERE state = 'pending' ORDER BY followed_at, actor_id"
        )
        return [FollowRequest(_follower(r), None if r[8] is None else bytes(r[8])) for r in rows]

    def approve_follow_request(self, actor_id: str) -> Follower | None:
        """Pending -> accepted; the follower, or None if there was no such request.

        To send the Accept atomically, call this and `plan_deliveries` inside `transaction()`.
        """
        with self._write() as c:
            row = c.execute(
                "UPDATE followers SET state = 'accepted' "
                f"WHERE actor_id = ? AND state = 'pending' RETURNING {_FOLLOWER_COLS}",
                (actor_id,),
            ).fetchall()  # fetch all: a RETURNING statement left unfinished blocks COMMIT
        return _follower(row[0]) if row else None

    def reject_follow_request(self, actor_id: str) -> FollowRequest | None:
        with self._write() as c:
            row = c.execute(
                "DELETE FROM followers WHERE actor_id = ? AND state = 'pending' "
                f"RETURNING {_FOLLOWER_COLS}, follow_activity",
                (actor_id,),
            ).fetchall()
        if not row:
            return None
        return FollowRequest(_follower(row[0]), None if row[0][8] is None else bytes(row[0][8]))

    # --- ledger and planning -----------------------------------------------------------------

    def get_ledger(self) -> dict[str, LedgerEntry]:
        rows = self._all(f"SELECT {_LEDGER_COLS} FROM ledger ORDER BY object_id")
        return {
            r[0]: LedgerEntry(
                object_id=r[0],
                content_hash=r[1],
                announced_at=_dt(r[2]),
                published_at=_dt(r[3]),
                state=r[4],
                last_activity_id=r[5],
            )
            for r in rows
        }

    def plan_publication(
        self,
        activities: Sequence[PlannedActivity],
        recipients: Iterable[str],
        ledger_updates: Sequence[LedgerEntry],
        now: datetime,
    ) -> PlanResult:
        """Store activities, one pending delivery per (new activity, inbox), and the ledger.

        All in ONE durable transaction: nothing may be sent before it commits, and if anything
        fails (including the `recipients` iterator raising) nothing is stored. An activity id
        that is already stored is left alone and gets no new deliveries, so re-running a
        publish never announces twice. `recipients` is consumed only if some activity is new,
        in chunks, and duplicates in it are harmless (one row per activity and inbox).
        Rows are inserted inbox by inbox in the order `activities` are given, so the queue
        (ordered by due time, then row id) hands one inbox its activities in that order.
        """
        now_s = _ts(now)
        new: list[str] = []
        existing: list[str] = []
        changed: list[str] = []
        deliveries = 0
        with self._write(durable=True) as c:
            for activity in activities:
                if activity.activity_id in new or activity.activity_id in existing:
                    continue
                inserted = c.execute(
                    "INSERT INTO activities (activity_id, object_id, kind, body, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (activity_id) DO NOTHING",
                    (activity.activity_id, activity.object_id, activity.kind, activity.body, now_s),
                ).rowcount
                if inserted:
                    new.append(activity.activity_id)
                    continue
                existing.append(activity.activity_id)
                stored = c.execute(
                    "SELECT body FROM activities WHERE activity_id = ?", (activity.activity_id,)
                ).fetchone()
                if bytes(stored[0]) != activity.body:
                    changed.append(activity.activity_id)
            if new:
                # Chunked so that a recipients generator reading this store never runs while
                # one of our statements is half-way through.
                for chunk in _chunks(inbox for inbox in recipients if inbox):
                    before = c.total_changes
                    c.executemany(
                        "INSERT INTO deliveries (activity_id, inbox, host, attempts, "
                        "next_attempt_at, state, created_at) VALUES (?, ?, ?, 0, ?, 'pending', ?) "
                        "ON CONFLICT (activity_id, inbox) DO NOTHING",
                        [
                            (activity_id, inbox, _host(inbox), now_s, now_s)
                            for inbox in chunk
                            for activity_id in new
                        ],
                    )
                    deliveries += c.total_changes - before
            for entry in ledger_updates:
                c.execute(
                    f"INSERT INTO ledger ({_LEDGER_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (object_id) DO UPDATE SET content_hash = excluded.content_hash, "
                    "announced_at = excluded.announced_at, published_at = excluded.published_at, "
                    "state = excluded.state, last_activity_id = excluded.last_activity_id",
                    (
                        entry.object_id,
                        entry.content_hash,
                        _ts(entry.announced_at),
                        _ts(entry.published_at),
                        entry.state,
                        entry.last_activity_id,
                    ),
                )
        return PlanResult(
            new_activities=tuple(new),
            existing_activities=tuple(existing),
            changed_bodies=tuple(changed),
            deliveries=deliveries,
            ledger_updates=len(ledger_updates),
        )

    def plan_deliveries(
        self, activity: PlannedActivity, inboxes: Iterable[str], now: datetime
    ) -> PlanResult:
        """`plan_publication` for one activity and no ledger change (Accept, Reject, ...)."""
        return self.plan_publication([activity], inboxes, [], now)

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

    def get_activity(self, activity_id: str) -> PlannedActivity | None:
        row = self._one(
            "SELECT activity_id, object_id, kind, body FROM activities WHERE activity_id = ?",
            (activity_id,),
        )
        return None if row is None else PlannedActivity(row[0], row[1], row[2], bytes(row[3]))

    # --- delivery queue ----------------------------------------------------------------------

    def claim_due(
        self,
        owner: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        per_host_limit: int | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries to `owner` until now + `lease`.

        Due means pending with next_attempt_at <= now, or in flight with an expired lease (its
        worker died). Oldest due first. `per_host_limit` caps in-flight rows per inbox host,
        counting leases other workers already hold. Each claim counts as an attempt. The
        select and the update happen in one IMMEDIATE transaction, so no two workers or
        processes ever hold the same row.
        """
        if limit <= 0:
            return []
        now_s = _ts(now)
        with self._write() as c:
            if per_host_limit is None:
                # Each branch walks its index in order and stops at `limit`.
                rows = c.execute(
                    "SELECT id FROM ("
                    " SELECT * FROM (SELECT id, next_attempt_at FROM deliveries"
                    "  WHERE state = 'pending' AND next_attempt_at <= :now"
                    "  ORDER BY next_attempt_at, id LIMIT :limit)"
                    " UNION ALL"
                    " SELECT * FROM (SELECT id, next_attempt_at FROM deliveries"
                    "  WHERE state = 'in_flight' AND lease_expires_at <= :now"
                    "  ORDER BY lease_expires_at, id LIMIT :limit)"
                    ") AS due ORDER BY next_attempt_at, id LIMIT :limit",
                    {"now": now_s, "limit": limit},
                ).fetchall()
            else:
                rows = c.execute(
                    "WITH due AS ("
                    " SELECT id, host, next_attempt_at FROM deliveries"
                    "  WHERE state = 'pending' AND next_attempt_at <= :now"
                    " UNION ALL"
                    " SELECT id, host, next_attempt_at FROM deliveries"
                    "  WHERE state = 'in_flight' AND lease_expires_at <= :now),"
                    " busy AS (SELECT host, COUNT(*) AS n FROM deliveries"
                    "  WHERE state = 'in_flight' AND lease_expires_at > :now GROUP BY host),"
                    " ranked AS (SELECT due.id, due.next_attempt_at,"
                    "  ROW_NUMBER() OVER (PARTITION BY due.host"
                    "   ORDER BY due.next_attempt_at, due.id) + COALESCE(busy.n, 0) AS slot"
                    "  FROM due LEFT JOIN busy ON busy.host = due.host)"
                    " SELECT id FROM ranked WHERE slot <= :cap"
                    " ORDER BY next_attempt_at, id LIMIT :limit",
                    {"now": now_s, "limit": limit, "cap": per_host_limit},
                ).fetchall()
            ids = [int(r[0]) for r in rows]
            claimed: list[Row] = []
            for chunk in _chunks(ids):
                c.execute(
                    "UPDATE deliveries SET state = 'in_flight', lease_owner = ?, "
                    "lease_expires_at = ?, attempts = attempts + 1 "
                    f"WHERE id IN ({_marks(len(chunk))})",
                    (owner, _ts(now + lease), *chunk),
                )
                claimed += c.execute(
                    f"SELECT {_DELIVERY_COLS}, a.body, a.kind, a.object_id FROM deliveries AS d "
                    "JOIN activities AS a ON a.activity_id = d.activity_id "
                    f"WHERE d.id IN ({_marks(len(chunk))})",
                    chunk,
                ).fetchall()
        claimed.sort(key=lambda r: (r[4], r[0]))
        return [ClaimedDelivery(_delivery(r), bytes(r[10]), r[11], r[12]) for r in claimed]

    def _finish(
        self, delivery_id: int, owner: str, assignments: str, params: Sequence[Any]
    ) -> bool:
        # Only the current lease holder may record an outcome: a stale worker whose lease
        # expired and was re-claimed by someone else gets False and its result is ignored.
        with self._write() as c:
            return (
                c.execute(
                    f"UPDATE deliveries SET {assignments}, lease_owner = NULL, "
                    "lease_expires_at = NULL "
                    "WHERE id = ? AND state = 'in_flight' AND lease_owner = ?",
                    (*params, delivery_id, owner),
                ).rowcount
                == 1
            )

    def mark_delivered(self, delivery_id: int, owner: str, now: datetime) -> bool:
        return self._finish(
            delivery_id,
            owner,
            "state = 'delivered', finished_at = ?, last_error = NULL",
            (_ts(now),),
        )

    def mark_retry(
        self,
        delivery_id: int,
        owner: str,
        next_attempt_at: datetime,
        error: str | None,
        status: int | None,
    ) -> bool:
        return self._finish(
            delivery_id,
            owner,
            "state = 'pending', next_attempt_at = ?, last_error = ?, last_status = ?",
            (_ts(next_attempt_at), error, status),
        )

    def mark_failed(
        self,
        delivery_id: int,
        owner: str,
        error: str | None,
        status: int | None,
        expired: bool = False,
    ) -> bool:
        """Give up: "failed" (unsalvageable answer) or, with `expired`, past the retry horizon."""
        return self._finish(
            delivery_id,
            owner,
            "state = ?, last_error = ?, last_status = ?",
            ("expired" if expired else "failed", error, status),
        )

    def release(self, delivery_id: int, owner: str) -> bool:
        """Hand a claimed row back unsent (shutdown, open circuit): pending, attempt uncounted."""
        return self._finish(
            delivery_id, owner, "state = 'pending', attempts = MAX(attempts - 1, 0)", ()
        )

    def next_due_at(self) -> datetime | None:
        """When the next row becomes claimable (a pending due time or a lease expiry)."""
        row = self._one(
            "SELECT MIN(t) FROM ("
            " SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE state = 'pending'"
            " UNION ALL"
            " SELECT MIN(lease_expires_at) AS t FROM deliveries WHERE state = 'in_flight'"
            ") AS due"
        )
        return None if row is None else _opt_dt(row[0])

    def delivery_counts(self) -> dict[DeliveryState, int]:
        counts: dict[DeliveryState, int] = dict.fromkeys(DELIVERY_STATES, 0)
        for state, n in self._all("SELECT state, COUNT(*) FROM deliveries GROUP BY state"):
            counts[state] = int(n)
        return counts

    def list_deliveries(
        self, states: Iterable[DeliveryState] | None = None, limit: int = 100
    ) -> list[Delivery]:
        wanted = tuple(DELIVERY_STATES if states is None else states)
        if not wanted:
            return []
        rows = self._all(
            f"SELECT {_DELIVERY_COLS} FROM deliveries AS d "
            f"WHERE d.state IN ({_marks(len(wanted))}) ORDER BY d.next_attempt_at, d.id LIMIT ?",
            (*wanted, limit),
        )
        return [_delivery(r) for r in rows]

    def requeue_failed(self, now: datetime) -> int:
        """Failed and expired rows -> pending, due now, with a fresh attempt budget."""
        with self._write() as c:
            return c.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ? "
                "WHERE state IN ('failed', 'expired')",
                (_ts(now),),
            ).rowcount

    def pending_for_activity(self, activity_id: str) -> int:
        """Deliveries of this activity not yet finished (pending or in flight)."""
        row = self._one(
            "SELECT COUNT(*) FROM deliveries "
            "WHERE activity_id = ? AND state IN ('pending', 'in_flight')",
            (activity_id,),
        )
        return int(row[0]) if row else 0

    def prune_delivered(self, before: datetime) -> int:
        """Forget delivered rows finished before `before` (activities themselves stay)."""
        with self._write() as c:
            return c.execute(
                "DELETE FROM deliveries WHERE state = 'delivered' AND finished_at < ?",
                (_ts(before),),
            ).rowcount

    # --- inbox side --------------------------------------------------------------------------

    def seen_activity(self, activity_id: str, now: datetime) -> bool:
        """Record an incoming activity id; True the first time it is seen, False after."""
        with self._write() as c:
            return (
                c.execute(
                    "INSERT INTO seen_activities (activity_id, seen_at) VALUES (?, ?) "
                    "ON CONFLICT (activity_id) DO NOTHING",
                    (activity_id, _ts(now)),
                ).rowcount
                == 1
            )

    def prune_seen(self, before: datetime) -> int:
        with self._write() as c:
            return c.execute(
                "DELETE FROM seen_activities WHERE seen_at < ?", (_ts(before),)
            ).rowcount

    def log_inbox(
        self, activity_id: str | None, actor_id: str | None, body: bytes, received_at: datetime
    ) -> int:
        """Keep a verified activity's raw bytes before processing it; returns its record id."""
        with self._write() as c:
            row = c.execute(
                "INSERT INTO inbox_log (activity_id, actor_id, body, received_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (activity_id, actor_id, body, _ts(received_at)),
            ).fetchall()
        return int(row[0][0])

    def mark_inbox_processed(self, record_id: int, now: datetime, error: str | None = None) -> None:
        with self._write() as c:
            c.execute(
                "UPDATE inbox_log SET processed_at = ?, error = ? WHERE id = ?",
                (_ts(now), error, record_id),
            )

    def unprocessed_inbox(self, limit: int = 100) -> list[InboxRecord]:
        rows = self._all(
            "SELECT id, activity_id, actor_id, body, received_at FROM inbox_log "
            "WHERE processed_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        )
        return [InboxRecord(r[0], r[1], r[2], bytes(r[3]), _dt(r[4])) for r in rows]

    def prune_inbox_log(self, before: datetime) -> int:
        with self._write() as c:
            return c.execute(
                "DELETE FROM inbox_log WHERE processed_at IS NOT NULL AND processed_at < ?",
                (_ts(before),),
            ).rowcount

    def add_interaction(self, interaction: Interaction) -> bool:
        """Store a like/boost/reply; False if already there (same activity id, the same
        actor's like or boost of the same post, or the same reply object)."""
        i = interaction
        with self._write() as c:
            return (
                c.execute(
                    f"INSERT INTO interactions ({_INTERACTION_COLS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (
                        i.activity_id,
                        i.kind,
                        i.actor_id,
                        i.object_id,
                        _ts(i.published),
                        _ts(i.received_at),
                        i.author_name,
                        i.author_handle,
                        i.author_avatar_url,
                        i.author_profile_url,
                        i.content_html,
                        i.url,
                        i.in_reply_to,
                        int(i.approved),
                        i.reply_object_id,
                        _opt_ts(i.updated),
                    ),
                ).rowcount
                == 1
            )

    def remove_interaction_by_activity(self, activity_id: str, actor_id: str) -> bool:
        """Undo: remove the interaction `activity_id`, only if `actor_id` made it."""
        with self._write() as c:
            return (
                c.execute(
                    "DELETE FROM interactions WHERE activity_id = ? AND actor_id = ?",
                    (activity_id, actor_id),
                ).rowcount
                > 0
            )

    def remove_interaction(self, kind: InteractionKind, actor_id: str, object_id: str) -> bool:
        """Undo of a like/boost whose original activity id is unknown or differs."""
        with self._write() as c:
            return (
                c.execute(
                    "DELETE FROM interactions WHERE kind = ? AND actor_id = ? AND object_id = ?",
                    (kind, actor_id, object_id),
                ).rowcount
                > 0
            )

    def update_reply(
        self, reply_object_id: str, actor_id: str, content_html: str, updated: datetime
    ) -> bool:
        """Edit a reply (matched by its object id or Create id), only by its author."""
        with self._write() as c:
            return (
                c.execute(
                    "UPDATE interactions SET content_html = ?, updated = ? "
                    "WHERE kind = 'reply' AND actor_id = ? "
                    "AND (reply_object_id = ? OR activity_id = ?)",
                    (content_html, _ts(updated), actor_id, reply_object_id, reply_object_id),
                ).rowcount
                > 0
            )

    def delete_reply(self, reply_object_id: str, actor_id: str) -> bool:
        """Delete a reply (by its object id or Create id); only its author may."""
        with self._write() as c:
            return (
                c.execute(
                    "DELETE FROM interactions WHERE kind = 'reply' AND actor_id = ? "
                    "AND (reply_object_id = ? OR activity_id = ?)",
                    (actor_id, reply_object_id, reply_object_id),
                ).rowcount
                > 0
            )

    def set_interaction_approved(self, activity_id: str, approved: bool) -> bool:
        with self._write() as c:
            return (
                c.execute(
                    "UPDATE interactions SET approved = ? WHERE activity_id = ?",
                    (int(approved), activity_id),
                ).rowcount
                > 0
            )

    def interactions_for_object(
        self, object_id: str, approved_only: bool = True
    ) -> list[Interaction]:
        """What the build renders under a post: oldest first."""
        rows = self._all(
            f"SELECT {_INTERACTION_COLS} FROM interactions WHERE object_id = ? "
            "AND (approved = 1 OR ? = 0) ORDER BY published, activity_id",
            (object_id, int(approved_only)),
        )
        return [_interaction(r) for r in rows]

    def recent_interactions(self, limit: int = 50) -> list[Interaction]:
        rows = self._all(
            f"SELECT {_INTERACTION_COLS} FROM interactions "
            "ORDER BY received_at DESC, activity_id LIMIT ?",
            (limit,),
        )
        return [_interaction(r) for r in rows]

    def interaction_counts(self) -> dict[str, InteractionCounts]:
        """Approved likes, shares and replies per post object id."""
        rows = self._all(
            "SELECT object_id,"
            " SUM(CASE WHEN kind = 'like' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN kind = 'announce' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN kind = 'reply' THEN 1 ELSE 0 END)"
            " FROM interactions WHERE approved = 1 GROUP BY object_id ORDER BY object_id"
        )
        return {r[0]: InteractionCounts(int(r[1]), int(r[2]), int(r[3])) for r in rows}

    # --- remote keys -------------------------------------------------------------------------

    def get_key(self, key_id: str) -> CachedKey | None:
        row = self._one(
            "SELECT key_id, owner, public_key_pem, fetched_at FROM remote_keys WHERE key_id = ?",
            (key_id,),
        )
        return None if row is None else CachedKey(row[0], row[1], row[2], _dt(row[3]))

    def put_key(self, key: CachedKey) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO remote_keys (key_id, owner, public_key_pem, fetched_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET owner = excluded.owner, "
                "public_key_pem = excluded.public_key_pem, fetched_at = excluded.fetched_at",
                (key.key_id, key.owner, key.public_key_pem, _ts(key.fetched_at)),
            )

    def delete_key(self, key_id: str) -> bool:
        with self._write() as c:
            return c.execute("DELETE FROM remote_keys WHERE key_id = ?", (key_id,)).rowcount > 0

    # --- blocks ------------------------------------------------------------------------------

    def add_block(self, target: str, now: datetime) -> bool:
        """Block a domain (and all its subdomains) or one actor id; True if newly blocked."""
        normal = _block_target(target)
        with self._write() as c:
            return (
                c.execute(
                    "INSERT INTO blocks (target, created_at) VALUES (?, ?) "
                    "ON CONFLICT (target) DO NOTHING",
                    (normal, _ts(now)),
                ).rowcount
                == 1
            )

    def remove_block(self, target: str) -> bool:
        normal = _block_target(target)
        with self._write() as c:
            return c.execute("DELETE FROM blocks WHERE target = ?", (normal,)).rowcount > 0

    def list_blocks(self) -> list[str]:
        return [str(r[0]) for r in self._all("SELECT target FROM blocks ORDER BY target")]

    def is_blocked(self, actor_id_or_domain: str) -> bool:
        """True if the actor id is blocked, or its host is a blocked domain or below one."""
        value = actor_id_or_domain.strip()
        if "://" in value:
            candidates = [value, *_domain_suffixes(_host(value))]
        else:
            candidates = _domain_suffixes(value)
        if not candidates:
            return False
        row = self._one(
            f"SELECT 1 FROM blocks WHERE target IN ({_marks(len(candidates))}) LIMIT 1",
            candidates,
        )
        return row is not None


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
