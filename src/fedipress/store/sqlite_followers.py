"""SQLiteStore part: followers and follow requests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .protocol import (
    Follower,
    FollowerState,
    FollowRequest,
)
from .sqlite_base import (
    Row,
    SQLiteBase,
    _chunks,
    _dt,
    _host,
    _marks,
    _ts,
)

__all__ = ["FollowersMixin"]

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


class FollowersMixin(SQLiteBase):
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
