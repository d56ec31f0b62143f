"""Quotes (FEP-044f) and count refreshes: what the service does for a post's conversation
beyond storing it.

Quotes. Mastodon 4.5 asks before it quotes: a `QuoteRequest` (actor: the quoter, object: our
post, instrument: the quoting post). The inbox reads the post's own `interactionPolicy.canQuote`
from the document the build published (so the policy enforced is the policy shown) and

- when it allows the quoter (anyone; followers: an accepted follower), stores a
  QuoteAuthorization, records the quote as an interaction of kind 'quote' (shown as "quoted
  by" when the quoting post is public) and queues a signed `Accept` whose `result` is the
  authorization, all in one transaction: the authorization is served (`authorization_routes`)
  from the moment the Accept can be sent, since Mastodon fetches it at once;
- otherwise queues a `Reject`.

An authorization is revoked (a `Delete` of it sent to the quoter, its URL answering 410 Gone
with a Tombstone) when the quoting post is deleted (the inbox's Delete handler calls
`revoke_deleted_quote`, which inbox.py gives it), when the quoted post, ours, is deleted by
publish (`revoke_for_deleted_posts`, which publish_plan.queue_plan calls in the transaction
that queues the post's Delete) or when its author or domain is blocked
(`revoke_blocked`, run by the service's loop, whoever blocked: `fedipress block`, site.yaml,
moderation commands).

Count refreshes. A post's likes, boosts and replies change its object (the embedded `likes`,
`shares` and `replies`), but publish leaves counts out of what it compares, so it never sends
an Update for a like. `refresh_counts`, run by the service's loop, sends followers' servers an
`Update` of the post instead when its public counts changed meaningfully since they were last
sent: any change of the replies, or of likes or boosts by at least a tenth (at least one);
smaller changes wait until STALE_AFTER has passed. Whatever the changes, one post gets at most
one refresh per `fediverse.count_refresh_minutes` (default 15; 0: never).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..activitypub import documents as d
from ..activitypub.documents.threads import (
    context_id,
    counted_collection,
    likes_id,
    replies_collection,
    shares_id,
)
from ..config import SiteConfig
from ..errors import FetchError
from ..generator.contenttypes import ACTIVITY_JSON
from ..model import Site
from ..store import AnnouncedCounts, PlannedActivity, QuoteAuthorization, Store
from ..store.conversations import post_conversation
from ..store.protocol import Visibility
from .inbox_handlers import (
    RECEIVED_MANIFEST,
    ActivityHandler,
    OwnPosts,
    Plan,
    Rejected,
    _fetch_failed,
    _first_url,
    _received,
    id_of,
    same_host,
)
from .manifest import MANIFEST_NAME, OBJECTS_DIR, shard_of

__all__ = [
    "QUOTES_PATH",
    "STALE_AFTER",
    "CountRefresher",
    "authorization_id",
    "authorization_routes",
    "meaningful_change",
    "prepare_quote_request",
    "refresh_counts",
    "revoke_blocked",
    "revoke_deleted_quote",
    "revoke_for_deleted_posts",
]

log = logging.getLogger("fedipress.inbox")

# Where the service serves the authorizations it grants, on the blog's own host (Mastodon
# checks an authorization against the quoted account's server); the host configuration
# proxies this folder to the service like the inbox (federation/hosting.py).
QUOTES_PATH = "/.fedipress/quotes/"
_TOKEN_CHARS = frozenset("0123456789abcdef")
_TOKEN_LENGTH = 32
# A change of likes or boosts too small to be "meaningful" is still sent after this long.
STALE_AFTER = timedelta(hours=6)
_QUOTE_PROPERTIES = ("quote", "quoteUri", "quoteUrl", "_misskey_quote")
_PUBLIC_NAMES = frozenset({d.PUBLIC, "as:Public", "Public"})


def _origin(config: SiteConfig) -> str:
    parts = urlsplit(config.base_url)
    return f"{parts.scheme}://{parts.netloc}"


def authorization_id(config: SiteConfig, quoting_object_id: str) -> str:
    """The authorization's URL for one quoting post: stable, so a repeated request (a retry,
    a new request id) is answered with the same authorization."""
    token = hashlib.sha256(quoting_object_id.encode("utf-8")).hexdigest()[:_TOKEN_LENGTH]
    return f"{_origin(config)}{QUOTES_PATH}{token}"


def _visibility(obj: Mapping[str, Any]) -> Visibility:
    """Who the quoting post's author addressed: only public and unlisted quotes are shown."""
    def names(key: str) -> set[str]:
        value = obj.get(key)
        items = value if isinstance(value, list) else [value]
        return {i for i in (id_of(x) for x in items[:100]) if i}

    if names("to") & _PUBLIC_NAMES:
        return "public"
    if names("cc") & _PUBLIC_NAMES:
        return "unlisted"
    return "followers"


