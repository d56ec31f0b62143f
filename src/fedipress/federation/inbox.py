"""The inbox service as a Starlette app: verify every POST, then hand it to inbox_handlers.

    app = create_app(config, store, fetcher, clock=utc_now, delivery_wake=worker.wake,
                     site_dir=Path("public"))

Everything is injected (store, fetcher with its signing auth and SSRF policy, clock, the
delivery loop's wake-up), so tests run the same app through httpx.ASGITransport and uvicorn.
Checks run cheapest first and stop at the first failure, each logged with its reason:

    431 request headers over 16 KiB (before anything else reads them)
    415 content type · 413 body over 1 MiB (read with a hard cap) · 400 JSON (UTF-8, no lone
    surrogate, NaN or duplicate key) / depth / shape
    429 per client IP · 401 signature syntax, digest, date (no network) · 429 per keyId host
    401 keyId on our own host · 403 blocked domain or actor · key (cache, else signed GET;
    a cached key that fails is refetched once) · 401 verify (keys under RSA-2048 refused)
    401 key owner != actor · 202 duplicate (same activity id: nothing stored again) · handle
    202

Every 202 that stores nothing (a duplicate, a Follow of another actor, a Like of something
that is not our post...) is logged at info level with its reason: accepted and ignored must
never mean silent.

No request from outside produces a 500: an unexpected error is logged with its traceback and
answered 503 (the sender retries later).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..activitypub.httpsig import (
    DEFAULT_MAX_SKEW,
    PublicKey,
    SignatureClaim,
    parse_signature_request,
    verify_claim,
)
from ..config import SiteConfig
from ..errors import (
    FetchError,
    FetchGone,
    FetchUnavailable,
    SignatureError,
    StoreError,
    UnsafeURLError,
)
from ..generator.contenttypes import content_type_for, needs_cors
from ..store import CachedActor, CachedKey, Store, shared_limits
from .hosthealth import HostBreaker
from .inbox_handlers import (
    RECEIVED_MANIFEST,
    ActivityHandler,
    OwnPosts,
    Plan,
    Rejected,
    cached_actor,
    id_of,
    same_host,
)
from .quotes import prepare_quote_request, revoke_deleted_quote
from .ratelimit import RateLimiter
from .remote import RemoteFetcher, check_json_depth, has_lone_surrogate

__all__ = ["MAX_HEADER_BYTES", "InboxSettings", "create_app", "client_ip"]

log = logging.getLogger("fedipress.inbox")

T = TypeVar("T")
_AP_TYPES = ("application/activity+json", "application/ld+json")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
RETRY_AFTER = "60"  # seconds, on 503 answers: the sender retries with its own backoff anyway
# All request header lines together; nginx's default buffers stop at 8-32 KiB and a signed
# activity needs a few hundred bytes. The server (h11) refuses a longer header block that
# arrives in pieces; one that arrives in one read is refused here, before any route runs.
MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class InboxSettings:
    max_body: int = 1 << 20  # 1 MiB, like Mastodon
    max_skew: timedelta = DEFAULT_MAX_SKEW
    ip_per_minute: float = 300.0  # GoToSocial's 300 per 5 min is stricter; bursts of boosts
    ip_burst: int = 100
    host_per_minute: float = 300.0
    host_burst: int = 100
    key_refetch_interval: float = 60.0  # seconds between refetches of one key (forgery floods)
    recent_ids: int = 10_000  # in-memory replay filter in front of the store's dedupe
    max_header_bytes: int = MAX_HEADER_BYTES


class _KeyGone(Exception):
    """The signing key's server answered 410 Gone."""


class _Refused(Exception):
    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None):
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})
        super().__init__(reason)


