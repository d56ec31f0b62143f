"""The service's side of `fedipress publish --to`: check a received federation manifest
against the service's own identity, then plan and queue it with the same code the local
publish uses (publish_plan.plan_for_store and queue_plan), in one store transaction.

Chunked uploads collect here first (UploadSessions): a session holds the actor and the
objects received so far, in memory only, and nothing touches the store until its commit; a
session abandoned (a dropped connection, a killed CI job) simply expires.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ..config import SiteConfig
from ..model import Site
from ..store import Store
from ..wording import plural
from .inbox_handlers import RECEIVED_MANIFEST
from .keys import public_pem_of, same_public_key
from .mentions import canonical_manifest
from .publish_plan import (
    actor_ledger_id,
    first_publish_line,
    plan_for_store,
    queue_plan,
    recipients,
)

__all__ = [
    "ManifestRefused",
    "ServicePublishResult",
    "UploadSessions",
    "apply_manifest",
    "check_actor",
    "check_objects",
]

SESSION_SECONDS = 3600.0  # an upload not committed within an hour is dropped
MAX_SESSIONS = 8
MAX_SESSION_BYTES = 512 * 1024 * 1024  # 10,000 posts of 50 KiB each fit


class ManifestRefused(Exception):  # noqa: N818 - an answer, not a crash
    """A manifest the service will not apply: `status` (409 identity, 422 shape) and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_actor(config: SiteConfig, key: RSAPrivateKey, actor: Any) -> dict[str, Any]:
    """The manifest's actor, if it is this service's: same id, same public key."""
    if not isinstance(actor, dict) or not isinstance(actor.get("id"), str):
        raise ManifestRefused(422, "the manifest has no actor document with an id")
    expected = config.url("actor.json")
    if actor["id"] != expected:
        raise ManifestRefused(
            409, f"the manifest's actor is {actor['id'][:200]} but this service answers for"
            f" {expected}; build with that base_url (or publish to the blog's own service)")
    published = actor.get("publicKey")
    pem = published.get("publicKeyPem") if isinstance(published, dict) else None
    if not isinstance(pem, str) or not same_public_key(pem, public_pem_of(key)):
        raise ManifestRefused(
            409, "the manifest's actor publishes a public key that does not match this"
            " service's private key; commit the blog's public key (`fedipress keys show` on"
            " the service's machine prints it) and build again")
    return actor


def check_objects(objects: Any, base_url: str) -> dict[str, dict[str, Any]]:
    """The objects part of a manifest (or of one chunk), each {"hash", "published", "doc"},
    every id under the blog's base_url (the service announces only the blog's own posts)."""
    if not isinstance(objects, dict):
        raise ManifestRefused(422, '"objects" must be a JSON object of id -> entry')
    for oid, item in objects.items():
        if not oid.startswith(base_url):
            raise ManifestRefused(409, f"object {oid[:200]} is not under {base_url}; build"
                                  " with the service's base_url")
        if (not isinstance(item, dict) or not isinstance(item.get("hash"), str)
                or not isinstance(item.get("doc"), dict)
                or item["doc"].get("id") != oid):
            raise ManifestRefused(
                422, f"object {oid[:200]}: expected {{\"hash\", \"published\", \"doc\"}} with"
                " the doc's id equal to its key")
    return objects


@dataclass(frozen=True)
class ServicePublishResult:
    """What one applied manifest did, as the owner API answers it."""

    created: int
    updated: int
    deleted: int
    recorded: int
    profile_updated: bool
    inboxes: int
    deliveries: int
    notes: tuple[str, ...] = ()
    # The first publish's own line (publish_plan.first_publish_line), else None.
    first_publish: str | None = None

    def line(self) -> str:
        head = (f"{self.created:,} new, {self.updated:,} updated, {self.deleted:,} deleted")
        if self.profile_updated:
            head += ", profile updated"
        if self.deliveries:
            tail = f"queued for {plural(self.inboxes, 'inbox', 'inboxes')}"
        else:
            tail = "nothing queued"
        text = f"{head}; {tail}"
        if self.recorded and self.first_publish is None:
            text += f" ({plural(self.recorded, 'post')} recorded as already announced)"
        return text

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                "recorded": self.recorded, "profile_updated": self.profile_updated,
                "inboxes": self.inboxes, "deliveries": self.deliveries,
                "notes": list(self.notes), "line": self.line(),
                "first_publish": self.first_publish}


