"""Mentions that notify: `@user@server` resolved to the account's actor and addressed.

Mastodon creates a mention (and a notification) only when the object's `Mention` tag has the
actor id as `href` AND that actor is in `to`/`cc` (fediverse-interop.md, status_parser). The
build alone cannot know actor ids, so:

    publish:  handles of the posts being announced -> resolve_mentions() (mention cache in the
              store, else WebFinger `self` link -> actor) -> plan_changes(mentions=...) puts the
              actor ids in tag + cc -> queue_plan(extra_recipients=...) also delivers to the
              mentioned accounts' (shared) inboxes.
    build:    reads the cache (store.snapshot, read-only) so object.json shows the same ids.

An unresolvable mention keeps its profile link (https://server/@user, Mastodon still links
it), is warned about once per run and never fails a publish.

The ledger hash is taken of the CANONICAL (unresolved) form of each object (`canonical_manifest`).
Resolution depends on the network and the cache, so hashing the resolved form would make the
hash move whenever a lookup first succeeds, a cache entry is refreshed, or the build ran before
the cache knew a handle, sending Updates of unchanged posts (old posts too, once the cache is
first filled). The canonical hash only moves when the author edits the post; whatever is sent
(Create or Update) carries the resolutions known at that time.

The functions above the line are pure (documents in, documents out); below it, I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..activitypub import documents as d
from ..errors import FetchError
from ..store import LedgerEntry, PlannedActivity, ResolvedMention, Store
from .remote import RemoteFetcher, actor_url_from_jrd

__all__ = [
    "MENTION_REFRESH",
    "ResolvedMention",
    "canonical_manifest",
    "default_href",
    "delete_inboxes",
    "mention_inboxes",
    "object_handles",
    "resolve_mentions",
    "with_mentions",
]

# A cached resolution older than this is looked up again (accounts move, inboxes change); if
# that lookup fails the old entry is still used, so a resolution never falls back to a link.
MENTION_REFRESH = timedelta(days=7)

_RESOLVED_KINDS = frozenset({"Create", "Update"})


# --- pure -------------------------------------------------------------------------------------


def default_href(handle: str) -> str:
    """The profile link an unresolved `user@server` points at (what documents writes)."""
    user, server = handle.split("@", 1)
    return f"https://{server}/@{user}"


def _is_mention(tag: Any) -> bool:
    return (
        isinstance(tag, Mapping) and tag.get("type") == "Mention"
        and isinstance(tag.get("name"), str) and "@" in tag["name"][1:]
    )


def _mention_tags(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tags = doc.get("tag")
    return [t for t in (tags if isinstance(tags, list) else []) if _is_mention(t)]


def object_handles(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The `user@server` handles an object document mentions, in tag order."""
    return tuple(dict.fromkeys(str(t["name"])[1:] for t in _mention_tags(doc)))


def with_mentions(doc: Mapping[str, Any], resolved: Mapping[str, str]) -> dict[str, Any]:
    """`doc` with each Mention's href (and the cc entry for it) from `resolved`.

    Handles missing from `resolved` get their profile link, so the result depends only on the
    post and `resolved`, never on which form `doc` was in: with_mentions(doc, {}) is the
    unresolved form, and the result equals documents.object_document(..., mentions=resolved).
    """
    if not _mention_tags(doc):
        return dict(doc)
    old_hrefs: set[Any] = set()
    new_hrefs: list[str] = []
    tags: list[Any] = []
    for tag in doc["tag"]:
        if _is_mention(tag):
            handle = str(tag["name"])[1:]
            href = resolved.get(handle) or default_href(handle)
            old_hrefs.add(tag.get("href"))
            new_hrefs.append(href)
            tags.append({**tag, "href": href})  # same key order, new value
        else:
            tags.append(tag)
    out = dict(doc)
    out["tag"] = tags
    cc = [c for c in doc.get("cc", []) if c not in old_hrefs]
    out["cc"] = cc + [h for h in dict.fromkeys(new_hrefs) if h not in cc]
    return out


