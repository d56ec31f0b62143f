"""`fedipress leave`: tell every follower's server that the blog's account is gone.

Leaving is one signed `Delete` of the actor (object = the actor id, to the public, as servers
send on account deletion), queued for every follower's (shared) inbox through the same queue
and delivery worker as `publish`, so it is retried with backoff and survives a killed run.
In the same store transaction the followers are forgotten: coming back is a fresh start, and
a later publish must not announce posts to servers that have dropped the account.

The library does not ask for confirmation and does not edit site.yaml: the command asks
(or takes --yes), and the author switches `fediverse.enabled: false` and rebuilds, so the
configuration stays theirs and its comments stay put. `preview_leave` gives what the prompt
shows; `run_leave` does it. Both take typed options and return a report.

Through the blog's service (where the store and the key live when CI publishes), the owner
API's `leave` route does the same with `leave_status` (GET: what the prompt shows, and how the
Delete's deliveries stand) and `queue_leave` (POST: the one transaction; the service's own
delivery loop sends and retries); service_client.leave_through_service is the command's side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..activitypub import documents as d
from ..config import SiteConfig
from ..errors import FedipressError
from ..store import PlannedActivity, open_store, site_store_location
from ..wording import docs_url, plural
from .publish_checks import shown_path
from .publish_plan import Plan, queue_plan, recipients

if TYPE_CHECKING:
    from ..store import Store
    from .delivery import DeliverySummary

__all__ = ["LeaveOptions", "LeavePreview", "LeaveQueued", "LeaveResult", "NEXT_STEP",
           "actor_delete", "leave_status", "preview_leave", "queue_leave", "run_leave"]

NEXT_STEP = ("next: set `fediverse.enabled: false` in site.yaml, then build and deploy, so the"
             f" blog's ActivityPub documents answer 410 Gone ({docs_url('leaving')})")


@dataclass(frozen=True)
class LeaveOptions:
    """`wait`: seconds to keep delivering (and retrying) in this run; what is left stays
    queued for the inbox service's delivery loop or the next `leave`. `allow_private`: let
    deliveries reach loopback and private addresses (tests, a LAN)."""

    wait: float = 60.0
    allow_private: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class LeavePreview:
    """What leaving would do, for the confirmation prompt."""

    handle: str  # user@domain, no leading @
    actor_id: str
    followers: int  # accepted followers and pending follow requests
    inboxes: int  # distinct delivery inboxes of the accepted followers


@dataclass(frozen=True)
class LeaveResult:
    """What `leave` did: deliveries queued now, followers forgotten, the delivery run."""

    activity_id: str
    queued: int
    followers_removed: int
    summary: DeliverySummary

    @property
    def exit_code(self) -> int:
        """0: delivered or still retrying; 1: some server refused it for good."""
        return 1 if self.summary.failed else 0


@dataclass(frozen=True)
class LeaveQueued:
    """What queueing the actor's Delete did: whether it is `new` (False: an earlier leave had
    queued it already, so nobody hears it twice), the deliveries `queued` now (one per
    distinct inbox) and the followers forgotten."""

    activity_id: str
    new: bool
    queued: int
    followers_removed: int

    def as_json(self) -> dict[str, Any]:
        return {"activity": self.activity_id, "new": self.new, "queued": self.queued,
                "followers_removed": self.followers_removed}


def actor_delete(config: SiteConfig) -> PlannedActivity:
    """The signed-to-be Delete of the blog's actor, with the exact bytes sent on each try."""
    actor = config.url("actor.json")
    doc = d.actor_delete_activity(actor)
    return PlannedActivity(activity_id=str(doc["id"]), object_id=actor, kind="Delete",
                           body=d.serialize(doc))


def _open(config: SiteConfig) -> Store:
    path = site_store_location(config)
    if isinstance(path, Path) and not path.is_file():
        raise FedipressError(
            f"{shown_path(path)} does not exist: `fedipress leave` runs where the followers"
            " and the private key are (where `fedipress inbox` runs); nothing was sent")
    return open_store(path)


