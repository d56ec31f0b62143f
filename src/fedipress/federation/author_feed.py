"""The author's private Atom feed: new replies, mentions, quotes and follows, for a feed reader.

    GET /.fedipress/api/v1/feed/<secret>.atom     the secret URL (`fedipress service feed-url`)
    GET /.fedipress/api/v1/feed.atom              the same with Authorization: Bearer TOKEN

Feed readers cannot send a bearer token, so the feed also has a URL of its own whose secret is
an HMAC-SHA256 of the owner token: knowing the URL reveals nothing of the token, the service
recomputes it at start (nothing to store), and a new owner token makes a new URL, the old one
answering 404 from then on. The secret is compared in constant time; an address that keeps
guessing gets 429; a refusal is logged with the address, never the path.

It is the author's own feed, so it lists what the page never shows: held replies (with why
they are held), followers-only replies and direct messages, each marked as such. Every remote
string is made safe first: names through plain_text, reply HTML through the reply allowlist
(activitypub/remote_html.py), URLs http(s) only. Entries have stable ids (a UUID derived from
the remote id), so a reader shows each once, and an edited reply again as updated.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import os
import re
import time
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..activitypub.remote_html import plain_text, safe_reply_html, safe_url
from ..config import SiteConfig
from ..errors import FedipressError, StoreError
from ..store import Follower, Interaction, Store
from .inbox import client_ip
from .ratelimit import RateLimiter

__all__ = [
    "ATOM_TYPE",
    "FEED_ENTRIES",
    "AuthorFeed",
    "FeedEntry",
    "SecretPathFilter",
    "atom_document",
    "feed_entries",
    "feed_path",
    "feed_secret",
    "feed_url",
    "html_to_text",
    "service_feed_url",
]

log = logging.getLogger("fedipress.inbox")

PREFIX = "/.fedipress/api/v1"  # owner_api.PREFIX (not imported: owner_api imports this module)
FEED_PATH = PREFIX + "/feed/"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
FEED_ENTRIES = 100  # the newest this many replies, mentions, quotes and follows
_SCANNED = 2000  # recent interactions read to find them (likes and boosts are skipped)
_TEXT_CHARS = 2000  # of a reply's plain text in <summary>
_ATOM = "http://www.w3.org/2005/Atom"
_SECRET_LABEL = b"fedipress author feed v1"
_KINDS = ("reply", "mention", "quote")
_AUDIENCE = {"followers": "followers only", "direct": "direct message"}
Handler = Callable[[Request], Awaitable[Response]]


def feed_secret(token: str) -> str:
    """The feed URL's secret: HMAC-SHA256 of a fixed label under the owner token, in hex."""
    return hmac.new(token.encode("utf-8"), _SECRET_LABEL, hashlib.sha256).hexdigest()


def feed_path(token: str) -> str:
    return f"{FEED_PATH}{feed_secret(token)}.atom"


def feed_url(service_url: str, token: str) -> str:
    """The secret URL under the service's address (the blog's, or the service's own)."""
    return service_url.rstrip("/") + feed_path(token)


def html_to_text(value: str, limit: int = _TEXT_CHARS) -> str:
    """Safe reply HTML as readable plain text: paragraphs and line breaks kept as lines."""
    marked = re.sub(r"(?i)<br\s*/?>", "\n", value)
    marked = re.sub(r"(?i)</p\s*>", "\n\n", marked)
    text = html.unescape(re.sub(r"<[^>]*>", "", marked))
    text = "".join(c for c in text
                   if c == "\n" or unicodedata.category(c) not in ("Cc", "Cf"))
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class FeedEntry:
    """One entry, already safe: `title` and `text` plain, `html` through the allowlist or
    built from escaped parts."""

    id: str
    title: str
    updated: datetime
    published: datetime
    text: str
    html: str
    author_name: str
    author_uri: str | None
    original: str | None  # the remote post or profile
    post: str | None  # the blog's page it concerns


