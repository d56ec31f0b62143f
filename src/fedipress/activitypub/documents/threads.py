"""A post's thread as ActivityPub sees it: its replies (a paged collection), likes and shares
(counted collections), the conversation it starts (`context`), and the interaction policy that
says who may quote, reply, like and boost it. Pure.

Mastodon embeds `replies` in every post and, since 4.4, shows the like and boost counts the
origin publishes in `likes` and `shares`; some servers refuse a post whose collections are bare
links. So every post object embeds all three, with `totalItems`, and the first page of replies:

    "replies": {"id": ".../replies.json", "type": "OrderedCollection", "totalItems": 3,
                "first": {"type": "OrderedCollectionPage", "partOf": ..., "orderedItems": [...],
                          "next": ".../replies/page-2.json"}}

Pages after the first are files of their own (`replies/page-N.json`, `context/page-N.json`
beside object.json), written by the build. The same functions build the collections the
service puts into a count refresh (federation/quotes.py), from the same `Thread`.

The quote policy (FEP-044f, as Mastodon 4.5 reads it) is written with GoToSocial's current
terms (`automaticApproval`); `read_approval` also understands the older ones (`always`,
`approvalRequired`) so a policy written either way is read the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .ids import PUBLIC

__all__ = [
    "NO_THREAD",
    "QUOTE_POLICIES",
    "THREAD_PAGE_SIZE",
    "Approval",
    "QuotePolicy",
    "Thread",
    "ThreadKind",
    "context_collection",
    "context_id",
    "counted_collection",
    "interaction_policy",
    "likes_id",
    "page_count",
    "read_approval",
    "replies_collection",
    "replies_id",
    "shares_id",
    "thread_page",
    "thread_page_path",
]

THREAD_PAGE_SIZE = 20  # reply ids per page (Mastodon's first page holds 5; ids are short)
QuotePolicy = Literal["anyone", "followers", "nobody"]
QUOTE_POLICIES: tuple[QuotePolicy, ...] = ("anyone", "followers", "nobody")
# Spellings of the public audience a policy may use (compacted or not).
_PUBLIC_NAMES = frozenset({PUBLIC, "as:Public", "Public"})


@dataclass(frozen=True)
class Thread:
    """What is public of one post's conversation: the approved public replies' ids (oldest
    first, replies to replies included) and how many liked and boosted it."""

    replies: tuple[str, ...] = ()
    likes: int = 0
    shares: int = 0


NO_THREAD = Thread()

ThreadKind = Literal["replies", "context"]


def replies_id(post_url: str) -> str:
    return post_url + "replies.json"


def likes_id(post_url: str) -> str:
    return post_url + "likes.json"


def shares_id(post_url: str) -> str:
    return post_url + "shares.json"


def context_id(post_url: str) -> str:
    """The conversation the post starts (FEP-7888 `context`): a collection of the post and
    every public reply in its thread."""
    return post_url + "context.json"


def thread_page_path(kind: ThreadKind, number: int) -> str:
    """Page `number` of a post's replies or context, relative to the post's folder."""
    return f"{kind}/page-{number}.json"


def page_count(total: int, page_size: int = THREAD_PAGE_SIZE) -> int:
    """Pages of a collection of `total` items; at least one, so `first` always exists."""
    return max(1, -(-total // page_size))


def _items(kind: ThreadKind, object_id: str, thread: Thread) -> Sequence[str]:
    return thread.replies if kind == "replies" else (object_id, *thread.replies)


def thread_page(kind: ThreadKind, post_url: str, object_id: str, thread: Thread, number: int,
                *, page_size: int = THREAD_PAGE_SIZE) -> dict[str, Any]:
    """Page `number` (1-based) of the post's replies or context. The first page is embedded in
    its collection and has no id of its own, as Mastodon writes it; later pages are files."""
    items = _items(kind, object_id, thread)
    pages = page_count(len(items), page_size)
    if not 1 <= number <= pages:
        raise ValueError(f"{kind} page {number} out of range 1..{pages}")
    collection = replies_id(post_url) if kind == "replies" else context_id(post_url)
    page: dict[str, Any] = {}
    if number > 1:
        page["id"] = post_url + thread_page_path(kind, number)
    page["type"] = "OrderedCollectionPage"
    page["partOf"] = collection
    page["orderedItems"] = list(items[(number - 1) * page_size : number * page_size])
    if number < pages:
        page["next"] = post_url + thread_page_path(kind, number + 1)
    if number > 2:  # page 1 is only ever embedded: nothing to point back to
        page["prev"] = post_url + thread_page_path(kind, number - 1)
    return page


def replies_collection(post_url: str, thread: Thread, *,
                       page_size: int = THREAD_PAGE_SIZE) -> dict[str, Any]:
    """The post's `replies`: every approved public reply in its thread, first page embedded."""
    return {
        "id": replies_id(post_url),
        "type": "OrderedCollection",
        "totalItems": len(thread.replies),
        "first": thread_page("replies", post_url, "", thread, 1, page_size=page_size),
    }


