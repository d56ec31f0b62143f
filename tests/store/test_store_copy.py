"""`store copy` of issue 14's rows: a SQLite store holding replies with an audience and a held
reason, bare mentions, quotes, quote authorizations (one revoked) and announced counts arrives
on PostgreSQL row for row, counted on both sides; and comes back through copy_to_sqlite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from fedipress.store import (
    AnnouncedCounts,
    Interaction,
    LedgerEntry,
    QuoteAuthorization,
    StoreParts,
    open_store,
)
from fedipress.store.snapshot import read_build_state
from fedipress.store.transfer import copy_to_postgresql, copy_to_sqlite
from support.postgres import PostgresCluster

POST = "https://blog.example/posts/a/object.json"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def _fill(store: StoreParts) -> None:
    store.plan_publication([], [], [LedgerEntry(POST, "h", NOW, NOW, "live", None)], NOW)
    for n, (kind, visibility, approved, held) in enumerate([
        ("reply", "public", True, None),
        ("reply", "unlisted", False, "first reply from this account"),
        ("reply", "followers", True, None),
        ("mention", "direct", False, "a direct mention"),
        ("quote", "public", True, None),
        ("like", "public", True, None),
    ]):
        when = NOW + timedelta(minutes=n)
        assert store.add_interaction(Interaction(
            f"https://r.example/a/{n}", kind, f"https://r.example/u/{n}", POST, when, when,  # type: ignore[arg-type]
            content_html=f"<p>{n} 100%</p>", reply_object_id=f"https://r.example/n/{n}"
            if kind != "like" else None, visibility=visibility, approved=approved,  # type: ignore[arg-type]
            held_reason=held))
    for n in (1, 2):
        assert store.put_quote_authorization(QuoteAuthorization(
            f"https://blog.example/qa/{n}", POST, f"https://r.example/n/q{n}",
            "https://r.example/u/4", b'{"bytes": "\x00\xff"}', NOW, inbox="https://r.example/in"))
    assert store.revoke_quote_authorization("https://blog.example/qa/2", NOW + timedelta(hours=1))
    store.put_announced_counts(AnnouncedCounts(POST, 2, 1, 0, NOW))


def _dump(store: StoreParts) -> dict[str, object]:
    return {
        "interactions": store.interactions_for_object(POST, approved_only=False),
        "written": store.written_interactions(),
        "quotes": [store.get_quote_authorization(f"https://blog.example/qa/{n}") for n in (1, 2)],
        "active": store.active_quote_authorizations(),
        "counts": store.announced_counts(),
    }


def test_copy_moves_conversation_quotes_and_counts(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    source = tmp_path / "state.db"
    with open_store(source) as store:
        _fill(store)
        expected = _dump(store)
    url = postgres.create_database()
    report = copy_to_postgresql(source, url)
    counts = dict(report.counts)
    assert (counts["interactions"], counts["quote_authorizations"],
            counts["announced_counts"]) == (6, 2, 1)
    with open_store(url) as copied:
        assert _dump(copied) == expected
        # Held and private rows keep their audience and reason, not only their count.
        row = next(i for i in copied.written_interactions() if i.activity_id.endswith("/1"))
        assert (row.visibility, row.approved, row.held_reason) == (
            "unlisted", False, "first reply from this account")
    with psycopg.connect(url) as conn:
        [(inbox,)] = conn.execute(
            "SELECT DISTINCT inbox FROM quote_authorizations").fetchall()
        assert inbox == "https://r.example/in"
    conversation = read_build_state(url).conversations.for_post(POST)
    assert conversation is not None and len(conversation.replies) == 1
    assert len(conversation.quotes) == 1 and len(conversation.likes) == 1
    assert read_build_state(url).conversations == read_build_state(source).conversations

    back = tmp_path / "back.db"
    copy_to_sqlite(url, back)
    with open_store(back) as returned:
        assert _dump(returned) == expected
