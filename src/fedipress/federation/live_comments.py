"""Live comments: the public conversation of one post as JSON, for the post page's script.

    GET /.fedipress/live/v1/conversation?post=<the post's object id>

On only with `fediverse.comments_live` (off by default): the theme's small script
(partials/comments_live.html) asks it so that replies approved since the last build appear
without waiting for the next one. The answer is exactly the owner API's conversation export
for that one post (store/conversations.py decides what is public: approved, addressed to the
public, sanitised), in the same format 1 shape, so nothing reaches it that the next build would
not show. Held, followers-only and direct replies never do.

Public and read-only, so it is built to be cheap and hard to abuse: answers are kept for a few
seconds per post, carry an ETag (304 when unchanged) and `Cache-Control: public, max-age`,
each address is rate-limited, and CORS allows the blog's own origin only (a service on another
host than the blog still answers the blog's pages, and nobody else's). A post that is not one
of the blog's live posts is 404.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..activitypub.conversation import Conversations
from ..config import SiteConfig
from ..config.live import LIVE_PATH
from ..errors import StoreError
from ..store import Store
from ..store.conversations import post_conversation
from .inbox import client_ip
from .ratelimit import RateLimiter

__all__ = ["LIVE_PATH", "LIVE_PREFIX", "LiveComments", "LiveSettings", "blog_origin"]

log = logging.getLogger("fedipress.inbox")

LIVE_PREFIX = "/.fedipress/live/"  # proxied to the service by `fedipress hosting` configurations
_MAX_POST = 2048


def blog_origin(base_url: str) -> str:
    """scheme://host[:port] of the blog: the one origin CORS lets read the answers."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class LiveSettings:
    fresh_seconds: float = 10.0  # an answer is reused this long (and max-age for browsers)
    max_age: int = 30  # Cache-Control max-age for browsers and proxies
    per_minute: float = 60.0  # requests one address may make, refilled
    burst: int = 30
    cached_posts: int = 1000


@dataclass(frozen=True)
class _Cached:
    until: float
    status: int
    body: bytes
    etag: str


class LiveComments:
    def __init__(self, config: SiteConfig, store: Store, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 settings: LiveSettings = LiveSettings()) -> None:
        self.config = config
        self.store = store
        self.monotonic = monotonic
        self.settings = settings
        self.origin = blog_origin(config.base_url)
        self.actor = config.url("actor.json")
        self.limiter = RateLimiter(per_minute=settings.per_minute, burst=settings.burst)
        self.cache: OrderedDict[str, _Cached] = OrderedDict()
        self._live: tuple[float, frozenset[str]] = (float("-inf"), frozenset())

    def _headers(self) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": self.origin, "Vary": "Origin",
                "X-Content-Type-Options": "nosniff"}

    def _error(self, status: int, error: str, extra: dict[str, str] | None = None) -> Response:
        body = json.dumps({"error": error}).encode("utf-8")
        return Response(body, status, media_type="application/json",
                        headers=self._headers() | {"Cache-Control": "no-store"} | (extra or {}))

    def _live_posts(self, now: float) -> frozenset[str]:
        until, posts = self._live
        if until > now:
            return posts
        ledger = self.store.get_ledger()
        posts = frozenset(oid for oid, e in ledger.items()
                          if e.state == "live" and not oid.endswith("#profile"))
        self._live = (now + self.settings.fresh_seconds, posts)
        return posts

    def _build(self, post: str, now: float) -> _Cached:
        if post not in self._live_posts(now):
            body = json.dumps({"error": "not a post of this blog"}).encode("utf-8")
            return _Cached(now + self.settings.fresh_seconds, 404, body, "")
        conv = post_conversation(post, self.store.interactions_for_object(post,
                                                                          approved_only=True))
        data = Conversations(self.actor, MappingProxyType({post: conv})).to_json()
        body = json.dumps(data, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return _Cached(now + self.settings.fresh_seconds, 200, body, etag)

    async def conversation(self, request: Request) -> Response:
        ip = client_ip(request.scope)
        now = self.monotonic()
        wait = self.limiter.hit(ip, now)
        if wait is not None:
            log.info("live comments: %s is asking too often; answered 429", ip)
            return self._error(429, "too many requests; wait and try again",
                               {"Retry-After": str(int(wait) + 1)})
        posts = request.query_params.getlist("post")
        post = posts[0] if len(posts) == 1 else ""
        if not post or len(post) > _MAX_POST or not post.startswith(self.config.base_url):
            return self._error(400, "ask with ?post=<the post's ActivityPub id on this blog>")
        cached = self.cache.get(post)
        if cached is None or cached.until <= now:
            try:
                cached = await anyio.to_thread.run_sync(lambda: self._build(post, now))
            except StoreError as exc:
                log.warning("live comments: store unavailable: %s", exc)
                return self._error(503, "store unavailable; try again", {"Retry-After": "30"})
            self.cache[post] = cached
            self.cache.move_to_end(post)
            while len(self.cache) > self.settings.cached_posts:
                self.cache.popitem(last=False)
        if cached.status != 200:
            return Response(cached.body, cached.status, media_type="application/json",
                            headers=self._headers() | {"Cache-Control": "public, max-age=60"})
        headers = self._headers() | {
            "ETag": cached.etag, "Cache-Control": f"public, max-age={self.settings.max_age}"}
        given = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
        if cached.etag in given:
            return Response(status_code=304, headers=headers)
        return Response(cached.body, 200, media_type="application/json", headers=headers)

    async def preflight(self, request: Request) -> Response:
        # A plain GET needs none, but a browser extension or a future header may ask.
        return Response(status_code=204, headers=self._headers() | {
            "Access-Control-Allow-Methods": "GET", "Access-Control-Max-Age": "86400"})

    def routes(self) -> list[BaseRoute]:
        return [
            Route(LIVE_PATH, self.conversation, methods=["GET"]),
            Route(LIVE_PATH, self.preflight, methods=["OPTIONS"]),
        ]
