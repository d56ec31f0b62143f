"""WebFinger, host-meta and NodeInfo documents, acct: parsing, and the WebFinger answer. Pure.

A static blog has exactly one account, so there is one WebFinger document. Its `subject` is the
canonical handle (on the handle domain) and its `self` link is the actor id byte for byte:
Mastodon checks both, on the handle domain and on the actor's host. `webfinger_answer` decides,
per RFC 7033, which query gets that document (the blog's own account only) and which gets 400 or
404; `fedipress serve` and `fedipress inbox --site` both answer through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .. import __version__
from ..config import SiteConfig

__all__ = [
    "NODEINFO_REL",
    "WebfingerAnswer",
    "host_meta",
    "is_own_resource",
    "nodeinfo_discovery",
    "nodeinfo_document",
    "parse_acct",
    "webfinger_answer",
    "webfinger_document",
]

NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
ACTIVITY_JSON = "application/activity+json"
JRD_JSON = "application/jrd+json"

_ACCT_RE = re.compile(r"^@?([^@/\s]+)@([^@/\s]+)$")
# Profile URL shapes people paste: /@user, /users/user, /u/user
_PROFILE_PATH_RE = re.compile(r"^/(?:@|users/|u/)([^/@]+)/?$")


def _actor_id(config: SiteConfig) -> str:
    return config.url("actor.json")


def webfinger_document(config: SiteConfig) -> dict[str, Any]:
    """The JRD for the blog's account; the same bytes are right on every host that serves it."""
    actor = _actor_id(config)
    return {
        "subject": f"acct:{config.handle}",
        "aliases": [actor, config.base_url],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor},
            {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": config.base_url},
        ],
    }


def host_meta(config: SiteConfig) -> str:
    """XRD pointing at our WebFinger (Mastodon reads it only when WebFinger answers 404)."""
    template = config.url(".well-known/webfinger") + "?resource={uri}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="application/jrd+json" template="{escape(template)}"/>\n'
        "</XRD>\n"
    )


def nodeinfo_discovery(config: SiteConfig) -> dict[str, Any]:
    return {"links": [{"rel": NODEINFO_REL, "href": config.url("nodeinfo/2.1")}]}


def nodeinfo_document(
    config: SiteConfig, *, local_posts: int, software_version: str = __version__
) -> dict[str, Any]:
    """NodeInfo 2.1: one user, no sign-ups, `local_posts` federated posts."""
    return {
        "version": "2.1",
        "software": {"name": "fedipress", "version": software_version},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {"users": {"total": 1}, "localPosts": local_posts},
        "metadata": {"nodeName": config.title},
    }


def parse_acct(resource: str) -> tuple[str, str]:
    """(user, domain) from "acct:a@b", "a@b", "@a@b" or an https actor/profile URL.

    For a URL the domain is its host[:port] and the user comes from a /@user, /users/user or
    /u/user path; any other URL path (e.g. /actor.json) gives user "". Raises ValueError for
    anything else. Domains are lower-cased; users keep their case (compare case-insensitively).
    """
    value = unquote(resource.strip())
    if value.lower().startswith(("https://", "http://")):
        parts = urlsplit(value)
        if not parts.netloc:
            raise ValueError(f"not an account: {resource!r}")
        match = _PROFILE_PATH_RE.match(parts.path)
        return (match.group(1) if match else "", parts.netloc.lower())
    if value.lower().startswith("acct:"):
        value = value[5:]
    match = _ACCT_RE.match(value)
    if not match:
        raise ValueError(f"not an account: {resource!r}")
    return match.group(1), match.group(2).lower()


# RFC 3986: a scheme, then only URI characters (unreserved, reserved, %XX escapes).
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:"
                     r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


def _same_url(a: str, b: str) -> bool:
    """URL equality with only the scheme and host compared case-insensitively (RFC 3986
    6.2.2.1); the rest byte for byte, so `actor.json?` is not `actor.json`."""
    def norm(url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep:
            return url
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}{slash}{path}"

    return norm(a) == norm(b)


