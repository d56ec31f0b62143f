"""What a publish sends: the diff of the build against the announced ledger, and its queueing.

  plan_changes(ledger, manifest, ...)   pure: what changed -> activities + ledger updates
  queue_plan(store, plan, now)          one durable transaction: activities, one delivery row per
                                        (activity, de-duplicated inbox), the new ledger
  plan_for_store(config, store, ...)    both for one store: blocked followers purged, mentions
                                        resolved, the extra inboxes (mentioned, deleted-for)

The ledger holds, per federated object (and one row for the actor's profile), the hash of what
was announced. Nothing is sent before the plan commits, and a re-run after a crash computes the
same activity ids from the same ledger, so no activity is ever created twice. The dry run
(publish_dry_run.py) and the real run (publish.py) plan through plan_for_store alike.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from ..activitypub import documents as d
from ..activitypub.audience import FollowerAddress, iter_inboxes
from ..config import SiteConfig
from ..errors import FedipressError
from ..model import Site
from ..store import LedgerEntry, PlannedActivity, PlanResult, ResolvedMention, Store
from ..wording import plural
from .mentions import (
    delete_inboxes,
    mention_inboxes,
    object_handles,
    resolve_mentions,
    with_mentions,
)

__all__ = [
    "OLD_POST_AGE",
    "ActivityTooLargeError",
    "Change",
    "Plan",
    "actor_ledger_id",
    "first_publish_line",
    "plan_changes",
    "plan_for_store",
    "queue_plan",
    "recipients",
]

# A post new to the ledger dated more than this before the publish is back-dated: an import or
# an archive, not news (see _back_dated). The first publish uses the same window, so a post is
# news on the first publish exactly when it would be on a later one: a blog that posts weekly
# or less still announces its latest post when it joins the fediverse, while an imported
# archive of years does not flood its first followers. The reference is the publish's own time
# (the manifest carries no build time; in CI the build runs a moment before), so a build left
# unpublished for a week has nothing new in it either.
OLD_POST_AGE = timedelta(days=7)
# The actor's profile gets a ledger row of its own under this suffix of the actor id, so that
# it can never collide with a post's object id.
_ACTOR_SUFFIX = "#profile"


@dataclass(frozen=True)
class Change:
    """One line of a plan, for --dry-run and logs: what happens to which object and why."""

    action: str  # "Create", "Update", "Delete", "Update(actor)", "record" (no announcement)
    object_id: str
    reason: str
    activity_id: str | None = None


@dataclass(frozen=True)
class Plan:
    """What publish will store: the activities (in send order) and the ledger rows."""

    activities: tuple[PlannedActivity, ...]
    ledger_updates: tuple[LedgerEntry, ...]
    changes: tuple[Change, ...] = field(default=())
    # What was shortened to keep an activity under documents.MAX_ACTIVITY_BYTES, one a line.
    notes: tuple[str, ...] = field(default=())
    # Planned against an empty ledger: the posts' baseline is recorded (first_publish_line).
    first_publish: bool = False

    @property
    def empty(self) -> bool:
        return not self.activities and not self.ledger_updates


def actor_ledger_id(actor_id: str) -> str:
    return actor_id + _ACTOR_SUFFIX


def _parse_time(value: Any, fallback: datetime) -> datetime:
    if not isinstance(value, str):
        return fallback
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _back_dated(published: datetime, now: datetime, last_publish: datetime | None) -> bool:
    """Whether a post new to the ledger is back-dated (an old post added now, an import) and
    not news: dated more than OLD_POST_AGE before `now` and no later than the last publish
    (on the first publish, `last_publish` is None: the age alone decides). A post dated after
    the last publish was not out when it ran (a future-dated post whose date has passed
    since, or one written while nobody published), so it is news however late this publish
    is: a scheduled CI run that missed a week still announces it."""
    if published >= now - OLD_POST_AGE:
        return False
    return last_publish is None or published <= last_publish


def _revision(*parts: str | None) -> str:
    # Chained on the previous activity id, so a post edited A -> B -> A gets three distinct
    # Update ids, while a re-run from the same ledger recomputes the very same id.
    digest = hashlib.sha256()
    for part in parts:
        digest.update((part or "").encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _profile_hash(actor: Mapping[str, Any]) -> str:
    # "published" follows the oldest post; deleting that post is not a profile change.
    return d.object_hash({k: v for k, v in actor.items() if k != "published"})


class ActivityTooLargeError(FedipressError):
    """An activity over documents.MAX_ACTIVITY_BYTES even after shortening: servers would
    refuse it (Misskey at 64 KiB), so it is not sent at all."""


def _activity(doc: Mapping[str, Any], kind: str, object_id: str | None,
              notes: list[str] | None = None) -> PlannedActivity:
    fitted, cut = d.fit_activity(doc)
    body = d.serialize(fitted)
    if len(body) > d.MAX_ACTIVITY_BYTES:
        what = "the profile (shorten its bio or fields)" if kind == "Update(actor)" \
            else f"{object_id} (it mentions too many accounts: split it)"
        raise ActivityTooLargeError(
            f"{kind} of {what} is {len(body) / 1024:.0f} KiB even shortened, over the"
            f" {d.MAX_ACTIVITY_BYTES // 1024} KiB that every server accepts; nothing was sent"
        )
    if cut and notes is not None:
        notes.append(f"{kind} of {object_id}: " + "; ".join(cut)
                     + " (servers refuse bodies over 64 KiB)")
    return PlannedActivity(
        activity_id=str(fitted["id"]), object_id=object_id, kind=kind, body=body
    )


def plan_changes(
    ledger: Mapping[str, LedgerEntry],
    manifest: Mapping[str, Any],
    *,
    site: Site,
    now: datetime,
    backfill: int = 0,
    first_publish: bool | None = None,
    mentions: Mapping[str, str] | None = None,
) -> Plan:
    """The activities and ledger rows that bring followers from `ledger` to `manifest`. Pure.

    `manifest` is `activitypub.site.federation_manifest(...)`: {"actor", "objects"}. `site`
    supplies the actor and followers ids for the activities (its posts are not read).

    - object not in the ledger -> Create, unless it is back-dated (see `_back_dated`: dated
      more than OLD_POST_AGE before `now` and, after the first publish, before the last
      one): of those only the newest `backfill` are announced, the rest recorded silently.
      The first publish (an empty ledger, or `first_publish=True`) follows the same rule,
      so it announces the recent posts and records the older ones as the baseline;
    - hash changed -> Update whose object carries `updated` = now;
    - in the ledger as live but gone from the manifest (deleted, or now `federate: false`) ->
      Delete with a Tombstone; a deleted object that comes back -> Create with a new id;
    - actor profile hash changed -> Update(actor); the first publish records it silently.
    `mentions` ("user@server" -> actor id, from mentions.resolve_mentions) is written into the
    tag and cc of the objects sent; it never changes a hash or an activity id.
    Send order: the actor's Update, Creates oldest first, Updates, Deletes.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    first = (not ledger) if first_publish is None else first_publish
    objects: Mapping[str, Mapping[str, Any]] = manifest.get("objects", {})
    actor: Mapping[str, Any] = manifest["actor"]
    creates: list[tuple[datetime, PlannedActivity]] = []
    updates: list[PlannedActivity] = []
    deletes: list[PlannedActivity] = []
    entries: list[LedgerEntry] = []
    changes: list[Change] = []
    notes: list[str] = []

    newest = sorted(
        objects,
        key=lambda oid: (_parse_time(objects[oid].get("published"), now), oid),
        reverse=True,
    )
    last_publish = None if first else max((e.announced_at for e in ledger.values()),
                                          default=None)
    back_dated = [oid for oid in newest if oid not in ledger and _back_dated(
        _parse_time(objects[oid].get("published"), now), now, last_publish)]
    backfilled = set(back_dated[: max(backfill, 0)])
    if backfill > len(back_dated):
        notes.append(f"--backfill {backfill}: {plural(len(back_dated), 'new back-dated post')}"
                     " to announce")
    recorded_why = (
        "first publish: dated more than a week ago, recorded as already published;"
        " --backfill N announces it" if first else
        "back-dated (dated more than a week ago, before the last publish): recorded as"
        " already announced; --backfill N announces it")
    back_dated_set = set(back_dated)

    for oid in sorted(objects):
        item = objects[oid]
        new_hash = str(item["hash"])
        published = _parse_time(item.get("published"), now)
        obj: dict[str, Any] = dict(item["doc"])
        if mentions:
            obj = with_mentions(obj, mentions)
        old = ledger.get(oid)
        if old is None or old.state == "deleted":
            record, why = "", "new" if old is None else "restored"
            if old is None and oid in backfilled:
                why = "back-dated, announced for --backfill"
            elif old is None and oid in back_dated_set:
                record = recorded_why
            if record:
                entries.append(LedgerEntry(oid, new_hash, now, published, "live", None))
                changes.append(Change("record", oid, record))
                continue
            doc = d.create_activity(site, obj)
            if old is not None:  # re-published after a Delete: Create#id must be new
                doc["id"] = f"{oid}#create-{_revision(new_hash, old.last_activity_id)}"
            activity = _activity(doc, "Create", oid, notes)
            creates.append((published, activity))
            entries.append(LedgerEntry(oid, new_hash, now, published, "live", activity.activity_id))
            changes.append(Change("Create", oid, why, activity.activity_id))
        elif old.content_hash != new_hash:
            obj["updated"] = d.iso(now)
            doc = d.update_activity(
                site, obj, revision=_revision(new_hash, old.last_activity_id or old.content_hash)
            )
            activity = _activity(doc, "Update", oid, notes)
            updates.append(activity)
            entries.append(LedgerEntry(oid, new_hash, now, published, "live", activity.activity_id))
            changes.append(Change("Update", oid, "content changed", activity.activity_id))

    for oid, old in sorted(ledger.items()):
        if oid in objects or old.state != "live" or oid.endswith(_ACTOR_SUFFIX):
            continue
        doc = d.delete_activity(site, oid, deleted=now)
        doc["id"] = f"{oid}#delete-{_revision('delete', old.last_activity_id or old.content_hash)}"
        activity = _activity(doc, "Delete", oid)
        deletes.append(activity)
        entries.append(
            LedgerEntry(oid, old.content_hash, now, old.published_at, "deleted",
                        activity.activity_id)
        )
        changes.append(Change("Delete", oid, "removed or no longer federated",
                              activity.activity_id))

    activities: list[PlannedActivity] = []
    profile_id = actor_ledger_id(str(actor["id"]))
    profile_hash = _profile_hash(actor)
    old_profile = ledger.get(profile_id)
    if old_profile is None:
        entries.append(LedgerEntry(profile_id, profile_hash, now, now, "live", None))
        changes.append(Change("record", profile_id, "profile recorded"))
    elif old_profile.content_hash != profile_hash:
        doc = d.actor_update_activity(
            site, actor,
            revision=_revision(profile_hash, old_profile.last_activity_id or
                               old_profile.content_hash),
        )
        activity = _activity(doc, "Update(actor)", str(actor["id"]), notes)
        activities.append(activity)
        entries.append(LedgerEntry(profile_id, profile_hash, now, old_profile.published_at,
                                   "live", activity.activity_id))
        changes.append(Change("Update(actor)", str(actor["id"]), "profile changed",
                              activity.activity_id))

    creates.sort(key=lambda pair: (pair[0], pair[1].activity_id))
    activities += [a for _, a in creates] + updates + deletes
    return Plan(tuple(activities), tuple(entries), tuple(changes), tuple(notes),
                first_publish=first)