# --- QuoteRequest -----------------------------------------------------------------------------


async def prepare_quote_request(handler: ActivityHandler, activity: Mapping[str, Any],
                                actor: str) -> Plan:
    """The plan for a verified QuoteRequest (see the module docstring); raises Rejected for a
    request that cannot be answered at all."""
    config = handler.config
    request_id = id_of(activity)
    if request_id is None:
        raise Rejected(400, "activity has no id")
    quoted_ref = id_of(activity.get("object"))
    target = handler.own_posts.resolve(quoted_ref)
    if target is None:
        return Plan("ignored", f"QuoteRequest of {(quoted_ref or 'nothing')[:200]}, which is"
                               " not one of this blog's posts")
    instrument = activity.get("instrument")
    quoting = id_of(instrument)
    if quoting is None or not quoting.startswith(("https://", "http://")):
        raise Rejected(400, "QuoteRequest has no instrument (the quoting post's id)")
    if not same_host(quoting, actor):
        raise Rejected(400, "the quoting post is not on the requesting actor's server")
    try:
        remote = await handler._actor(actor, stale_ok=True)  # noqa: SLF001 (same package)
    except FetchError as exc:
        log.info("quoting actor %s not fetched: %s", actor[:200], exc)
        raise _fetch_failed(exc, "the quoting actor could not be fetched") from None
    inbox = remote.inbox
    blog_actor = handler.actor_id
    digest = hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:32]

    document = handler.own_posts.documents().get(target, {})
    approval = d.read_approval(document.get("interactionPolicy"))
    follower = await handler._db(handler.store.get_follower, actor)  # noqa: SLF001
    followers = config.url("followers.json")
    is_follower = follower is not None and follower.state == "accepted"
    decision = approval.decide(actor, follower_of=followers if is_follower else None)
    if decision != "automatic":
        # The blog approves no quote by hand (it publishes no manualApproval): refused.
        reject_id = f"{blog_actor}#rejects/quote-{digest}"
        body = d.serialize(d.quote_reject_activity(blog_actor, activity, reject_id=reject_id))
        rejected = PlannedActivity(reject_id, None, "Reject", body)

        def refuse(store: Store, now: datetime) -> None:
            store.plan_deliveries(rejected, [inbox], now)

        why = "followers only" if approval.automatic and followers in approval.automatic \
            else "its policy"
        return Plan("quote-rejected", f"quote of {target} by {actor[:200]} refused ({why});"
                    f" Reject queued to {inbox[:200]}", refuse, wake=True)

    obj = await _quoting_post(handler, instrument, quoting, actor)
    if obj is not None:
        quoted = next((id_of(obj.get(k)) for k in _QUOTE_PROPERTIES if obj.get(k)), None)
        if quoted is not None and handler.own_posts.resolve(quoted) != target:
            raise Rejected(400, "the quoting post quotes another post than the request names")
    auth_id = authorization_id(config, quoting)
    auth_body = d.serialize(d.quote_authorization_document(
        blog_actor, auth_id, quoting=quoting, quoted=target))
    accept_id = f"{blog_actor}#accepts/quote-{digest}"
    accept = PlannedActivity(accept_id, None, "Accept", d.serialize(d.quote_accept_activity(
        blog_actor, activity, accept_id=accept_id, authorization_id=auth_id)))
    author = await handler._author(actor)  # noqa: SLF001
    # Unknown audience (the post could not be fetched): kept for the author, never shown.
    visibility: Visibility = _visibility(obj) if obj is not None else "followers"
    page = (_first_url(obj.get("url")) if obj is not None else None) or quoting

    def write(store: Store, now: datetime) -> None:
        # The authorization first: it is served as soon as this transaction commits, which is
        # before the Accept that names it can be sent.
        store.put_quote_authorization(QuoteAuthorization(
            auth_id, target, quoting, actor, auth_body, now, None, inbox))
        received = _received(author, activity_id=request_id, kind="quote", actor=actor,
                             object_id=target, published=(obj or {}).get("published"), now=now)
        store.add_interaction(replace(received, url=page, reply_object_id=quoting,
                                      visibility=visibility))
        store.plan_deliveries(accept, [inbox], now)

    return Plan("quote", f"{target} quoted by {quoting[:200]} ({visibility}); Accept queued"
                f" to {inbox[:200]}", write, wake=True)


