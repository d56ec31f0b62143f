"""SQLiteStore part: inbox dedupe and log, interactions, remote keys, blocks."""

from __future__ import annotations

from datetime import datetime

from ..errors import StoreError
from .protocol import (
    CachedKey,
    InboxRecord,
    Interaction,
    InteractionCounts,
    InteractionKind,
    Visibility,
)
from .sqlite_base import (
    Row,
    SQLiteBase,
    _dt,
    _host,
    _marks,
    _opt_dt,
    _opt_ts,
    _ts,
)

__all__ = ["INTERACTION_COLUMNS", "InboxMixin", "interaction_from_row"]

INTERACTION_COLUMNS = (
    "activity_id, kind, actor_id, object_id, published, received_at, author_name, "
    "author_handle, author_avatar_url, author_profile_url, content_html, url, in_reply_to, "
    "approved, reply_object_id, updated, content_safe_html, visibility, held_reason"
)


def interaction_from_row(row: Row) -> Interaction:
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
        content_safe_html=row[16],
        visibility=row[17],
        held_reason=row[18],
    )


def _block_target(target: str) -> str:
    """Normalise a block: an actor id stays as is; a domain is lower-cased, '*.' stripped."""
    target = target.strip()
    try:
        target.encode("utf-8")
    except UnicodeEncodeError:  # a non-UTF-8 command-line argument arrives as lone surrogates
        raise StoreError(f"cannot block {target!r}: not UTF-8 text; set your terminal to UTF-8"
                         " and type it again") from None
    if "://" in target:
        if not _host(target):
            raise StoreError(f"cannot block {target!r}: not an actor URL; give a domain"
                             " (spam.example) or an actor URL (https://spam.example/users/bob)")
        return target
    domain = target.lower().removeprefix("*.").strip(".")
    if not domain or "/" in domain or "@" in domain or " " in domain:
        raise StoreError(f"cannot block {target!r}: give a domain (spam.example) or an actor URL")
    return domain


def _domain_suffixes(host: str) -> list[str]:
    """ "a.b.example" -> ["a.b.example", "b.example", "example"]: a block on any one matches."""
    labels = host.lower().strip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


