"""A post's public conversation for page tests: a thread deeper than the page nests, more
likes than it shows faces for, a boost, a quote, an edited reply, a person without avatar.

Shared by the generator's page tests and the build's data-source tests."""

from __future__ import annotations

from types import MappingProxyType

from fedipress.activitypub.conversation import (
    Conversations,
    Person,
    PostConversation,
    Reaction,
    Reply,
)


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
