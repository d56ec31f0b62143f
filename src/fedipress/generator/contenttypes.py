"""Which Content-Type (and CORS header) each file of a built site must be served with.

One table for everything that serves public/: the dev server, the inbox's static serving,
and the host configuration files (hosting.py). ActivityPub documents must be served as
`application/activity+json`: Mastodon discards `application/json`, which is what most static
hosts send for `.json`. Pure: paths in, strings out.
"""

from __future__ import annotations

import re
from posixpath import basename

__all__ = [
    "ACTIVITY_JSON",
    "AP_FILENAMES",
    "CORS_PATHS",
    "JRD_JSON",
    "NODEINFO_JSON",
    "XRD_XML",
    "content_type_for",
    "is_activitypub_path",
    "needs_cors",
]

ACTIVITY_JSON = "application/activity+json"
JRD_JSON = "application/jrd+json"
XRD_XML = "application/xrd+xml"
NODEINFO_JSON = "application/json"  # what NodeInfo clients expect (reference notes §8)

# Files with these names anywhere in the tree are ActivityPub documents.
AP_FILENAMES = frozenset({"object.json", "replies.json", "likes.json", "shares.json",
                          "context.json"})
# ... and these only at the site root.
_AP_ROOT_FILES = frozenset(
    {"actor.json", "outbox.json", "followers.json", "following.json", "featured.json"}
)
_OUTBOX_PAGE_RE = re.compile(r"^outbox/page-\d+\.json$")
# A post's replies and conversation pages after the first (activitypub/documents/threads.py).
_THREAD_PAGE_RE = re.compile(r"(?:^|/)(?:replies|context)/page-\d+\.json$")
# A tag's own feeds (feeds.py), served as the site-wide ones are.
_TAG_FEED_RE = re.compile(r"^tags/[^/]+/(feed\.xml|rss\.xml)$")

# Read cross-origin by browser-based clients and "follow me" widgets.
CORS_PATHS = (".well-known/webfinger", ".well-known/host-meta", ".well-known/nodeinfo",
              "nodeinfo/2.1")

_SPECIAL = {
    ".well-known/webfinger": JRD_JSON,
    ".well-known/host-meta": XRD_XML,
    ".well-known/nodeinfo": NODEINFO_JSON,
    "nodeinfo/2.1": NODEINFO_JSON,
    "feed.xml": "application/atom+xml; charset=utf-8",
    "rss.xml": "application/rss+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}

_BY_EXTENSION = {
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "pem": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/x-icon",
    "bmp": "image/bmp",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "wasm": "application/wasm",
    "map": "application/json",
    "webmanifest": "application/manifest+json",
}
_DEFAULT = "application/octet-stream"


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0].lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path


def is_activitypub_path(path: str) -> bool:
    """True for files that must be served as application/activity+json."""
    p = _normalise(path)
    return (p in _AP_ROOT_FILES or bool(_OUTBOX_PAGE_RE.match(p)) or basename(p) in AP_FILENAMES
            or bool(_THREAD_PAGE_RE.search(p)))


def content_type_for(path: str) -> str:
    """Content-Type for a site-relative path ("posts/x/object.json", "/", "/.well-known/…")."""
    p = _normalise(path)
    if p in _SPECIAL:
        return _SPECIAL[p]
    tag_feed = _TAG_FEED_RE.match(p)
    if tag_feed is not None:
        return _SPECIAL[tag_feed.group(1)]
    if is_activitypub_path(p):
        return ACTIVITY_JSON
    name = basename(p)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _BY_EXTENSION.get(ext, _DEFAULT)


def needs_cors(path: str) -> bool:
    """True when the response should carry `Access-Control-Allow-Origin: *`."""
    return _normalise(path) in CORS_PATHS
