"""Plan every static ActivityPub file of a build, and the manifest `publish` diffs. Pure.

Each Output's fingerprint hashes exactly the inputs its bytes depend on (config, the posts it
shows, counts, key, code version), never the rendered bytes, so an incremental build can skip
rendering unchanged documents without building them first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from functools import partial
from typing import Any

from .. import __version__
from ..model import Output, Post, Site
from . import documents as d
from . import webfinger as wf
from .conversation import Conversations

__all__ = ["federation_manifest", "plan_activitypub", "post_threads"]

_EMPTY: Mapping[str, Mapping[str, int]] = {}
_NO_MENTIONS: Mapping[str, str] = {}
_NO_COUNTS: Mapping[str, int] = {}


def _fingerprint(salt: str, path: str, *parts: object) -> str:
    text = "\0".join(map(repr, (salt, __version__, path, *parts)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprinter(salt: str) -> Callable[..., str]:
    """_fingerprint(salt, ...) with the salt's part of the hash computed once (same values):
    a plan makes two per post."""
    head = hashlib.sha256(("\0".join(map(repr, (salt, __version__))) + "\0").encode("utf-8"))

    def fingerprint(path: str, *parts: object) -> str:
        h = head.copy()
        h.update("\0".join(map(repr, (path, *parts))).encode("utf-8"))
        return h.hexdigest()

    return fingerprint


def _counted(url_fp: str, post: Post, kind: str, count: int) -> Output:
    """A post's likes/shares collection: its bytes depend on the post's URL (hashed once for
    all of them) and the count, so the fingerprint is that hash plus the count."""
    path = f"{post.path}{kind}.json"
    return Output(path, f"{url_fp}:{path}:{count}",
                  partial(d.serialize_collection, post, kind, count))


def _thread_outputs(site: Site, url_fp: str, post: Post, thread: d.Thread) -> list[Output]:
    """replies.json and context.json, and their pages after the first (which both embed):
    their bytes depend on the post's URL, the actor's (in the config) and the reply ids."""
    replies_fp = _digest(thread.replies)
    outputs = [
        Output(f"{post.path}replies.json", f"{url_fp}:replies:{replies_fp}",
               partial(_serialized, d.replies_document, post, thread)),
        Output(f"{post.path}context.json", f"{url_fp}:context:{replies_fp}",
               partial(_serialized, d.context_document, site, post, thread)),
    ]
    for kind, total in (("replies", len(thread.replies)), ("context", 1 + len(thread.replies))):
        for number in range(2, d.page_count(total) + 1):
            path = post.path + d.thread_page_path(kind, number)  # type: ignore[arg-type]
            outputs.append(Output(path, f"{url_fp}:{path}:{replies_fp}",
                                  partial(_serialized, d.thread_page_document, kind, site, post,
                                          thread, number)))
    return outputs


def _serialized(build: Callable[..., dict[str, Any]], *args: Any) -> bytes:
    return d.serialize(build(*args))


def post_threads(
    posts: Sequence[Post],
    conversations: Conversations | None,
    interaction_counts: Mapping[str, Mapping[str, int]],
) -> dict[str, d.Thread]:
    """Each post's public thread by object id: reply ids and like and boost counts from its
    conversation when the store (or the service's export) has one, else the counts alone.
    Posts with nothing are left out (they get d.NO_THREAD)."""
    threads: dict[str, d.Thread] = {}
    for post in posts:
        oid = d.object_id(post)
        conv = conversations.for_post(oid) if conversations is not None else None
        if conv is not None:
            thread = d.Thread(tuple(r.id for r in conv.replies), len(conv.likes),
                              len(conv.boosts))
        else:
            counts = interaction_counts.get(oid, _NO_COUNTS)
            thread = d.Thread((), counts.get("likes", 0), counts.get("shares", 0))
        if thread != d.NO_THREAD:
            threads[oid] = thread
    return threads


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()


class _Keys:
    """Short stand-ins for the big inputs of many fingerprints, each hashed once per plan.

    repr() of the config, or of a post with its whole HTML, costs far more than the hash of
    a 64-character digest; a post carrying content.py's `fingerprint` is not hashed at all.
    """

    def __init__(self, config: object) -> None:
        self.config = "config:" + _digest(config)
        self._posts: dict[int, tuple[Post, str]] = {}

    def post(self, post: Post) -> str:
        hit = self._posts.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        fp = getattr(post, "fingerprint", "")
        key = "post:" + (fp if fp else _digest(post))
        self._posts[id(post)] = (post, key)  # keeps post alive, so its id stays its own
        return key

    def posts(self, posts: Sequence[Post]) -> list[str]:
        return [self.post(p) for p in posts]


class _Holder:
    """Points at the current plan's _Objects (see plan_activitypub's memo)."""

    objects: _Objects | None = None

    def object_of(self, post: Post) -> dict[str, Any]:
        assert self.objects is not None
        return self.objects(post)

    def object_json(self, post: Post) -> bytes:
        """serialize(object_of(post)), carrying the document (d.DocumentBytes) for the
        federation manifest's entry."""
        assert isinstance(self.objects, _Objects)
        return self.objects.prepared(post).serialized()