def client_ip(scope: Scope) -> str:
    """The peer address; behind a proxy on loopback, the last X-Forwarded-For hop."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if peer in _LOOPBACK:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                if last:
                    return str(last[:64])
    return str(peer)


def _host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@functools.lru_cache(maxsize=1024)
def _load_key(pem: str) -> PublicKey:
    # Cached by PEM text: parsing it is a third of verifying, and a sender signs many POSTs
    # with one key. Key objects are immutable; a rotated key is a different PEM string.
    key = load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise SignatureError("unsupported key type")
    return key


class _CatchAll:
    """Outermost ASGI wrapper: headers over the limit are a 431 before anything reads them,
    and an exception that escapes becomes a logged 503, never a 500."""

    def __init__(self, app: ASGIApp, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Name, ": ", value and CRLF of each line, as on the wire, and the request target:
        # what h11 counts while the head is still incomplete.
        size = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
        size += len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if size > self.max_header_bytes:
            log.info(
                "inbox 431 from %s: request headers of %d bytes (limit %d)",
                client_ip(scope), size, self.max_header_bytes,
            )
            too_large = JSONResponse(
                {"error": f"request headers larger than {self.max_header_bytes // 1024} KiB"},
                431, headers={"Connection": "close"},
            )
            await too_large(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = JSONResponse(
                    {"error": "temporarily unavailable"}, 503, headers={"Retry-After": "60"}
                )
                await response(scope, receive, send)


class _Inbox:
    """The POST /inbox endpoint and its state (rate limits, replay filter, refetch times)."""

    def __init__(
        self,
        config: SiteConfig,
        store: Store,
        fetcher: RemoteFetcher,
        clock: Callable[[], datetime],
        delivery_wake: Callable[[], None] | None,
        settings: InboxSettings,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.wake = delivery_wake
        self.settings = settings
        self.by_ip = RateLimiter(per_minute=settings.ip_per_minute, burst=settings.ip_burst)
        self.by_host = RateLimiter(per_minute=settings.host_per_minute, burst=settings.host_burst)
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.refetched: OrderedDict[str, float] = OrderedDict()
        # On PostgreSQL several inbox processes share the rate limits and the refetch cooldown
        # through the store; on SQLite (one machine) they stay in this process's memory.
        self.shared = shared_limits(store)
        self._limiter: anyio.CapacityLimiter | None = None
        # A host that sends us anything is alive: its paused deliveries resume (hosthealth.py).
        self.breaker = HostBreaker(store)
        self.scheme = urlsplit(config.fediverse.inbox_url).scheme or "https"
        # `doctor --deep`'s live probe actors, hosted here, may sign (doctor_probe.py).
        self.own_probe: Callable[[str], bool] = lambda key_id: False
        self.blocked = tuple(b.strip().lower() for b in config.fediverse.blocked if b.strip())
        self.handler = ActivityHandler(
            config=config,
            store=store,
            fetcher=fetcher,
            own_posts=OwnPosts(config.state_dir / "manifest.json", config.base_url,
                               config.state_dir / RECEIVED_MANIFEST),
            is_blocked=self.is_blocked,
            clock=clock,
            handlers={"QuoteRequest": prepare_quote_request},
            delete_hooks=(revoke_deleted_quote,),
            db_limiter=self.db_limiter,
        )

    async def db(self, func: Callable[..., T], *args: Any) -> T:
        # SQLite calls may wait on another process's lock (busy timeout): keep them off the loop.
        return await anyio.to_thread.run_sync(lambda: func(*args),
                                              limiter=self.db_limiter())

    def db_limiter(self) -> anyio.CapacityLimiter | None:
        """The threads store calls may use at once: on PostgreSQL as many as the pool has
        connections (more would only queue for one, each a thread to start and wake), else
        anyio's default. Made on first use: a limiter belongs to the running event loop."""
        if self._limiter is None:
            size = getattr(self.store, "max_connections", None)
            if not isinstance(size, int):
                return None
            self._limiter = anyio.CapacityLimiter(size)
        return self._limiter

    # -- blocks: site.yaml's list and the store's (`fedipress block`) --

    def _config_blocks(self, value: str) -> bool:
        value = value.strip()
        host = _host_of(value) if "://" in value else value.lower()
        for entry in self.blocked:
            if "://" in entry:
                if value == entry:
                    return True
            else:
                domain = entry.removeprefix("*.").strip(".")
                if host == domain or host.endswith("." + domain):
                    return True
        return False

    async def is_blocked(self, value: str) -> bool:
        if self._config_blocks(value):
            return True
        return await self.db(self.store.is_blocked, value)

    # -- the request --

    async def __call__(self, request: Request) -> Response:
        ip = client_ip(request.scope)
        try:
            return await self._handle(request, ip)
        except _Refused as refused:
            # A 202 here stored nothing: logged like every refusal, with what it was about.
            log.info("inbox %s from %s: %s", refused.status, ip, refused.reason)
            if refused.status == 202:
                return Response(status_code=202)
            return JSONResponse({"error": refused.reason}, refused.status, headers=refused.headers)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise _Refused(400, "malformed Content-Length")
            if int(declared) > limit:
                raise _Refused(413, "body larger than 1 MiB")
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise _Refused(413, "body larger than 1 MiB")
                chunks.append(chunk)
        except ClientDisconnect:
            # The sender hung up mid-body, or the server refused its framing (bad chunk sizes)
            # and closed: the sender's doing, logged as such, never a traceback.
            raise _Refused(400, "connection closed before the whole body arrived") from None
        return b"".join(chunks)

    def _parse(self, body: bytes) -> dict[str, Any]:
        if not check_json_depth(body):
            raise _Refused(400, "JSON nested too deeply")
        try:
            # JSON between systems is UTF-8 (RFC 8259 §8.1); json.loads would also guess
            # UTF-16/32 and let UTF-8-encoded surrogates through.
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(400, "body is not valid UTF-8") from None
        try:
            data = json.loads(
                text,
                object_pairs_hook=_unique_keys,
                parse_constant=_no_constant,
                parse_float=_finite_float,
            )
        except _BadJSON as bad:
            raise _Refused(400, bad.reason) from None
        except (ValueError, RecursionError):
            raise _Refused(400, "body is not valid JSON") from None
        if "\\u" in text and has_lone_surrogate(data):
            # "\ud800" is valid JSON syntax but no Unicode text: it would fail later, wherever
            # the string is encoded (the store, a log line, an Accept).
            raise _Refused(400, "JSON string with a lone surrogate (\\ud800-\\udfff)")
        if not isinstance(data, dict):
            raise _Refused(400, "activity is not a JSON object")
        kind = data.get("type")
        if not isinstance(data.get("id"), str) or not (
            isinstance(kind, str) or isinstance(kind, list)
        ):
            raise _Refused(400, "activity needs an id and a type")
        actor = id_of(data.get("actor"))
        if actor is None or not actor.startswith(("https://", "http://")) or not _host_of(actor):
            raise _Refused(400, "activity needs an actor URL")
        return data

    async def _rate(self, limiter: RateLimiter, key: str, what: str) -> None:
        """One limit on its own (a request refused before its signing server is known)."""
        if self.shared is not None:
            wait = await self.db(self.shared.take_rate_token, f"{what}:{key}", time.time(),
                                 limiter.rate * 60.0, int(limiter.burst))
        else:
            wait = limiter.hit(key, time.monotonic())
        if wait is not None:
            raise _too_many(what, wait)

    def _shared_checks(
        self, ip: str, key_host: str, key_id: str, actor: str
    ) -> tuple[tuple[int, float] | None, bool, CachedKey | None]:
        """Both shared rate limits (one statement: the server's bucket is touched only when
        the address's allowed), then the store's blocks and the cached key (one query): every
        POST's reads and limits in one trip to the database thread and two round trips."""
        assert self.shared is not None
        refused = self.shared.take_rate_tokens(
            [(f"address:{ip}", self.by_ip.rate * 60.0, int(self.by_ip.burst)),
             (f"server:{key_host}", self.by_host.rate * 60.0, int(self.by_host.burst))],
            time.time(),
        )
        if refused is not None:
            return refused, False, None
        blocked, cached = self.store.blocked_or_key(key_id, actor)
        return None, blocked, cached

    async def _handle(self, request: Request, ip: str) -> Response:
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype not in _AP_TYPES:
            raise _Refused(415, "Content-Type must be application/activity+json")
        body = await self._read_body(request)
        activity = self._parse(body)
        if self.shared is None:
            await self._rate(self.by_ip, ip, "address")
        # On PostgreSQL the address's token is taken with the server's, once the signature
        # names the server (below); a request refused before that still takes it first.

        now = self.clock()
        scope = request.scope
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        try:
            claim = parse_signature_request(
                "POST",
                target,
                request.headers.items(),
                body,
                now=now,
                max_skew=self.settings.max_skew,
                scheme=self.scheme,
            )
        except SignatureError as exc:
            if self.shared is not None:
                await self._rate(self.by_ip, ip, "address")
            raise _Refused(401, exc.reason) from None
        key_host = _host_of(claim.key_id)
        if not key_host or not claim.key_id.startswith(("https://", "http://")):
            if self.shared is not None:
                await self._rate(self.by_ip, ip, "address")
            raise _Refused(401, "keyId is not a URL")
        actor = id_of(activity.get("actor"))
        assert actor is not None  # _parse checked it
        # The limits, the store's blocks for both and the cached key in one trip to the
        # database thread: each hop costs the event loop a wake-up, and this is every POST.
        if self.shared is not None:
            refused, blocked, cached = await self.db(
                self._shared_checks, ip, key_host, claim.key_id, actor)
            if refused is not None:
                raise _too_many("address" if refused[0] == 0 else "server", refused[1])
        else:
            await self._rate(self.by_host, key_host, "server")
            blocked, cached = await self.db(self.store.blocked_or_key, claim.key_id, actor)
        if same_host(claim.key_id, self.config.base_url) and not self.own_probe(claim.key_id):
            raise _Refused(401, "keyId names this server")
        if blocked or any(self._config_blocks(who) for who in (claim.key_id, actor)):
            raise _Refused(403, "blocked")

        activity_id = str(activity["id"])
        deletes_self = _is_self_delete(activity, actor)
        if deletes_self and not await self.db(self.store.knows_actor, actor) and (
            cached is None
        ):
            # An account deletion is sent to every server the account's server knows; one we
            # never heard of needs no key fetch (the key is usually gone already) and no row.
            raise _Refused(
                202, f"ignored Delete of {actor[:200]}: an actor this blog never heard of"
            )
        try:
            owner = await self._verify(claim, activity, actor, cached)
        except _KeyGone:
            if not deletes_self:
                raise _Refused(401, "signing key is gone (410)") from None
            plan = await self._gone_actor(activity, actor, claim.key_id)
        else:
            if owner != actor:
                raise _Refused(401, "the signing key does not belong to the activity's actor")
            if self.breaker.maybe_failing(key_host):
                resumed = await self.db(self.breaker.contact, key_host, self.clock())
                if resumed:
                    log.info("inbox: %s is alive again: %d paused deliveries are due now",
                             key_host, resumed)
                    if self.wake is not None:
                        self.wake()
            if activity_id in self.recent:
                raise _Refused(202, f"ignored duplicate {activity_id[:200]} from {actor[:200]}")
            try:
                plan = await self.handler.prepare(activity, body, actor)
            except Rejected as rejected:
                headers = {"Retry-After": RETRY_AFTER} if rejected.status == 503 else None
                raise _Refused(rejected.status, rejected.reason, headers) from None
        stored, unchanged = await self.db(
            self._apply, activity_id, actor, body, plan, self.clock()
        )
        self._remember(activity_id)
        if not stored:
            raise _Refused(202, f"ignored duplicate {activity_id[:200]} from {actor[:200]}")
        # Ignored activities too: a 202 that changes nothing must say why in the log.
        kind, detail = ("ignored", unchanged) if unchanged is not None else (plan.kind, plan.detail)
        log.info("inbox %s %s from %s: %s", kind, activity_id[:200], actor[:200], detail)
        if plan.wake and self.wake is not None:
            self.wake()
        return Response(status_code=202)

    def _apply(
        self, activity_id: str, actor: str, body: bytes, plan: Plan, now: datetime
    ) -> tuple[bool, str | None]:
        """Dedupe, make the plan's writes and keep the raw activity: one transaction. Whether
        it was new, and why nothing changed when the plan ignored it or its write found
        nothing to do."""
        store = self.store
        with store.transaction():
            if not store.seen_activity(activity_id, now):
                return False, None
            unchanged = plan.detail if plan.kind == "ignored" else None
            if plan.write is not None:
                unchanged = plan.write(store, now) or unchanged
            # Logged after the writes, already marked processed: one statement, not an insert
            # and an update (a round trip each on PostgreSQL). The transaction keeps all or none.
            store.log_inbox(activity_id, actor, body, now, (now, unchanged))
        return True, unchanged

    def _remember(self, activity_id: str) -> None:
        self.recent[activity_id] = None
        while len(self.recent) > self.settings.recent_ids:
            self.recent.popitem(last=False)

    async def _gone_actor(self, activity: Mapping[str, Any], actor: str, key_id: str) -> Plan:
        """A Delete of `actor` whose key is 410 Gone: how Mastodon account deletions arrive.

        No signature can be checked, so the account's own server is asked instead: the key
        document is gone, and (when the key lives elsewhere) so is the actor. A Delete that
        anyone could forge then only removes what the server itself says no longer exists.
        """
        if not same_host(key_id, actor):
            raise _Refused(401, "the signing key does not belong to the activity's actor")
        if key_id.split("#", 1)[0] != actor:
            try:
                await self.fetcher.fetch_actor(actor)
            except FetchGone:
                pass
            except FetchUnavailable:
                raise _Refused(503, "actor temporarily unavailable",
                               {"Retry-After": RETRY_AFTER}) from None
            except FetchError:
                raise _Refused(401, "signing key is gone (410)") from None
            else:
                raise _Refused(401, "signing key is gone (410) but the actor is not")
        if not await self.db(self.store.knows_actor, actor):
            raise _Refused(
                202, f"ignored Delete of {actor[:200]} (gone): an actor this blog never heard of"
            )

        def forget(store: Store, now: datetime) -> None:
            store.remove_actor(actor)

        return Plan("delete-actor", "gone (410): actor and everything it left removed", forget)

    # -- keys --

    async def _may_refetch(self, key_id: str) -> bool:
        if self.shared is not None:
            return await self.db(self.shared.claim_key_refetch, key_id, time.time(),
                                 self.settings.key_refetch_interval)
        now = time.monotonic()
        last = self.refetched.get(key_id)
        if last is not None and now - last < self.settings.key_refetch_interval:
            return False
        self.refetched[key_id] = now
        while len(self.refetched) > 10_000:
            self.refetched.popitem(last=False)
        return True

    async def _fetch_key(self, key_id: str) -> tuple[CachedKey, CachedActor | None]:
        """The fetched key, and its owner's actor document when the fetch returned it."""
        try:
            remote = await self.fetcher.fetch_key(key_id)
        except UnsafeURLError as exc:
            log.info("keyId %s refused: %s", key_id[:200], exc)
            raise _Refused(401, "keyId refused (not a public address)") from None
        except FetchUnavailable as exc:
            # The sender's server is slow or down right now: ask for a retry (Mastodon 4.6)
            # rather than a 401 that makes it drop the activity; a retry may refetch at once.
            log.info("keyId %s not fetched, for now: %s", key_id[:200], exc)
            self.refetched.pop(key_id, None)
            raise _Refused(503, "signing key temporarily unavailable",
                           {"Retry-After": RETRY_AFTER}) from None
        except FetchGone as exc:
            log.info("keyId %s is gone: %s", key_id[:200], exc)
            raise _KeyGone() from None
        except FetchError as exc:
            log.info("keyId %s not fetched: %s", key_id[:200], exc)
            raise _Refused(401, "signing key could not be fetched") from None
        now = self.clock()
        doc = None if remote.actor is None else cached_actor(remote.actor, now)
        return CachedKey(key_id, remote.owner, remote.pem, now), doc

    def _check(self, claim: SignatureClaim, key: CachedKey) -> str | None:
        """None when `key` verifies the claim, else the reason (a weak key says so)."""
        try:
            verify_claim(claim, _load_key(key.public_key_pem))
        except SignatureError as exc:
            return exc.reason
        except (ValueError, TypeError):
            return "signature does not verify"
        return None

    async def _verify(
        self,
        claim: SignatureClaim,
        activity: Mapping[str, Any],
        actor: str,
        cached: CachedKey | None,
    ) -> str:
        """The verified key's owner. `cached` (the store's copy of the key, read just before)
        first; a failing cached key is refetched once."""
        if cached is not None:
            failure = self._check(claim, cached)
            if failure is None:
                return cached.owner
            if not await self._may_refetch(claim.key_id):
                raise _Refused(401, failure)
        elif _host_of(claim.key_id) != _host_of(actor):
            # A key on another host can never belong to this actor: no fetch needed.
            raise _Refused(401, "the signing key does not belong to the activity's actor")
        fresh, doc = await self._fetch_key(claim.key_id)
        failure = self._check(claim, fresh)
        if failure is not None:
            raise _Refused(401, failure)
        # The key fetch fetched the actor document too: cache it with the key, so the handler
        # (a like's author, a Follow's inbox) does not fetch it again.
        doc = doc if doc is not None and doc.actor_id == actor else None
        await self.db(self._put_key_and_actor, fresh, doc)
        return fresh.owner

    def _put_key_and_actor(self, key: CachedKey, actor: CachedActor | None) -> None:
        # Two plain writes in one thread hop: both are caches, a durable transaction (fsync)
        # would buy nothing.
        self.store.put_key(key)
        if actor is not None:
            self.store.put_actor(actor)


