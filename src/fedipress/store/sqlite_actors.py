"""SQLiteStore part: the remote actor cache (actor documents as last fetched).

The inbox fills it whenever it fetches an actor document (also the one a `#main-key` key fetch
returns) and reads it instead of refetching for likes, boosts and replies. Every field is
capped here, whatever the caller did: the documents come from strangers.
"""

from __future__ import annotations

import json
import sqlite3

from .protocol import CachedActor
from .sqlite_base import Row, SQLiteBase, _dt, _host, _ts

__all__ = ["MAX_ACTOR_NAME", "MAX_ACTOR_URL", "MAX_ALSO_KNOWN_AS", "ActorsMixin"]

MAX_ACTOR_URL = 2048  # an id or inbox longer than this is not stored at all (never truncated)
MAX_ACTOR_NAME = 200  # names, handles, usernames, types: truncated
MAX_ALSO_KNOWN_AS = 20  # aliases kept, each a URL of at most MAX_ACTOR_URL

_COLS = (
    "actor_id, type, inbox, shared_inbox, preferred_username, handle, name, icon_url, "
    "profile_url, also_known_as, fetched_at"
)


def _text(value: str | None) -> str | None:
    return value[:MAX_ACTOR_NAME] if value else None


def _url(value: str | None) -> str | None:
    # A cut URL points somewhere else: drop an over-long one instead.
    return value if value and len(value) <= MAX_ACTOR_URL else None


def _aliases(text: str) -> tuple[str, ...]:
    try:
        items = json.loads(text)
    except ValueError:
        return ()
    return tuple(a for a in items if isinstance(a, str)) if isinstance(items, list) else ()


def _actor(row: Row) -> CachedActor:
    return CachedActor(
        actor_id=row[0],
        type=row[1],
        inbox=row[2],
        shared_inbox=row[3],
        preferred_username=row[4],
        handle=row[5],
        name=row[6],
        icon_url=row[7],
        profile_url=row[8],
        also_known_as=_aliases(row[9]),
        fetched_at=_dt(row[10]),
    )


class ActorsMixin(SQLiteBase):
    def get_actor(self, actor_id: str) -> CachedActor | None:
        row = self._one(f"SELECT {_COLS} FROM actor_cache WHERE actor_id = ?", (actor_id,))
        return None if row is None else _actor(row)

    def put_actor(self, actor: CachedActor) -> None:
        """Insert or replace the cached copy of `actor.actor_id` (capped; an actor whose id or
        inbox is longer than MAX_ACTOR_URL is not cached)."""
        if _url(actor.actor_id) is None or _url(actor.inbox) is None:
            return
        aliases = [a for a in actor.also_known_as if _url(a)][:MAX_ALSO_KNOWN_AS]
        values = (
            actor.actor_id,
            _host(actor.actor_id),
            _text(actor.type) or "Person",
            actor.inbox,
            _url(actor.shared_inbox),
            _text(actor.preferred_username),
            _text(actor.handle),
            _text(actor.name),
            _url(actor.icon_url),
            _url(actor.profile_url),
            json.dumps(aliases),
            _ts(actor.fetched_at),
        )
        with self._write() as c:
            c.execute(
                "INSERT INTO actor_cache (actor_id, host, type, inbox, shared_inbox, "
                "preferred_username, handle, name, icon_url, profile_url, also_known_as, "
                "fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (actor_id) DO UPDATE SET host = excluded.host, "
                "type = excluded.type, inbox = excluded.inbox, "
                "shared_inbox = excluded.shared_inbox, "
                "preferred_username = excluded.preferred_username, handle = excluded.handle, "
                "name = excluded.name, icon_url = excluded.icon_url, "
                "profile_url = excluded.profile_url, also_known_as = excluded.also_known_as, "
                "fetched_at = excluded.fetched_at",
                values,
            )

    def delete_actor(self, actor_id: str) -> bool:
        """Drop the cached copy of one actor; True if there was one."""
        with self._write() as c:
            return _delete_actor(c, actor_id)

    def _forget_cached_domain(self, domain: str) -> int:
        """Drop the cached actors on `domain` and its subdomains (a blocked domain)."""
        domain = domain.strip().lower().removeprefix("*.").strip(".")
        if not domain:
            return 0
        with self._write() as c:
            return int(
                c.execute(
                    "DELETE FROM actor_cache WHERE host = ? OR substr(host, -?) = ?",
                    (domain, len(domain) + 1, "." + domain),
                ).rowcount
            )


def _delete_actor(c: sqlite3.Connection, actor_id: str) -> bool:
    return int(c.execute("DELETE FROM actor_cache WHERE actor_id = ?", (actor_id,)).rowcount) > 0
