"""WebFinger, host-meta and NodeInfo documents, and acct: parsing. Pure.

A static blog has exactly one account, so one WebFinger document answers every `resource=`
query. Its `subject` is the canonical handle (on the handle domain) and its `self` link is the
actor id byte for byte: Mastodon checks both, on the handle domain and on the actor's host.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..config import SiteConfig

__all__ = [
    "NODEINFO_REL",
    "host_meta",
    "is_own_resource",
    "nodeinfo_discovery",
    "nodeinfo_document",
    "parse_acct",
    "webfinger_document",
]

NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
ACTIVITY_JSON = "application/activity+json"

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


def is_own_resource(config: SiteConfig, resource: str) -> bool:
    """True when `resource` names the blog's account (on the handle domain or the site host),
    or is the actor id or the home page. The dev server answers WebFinger only for these."""
    value = unquote(resource.strip())
    if value in (_actor_id(config), config.base_url, config.base_url.rstrip("/")):
        return True
    try:
        user, domain = parse_acct(value)
    except ValueError:
        return False
    if value.lower().startswith(("https://", "http://")):
        return False  # only the exact URLs above are ours
    domains = {config.fediverse.handle_domain.lower(), config.host.lower()}
    return user.lower() == config.fediverse.username.lower() and domain in domains