def _too_many(what: str, wait: float) -> _Refused:
    return _Refused(429, f"too many requests from this {what}",
                    {"Retry-After": str(math.ceil(wait))})


class _BadJSON(ValueError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key would let a check read one and the handler the other.
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BadJSON(f"duplicate key {key[:40]!r} in a JSON object")
            seen.add(key)
    return data


def _no_constant(name: str) -> Any:
    raise _BadJSON(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # 1e999 parses as infinity, which json.dumps would write back as the non-JSON Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise _BadJSON(f"number {text[:40]} is out of range")
    return value


def _is_self_delete(activity: Mapping[str, Any], actor: str) -> bool:
    kind = activity.get("type")
    return (kind == "Delete" or (isinstance(kind, list) and "Delete" in kind)) and id_of(
        activity.get("object")
    ) == actor


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    # A requested path too long for the file system (ENAMETOOLONG) is a path that is not
    # there, not an error: Path.is_dir/is_file raise it instead of answering False.
    try:
        return test(path)
    except OSError:
        return False


def _static(site_dir: Path) -> Callable[[Request], Any]:
    root = site_dir.resolve()

    async def serve(request: Request) -> Response:
        rel = request.path_params.get("path", "")
        if "\x00" in rel or "\\" in rel:
            return Response("not found\n", 404, media_type="text/plain")
        candidate = (root / rel).resolve()
        try:
            candidate.relative_to(root)
        except ValueError:
            return Response("not found\n", 404, media_type="text/plain")
        if _is(candidate, Path.is_dir):
            if rel and not rel.endswith("/"):
                return Response(status_code=301, headers={"Location": f"/{rel}/"})
            candidate = candidate / "index.html"
            rel = rel + "index.html"
        if not _is(candidate, Path.is_file):
            missing = root / "404.html"
            if missing.is_file():
                return FileResponse(missing, 404, media_type="text/html; charset=utf-8")
            return Response("not found\n", 404, media_type="text/plain")
        headers = {"Access-Control-Allow-Origin": "*"} if needs_cors(rel) else {}
        return FileResponse(candidate, media_type=content_type_for(rel), headers=headers)

    return serve


def _webfinger(config: SiteConfig, site_dir: Path) -> Callable[[Request], Any]:
    """RFC 7033: the built JRD for the blog's own account only; 400/404 for anything else
    (webfinger.webfinger_answer decides, as it does for `fedipress serve`)."""
    from ..activitypub.webfinger import webfinger_answer

    path = site_dir / ".well-known" / "webfinger"

    async def answer(request: Request) -> Response:
        if not config.fediverse.enabled:
            return _left(request)
        try:
            built = path.read_bytes()
        except OSError:
            return Response("not found\n", 404, media_type="text/plain")
        found = webfinger_answer(config, request.url.query, built)
        return Response(found.body, found.status, headers=dict(found.headers),
                        media_type=found.content_type)

    return answer


def _left(request: Request) -> Response:
    """fediverse.enabled: false: the account is gone (`fedipress leave`); no follow is taken
    and WebFinger finds nobody, as the generated host configuration answers (hosting_gone)."""
    log.info("%s %s answered 410 Gone: fediverse.enabled is false in site.yaml",
             request.method, request.url.path)
    return Response("410 Gone: this blog has left the fediverse\n", 410,
                    media_type="text/plain", headers={"Access-Control-Allow-Origin": "*"})


async def _unavailable(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "temporarily unavailable"}, 503, headers={"Retry-After": "60"})


def create_app(
    config: SiteConfig,
    store: Store,
    fetcher: RemoteFetcher,
    *,
    clock: Callable[[], datetime],
    delivery_wake: Callable[[], None] | None = None,
    site_dir: Path | None = None,
    settings: InboxSettings = InboxSettings(),
    extra_routes: Sequence[BaseRoute] = (),
    own_probe: Callable[[str], bool] | None = None,
) -> ASGIApp:
    """The inbox service: POST to the actor's inbox and shared inbox, GET /healthz, and with
    `site_dir` the built site with correct content types. `fetcher` must carry the blog's
    signing auth (signed GETs) and the SSRF policy. `extra_routes` (the owner API) come
    before the site's catch-all."""
    inbox = _Inbox(config, store, fetcher, clock, delivery_wake, settings)
    if own_probe is not None:
        inbox.own_probe = own_probe
    if inbox.blocked:
        from .interactions import purge_blocked

        # site.yaml may have gained blocks since the last run: drop what they cover now.
        gone = purge_blocked(store, inbox.blocked)
        if any(gone):
            log.info("blocked in site.yaml: removed %d followers, %d interactions", *gone)
    paths = {"/inbox"}
    for url in (config.fediverse.inbox_url, config.fediverse.shared_inbox_url):
        if same_host(url, config.base_url) or urlsplit(url).path:
            paths.add(urlsplit(url).path or "/inbox")

    async def healthz(request: Request) -> Response:
        try:
            await inbox.db(store.count_followers)
        except (StoreError, OSError) as exc:
            log.warning("health check: store unavailable: %s", exc)
            return JSONResponse({"status": "store unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    async def inbox_get(request: Request) -> Response:
        return JSONResponse({"error": "POST activities here"}, 405, headers={"Allow": "POST"})

    async def post(request: Request) -> Response:
        if not config.fediverse.enabled:
            return _left(request)
        return await inbox(request)

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    for path in sorted(paths):
        routes.append(Route(path, post, methods=["POST"]))
        routes.append(Route(path, inbox_get, methods=["GET", "HEAD"]))
    routes.extend(extra_routes)
    if site_dir is not None:
        serve = _static(site_dir)
        routes.append(Route("/.well-known/webfinger", _webfinger(config, site_dir),
                            methods=["GET", "HEAD"]))
        routes.append(Route("/", serve, methods=["GET", "HEAD"]))
        routes.append(Route("/{path:path}", serve, methods=["GET", "HEAD"]))
    # Starlette's own error middleware answers 500 before re-raising; this handler makes that
    # answer a 503, and _CatchAll logs the exception and stops it there.
    return _CatchAll(
        Starlette(routes=routes, exception_handlers={Exception: _unavailable}),
        settings.max_header_bytes,
    )