async def _quoting_post(handler: ActivityHandler, instrument: Any, quoting: str,
                        actor: str) -> dict[str, Any] | None:
    """The quoting post: embedded from the actor's own server, else fetched from its origin.
    None when its server will not show it to the blog (a private post): the quote is then
    approved but kept private. Raises Rejected when the post is not the actor's."""
    obj: dict[str, Any] | None = None
    if isinstance(instrument, Mapping) and len(instrument) > 2:
        obj = dict(instrument)
    else:
        try:
            obj = (await handler.fetcher.fetch_json(quoting)).data
        except FetchError as exc:
            failed = _fetch_failed(exc, "the quoting post could not be fetched")
            if failed.status == 503:
                raise failed from None
            log.info("quoting post %s not fetched (kept private): %s", quoting[:200], exc)
            return None
    if id_of(obj.get("id")) != quoting:
        raise Rejected(400, "the quoting post's id differs from the request's instrument")
    if id_of(obj.get("attributedTo")) != actor:
        raise Rejected(400, "the quoting post is not by the requesting actor")
    return obj


# --- revocation ------------------------------------------------------------------------------


def _revoke(config: SiteConfig, store: Store, auth: QuoteAuthorization, now: datetime,
            why: str) -> bool:
    return _revoke_as(config.url("actor.json"), store, auth, now, why)


def _revoke_as(blog_actor: str, store: Store, auth: QuoteAuthorization, now: datetime,
               why: str) -> bool:
    """Revoke `auth`, forget the quote and queue the Delete of the authorization to the quoter
    (in the caller's transaction, if any)."""
    if not store.revoke_quote_authorization(auth.authorization_id, now):
        return False
    for i in store.interactions_for_object(auth.quoted_object_id, approved_only=False):
        if i.kind == "quote" and i.reply_object_id == auth.quoting_object_id:
            store.remove_interaction_by_activity(i.activity_id, i.actor_id)
    inbox = auth.inbox
    if inbox is None:
        cached = store.get_actor(auth.actor_id)
        inbox = cached.inbox if cached is not None else None
    if inbox is None:
        log.warning("quote authorization %s revoked (%s) but %s has no known inbox: no Delete"
                    " sent; its URL answers 410 Gone", auth.authorization_id, why,
                    auth.actor_id[:200])
        return True
    delete_id = f"{auth.authorization_id}#delete-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    body = d.serialize(d.authorization_delete_activity(
        blog_actor, auth.authorization_id, auth.actor_id, delete_id=delete_id))
    store.plan_deliveries(PlannedActivity(delete_id, None, "Delete", body), [inbox], now)
    log.info("quote authorization %s revoked (%s): Delete queued to %s",
             auth.authorization_id, why, inbox[:200])
    return True


