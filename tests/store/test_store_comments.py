"""The store's side of `fedipress comments` and of edits and deletions of replies and mentions,
on a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.store import Interaction, SQLiteStore, open_store

POST = "https://blog.example/posts/a/object.json"
ACTOR = "https://blog.example/actor.json"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = open_store(tmp_path / "state.db")
    minutes = iter(range(100))

    def add(activity: str, kind: str, obj: str = POST, **kw: object) -> None:
        when = NOW + timedelta(minutes=next(minutes))
        assert s.add_interaction(Interaction(activity, kind, "https://r.example/u",  # type: ignore[arg-type]
                                             obj, when, when, **kw))  # type: ignore[arg-type]

    add("https://r.example/like/1", "like")
    add("https://r.example/create/2", "reply", reply_object_id="https://r.example/n/2",
        content_html="<p>reply</p>")
    add("https://r.example/create/3", "mention", ACTOR, reply_object_id="https://r.example/n/3",
        visibility="direct", approved=False)
    add("https://r.example/quote/4", "quote", reply_object_id="https://r.example/n/4")
    yield s
    s.close()


def test_written_interactions_are_replies_quotes_and_mentions_newest_first(
    store: SQLiteStore,
) -> None:
    assert [i.activity_id for i in store.written_interactions()] == [
        "https://r.example/quote/4", "https://r.example/create/3", "https://r.example/create/2"]


def test_get_written_finds_replies_and_mentions_by_object_or_create_id(
    store: SQLiteStore,
) -> None:
    found = store.get_written("https://r.example/n/3")
    assert found is not None and found.kind == "mention"
    by_create = store.get_written("https://r.example/create/2")
    assert by_create is not None and by_create.kind == "reply"
    assert store.get_written("https://r.example/like/1") is None
    assert store.get_reply("https://r.example/n/3") is None  # replies to replies: replies only


def test_review_sets_approval_reason_and_narrows_only_when_asked(store: SQLiteStore) -> None:
    assert store.review_interaction("https://r.example/create/2", approved=False,
                                    held_reason="hidden")
    reply = store.get_written("https://r.example/n/2")
    assert reply is not None and (reply.approved, reply.held_reason) == (False, "hidden")
    assert reply.visibility == "public"  # kept when not given
    store.review_interaction("https://r.example/create/2", approved=True, held_reason=None,
                             visibility="followers")
    reply = store.get_written("https://r.example/n/2")
    assert reply is not None and (reply.approved, reply.visibility) == (True, "followers")
    assert not store.review_interaction("https://nowhere.example/x", approved=True,
                                        held_reason=None)


def test_mentions_are_edited_and_deleted_by_their_author_only(store: SQLiteStore) -> None:
    assert not store.update_reply("https://r.example/n/3", "https://x.example/other", "<p>x</p>",
                                  NOW)
    assert store.update_reply("https://r.example/n/3", "https://r.example/u", "<p>edit</p>", NOW)
    assert not store.delete_reply("https://r.example/n/3", "https://x.example/other")
    assert store.delete_reply("https://r.example/n/3", "https://r.example/u")
    assert store.get_written("https://r.example/n/3") is None
