"""`fedipress followers`: list, add, remove; follow requests: list, approve, reject.

The inbox service fills the followers table from Follow activities; these commands let the owner
look at it and fix it by hand. `approve_follow_request` and `reject_follow_request` are library
functions the inbox service uses too: each changes the follower and queues the Accept/Reject in
one transaction, so the answer is never lost (the delivery worker sends it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

from ..activitypub import documents as d
from ..config import SiteConfig
from ..errors import FedipressError, KeyPairError
from ..model import Site
from ..store import Follower, PlannedActivity, Store, default_store_path, open_store
from ..wording import plural

__all__ = [
    "add_follower",
    "answer_id",
    "approve_follow_request",
    "reject_follow_request",
    "run_followers_command",
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


def _line(f: Follower) -> str:
    who = f"@{f.handle}" if f.handle else f.actor_id
    return f"{who:<40} {f.actor_id} (inbox {f.delivery_inbox})"


def _as_json(f: Follower) -> str:
    return json.dumps({
        "actor": f.actor_id, "inbox": f.inbox, "shared_inbox": f.shared_inbox,
        "handle": f.handle, "name": f.name, "state": f.state,
        "followed_at": f.followed_at.isoformat(),
    }, ensure_ascii=False)


def run_followers_command(
    config: SiteConfig, args: argparse.Namespace, *, allow_private: bool
) -> int:
    action = getattr(args, "followers_command", None) or "list"
    as_json = bool(getattr(args, "json", False))
    now = datetime.now(UTC)
    store = open_store(default_store_path(config.state_dir))
    try:
        if action == "list":
            for follower in store.iter_followers():
                print(_as_json(follower) if as_json else _line(follower))
            if not as_json:
                total = store.count_followers()
                hosts = store.followers_by_host()
                print(f"{plural(total, 'follower')} on {plural(len(hosts), 'server')}")
                for host, count in hosts:
                    print(f"  {count:>6,}  {host}")
            return 0
        if action == "requests":
            for request in store.list_follow_requests():
                f = request.follower
                print(_as_json(f) if as_json else _line(f))
            return 0
        actor = str(args.actor)
        if action == "add":
            follower = add_follower(store, config, actor, allow_private=allow_private, now=now)
            print(f"added {_line(follower)}")
            return 0
        if action == "remove":
            if not store.remove_follower(actor):
                raise FedipressError(f"{actor}: not a follower (see `fedipress followers list`)")
            print(f"removed {actor}")
            return 0
        if action in ("approve", "reject"):
            answer = approve_follow_request if action == "approve" else reject_follow_request
            answered = answer(store, config, actor, now=now)
            if answered is None:
                raise FedipressError(
                    f"{actor}: no pending follow request (see `fedipress followers requests`)"
                )
            kind = "Accept" if action == "approve" else "Reject"
            print(f"{action}d {actor}; its {kind} is queued (sent by the inbox service or the"
                  " next `fedipress publish`)")
            return 0
        raise FedipressError(f"followers: unknown action {action!r}")
    finally:
        store.close()
