"""The owner API of `fedipress inbox`: what the blog's owner (and CI) asks of the service.

    routes = OwnerApi(config, store, key, token, ...).routes()   # under /.fedipress/api/v1/

Enabled only when an owner token is configured (FEDIPRESS_SERVICE_TOKEN, or the file named by
site.yaml's service.token_file). Every route but the OpenAPI document needs
`Authorization: Bearer TOKEN`, compared in constant time; a missing or wrong token is 401 and
changes nothing, and an address that keeps failing gets 429 before its token is even looked at.
The token never reaches a log line or an answer. Endpoints:

    GET  openapi.json                         the OpenAPI 3.1 description (public)
    GET  health                               does the published actor carry this key?
    GET  followers?page=&per_page=            count and one page of followers
    GET  deliveries                           queue counts and recent failures
    GET  conversations                        likes, boosts and replies, for the build
    POST publish/sessions                     begin an upload: {"actor": {...}}
    POST publish/sessions/{id}/objects        one chunk: {"objects": {id: entry}}
    POST publish/sessions/{id}/commit         apply it: {"objects": count} -> the answer
    DELETE publish/sessions/{id}              abandon it (nothing applied)
    POST doctor/deep                          meet the blog from outside (doctor_probe.py)
    GET  feed.atom, feed/<secret>.atom        the author's private feed (author_feed.py)
    GET  leave / POST leave {"confirm": handle}  leaving: who is told / send the actor's
                                              Delete to them all and forget them (leave.py)
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import SiteConfig
from ..errors import FedipressError, FetchError, StoreError, UnsafeURLError
from ..store import Store
from ..store.conversations import export_conversations
from ..wording import plural
from .author_feed import AuthorFeed
from .doctor_probe import ProbeRegistry, deep_check
from .inbox import client_ip
from .keys import public_pem_of, same_public_key
from .leave import LeaveQueued, leave_status, queue_leave
from .ratelimit import RateLimiter
from .remote import RemoteFetcher
from .service_http import PREFIX, TOKEN_ENV  # (one definition, shared with the clients)
from .service_publish import (
    ManifestRefused,
    UploadSessions,
    apply_manifest,
    check_actor,
    check_objects,
)

__all__ = [
    "MIN_TOKEN_CHARS",
    "PREFIX",
    "TOKEN_ENV",
    "OwnerApi",
    "OwnerApiSettings",
    "load_owner_token",
    "new_token",
    "openapi_document",
]

log = logging.getLogger("fedipress.inbox")

TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters: a shorter token cannot carry 32 random bytes.
MIN_TOKEN_CHARS = 43
Handler = Callable[[Request], Awaitable[Response]]


def new_token() -> str:
    """A fresh owner token: 48 random bytes, URL-safe (64 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES + 16)


def load_owner_token(
    token_file: Path | None, environ: Mapping[str, str] = os.environ
) -> str | None:
    """The owner token (the environment wins over the file), or None: the API is off.
    A token too short to carry 32 random bytes is refused; the message never shows it."""
    value = environ.get(TOKEN_ENV, "").strip()
    where = TOKEN_ENV
    if not value and token_file is not None:
        where = str(token_file)
        try:
            value = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as exc:
            raise FedipressError(
                f"service.token_file {token_file}: cannot be read"
                f" ({getattr(exc, 'strerror', None) or type(exc).__name__});"
                " write one with `fedipress service token > FILE`") from None
        if not value:
            raise FedipressError(f"service.token_file {token_file}: is empty; write one with"
                                 " `fedipress service token > FILE`")
    if not value:
        return None
    if len(value) < MIN_TOKEN_CHARS or any(c.isspace() for c in value):
        raise FedipressError(
            f"{where}: the owner token must be at least {MIN_TOKEN_CHARS} characters with no"
            f" spaces (32 random bytes; this one has {len(value)}); make one with"
            " `fedipress service token`")
    return value


