""""Reply, like or boost from your server" without JavaScript: a redirect to the reader's server.

    GET /.fedipress/interact?server=SERVER_OR_HANDLE&uri=POST_OBJECT_URL[&intent=reply|like|boost]

A static page cannot send a form to a host the reader types, so the post page's form is sent
here, to the inbox service (on the blog's host, proxied by `fedipress hosting`, or on the
service's own host for a blog on a static host: `FediverseConfig.interact_url`). The answer is
a 303 to `https://SERVER/authorize_interaction?uri=POST_OBJECT_URL`, the page Mastodon,
GoToSocial and others answer with the post and its buttons. Nothing is fetched from the
reader's server: FEP-3b86 intents stay the page script's enhancement (partials/scripts.html).

Public, so it must not become an open redirect nor a way to point browsers at private
networks: `uri` must be one of this blog's addresses (it starts with base_url), `server` a
host name (or a handle or https address reduced to its host), never an IP literal outside the
public internet unless the service runs with --allow-private-addresses (tests on loopback).
Anything else is a plain 400 page saying what to type; each address is rate-limited.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import SiteConfig
from ..config.settings import INTERACT_PATH
from .inbox import client_ip
from .netguard import is_public_address
from .ratelimit import RateLimiter

__all__ = ["INTERACT_PATH", "INTENTS", "Interact", "server_host"]

log = logging.getLogger("fedipress.inbox")

# The form's buttons; the redirect is the same for all three (authorize_interaction has no
# intent), the value only has to be one of these.
INTENTS = ("reply", "like", "boost")
_MAX_URI = 2048
_MAX_SERVER = 300
_HANDLE = re.compile(r"@?([^@/\s:]+)@([^@/\s]+)")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HINT = ("Type the address of your server, like mastodon.social, or your handle, like"
         " @you@mastodon.social.")


def _valid_name(name: str) -> bool:
    labels = name.split(".")
    # At least two labels: "localhost" and other one-word names are nobody's home server.
    return len(labels) >= 2 and len(name) <= 253 and all(_LABEL.fullmatch(x) for x in labels)


def server_host(text: str, *, allow_private: bool) -> str | None:
    """host[:port] of the reader's server from what they typed ("mastodon.social",
    "@me@mastodon.social", "https://mastodon.social/@me"), or None when it is none."""
    text = text.strip()
    if not text or len(text) > _MAX_SERVER:
        return None
    text = re.sub(r"^acct:", "", text, flags=re.IGNORECASE)
    handle = _HANDLE.fullmatch(text)
    if handle:
        hostport = handle.group(2)
    elif _SCHEME.match(text):
        parts = urlsplit(text)
        if parts.scheme.lower() not in ("https", "http") or "@" in parts.netloc:
            return None
        hostport = parts.netloc
    else:
        hostport = text.split("/", 1)[0]
    host, colon, port = hostport.lower().rstrip(".").partition(":")
    if colon and not (port.isdigit() and 1 <= int(port) <= 65535 and port[0] != "0"):
        return None
    host = host.rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        # An IP literal: only a public one, unless testing on one machine.
        if not allow_private and not is_public_address(ip):
            return None
    else:
        try:
            host = host.encode("idna").decode("ascii")  # a name in another script
        except UnicodeError:
            return None
        if not _valid_name(host):
            return None
    return host + (f":{port}" if colon else "")


@dataclass(frozen=True)
class InteractSettings:
    per_minute: float = 30.0  # redirects one address may ask for, refilled
    burst: int = 20


class Interact:
    def __init__(self, config: SiteConfig, *, allow_private: bool = False,
                 monotonic: Callable[[], float] = time.monotonic,
                 settings: InteractSettings = InteractSettings()) -> None:
        self.config = config
        self.allow_private = allow_private
        self.monotonic = monotonic
        self.limiter = RateLimiter(per_minute=settings.per_minute, burst=settings.burst)

    def _page(self, status: int, message: str, uri: str | None,
              extra: dict[str, str] | None = None) -> Response:
        """A plain page: what went wrong, and the form again when the post is known."""
        base = html.escape(self.config.base_url)
        again = ""
        if uri is not None:
            again = (f'<form method="get" action="{INTERACT_PATH}">'
                     '<label for="server">Your server or handle</label> '
                     '<input id="server" name="server" type="text" required'
                     ' placeholder="mastodon.social">'
                     f'<input type="hidden" name="uri" value="{html.escape(uri)}">'
                     ' <button type="submit">Go</button></form>')
        body = ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width\">"
                "<title>Reply from your server</title>"
                f"<p>{html.escape(message)}</p>{again}"
                f'<p><a href="{base}">Back to the blog</a></p></html>\n')
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": "default-src 'none'; form-action 'self' https:",
                   "Referrer-Policy": "no-referrer"} | (extra or {})
        return HTMLResponse(body, status, headers=headers)

    async def redirect(self, request: Request) -> Response:
        ip = client_ip(request.scope)
        wait = self.limiter.hit(ip, self.monotonic())
        if wait is not None:
            log.info("interact: %s is asking too often; answered 429", ip)
            return self._page(429, "Too many requests from your address; wait a minute and"
                              " try again.", None, {"Retry-After": str(int(wait) + 1)})
        params = request.query_params
        uris, servers = params.getlist("uri"), params.getlist("server")
        uri = uris[0] if len(uris) == 1 else ""
        if (not uri or len(uri) > _MAX_URI or not uri.startswith(self.config.base_url)
                or any(c.isspace() or ord(c) < 32 for c in uri)):
            # Never a redirect for an address that is not the blog's: no open redirect.
            log.info("interact: refused uri %r from %s: not an address of this blog",
                     uri[:200], ip)
            return self._page(400, "This link only opens posts of "
                              f"{self.config.base_url}. Go back to the post and use its"
                              " \"Reply from your server\" box.", None)
        intents = params.getlist("intent")
        if len(intents) > 1 or (intents and intents[0] not in INTENTS):
            log.info("interact: refused intent %r from %s", intents[:2], ip)
            return self._page(400, "Choose Reply, Like or Boost.", uri)
        server = servers[0] if len(servers) == 1 else ""
        host = server_host(server, allow_private=self.allow_private)
        if host is None:
            log.info("interact: refused server %r from %s", server[:200], ip)
            return self._page(400, _HINT, uri)
        target = f"https://{host}/authorize_interaction?uri={quote(uri, safe='')}"
        return RedirectResponse(target, 303, headers={"Cache-Control": "no-store",
                                                      "Referrer-Policy": "no-referrer"})

    def routes(self) -> list[BaseRoute]:
        return [Route(INTERACT_PATH, self.redirect, methods=["GET"])]
