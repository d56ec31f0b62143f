"""The store's side of `fedipress comments` and of edits and deletions of replies and mentions,
on both engines (a real SQLite file and a real PostgreSQL database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from fedipress.store import Interaction, StoreParts

POST = "https://blog.example/posts/a/object.json"
ACTOR = "https://blog.example/actor.json"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def written(store: StoreParts) -> Iterator[StoreParts]:
    """The engine's store (conftest: SQLite and PostgreSQL) holding a like, a reply, a held
    direct mention and a quote, a minute apart."""
    s = store
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


def test_written_interactions_are_replies_quotes_and_mentions_newest_first(
    written: StoreParts,
) -> None:
    assert [i.activity_id for i in written.written_interactions()] == [
        "https://r.example/quote/4", "https://r.example/create/3", "https://r.example/create/2"]


def test_get_written_finds_replies_and_mentions_by_object_or_create_id(
    written: StoreParts,
) -> None:
    found = written.get_written("https://r.example/n/3")
    assert found is not None and found.kind == "mention"
    by_create = written.get_written("https://r.example/create/2")
    assert by_create is not None and by_create.kind == "reply"
    assert written.get_written("https://r.example/like/1") is None
    assert written.get_reply("https://r.example/n/3") is None  # replies to replies: replies only


def test_review_sets_approval_reason_and_narrows_only_when_asked(written: StoreParts) -> None:
    assert written.review_interaction("https://r.example/create/2", approved=False,
                                    held_reason="hidden")
    reply = written.get_written("https://r.example/n/2")
    assert reply is not None and (reply.approved, reply.held_reason) == (False, "hidden")
    assert reply.visibility == "public"  # kept when not given
    written.review_interaction("https://r.example/create/2", approved=True, held_reason=None,
                             visibility="followers")
    reply = written.get_written("https://r.example/n/2")
    assert reply is not None and (reply.approved, reply.visibility) == (True, "followers")
    assert not written.review_interaction("https://nowhere.example/x", approved=True,
                                        held_reason=None)


def test_mentions_are_edited_and_deleted_by_their_author_only(written: StoreParts) -> None:
    assert not written.update_reply("https://r.example/n/3", "https://x.example/other", "<p>x</p>",
                                  NOW)
    assert written.update_reply("https://r.example/n/3", "https://r.example/u", "<p>edit</p>", NOW)
    assert not written.delete_reply("https://r.example/n/3", "https://x.example/other")
    assert written.delete_reply("https://r.example/n/3", "https://r.example/u")
    assert written.get_written("https://r.example/n/3") is None