def canonical_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The build's federation manifest with every object in its unresolved form and hashed so.

    The build may already have written resolved ids from the cache; the ledger must not see
    that (see the module docstring). Objects without mentions are passed through untouched.
    """
    objects: dict[str, Any] = {}
    for oid, item in manifest.get("objects", {}).items():
        doc = item.get("doc") if isinstance(item, Mapping) else None
        if isinstance(doc, Mapping) and _mention_tags(doc):
            canonical = with_mentions(doc, {})
            item = {**item, "doc": canonical, "hash": d.object_hash(canonical)}
        objects[oid] = item
    return {**manifest, "objects": objects}


def mention_inboxes(
    activities: Sequence[PlannedActivity], resolved: Mapping[str, ResolvedMention]
) -> dict[str, tuple[str, ...]]:
    """Per Create/Update activity id, the delivery inboxes of the accounts it mentions."""
    extra: dict[str, tuple[str, ...]] = {}
    by_actor = {m.actor_id: m for m in resolved.values()}
    for activity in activities:
        if activity.kind not in _RESOLVED_KINDS:
            continue
        obj = json.loads(activity.body).get("object")
        if not isinstance(obj, Mapping):
            continue
        inboxes = [
            by_actor[str(t["href"])].delivery_inbox
            for t in _mention_tags(obj)
            if str(t.get("href")) in by_actor
        ]
        if inboxes:
            extra[activity.activity_id] = tuple(dict.fromkeys(inboxes))
    return extra


# --- I/O: the cache and WebFinger ----------------------------------------------------------------


def delete_inboxes(
    activities: Sequence[PlannedActivity], ledger: Mapping[str, LedgerEntry], store: Store
) -> dict[str, tuple[str, ...]]:
    """Per Delete activity id, the inboxes of the accounts the deleted post's last announced
    version addressed (read from the stored activity), so their copies go away too."""
    extra: dict[str, tuple[str, ...]] = {}
    for activity in activities:
        entry = ledger.get(activity.object_id or "")
        if activity.kind != "Delete" or entry is None or entry.last_activity_id is None:
            continue
        last = store.get_activity(entry.last_activity_id)
        obj = json.loads(last.body).get("object") if last is not None else None
        if not isinstance(obj, Mapping):
            continue
        inboxes = []
        for tag in _mention_tags(obj):
            known = store.get_mention(str(tag["name"])[1:])
            if known is not None and known.actor_id == tag.get("href"):
                inboxes.append(known.delivery_inbox)
        if inboxes:
            extra[activity.activity_id] = tuple(dict.fromkeys(inboxes))
    return extra




async def _lookup(fetcher: RemoteFetcher, handle: str, now: datetime) -> ResolvedMention:
    jrd = await fetcher.webfinger(handle)
    url = actor_url_from_jrd(jrd)
    if url is None:
        raise FetchError(f"{handle}: WebFinger answer has no ActivityPub `self` link")
    actor = await fetcher.fetch_actor(url)
    return ResolvedMention(
        acct=handle,
        actor_id=actor.id,
        inbox=actor.inbox,
        shared_inbox=actor.shared_inbox,
        profile_url=actor.profile_url,
        resolved_at=now,
    )


async def resolve_mentions(
    handles: Iterable[str],
    *,
    store: Store,
    fetcher: RemoteFetcher | None,
    now: datetime,
    warn: Callable[[str], None],
    refresh_after: timedelta = MENTION_REFRESH,
) -> dict[str, ResolvedMention]:
    """`handle -> ResolvedMention` for every handle that resolves, cache first.

    Fresh lookups are stored in the cache. With `fetcher=None` (a dry run) only the cache is
    read and nothing is written. A handle that cannot be resolved is left out, with one warning.
    """
    found: dict[str, ResolvedMention] = {}
    for handle in dict.fromkeys(handles):
        cached = store.get_mention(handle)
        if cached is not None and (fetcher is None or now - cached.resolved_at < refresh_after):
            found[handle] = cached
            continue
        if fetcher is None:
            continue
        try:
            fresh = await _lookup(fetcher, handle, now)
        except FetchError as exc:
            if cached is not None:
                found[handle] = cached  # a failed refresh keeps the known actor
                continue
            warn(f"warning: @{handle}: not resolved ({exc}); it stays a profile link and "
                 "that account is not notified")
            continue
        store.put_mention(fresh)
        found[handle] = fresh
    return found
