"""What a remote server wrote, made safe to put on a page: reply HTML, names, handles and URLs.

Remote strings are hostile until shown otherwise. Reply HTML keeps only a strict allowlist
modelled on what Mastodon keeps: `p`, `br`, `a` (an absolute http(s) `href`, nothing else; every
link gets `rel="nofollow noopener ugc"` and no `target`) and `span` (only the classes Mastodon
uses to shorten links and mark mentions). Any other element is reduced to its text, except
`script` and `style`, whose content is dropped with them; comments are dropped. Names are
reduced to capped plain text without control, format or bidirectional-override characters (the
page templates isolate them with `<bdi>` as well); a handle must look like `user@host` or is
left out; URLs must be absolute http(s) without credentials (avatars https only). Custom emoji
shortcodes (`:blobcat:`) stay as text: their images would be remote requests from the reader's
browser. Templates escape on output as well: this is the first wall, not the only one.

Lone UTF-16 surrogates (which JSON can carry, "\\ud800") cannot be written as UTF-8 and are
replaced here, so no remote string can crash a build or the store.

Pure: strings in, strings out.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

import nh3

__all__ = [
    "MAX_CONTENT",
    "MAX_DISPLAY_NAME",
    "MAX_HANDLE",
    "MAX_NAME",
    "MAX_URL",
    "REPLY_CLASSES",
    "REPLY_LINK_REL",
    "plain_text",
    "safe_handle",
    "safe_name",
    "safe_reply_html",
    "safe_url",
    "terminal_safe",
]

MAX_NAME = 200  # characters kept of a remote plain-text string by default
MAX_DISPLAY_NAME = 100  # characters of a display name shown on a page
MAX_HANDLE = 254  # "user@host": a host name is at most 253 characters
MAX_URL = 2048
MAX_CONTENT = 100_000  # characters kept of a reply's HTML

REPLY_LINK_REL = "nofollow noopener ugc"
# The span classes Mastodon puts in a post: link shortening (invisible, ellipsis) and mentions.
REPLY_CLASSES = frozenset({"mention", "hashtag", "h-card", "u-url", "invisible", "ellipsis"})
_TAGS = {"p", "br", "a", "span"}
_DROPPED_WITH_CONTENT = {"script", "style"}

_SURROGATES = re.compile("[\ud800-\udfff]")
# Joiners are format characters too, but emoji sequences and Persian or Indic words need them.
_KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
# Letters that draw as nothing: used for names that look empty or to pad a fake name.
_BLANKS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})
# Never in a valid URL unencoded (RFC 3986); a backslash reads as "/" in browsers but not here.
_NOT_IN_URLS = re.compile(r'["<>`\\]')
_MAX_MARKS = 8  # combining marks kept on one character (scripts stack a few; "Zalgo" hundreds)
_USER = re.compile(r"[\w.\-]+")  # \w is Unicode: letters, digits, marks and "_"
_HOST = re.compile(r"(?:[\w\-]+\.)*[\w\-]+(?::[0-9]{1,5})?")


def _no_surrogates(value: str) -> str:
    return _SURROGATES.sub("\ufffd", value)


def _href(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: an `href` stays only if it is a safe absolute URL."""
    if tag == "a" and attribute == "href":
        return value if safe_url(value) is not None else None
    return value


def safe_reply_html(text: str) -> str:
    """Remote reply HTML through the allowlist: p, br, a (http/https href), span (known classes)."""
    if not isinstance(text, str):
        return ""
    cleaned = nh3.clean(
        _no_surrogates(text[:MAX_CONTENT]),
        tags=_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes={"a": {"href"}, "span": set()},  # nh3 sets rel itself (link_rel)
        allowed_classes={"span": set(REPLY_CLASSES)},
        attribute_filter=_href,
        url_schemes={"http", "https"},
        url_relative="deny",  # a relative link would point into the blog itself
        link_rel=REPLY_LINK_REL,
        strip_comments=True,
    )
    return cleaned.replace('<span class="">', "<span>")  # every class was dropped


def _visible(text: str) -> str:
    """Drop control, format (bidi overrides, zero-width) and surrogate characters; cap stacks of
    combining marks; blank letters become spaces; whitespace runs become one space."""
    kept: list[str] = []
    marks = 0
    for c in text:
        if c.isspace():
            kept.append(" ")
            marks = 0
            continue
        category = unicodedata.category(c)
        if category in ("Cc", "Cs") or (category == "Cf" and c not in _KEPT_FORMAT):
            continue
        if category in ("Mn", "Me"):
            marks += 1
            if marks > _MAX_MARKS:
                continue
        else:
            marks = 0
        kept.append(" " if c in _BLANKS else c)
    return " ".join("".join(kept).split())


def plain_text(value: object, limit: int = MAX_NAME) -> str:
    """A remote string as plain text: tags dropped (script and style with their content),
    entities decoded, no control or format characters, whitespace collapsed, capped to `limit`
    characters (an ellipsis marks the cut)."""
    if not isinstance(value, str):
        return ""
    text = nh3.clean(
        _no_surrogates(value[: limit * 8]), tags=set(), clean_content_tags=_DROPPED_WITH_CONTENT)
    text = _visible(html.unescape(text))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def terminal_safe(line: str) -> str:
    """`line` safe to print on a terminal: every control, format (bidi overrides, zero-width),
    surrogate and line/paragraph-separator character but a newline is shown as a `\\uXXXX`
    escape, so an ESC cannot start a terminal sequence, a carriage return cannot overwrite what
    the line said, and a direction override cannot reorder it. Inside a JSON string that escape
    means the same character, so a JSON line stays valid and keeps its value."""
    if line.isprintable():
        return line
    out: list[str] = []
    for c in line:
        if c != "\n" and (unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")
                          or (unicodedata.category(c) == "Cf" and c not in _KEPT_FORMAT)):
            units = c.encode("utf-16-be", "surrogatepass")  # JSON spells a tag character
            out.extend(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
        else:
            out.append(c)
    return "".join(out)


def safe_name(value: object) -> str:
    """A remote display name as plain text, at most MAX_DISPLAY_NAME characters."""
    return plain_text(value, MAX_DISPLAY_NAME)


def safe_handle(value: object) -> str:
    """`user@host` (without a leading "@") when `value` is one, else "" (better no handle than
    one that pretends to be someone else's: "alice@good.example@evil.example")."""
    if not isinstance(value, str) or len(value) > MAX_HANDLE + 1:
        return ""
    handle = value[1:] if value.startswith("@") else value
    user, at, host = handle.partition("@")
    if not at or not _USER.fullmatch(user) or not _HOST.fullmatch(host):
        return ""
    if any(unicodedata.category(c) in ("Cf", "Cc", "Cs") for c in handle):
        return ""
    return handle


def safe_url(value: object, *, https_only: bool = False) -> str | None:
    """`value` if it is an absolute http(s) URL (https only when asked) with a host, no
    credentials, no whitespace, control or format characters, no backslash and no `"<>` or
    backtick (which RFC 3986 leaves out of URLs); else None."""
    if not isinstance(value, str) or len(value) > MAX_URL or _NOT_IN_URLS.search(value):
        return None
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port
    except ValueError:
        return None
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme.lower() not in allowed or not parts.hostname or not port_ok:
        return None
    if "@" in parts.netloc or not value[len(parts.scheme):].startswith("://"):
        return None  # user:password@host, or "https:host" that browsers read differently
    if not _HOST.fullmatch(parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc):
        return None  # only letters, digits, dots and hyphens in a host (no IPv6 literal)
    return value
