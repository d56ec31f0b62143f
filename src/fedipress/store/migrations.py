"""Named, ordered schema migrations, recorded in the `migrations` table.

Each migration is a name and a list of SQL statements applied in one IMMEDIATE transaction
together with its record, so a crash mid-migration leaves the database as it was. Names are
never reused or edited once released: append a new one instead. A database that records a name
this version does not know was written by a newer fedipress and is refused (StoreError) rather
than half-understood.

SQL here stays portable to PostgreSQL in spirit (plain types, CHECK constraints, unique and
partial indexes); `STRICT` is SQLite's way of making column types real and is dropped there.
Timestamps are TEXT in one fixed-width UTC form ("2024-05-01T10:00:00.000000Z") so they sort and
compare as strings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError

__all__ = ["MIGRATIONS", "Migration", "apply_migrations", "applied_migrations"]


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


_INITIAL = (
    """CREATE TABLE followers (
        actor_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        inbox TEXT NOT NULL,
        shared_inbox TEXT,
        handle TEXT,
        name TEXT,
        followed_at TEXT NOT NULL,
        follow_activity_id TEXT,
        follow_activity BLOB,
        state TEXT NOT NULL CHECK (state IN ('accepted', 'pending'))
    ) STRICT""",
    "CREATE INDEX followers_state ON followers (state, actor_id)",
    "CREATE INDEX followers_host ON followers (host)",
    # Lets the distinct delivery inboxes stream in order without scanning every follower.
    "CREATE INDEX followers_box ON followers (state, COALESCE(shared_inbox, inbox))",
    """CREATE TABLE ledger (
        object_id TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        announced_at TEXT NOT NULL,
        published_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('live', 'deleted')),
        last_activity_id TEXT
    ) STRICT""",
    # The body is stored once per activity; deliveries reference it, never copy it.
    """CREATE TABLE activities (
        activity_id TEXT PRIMARY KEY,
        object_id TEXT,
        kind TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX activities_object ON activities (object_id)",
    """CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        activity_id TEXT NOT NULL REFERENCES activities (activity_id) ON DELETE CASCADE,
        inbox TEXT NOT NULL,
        host TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed', 'expired')),
        last_error TEXT,
        last_status INTEGER,
        lease_owner TEXT,
        lease_expires_at TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
    ) STRICT""",
    # Idempotency as a schema property: one row per (activity, inbox), ever.
    "CREATE UNIQUE INDEX deliveries_activity_inbox ON deliveries (activity_id, inbox)",
    "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
    "CREATE INDEX deliveries_lease ON deliveries (state, lease_expires_at)",
    "CREATE INDEX deliveries_host ON deliveries (state, host)",
    """CREATE TABLE seen_activities (
        activity_id TEXT PRIMARY KEY,
        seen_at TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX seen_activities_at ON seen_activities (seen_at)",
    """CREATE TABLE inbox_log (
        id INTEGER PRIMARY KEY,
        activity_id TEXT,
        actor_id TEXT,
        body BLOB NOT NULL,
        received_at TEXT NOT NULL,
        processed_at TEXT,
        error TEXT
    ) STRICT""",
    "CREATE INDEX inbox_log_unprocessed ON inbox_log (id) WHERE processed_at IS NULL",
    """CREATE TABLE interactions (
        activity_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('like', 'announce', 'reply')),
        actor_id TEXT NOT NULL,
        object_id TEXT NOT NULL,
        reply_object_id TEXT,
        author_name TEXT,
        author_handle TEXT,
        author_avatar_url TEXT,
        author_profile_url TEXT,
        content_html TEXT,
        url TEXT,
        in_reply_to TEXT,
        published TEXT NOT NULL,
        received_at TEXT NOT NULL,
        updated TEXT,
        approved INTEGER NOT NULL CHECK (approved IN (0, 1))
    ) STRICT""",
    # One like and one boost per (actor, post), whatever activity ids the sender uses.
    """CREATE UNIQUE INDEX interactions_reaction ON interactions (kind, actor_id, object_id)
        WHERE kind IN ('like', 'announce')""",
    """CREATE UNIQUE INDEX interactions_reply ON interactions (reply_object_id)
        WHERE reply_object_id IS NOT NULL""",
    "CREATE INDEX interactions_object ON interactions (object_id, published)",
    "CREATE INDEX interactions_received ON interactions (received_at)",
    "CREATE INDEX interactions_actor ON interactions (actor_id)",
    """CREATE TABLE remote_keys (
        key_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    ) STRICT""",
    """CREATE TABLE blocks (
        target TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
    ) STRICT""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_initial", _INITIAL),
    # The inbox keeps a strictly sanitised copy of each reply beside the original HTML, so
    # nothing unsafe can be rendered by accident (the build may re-sanitise the original).
    Migration(
        "0002_interaction_safe_html",
        ("ALTER TABLE interactions ADD COLUMN content_safe_html TEXT",),
    ),
    # `@user@server` -> actor, found through WebFinger by publish and read by the build, so a
    # post's object.json and its Create both name the actor id (what Mastodon notifies on).
    Migration(
        "0003_mention_cache",
        (
            """CREATE TABLE mention_cache (
                acct TEXT PRIMARY KEY,
                actor_id TEXT NOT NULL,
                inbox TEXT NOT NULL,
                shared_inbox TEXT,
                profile_url TEXT,
                resolved_at TEXT NOT NULL
            ) STRICT""",
        ),
    ),
    # Remote actor documents as last fetched, so a like, boost or reply from a known account
    # needs no signed GET of its actor (the key fetch already fetched that same document).
    Migration(
        "0004_actor_cache",
        (
            """CREATE TABLE actor_cache (
                actor_id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                type TEXT NOT NULL,
                inbox TEXT NOT NULL,
                shared_inbox TEXT,
                preferred_username TEXT,
                handle TEXT,
                name TEXT,
                icon_url TEXT,
                profile_url TEXT,
                also_known_as TEXT NOT NULL,
                fetched_at TEXT NOT NULL
            ) STRICT""",
            "CREATE INDEX actor_cache_host ON actor_cache (host)",
        ),
    ),
    # The conversation on the page (issue 14): quotes and bare mentions are interactions too;
    # each one records the audience its author gave it (only public and unlisted are ever shown)
    # and, when held for the blog's author, why. SQLite cannot widen a CHECK in place, so the
    # table is rebuilt inside the migration's transaction. Quote authorizations the inbox grants
    # are kept so they can be served, and revoked, after the Accept that carried them.
    Migration(
        "0005_conversation",
        (
            """CREATE TABLE interactions_0005 (
                activity_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL
                    CHECK (kind IN ('like', 'announce', 'reply', 'quote', 'mention')),
                actor_id TEXT NOT NULL,
                object_id TEXT NOT NULL,
                reply_object_id TEXT,
                author_name TEXT,
                author_handle TEXT,
                author_avatar_url TEXT,
                author_profile_url TEXT,
                content_html TEXT,
                url TEXT,
                in_reply_to TEXT,
                published TEXT NOT NULL,
                received_at TEXT NOT NULL,
                updated TEXT,
                approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
                content_safe_html TEXT,
                visibility TEXT NOT NULL DEFAULT 'public'
                    CHECK (visibility IN ('public', 'unlisted', 'followers', 'direct')),
                held_reason TEXT
            ) STRICT""",
            """INSERT INTO interactions_0005 (activity_id, kind, actor_id, object_id,
                reply_object_id, author_name, author_handle, author_avatar_url,
                author_profile_url, content_html, url, in_reply_to, published, received_at,
                updated, approved, content_safe_html)
               SELECT activity_id, kind, actor_id, object_id, reply_object_id, author_name,
                author_handle, author_avatar_url, author_profile_url, content_html, url,
                in_reply_to, published, received_at, updated, approved, content_safe_html
               FROM interactions""",
            "DROP TABLE interactions",
            "ALTER TABLE interactions_0005 RENAME TO interactions",
            """CREATE UNIQUE INDEX interactions_reaction ON interactions (kind, actor_id, object_id)
                WHERE kind IN ('like', 'announce')""",
            """CREATE UNIQUE INDEX interactions_reply ON interactions (reply_object_id)
                WHERE reply_object_id IS NOT NULL""",
            "CREATE INDEX interactions_object ON interactions (object_id, published)",
            "CREATE INDEX interactions_received ON interactions (received_at)",
            "CREATE INDEX interactions_actor ON interactions (actor_id)",
            """CREATE TABLE quote_authorizations (
                authorization_id TEXT PRIMARY KEY,
                quoted_object_id TEXT NOT NULL,
                quoting_object_id TEXT NOT NULL,
                actor_id TEXT NOT NULL,
                body BLOB NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            ) STRICT""",
            "CREATE UNIQUE INDEX quote_authorizations_quoting"
            " ON quote_authorizations (quoting_object_id)",
            "CREATE INDEX quote_authorizations_actor ON quote_authorizations (actor_id)",
        ),
    ),
    # Quotes and count refreshes (issue 14): where a quoter's Accept and, on revocation, the
    # Delete of its authorization go; and the counts each post's last refresh announced, so
    # the service sends followers an Update only when they moved, and not too often.
    Migration(
        "0006_quote_counts",
        (
            "ALTER TABLE quote_authorizations ADD COLUMN inbox TEXT",
            """CREATE TABLE announced_counts (
                object_id TEXT PRIMARY KEY,
                replies INTEGER NOT NULL,
                likes INTEGER NOT NULL,
                shares INTEGER NOT NULL,
                sent_at TEXT NOT NULL
            ) STRICT""",
        ),
    ),
)

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS migrations (
    name TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
) STRICT"""


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names recorded in the database, in the order they were applied."""
    conn.execute(_MIGRATIONS_TABLE)
    rows = conn.execute("SELECT name FROM migrations ORDER BY rowid").fetchall()
    return [str(r[0]) for r in rows]


def apply_migrations(
    conn: sqlite3.Connection,
    path: Path,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now.

    `conn` must be in autocommit mode (isolation_level=None): transactions are explicit here.
    """
    known = {m.name for m in migrations}
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = applied_migrations(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StoreError(
            f"{path}: created by a newer fedipress (unknown migrations: {', '.join(unknown)}); "
            "upgrade fedipress to use this state database"
        )
    applied: list[str] = []
    for migration in migrations:
        if migration.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check inside the write lock: another process may have migrated meanwhile.
            row = conn.execute(
                "SELECT 1 FROM migrations WHERE name = ?", (migration.name,)
            ).fetchone()
            if row is None:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    # applied_at is bookkeeping for humans, so the database's clock is fine.
                    "INSERT INTO migrations (name, applied_at) "
                    "VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (migration.name,),
                )
                applied.append(migration.name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied
