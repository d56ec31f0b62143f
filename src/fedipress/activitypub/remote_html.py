"""What a remote server wrote, made safe to put on a page: reply HTML, names and URLs.

Remote strings are hostile until shown otherwise. Reply HTML keeps only a strict allowlist
modelled on what Mastodon keeps (paragraphs, line breaks, http(s) links, mention and hashtag
spans); names and handles are reduced to capped plain text; URLs must be absolute http(s)
(avatars https only). Templates escape on output as well: this is the first wall, not the only one.

Pure: strings in, strings out.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

import nh3

__all__ = ["MAX_CONTENT", "MAX_NAME", "MAX_URL", "plain_text", "safe_reply_html", "safe_url"]

MAX_NAME = 200  # characters kept of a remote name or handle
MAX_URL = 2048
MAX_CONTENT = 100_000  # characters kept of a reply's HTML

_TAGS = {"p", "br", "a", "span"}


def safe_reply_html(html: str) -> str:
    """Remote reply HTML through the allowlist: p, br, a (http/https href), span."""
    return nh3.clean(
        html[:MAX_CONTENT],
        tags=_TAGS,
        attributes={"a": {"href"}},  # nh3 sets rel itself (link_rel)
        url_schemes={"http", "https"},
        link_rel="nofollow noopener ugc",
    )


def plain_text(value: object, limit: int = MAX_NAME) -> str:
    """A remote name or handle as plain text: no tags, no control or format characters, capped."""
    if not isinstance(value, str):
        return ""
    text = nh3.clean(value, tags=set())  # drops tags, keeps text (entity-escaped)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    text = text.replace("&#39;", "'").replace("&amp;", "&")
    kept = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    return " ".join(kept.split())[:limit]


def safe_url(value: object, *, https_only: bool = False) -> str | None:
    """`value` if it is an absolute http(s) URL (https only when asked), else None."""
    if not isinstance(value, str) or len(value) > MAX_URL:
        return None
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme.lower() not in allowed or not parts.hostname:
        return None
    return value
