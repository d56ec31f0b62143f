"""What the inbox does with one verified activity, by type.

Handling is split in two so that no network call happens inside a store transaction:

    plan = await handler.prepare(activity, raw, actor_id)   # fetches (actor, object), no writes
    plan.write(store, now)                                   # the store writes, in the caller's
                                                             # transaction with the dedupe mark

`prepare` raises `Rejected(status, reason)` for activities that must be refused (for example an
embedded object from another origin that cannot be fetched from its own). Anything we do not
handle becomes a plan that writes nothing (`kind == "ignored"`), answered with 202, and a write
that finds nothing to change (an Undo of a like never stored) returns why; the inbox logs both
at info level, naming the actor or object, so an accepted activity is never dropped silently.
Remote data is capped everywhere (names 200 characters, content 100 KB) and reply HTML is kept
as received plus a strictly sanitised copy (nh3: p br a span, http/https links only).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from ..activitypub.documents import accept_activity, serialize
from ..activitypub.remote_html import safe_reply_html
from ..config import SiteConfig
from ..errors import FetchError, FetchUnavailable
from ..model import Site
from ..store import CachedActor, Follower, Interaction, InteractionKind, PlannedActivity, Store
from .manifest import read_federation_manifest
from .moderation import follower_accepted, mentions, moderated, revised
from .remote import ACTOR_TYPES, RemoteActor, RemoteFetcher, parse_actor

__all__ = [
    "ACTOR_MAX_AGE",
    "MAX_CONTENT",
    "MAX_NAME",
    "ActivityHandler",
    "OwnPosts",
    "RECEIVED_MANIFEST",
    "Plan",
    "Rejected",
    "cached_actor",
    "id_of",
    "remote_actor",
    "same_host",
    "sanitize_reply_html",
]

log = logging.getLogger("fedipress.inbox")

MAX_NAME = 200  # characters kept of any remote name, handle or URL-ish label
MAX_URL = 2048
MAX_CONTENT = 100_000  # characters kept of a reply's HTML
# A cached actor document younger than this is used instead of a signed GET. A Follow older
# than this refetches (the inbox it gets deliveries at must be current); a like, boost or reply
# falls back to an older copy when the refetch fails (it only names the author).
ACTOR_MAX_AGE = timedelta(hours=24)
_REPLY_TYPES = frozenset({"Note", "Article", "Page", "Question"})

T = TypeVar("T")
# A plan's store writes; a string it returns says why nothing changed (logged as ignored).
WriteFn = Callable[[Store, datetime], "str | None"]
# A handler for one more activity type, and a check a Delete runs (True: it deleted something).
ExtraHandler = Callable[["ActivityHandler", Mapping[str, Any], str], Awaitable["Plan"]]
DeleteHook = Callable[[SiteConfig, Store, str, str, datetime], bool]


class Rejected(Exception):
    """The activity is refused with this HTTP status and short reason."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def _fetch_failed(exc: FetchError, reason: str) -> Rejected:
    """503 (the sender retries) when the fetch may work later, else 400 (it never will)."""
    if isinstance(exc, FetchUnavailable):
        return Rejected(503, reason + " (temporarily)")
    return Rejected(400, reason)


@dataclass(frozen=True)
class Plan:
    """What to store for one activity. `wake` asks the delivery loop to run now (an Accept)."""

    kind: str
    detail: str = ""
    write: WriteFn | None = None
    wake: bool = False


@dataclass(frozen=True)
class _Ignore:
    reason: str


# --- small helpers on untrusted JSON ----------------------------------------------------------


