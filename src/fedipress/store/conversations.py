"""The public conversation of each post, from the store's interactions: one rule for the build's
read-only snapshot and for the owner API's export.

What is public is decided here and only here: approved interactions addressed to the public
(unlisted included), their authors reduced to
plain text and checked URLs, reply HTML through the reply allowlist again at read time (so a
stricter allowlist also covers rows stored before it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from types import MappingProxyType

from ..activitypub.conversation import (
    Conversations,
    Person,
    PostConversation,
    Reaction,
    ReactionKind,
    Reply,
    sort_reactions,
    sort_replies,
)
from ..activitypub.remote_html import safe_handle, safe_name, safe_reply_html, safe_url
from .protocol import Interaction, Store

__all__ = [
    "export_conversations",
    "group_conversations",
    "is_private",
    "is_shown",
    "post_conversation",
]

_SHOWN = ("public", "unlisted")  # what its author made public; the rest is for the blog's author
_REACTIONS: dict[str, ReactionKind] = {"like": "like", "announce": "boost", "quote": "quote"}


def is_private(i: Interaction) -> bool:
    """Addressed to the author's followers or to a few people only: never shown or counted."""
    return i.visibility not in _SHOWN


def is_shown(i: Interaction) -> bool:
    """The rule for what appears on the blog and in the export: an approved reply, like, boost
    or quote its author made public. A bare mention (not a reply) never does."""
    return i.approved and not is_private(i) and (i.kind == "reply" or i.kind in _REACTIONS)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(i: Interaction) -> Person:
    return Person(
        id=i.actor_id,
        name=safe_name(i.author_name),
        handle=safe_handle(i.author_handle),
        url=safe_url(i.author_profile_url),
        avatar=safe_url(i.author_avatar_url, https_only=True),
    )


def post_conversation(object_id: str, interactions: Iterable[Interaction]) -> PostConversation:
    """The public part of one post's interactions."""
    replies: list[Reply] = []
    reactions: dict[ReactionKind, list[Reaction]] = {"like": [], "boost": [], "quote": []}
    for i in interactions:
        if i.object_id != object_id or not is_shown(i):
            continue
        if i.kind == "reply":
            replies.append(Reply(
                id=i.reply_object_id or i.activity_id,
                in_reply_to=i.in_reply_to or object_id,
                published=_iso(i.published),
                content_html=safe_reply_html(i.content_html or i.content_safe_html or ""),
                author=_person(i),
                url=safe_url(i.url),
                updated=_iso(i.updated) if i.updated else None,
            ))
        elif i.kind in _REACTIONS:
            kind = _REACTIONS[i.kind]
            reactions[kind].append(Reaction(kind, _person(i), _iso(i.published), safe_url(i.url)))
    return PostConversation(
        object_id,
        replies=sort_replies(replies),
        likes=sort_reactions(reactions["like"]),
        boosts=sort_reactions(reactions["boost"]),
        quotes=sort_reactions(reactions["quote"]),
    )


def group_conversations(actor: str, interactions: Iterable[Interaction]) -> Conversations:
    """Every post's public conversation from a flat list of interactions."""
    by_post: dict[str, list[Interaction]] = {}
    for i in interactions:
        by_post.setdefault(i.object_id, []).append(i)
    found = {oid: post_conversation(oid, rows) for oid, rows in sorted(by_post.items())}
    return Conversations(actor, MappingProxyType({k: v for k, v in found.items() if not v.empty}))


def export_conversations(store: Store, actor: str) -> Conversations:
    """The public conversation of every live post the store has announced."""
    rows: list[Interaction] = []
    for oid, entry in sorted(store.get_ledger().items()):
        if entry.state == "live" and not oid.endswith("#profile"):
            rows.extend(store.interactions_for_object(oid, approved_only=True))
    return group_conversations(actor, rows)