# Prepared object texts kept waiting for their second user (~25 KB each with the encodings).
_PREPARED_MAX = 1024


class _Objects:
    """Each post's object document, built at most once per plan (object.json, the outbox
    page that embeds it and featured.json all need it; each costs an HTML reduction)."""

    def __init__(self, site: Site, mentions: Mapping[str, str],
                 threads: Mapping[str, d.Thread]) -> None:
        self.site, self.mentions = site, mentions
        self._build = d.object_documents(site, mentions=mentions, threads=threads)
        self._docs: dict[int, tuple[Post, dict[str, Any]]] = {}
        self._prepared: dict[int, tuple[Post, d.PreparedObject]] = {}

    def __call__(self, post: Post) -> dict[str, Any]:
        hit = self._docs.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        doc = self._build(post)
        self._docs[id(post)] = (post, doc)
        return doc

    def prepared(self, post: Post) -> d.PreparedObject:
        """The post's document with its JSON text, shared by its object.json and its outbox
        page. Each is the other's only user, so it is dropped once both have it: a forked
        worker renders a page and then its posts, holding ~20; a single process renders every
        page first and holds up to _PREPARED_MAX (a miss just writes the text again)."""
        hit = self._prepared.get(id(post))
        if hit is not None and hit[0] is post:
            del self._prepared[id(post)]
            return hit[1]
        made = d.PreparedObject(self(post))
        if len(self._prepared) >= _PREPARED_MAX:
            del self._prepared[next(iter(self._prepared))]  # the oldest
        self._prepared[id(post)] = (post, made)
        return made


def _json_output(
    salt: str, path: str, build: Callable[[], dict[str, Any]], *deps: object
) -> Output:
    return Output(path, _fingerprint(salt, path, *deps), lambda: d.serialize(build()))