def id_of(value: Any) -> str | None:
    """The id of an AS2 reference: a string, or an object's `id`."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) else None
    if isinstance(value, list) and len(value) == 1:
        return id_of(value[0])
    return None


def _type_of(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    kind = value.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if isinstance(k, str)), None)
    return kind if isinstance(kind, str) else None


def _netloc(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return ""


def same_host(a: str, b: str) -> bool:
    """True when both URLs have the same host and port (the origin that speaks for them)."""
    left = _netloc(a)
    return bool(left) and left == _netloc(b)


def _cap(value: Any, limit: int = MAX_NAME) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _url(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value[:MAX_URL]
    return None


def _parse_time(value: Any, default: datetime) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        return default
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return default
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _first_url(value: Any) -> str | None:
    if isinstance(value, str):
        return _url(value)
    if isinstance(value, Mapping):
        return _url(value.get("href")) or _url(value.get("url"))
    if isinstance(value, list):
        for item in value[:10]:
            found = _first_url(item)
            if found:
                return found
    return None


def sanitize_reply_html(html: str) -> str:
    """The safe copy of a remote reply (see activitypub/remote_html.py)."""
    return safe_reply_html(html)


def _content_of(obj: Mapping[str, Any]) -> str:
    content = obj.get("content")
    if not isinstance(content, str):
        langs = obj.get("contentMap")
        if isinstance(langs, Mapping):
            content = next((v for v in langs.values() if isinstance(v, str)), "")
    return content[:MAX_CONTENT] if isinstance(content, str) else ""


# --- the actor cache's records -----------------------------------------------------------------


def cached_actor(remote: RemoteActor, now: datetime) -> CachedActor:
    """The actor cache's record of a fetched actor (the store caps the fields again)."""
    return CachedActor(
        actor_id=remote.id,
        type=remote.type,
        inbox=remote.inbox,
        shared_inbox=_url(remote.shared_inbox),
        preferred_username=_cap(remote.preferred_username),
        handle=_cap(remote.handle),
        name=_cap(remote.name),
        icon_url=_url(remote.icon_url),
        profile_url=_url(remote.profile_url),
        also_known_as=tuple(a for a in (_url(x) for x in remote.also_known_as[:20]) if a),
        fetched_at=now,
    )


def remote_actor(cached: CachedActor) -> RemoteActor:
    """A cached actor as the RemoteActor the handlers use; keys live in the key cache."""
    return RemoteActor(
        id=cached.actor_id,
        type=cached.type,
        inbox=cached.inbox,
        shared_inbox=cached.shared_inbox,
        preferred_username=cached.preferred_username,
        name=cached.name,
        handle=cached.handle,
        icon_url=cached.icon_url,
        profile_url=cached.profile_url,
        public_keys=(),
        also_known_as=cached.also_known_as,
    )


def _wall_clock() -> datetime:
    return datetime.now(UTC)


# --- our own posts ----------------------------------------------------------------------------


RECEIVED_MANIFEST = "received-manifest.json"
# What quotes.py reads of each post's document (the full texts stay on disk, not in memory).
_KEPT = ("url", "interactionPolicy", "replies", "likes", "shares")


class OwnPosts:
    """The posts the build published, read from the federation manifest (state_dir/manifest.json)
    and from the last one `publish` sent through the owner API (state_dir/RECEIVED_MANIFEST:
    a CI build's manifest never reaches the service's own manifest.json).

    Re-read when a file changes, so a new build is seen without a restart. An object is ours
    when its id (or its HTML url) is under base_url and listed in either manifest."""

    def __init__(self, manifest_path: Path, base_url: str,
                 received_path: Path | None = None) -> None:
        self._path = manifest_path
        self._received = received_path
        self._base = base_url
        self._stamp: tuple[tuple[int, int] | None, ...] | None = None
        self._by_ref: dict[str, str] = {}
        self._docs: dict[str, dict[str, Any]] = {}  # object id -> what _KEPT of its document

    @staticmethod
    def _stamp_of(path: Path | None) -> tuple[int, int] | None:
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    def _load(self) -> None:
        stamp = (self._stamp_of(self._path), self._stamp_of(self._received))
        if stamp == self._stamp:
            return
        refs: dict[str, str] = {}
        docs: dict[str, dict[str, Any]] = {}
        for path, present in ((self._path, stamp[0]), (self._received, stamp[1])):
            if path is None or present is None:
                continue
            try:
                if path == self._path:
                    objects = read_federation_manifest(path.parent).get("objects", {})
                else:
                    loaded = json.loads(path.read_bytes())
                    objects = loaded.get("objects", {}) if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                log.warning("%s: unreadable manifest; its posts cannot be liked or replied to",
                            path)
                objects = {}
            for object_id, entry in objects.items() if isinstance(objects, dict) else []:
                refs[object_id] = object_id
                doc = entry.get("doc") if isinstance(entry, dict) else None
                if isinstance(doc, dict):
                    docs[object_id] = {k: doc[k] for k in _KEPT if k in doc}
                page = doc.get("url") if isinstance(doc, dict) else None
                if isinstance(page, str):
                    refs.setdefault(page, object_id)
        self._stamp, self._by_ref, self._docs = stamp, refs, docs

    def resolve(self, ref: str | None) -> str | None:
        """The object id of our post that `ref` names, or None."""
        if not ref or not ref.startswith(self._base):
            return None
        self._load()
        return self._by_ref.get(ref)

    def documents(self) -> dict[str, dict[str, Any]]:
        """Our posts' policies and counts as built (_KEPT of each document), by object id."""
        self._load()
        return self._docs