def first_publish_line(plan: Plan, actor_id: str) -> str | None:
    """What a first publish did with the posts already there, in one line (None for a later
    publish): "first publish: 1 new post announced, 41 older posts recorded as already
    published; use --backfill N to announce older ones"."""
    if not plan.first_publish:
        return None
    profile = actor_ledger_id(actor_id)
    new = backfilled = recorded = 0
    for change in plan.changes:
        if change.action == "Create":
            if change.reason.startswith("back-dated"):
                backfilled += 1
            else:
                new += 1
        elif change.action == "record" and change.object_id != profile:
            recorded += 1
    text = f"first publish: {plural(new, 'new post')} announced"
    if backfilled:
        text += f", {plural(backfilled, 'older post')} announced for --backfill"
    text += f", {plural(recorded, 'older post')} recorded as already published"
    if recorded:
        text += "; use --backfill N to announce older ones"
    return text


def recipients(store: Store) -> Iterator[str]:
    """The de-duplicated delivery inboxes of the accepted followers (one per shared inbox)."""
    return iter_inboxes(
        FollowerAddress(f.actor_id, f.inbox, f.shared_inbox) for f in store.iter_followers()
    )


def queue_plan(
    store: Store,
    plan: Plan,
    now: datetime,
    extra_recipients: Mapping[str, Iterable[str]] | None = None,
) -> PlanResult:
    """Store `plan` in one durable transaction: activities, deliveries, ledger.

    `extra_recipients` adds inboxes for single activities (the accounts a post mentions) on
    top of the followers'. After this returns, a crash loses nothing: the deliveries are in
    the queue. An activity id already stored (a re-run) gets no new deliveries. A deleted
    post's quote authorizations are revoked in the same transaction (quotes.py)."""
    extra = {k: list(v) for k, v in (extra_recipients or {}).items() if v}
    deletes = [a for a in plan.activities if a.kind == "Delete" and a.object_id]
    if not extra and not deletes:
        return store.plan_publication(plan.activities, recipients(store), plan.ledger_updates,
                                      now)
    # One activity at a time, in send order, so each can have its own recipients; rows are
    # still inserted in send order, and the transaction keeps it all-or-nothing.
    results: list[PlanResult] = []
    with store.transaction():
        if extra:
            for activity in plan.activities:
                inboxes = chain(recipients(store), extra.get(activity.activity_id, ()))
                results.append(store.plan_publication([activity], inboxes, [], now))
            results.append(store.plan_publication([], [], plan.ledger_updates, now))
        else:
            results.append(store.plan_publication(plan.activities, recipients(store),
                                                  plan.ledger_updates, now))
        if deletes:
            from .quotes import revoke_for_deleted_posts  # the service's half: Starlette

            revoke_for_deleted_posts(store, deletes, now)
    return PlanResult(
        new_activities=tuple(a for r in results for a in r.new_activities),
        existing_activities=tuple(a for r in results for a in r.existing_activities),
        changed_bodies=tuple(a for r in results for a in r.changed_bodies),
        deliveries=sum(r.deliveries for r in results),
        ledger_updates=sum(r.ledger_updates for r in results),
    )