def _entry_id(kind: str, remote_id: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{kind} {remote_id}").urn


def _page(object_id: str, config: SiteConfig) -> str | None:
    """The blog page an interaction is about, when it is one of the blog's posts."""
    if object_id.startswith(config.base_url) and object_id.endswith("/object.json"):
        return object_id.removesuffix("object.json")
    return None


def _who(name: str | None, handle: str | None, actor_id: str) -> tuple[str, str]:
    """(display name, "name (@handle)") as plain text."""
    shown = plain_text(name or "")
    at = plain_text(handle or "").lstrip("@")
    full = f"{shown} (@{at})" if shown and at else (shown or (f"@{at}" if at else
                                                              plain_text(actor_id, 300)))
    return shown or (f"@{at}" if at else plain_text(actor_id, 300)), full


def _link(href: str, label: str) -> str:
    return f'<a href="{html.escape(href)}" rel="nofollow noopener ugc">{html.escape(label)}</a>'


def _interaction_entry(i: Interaction, config: SiteConfig) -> FeedEntry:
    name, who = _who(i.author_name, i.author_handle, i.actor_id)
    post = _page(i.object_id, config)
    original = safe_url(i.url) or safe_url(i.reply_object_id) or safe_url(i.activity_id)
    where = post.removeprefix(config.base_url) or "the home page" if post else ""
    marks: list[str] = []
    if i.visibility in _AUDIENCE:
        marks.append(_AUDIENCE[i.visibility])
    if not i.approved:
        marks.append("held" + (f": {plain_text(i.held_reason)}" if i.held_reason else ""))
    if i.kind == "reply":
        title = f"Reply from {who}" + (f" on {where}" if where else "")
    elif i.kind == "quote":
        title = f"{who} quoted " + (where or "a post")
    else:
        title = f"{who} mentioned you"
    if i.updated is not None:
        title += " (edited)"
    if marks:
        title = f"[{'; '.join(marks)}] {title}"
    body = safe_reply_html(i.content_html or i.content_safe_html or "")
    parts: list[str] = []
    if marks:
        parts.append(f"<p><strong>{html.escape('; '.join(marks).capitalize())}</strong>"
                     + (" — see <code>fedipress comments</code>" if not i.approved else "")
                     + "</p>")
    parts.append(body)
    footer = [x for x in (_link(post, "your post") if post else "",
                          _link(original, "the original") if original else "") if x]
    if footer:
        parts.append("<p>" + " · ".join(footer) + "</p>")
    text = html_to_text(body)
    if marks:
        text = f"[{'; '.join(marks)}]\n\n{text}".strip()
    return FeedEntry(
        id=_entry_id(i.kind, i.reply_object_id or i.activity_id),
        title=title,
        updated=i.updated or i.received_at,
        published=i.published,
        text=text,
        html="".join(parts),
        author_name=name,
        author_uri=safe_url(i.author_profile_url) or safe_url(i.actor_id),
        original=original,
        post=post,
    )


def _follow_entry(f: Follower) -> FeedEntry:
    name, who = _who(f.name, f.handle, f.actor_id)
    profile = safe_url(f.actor_id)
    if f.state == "pending":
        title = f"{who} asks to follow you"
        note = ("Waiting for you: <code>fedipress followers approve</code> or"
                " <code>fedipress followers reject</code>.")
    else:
        title = f"{who} follows you"
        note = ""
    body = "<p>" + html.escape(who) + (" · " + _link(profile, "profile") if profile else "") \
        + "</p>" + (f"<p>{note}</p>" if note else "")
    return FeedEntry(
        id=_entry_id("follow", f.follow_activity_id or f"{f.actor_id} {f.followed_at.isoformat()}"),
        title=title,
        updated=f.followed_at,
        published=f.followed_at,
        text=html_to_text(body),
        html=body,
        author_name=name,
        author_uri=profile,
        original=profile,
        post=None,
    )


def feed_entries(store: Store, config: SiteConfig, limit: int = FEED_ENTRIES) -> list[FeedEntry]:
    """The newest replies, mentions, quotes and follows, newest first."""
    entries = [_interaction_entry(i, config) for i in store.recent_interactions(_SCANNED)
               if i.kind in _KINDS]
    followers = sorted(store.iter_followers(state=None), key=lambda f: f.followed_at,
                       reverse=True)[:limit]
    entries += [_follow_entry(f) for f in followers]
    entries.sort(key=lambda e: (e.updated, e.id), reverse=True)
    return entries[:limit]


# Characters XML 1.0 cannot carry at all, escaped or not: one in a remote reply would make the
# whole feed unreadable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_chars(value: str) -> str:
    return _NOT_XML.sub("", value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom_document(config: SiteConfig, entries: list[FeedEntry], now: datetime) -> bytes:
    """The Atom feed (RFC 4287). No self link: the feed's own URL is the secret."""
    ET.register_namespace("", _ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{_ATOM}}}{tag}",
                           {k: _xml_chars(v) for k, v in attrs.items()})
        if text is not None:
            el.text = _xml_chars(text)
        return el

    feed = ET.Element(f"{{{_ATOM}}}feed")
    sub(feed, "id", uuid.uuid5(uuid.NAMESPACE_URL, config.base_url + "#author-feed").urn)
    sub(feed, "title", f"{config.title}: replies, mentions, quotes and follows")
    sub(feed, "subtitle", "Private to the blog's author: do not share this feed's address.")
    sub(feed, "updated", _iso(max((e.updated for e in entries), default=now)))
    sub(feed, "link", rel="alternate", href=config.base_url)
    author = sub(feed, "author")
    sub(author, "name", config.fediverse.display_name or config.author.name)
    sub(feed, "generator", "fedipress")
    for e in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", e.id)
        sub(entry, "title", e.title, type="text")
        sub(entry, "updated", _iso(e.updated))
        sub(entry, "published", _iso(e.published))
        who = sub(entry, "author")
        sub(who, "name", e.author_name or "someone")
        if e.author_uri:
            sub(who, "uri", e.author_uri)
        if e.original:
            sub(entry, "link", rel="alternate", type="text/html", href=e.original)
        if e.post:
            sub(entry, "link", rel="related", type="text/html", href=e.post)
        sub(entry, "summary", e.text, type="text")
        sub(entry, "content", e.html, type="html")
    text: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + text


