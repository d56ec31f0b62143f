"""`fedipress followers`: list, add, remove; follow requests: list, approve, reject.

The inbox service fills the followers table from Follow activities; these commands let the owner
look at it and fix it by hand. `approve_follow_request` and `reject_follow_request` are library
functions the inbox service uses too: each changes the follower and queues the Accept/Reject in
one transaction, so the answer is never lost (the delivery worker sends it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..activitypub import documents as d
from ..activitypub.remote_html import safe_handle, terminal_safe
from ..config import SiteConfig
from ..errors import FedipressError, KeyPairError
from ..model import Site
from ..store import Follower, PlannedActivity, Store, open_site_store
from ..wording import plural
from .moderation import follower_accepted

__all__ = [
    "FollowerList",
    "add_follower",
    "add_follower_by_url",
    "answer_follow_request",
    "answer_id",
    "approve_follow_request",
    "follow_requests",
    "follower_json",
    "follower_line",
    "list_followers",
    "reject_follow_request",
    "remove_follower",
]


def answer_id(config: SiteConfig, kind: str, follow: dict[str, Any]) -> str:
    """A stable id for our Accept/Reject of `follow`: one answer per Follow id."""
    key = str(follow.get("id") or follow.get("actor") or "")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{config.url('actor.json')}#{kind.lower()}s/{digest}"


def _follow_of(raw: bytes | None, actor_id: str, config: SiteConfig) -> dict[str, Any]:
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    # No stored Follow (added by hand): answer a reconstructed one; Mastodon matches on
    # actor and object when it cannot find the id.
    return {"type": "Follow", "actor": actor_id, "object": config.url("actor.json")}


def _answer(
    store: Store, config: SiteConfig, actor_id: str, kind: str, now: datetime
) -> Follower | None:
    with store.transaction():
        request = next(
            (r for r in store.list_follow_requests() if r.follower.actor_id == actor_id), None
        )
        if request is None:
            return None
        follow = _follow_of(request.follow_activity, actor_id, config)
        site = Site(config=config, posts=(), pages=())
        aid = answer_id(config, kind, follow)
        if kind == "Accept":
            follower = store.approve_follow_request(actor_id)
            doc = d.accept_activity(site, follow, accept_id=aid)
            follower_accepted(config.fediverse, store, actor_id)
        else:
            store.reject_follow_request(actor_id)
            follower = request.follower
            doc = d.reject_activity(site, follow, reject_id=aid)
        if follower is None:
            return None
        store.plan_deliveries(PlannedActivity(aid, None, kind, d.serialize(doc)),
                              [follower.inbox], now)
        return follower


def approve_follow_request(
    store: Store, config: SiteConfig, actor_id: str, *, now: datetime
) -> Follower | None:
    """Accept a pending follow request: the follower becomes accepted and an Accept (of the
    stored Follow) is queued to its personal inbox, in one transaction. None if no request."""
    return _answer(store, config, actor_id, "Accept", now)


def reject_follow_request(
    store: Store, config: SiteConfig, actor_id: str, *, now: datetime
) -> Follower | None:
    """Reject a pending follow request: it is removed and a Reject is queued, atomically."""
    return _answer(store, config, actor_id, "Reject", now)


def add_follower(
    store: Store, config: SiteConfig, actor_url: str, *, allow_private: bool, now: datetime
) -> Follower:
    """Fetch the actor at `actor_url` (safely; signed when the key is available) and record it."""
    from .keys import load_private_key
    from .remote import FetchPolicy, run_sync, user_agent
    from .signing import SigningAuth

    policy = FetchPolicy.from_options(allow_private, os.environ)
    try:
        auth = SigningAuth.for_actor(config.url("actor.json"), load_private_key(config))
    except KeyPairError:
        auth = None  # unsigned GET: fine for servers without authorized fetch
    actor = run_sync(lambda f: f.fetch_actor(actor_url), policy=policy,
                     user_agent=user_agent(config.base_url), auth=auth)
    follower = Follower(
        actor_id=actor.id, inbox=actor.inbox, shared_inbox=actor.shared_inbox,
        handle=actor.handle, name=actor.name, followed_at=now,
    )
    store.upsert_follower(follower)
    return follower


def follower_line(f: Follower) -> str:
    """One line for people: the handle (or actor URL), the actor and where deliveries go."""
    handle = safe_handle(f.handle)  # remote data: never a terminal control sequence
    who = f"@{handle}" if handle else f.actor_id
    return terminal_safe(f"{who:<40} {f.actor_id} (inbox {f.delivery_inbox})")


def follower_json(f: Follower) -> str:
    """One JSON object, for scripts."""
    return terminal_safe(json.dumps({
        "actor": f.actor_id, "inbox": f.inbox, "shared_inbox": f.shared_inbox,
        "handle": f.handle, "name": f.name, "state": f.state,
        "followed_at": f.followed_at.isoformat(),
    }, ensure_ascii=False))


@dataclass(frozen=True)
class FollowerList:
    """`fedipress followers [list]`: every follower, how many, and how many on each server."""

    followers: tuple[Follower, ...]
    total: int
    hosts: tuple[tuple[str, int], ...]

    def lines(self, *, as_json: bool = False) -> list[str]:
        if as_json:
            return [follower_json(f) for f in self.followers]
        lines = [follower_line(f) for f in self.followers]
        lines.append(f"{plural(self.total, 'follower')} on {plural(len(self.hosts), 'server')}")
        lines += [terminal_safe(f"  {count:>6,}  {host}") for host, count in self.hosts]
        return lines


def list_followers(config: SiteConfig) -> FollowerList:
    store = open_site_store(config)
    try:
        return FollowerList(followers=tuple(store.iter_followers()),
                            total=store.count_followers(),
                            hosts=tuple(store.followers_by_host()))
    finally:
        store.close()


def follow_requests(config: SiteConfig) -> tuple[Follower, ...]:
    """`fedipress followers requests`: the accounts waiting for an answer."""
    store = open_site_store(config)
    try:
        return tuple(request.follower for request in store.list_follow_requests())
    finally:
        store.close()


def add_follower_by_url(config: SiteConfig, actor: str, *, allow_private: bool,
                        now: datetime | None = None) -> Follower:
    """`fedipress followers add ACTOR`: fetch the actor and record it as a follower."""
    store = open_site_store(config)
    try:
        return add_follower(store, config, actor, allow_private=allow_private,
                            now=now or datetime.now(UTC))
    finally:
        store.close()


def remove_follower(config: SiteConfig, actor: str) -> None:
    """`fedipress followers remove ACTOR`; refused for an actor that is not a follower."""
    store = open_site_store(config)
    try:
        if not store.remove_follower(actor):
            raise FedipressError(f"{actor}: not a follower (see `fedipress followers list`)")
    finally:
        store.close()


def answer_follow_request(config: SiteConfig, actor: str, *, approve: bool,
                          now: datetime | None = None) -> Follower:
    """`fedipress followers approve|reject ACTOR`: the follower answered (its Accept or
    Reject queued); refused when `actor` has no pending request."""
    store = open_site_store(config)
    try:
        answer = approve_follow_request if approve else reject_follow_request
        answered = answer(store, config, actor, now=now or datetime.now(UTC))
    finally:
        store.close()
    if answered is None:
        raise FedipressError(
            f"{actor}: no pending follow request (see `fedipress followers requests`)"
        )
    return answered