def plan_for_store(
    config: SiteConfig,
    store: Store,
    manifest: Mapping[str, Any],
    *,
    site: Site,
    now: datetime,
    backfill: int,
    private_key: Any,
    allow_private: bool,
    warn: Callable[[str], None],
) -> tuple[Plan, bool, dict[str, tuple[str, ...]]]:
    """What a publish sends from this store: (the plan, whether mentions were newly learned,
    the inboxes beyond the followers', by activity). The dry run calls it on a copy of the
    store, the real run on the store itself, so both plan alike.

    Blocked followers are purged first: they get nothing."""
    if config.fediverse.blocked:
        from .interactions import purge_blocked

        purge_blocked(store, config.fediverse.blocked)
    ledger = store.get_ledger()
    plan = plan_changes(ledger, manifest, site=site, now=now, backfill=backfill)
    resolved, learned = _resolve_mentions(
        config, store, plan, manifest, now, private_key=private_key,
        allow_private=allow_private, warn=warn,
    )
    if resolved:
        plan = plan_changes(ledger, manifest, site=site, now=now, backfill=backfill,
                            mentions={h: m.actor_id for h, m in resolved.items()})
    extra = mention_inboxes(plan.activities, resolved)
    extra.update(delete_inboxes(plan.activities, ledger, store))
    return plan, learned, extra