def revoke_deleted_quote(config: SiteConfig, store: Store, object_id: str, actor: str,
                         now: datetime) -> bool:
    """A Delete of `object_id` by `actor`: when it is a post that quoted ours, its
    authorization is revoked. False when it is no such post (of that actor)."""
    auth = store.quote_authorization_for(object_id)
    if auth is None or auth.actor_id != actor or auth.revoked_at is not None:
        return False
    return _revoke(config, store, auth, now, "the quoting post was deleted")


def revoke_for_deleted_posts(store: Store, activities: Iterable[PlannedActivity],
                             now: datetime) -> int:
    """publish deletes our own posts (the `Delete` activities among `activities`): every
    standing authorization to quote one of them is revoked, its URL answering 410 Gone and a
    `Delete` of it queued to the quoter, in the caller's transaction, the one that queues the
    Delete of the post. How many were revoked."""
    deleted: dict[str, str] = {}  # post object id -> the blog actor that deletes it
    for activity in activities:
        if activity.kind != "Delete" or not activity.object_id:
            continue
        actor = json.loads(activity.body).get("actor")
        if isinstance(actor, str):
            deleted[activity.object_id] = actor
    if not deleted:
        return 0
    revoked = 0
    for auth in store.active_quote_authorizations():
        if auth.quoted_object_id in deleted:
            revoked += _revoke_as(deleted[auth.quoted_object_id], store, auth, now,
                                  "the quoted post was deleted")
    return revoked


def _configured_block(config: SiteConfig, actor: str) -> bool:
    host = (urlsplit(actor).hostname or "").lower()
    for entry in (b.strip().lower() for b in config.fediverse.blocked if b.strip()):
        if "://" in entry:
            if actor.lower() == entry:
                return True
        else:
            domain = entry.removeprefix("*.").strip(".")
            if host == domain or host.endswith("." + domain):
                return True
    return False


def revoke_blocked(config: SiteConfig, store: Store, now: datetime) -> int:
    """Revoke every standing authorization whose quoter is now blocked (in the store or in
    site.yaml); how many were revoked."""
    revoked = 0
    for auth in store.active_quote_authorizations():
        if _configured_block(config, auth.actor_id) or store.is_blocked(auth.actor_id):
            with store.transaction():
                revoked += _revoke(config, store, auth, now, "its author is blocked")
    return revoked


# --- serving authorizations --------------------------------------------------------------------


def authorization_routes(config: SiteConfig, store: Store) -> list[BaseRoute]:
    """GET QUOTES_PATH<token>: the authorization (application/activity+json) while it stands,
    410 Gone with a Tombstone once revoked, 404 for anything else. Anyone may fetch it: it
    only says that a public post may quote another."""

    async def serve(request: Request) -> Response:
        if not config.fediverse.enabled:  # the blog has left: as the host configuration says
            return Response("410 Gone: this blog has left the fediverse\n", 410,
                            media_type="text/plain")
        token = request.path_params.get("token", "")
        if len(token) != _TOKEN_LENGTH or not set(token) <= _TOKEN_CHARS:
            return JSONResponse({"error": "no such quote authorization"}, 404)
        wanted = f"{_origin(config)}{QUOTES_PATH}{token}"
        found = await anyio.to_thread.run_sync(store.get_quote_authorization, wanted)
        headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=60"}
        if found is None:
            return JSONResponse({"error": "no such quote authorization"}, 404)
        if found.revoked_at is not None:
            gone = d.serialize(d.with_context({
                "id": found.authorization_id, "type": "Tombstone",
                "formerType": "QuoteAuthorization", "deleted": d.iso(found.revoked_at)}))
            return Response(gone, 410, headers=headers, media_type=ACTIVITY_JSON)
        return Response(found.body, 200, headers=headers, media_type=ACTIVITY_JSON)

    return [Route(QUOTES_PATH + "{token}", serve, methods=["GET", "HEAD"])]