@dataclass(frozen=True)
class OwnerApiSettings:
    max_body: int = 1 << 20  # each request, chunks included
    failures_per_minute: float = 6.0  # wrong tokens one address may send, refilled
    failure_burst: int = 10
    followers_per_page: int = 100
    max_per_page: int = 1000
    failures_listed: int = 100


class _Answer(Exception):  # noqa: N818 - an HTTP answer, raised to leave early
    def __init__(self, status: int, error: str, headers: Mapping[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = dict(headers or {})


def _json(data: Any, status: int = 200) -> Response:
    # Sorted keys: the same store gives the same bytes (the build caches on them).
    body = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), status, media_type="application/json")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class OwnerApi:
    """The owner API's routes and their state (failure counts, upload sessions)."""

    def __init__(
        self,
        config: SiteConfig,
        store: Store,
        key: RSAPrivateKey,
        token: str,
        *,
        fetcher: RemoteFetcher | None,
        clock: Callable[[], datetime],
        site_dir: Path | None,
        allow_private: bool,
        delivery_wake: Callable[[], None] | None = None,
        settings: OwnerApiSettings = OwnerApiSettings(),
        monotonic: Callable[[], float] = time.monotonic,
        probes: ProbeRegistry | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.key = key
        self._token = token.encode("utf-8")
        self.fetcher = fetcher
        self.clock = clock
        self.site_dir = site_dir
        self.allow_private = allow_private
        self.wake = delivery_wake
        self.settings = settings
        self.monotonic = monotonic
        self.failures = RateLimiter(per_minute=settings.failures_per_minute,
                                    burst=settings.failure_burst)
        self.blocked_until: dict[str, float] = {}
        self.sessions = UploadSessions(monotonic)
        self.apply_lock = threading.Lock()  # one commit at a time: plans read the ledger
        self.probes = probes

    # -- the edge: auth, bodies, errors --

    def _authorize(self, request: Request) -> None:
        ip = client_ip(request.scope)
        now = self.monotonic()
        until = self.blocked_until.get(ip)
        if until is not None and until > now:
            raise _Answer(429, "too many failed attempts; wait and try again",
                          {"Retry-After": str(int(until - now) + 1)})
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given.strip() and hmac.compare_digest(
                given.strip().encode("utf-8", "surrogateescape"), self._token):
            return
        reason = "no bearer token" if not given.strip() else "wrong token"
        wait = self.failures.hit(ip, now)
        log.warning("owner API: refused %s %s from %s: %s", request.method,
                    request.url.path, ip, reason)
        if wait is not None:
            if len(self.blocked_until) > 10_000:
                self.blocked_until = {k: v for k, v in self.blocked_until.items() if v > now}
            self.blocked_until[ip] = now + wait
            raise _Answer(429, "too many failed attempts; wait and try again",
                          {"Retry-After": str(int(wait) + 1)})
        raise _Answer(401, f"{reason}: send Authorization: Bearer <the service's owner token>",
                      {"WWW-Authenticate": 'Bearer realm="fedipress"'})

    def _guarded(self, handler: Handler, *, public: bool = False) -> Handler:
        async def run(request: Request) -> Response:
            try:
                if not public:
                    self._authorize(request)
                return await handler(request)
            except _Answer as answer:
                return JSONResponse({"error": answer.error}, answer.status, answer.headers)
            except ManifestRefused as refused:
                log.warning("owner API: %s refused: %s", request.url.path, refused.reason)
                return JSONResponse({"error": refused.reason}, refused.status)
            except StoreError as exc:
                log.warning("owner API: %s: store unavailable: %s", request.url.path, exc)
                return JSONResponse({"error": "store unavailable; try again"}, 503,
                                    {"Retry-After": "60"})
            except FedipressError as exc:
                # What the local publish would refuse (an activity too large, say) is the
                # owner's to fix: the same line, not a 5xx.
                log.warning("owner API: %s refused: %s", request.url.path, exc)
                return JSONResponse({"error": str(exc)}, 422)
        return run

    async def _body(self, request: Request) -> dict[str, Any]:
        return (await self._sized_body(request))[0]

    async def _sized_body(self, request: Request) -> tuple[dict[str, Any], int]:
        limit = self.settings.max_body
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise _Answer(415, "send Content-Type: application/json")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Answer(
                        413, f"request body over {plural(limit, 'byte')}; send smaller chunks")
                chunks.append(chunk)
        except ClientDisconnect:
            raise _Answer(400, "the request body was cut short") from None
        try:
            data = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            raise _Answer(400, "the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Answer(400, "the request body must be a JSON object")
        return data, size

    async def _db(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: func(*args))

    # -- the endpoints --

    async def openapi(self, request: Request) -> Response:
        return _json(openapi_document(self.config))

    async def health(self, request: Request) -> Response:
        actor_url = self.config.url("actor.json")
        where, pem, problem = "public address", None, None
        if self.site_dir is not None:
            where = "site folder"
            try:
                doc = json.loads((self.site_dir / "actor.json").read_bytes())
                pem = doc.get("publicKey", {}).get("publicKeyPem") if isinstance(doc, dict) \
                    else None
            except (OSError, ValueError, AttributeError) as exc:
                problem = f"{self.site_dir / 'actor.json'}: cannot be read ({type(exc).__name__})"
        elif self.fetcher is not None:
            try:
                fetched = await self.fetcher.fetch_json(actor_url)
                key = fetched.data.get("publicKey")
                pem = key.get("publicKeyPem") if isinstance(key, dict) else None
            except (FetchError, UnsafeURLError) as exc:
                problem = f"{actor_url}: {exc}"
        matches = isinstance(pem, str) and same_public_key(pem, public_pem_of(self.key))
        if problem is None and not matches:
            problem = ("the published actor's public key is not the service's: rebuild and"
                       " deploy with the public key of the service's private key"
                       " (`fedipress keys show` on the service's machine)")
        followers = await self._db(self.store.count_followers)
        return _json({"status": "ok" if matches else "key mismatch", "key_matches": matches,
                      "actor": actor_url, "checked": where, "problem": problem,
                      "followers": followers})

    async def followers(self, request: Request) -> Response:
        def number(name: str, default: int, top: int) -> int:
            text = request.query_params.get(name, str(default))
            if not text.isdigit() or not 1 <= int(text) <= top:
                raise _Answer(400, f"{name}: expected a whole number from 1 to {top}")
            return int(text)

        page = number("page", 1, 1_000_000)
        per_page = number("per_page", self.settings.followers_per_page,
                          self.settings.max_per_page)
        everyone = await self._db(lambda: sorted(self.store.iter_followers(),
                                                 key=lambda f: f.actor_id))
        chunk = everyone[(page - 1) * per_page: page * per_page]
        more = page * per_page < len(everyone)
        return _json({
            "count": len(everyone), "page": page, "per_page": per_page,
            "next": f"{PREFIX}/followers?page={page + 1}&per_page={per_page}" if more else None,
            "followers": [{"id": f.actor_id, "handle": f.handle, "name": f.name,
                           "inbox": f.inbox, "shared_inbox": f.shared_inbox,
                           "followed_at": _iso(f.followed_at)} for f in chunk],
        })

    async def deliveries(self, request: Request) -> Response:
        counts = await self._db(self.store.delivery_counts)
        failed = await self._db(self.store.list_deliveries, ["failed"],
                                self.settings.failures_listed)
        return _json({
            "counts": dict(counts),
            "failures": [{"activity": d.activity_id, "inbox": d.inbox, "attempts": d.attempts,
                          "status": d.last_status, "error": d.last_error} for d in failed],
        })

    async def conversations(self, request: Request) -> Response:
        return _json(await self._db(self._export))

    def _export(self) -> dict[str, Any]:
        """What followers said about each live post: public data only, sorted, so the same
        store gives the same bytes (store/conversations.py decides what is public)."""
        return export_conversations(self.store, self.config.url("actor.json")).to_json()

    async def begin(self, request: Request) -> Response:
        data = await self._body(request)
        actor = check_actor(self.config, self.key, data.get("actor"))
        sid = self.sessions.begin(actor)
        return _json({"session": sid, "max_chunk_bytes": self.settings.max_body}, 201)

    async def chunk(self, request: Request) -> Response:
        sid = request.path_params["session"]
        data, size = await self._sized_body(request)
        objects = check_objects(data.get("objects"), self.config.base_url)
        return _json({"received": self.sessions.add(sid, objects, size)})

    async def commit(self, request: Request) -> Response:
        sid = request.path_params["session"]
        data = await self._body(request)
        manifest = self.sessions.take(sid)
        sent = data.get("objects")
        if sent != len(manifest["objects"]):
            received = plural(len(manifest["objects"]), "object")
            raise _Answer(422, f"the service received {received} but"
                          f" the client sent {sent}; nothing was applied, publish again")

        backfill = data.get("backfill", 0)
        if not isinstance(backfill, int) or isinstance(backfill, bool) or backfill < 0:
            raise _Answer(422, "backfill: expected a whole number, 0 or more")

        def apply() -> dict[str, Any]:
            with self.apply_lock:
                result = apply_manifest(
                    self.config, self.store, self.key, manifest, now=self.clock(),
                    allow_private=self.allow_private,
                    warn=lambda text: log.info("owner API publish: %s", text),
                    backfill=backfill)
            return result.as_json()

        answer = await anyio.to_thread.run_sync(apply)
        log.info("owner API publish: %s", answer["line"])
        if answer["deliveries"] and self.wake is not None:
            self.wake()
        return _json(answer)

    async def abandon(self, request: Request) -> Response:
        if not self.sessions.drop(request.path_params["session"]):
            raise _Answer(404, "no such upload session")
        return Response(status_code=204)

    async def doctor_deep(self, request: Request) -> Response:
        if self.probes is None:
            raise _Answer(404, "this service hosts no probe; run `fedipress inbox`")
        hops = await deep_check(self.config, self.store, self.key, self.probes,
                                allow_private=self.allow_private, db=self._db)
        for hop in hops:
            log.info("doctor --deep: %s %s: %s", hop.name, "pass" if hop.ok else "FAIL",
                     hop.detail)
        return _json({"ok": all(h.ok for h in hops), "blog": self.config.base_url,
                      "handle": f"{self.config.fediverse.username}"
                                f"@{self.config.fediverse.handle_domain}",
                      "hops": [h.as_json() for h in hops]})

    async def leave(self, request: Request) -> Response:
        if request.method == "GET":
            return _json(await self._db(leave_status, self.config, self.store))
        confirm = (await self._body(request)).get("confirm")
        if confirm != self.config.handle:
            # Leaving cannot be undone: a request must name the blog it means to delete.
            raise _Answer(422, f'send {{"confirm": "{self.config.handle}"}} (the blog\'s handle)'
                          " to leave; nothing was sent")

        def run() -> LeaveQueued:
            with self.apply_lock:
                return queue_leave(self.config, self.store, self.clock())

        done = await anyio.to_thread.run_sync(run)
        log.info("owner API leave: the actor's Delete %s for %s; %s forgotten",
                 "queued" if done.new else "was queued already",
                 plural(done.queued, "inbox", "inboxes"),
                 plural(done.followers_removed, "follower"))
        if done.queued and self.wake is not None:
            self.wake()
        return _json(done.as_json())

    def routes(self) -> list[BaseRoute]:
        g = self._guarded
        s = PREFIX + "/publish/sessions"
        return [
            Route(PREFIX + "/openapi.json", g(self.openapi, public=True), methods=["GET"]),
            Route(PREFIX + "/health", g(self.health), methods=["GET"]),
            Route(PREFIX + "/followers", g(self.followers), methods=["GET"]),
            Route(PREFIX + "/deliveries", g(self.deliveries), methods=["GET"]),
            Route(PREFIX + "/conversations", g(self.conversations), methods=["GET"]),
            Route(s, g(self.begin), methods=["POST"]),
            Route(s + "/{session}/objects", g(self.chunk), methods=["POST"]),
            Route(s + "/{session}/commit", g(self.commit), methods=["POST"]),
            Route(s + "/{session}", g(self.abandon), methods=["DELETE"]),
            Route(PREFIX + "/doctor/deep", g(self.doctor_deep), methods=["POST"]),
            *AuthorFeed(self.config, self.store, self._token.decode("utf-8"), clock=self.clock,
                        monotonic=self.monotonic).routes(g),
            Route(PREFIX + "/leave", g(self.leave), methods=["GET", "POST"]),
        ]


# (method, path under PREFIX, summary, needs the token, request body schema or None)
_OPERATIONS: tuple[tuple[str, str, str, bool, dict[str, Any] | None], ...] = (
    ("get", "/openapi.json", "This document.", False, None),
    ("get", "/health", "Whether the published actor carries the service's public key.",
     True, None),
    ("get", "/followers", "The follower count and one page of followers (page, per_page).",
     True, None),
    ("get", "/deliveries", "Delivery queue counts by state and the recent failures.", True,
     None),
    ("get", "/conversations", "Likes, boosts and approved replies per post, sorted, for the"
     " build.", True, None),
    ("post", "/publish/sessions", "Begin a publish upload with the blog's actor document.",
     True, {"type": "object", "required": ["actor"], "properties": {"actor": {"type": "object"}}}),
    ("post", "/publish/sessions/{session}/objects", "Add a chunk of the federation manifest's"
     " objects (id -> {hash, published, doc}); each request under the body limit.", True,
     {"type": "object", "required": ["objects"], "properties": {"objects": {"type": "object"}}}),
    ("post", "/publish/sessions/{session}/commit", "Plan and queue the whole upload in one"
     " transaction; `objects` is how many were sent, `backfill` how many back-dated posts"
     " (dated more than a week ago) to announce as well.", True,
     {"type": "object", "required": ["objects"],
      "properties": {"objects": {"type": "integer"}, "backfill": {"type": "integer"}}}),
    ("delete", "/publish/sessions/{session}", "Abandon an upload: nothing is applied.", True,
     None),
    ("post", "/doctor/deep", "Check the deployed blog from outside: WebFinger, the actor and a"
     " post through the public address, a signed Follow from a probe actor, its Undo; each"
     " hop's result with the fix.", True, None),
    ("get", "/feed.atom", "The author's private Atom feed of replies, mentions, quotes and"
     " follows.", True, None),
    ("get", "/feed/{secret}.atom", "The same feed for feed readers, which send no token: the"
     " secret is an HMAC of the owner token (`fedipress service feed-url` prints the URL).",
     False, None),
    ("get", "/leave", "Who leaving would tell (handle, followers, inboxes) and, once the"
     " actor's Delete is queued, its pending and failed deliveries.", True, None),
    ("post", "/leave", "Leave the fediverse: queue the actor's Delete for every follower's"
     " inbox and forget the followers, in one transaction; `confirm` must be the handle.", True,
     {"type": "object", "required": ["confirm"], "properties": {"confirm": {"type": "string"}}}),
)


def openapi_document(config: SiteConfig) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the owner API, one operation per route."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, secured, body in _OPERATIONS:
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": (method + path).replace("/", "_").replace("{", "").replace("}", "")
                                          .replace(".", "_").replace("__", "_"),
            "responses": {"200": {"description": "OK"}},
        }
        if secured:
            op["responses"]["401"] = {"description": "missing or wrong owner token"}
            op["responses"]["429"] = {"description": "too many failed attempts"}
        else:
            op["security"] = []
        for name in ("session", "secret"):
            if "{" + name + "}" in path:
                op["parameters"] = [{"name": name, "in": "path", "required": True,
                                     "schema": {"type": "string"}}]
        if path == "/followers":
            op["parameters"] = [{"name": n, "in": "query", "schema": {"type": "integer"}}
                                for n in ("page", "per_page")]
        if body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": body}}}
        paths.setdefault(PREFIX + path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": f"fedipress owner API for {config.url('actor.json')}",
                 "version": "1"},
        "components": {"securitySchemes": {"owner": {"type": "http", "scheme": "bearer"}}},
        "security": [{"owner": []}],
        "paths": paths,
    }
