"""`fedipress publish`: diff the new build against the announced ledger, queue, deliver.

Three steps, each callable on its own (the inbox service reuses the second and third):

  plan_changes(ledger, manifest, ...)   pure: what changed -> activities + ledger updates
  queue_plan(store, plan, now)          one durable transaction: activities, one delivery row per
                                        (activity, de-duplicated inbox), the new ledger
  DeliveryWorker(...).run_until(...)    deliver, retry within the run, leave the rest queued

The ledger holds, per federated object (and one row for the actor's profile), the hash of what
was announced. Nothing is sent before the plan commits, and a re-run after a crash computes the
same activity ids from the same ledger, so no activity is ever created twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..activitypub import documents as d
from ..activitypub.audience import FollowerAddress, iter_inboxes
from ..config import SiteConfig
from ..errors import FedipressError, StoreError
from ..model import Site
from ..store import LedgerEntry, PlannedActivity, PlanResult, ResolvedMention, Store
from ..wording import plural
from .manifest import MANIFEST_NAME, read_federation_manifest
from .mentions import (
    canonical_manifest,
    delete_inboxes,
    mention_inboxes,
    object_handles,
    resolve_mentions,
    with_mentions,
)

if TYPE_CHECKING:
    from .delivery import DeliverySummary

__all__ = [
    "OLD_POST_AGE",
    "ActivityTooLargeError",
    "Change",
    "FirstPublishError",
    "IdentityMismatchError",
    "Plan",
    "PublishOptions",
    "PublishResult",
    "StoreState",
    "actor_ledger_id",
    "check_identity",
    "first_publish_problem",
    "load_manifest",
    "plan_changes",
    "queue_plan",
    "read_store_state",
    "recipients",
    "run_publish",
]

# A post dated more than this before publish first sees it is an import, not news.
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

    - object not in the ledger -> Create; except on the first publish (an empty ledger, or
      `first_publish=True`), when only the newest `backfill` are announced and the rest are
      recorded silently, and for posts dated more than OLD_POST_AGE before `now` (imports);
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
    backfilled = set(newest[: max(backfill, 0)])

    for oid in sorted(objects):
        item = objects[oid]
        new_hash = str(item["hash"])
        published = _parse_time(item.get("published"), now)
        obj: dict[str, Any] = dict(item["doc"])
        if mentions:
            obj = with_mentions(obj, mentions)
        old = ledger.get(oid)
        if old is None or old.state == "deleted":
            if old is None and first and oid not in backfilled:
                reason = "first publish: recorded as already announced"
            elif old is None and not first and published < now - OLD_POST_AGE:
                reason = "dated more than a week ago: recorded as already announced"
            else:
                reason = ""
            if reason:
                entries.append(LedgerEntry(oid, new_hash, now, published, "live", None))
                changes.append(Change("record", oid, reason))
                continue
            doc = d.create_activity(site, obj)
            if old is not None:  # re-published after a Delete: Create#id must be new
                doc["id"] = f"{oid}#create-{_revision(new_hash, old.last_activity_id)}"
            activity = _activity(doc, "Create", oid, notes)
            creates.append((published, activity))
            entries.append(LedgerEntry(oid, new_hash, now, published, "live", activity.activity_id))
            changes.append(Change("Create", oid, "new" if old is None else "restored",
                                  activity.activity_id))
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
    return Plan(tuple(activities), tuple(entries), tuple(changes), tuple(notes))


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
    the queue. An activity id already stored (a re-run) gets no new deliveries."""
    extra = {k: list(v) for k, v in (extra_recipients or {}).items() if v}
    if not extra:
        return store.plan_publication(plan.activities, recipients(store), plan.ledger_updates,
                                      now)
    # One activity at a time, in send order, so each can have its own recipients; rows are
    # still inserted in send order, and the transaction keeps it all-or-nothing.
    results: list[PlanResult] = []
    with store.transaction():
        for activity in plan.activities:
            inboxes = chain(recipients(store), extra.get(activity.activity_id, ()))
            results.append(store.plan_publication([activity], inboxes, [], now))
        results.append(store.plan_publication([], [], plan.ledger_updates, now))
    return PlanResult(
        new_activities=tuple(a for r in results for a in r.new_activities),
        existing_activities=tuple(a for r in results for a in r.existing_activities),
        changed_bodies=tuple(a for r in results for a in r.changed_bodies),
        deliveries=sum(r.deliveries for r in results),
        ledger_updates=sum(r.ledger_updates for r in results),
    )