def plan_activitypub(
    site: Site,
    public_key_pem: bytes | str,
    *,
    fingerprint_salt: str,
    follower_count: int = 0,
    interaction_counts: Mapping[str, Mapping[str, int]] = _EMPTY,
    page_size: int = d.OUTBOX_PAGE_SIZE,
    mentions: Mapping[str, str] = _NO_MENTIONS,
    memo: MutableMapping[tuple[object, ...], Any] | None = None,
    conversations: Conversations | None = None,
) -> list[Output]:
    """All ActivityPub, WebFinger and NodeInfo files, paths relative to the output directory.

    `memo` (optional, kept by a long-lived builder between plans) remembers each post's
    outputs by their inputs; it may be any dict the caller clears when it grows.

    `interaction_counts` maps a post's object id to {"replies": n, "likes": n, "shares": n};
    `conversations` (the public conversation, when known) gives each post's reply ids and
    counts instead (post_threads).
    `mentions` maps "user@server" to the actor id publish resolved (the store's mention cache);
    a document's fingerprint includes only the resolutions of the posts it shows.
    """

    def resolved(chunk: Sequence[Post]) -> tuple[tuple[str, str], ...]:
        if not mentions:
            return ()
        return tuple(sorted({h: mentions[h] for p in chunk for h in d.post_mentions(p)
                             if h in mentions}.items()))

    config = site.config
    salt = fingerprint_salt
    posts = d.federated_posts(site)
    pem = public_key_pem.decode("ascii") if isinstance(public_key_pem, bytes) else public_key_pem
    oldest = min((p.date for p in site.posts), default=None)
    keys = _Keys(config)
    cfg = keys.config
    threads = post_threads(posts, conversations, interaction_counts)
    objects = _Objects(site, mentions, threads)

    def thread_of(chunk: Sequence[Post]) -> tuple[d.Thread | None, ...]:
        if not threads:
            return ()
        return tuple(threads.get(d.object_id(p)) for p in chunk)

    outputs: list[Output] = [
        _json_output(salt, "actor.json", lambda: d.actor_document(site, pem), cfg, pem, oldest),
        _json_output(salt, "outbox.json", lambda: d.outbox_document(site, page_size=page_size),
                     cfg, len(posts), page_size),
        _json_output(salt, "followers.json", lambda: d.followers_document(site, follower_count),
                     cfg, follower_count),
        _json_output(salt, "following.json", lambda: d.following_document(site, 0), cfg),
        _json_output(salt, "featured.json",
                     lambda: d.featured_document(site, mentions=mentions, threads=threads),
                     cfg, keys.posts([p for p in posts if p.pinned]),
                     resolved([p for p in posts if p.pinned]),
                     thread_of([p for p in posts if p.pinned])),
    ]

    pages = max(1, -(-len(posts) // page_size))  # d.outbox_page_count, without re-sorting
    for number in range(1, pages + 1):
        chunk: Sequence[Post] = posts[(number - 1) * page_size : number * page_size]
        path = d.outbox_page_path(number)
        outputs.append(Output(
            path,
            _fingerprint(salt, path, cfg, len(posts), pages, keys.posts(chunk), resolved(chunk),
                         thread_of(chunk)),
            # = serialize(outbox_page(...)), each object's text shared with its object.json
            partial(d.serialize_outbox_page, site, number, page_size=page_size, posts=posts,
                    objects=objects.prepared),
        ))

    cache: MutableMapping[tuple[object, ...], Any] = memo if memo is not None else {}
    # Outputs reused from an earlier plan render through this plan's object documents (the
    # holder is repointed each plan, so an old plan's documents are not kept alive).
    holder: _Holder = cache.setdefault(("objects-holder",), _Holder())
    holder.objects = objects

    fingerprint = _fingerprinter(salt)

    # Looked up once, not per post (a plan at 10,000 posts runs this loop 10,000 times).
    object_json = holder.object_json
    for post in posts:
        thread = threads.get(d.object_id(post), d.NO_THREAD) if threads else d.NO_THREAD
        post_key, post_mentions = keys.post(post), resolved([post])
        key = (salt, "post-outputs", cfg, post_key, post_mentions, thread)
        found = cache.get(key)
        if found is None:
            # A long-lived caller's memo turns an unchanged post into one dict lookup.
            base = post.path
            # The collections depend on the URL and their counts or reply ids only: one hash of
            # the URL, the rest appended (a fingerprint is any string that changes with its input).
            url_fp = fingerprint(base + "collections", post.url, cfg)
            found = cache[key] = (
                Output(base + "object.json",
                       fingerprint(base + "object.json", cfg, post_key, post_mentions, thread),
                       partial(object_json, post)),
                *_thread_outputs(site, url_fp, post, thread),
                _counted(url_fp, post, "likes", thread.likes),
                _counted(url_fp, post, "shares", thread.shares),
            )
        outputs += found

    outputs += [
        Output(
            ".well-known/webfinger",
            _fingerprint(salt, "webfinger", cfg),
            lambda: _plain_json(wf.webfinger_document(config)),
        ),
        Output(
            ".well-known/host-meta",
            _fingerprint(salt, "host-meta", cfg),
            lambda: wf.host_meta(config).encode("utf-8"),
        ),
        Output(
            ".well-known/nodeinfo",
            _fingerprint(salt, "nodeinfo", cfg),
            lambda: _plain_json(wf.nodeinfo_discovery(config)),
        ),
        Output(
            "nodeinfo/2.1",
            _fingerprint(salt, "nodeinfo/2.1", cfg, len(posts)),
            lambda: _plain_json(wf.nodeinfo_document(config, local_posts=len(posts))),
        ),
    ]
    return outputs


def _plain_json(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def federation_manifest(
    site: Site, public_key_pem: bytes | str, *, mentions: Mapping[str, str] = _NO_MENTIONS
) -> dict[str, Any]:
    """What publish compares with its ledger: the actor, and every federated object by id.

    {"actor": actor doc, "objects": {object_id: {"hash", "published", "doc"}}}, newest first.
    """
    objects: dict[str, Any] = {}
    for post in d.federated_posts(site):
        doc = d.object_document(site, post, mentions=mentions)
        objects[doc["id"]] = {
            "hash": d.object_hash(doc),
            "published": doc["published"],
            "doc": doc,
        }
    return {"actor": d.actor_document(site, public_key_pem), "objects": objects}
