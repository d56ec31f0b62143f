"""The blog's actor (a Person at actor.json): profile, fields, images and public key.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import urlsplit

import markdown

from ...model import Site
from ..reduce import reduce_html
from .context import with_context
from .ids import actor_id, iso
from .objects import _image_doc

__all__ = ["actor_document"]


def _bio_html(bio: str, base_url: str) -> str:
    if not bio.strip():
        return ""
    rendered = markdown.markdown(bio, output_format="html")
    return reduce_html(rendered, base_url=base_url).html


def _field_value(value: str) -> str:
    """Profile field value as HTML: URLs become rel="me" links (Mastodon verifies those)."""
    v = value.strip()
    if re.match(r"^https?://\S+$", v):
        shown = re.sub(r"^https?://", "", v).rstrip("/")
        return (
            f'<a href="{escape(v)}" rel="me nofollow noopener" target="_blank">'
            f"{escape(shown)}</a>"
        )
    return escape(v)


def actor_document(site: Site, public_key_pem: str | bytes) -> dict[str, Any]:
    """The blog's Person, served at actor.json (its `id`)."""
    config = site.config
    fed = config.fediverse
    aid = actor_id(site)
    pem = public_key_pem.decode("ascii") if isinstance(public_key_pem, bytes) else public_key_pem
    doc: dict[str, Any] = {
        "id": aid,
        "type": "Person",
        "preferredUsername": fed.username,
        "name": fed.display_name,
        "summary": _bio_html(fed.bio, config.base_url),
        "url": config.base_url,
    }
    avatar = fed.avatar or config.author.avatar
    if avatar:
        doc["icon"] = _image_doc(config.url(avatar) if "://" not in avatar else avatar)
    if fed.header:
        doc["image"] = _image_doc(fed.header)
    doc.update(
        {
            "inbox": fed.inbox_url,
            "outbox": config.url("outbox.json"),
            "followers": config.url("followers.json"),
            "following": config.url("following.json"),
            "featured": config.url("featured.json"),
            "endpoints": {"sharedInbox": fed.shared_inbox_url},
            "publicKey": {"id": aid + "#main-key", "owner": aid, "publicKeyPem": pem},
            "manuallyApprovesFollowers": fed.manually_approves_followers,
            "discoverable": fed.discoverable,
            "indexable": fed.indexable,
        }
    )
    published = fed.published
    if published is None and site.posts:
        published = iso(min(p.date for p in site.posts))
    if published is not None:
        doc["published"] = published
    fields: list[tuple[str, str]] = [(f.name, f.value) for f in fed.fields]
    if not fields:
        fields = [(link.name, link.url) for link in config.author.links]
    if fields:
        doc["attachment"] = [
            {"type": "PropertyValue", "name": name, "value": _field_value(value)}
            for name, value in fields
        ]
    if fed.also_known_as:
        doc["alsoKnownAs"] = list(fed.also_known_as)
    doc["webfinger"] = config.handle
    doc["attributionDomains"] = [urlsplit(config.base_url).hostname or config.host]
    return with_context(doc)