def context_collection(post_url: str, object_id: str, actor: str, thread: Thread, *,
                       page_size: int = THREAD_PAGE_SIZE) -> dict[str, Any]:
    """The conversation (FEP-7888): the post first, then its public replies, owned by the
    blog's actor."""
    return {
        "id": context_id(post_url),
        "type": "OrderedCollection",
        "attributedTo": actor,
        "totalItems": 1 + len(thread.replies),
        "first": thread_page("context", post_url, object_id, thread, 1, page_size=page_size),
    }


def counted_collection(collection_id: str, total: int) -> dict[str, Any]:
    """A collection that publishes its size only (likes, shares): who liked is not listed."""
    return {"id": collection_id, "type": "Collection", "totalItems": total}


# --- interaction policy ----------------------------------------------------------------------


def interaction_policy(quotes: QuotePolicy, actor: str, followers: str) -> dict[str, Any]:
    """`interactionPolicy` of a post: `canQuote` from the quote policy (the author may always
    quote their own post), and `canReply`, `canLike`, `canAnnounce` open to everyone (they are
    informational: the blog cannot stop a reply, it can only decline to show it)."""
    if quotes == "anyone":
        quoters = [PUBLIC]
    elif quotes == "followers":
        quoters = [followers, actor]
    else:
        quoters = [actor]
    return {
        "canQuote": {"automaticApproval": quoters},
        "canReply": {"automaticApproval": [PUBLIC]},
        "canLike": {"automaticApproval": [PUBLIC]},
        "canAnnounce": {"automaticApproval": [PUBLIC]},
    }


@dataclass(frozen=True)
class Approval:
    """One rule of an interaction policy (`canQuote`, say), as read from any server: who is
    approved at once, who needs the author's approval. Empty when the rule is absent."""

    automatic: tuple[str, ...] = ()
    manual: tuple[str, ...] = ()

    def decide(self, actor: str, *, follower_of: str | None = None) -> str | None:
        """"automatic", "manual" or None (not allowed) for `actor`; `follower_of` is the
        followers collection `actor` belongs to, when it follows the policy's author."""
        def covers(audience: tuple[str, ...]) -> bool:
            return any(a in _PUBLIC_NAMES or a == actor or (follower_of and a == follower_of)
                       for a in audience)

        if covers(self.automatic):
            return "automatic"
        if covers(self.manual):
            return "manual"
        return None


def _audience(value: Any) -> tuple[str, ...]:
    """A policy's list of actors and collections: a string, an object with an id, or a list
    of either (other shapes are ignored)."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items[:100]:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
            out.append(item["id"])
    return tuple(out)


def read_approval(policy: Any, rule: str = "canQuote") -> Approval:
    """Rule `rule` of an `interactionPolicy` value, in either GoToSocial vocabulary:
    `automaticApproval` / `manualApproval` (current, what Mastodon 4.5 writes) or `always` /
    `approvalRequired` (GoToSocial before 0.19). Both spellings of a rule are merged; anything
    unreadable reads as "nobody", which is what a missing policy means to Mastodon."""
    if not isinstance(policy, Mapping):
        return Approval()
    entry = policy.get(rule)
    if not isinstance(entry, Mapping):
        return Approval()
    automatic = _audience(entry.get("automaticApproval")) + _audience(entry.get("always"))
    manual = _audience(entry.get("manualApproval")) + _audience(entry.get("approvalRequired"))
    return Approval(tuple(dict.fromkeys(automatic)), tuple(dict.fromkeys(manual)))
