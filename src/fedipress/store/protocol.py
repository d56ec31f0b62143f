"""The records the store speaks and the `Store` protocol every backend implements.

Callers (publish, delivery, inbox, build, cli) only ever see these frozen dataclasses, never rows
or cursors, so a PostgreSQL backend can replace SQLite without touching them. Every datetime
going in must be timezone-aware; every datetime coming out is aware and in UTC. Methods that need
"now" take it as an argument: the store never reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urlsplit

__all__ = [
    "ActivityKind",
    "AnnouncedCounts",
    "QuoteAuthorization",
    "CachedActor",
    "CachedKey",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryState",
    "FollowRequest",
    "Follower",
    "FollowerState",
    "HostHealth",
    "InboxRecord",
    "Interaction",
    "InteractionCounts",
    "InteractionKind",
    "Visibility",
    "LedgerEntry",
    "LedgerState",
    "PlanResult",
    "PlannedActivity",
    "ResolvedMention",
    "SharedLimits",
    "Store",
    "DELIVERY_STATES",
]

FollowerState = Literal["accepted", "pending"]
LedgerState = Literal["live", "deleted"]
DeliveryState = Literal["pending", "in_flight", "delivered", "failed", "expired"]
InteractionKind = Literal["like", "announce", "reply", "quote", "mention"]
# Who the remote author addressed: only public and unlisted are ever shown or counted.
Visibility = Literal["public", "unlisted", "followers", "direct"]
# Free text on purpose: "Create", "Update", "Delete", "Accept", "Reject", "Update(actor)"...
ActivityKind = str

DELIVERY_STATES: tuple[DeliveryState, ...] = (
    "pending",
    "in_flight",
    "delivered",
    "failed",
    "expired",
)


@dataclass(frozen=True)
class Follower:
    """A remote actor following the blog. `state` is "pending" while awaiting manual approval."""

    actor_id: str
    inbox: str
    shared_inbox: str | None
    handle: str | None  # user@domain, without the leading @
    name: str | None
    followed_at: datetime
    follow_activity_id: str | None = None
    state: FollowerState = "accepted"

    @property
    def delivery_inbox(self) -> str:
        """Where activities for this follower go: the shared inbox when it has one."""
        return self.shared_inbox or self.inbox


@dataclass(frozen=True)
class FollowRequest:
    """A pending follower plus the Follow activity (raw JSON bytes) to answer later."""

    follower: Follower
    follow_activity: bytes | None


@dataclass(frozen=True)
class LedgerEntry:
    """What was announced to the fediverse for one object (post), and in which state."""

    object_id: str
    content_hash: str
    announced_at: datetime
    published_at: datetime
    state: LedgerState
    last_activity_id: str | None


@dataclass(frozen=True)
class PlannedActivity:
    """An activity to deliver: a stable `activity_id` and the exact `body` bytes sent each try."""

    activity_id: str
    object_id: str | None
    kind: ActivityKind
    body: bytes


@dataclass(frozen=True)
class PlanResult:
    """What one planning transaction stored.

    `new_activities` were inserted now; `existing_activities` were already stored (a re-run) and
    got no new delivery rows; `changed_bodies` is the subset of those whose stored bytes differ
    from the ones offered (the stored bytes win: a stable id must mean stable bytes).
    """

    new_activities: tuple[str, ...]
    existing_activities: tuple[str, ...]
    changed_bodies: tuple[str, ...]
    deliveries: int
    ledger_updates: int


@dataclass(frozen=True)
class Delivery:
    """One (activity, inbox) delivery and where it stands."""

    id: int
    activity_id: str
    inbox: str
    attempts: int  # counted when claimed: a claimed row may have been sent
    next_attempt_at: datetime
    state: DeliveryState
    last_error: str | None = None
    last_status: int | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    @property
    def host(self) -> str:
        return (urlsplit(self.inbox).hostname or "").lower()


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to one worker, with the stored bytes of its activity."""

    delivery: Delivery
    body: bytes
    kind: ActivityKind
    object_id: str | None

    @property
    def id(self) -> int:
        return self.delivery.id

    @property
    def inbox(self) -> str:
        return self.delivery.inbox

    @property
    def activity_id(self) -> str:
        return self.delivery.activity_id