# --- count refreshes ---------------------------------------------------------------------------

_Counts = tuple[int, int, int]  # replies, likes, shares


def meaningful_change(before: _Counts, after: _Counts) -> bool:
    """Whether public counts moved enough to tell followers' servers at once: any change of the
    replies; likes or boosts by a tenth or more (at least one)."""
    if before[0] != after[0]:
        return True
    return any(abs(b - a) >= max(1, b // 10) for b, a in zip(before[1:], after[1:], strict=True))


def _published_counts(doc: Mapping[str, Any]) -> _Counts:
    """The counts a post's document (as built) carries."""
    def total(key: str) -> int:
        value = doc.get(key)
        count = value.get("totalItems") if isinstance(value, Mapping) else None
        return count if isinstance(count, int) else 0

    return total("replies"), total("likes"), total("shares")


def _refreshed(doc: Mapping[str, Any], thread: d.Thread) -> dict[str, Any]:
    """The post's document with its collections as of now."""
    page = doc.get("url")
    url = page if isinstance(page, str) else ""
    replies = doc.get("replies")
    if isinstance(replies, Mapping) and isinstance(replies.get("id"), str):
        url = replies["id"].removesuffix("replies.json")
    fresh = {k: v for k, v in doc.items() if k != "@context"}
    fresh["replies"] = replies_collection(url, thread)
    fresh["likes"] = counted_collection(likes_id(url), thread.likes)
    fresh["shares"] = counted_collection(shares_id(url), thread.shares)
    fresh.setdefault("context", context_id(url))
    return d.with_context(fresh)


def _full_documents(state_dir: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The documents as built of the posts `wanted`, read from the object files that hold them
    (a manifest at 10,000 posts is ~170 MB: only the few files needed are read), then from the
    manifest publish last sent through the owner API."""
    found: dict[str, dict[str, Any]] = {}

    def take(objects: Any) -> None:
        if isinstance(objects, Mapping):
            for oid in wanted - found.keys():
                entry = objects.get(oid)
                doc = entry.get("doc") if isinstance(entry, Mapping) else None
                if isinstance(doc, dict):
                    found[oid] = doc

    try:
        head = json.loads((state_dir / MANIFEST_NAME).read_bytes())
        files = head.get("object_files") if isinstance(head, dict) else None
        if isinstance(files, list):
            shards = {f"objects-{shard_of(oid):02d}-" for oid in wanted}
            for name in files:
                if isinstance(name, str) and name[:11] in shards and "/" not in name:
                    take(json.loads((state_dir / OBJECTS_DIR / name).read_bytes()))
        elif isinstance(head, dict):
            take(head.get("objects"))  # an older manifest: the objects inline
    except (OSError, ValueError) as exc:
        log.warning("count refresh: the build's manifest is unreadable (%s)", exc)
    if wanted - found.keys():
        try:
            received = json.loads((state_dir / RECEIVED_MANIFEST).read_bytes())
            take(received.get("objects") if isinstance(received, dict) else None)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("count refresh: the received manifest is unreadable (%s)", exc)
    return found


def refresh_counts(config: SiteConfig, store: Store, own_posts: OwnPosts,
                   now: datetime) -> list[str]:
    """Queue a count refresh (an Update of the post, to every follower's inbox) for each post
    whose public counts changed meaningfully (see the module docstring); the object ids.

    One grouped query finds the posts whose counts moved; only those have their public
    conversation read (post_conversation, the build's rule) and their documents loaded."""
    minutes = config.fediverse.count_refresh_minutes
    if minutes <= 0 or not config.fediverse.enabled or config.fediverse.paused:
        return []
    interval = timedelta(minutes=minutes)
    documents = own_posts.documents()
    if not documents:
        return []
    inboxes = list(store.iter_delivery_inboxes())
    if not inboxes:
        return []
    live = {oid for oid, entry in store.get_ledger().items() if entry.state == "live"}
    counted = store.interaction_counts()
    announced = store.announced_counts()
    due: dict[str, tuple[_Counts, d.Thread, AnnouncedCounts | None]] = {}
    for oid, doc in sorted(documents.items()):
        last = announced.get(oid)
        before = (last.replies, last.likes, last.shares) if last else _published_counts(doc)
        seen = counted.get(oid)
        rough = (seen.replies, seen.likes, seen.shares) if seen and oid in live else (0, 0, 0)
        if rough == before:
            continue
        since = now - last.sent_at if last is not None else None
        if since is not None and since < interval:
            continue  # at most one refresh per post per interval, however many likes
        conv = post_conversation(oid, store.interactions_for_object(oid)) if oid in live \
            else None
        thread = d.NO_THREAD if conv is None else d.Thread(
            tuple(r.id for r in conv.replies), len(conv.likes), len(conv.boosts))
        after: _Counts = (len(thread.replies), thread.likes, thread.shares)
        if after == before:
            continue
        if not meaningful_change(before, after) and since is not None and since < STALE_AFTER:
            continue
        due[oid] = (before, thread, last)
    if not due:
        return []
    full = _full_documents(config.state_dir, set(due))
    site = Site(config, (), ())
    sent: list[str] = []
    for oid, (before, thread, last) in due.items():
        built = full.get(oid)
        if built is None:
            log.warning("count refresh of %s skipped: its document is not in the manifest", oid)
            continue
        obj = _refreshed(built, thread)
        revision = "counts-" + now.strftime("%Y%m%dT%H%M%S%fZ")
        fitted, _cut = d.fit_activity(d.update_activity(site, obj, revision=revision))
        body = d.serialize(fitted)
        if len(body) > d.MAX_ACTIVITY_BYTES:
            log.warning("count refresh of %s skipped: %d KiB, over what servers accept", oid,
                        len(body) // 1024)
            continue
        after = (len(thread.replies), thread.likes, thread.shares)
        update = PlannedActivity(str(fitted["id"]), oid, "Update", body)
        with store.transaction():
            # Another service on the same store may have refreshed this post since `last`
            # was read: then it sent the Update and this one is dropped, not sent twice.
            if not store.replace_announced_counts(AnnouncedCounts(oid, *after, now), last):
                log.info("count refresh of %s dropped: another process refreshed it first", oid)
                continue
            store.plan_deliveries(update, inboxes, now)
        log.info("count refresh of %s queued to %d inboxes: replies %d, likes %d, boosts %d"
                 " (were %d, %d, %d)", oid, len(inboxes), *after, *before)
        sent.append(oid)
    return sent


@dataclass
class CountRefresher:
    """The service's loop for refreshes and revocations: every `tick`, revoke authorizations
    of blocked quoters and queue count refreshes; wakes the delivery loop when it queued
    anything. One tick's failure is logged and the loop goes on."""

    config: SiteConfig
    store: Store
    clock: Callable[[], datetime]
    wake: Callable[[], None] | None = None
    tick: float = 60.0

    def __post_init__(self) -> None:
        state = self.config.state_dir
        self.own_posts = OwnPosts(state / "manifest.json", self.config.base_url,
                                  state / RECEIVED_MANIFEST)

    def run_once(self) -> int:
        now = self.clock()
        revoked = revoke_blocked(self.config, self.store, now)
        refreshed = refresh_counts(self.config, self.store, self.own_posts, now)
        return revoked + len(refreshed)

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                queued = await anyio.to_thread.run_sync(self.run_once)
            except Exception:  # a bad tick must not end refreshes for the service's lifetime
                log.exception("count refresh and quote revocation tick failed")
                queued = 0
            if queued and self.wake is not None:
                self.wake()
            try:
                await asyncio.wait_for(stop.wait(), self.tick)
            except TimeoutError:
                pass
