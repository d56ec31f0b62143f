"""Fitting an activity under the size receiving servers accept (`MAX_ACTIVITY_BYTES`): a
post too large is sent shortened, with a link to the whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape, unescape
from typing import Any

from .context import with_context
from .json_text import serialize
from .objects import _TAG_RE

__all__ = ["MAX_ACTIVITY_BYTES", "fit_activity"]

# Misskey's inbox refuses a body over 64 KiB (and others are not far off): every activity sent
# stays under 60 KiB, leaving room for whatever a server or proxy counts on top.
MAX_ACTIVITY_BYTES = 60 * 1024
_EXCERPT_CHARS = 500  # of plain text, about what Mastodon shows before "show more"
_ALT_CHARS = 1500  # Mastodon's own limit for an image description
_HASHTAG_PARAGRAPH = re.compile(
    r'<p>(?:<a href="[^"]*" class="mention hashtag" rel="tag">#<span>[^<]*</span></a> ?)+</p>$'
)
_TITLE_PARAGRAPH = re.compile(r"<p><strong>[^<]*</strong></p>")


def _plain_text(html: str) -> str:
    return " ".join(unescape(_TAG_RE.sub(" ", html)).split())


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    # End on a word boundary when there is one in the last fifth (a URL may have none).
    space = cut.rfind(" ")
    if space > limit * 4 // 5:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "\u2026"


def _short_object(obj: Mapping[str, Any], *, hashtags: bool) -> dict[str, Any]:
    """`obj` with its text replaced by its title (a Note's), an excerpt and a link to the post;
    an Article's over-long summary shortened too (a content warning is left whole)."""
    content = str(obj.get("content", ""))
    hashtag_match = _HASHTAG_PARAGRAPH.search(content)
    if hashtag_match:
        content = content[: hashtag_match.start()]
    title_match = _TITLE_PARAGRAPH.match(content)
    title = title_match.group(0) if title_match else ""
    summary = obj.get("summary")
    warned = bool(obj.get("sensitive"))
    if isinstance(summary, str) and summary.strip() and not warned:
        text = _plain_text(summary)  # an Article's summary says it best
    else:
        text = _plain_text(content[len(title):])
    excerpt = f"<p>{escape(_excerpt(text))}</p>" if text else ""
    link = f'<p><a href="{escape(str(obj["url"]))}">Read more</a></p>'
    short = title + excerpt + link
    if hashtags and hashtag_match:
        short += hashtag_match.group(0)
    out = dict(obj)
    out["content"] = short
    if isinstance(obj.get("contentMap"), Mapping):
        out["contentMap"] = {lang: short for lang in obj["contentMap"]}
    if isinstance(summary, str) and not warned and len(summary) > _EXCERPT_CHARS:
        out["summary"] = _excerpt(summary)
    return out


def fit_activity(
    activity: Mapping[str, Any], *, limit: int = MAX_ACTIVITY_BYTES
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`activity` made to serialize within `limit` bytes, and a note for each thing cut.

    An activity that fits comes back unchanged, with no notes. A Create or Update of a post
    that does not fit keeps its ids, url, addressing, mentions and attachments; what changes,
    step by step until it fits: its text becomes an excerpt (an Article's summary) and a link
    to the post, image descriptions are cut to 1,500 characters, then hashtags are left out
    from the last. Mentions are never dropped: when even that does not fit, the result is
    still too long, which the caller checks with `serialize` and refuses.
    """
    doc = dict(activity)
    size = len(serialize(doc))
    if size <= limit:
        return doc, ()  # the very bytes it would have had: no id or hash moves
    obj = doc.get("object")
    if not isinstance(obj, Mapping) or obj.get("type") not in ("Note", "Article") \
            or not isinstance(obj.get("url"), str):
        return doc, ()  # not a post: nothing here to shorten (the caller refuses it)
    notes: list[str] = []

    def fits(new_obj: Mapping[str, Any]) -> dict[str, Any] | None:
        candidate = with_context({**doc, "object": new_obj})
        return candidate if len(serialize(candidate)) <= limit else None

    short = _short_object(obj, hashtags=True)
    notes.append(f"{size / 1024:.0f} KiB: its text is replaced by an excerpt and a link")
    done = fits(short)
    if done is None:
        short = _short_object(obj, hashtags=False)
        done = fits(short)
    attachments = short.get("attachment")
    if done is None and isinstance(attachments, list):
        cut = [
            {**a, "name": _excerpt(a["name"], _ALT_CHARS)}
            if isinstance(a, Mapping) and isinstance(a.get("name"), str)
            and len(a["name"]) > _ALT_CHARS else a
            for a in attachments
        ]
        if cut != attachments:
            short = {**short, "attachment": cut}
            notes.append(f"image descriptions cut to {_ALT_CHARS:,}-character excerpts")
            done = fits(short)
    tags = short.get("tag")
    if done is None and isinstance(tags, list):
        hashtags = [t for t in tags if isinstance(t, Mapping) and t.get("type") == "Hashtag"]
        others = [t for t in tags if t not in hashtags]
        # The most hashtags that fit, by bisection (thousands of tags: a few dozen tries).
        low, high = 0, len(hashtags) - 1  # `high + 1` tags are known not to fit
        best = fits({**short, "tag": others}) if hashtags else None
        while best is not None and low < high:
            middle = (low + high + 1) // 2
            candidate = fits({**short, "tag": hashtags[:middle] + others})
            if candidate is None:
                high = middle - 1
            else:
                low, best = middle, candidate
        if hashtags:
            short = {**short, "tag": hashtags[:low] + others}
            done = best
            # Never a single one: `high + 1` tags did not fit and `low` is below it.
            notes.append(f"hashtags left out: {len(hashtags) - low:,} of {len(hashtags):,}")
    return (done if done is not None else with_context({**doc, "object": short})), tuple(notes)
