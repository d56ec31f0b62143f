"""SQLiteStore part: quote authorizations (FEP-044f) and the counts each post's last count
refresh announced."""

from __future__ import annotations

from datetime import datetime

from .protocol import AnnouncedCounts, QuoteAuthorization
from .sqlite_base import Row, SQLiteBase, _dt, _opt_dt, _ts

__all__ = ["QuotesMixin"]

_QUOTE_COLS = ("authorization_id, quoted_object_id, quoting_object_id, actor_id, body,"
               " created_at, revoked_at, inbox")


def _authorization(row: Row) -> QuoteAuthorization:
    return QuoteAuthorization(
        authorization_id=row[0],
        quoted_object_id=row[1],
        quoting_object_id=row[2],
        actor_id=row[3],
        body=bytes(row[4]),
        created_at=_dt(row[5]),
        revoked_at=_opt_dt(row[6]),
        inbox=row[7],
    )


class QuotesMixin(SQLiteBase):
    # --- quote authorizations ----------------------------------------------------------------

    def put_quote_authorization(self, authorization: QuoteAuthorization) -> bool:
        """Store an authorization; True when it is new or was revoked and stands again (a
        quoting post asks once more), False when it already stood (its stored bytes are
        kept: a served document does not change under a server that fetched it)."""
        a = authorization
        with self._write() as c:
            row = c.execute(
                "SELECT revoked_at FROM quote_authorizations WHERE authorization_id = ?",
                (a.authorization_id,),
            ).fetchone()
            if row is not None and row[0] is None:
                return False
            c.execute(
                f"INSERT INTO quote_authorizations ({_QUOTE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (authorization_id) DO UPDATE SET"
                " quoted_object_id = excluded.quoted_object_id, actor_id = excluded.actor_id,"
                " body = excluded.body, created_at = excluded.created_at, revoked_at = NULL,"
                " inbox = excluded.inbox",
                (a.authorization_id, a.quoted_object_id, a.quoting_object_id, a.actor_id,
                 a.body, _ts(a.created_at), None, a.inbox),
            )
        return True

    def get_quote_authorization(self, authorization_id: str) -> QuoteAuthorization | None:
        row = self._one(
            f"SELECT {_QUOTE_COLS} FROM quote_authorizations WHERE authorization_id = ?",
            (authorization_id,),
        )
        return None if row is None else _authorization(row)

    def quote_authorization_for(self, quoting_object_id: str) -> QuoteAuthorization | None:
        """The authorization granted to the quoting post `quoting_object_id`, revoked or not."""
        row = self._one(
            f"SELECT {_QUOTE_COLS} FROM quote_authorizations WHERE quoting_object_id = ?",
            (quoting_object_id,),
        )
        return None if row is None else _authorization(row)

    def active_quote_authorizations(self) -> list[QuoteAuthorization]:
        rows = self._all(
            f"SELECT {_QUOTE_COLS} FROM quote_authorizations WHERE revoked_at IS NULL"
            " ORDER BY created_at, authorization_id"
        )
        return [_authorization(r) for r in rows]

    def revoke_quote_authorization(self, authorization_id: str, now: datetime) -> bool:
        """Mark it revoked (served as 410 Gone from now on); False if it was not standing."""
        with self._write() as c:
            return c.execute(
                "UPDATE quote_authorizations SET revoked_at = ?"
                " WHERE authorization_id = ? AND revoked_at IS NULL",
                (_ts(now), authorization_id),
            ).rowcount > 0

    # --- announced counts --------------------------------------------------------------------

    def get_announced_counts(self, object_id: str) -> AnnouncedCounts | None:
        row = self._one(
            "SELECT object_id, replies, likes, shares, sent_at FROM announced_counts"
            " WHERE object_id = ?",
            (object_id,),
        )
        if row is None:
            return None
        return AnnouncedCounts(row[0], int(row[1]), int(row[2]), int(row[3]), _dt(row[4]))

    def announced_counts(self) -> dict[str, AnnouncedCounts]:
        """Every post's last refresh, by object id (one query for the refresh loop's tick)."""
        rows = self._all("SELECT object_id, replies, likes, shares, sent_at FROM announced_counts")
        return {r[0]: AnnouncedCounts(r[0], int(r[1]), int(r[2]), int(r[3]), _dt(r[4]))
                for r in rows}

    def put_announced_counts(self, counts: AnnouncedCounts) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO announced_counts (object_id, replies, likes, shares, sent_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (object_id) DO UPDATE SET"
                " replies = excluded.replies, likes = excluded.likes,"
                " shares = excluded.shares, sent_at = excluded.sent_at",
                (counts.object_id, counts.replies, counts.likes, counts.shares,
                 _ts(counts.sent_at)),
            )

    def replace_announced_counts(
        self, counts: AnnouncedCounts, previous: AnnouncedCounts | None
    ) -> bool:
        """Record a post's refresh only if its last one is still `previous` (None: there was
        none); False when another process recorded one since `previous` was read.

        Several services share one PostgreSQL store and each runs the refresh loop: the one
        whose swap succeeds sends the Update, the others drop theirs, so followers never get
        the same refresh twice. The check is the write itself (a conditional UPDATE waits for
        a concurrent one's row lock and then sees its sent_at; an INSERT waits on the key)."""
        with self._write() as c:
            if previous is None:
                cursor = c.execute(
                    "INSERT INTO announced_counts (object_id, replies, likes, shares, sent_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (object_id) DO NOTHING",
                    (counts.object_id, counts.replies, counts.likes, counts.shares,
                     _ts(counts.sent_at)),
                )
            else:
                cursor = c.execute(
                    "UPDATE announced_counts SET replies = ?, likes = ?, shares = ?, sent_at = ?"
                    " WHERE object_id = ? AND sent_at = ?",
                    (counts.replies, counts.likes, counts.shares, _ts(counts.sent_at),
                     counts.object_id, _ts(previous.sent_at)),
                )
            return int(cursor.rowcount) == 1