class InboxMixin(SQLiteBase):
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

    def claim_webhook_key(self, key: str, now: datetime) -> bool:
        """Record that this process reports interaction `key` to the webhook; True only for
        the first process to claim it (the insert is atomic on both engines)."""
        with self._write() as c:
            return (
                c.execute(
                    "INSERT INTO webhook_claims (claim_key, claimed_at) VALUES (?, ?) "
                    "ON CONFLICT (claim_key) DO NOTHING",
                    (key, _ts(now)),
                ).rowcount
                == 1
            )

    def prune_seen(self, before: datetime) -> int:
        with self._write() as c:
            return c.execute(
                "DELETE FROM seen_activities WHERE seen_at < ?", (_ts(before),)
            ).rowcount

    def log_inbox(
        self,
        activity_id: str | None,
        actor_id: str | None,
        body: bytes,
        received_at: datetime,
        processed: tuple[datetime, str | None] | None = None,
    ) -> int:
        """Keep a verified activity's raw bytes before processing it; returns its record id.
        `processed` (when, and the error or why nothing changed) records it as processed at
        once: the inbox logs in the transaction that made its writes, after them, in one
        statement instead of an insert and an update."""
        done_at, error = (None, None) if processed is None else (_ts(processed[0]), processed[1])
        with self._write() as c:
            row = c.execute(
                "INSERT INTO inbox_log (activity_id, actor_id, body, received_at, processed_at,"
                " error) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (activity_id, actor_id, body, _ts(received_at), done_at, error),
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
                    f"INSERT INTO interactions ({INTERACTION_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
                        i.content_safe_html,
                        i.visibility,
                        i.held_reason,
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
        self,
        reply_object_id: str,
        actor_id: str,
        content_html: str,
        updated: datetime,
        content_safe_html: str | None = None,
    ) -> bool:
        """Edit a reply or bare mention (matched by its object id or Create id), only by its
        author."""
        with self._write() as c:
            return (
                c.execute(
                    "UPDATE interactions SET content_html = ?, updated = ?, "
                    "content_safe_html = ? "
                    "WHERE kind IN ('reply', 'mention') AND actor_id = ? "
                    "AND (reply_object_id = ? OR activity_id = ?)",
                    (
                        content_html,
                        _ts(updated),
                        content_safe_html,
                        actor_id,
                        reply_object_id,
                        reply_object_id,
                    ),
                ).rowcount
                > 0
            )

    def delete_reply(self, reply_object_id: str, actor_id: str) -> bool:
        """Delete a reply or a bare mention (by its object id or Create id); only its author
        may."""
        with self._write() as c:
            return (
                c.execute(
                    "DELETE FROM interactions WHERE kind IN ('reply', 'mention') AND actor_id = ? "
                    "AND (reply_object_id = ? OR activity_id = ?)",
                    (actor_id, reply_object_id, reply_object_id),
                ).rowcount
                > 0
            )

    def get_reply(self, reply_object_id: str) -> Interaction | None:
        """The stored reply whose remote object id is `reply_object_id` (reply-to-reply)."""
        row = self._one(
            f"SELECT {INTERACTION_COLUMNS} FROM interactions "
            "WHERE kind = 'reply' AND reply_object_id = ?",
            (reply_object_id,),
        )
        return None if row is None else interaction_from_row(row)

    def get_written(self, object_id: str) -> Interaction | None:
        """The stored reply or bare mention whose remote object (or Create) id is `object_id`:
        what an Update or Delete of that object names."""
        row = self._one(
            f"SELECT {INTERACTION_COLUMNS} FROM interactions "
            "WHERE kind IN ('reply', 'mention') AND (reply_object_id = ? OR activity_id = ?) "
            "ORDER BY activity_id LIMIT 1",
            (object_id, object_id),
        )
        return None if row is None else interaction_from_row(row)

    def review_interaction(
        self,
        activity_id: str,
        *,
        approved: bool,
        held_reason: str | None,
        visibility: Visibility | None = None,
    ) -> bool:
        """Set whether an interaction is shown and why it is held (and, given, its audience)."""
        with self._write() as c:
            return (
                c.execute(
                    "UPDATE interactions SET approved = ?, held_reason = ?, "
                    "visibility = COALESCE(?, visibility) WHERE activity_id = ?",
                    (int(approved), held_reason, visibility, activity_id),
                ).rowcount
                > 0
            )

    def written_interactions(self) -> list[Interaction]:
        """Every reply, quote and bare mention, newest first (what `fedipress comments` lists)."""
        rows = self._all(
            f"SELECT {INTERACTION_COLUMNS} FROM interactions "
            "WHERE kind IN ('reply', 'quote', 'mention') "
            "ORDER BY received_at DESC, published DESC, activity_id"
        )
        return [interaction_from_row(r) for r in rows]

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
            f"SELECT {INTERACTION_COLUMNS} FROM interactions WHERE object_id = ? "
            "AND (approved = 1 OR ? = 0) ORDER BY published, activity_id",
            (object_id, int(approved_only)),
        )
        return [interaction_from_row(r) for r in rows]

    def recent_interactions(self, limit: int = 50) -> list[Interaction]:
        rows = self._all(
            f"SELECT {INTERACTION_COLUMNS} FROM interactions "
            "ORDER BY received_at DESC, activity_id LIMIT ?",
            (limit,),
        )
        return [interaction_from_row(r) for r in rows]

    def interaction_counts(self) -> dict[str, InteractionCounts]:
        """Approved likes, shares and replies per post object id."""
        rows = self._all(
            "SELECT object_id,"
            " SUM(CASE WHEN kind = 'like' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN kind = 'announce' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN kind = 'reply' THEN 1 ELSE 0 END)"
            " FROM interactions WHERE approved = 1"
            " AND visibility IN ('public', 'unlisted') GROUP BY object_id ORDER BY object_id"
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

    def blocked_or_key(self, key_id: str, actor_id: str) -> tuple[bool, CachedKey | None]:
        """`is_blocked(key_id) or is_blocked(actor_id)`, and when neither is, `get_key(key_id)`:
        one query, which is every POST's one read before the signature check (on PostgreSQL
        one round trip instead of three)."""
        candidates = list(dict.fromkeys([*_block_candidates(key_id), *_block_candidates(actor_id)]))
        blocked = (
            f"EXISTS (SELECT 1 FROM blocks WHERE target IN ({_marks(len(candidates))}))"
            if candidates else "1 = 0"
        )
        row = self._one(
            f"SELECT CASE WHEN {blocked} THEN 1 ELSE 0 END, k.key_id, k.owner,"
            " k.public_key_pem, k.fetched_at FROM (SELECT 1 AS one) AS d"
            " LEFT JOIN remote_keys AS k ON k.key_id = ?",
            [*candidates, key_id],
        )
        assert row is not None
        if int(row[0]):
            return True, None
        if row[1] is None:
            return False, None
        return False, CachedKey(row[1], row[2], row[3], _dt(row[4]))

    def is_blocked(self, actor_id_or_domain: str) -> bool:
        """True if the actor id is blocked, or its host is a blocked domain or below one."""
        candidates = _block_candidates(actor_id_or_domain)
        if not candidates:
            return False
        row = self._one(
            f"SELECT 1 FROM blocks WHERE target IN ({_marks(len(candidates))}) LIMIT 1",
            candidates,
        )
        return row is not None


def _block_candidates(actor_id_or_domain: str) -> list[str]:
    """The block targets that would block this actor id (itself and its host's domains) or
    domain (itself and the domains above it)."""
    value = actor_id_or_domain.strip()
    if "://" in value:
        return [value, *_domain_suffixes(_host(value))]
    return _domain_suffixes(value)