def apply_manifest(
    config: SiteConfig,
    store: Store,
    key: RSAPrivateKey,
    manifest: Mapping[str, Any],
    *,
    now: datetime,
    allow_private: bool,
    warn: Callable[[str], None],
    backfill: int = 0,
) -> ServicePublishResult:
    """Plan `manifest` against this store's ledger and queue it in one transaction, exactly as
    the local publish does (blocked followers purged, mentions resolved). Blocking: run it off
    the event loop. An identical manifest a second time plans nothing and queues nothing.
    `backfill`: also announce the newest N back-dated posts (as the local publish does).
    The service's first publish (an empty ledger) announces the recent posts and records the
    older ones: publish_plan.plan_changes decides, for every way of publishing alike."""
    check_actor(config, key, manifest.get("actor"))
    check_objects(manifest.get("objects"), config.base_url)
    canonical = canonical_manifest(manifest)
    site = Site(config=config, posts=(), pages=())
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        warn(text)

    plan, _, extra = plan_for_store(
        config, store, canonical, site=site, now=now, backfill=backfill, private_key=key,
        allow_private=allow_private, warn=note,
    )
    notes.extend(plan.notes)
    deliveries = inboxes = 0
    if not plan.empty:
        stored = queue_plan(store, plan, now, extra)
        deliveries = stored.deliveries
        if stored.new_activities:
            inboxes = len(set(recipients(store)))
    _remember(config, canonical, note)
    actions = [c.action for c in plan.changes]
    profile = actor_ledger_id(config.url("actor.json"))
    recorded = sum(1 for c in plan.changes
                   if c.action == "record" and c.object_id != profile)
    return ServicePublishResult(
        created=actions.count("Create"), updated=actions.count("Update"),
        deleted=actions.count("Delete"), recorded=recorded,
        profile_updated="Update(actor)" in actions, inboxes=inboxes, deliveries=deliveries,
        notes=tuple(notes),
        first_publish=first_publish_line(plan, config.url("actor.json")),
    )


def _remember(config: SiteConfig, manifest: Mapping[str, Any],
              note: Callable[[str], None]) -> None:
    """Keep the applied manifest beside the store, so the inbox knows these posts as ours
    (likes and replies of a post built in CI would otherwise be ignored as not ours)."""
    path = config.state_dir / RECEIVED_MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"actor": manifest["actor"], "objects": manifest["objects"]},
                                  ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        note(f"{path}: cannot be written ({exc.strerror or exc}); likes and replies of the"
             " posts just published will be ignored until it can")


@dataclass
class _Session:
    actor: dict[str, Any]
    started: float
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    size: int = 0


class UploadSessions:
    """Chunked uploads in progress, by id. In memory: a restart drops them, which is the point
    (a session applies only at its commit)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s for s, v in self._sessions.items() if now - v.started > SESSION_SECONDS]:
            del self._sessions[sid]

    def begin(self, actor: dict[str, Any]) -> str:
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)  # the oldest upload gives way
        sid = secrets.token_urlsafe(16)
        self._sessions[sid] = _Session(actor=actor, started=self._clock())
        return sid

    def add(self, sid: str, objects: dict[str, dict[str, Any]], size: int) -> int:
        session = self._get(sid)
        if session.size + size > MAX_SESSION_BYTES:
            self._sessions.pop(sid, None)
            raise ManifestRefused(
                413, f"upload over {MAX_SESSION_BYTES // (1024 * 1024)} MiB; session dropped")
        session.objects.update(objects)
        session.size += size
        return len(session.objects)

    def take(self, sid: str) -> dict[str, Any]:
        """The whole manifest of a session, which ends it."""
        session = self._get(sid)
        del self._sessions[sid]
        return {"actor": session.actor, "objects": session.objects}

    def drop(self, sid: str) -> bool:
        return self._sessions.pop(sid, None) is not None

    def _get(self, sid: str) -> _Session:
        self._expire()
        session = self._sessions.get(sid)
        if session is None:
            raise ManifestRefused(
                404, "no such upload session (it expired, was committed, or the service"
                " restarted); publish again")
        return session