def _own_resource(config: SiteConfig, resource: str) -> bool | None:
    """True for the blog's account, False for a well-formed URI naming anything else, None for
    a malformed one. `resource` is the query value, already percent-decoded once."""
    if not resource or _URI_RE.fullmatch(resource) is None:
        return None
    scheme, _, rest = resource.partition(":")
    scheme = scheme.lower()
    if scheme == "acct":
        # RFC 7565: acct:userpart@host, one '@' (the userpart may hold a percent-encoded one).
        user, at, host = rest.partition("@")
        if not at or not user or not host or "@" in host:
            return None
        domains = {config.fediverse.handle_domain.lower(), config.host.lower()}
        return (unquote(user).lower() == config.fediverse.username.lower()
                and host.lower() in domains)
    if scheme in ("http", "https"):
        # Mastodon answers for its own actor and profile URLs; the blog's are these.
        own = (_actor_id(config), config.base_url, config.base_url.rstrip("/"))
        return any(_same_url(resource, url) for url in own)
    return False  # mailto:, tel:, ... are URIs, just not an account here


def is_own_resource(config: SiteConfig, resource: str) -> bool:
    """True when `resource` (an RFC 7033 resource URI, decoded once) names the blog's account:
    acct:USER@HOST on the handle domain or the site host (host case-insensitive), the actor id
    or the home page."""
    return _own_resource(config, resource.strip()) is True


@dataclass(frozen=True)
class WebfingerAnswer:
    """What to send for one WebFinger request: the JRD (200) or a plain-text refusal."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=lambda: {
        "Access-Control-Allow-Origin": "*"})


def _refuse(status: int, reason: str) -> WebfingerAnswer:
    phrase = {400: "Bad Request", 404: "Not Found"}[status]
    return WebfingerAnswer(status, "text/plain; charset=utf-8",
                           f"{status} {phrase}: {reason}\n".encode())


def _not_utf8(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def webfinger_answer(config: SiteConfig, query: str, built: bytes | None = None
                     ) -> WebfingerAnswer:
    """The answer to GET /.well-known/webfinger?`query` (the raw query string), per RFC 7033.

    - no `resource`, an empty one, more than one, or one that is not a URI
      (`you@host`, `=acct:...`): 400;
    - a URI that is not the blog's account (another user, another host, mailto:): 404;
    - the blog's account (`acct:USER@HOST`, the actor URL, the blog URL): 200 with the JRD,
      `built` (the bytes of public/.well-known/webfinger, sent as they are, as a static host
      would) or else the config's; its links limited to the `rel=` values when any are given
      (RFC 7033 4.3: subject and aliases stay; a JRD that is not a JSON object is sent whole).
    Every answer carries Access-Control-Allow-Origin: * (RFC 7033 5)."""
    try:
        # surrogateescape: a parameter this answer does not read may hold any bytes, as it may
        # for a static host's rules; only `resource` and `rel` must be UTF-8 (checked below).
        pairs = parse_qsl(
            query, keep_blank_values=True, errors="surrogateescape", max_num_fields=100
        )
    except ValueError:
        return _refuse(400, "the query string has too many parameters")
    if any(_not_utf8(value) for key, value in pairs if key in ("resource", "rel")):
        return _refuse(400, "the resource and rel parameters are not valid UTF-8")
    resources = [value for key, value in pairs if key == "resource"]
    example = f"?resource=acct:{config.fediverse.username}@{config.fediverse.handle_domain}"
    if not resources:
        return _refuse(400, f"the resource parameter is required, e.g. {example}")
    if len(resources) > 1:
        return _refuse(400, "give the resource parameter once, not more")
    resource = resources[0]
    if not resource:
        return _refuse(400, f"the resource parameter is empty; use e.g. {example}")
    own = _own_resource(config, resource)
    if own is None:
        return _refuse(400, f"resource {resource!r} is not a URI; use e.g. {example}")
    if not own:
        return _refuse(404, f"no account {resource!r} here; this blog is "
                            f"acct:{config.handle}")
    body = built if built is not None else _json_bytes(webfinger_document(config))
    rels = [value for key, value in pairs if key == "rel"]
    if rels:
        try:
            jrd = json.loads(body)
        except ValueError:
            jrd = None
        if isinstance(jrd, dict):
            links = jrd.get("links")
            jrd["links"] = [link for link in links if isinstance(link, Mapping)
                            and link.get("rel") in rels] if isinstance(links, list) else []
            body = _json_bytes(jrd)
    return WebfingerAnswer(200, JRD_JSON, body)


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