# --- the command ----------------------------------------------------------------------------------


def manifest_path(config: SiteConfig) -> Path:
    return config.state_dir / MANIFEST_NAME


def load_manifest(config: SiteConfig) -> dict[str, Any]:
    """The last build's federation manifest; a FedipressError when there is none."""
    path = manifest_path(config)
    try:
        data = read_federation_manifest(config.state_dir)
    except FileNotFoundError:
        raise FedipressError(
            f"{path}: not found; run `fedipress build` first (or publish without --no-build)"
        ) from None
    except (OSError, ValueError) as error:
        raise FedipressError(f"{path}: cannot be read ({error}); run `fedipress build`") from None
    if not isinstance(data, dict) or "actor" not in data or "objects" not in data:
        raise FedipressError(f"{path}: not a federation manifest; run `fedipress build`")
    return data


def _print_plan(plan: Plan, inboxes: list[str], out: Callable[[str], None]) -> None:
    for change in plan.changes:
        if change.activity_id is None:
            out(f"  {change.action:<13} {change.object_id} ({change.reason})")
        else:
            out(f"  {change.action:<13} {change.object_id} -> {change.activity_id}")
    out(f"{plural(len(plan.activities), 'activity')} to {plural(len(inboxes), 'inbox')}")
    for inbox in inboxes:
        out(f"  -> {inbox}")


