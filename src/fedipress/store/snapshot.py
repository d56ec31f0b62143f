"""What the build reads from the state database: read-only, never creating or migrating it.

    state = read_build_state(default_store_path(config.state_dir))
    state.follower_count, state.interaction_counts, state.mentions, state.conversations

The build runs on machines without a store (CI, a fresh checkout) and beside a running inbox
service, so this opens the file with SQLite's `mode=ro` (no write lock, no journal changes)
and treats a missing file, a missing table (a database older than the mention cache) or a
busy/broken database as "nothing known": the build then publishes zero counts and unresolved
mentions, exactly as before the store existed.

A PostgreSQL store (a `postgresql://` location) is read the same way in one READ ONLY
transaction; a server that cannot be reached is logged as a warning (the build goes on with
nothing known rather than failing a deploy over counts).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from ..activitypub.conversation import Conversations

__all__ = ["BuildState", "read_build_state"]

_TIMEOUT = 5.0  # seconds to wait for a writer's lock; a build should not hang on the inbox
log = logging.getLogger(__name__)
Query = Callable[[str], list[tuple[object, ...]]]


@dataclass(frozen=True)
class BuildState:
    follower_count: int = 0
    # post object id -> {"replies": n, "likes": n, "shares": n} (plan_activitypub's shape)
    interaction_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    mentions: Mapping[str, str] = field(default_factory=dict)  # "user@server" -> actor id
    conversations: Conversations = field(default_factory=Conversations)


def _query(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # the table is not there yet (older database): nothing known


def read_build_state(path: Path | str, actor: str = "") -> BuildState:
    """Follower count, approved interaction counts, the mention cache and the public
    conversation of the store at `path` (a SQLite file or a postgresql:// URL; `actor` only
    labels the conversation)."""
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        return _read_postgresql(path, actor)
    if not Path(path).is_file():
        return BuildState()
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=_TIMEOUT)
    except sqlite3.Error:
        return BuildState()
    try:
        return _read(lambda sql: _query(conn, sql), actor)
    except sqlite3.Error:
        return BuildState()
    finally:
        conn.close()


def _read_postgresql(url: str, actor: str) -> BuildState:
    import psycopg

    from .postgres_base import redact_url

    try:
        with psycopg.connect(url, connect_timeout=int(_TIMEOUT)) as conn:
            conn.read_only = True

            def query(sql: str) -> list[tuple[object, ...]]:
                with conn.transaction(force_rollback=True):
                    try:
                        return list(conn.execute(sql.replace("%", "%%")).fetchall())
                    except psycopg.errors.UndefinedTable:
                        return []  # not migrated yet: nothing known

            return _read(query, actor)
    except psycopg.Error as exc:
        lines = str(exc).strip().splitlines()
        log.warning("%s: cannot read the store for follower and interaction counts (%s);"
                    " the build shows none", redact_url(url), lines[-1] if lines else exc)
        return BuildState()


def _read(query: Query, actor: str) -> BuildState:
    rows = query("SELECT COUNT(*) FROM followers WHERE state = 'accepted'")
    followers = int(str(rows[0][0])) if rows else 0
    counts: dict[str, dict[str, int]] = {}
    for oid, likes, shares, replies in query(
        "SELECT object_id,"
        " SUM(CASE WHEN kind = 'like' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN kind = 'announce' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN kind = 'reply' THEN 1 ELSE 0 END)"
        " FROM interactions WHERE approved = 1"
        " AND visibility IN ('public', 'unlisted') GROUP BY object_id",
    ):
        counts[str(oid)] = {
            "replies": int(str(replies)),
            "likes": int(str(likes)),
            "shares": int(str(shares)),
        }
    mentions = {
        str(acct): str(actor_id)
        for acct, actor_id in query("SELECT acct, actor_id FROM mention_cache")
    }
    # Imported here: a build without a store never loads the store's code (build speed).
    from .conversations import group_conversations
    from .sqlite_inbox import INTERACTION_COLUMNS, interaction_from_row

    rows = query(
        f"SELECT {INTERACTION_COLUMNS} FROM interactions WHERE approved = 1 AND object_id IN"
        " (SELECT object_id FROM ledger WHERE state = 'live')",
    )
    conversations = group_conversations(
        actor, (interaction_from_row(cast(Any, r)) for r in rows))
    return BuildState(followers, counts, mentions, conversations)
