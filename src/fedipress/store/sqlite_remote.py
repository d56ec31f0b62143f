"""SQLiteStore part: what we keep about remote accounts beyond followers.

The mention cache (`user@server` -> actor, filled by publish through WebFinger) and the purge
of a blocked domain (its followers and everything its accounts left).
"""

from __future__ import annotations

from .protocol import ResolvedMention
from .sqlite_base import Row, SQLiteBase, _chunks, _dt, _host, _marks, _ts

__all__ = ["RemoteMixin"]

_MENTION_COLS = "acct, actor_id, inbox, shared_inbox, profile_url, resolved_at"


def _mention(row: Row) -> ResolvedMention:
    return ResolvedMention(
        acct=row[0],
        actor_id=row[1],
        inbox=row[2],
        shared_inbox=row[3],
        profile_url=row[4],
        resolved_at=_dt(row[5]),
    )


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


class RemoteMixin(SQLiteBase):
    # --- mention cache -----------------------------------------------------------------------

    def get_mention(self, acct: str) -> ResolvedMention | None:
        row = self._one(f"SELECT {_MENTION_COLS} FROM mention_cache WHERE acct = ?", (acct,))
        return None if row is None else _mention(row)

    def put_mention(self, mention: ResolvedMention) -> None:
        with self._write() as c:
            c.execute(
                f"INSERT INTO mention_cache ({_MENTION_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (acct) DO UPDATE SET actor_id = excluded.actor_id, "
                "inbox = excluded.inbox, shared_inbox = excluded.shared_inbox, "
                "profile_url = excluded.profile_url, resolved_at = excluded.resolved_at",
                (
                    mention.acct,
                    mention.actor_id,
                    mention.inbox,
                    mention.shared_inbox,
                    mention.profile_url,
                    _ts(mention.resolved_at),
                ),
            )

    def list_mentions(self) -> list[ResolvedMention]:
        return [
            _mention(r)
            for r in self._all(f"SELECT {_MENTION_COLS} FROM mention_cache ORDER BY acct")
        ]

    # --- accounts we know --------------------------------------------------------------------

    def knows_actor(self, actor_id: str) -> bool:
        """True if `actor_id` follows (or asked to) or left a like, boost or reply."""
        return (
            self._one("SELECT 1 FROM followers WHERE actor_id = ?", (actor_id,)) is not None
            or self._one("SELECT 1 FROM interactions WHERE actor_id = ? LIMIT 1", (actor_id,))
            is not None
        )

    # --- domain blocks -----------------------------------------------------------------------

    def remove_domain(self, domain: str) -> tuple[int, int]:
        """Forget every account on `domain` and its subdomains: (followers, interactions) removed.

        Called when the domain is blocked, so nothing from it stays visible or gets deliveries.
        """
        domain = domain.strip().lower().removeprefix("*.").strip(".")
        if not domain:
            return 0, 0
        with self._write() as c:
            # followers.host is the lower-cased hostname of the actor id (indexed).
            followers = c.execute(
                "DELETE FROM followers WHERE host = ? OR substr(host, -?) = ?",
                (domain, len(domain) + 1, "." + domain),
            ).rowcount
            # Interactions carry no host column; a personal blog has few distinct actors.
            actors = [
                str(r[0])
                for r in c.execute("SELECT DISTINCT actor_id FROM interactions").fetchall()
                if _under(_host(str(r[0])), domain)
            ]
            interactions = 0
            for chunk in _chunks(actors):
                interactions += c.execute(
                    f"DELETE FROM interactions WHERE actor_id IN ({_marks(len(chunk))})", chunk
                ).rowcount
        return followers, interactions