# --- the handler ------------------------------------------------------------------------------


@dataclass
class ActivityHandler:
    """Turns verified activities into store writes. All collaborators are injected."""

    config: SiteConfig
    store: Store
    fetcher: RemoteFetcher
    own_posts: OwnPosts
    is_blocked: Callable[[str], Awaitable[bool]]
    clock: Callable[[], datetime] = _wall_clock  # the inbox injects its own
    # Handlers that build on this module, wired by inbox.py (QuoteRequest and the revocation
    # of a deleted quoting post: quotes.py), so it imports none of them.
    handlers: Mapping[str, ExtraHandler] = field(default_factory=dict)
    delete_hooks: tuple[DeleteHook, ...] = ()
    # The threads store calls may use at once (the inbox sizes it to the store's pool).
    db_limiter: Callable[[], anyio.CapacityLimiter | None] = lambda: None
    _site: Site = field(init=False)

    def __post_init__(self) -> None:
        self._site = Site(self.config, (), ())

    @property
    def actor_id(self) -> str:
        return self.config.url("actor.json")

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: func(*args), limiter=self.db_limiter())

    async def prepare(self, activity: Mapping[str, Any], raw: bytes, actor: str) -> Plan:
        kind = _type_of(activity) or ""
        method = getattr(self, f"_on_{kind.lower()}", None) if kind.isalpha() else None
        if method is None and kind in self.handlers:
            return await self.handlers[kind](self, activity, actor)
        if method is None:
            return Plan(
                "ignored",
                f"{kind[:40] or 'untyped'} activities are not handled"
                f" (object {_ref(activity.get('object'))})",
            )
        result: Plan | _Ignore = await method(activity, raw, actor)
        if isinstance(result, _Ignore):
            return Plan("ignored", result.reason)
        return result

    # -- objects: trust embedded ones only from the actor's own origin --

    async def _object(self, activity: Mapping[str, Any], actor: str) -> dict[str, Any]:
        obj = activity.get("object")
        obj_id = id_of(obj)
        if obj_id is None or not obj_id.startswith(("https://", "http://")):
            raise Rejected(400, "object has no id")
        if isinstance(obj, Mapping) and same_host(obj_id, actor):
            return dict(obj)
        try:
            doc = await self.fetcher.fetch_json(obj_id)
        except FetchError as exc:
            log.info("object %s not fetched from its origin: %s", obj_id[:200], exc)
            raise _fetch_failed(exc, "object could not be fetched from its origin") from None
        return doc.data

    async def _author(self, actor: str) -> RemoteActor | None:
        try:
            return await self._actor(actor, stale_ok=True)
        except FetchError as exc:
            log.info("actor %s not fetched (stored without profile): %s", actor[:200], exc)
            return None

    # -- the actor cache: the inbox already fetched most senders' actors with their key --

    async def _fetch_actor(self, actor: str) -> RemoteActor:
        """A signed GET of the actor, recorded in the actor cache."""
        remote = await self.fetcher.fetch_actor(actor)
        await self._db(self.store.put_actor, cached_actor(remote, self.clock()))
        return remote

    async def _actor(self, actor: str, *, stale_ok: bool) -> RemoteActor:
        """The cached actor when younger than ACTOR_MAX_AGE, else fetched (and recorded); with
        `stale_ok`, an older cached copy when the fetch fails. Raises FetchError."""
        cached = await self._db(self.store.get_actor, actor)
        if cached is not None and timedelta(0) <= self.clock() - cached.fetched_at < ACTOR_MAX_AGE:
            return remote_actor(cached)
        try:
            return await self._fetch_actor(actor)
        except FetchError as exc:
            if not stale_ok or cached is None:
                raise
            log.info("actor %s not refetched, using the cached copy: %s", actor[:200], exc)
            return remote_actor(cached)

    # -- Follow, Undo, Delete, Move --

    def _follower(self, remote: RemoteActor, follow_id: str | None, now: datetime) -> Follower:
        return Follower(
            actor_id=remote.id,
            inbox=remote.inbox[:MAX_URL],
            shared_inbox=_url(remote.shared_inbox),
            handle=_cap(remote.handle),
            name=_cap(remote.name),
            followed_at=now,
            follow_activity_id=_cap(follow_id, MAX_URL),
        )

    async def _on_follow(
        self, activity: Mapping[str, Any], raw: bytes, actor: str
    ) -> Plan | _Ignore:
        followed = id_of(activity.get("object"))
        if followed != self.actor_id:
            return _Ignore(
                f"Follow of {_ref(followed)}, not of this blog's actor {self.actor_id}"
            )
        try:
            remote = await self._actor(actor, stale_ok=False)
        except FetchError as exc:
            log.info("follower %s not fetched: %s", actor[:200], exc)
            raise _fetch_failed(exc, "the following actor could not be fetched") from None
        if remote.id != actor:
            raise Rejected(400, "actor document id differs")
        follow_id = id_of(activity)
        accept_id = f"{self.actor_id}#accept-{hashlib.sha256(raw).hexdigest()[:32]}"
        follow_doc = dict(activity)
        accept = PlannedActivity(
            activity_id=accept_id,
            object_id=None,
            kind="Accept",
            body=serialize(accept_activity(self._site, follow_doc, accept_id=accept_id)),
        )
        follow_bytes = serialize(follow_doc)
        manual = self.config.fediverse.manually_approves_followers

        def write(store: Store, now: datetime) -> None:
            follower = self._follower(remote, follow_id, now)
            existing = store.get_follower(actor)
            if manual and (existing is None or existing.state == "pending"):
                store.upsert_follower(replace(follower, state="pending"), follow_bytes)
                return
            store.record_follow_and_plan_accept(  # type: ignore[call-arg]
                follower, accept, remote.inbox, now, follow_activity=follow_bytes
            )
            follower_accepted(self.config.fediverse, store, actor)

        if manual:
            existing = await self._db(self.store.get_follower, actor)
            if existing is None or existing.state == "pending":
                return Plan("follow-request", "held for `fedipress followers approve`", write)
        return Plan("follow", f"Accept queued to {remote.inbox[:200]}", write, wake=True)

    async def _on_undo(self, activity: Mapping[str, Any], raw: bytes, actor: str) -> Plan | _Ignore:
        inner = activity.get("object")
        inner_id = id_of(inner)
        if inner_id is None:
            raise Rejected(400, "Undo has no object")
        inner_type = _type_of(inner)
        if isinstance(inner, Mapping) and id_of(inner.get("actor")) not in (None, actor):
            return _Ignore(
                f"Undo of {_ref(inner_id)}, an activity of {_ref(inner.get('actor'))}"
                f" rather than of {actor[:200]}"
            )
        target = (
            self.own_posts.resolve(id_of(inner.get("object")))
            if isinstance(inner, Mapping)
            else None
        )

        def write(store: Store, now: datetime) -> str | None:
            removed = False
            if inner_type in (None, "Follow"):
                follower = store.get_follower(actor)
                if follower is not None and (
                    inner_type == "Follow" or follower.follow_activity_id == inner_id
                ):
                    removed = store.remove_follower(actor) or removed
            if inner_type in (None, "Like", "Announce"):
                if store.remove_interaction_by_activity(inner_id, actor):
                    removed = True
                elif target:
                    removed = store.remove_interaction(
                        "like" if inner_type == "Like" else "announce", actor, target
                    ) or removed
            if removed:
                return None
            return (
                f"Undo {inner_type or 'by id'} of {inner_id[:200]}: nothing of"
                f" {actor[:200]} matched it"
            )

        return Plan("undo", f"Undo {inner_type or 'by id'} of {inner_id[:200]}", write)

    async def _on_delete(
        self, activity: Mapping[str, Any], raw: bytes, actor: str
    ) -> Plan | _Ignore:
        obj_id = id_of(activity.get("object"))
        if obj_id is None:
            raise Rejected(400, "Delete has no object")
        if obj_id == actor:

            def forget(store: Store, now: datetime) -> None:
                store.remove_actor(actor)

            return Plan("delete-actor", "actor and everything it left removed", forget)

        def delete(store: Store, now: datetime) -> str | None:
            if store.delete_reply(obj_id, actor):  # only the author's own reply or mention
                return None
            if any(hook(self.config, store, obj_id, actor, now) for hook in self.delete_hooks):
                return None
            return f"Delete of {obj_id[:200]}: not a reply of {actor[:200]} (nor a mention) here"

        return Plan("delete", f"reply {obj_id[:200]} removed", delete, wake=True)

    async def _on_block(
        self, activity: Mapping[str, Any], raw: bytes, actor: str
    ) -> Plan | _Ignore:
        if id_of(activity.get("object")) != self.actor_id:
            return _Ignore(f"Block of {_ref(activity.get('object'))}, not of this blog's actor")

        def forget(store: Store, now: datetime) -> str | None:
            # They no longer want to be seen here: their follow, replies and reactions go.
            if any(store.remove_actor(actor)):
                return None
            return f"Block by {actor[:200]}: it had no follow, reply or reaction here"

        return Plan("block", "its follow, replies and reactions removed", forget)

    async def _on_move(self, activity: Mapping[str, Any], raw: bytes, actor: str) -> Plan | _Ignore:
        if id_of(activity.get("object")) != actor:
            return _Ignore(f"Move of {_ref(activity.get('object'))}, not of {actor[:200]}")
        target = id_of(activity.get("target"))
        if target is None or not target.startswith(("https://", "http://")) or not _netloc(target):
            raise Rejected(400, "Move has no target")
        old = await self._db(self.store.get_follower, actor)
        if old is None:
            return _Ignore(f"Move of {actor[:200]}, which does not follow this blog")
        if await self.is_blocked(target):
            return _Ignore(f"Move to {target[:200]}, which is blocked")
        try:
            new = await self._fetch_actor(target)  # never the cache: alsoKnownAs must be current
        except FetchError as exc:
            log.info("Move target %s not fetched: %s", target[:200], exc)
            raise _fetch_failed(exc, "Move target could not be fetched") from None
        if actor not in new.also_known_as:
            return _Ignore(
                f"Move to {new.id[:200]}, which does not list {actor[:200]} in alsoKnownAs"
            )

        def write(store: Store, now: datetime) -> str | None:
            follower = self._follower(new, None, old.followed_at)
            moved = store.move_follower(actor, replace(follower, state=old.state))
            store.delete_actor(actor)  # the old account's document now says it moved
            return None if moved else f"Move of {actor[:200]}: it unfollowed meanwhile"

        return Plan("move", f"follower moved to {new.id[:200]}", write)

    # -- Like, Announce --

    async def _reaction(self, activity: Mapping[str, Any], actor: str, kind: str) -> Plan | _Ignore:
        liked = id_of(activity.get("object"))
        target = self.own_posts.resolve(liked)
        if target is None:
            return _Ignore(f"{kind} of {_ref(liked)}, which is not one of this blog's posts")
        activity_id = id_of(activity)
        if activity_id is None:
            raise Rejected(400, "activity has no id")
        author = await self._author(actor)

        def write(store: Store, now: datetime) -> str | None:
            added = store.add_interaction(
                _received(
                    author,
                    activity_id=activity_id,
                    kind="like" if kind == "Like" else "announce",
                    actor=actor,
                    object_id=target,
                    published=activity.get("published"),
                    now=now,
                )
            )
            return None if added else f"{kind} of {target} by {actor[:200]}: already stored"

        return Plan(kind.lower(), target, write)

    async def _on_like(self, activity: Mapping[str, Any], raw: bytes, actor: str) -> Plan | _Ignore:
        return await self._reaction(activity, actor, "Like")

    async def _on_announce(
        self, activity: Mapping[str, Any], raw: bytes, actor: str
    ) -> Plan | _Ignore:
        return await self._reaction(activity, actor, "Announce")

    # -- Create, Update (replies) --

    async def _reply_root(self, in_reply_to: str | None) -> str | None:
        """Our post the reply belongs to: the post itself, or the post of the reply it answers."""
        own = self.own_posts.resolve(in_reply_to)
        if own is not None or in_reply_to is None:
            return own
        parent = await self._db(self.store.get_reply, in_reply_to)
        return parent.object_id if parent is not None else None

    async def _on_create(
        self, activity: Mapping[str, Any], raw: bytes, actor: str
    ) -> Plan | _Ignore:
        activity_id = id_of(activity)
        if activity_id is None:
            raise Rejected(400, "activity has no id")
        in_reply_to = id_of(
            activity["object"].get("inReplyTo")
            if isinstance(activity.get("object"), Mapping)
            else None
        )
        # Cheap first: a Create that neither replies to nor mentions us needs no fetch at all.
        embedded = activity.get("object")
        if (
            isinstance(embedded, Mapping)
            and not mentions(embedded, self.actor_id)
            and await self._reply_root(in_reply_to) is None
        ):
            return _Ignore(_not_a_reply(activity.get("object"), in_reply_to))
        obj = await self._object(activity, actor)
        if _type_of(obj) not in _REPLY_TYPES:
            return _Ignore(
                f"Create of {_ref(obj)}, a {_type_of(obj) or 'typeless'} object, not a note"
            )
        if id_of(obj.get("attributedTo")) != actor:
            return _Ignore(
                f"Create of {_ref(obj)}, attributed to {_ref(obj.get('attributedTo'))}"
                f" rather than to {actor[:200]}"
            )
        in_reply_to = id_of(obj.get("inReplyTo"))
        root = await self._reply_root(in_reply_to)
        if root is None and not mentions(obj, self.actor_id):
            return _Ignore(_not_a_reply(obj, in_reply_to))
        obj_id = id_of(obj)
        assert obj_id is not None  # _object guarantees an id
        content = _content_of(obj)
        author = await self._author(actor)

        def write(store: Store, now: datetime) -> str | None:
            received = _received(
                author,
                activity_id=activity_id,
                kind="reply" if root else "mention",  # a mention is kept under our actor
                actor=actor,
                object_id=root or self.actor_id,
                published=obj.get("published"),
                now=now,
            )
            added = store.add_interaction(moderated(
                self.config.fediverse, store, replace(
                    received,
                    content_html=content,
                    content_safe_html=sanitize_reply_html(content),
                    url=_first_url(obj.get("url")),
                    in_reply_to=in_reply_to[:MAX_URL] if in_reply_to else None,
                    reply_object_id=obj_id[:MAX_URL],
                ), obj, activity))
            return None if added else f"{obj_id[:200]} by {actor[:200]}: already stored"

        return Plan("reply", root, write) if root else Plan("mention", "not a reply", write)

    async def _actor_update(self, activity: Mapping[str, Any], actor: str) -> Plan | _Ignore:
        """A follower's (or cached actor's) own profile changed: refresh where we deliver, how
        we name it, and the actor cache."""
        if await self._db(self._follows_or_cached, actor) is False:
            return _Ignore(f"profile update of {actor[:200]}, which does not follow this blog")
        obj = activity.get("object")
        if isinstance(obj, Mapping) and obj.get("type") is not None:
            # The actor signed it and it is the actor's own document: no fetch needed.
            if _type_of(obj) not in ACTOR_TYPES:
                return _Ignore(
                    f"Update of {actor[:200]} with a {_type_of(obj) or 'typeless'} object,"
                    " not an actor"
                )
            try:
                remote = parse_actor(obj, where=actor[:200])
            except FetchError as exc:
                log.info("profile update of %s unusable: %s", actor[:200], exc)
                raise Rejected(400, "Update carries an unusable actor document") from None
        else:
            try:
                remote = await self._fetch_actor(actor)
            except FetchError as exc:
                log.info("updated actor %s not fetched: %s", actor[:200], exc)
                raise _fetch_failed(exc, "the updated actor could not be fetched") from None
        if remote.id != actor:
            raise Rejected(400, "actor document id differs")
        inbox, shared = _url(remote.inbox), _url(remote.shared_inbox)
        if inbox is None:
            raise Rejected(400, "updated actor has no inbox URL")

        def write(store: Store, now: datetime) -> None:
            store.put_actor(cached_actor(remote, now))
            current = store.get_follower(actor)  # it may have unfollowed meanwhile
            if current is not None:
                store.upsert_follower(replace(current, inbox=inbox, shared_inbox=shared,
                                              handle=_cap(remote.handle) or current.handle,
                                              name=_cap(remote.name) or current.name))

        return Plan("update-actor", f"follower {actor[:200]} refreshed", write)

    def _follows_or_cached(self, actor: str) -> bool:
        store = self.store
        return store.get_follower(actor) is not None or store.get_actor(actor) is not None

    async def _on_update(
        self, activity: Mapping[str, Any], raw: bytes, actor: str
    ) -> Plan | _Ignore:
        obj_id = id_of(activity.get("object"))
        if obj_id is None:
            raise Rejected(400, "Update has no object")
        if obj_id == actor:
            return await self._actor_update(activity, actor)
        existing = await self._db(self.store.get_written, obj_id)
        if existing is None or existing.actor_id != actor:
            return _Ignore(
                f"Update of {obj_id[:200]}: not a reply of {actor[:200]} (nor a mention) here"
            )
        obj = await self._object(activity, actor)
        if id_of(obj.get("attributedTo")) != actor:
            return _Ignore(
                f"Update of {obj_id[:200]}, attributed to {_ref(obj.get('attributedTo'))}"
                f" rather than to {actor[:200]}"
            )
        content = _content_of(obj)

        def write(store: Store, now: datetime) -> str | None:
            updated = _parse_time(obj.get("updated"), now)
            if store.update_reply(
                obj_id, actor, content, min(updated, now), sanitize_reply_html(content)
            ):
                revised(self.config.fediverse, store, obj_id, obj, activity)
                return None
            return f"Update of {obj_id[:200]}: the reply was removed meanwhile"

        return Plan("update", obj_id, write)