@dataclass(frozen=True)
class Interaction:
    """A like, boost (announce) or reply to one of our posts (`object_id`).

    For replies, `reply_object_id` is the remote Note's id (what Update/Delete name) and
    `content_html` its HTML as received: sanitise when rendering.
    """

    activity_id: str
    kind: InteractionKind
    actor_id: str
    object_id: str
    published: datetime
    received_at: datetime
    author_name: str | None = None
    author_handle: str | None = None
    author_avatar_url: str | None = None
    author_profile_url: str | None = None
    content_html: str | None = None
    url: str | None = None
    in_reply_to: str | None = None
    approved: bool = True
    reply_object_id: str | None = None
    updated: datetime | None = None
    content_safe_html: str | None = None  # content_html through a strict nh3 allowlist
    visibility: Visibility = "public"
    held_reason: str | None = None  # why a reply waits for the author (None: not held)


@dataclass(frozen=True)
class InteractionCounts:
    likes: int = 0
    shares: int = 0
    replies: int = 0


@dataclass(frozen=True)
class QuoteAuthorization:
    """A quote of one of our posts the blog approved (FEP-044f): served at `authorization_id`
    (its JSON `body`) until `revoked_at`, then answered 410 Gone. `inbox` is the quoter's,
    where the Accept went and a revocation goes."""

    authorization_id: str
    quoted_object_id: str
    quoting_object_id: str
    actor_id: str
    body: bytes
    created_at: datetime
    revoked_at: datetime | None = None
    inbox: str | None = None


@dataclass(frozen=True)
class AnnouncedCounts:
    """The public counts of a post that followers' servers were last sent (a count refresh)."""

    object_id: str
    replies: int
    likes: int
    shares: int
    sent_at: datetime


@dataclass(frozen=True)
class CachedKey:
    """A remote actor's public key, as last fetched."""

    key_id: str
    owner: str
    public_key_pem: str
    fetched_at: datetime


@dataclass(frozen=True)
class CachedActor:
    """A remote actor document as last fetched: what followers and interactions need of it.

    The inbox reads it instead of refetching the actor on every like, boost or reply; `type`
    and `preferred_username` are kept so the actor can be rebuilt without its keys."""

    actor_id: str
    type: str
    inbox: str
    shared_inbox: str | None
    preferred_username: str | None
    handle: str | None
    name: str | None
    icon_url: str | None
    profile_url: str | None
    also_known_as: tuple[str, ...]
    fetched_at: datetime


@dataclass(frozen=True)
class ResolvedMention:
    """A `user@server` mention resolved through WebFinger to its actor (the mention cache)."""

    acct: str  # "user@server", server lower-cased, as documents.post_mentions writes it
    actor_id: str
    inbox: str
    shared_inbox: str | None
    profile_url: str | None
    resolved_at: datetime

    @property
    def delivery_inbox(self) -> str:
        return self.shared_inbox or self.inbox


@dataclass(frozen=True)
class HostHealth:
    """One inbox host's delivery health (the per-host circuit breaker)."""

    host: str
    first_failure_at: datetime | None  # start of the current run of failures; None: healthy
    last_failure_at: datetime | None
    last_success_at: datetime | None
    paused_until: datetime | None  # its pending deliveries wait until then


@dataclass(frozen=True)
class InboxRecord:
    """A verified activity as received, logged before processing so a crash never loses it."""

    id: int
    activity_id: str | None
    actor_id: str | None
    body: bytes
    received_at: datetime
    processed_at: datetime | None = None
    error: str | None = None


