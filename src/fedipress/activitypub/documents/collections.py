"""Collections: the outbox and its pages, followers, following, featured, and each post's
replies (and their pages), likes, shares and conversation (context), as files of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring as _encode_string
from typing import Any

from ...model import Post, Site
from .activities import create_activity
from .context import (
    AS_CONTEXT,
    SEC_CONTEXT,
    _context,
    _context_terms,
    _used_terms,
    _without_context,
    with_context,
)
from .ids import PUBLIC, _followers_id, actor_id, object_id
from .json_text import PreparedObject, _Fragment, _write_plain, indented_json, serialize
from .objects import federated_posts, object_document
from .threads import (
    NO_THREAD,
    Thread,
    ThreadKind,
    context_collection,
    counted_collection,
    likes_id,
    replies_collection,
    shares_id,
    thread_page,
)

__all__ = [
    "OUTBOX_PAGE_SIZE",
    "context_document",
    "featured_document",
    "followers_document",
    "following_document",
    "likes_document",
    "outbox_document",
    "outbox_page",
    "outbox_page_count",
    "outbox_page_path",
    "outbox_pages",
    "replies_document",
    "serialize_collection",
    "serialize_outbox_page",
    "shares_document",
    "thread_page_document",
]

OUTBOX_PAGE_SIZE = 20


def serialize_outbox_page(
    site: Site,
    number: int,
    *,
    posts: Sequence[Post],
    objects: Callable[[Post], PreparedObject],
    page_size: int = OUTBOX_PAGE_SIZE,
) -> bytes:
    """serialize(outbox_page(site, number, page_size=page_size, posts=posts, objects=...)),
    byte for byte, for objects as object_document made them (prepared once per build).

    Each Create embeds its object's JSON text as written for object.json (re-indented), and
    the page's terms are those of its objects' own @context: the Create and page around them
    add none. Nothing is walked or copied again (the plain way walked each object 3 times).
    """
    pages = max(1, -(-len(posts) // page_size))
    if not 1 <= number <= pages:
        raise ValueError(f"outbox page {number} out of range 1..{pages}")
    chunk = posts[(number - 1) * page_size : number * page_size]
    actor = actor_id(site)
    followers = _followers_id(site)
    used: set[str] = set()
    items: list[dict[str, Any]] = []
    for post in chunk:
        prepared = objects(post)
        obj = prepared.document
        embedded = prepared.embedded()
        terms = _context_terms(obj) if type(embedded) is _Fragment else None
        if terms is None:  # not as with_context writes it: the plain way, walked
            item = _without_context(create_activity(site, obj))
            _used_terms(item, used)
            items.append(item)
            continue
        used |= terms
        create = {
            "id": f"{obj['id']}#create",
            "type": "Create",
            "actor": actor,
            "published": obj.get("published"),
            "to": obj.get("to", [PUBLIC]),
            "cc": obj.get("cc", [followers]),
            "object": embedded,
        }
        _used_terms({k: v for k, v in create.items() if k != "object"}, used)
        items.append(create)
    doc: dict[str, Any] = {"@context": _context(used),
                           **_outbox_page_head(site, number, pages, len(posts))}
    doc["orderedItems"] = items
    out: list[str] = []
    _write_plain(doc, "\n", False, out, {})  # only plain values and fragments: no _Unusual
    out.append("\n")
    return "".join(out).encode("utf-8")


# --- collections ---------------------------------------------------------------------------


def outbox_page_count(site: Site, page_size: int = OUTBOX_PAGE_SIZE) -> int:
    """Number of outbox pages; at least one, so `first` always resolves."""
    return max(1, -(-len(federated_posts(site)) // page_size))


def outbox_page_path(number: int) -> str:
    return f"outbox/page-{number}.json"


def outbox_document(site: Site, *, page_size: int = OUTBOX_PAGE_SIZE) -> dict[str, Any]:
    config = site.config
    pages = outbox_page_count(site, page_size)
    return with_context(
        {
            "id": config.url("outbox.json"),
            "type": "OrderedCollection",
            "totalItems": len(federated_posts(site)),
            "first": config.url(outbox_page_path(1)),
            "last": config.url(outbox_page_path(pages)),
        }
    )


def outbox_page(
    site: Site,
    number: int,
    *,
    page_size: int = OUTBOX_PAGE_SIZE,
    mentions: Mapping[str, str] | None = None,
    posts: Sequence[Post] | None = None,
    objects: Callable[[Post], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Page `number` (1-based) of the outbox: Create activities, newest first.

    A build planning every page passes `posts` (federated_posts(site), sorted once) and
    `objects` (post -> its object_document, computed once per post per build): each object
    costs an HTML reduction, and every post is also in its own object.json.
    """
    if posts is None:
        posts = federated_posts(site)
    pages = max(1, -(-len(posts) // page_size))
    if not 1 <= number <= pages:
        raise ValueError(f"outbox page {number} out of range 1..{pages}")
    chunk = posts[(number - 1) * page_size : number * page_size]
    if objects is None:
        def objects(p: Post) -> Mapping[str, Any]:
            return object_document(site, p, mentions=mentions)
    items = [_without_context(create_activity(site, objects(p))) for p in chunk]
    doc = _outbox_page_head(site, number, pages, len(posts))
    doc["orderedItems"] = items
    return with_context(doc)


def _outbox_page_head(site: Site, number: int, pages: int, total: int) -> dict[str, Any]:
    """An outbox page's members before its items (shared by the two ways it is written)."""
    config = site.config
    head: dict[str, Any] = {
        "id": config.url(outbox_page_path(number)),
        "type": "OrderedCollectionPage",
        "partOf": config.url("outbox.json"),
        "totalItems": total,
    }
    if number < pages:
        head["next"] = config.url(outbox_page_path(number + 1))
    if number > 1:
        head["prev"] = config.url(outbox_page_path(number - 1))
    return head


def outbox_pages(
    site: Site,
    *,
    page_size: int = OUTBOX_PAGE_SIZE,
    mentions: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every outbox page, first to last (page N is at `outbox_page_path(N)`)."""
    return [
        outbox_page(site, n, page_size=page_size, mentions=mentions)
        for n in range(1, outbox_page_count(site, page_size) + 1)
    ]


def _hidden_collection(collection_id: str, total: int) -> dict[str, Any]:
    """A collection that publishes its size but not its members.

    Mastodon treats a collection without `first` as hidden and shows no count, so `first` is
    an embedded, empty page: the count shows, the list stays private.
    """
    return with_context(
        {
            "id": collection_id,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": {
                "type": "OrderedCollectionPage",
                "partOf": collection_id,
                "orderedItems": [],
            },
        }
    )


def followers_document(site: Site, count: int = 0) -> dict[str, Any]:
    return _hidden_collection(site.config.url("followers.json"), count)


def following_document(site: Site, count: int = 0) -> dict[str, Any]:
    return _hidden_collection(site.config.url("following.json"), count)


def featured_document(
    site: Site, *, mentions: Mapping[str, str] | None = None,
    threads: Mapping[str, Thread] | None = None,
) -> dict[str, Any]:
    """Pinned posts (front matter `pinned: true`), embedded in full as Mastodon expects (with
    their threads' counts, as in their object.json)."""
    pinned = [p for p in federated_posts(site) if p.pinned]
    known = threads or {}
    return with_context(
        {
            "id": site.config.url("featured.json"),
            "type": "OrderedCollection",
            "totalItems": len(pinned),
            "orderedItems": [
                _without_context(object_document(
                    site, p, mentions=mentions, thread=known.get(object_id(p), NO_THREAD)))
                for p in pinned
            ],
        }
    )


def replies_document(post: Post, thread: Thread = NO_THREAD) -> dict[str, Any]:
    """replies.json: the `replies` collection the post object embeds, on its own."""
    return with_context(replies_collection(post.url, thread))


def thread_page_document(kind: ThreadKind, site: Site, post: Post, thread: Thread,
                         number: int) -> dict[str, Any]:
    """Page `number` (2 or more: the first is embedded) of the post's replies or context, the
    file at post.path + thread_page_path(kind, number)."""
    return with_context(thread_page(kind, post.url, object_id(post), thread, number))


def context_document(site: Site, post: Post, thread: Thread = NO_THREAD) -> dict[str, Any]:
    """context.json: the post's conversation (FEP-7888), the post and its public replies."""
    return with_context(context_collection(post.url, object_id(post), actor_id(site), thread))


def likes_document(post: Post, count: int = 0) -> dict[str, Any]:
    return with_context(counted_collection(likes_id(post.url), count))


def shares_document(post: Post, count: int = 0) -> dict[str, Any]:
    return with_context(counted_collection(shares_id(post.url), count))


# serialize() of a document whose @context is just the two URLs, up to its "id" value.
_PLAIN_HEAD = ('{\n  "@context": ' + indented_json([AS_CONTEXT, SEC_CONTEXT], level=1)
               + ',\n  "id": ')


def serialize_collection(post: Post, kind: str, count: int = 0) -> bytes:
    """serialize(likes_document(post, count)) for kind "likes" (shares_document for "shares"),
    written from its fixed shape: a build writes two per post, each ~10 us the plain way (a
    context walk and a general writer). replies.json lists ids: serialize(replies_document)."""
    if type(count) is not int or kind not in ("likes", "shares"):
        build = {"likes": likes_document, "shares": shares_document}[kind]
        return serialize(build(post, count))
    cid = _encode_string(post.url + kind + ".json")
    text = _PLAIN_HEAD + cid + ',\n  "type": "Collection",\n  "totalItems": ' + int.__repr__(count)
    return (text + "\n}\n").encode("utf-8")
