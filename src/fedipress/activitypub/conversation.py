"""The public conversation around the blog's posts: the one shape the store, the owner API and the
build agree on.

    conversations = Conversations.from_json(data)      # the owner API's export, or
    conversations = read_conversations(path)            # the local store, read-only
    conversations.for_post(post.object_id)              # -> PostConversation | None

Everything here is already public and already safe: the reader of the store (or the service's
export) keeps only what its author addressed to the public and the blog's author let through, and
every string a remote server wrote has been reduced to plain text (names, handles) or to the strict
reply allowlist (content). Builders still escape on output; this is the second wall, not the only
one.

Pure: data in, data out. Ordering is fixed (replies by time then id, reactions by time then actor),
so the same conversation always gives the same JSON and the same pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "EXPORT_FORMAT",
    "Conversations",
    "Person",
    "PostConversation",
    "Reaction",
    "ReactionKind",
    "Reply",
    "sort_reactions",
    "sort_replies",
]

EXPORT_FORMAT = 1

ReactionKind = Literal["like", "boost", "quote"]
_REACTION_KINDS: tuple[ReactionKind, ...] = ("like", "boost", "quote")


@dataclass(frozen=True)
class Person:
    """Who wrote a reply or reacted: plain text only, URLs http(s) only (avatar https only)."""

    id: str
    name: str = ""
    handle: str = ""  # "user@server", without the leading "@"
    url: str | None = None
    avatar: str | None = None


@dataclass(frozen=True)
class Reply:
    """A public, shown reply. `in_reply_to` is the post's object id or another reply's `id`."""

    id: str
    in_reply_to: str
    published: str  # ISO 8601 UTC, "2024-05-01T10:00:00Z"
    content_html: str  # sanitised to the reply allowlist
    author: Person
    url: str | None = None  # the original, on the author's server
    updated: str | None = None  # set when the author edited it


@dataclass(frozen=True)
class Reaction:
    """A like, boost or quote. For a quote, `url` is the quoting post (an http(s) URL)."""

    kind: ReactionKind
    actor: Person
    published: str
    url: str | None = None


@dataclass(frozen=True)
class PostConversation:
    object_id: str
    replies: tuple[Reply, ...] = ()
    likes: tuple[Reaction, ...] = ()
    boosts: tuple[Reaction, ...] = ()
    quotes: tuple[Reaction, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.replies or self.likes or self.boosts or self.quotes)


_NONE: Mapping[str, PostConversation] = MappingProxyType({})


@dataclass(frozen=True)
class Conversations:
    """Every post's public conversation, keyed by the post's object id."""

    actor: str = ""
    objects: Mapping[str, PostConversation] = field(default_factory=lambda: _NONE)

    def for_post(self, object_id: str) -> PostConversation | None:
        return self.objects.get(object_id)

    # --- JSON: the owner API's export ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "actor": self.actor,
            "objects": {
                oid: _post_json(conv)
                for oid, conv in sorted(self.objects.items())
                if not conv.empty
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Conversations:
        """Read an export; ValueError names the first field that is not as documented."""
        if not isinstance(data, Mapping):
            raise ValueError("the conversation export is not a JSON object")
        if data.get("format") != EXPORT_FORMAT:
            raise ValueError(
                f"the conversation export has format {data.get('format')!r};"
                f" this fedipress reads format {EXPORT_FORMAT}: update fedipress or the service"
            )
        objects = data.get("objects")
        if not isinstance(objects, Mapping):
            raise ValueError("the conversation export has no 'objects' mapping")
        read: dict[str, PostConversation] = {}
        for oid, conv in objects.items():
            read[_str(oid, "object id")] = _post_from(oid, conv)
        return cls(_str(data.get("actor", ""), "actor"), MappingProxyType(read))


def sort_replies(replies: list[Reply]) -> tuple[Reply, ...]:
    return tuple(sorted(replies, key=lambda r: (r.published, r.id)))


def sort_reactions(reactions: list[Reaction]) -> tuple[Reaction, ...]:
    return tuple(sorted(reactions, key=lambda r: (r.published, r.actor.id, r.url or "")))


def _person_json(p: Person) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "handle": p.handle, "url": p.url, "avatar": p.avatar}


def _reaction_json(r: Reaction) -> dict[str, Any]:
    return {"kind": r.kind, "actor": _person_json(r.actor), "published": r.published, "url": r.url}


def _post_json(conv: PostConversation) -> dict[str, Any]:
    return {
        "replies": [
            {"id": r.id, "in_reply_to": r.in_reply_to, "published": r.published,
             "updated": r.updated, "url": r.url, "content_html": r.content_html,
             "author": _person_json(r.author)}
            for r in sort_replies(list(conv.replies))
        ],
        "likes": [_reaction_json(r) for r in sort_reactions(list(conv.likes))],
        "boosts": [_reaction_json(r) for r in sort_reactions(list(conv.boosts))],
        "quotes": [_reaction_json(r) for r in sort_reactions(list(conv.quotes))],
    }


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"the conversation export's {what} is not a string")
    return value


def _opt(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _person_from(value: Any, where: str) -> Person:
    if not isinstance(value, Mapping):
        raise ValueError(f"the conversation export's {where} is not an object")
    return Person(
        id=_str(value.get("id"), f"{where}.id"),
        name=_str(value.get("name") or "", f"{where}.name"),
        handle=_str(value.get("handle") or "", f"{where}.handle"),
        url=_opt(value.get("url"), f"{where}.url"),
        avatar=_opt(value.get("avatar"), f"{where}.avatar"),
    )


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"the conversation export's {where} is not a list")
    return value


def _post_from(oid: str, value: Any) -> PostConversation:
    if not isinstance(value, Mapping):
        raise ValueError(f"the conversation export's entry for {oid} is not an object")
    replies = []
    for n, item in enumerate(_list(value.get("replies"), f"{oid} replies")):
        where = f"{oid} replies[{n}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"the conversation export's {where} is not an object")
        replies.append(Reply(
            id=_str(item.get("id"), f"{where}.id"),
            in_reply_to=_str(item.get("in_reply_to"), f"{where}.in_reply_to"),
            published=_str(item.get("published"), f"{where}.published"),
            content_html=_str(item.get("content_html") or "", f"{where}.content_html"),
            author=_person_from(item.get("author"), f"{where}.author"),
            url=_opt(item.get("url"), f"{where}.url"),
            updated=_opt(item.get("updated"), f"{where}.updated"),
        ))
    groups: dict[str, list[Reaction]] = {"likes": [], "boosts": [], "quotes": []}
    for key, kind in zip(groups, _REACTION_KINDS, strict=True):
        for n, item in enumerate(_list(value.get(key), f"{oid} {key}")):
            where = f"{oid} {key}[{n}]"
            if not isinstance(item, Mapping):
                raise ValueError(f"the conversation export's {where} is not an object")
            groups[key].append(Reaction(
                kind=kind,
                actor=_person_from(item.get("actor"), f"{where}.actor"),
                published=_str(item.get("published"), f"{where}.published"),
                url=_opt(item.get("url"), f"{where}.url"),
            ))
    return PostConversation(
        object_id=oid,
        replies=sort_replies(replies),
        likes=sort_reactions(groups["likes"]),
        boosts=sort_reactions(groups["boosts"]),
        quotes=sort_reactions(groups["quotes"]),
    )