def _plan_for_store(
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


# --- what publish checks before it plans ---------------------------------------------------


class FirstPublishError(FedipressError):
    """A publish against a store that has never announced anything and has no followers."""


class IdentityMismatchError(FedipressError):
    """The actor publish would sign and announce as is not the one the built site serves."""


@dataclass(frozen=True)
class StoreState:
    """What the store holds, read without creating, migrating or locking it."""

    exists: bool
    announced: int  # ledger rows (posts and the profile)
    followers: int  # follower rows in any state: the inbox has run on this store


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro still creates -wal and -shm files beside a WAL database that nobody has open. When
    # there are none nobody is writing, and immutable=1 reads the file as it is, creating none.
    in_use = Path(f"{path}-wal").exists() or Path(f"{path}-shm").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if in_use else "&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=30.0)


def read_store_state(path: Path) -> StoreState:
    """How many ledger rows and followers the database at `path` has; nothing is written."""
    if not path.is_file():
        return StoreState(False, 0, 0)

    def count(conn: sqlite3.Connection, table: str) -> int:
        try:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return 0  # an empty file, or a database made before that table existed
            raise

    try:
        conn = _connect_read_only(path)
        try:
            return StoreState(True, count(conn, "ledger"), count(conn, "followers"))
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise StoreError(f"{_shown(path)}: cannot read the state database: {error}") from None


def first_publish_problem(path: Path, state: StoreState, *, first_publish: bool,
                          ci: bool) -> str | None:
    """Why a publish against `state` must not go ahead, or None.

    An empty store (no ledger, no followers) is what a fresh clone or a CI runner has: the
    first-publish baseline would record every post as announced and send nothing to anyone,
    and the real store (where the inbox records followers) would later announce them again.
    So it needs --first-publish on a workstation and is refused outright under CI."""
    shown = _shown(path)
    if state.announced == 0 and state.followers == 0:
        what = (f"{shown} has no ledger and no followers" if state.exists
                else f"{shown} does not exist (no ledger, no followers)")
        if ci:
            return (f"{what}: this CI runner does not have the blog's store, so publish would"
                    " record every post as already announced and send nothing to anyone; run"
                    " `fedipress publish` on the machine where `fedipress inbox` runs and keeps"
                    " that store (publishing from CI through the inbox service is not"
                    " supported yet)")
        if not first_publish:
            return (f"{what}, so publish would record every post as already announced and send"
                    " nothing; if this is the blog's store and its first publish, run"
                    " `fedipress publish --first-publish` (with --backfill N to announce the"
                    " newest N posts), otherwise publish on the machine where `fedipress inbox`"
                    " keeps the store")
    elif first_publish and state.announced:
        return (f"--first-publish: {shown} already records {state.announced:,} announced"
                f" document{'s' * (state.announced != 1)}, so this is not the first publish;"
                " run publish without --first-publish")
    return None


def _base_of(actor_url: str) -> str:
    return actor_url[: -len("actor.json")] if actor_url.endswith("/actor.json") else actor_url


def check_identity(
    config: SiteConfig,
    actor: Any,
    where: str,
    *,
    public_pem: bytes | None,
    base_url_option: str | None,
) -> None:
    """Refuse when the actor document `actor` (read from `where`) is not the identity publish
    signs and announces as: the actor id of `config` and, given `public_pem`, that key.

    Followers' servers fetch the served actor to verify every signature and resolve every
    id; a difference means deliveries that fail to verify or posts attributed to an actor that
    does not exist, so nothing is sent."""
    from .keys import public_key_fingerprint, same_public_key

    expected = config.url("actor.json")
    source = "--base-url" if base_url_option else f"{config.config_file.name}'s base_url"
    build = f"fedipress build --base-url {_base_of(expected)}" if base_url_option \
        else "fedipress build"
    found = actor.get("id") if isinstance(actor, Mapping) else None
    if found != expected:
        shown = found if isinstance(found, str) else "no actor id"
        raise IdentityMismatchError(
            f"{where} is the actor {shown}, but publish would announce {expected} (from"
            f" {source}): run `{build}` (and deploy it) before publishing, or pass"
            f" --base-url {_base_of(str(found))} to publish as the site was built"
        )
    if public_pem is None:
        return
    key = actor.get("publicKey")
    key_id = key.get("id") if isinstance(key, Mapping) else None
    pem = key.get("publicKeyPem") if isinstance(key, Mapping) else None
    if key_id != expected + "#main-key" or not isinstance(pem, str) \
            or not same_public_key(pem, public_pem):
        raise IdentityMismatchError(
            f"{where} publishes another public key than the one publish signs with"
            f" ({public_key_fingerprint(public_pem)}), so no server could verify the"
            f" deliveries: run `{build}` (and deploy it) before publishing"
        )


def _served_actor(config: SiteConfig, *, required: bool) -> tuple[str, Any] | None:
    """(where, document) of the actor the built site serves, or None when there is none."""
    path = config.output_dir / "actor.json"
    where = _shown(path)
    try:
        return where, json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        if not required:
            return None  # the build about to run writes it again
        raise FedipressError(f"{where}: cannot be read ({error}); run `fedipress build`"
                             ) from None


def _check_built_site(config: SiteConfig, manifest: Mapping[str, Any] | None,
                      public_pem: bytes | None, base_url_option: str | None) -> None:
    """The served actor.json (when public/ has one) and the build's manifest, checked."""
    served = _served_actor(config, required=manifest is not None)
    if served is not None:
        check_identity(config, served[1], served[0], public_pem=public_pem,
                       base_url_option=base_url_option)
    if manifest is not None:
        check_identity(config, manifest.get("actor"),
                       f"the last build ({_shown(manifest_path(config))})",
                       public_pem=public_pem, base_url_option=base_url_option)


# --- dry run --------------------------------------------------------------------------------------


@contextmanager
def _store_copy(path: Path) -> Iterator[Path]:
    """A throw-away copy of the database at `path` (an empty folder's path when there is
    none), in a temporary folder: a dry run may run every step on it, none reaches `path`."""
    with tempfile.TemporaryDirectory(prefix="fedipress-dry-run-") as folder:
        copy = Path(folder) / path.name
        if path.is_file():
            try:
                source = _connect_read_only(path)
                try:
                    target = sqlite3.connect(copy)
                    try:
                        source.backup(target)
                    finally:
                        target.close()
                finally:
                    source.close()
            except sqlite3.Error as error:
                raise StoreError(f"{_shown(path)}: cannot read the state database: {error}"
                                 ) from None
        yield copy


def _computed_manifest(config: SiteConfig, public_pem: bytes, store_copy: Path,
                       now: datetime) -> dict[str, Any]:
    """The federation manifest a build would write now, computed in memory: the content is
    read (the parse cache too, to be quick) and nothing is written."""
    from ..activitypub.site import federation_manifest
    from ..generator import content
    from ..generator.parsecache import ParseCache
    from ..store.snapshot import read_build_state

    cache = ParseCache.for_site(config)
    cache.load()
    # Markdown the cache misses is rendered by forked workers, as the build does (forking is
    # only safe while this process has a single thread).
    workers = (os.cpu_count() or 1) if threading.active_count() == 1 else 1
    site = content.load_site(config, now=now, cache=cache, workers=workers).site
    mentions = read_build_state(store_copy).mentions
    return federation_manifest(site, public_pem, mentions=mentions)


def _run_dry(config: SiteConfig, options: PublishOptions, *, out: Callable[[str], None],
             err: Callable[[str], None]) -> PublishResult:
    """`publish --dry-run`: the plan a real publish would make now, from the content as it is
    (not the last build), against a copy of the store; nothing is written anywhere."""
    from ..store import default_store_path, open_store
    from .keys import public_key_path, read_public_key_pem

    base_url_option = options.base_url
    allow_private, backfill = options.allow_private, options.backfill
    public_pem = read_public_key_pem(config, remember=False)
    if public_pem is None:
        raise FedipressError(
            f"{_shown(public_key_path(config))}: not found, so there is no actor to publish"
            " as; run `fedipress keys generate` (a dry run creates nothing)"
        )
    store_path = default_store_path(config.state_dir)
    state = read_store_state(store_path)
    now = datetime.now(UTC)
    site = Site(config=config, posts=(), pages=())
    with _store_copy(store_path) as copy:
        if not options.build:
            last = load_manifest(config)
            _check_built_site(config, last, public_pem, base_url_option)
            manifest = canonical_manifest(last)
        else:
            _check_built_site(config, None, None, base_url_option)
            manifest = canonical_manifest(_computed_manifest(config, public_pem, copy, now))
        try:
            store = open_store(copy)
        except StoreError as error:
            raise StoreError(str(error).replace(str(copy), _shown(store_path))) from None
        try:
            # (purges blocked followers from the copy, as the real run would)
            plan, _learned, extra = _plan_for_store(
                config, store, manifest, site=site, now=now, backfill=backfill,
                private_key=None, allow_private=allow_private, warn=err,
            )
            inboxes = list(recipients(store)) if plan.activities else []
        finally:
            store.close()
    inboxes += [i for v in extra.values() for i in v if i not in inboxes]
    _print_plan(plan, inboxes, out)
    for note in plan.notes:
        err(f"note: {note}")
    _note_backfill(state, backfill, err)
    problem = first_publish_problem(
        store_path, state, first_publish=options.first_publish, ci=_ci())
    if problem:
        err(f"note: a real publish would stop here: {problem}")
    out("dry run: nothing stored or sent")
    return PublishResult(summary=None)


def _note_backfill(state: StoreState, backfill: int, err: Callable[[str], None]) -> None:
    if backfill and state.announced:
        err(f"note: --backfill {backfill} ignored: it applies to the first publish only, and"
            f" the ledger already records {state.announced:,} announced"
            f" document{'s' * (state.announced != 1)}")


# --- the real run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishOptions:
    """`fedipress publish`'s choices.

    `build`: build the site first (False: use the last build's manifest). `wait`: seconds to
    keep retrying within this run. `backfill`: on the first publish, announce the newest N
    posts. `base_url`: the --base-url this run's config was loaded with (None: site.yaml's),
    named in the messages that compare it with the built site. `progress`: draw the delivery
    progress bar on stderr (the caller decides: only on a terminal; never under CI)."""

    dry_run: bool = False
    first_publish: bool = False
    backfill: int = 0
    wait: float = 60.0
    build: bool = True
    verbose: bool = False
    base_url: str | None = None
    allow_private: bool = False
    progress: bool = False


@dataclass(frozen=True)
class PublishResult:
    """What a publish did: the delivery run's summary (None for a dry run: nothing sent)."""

    summary: DeliverySummary | None

    @property
    def exit_code(self) -> int:
        """0: all delivered or scheduled for retry; 1: some failed permanently."""
        return 1 if self.summary is not None and self.summary.failed else 0


def run_publish(
    config: SiteConfig,
    options: PublishOptions,
    *,
    out: Callable[[str], None],
    err: Callable[[str], None],
) -> PublishResult:
    """`fedipress publish`: plan, queue and deliver. `out` gets what was queued and the
    delivery summary, `err` notes, warnings and (verbose) each request, as they happen: a
    publish can run for minutes. User errors raise FedipressError."""
    from ..progress import Progress
    from ..store import default_store_path, open_store
    from .delivery import DeliveryWorker, owner_id, recover_dead_leases
    from .keys import load_private_key, public_pem_of

    verbose, wait, backfill = options.verbose, options.wait, options.backfill
    base_url_option, allow_private = options.base_url, options.allow_private
    if backfill < 0:
        raise FedipressError("--backfill: must be 0 or more")
    if wait < 0:
        raise FedipressError("--wait: must be 0 or more seconds")
    if options.dry_run:
        return _run_dry(config, options, out=out, err=err)
    ci = _ci()
    # The key is checked before anything else: a publish that cannot sign must not plan.
    private_key = load_private_key(config)
    signing_pem = public_pem_of(private_key)
    # Then the store, before anything is built or created: an empty one is refused as it is.
    store_path = default_store_path(config.state_dir)
    state = read_store_state(store_path)
    problem = first_publish_problem(
        store_path, state, first_publish=options.first_publish, ci=ci)
    if problem:
        raise FirstPublishError(problem)
    _note_backfill(state, backfill, err)
    built = options.build
    if built:
        from ..generator.build import build_site

        # public/ built for another address (a preview) is not silently rebuilt for this one.
        _check_built_site(config, None, None, base_url_option)
        result = build_site(config, log=err if verbose else (lambda _l: None), ci=ci)
        err(result.summary())
    last = load_manifest(config)
    _check_built_site(config, last, signing_pem, base_url_option)
    manifest = canonical_manifest(last)
    site = Site(config=config, posts=(), pages=())
    now = datetime.now(UTC)
    store = open_store(store_path)
    try:
        plan, learned, extra = _plan_for_store(
            config, store, manifest, site=site, now=now, backfill=backfill,
            private_key=private_key, allow_private=allow_private, warn=err,
        )
        for note in plan.notes:
            err(f"note: {note}")
        if learned:
            # object.json must show the actor ids the activities carry: rebuild (only the
            # posts naming these accounts change), or tell the user when they skipped the build.
            if built:
                from ..generator.build import build_site

                build_site(config, log=lambda _l: None, ci=ci)
            else:
                err("note: newly resolved mentions; run `fedipress build` so object.json "
                    "names the same accounts")
        if not plan.empty:
            stored = queue_plan(store, plan, now, extra)
            # Printed (and flushed) only after the commit: from here on nothing can be lost.
            out(f"queued {plural(stored.deliveries, 'delivery')} for"
                f" {plural(len(stored.new_activities), 'new activity', 'new activities')}")
        owner = owner_id("publish")
        released = recover_dead_leases(store)
        if released and verbose:
            err(f"requeued {plural(released, 'delivery')} left in flight by a killed run")
        progress = Progress(
            total=sum(store.delivery_counts()[s] for s in ("pending", "in_flight")),
            enabled=options.progress and not ci, label="delivering",
        )
        worker = DeliveryWorker.for_site(
            store, config, private_key, owner=owner, allow_private=allow_private,
            log=err if verbose else None, on_result=progress.advance,
        )
        summary = asyncio.run(worker.run_until(datetime.now(UTC) + timedelta(seconds=wait)))
        progress.close()
        out(summary.line())
        return PublishResult(summary=summary)
    finally:
        store.close()
