"""A post's public conversation for page tests: a thread deeper than the page nests, more
likes than it shows faces for, a boost, a quote, an edited reply, a person without avatar.

Shared by the generator's page tests and the build's data-source tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fedipress.activitypub.conversation import (
    Conversations,
    Person,
    PostConversation,
    Reaction,
    Reply,
)
from fedipress.store import LedgerEntry, open_store
from fedipress.store.protocol import Interaction


def person(n: int, *, avatar: bool = True, name: str | None = None) -> Person:
    server = f"server{n % 3}.example"
    return Person(
        id=f"https://{server}/users/p{n}",
        name=f"Person {n}" if name is None else name,
        handle=f"p{n}@{server}",
        url=f"https://{server}/@p{n}",
        avatar=f"https://{server}/avatars/p{n}.png" if avatar else None,
    )


def reply(n: int, parent: str, minute: int, *, author: Person | None = None,
          updated: str | None = None, html: str | None = None) -> Reply:
    who = author or person(n)
    return Reply(
        id=f"https://{who.handle.split('@')[1]}/notes/r{n}",
        in_reply_to=parent,
        published=f"2026-05-01T10:{minute:02d}:00Z",
        content_html=html if html is not None else f"<p>Reply number {n}</p>",
        author=who,
        url=f"https://{who.handle.split('@')[1]}/@{who.handle.split('@')[0]}/r{n}",
        updated=updated,
    )


def thread_conversation(object_id: str, *, likes: int = 15) -> PostConversation:
    """r1 -> r2 -> r3 -> r4 -> r5 (five deep), r6 a second top-level reply (edited, by a
    person without avatar), `likes` likes, one boost, one quote."""
    rid = reply(1, object_id, 1).id
    chain = [reply(1, object_id, 1)]
    for n in range(2, 6):
        chain.append(reply(n, chain[-1].id, n))
    assert chain[0].id == rid
    edited = reply(6, object_id, 10, author=person(6, avatar=False),
                   updated="2026-05-02T08:00:00Z")
    reactions = tuple(
        Reaction("like", person(100 + i), f"2026-05-01T11:{i:02d}:00Z") for i in range(likes)
    )
    return PostConversation(
        object_id=object_id,
        replies=(*chain, edited),
        likes=reactions,
        boosts=(Reaction("boost", person(200), "2026-05-01T12:00:00Z"),),
        quotes=(Reaction("quote", person(300), "2026-05-01T13:00:00Z",
                         url="https://server0.example/notes/quoting"),),
    )


def conversations_for(actor: str, *convs: PostConversation) -> Conversations:
    return Conversations(actor, MappingProxyType({c.object_id: c for c in convs}))


def seed_store(path: Path | str, object_id: str) -> None:
    """A real store with `object_id` announced (live) and a public conversation on it: a
    reply, a reply to it (edited), a like, a boost and a quote; plus what must never show: a
    followers-only reply ("SECRET-FOLLOWERS"), a direct message ("SECRET-DIRECT") and a held
    reply ("SECRET-HELD")."""
    when = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    store = open_store(path)
    try:
        store.plan_publication([], [], [LedgerEntry(object_id, "h", when, when, "live", None)],
                               when)
        alice, bob = person(1), person(2, avatar=False)

        def add(n: int, kind: Any, who: Person, **kw: Any) -> None:
            store.add_interaction(Interaction(
                activity_id=f"https://{who.handle.split('@')[1]}/activities/{n}", kind=kind,
                actor_id=who.id, object_id=object_id,
                published=when.replace(minute=n), received_at=when.replace(minute=n),
                author_name=who.name, author_handle=who.handle,
                author_avatar_url=who.avatar, author_profile_url=who.url, **kw))

        first = "https://server1.example/notes/1"
        add(1, "reply", alice, reply_object_id=first, in_reply_to=object_id,
            content_html="<p>First reply</p>", url="https://server1.example/@p1/1")
        add(2, "reply", bob, reply_object_id="https://server2.example/notes/2",
            in_reply_to=first, content_html="<p>Answer to the first</p>",
            url="https://server2.example/@p2/2", updated=when.replace(hour=11))
        add(3, "like", bob)
        add(4, "announce", alice)
        add(5, "quote", person(3), url="https://server0.example/notes/quoting")
        add(6, "reply", person(4), reply_object_id="https://server1.example/notes/6",
            in_reply_to=object_id, content_html="<p>SECRET-FOLLOWERS</p>",
            visibility="followers")
        add(7, "reply", person(5), reply_object_id="https://server2.example/notes/7",
            in_reply_to=object_id, content_html="<p>SECRET-DIRECT</p>", visibility="direct")
        add(8, "reply", person(6), reply_object_id="https://server0.example/notes/8",
            in_reply_to=object_id, content_html="<p>SECRET-HELD</p>", approved=False,
            held_reason="not a follower")
    finally:
        store.close()


def add_like(path: Path, object_id: str, n: int) -> None:
    who = person(n)
    when = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
    store = open_store(path)
    try:
        store.add_interaction(Interaction(
            activity_id=f"{who.id}/likes/{n}", kind="like", actor_id=who.id,
            object_id=object_id, published=when, received_at=when, author_name=who.name,
            author_handle=who.handle, author_profile_url=who.url))
    finally:
        store.close()