def preview_leave(config: SiteConfig) -> LeavePreview:
    """Who would be told. FedipressError when there is no store here."""
    store = _open(config)
    try:
        return LeavePreview(
            handle=config.handle, actor_id=config.url("actor.json"),
            followers=store.count_followers(None), inboxes=sum(1 for _ in recipients(store)))
    finally:
        store.close()


def queue_leave(config: SiteConfig, store: Store, now: datetime) -> LeaveQueued:
    """Queue the actor's Delete for every follower's inbox and forget the followers, in one
    transaction: after it returns a crash loses nothing, and a second call (the Delete is
    stored already) queues nothing new and forgets whoever followed since."""
    activity = actor_delete(config)
    with store.transaction():
        stored = queue_plan(store, Plan(activities=(activity,), ledger_updates=()), now)
        gone = [f.actor_id for f in store.iter_followers(None)]
        for actor_id in gone:
            store.remove_follower(actor_id)
    return LeaveQueued(activity_id=activity.activity_id, new=bool(stored.new_activities),
                       queued=stored.deliveries, followers_removed=len(gone))


# Failed deliveries of the Delete are looked for among at most this many failed rows.
_FAILED_SCAN = 100_000


def leave_status(config: SiteConfig, store: Store) -> dict[str, Any]:
    """The owner API's answer to GET leave: who would be told (for the prompt) and, once the
    Delete is queued, how many of its deliveries are still pending and how many failed."""
    activity = actor_delete(config)
    queued = store.get_activity(activity.activity_id) is not None
    failed = sum(1 for row in store.list_deliveries(["failed", "expired"], _FAILED_SCAN)
                 if row.activity_id == activity.activity_id) if queued else 0
    return {"handle": config.handle, "actor": config.url("actor.json"),
            "followers": store.count_followers(None),
            "inboxes": sum(1 for _ in recipients(store)),
            "activity": activity.activity_id, "queued": queued,
            "pending": store.pending_for_activity(activity.activity_id) if queued else 0,
            "failed": failed}


def run_leave(
    config: SiteConfig,
    options: LeaveOptions,
    *,
    out: Callable[[str], None],
    err: Callable[[str], None],
) -> LeaveResult:
    """Queue the actor's Delete for every follower's inbox and forget the followers, in one
    transaction; then deliver for up to `options.wait` seconds. Callers confirm first."""
    from .delivery import DeliveryWorker, owner_id, recover_dead_leases
    from .keys import load_private_key

    if options.wait < 0:
        raise FedipressError("--wait: must be 0 or more seconds")
    # The key before the store is touched: a Delete that cannot be signed must not be queued
    # (and followers must not be forgotten without being told).
    private_key = load_private_key(config)
    store = _open(config)
    try:
        done = queue_leave(config, store, datetime.now(UTC))
        # Printed only after the commit: from here on a killed run loses nothing.
        if done.new:
            out(f"queued the Delete of {config.url('actor.json')} for"
                f" {plural(done.queued, 'inbox', 'inboxes')};"
                f" forgot {plural(done.followers_removed, 'follower')}")
        else:
            out(f"the Delete of {config.url('actor.json')} was queued by an earlier `leave`;"
                f" delivering what is still queued")
        owner = owner_id("leave")
        released = recover_dead_leases(store)
        if released and options.verbose:
            err(f"requeued {plural(released, 'delivery')} left in flight by a killed run")
        worker = DeliveryWorker.for_site(
            store, config, private_key, owner=owner, allow_private=options.allow_private,
            log=err if options.verbose else None,
        )
        summary = asyncio.run(
            worker.run_until(datetime.now(UTC) + timedelta(seconds=options.wait)))
        out(summary.line())
        if summary.retrying:
            out("what is still queued is retried by `fedipress inbox` while it runs, or by"
                " running `fedipress leave` again")
        out(NEXT_STEP)
        return LeaveResult(activity_id=done.activity_id, queued=done.queued,
                           followers_removed=done.followers_removed, summary=summary)
    finally:
        store.close()
