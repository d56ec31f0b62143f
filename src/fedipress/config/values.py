"""Checks of single site.yaml values, free of YAML: each returns what is wrong, or None.

The `check_*` functions that also clean a value return `(clean value, error or None)`.
"""

from __future__ import annotations

import difflib
import os
import re
import string
from datetime import datetime
from pathlib import Path
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "HOST_PORT",
    "check_absolute_url",
    "check_base_url",
    "check_blocked",
    "check_blocked_word",
    "check_datetime",
    "check_output_dir",
    "check_permalink",
    "check_timezone",
    "normalise_permalink",
    "real",
    "split_url",
    "under",
]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# host[:port] as a handle domain is written: "alice.example", "127.0.0.1:8001".
HOST_PORT = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")
_PERMALINK_FIELDS = ("slug", "year", "month", "day")


def split_url(value: str) -> SplitResult | None:
    """`value` split into its parts, or None when urlsplit cannot read it at all.

    urlsplit raises ValueError on an unclosed IPv6 bracket ("http://[::1/x") and on a netloc
    that changes under NFKC normalisation; `.port` raises on a port that is not a number in
    0-65535. Asking for the port here means no later reader of the URL trips on it.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - evaluated only for the ValueError it may raise
    except ValueError:
        return None
    return parts


def check_base_url(value: str) -> tuple[str | None, str | None]:
    example = "such as https://example.com/ or http://127.0.0.1:8000/"
    parts = split_url(value.strip())
    if parts is None:
        return None, f"must be an absolute http(s) URL {example}, got {value!r}"
    port = parts.port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, f"must be an absolute http(s) URL {example}, got {value!r}"
    if parts.query or parts.fragment or parts.username or parts.password:
        return None, f"must not contain a query, fragment or user name ({example}), got {value!r}"
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{netloc}{path}", None


def check_absolute_url(value: str) -> tuple[str, str | None]:
    parts = split_url(value.strip())
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return value, f"expected an absolute https:// URL, got {value!r}"
    return value.strip(), None


def check_timezone(name: str) -> str | None:
    try:
        ZoneInfo(name)
        return None
    except (ZoneInfoNotFoundError, ValueError):
        pass
    known = available_timezones()
    by_lower = {zone.lower(): zone for zone in known}
    close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), by_lower, n=1)]
    hint = f"did you mean {close[0]!r}?" if close else "use a name such as 'Europe/Berlin' or 'UTC'"
    return f"unknown time zone {name!r}; {hint}"


def check_permalink(pattern: str) -> str | None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError:
        return f"unbalanced braces in {pattern!r}; write placeholders as {{slug}}"
    unknown = sorted({n for n in names if n not in _PERMALINK_FIELDS})
    if unknown:
        known = " ".join("{" + n + "}" for n in _PERMALINK_FIELDS)
        return f"unknown placeholder {{{unknown[0]}}}; use only {known}"
    if "slug" not in names:
        return "must contain {slug} so every post gets its own URL, e.g. /posts/{slug}/"
    if not (pattern.endswith("/") or pattern.endswith(".html")):
        return f"must end with '/' (or '.html'), e.g. /posts/{{slug}}/, got {pattern!r}"
    if any(part == ".." for part in pattern.split("/")) or "?" in pattern or "#" in pattern:
        return f"must be a plain path such as /posts/{{slug}}/, got {pattern!r}"
    return None


def normalise_permalink(pattern: str) -> str:
    return pattern if pattern.startswith("/") else "/" + pattern


def real(path: Path) -> Path:
    """`path` with symlinks resolved as far as they go.

    os.path.realpath, not Path.resolve: on Python 3.11 resolve raises RuntimeError on a
    symlink loop, which a user's folder may well be.
    """
    return Path(os.path.realpath(path))


def check_output_dir(root: Path, output_dir: Path, content_dir: Path) -> str | None:
    out = real(output_dir)
    site = real(root)
    why = "the build deletes stale files in it; use a folder of its own such as 'public'"
    if out == site or site.is_relative_to(out):
        return f"must not be the site folder or one of its parents ({why})"
    content = real(content_dir)
    if out == content or content.is_relative_to(out) or out.is_relative_to(content):
        return f"must not be, contain or be inside the content folder ({why})"
    state = real(root / ".fedipress")
    if state.is_relative_to(out) or out.is_relative_to(state):
        return f"must not contain or be inside .fedipress/, which holds the private key ({why})"
    themes = real(root / "themes")
    if themes.is_relative_to(out) or out.is_relative_to(themes):
        return f"must not be, contain or be inside themes/, which holds your themes ({why})"
    return None


def check_blocked(value: str) -> tuple[str, str | None]:
    text = value.strip()
    if "://" in text:
        return check_absolute_url(text)
    domain = text.lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    if not _DOMAIN.fullmatch(domain) or "." not in domain:
        return text, (
            "expected a domain such as 'spam.example' or an actor URL such as"
            f" 'https://spam.example/users/bob', got {value!r}"
        )
    return domain, None


MAX_BLOCKED_WORD = 200


def check_blocked_word(value: str) -> tuple[str, str | None]:
    """A word or phrase of fediverse.blocked_words: matched case-insensitively on a reply's
    plain text, with its inner spaces collapsed the same way the text's are."""
    word = " ".join(value.split()).casefold()
    if not word:
        return word, "expected a word or phrase, got an empty entry"
    if len(word) > MAX_BLOCKED_WORD:
        return word, f"a blocked word or phrase is at most {MAX_BLOCKED_WORD} characters"
    return word, None


def check_datetime(value: str, timezone: str | None) -> tuple[str | None, str | None]:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None, (
            f"expected an ISO date and time such as 2024-05-01T09:00:00+02:00, got {value!r}"
        )
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(timezone or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            return None, None  # the timezone problem is reported on its own line
    return moment.isoformat(), None


def under(root: Path, value: str) -> Path:
    """`value` (relative, absolute or ~/…) as a normalised path against the site root."""
    return Path(os.path.normpath(root / Path(value).expanduser()))