def _ref(value: Any) -> str:
    """An AS2 reference for a log line: its id, capped, or what it lacks."""
    ref = id_of(value)
    if ref is not None:
        return ref[:200]
    return "an object without id" if value is not None else "nothing"


def _not_a_reply(obj: Any, in_reply_to: str | None) -> str:
    target = f"in reply to {in_reply_to[:200]}" if in_reply_to else "not a reply"
    return (
        f"Create of {_ref(obj)} ({target}): not a reply to this blog's posts or their replies,"
        " and no mention of the blog"
    )


def _received(
    author: RemoteActor | None,
    *,
    activity_id: str,
    kind: InteractionKind,
    actor: str,
    object_id: str,
    published: Any,
    now: datetime,
) -> Interaction:
    """A like, boost or reply received `now`: the activity id capped, `published` (the sender's
    claim) parsed and never later than `now`, the author's display fields copied in."""
    moment = _parse_time(published, now)
    interaction = Interaction(
        activity_id=activity_id[:MAX_URL],
        kind=kind,
        actor_id=actor,
        object_id=object_id,
        published=moment if moment <= now else now,
        received_at=now,
    )
    return _with_author(author, interaction)


def _with_author(author: RemoteActor | None, interaction: Interaction) -> Interaction:
    if author is None:
        return interaction
    return replace(
        interaction,
        author_name=_cap(author.name),
        author_handle=_cap(author.handle),
        author_avatar_url=_url(author.icon_url),
        author_profile_url=_url(author.profile_url) or _url(author.id),
    )