class Store(Protocol):
    """Durable state: followers, ledger, delivery queue, interactions, keys, blocks.

    Write methods are atomic on their own. `transaction()` groups several writes into one
    atomic, durable unit: every store method called on the same thread inside the `with` block
    joins it (e.g. record a Follow and plan its Accept together).
    """

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    # --- followers ---------------------------------------------------------------------------
    def upsert_follower(self, follower: Follower, follow_activity: bytes | None = None) -> bool: ...
    def upsert_followers(self, followers: Iterable[Follower]) -> int: ...
    def remove_follower(self, actor_id: str) -> bool: ...
    def get_follower(self, actor_id: str) -> Follower | None: ...
    def count_followers(self, state: FollowerState | None = "accepted") -> int: ...
    def iter_followers(
        self, state: FollowerState | None = "accepted", batch: int = 1000
    ) -> Iterator[Follower]: ...
    def iter_delivery_inboxes(self, batch: int = 1000) -> Iterator[str]: ...
    def followers_by_host(self) -> list[tuple[str, int]]: ...
    def move_follower(self, old_id: str, new: Follower) -> bool: ...
    def remove_actor(self, actor_id: str) -> tuple[int, int]: ...
    def list_follow_requests(self) -> list[FollowRequest]: ...
    def approve_follow_request(self, actor_id: str) -> Follower | None: ...
    def reject_follow_request(self, actor_id: str) -> FollowRequest | None: ...

    # --- ledger and planning -----------------------------------------------------------------
    def get_ledger(self) -> dict[str, LedgerEntry]: ...
    def plan_publication(
        self,
        activities: Sequence[PlannedActivity],
        recipients: Iterable[str],
        ledger_updates: Sequence[LedgerEntry],
        now: datetime,
    ) -> PlanResult: ...
    def plan_deliveries(
        self, activity: PlannedActivity, inboxes: Iterable[str], now: datetime
    ) -> PlanResult: ...
    def record_follow_and_plan_accept(
        self, follower: Follower, accept_activity: PlannedActivity, inbox: str, now: datetime
    ) -> PlanResult: ...
    def get_activity(self, activity_id: str) -> PlannedActivity | None: ...

    # --- delivery queue ----------------------------------------------------------------------
    def claim_due(
        self,
        owner: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        per_host_limit: int | None = None,
    ) -> list[ClaimedDelivery]: ...
    def mark_delivered(self, delivery_id: int, owner: str, now: datetime) -> bool: ...
    def mark_retry(
        self,
        delivery_id: int,
        owner: str,
        next_attempt_at: datetime,
        error: str | None,
        status: int | None,
    ) -> bool: ...
    def mark_failed(
        self,
        delivery_id: int,
        owner: str,
        error: str | None,
        status: int | None,
        expired: bool = False,
    ) -> bool: ...
    def release(self, delivery_id: int, owner: str) -> bool: ...
    def next_due_at(self) -> datetime | None: ...
    def delivery_counts(self) -> dict[DeliveryState, int]: ...
    def list_deliveries(
        self, states: Iterable[DeliveryState] | None = None, limit: int = 100
    ) -> list[Delivery]: ...
    def requeue_failed(self, now: datetime) -> int: ...
    def pending_for_activity(self, activity_id: str) -> int: ...
    def prune_delivered(self, before: datetime) -> int: ...

    # --- inbox side --------------------------------------------------------------------------
    def seen_activity(self, activity_id: str, now: datetime) -> bool: ...
    def prune_seen(self, before: datetime) -> int: ...
    def claim_webhook_key(self, key: str, now: datetime) -> bool: ...
    def log_inbox(
        self,
        activity_id: str | None,
        actor_id: str | None,
        body: bytes,
        received_at: datetime,
        processed: tuple[datetime, str | None] | None = None,
    ) -> int: ...
    def mark_inbox_processed(
        self, record_id: int, now: datetime, error: str | None = None
    ) -> None: ...
    def unprocessed_inbox(self, limit: int = 100) -> list[InboxRecord]: ...
    def add_interaction(self, interaction: Interaction) -> bool: ...
    def remove_interaction_by_activity(self, activity_id: str, actor_id: str) -> bool: ...
    def remove_interaction(self, kind: InteractionKind, actor_id: str, object_id: str) -> bool: ...
    def update_reply(
        self,
        reply_object_id: str,
        actor_id: str,
        content_html: str,
        updated: datetime,
        content_safe_html: str | None = None,
    ) -> bool: ...
    def delete_reply(self, reply_object_id: str, actor_id: str) -> bool: ...
    def get_reply(self, reply_object_id: str) -> Interaction | None: ...
    def get_written(self, object_id: str) -> Interaction | None: ...
    def review_interaction(
        self,
        activity_id: str,
        *,
        approved: bool,
        held_reason: str | None,
        visibility: Visibility | None = None,
    ) -> bool: ...
    def written_interactions(self) -> list[Interaction]: ...
    def set_interaction_approved(self, activity_id: str, approved: bool) -> bool: ...
    def interactions_for_object(
        self, object_id: str, approved_only: bool = True
    ) -> list[Interaction]: ...
    def recent_interactions(self, limit: int = 50) -> list[Interaction]: ...
    def interaction_counts(self) -> dict[str, InteractionCounts]: ...

    # --- remote keys -------------------------------------------------------------------------
    def get_key(self, key_id: str) -> CachedKey | None: ...
    def put_key(self, key: CachedKey) -> None: ...
    def delete_key(self, key_id: str) -> bool: ...

    # --- remote actor cache ------------------------------------------------------------------
    def get_actor(self, actor_id: str) -> CachedActor | None: ...
    def put_actor(self, actor: CachedActor) -> None: ...
    def delete_actor(self, actor_id: str) -> bool: ...

    # --- blocks ------------------------------------------------------------------------------
    def add_block(self, target: str, now: datetime) -> bool: ...
    def remove_block(self, target: str) -> bool: ...
    def list_blocks(self) -> list[str]: ...
    def is_blocked(self, actor_id_or_domain: str) -> bool: ...
    def blocked_or_key(self, key_id: str, actor_id: str) -> tuple[bool, CachedKey | None]: ...
    def remove_domain(self, domain: str) -> tuple[int, int]: ...
    def knows_actor(self, actor_id: str) -> bool: ...

    # --- quotes and count refreshes ---------------------------------------------------------
    def put_quote_authorization(self, authorization: QuoteAuthorization) -> bool: ...
    def get_quote_authorization(self, authorization_id: str) -> QuoteAuthorization | None: ...
    def quote_authorization_for(self, quoting_object_id: str) -> QuoteAuthorization | None: ...
    def active_quote_authorizations(self) -> list[QuoteAuthorization]: ...
    def revoke_quote_authorization(self, authorization_id: str, now: datetime) -> bool: ...
    def get_announced_counts(self, object_id: str) -> AnnouncedCounts | None: ...
    def announced_counts(self) -> dict[str, AnnouncedCounts]: ...
    def put_announced_counts(self, counts: AnnouncedCounts) -> None: ...
    def replace_announced_counts(
        self, counts: AnnouncedCounts, previous: AnnouncedCounts | None
    ) -> bool: ...
    # --- host health (circuit breaker) ---------------------------------------------------------
    def record_host_failure(self, host: str, now: datetime) -> HostHealth: ...
    def record_host_success(self, host: str, now: datetime) -> int: ...
    def resume_host(self, host: str, now: datetime) -> int: ...
    def pause_host(self, host: str, until: datetime, now: datetime) -> int: ...
    def failing_hosts(self) -> list[HostHealth]: ...
    def dead_hosts(self, failing_since: datetime) -> list[tuple[HostHealth, int]]: ...
    def prune_dead_hosts(self, failing_since: datetime) -> tuple[int, int, int]: ...

    # --- mention cache -----------------------------------------------------------------------
    def get_mention(self, acct: str) -> ResolvedMention | None: ...
    def put_mention(self, mention: ResolvedMention) -> None: ...
    def list_mentions(self) -> list[ResolvedMention]: ...


class SharedLimits(Protocol):
    """Limits several inbox processes share through the store (PostgreSQL; `shared_limits`)."""

    def take_rate_token(
        self, key: str, now: float, per_minute: float, burst: int
    ) -> float | None: ...
    def take_rate_tokens(
        self, takes: Sequence[tuple[str, float, int]], now: float
    ) -> tuple[int, float] | None: ...
    def claim_key_refetch(self, key_id: str, now: float, interval: float) -> bool: ...
