"""Migration 0005 keeps every stored interaction, widens the kinds and adds the audience."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from fedipress.store import Interaction, open_store
from fedipress.store.migrations import MIGRATIONS, apply_migrations
from fedipress.store.snapshot import read_build_state

POST = "https://blog.example/posts/a/object.json"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def test_interactions_survive_and_new_kinds_fit(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path, isolation_level=None)
    before = [m for m in MIGRATIONS if m.name < "0005"]
    apply_migrations(conn, path, before)
    conn.execute(
        "INSERT INTO interactions (activity_id, kind, actor_id, object_id, reply_object_id,"
        " content_html, published, received_at, approved, content_safe_html)"
        " VALUES ('https://r.example/a/1', 'reply', 'https://r.example/u', ?,"
        " 'https://r.example/n/1', '<p>old</p>', '2026-05-01T10:00:00.000000Z',"
        " '2026-05-01T10:00:00.000000Z', 1, '<p>old</p>')", (POST,))
    conn.execute("INSERT INTO ledger VALUES (?, 'h', '2026-05-01T10:00:00.000000Z',"
                 " '2026-05-01T10:00:00.000000Z', 'live', NULL)", (POST,))
    conn.close()

    store = open_store(path)
    try:
        [old] = store.interactions_for_object(POST)
        assert old.visibility == "public" and old.content_html == "<p>old</p>"
        assert store.add_interaction(Interaction(
            "https://q.example/a/2", "quote", "https://q.example/u", POST, NOW, NOW,
            reply_object_id="https://q.example/n/2", url="https://q.example/@u/2"))
        assert store.add_interaction(Interaction(
            "https://f.example/a/3", "reply", "https://f.example/u", POST, NOW, NOW,
            content_html="<p>just us</p>", reply_object_id="https://f.example/n/3",
            visibility="followers"))
    finally:
        store.close()

    state = read_build_state(path, "https://blog.example/actor.json")
    conv = state.conversations.for_post(POST)
    assert conv is not None
    assert [r.content_html for r in conv.replies] == ["<p>old</p>"]  # followers-only left out
    assert [q.url for q in conv.quotes] == ["https://q.example/@u/2"]
    assert state.interaction_counts[POST]["replies"] == 1
