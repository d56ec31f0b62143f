"""What the build reads from the state database: read-only, never creating or migrating it.

    state = read_build_state(default_store_path(config.state_dir))
    state.follower_count, state.interaction_counts, state.mentions, state.conversations

The build runs on machines without a store (CI, a fresh checkout) and beside a running inbox
service, so this opens the file with SQLite's `mode=ro` (no write lock, no journal changes)
and treats a missing file, a missing table (a database older than the mention cache) or a
busy/broken database as "nothing known": the build then publishes zero counts and unresolved
mentions, exactly as before the store existed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from ..activitypub.conversation import Conversations

__all__ = ["BuildState", "read_build_state"]

_TIMEOUT = 5.0  # seconds to wait for a writer's lock; a build should not hang on the inbox


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


def read_build_state(path: Path, actor: str = "") -> BuildState:
    """Follower count, approved interaction counts, the mention cache and the public
    conversation of `path` (`actor` only labels the conversation)."""
    if not Path(path).is_file():
        return BuildState()
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=_TIMEOUT)
    except sqlite3.Error:
        return BuildState()
    try:
        rows = _query(conn, "SELECT COUNT(*) FROM followers WHERE state = 'accepted'")
        followers = int(str(rows[0][0])) if rows else 0
        counts: dict[str, dict[str, int]] = {}
        for oid, likes, shares, replies in _query(
            conn,
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
            str(acct): str(actor)
            for acct, actor in _query(conn, "SELECT acct, actor_id FROM mention_cache")
        }
        # Imported here: a build without a store never loads the store's code (build speed).
        from .conversations import group_conversations
        from .sqlite_inbox import INTERACTION_COLUMNS, interaction_from_row

        rows = _query(
            conn,
            f"SELECT {INTERACTION_COLUMNS} FROM interactions WHERE approved = 1 AND object_id IN"
            " (SELECT object_id FROM ledger WHERE state = 'live')",
        )
        conversations = group_conversations(
            actor, (interaction_from_row(cast(Any, r)) for r in rows))
        return BuildState(followers, counts, mentions, conversations)
    except sqlite3.Error:
        return BuildState()
    finally:
        conn.close()