class AuthorFeed:
    """The feed's routes: the secret URL (public, checked here) and the bearer one (checked
    by the owner API's guard)."""

    def __init__(self, config: SiteConfig, store: Store, token: str, *,
                 clock: Callable[[], datetime], monotonic: Callable[[], float] = time.monotonic,
                 failures_per_minute: float = 6.0, failure_burst: int = 10) -> None:
        self.config = config
        self.store = store
        self._secret = feed_secret(token).encode("ascii")
        self.clock = clock
        self.monotonic = monotonic
        self.failures = RateLimiter(per_minute=failures_per_minute, burst=failure_burst)
        self.blocked_until: dict[str, float] = {}

    async def _answer(self, request: Request) -> Response:
        def build() -> bytes:
            return atom_document(self.config, feed_entries(self.store, self.config),
                                 self.clock())
        try:
            body: bytes = await anyio.to_thread.run_sync(build)
        except StoreError as exc:
            log.warning("author feed: store unavailable: %s", exc)
            return JSONResponse({"error": "store unavailable; try again"}, 503,
                                {"Retry-After": "60"})
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache",
                   "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
        if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(body, 200, media_type=ATOM_TYPE, headers=headers)

    async def by_secret(self, request: Request) -> Response:
        ip = client_ip(request.scope)
        now = self.monotonic()
        until = self.blocked_until.get(ip)
        if until is not None and until > now:
            return JSONResponse({"error": "too many failed attempts; wait and try again"}, 429,
                                {"Retry-After": str(int(until - now) + 1)})
        given = str(request.path_params.get("secret", "")).encode("utf-8", "surrogateescape")
        if hmac.compare_digest(given, self._secret):
            return await self._answer(request)
        # The path is the secret (or a guess at it): the log names the address only.
        log.warning("author feed: refused a feed URL from %s: wrong secret", ip)
        wait = self.failures.hit(ip, now)
        if wait is not None:
            if len(self.blocked_until) > 10_000:
                self.blocked_until = {k: v for k, v in self.blocked_until.items() if v > now}
            self.blocked_until[ip] = now + wait
            return JSONResponse({"error": "too many failed attempts; wait and try again"}, 429,
                                {"Retry-After": str(int(wait) + 1)})
        return JSONResponse({"error": "no such feed; `fedipress service feed-url` prints the"
                                      " current address"}, 404)

    def routes(self, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
        """`guard` wraps the bearer route in the owner API's token check."""
        return [
            Route(FEED_PATH + "{secret}.atom", self.by_secret, methods=["GET"]),
            Route(PREFIX + "/feed.atom", guard(self._answer), methods=["GET"]),
        ]


def service_feed_url(config: SiteConfig, service: str | None, token: str | None,
                     environ: Mapping[str, str] = os.environ) -> str:
    """`fedipress service feed-url`: the secret URL, from the owner token as the service
    reads it (owner_api.load_owner_token: FEDIPRESS_SERVICE_TOKEN, else service.token_file)."""
    if token is None:
        raise FedipressError(
            "no owner token: set FEDIPRESS_SERVICE_TOKEN or service.token_file to the token the"
            " service runs with (`fedipress service token` makes one); the feed URL is derived"
            " from it")
    where = (service or environ.get("FEDIPRESS_SERVICE_URL", "")).strip() or config.base_url
    parts = urlsplit(where)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FedipressError(f"--service {where[:200]}: expected the service's address, such"
                             " as https://blog.example/")
    return feed_url(where, token)


class SecretPathFilter(logging.Filter):
    """uvicorn's access log (`fedipress inbox --access-log`) with the feed's secret replaced:
    whoever reads the log must not be able to read the author's feed."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) \
                and args[2].startswith(FEED_PATH):
            record.args = (*args[:2], FEED_PATH + "<secret>.atom", *args[3:])
        return True