def _resolve_mentions(
    config: SiteConfig,
    store: Store,
    plan: Plan,
    manifest: Mapping[str, Any],
    now: datetime,
    *,
    private_key: Any,
    allow_private: bool,
    warn: Callable[[str], None],
) -> tuple[dict[str, ResolvedMention], bool]:
    """Resolve the mentions of the objects this plan sends -> (resolutions, any newly learned).

    Only the posts being announced are looked up (old posts keep their form until edited).
    A dry run (no key) reads the cache only."""
    objects = manifest.get("objects", {})
    handles = [
        h
        for change in plan.changes
        if change.action in ("Create", "Update") and change.object_id in objects
        for h in object_handles(objects[change.object_id].get("doc", {}))
    ]
    if not handles:
        return {}, False
    before = {h: store.get_mention(h) for h in handles}
    if private_key is None:
        found = asyncio.run(resolve_mentions(handles, store=store, fetcher=None, now=now,
                                             warn=warn))
        return found, False

    from .remote import FetchPolicy, RemoteFetcher
    from .remote import user_agent as make_user_agent
    from .signing import SigningAuth

    async def run() -> dict[str, ResolvedMention]:
        # Signed GETs: servers with authorized fetch refuse anonymous actor fetches.
        auth = SigningAuth.for_actor(config.url("actor.json"), private_key)
        async with RemoteFetcher(policy=FetchPolicy(allow_private=allow_private),
                                 user_agent=make_user_agent(config.base_url),
                                 auth=auth) as fetcher:
            return await resolve_mentions(handles, store=store, fetcher=fetcher, now=now,
                                          warn=warn)

    found = asyncio.run(run())
    learned = any(
        (old := before[h]) is None or old.actor_id != m.actor_id for h, m in found.items()
    )
    return found, learned
