"""A post as an ActivityPub object (Note or Article): content, attachments, hashtags and
mentions, and which posts federate at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlsplit

from ...model import Image, Post, Site
from ..reduce import FoundImage, reduce_html
from .context import _with_own_context
from .ids import PUBLIC, _followers_id, actor_id, iso, object_id
from .threads import (
    NO_THREAD,
    QuotePolicy,
    Thread,
    context_id,
    counted_collection,
    interaction_policy,
    likes_id,
    replies_collection,
    shares_id,
)

__all__ = [
    "MAX_ATTACHMENTS",
    "federated_posts",
    "hashtag_name",
    "object_document",
    "object_documents",
    "post_mentions",
    "quote_policy",
]

MAX_ATTACHMENTS = 4  # Mastodon takes the first four

_IMAGE_TYPES = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "webp": "image/webp", "avif": "image/avif", "svg": "image/svg+xml", "heic": "image/heic",
    "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg", "ogg": "audio/ogg",
    "pdf": "application/pdf",
}

# @user@server as written in a post; the server may carry a port (loopback tests do).
_MENTION_RE = re.compile(
    r"(?<![\w@/.:-])@([A-Za-z0-9_][A-Za-z0-9_.-]*)@"
    r"((?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+(?::\d{1,5})?|localhost(?::\d{1,5})?)"
)
_TAG_RE = re.compile(r"<[^>]*>")
_WORD_RE = re.compile(r"\w+")
_LETTER_RE = re.compile(r"[^\W\d]")
_CODE_RE = re.compile(r"<(pre|code)\b[^>]*>.*?</\1>", re.DOTALL | re.IGNORECASE)


def _media_type(url: str, declared: str | None = None) -> str | None:
    if declared:
        return declared
    path = urlsplit(url).path
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _IMAGE_TYPES.get(ext)


def _attachment(url: str, alt: str, media_type: str | None, width: int | None,
                height: int | None) -> dict[str, Any]:
    mt = _media_type(url, media_type)
    doc: dict[str, Any] = {"type": "Image" if (mt or "").startswith("image/") else "Document"}
    if mt:
        doc["mediaType"] = mt
    doc["url"] = url
    doc["name"] = alt
    if width:
        doc["width"] = width
    if height:
        doc["height"] = height
    return doc


def _image_doc(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "Image"}
    if mt := _media_type(url):
        doc["mediaType"] = mt
    doc["url"] = url
    return doc


def hashtag_name(name: str) -> str | None:
    """A tag as Mastodon would write it, without '#': no spaces or punctuation.

    Several words become CamelCase ("static sites" -> "StaticSites"); a single word keeps its
    case. None when nothing valid remains (Mastodon needs at least one non-digit).
    """
    words: list[str] = _WORD_RE.findall(name)
    if not words:
        return None
    if len(words) == 1:
        joined = words[0]
    else:
        joined = "".join(w[:1].upper() + w[1:] for w in words)
    if not _LETTER_RE.search(joined):
        return None
    return joined


def _hashtags(post: Post) -> list[tuple[str, str]]:
    """(normalised name, href) per distinct tag, in the post's order."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for tag in post.tags:
        name = hashtag_name(tag.name)
        if name is None or name.lower() in seen:
            continue
        seen.add(name.lower())
        out.append((name, tag.url))
    return out


def post_mentions(post: Post) -> tuple[str, ...]:
    """Distinct "user@server" mentions written in the post's text, in order of appearance."""
    if "@" not in post.html:
        return ()  # most posts: no need to strip code and tags from all of the HTML
    # Code is not text: "@a@b.example" in a snippet mentions nobody (markup agrees).
    text = _TAG_RE.sub(" ", _CODE_RE.sub(" ", post.html))
    seen: dict[str, None] = {}
    for user, server in _MENTION_RE.findall(text):
        seen.setdefault(f"{user}@{server.lower()}", None)
    return tuple(seen)


def _mention_href(handle: str, mentions: Mapping[str, str]) -> str:
    if handle in mentions:
        return mentions[handle]
    user, server = handle.split("@", 1)
    return f"https://{server}/@{user}"


def federated_posts(site: Site) -> list[Post]:
    """Posts that federate (front matter `federate`, defaulted from config), newest first."""
    return list(site.federated())


# --- post objects --------------------------------------------------------------------------


def _attachments(post: Post, found: Sequence[FoundImage]) -> list[dict[str, Any]]:
    """Cover first, then inline images, at most four; metadata merged by URL."""
    html_sizes = {img.url: img for img in found}
    images: list[Image | FoundImage] = []
    if post.image is not None:
        images.append(post.image)
    images.extend(post.images)
    images.extend(found)  # images only the HTML knows about (no metadata from content.py)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for img in images:
        if img.url in seen:
            continue
        seen.add(img.url)
        declared = img.media_type if isinstance(img, Image) else None
        in_html = html_sizes.get(img.url)
        width = img.width or (in_html.width if in_html else None)
        height = img.height or (in_html.height if in_html else None)
        alt = img.alt or (in_html.alt if in_html else "")
        out.append(_attachment(img.url, alt, declared, width, height))
        if len(out) == MAX_ATTACHMENTS:
            break
    return out


def _hashtag_paragraph(tags: Sequence[tuple[str, str]]) -> str:
    links = [
        f'<a href="{escape(href)}" class="mention hashtag" rel="tag">'
        f"#<span>{escape(name)}</span></a>"
        for name, href in tags
    ]
    return f"<p>{' '.join(links)}</p>" if links else ""


def quote_policy(site: Site, post: Post) -> QuotePolicy:
    """Who may quote `post`: its front matter `quotes`, else site.yaml's fediverse.quotes."""
    return post.quotes or site.config.fediverse.quotes


def object_document(
    site: Site, post: Post, *, mentions: Mapping[str, str] | None = None,
    thread: Thread = NO_THREAD,
) -> dict[str, Any]:
    """The post's Note (default) or Article, served at post.path + "object.json".

    `mentions` maps "user@server" to the actor id publish resolved; unresolved ones point at
    https://server/@user (Mastodon then still links them, it just may not notify). `thread`
    is the post's public conversation (reply ids, like and boost counts) the collections show.
    """
    return _object_document(site, post, mentions or {}, actor_id(site), _followers_id(site),
                            thread)


def object_documents(
    site: Site, *, mentions: Mapping[str, str] | None = None,
    threads: Mapping[str, Thread] | None = None,
) -> Callable[[Post], dict[str, Any]]:
    """object_document(site, post, mentions=mentions, thread=threads[its id]) for many posts of
    one site (the actor's and followers' URLs, two urljoins, made once)."""
    resolved = mentions or {}
    known = threads or {}
    aid, followers = actor_id(site), _followers_id(site)

    def build(post: Post) -> dict[str, Any]:
        thread = known.get(object_id(post), NO_THREAD) if known else NO_THREAD
        return _object_document(site, post, resolved, aid, followers, thread)

    return build


def _object_document(site: Site, post: Post, resolved: Mapping[str, str], aid: str,
                     followers: str, thread: Thread) -> dict[str, Any]:
    config = site.config
    fed = config.fediverse
    oid = object_id(post)
    is_article = fed.post_type == "article"

    body = reduce_html(post.html, base_url=post.url)
    tags = _hashtags(post)
    handles = post_mentions(post)
    mention_ids = [_mention_href(h, resolved) for h in handles]

    if is_article:
        content = body.html
    else:
        title = f"<p><strong>{escape(post.title)}</strong></p>" if post.title else ""
        if fed.note_content == "summary":
            summary = reduce_html(post.summary_html, base_url=post.url).html
            if not summary and post.summary:
                summary = f"<p>{escape(post.summary)}</p>"
            more = f'<p><a href="{escape(post.url)}">Read more</a></p>'
            content = title + summary + more
        else:
            content = title + body.html
    content += _hashtag_paragraph(tags)

    doc: dict[str, Any] = {
        "id": oid,
        "type": "Article" if is_article else "Note",
        "attributedTo": aid,
    }
    if post.in_reply_to:
        doc["inReplyTo"] = post.in_reply_to
    doc["context"] = context_id(post.url)
    doc["to"] = [PUBLIC]
    doc["cc"] = [followers, *dict.fromkeys(mention_ids)]
    doc["published"] = iso(post.date)
    if post.updated is not None and post.updated > post.date:
        doc["updated"] = iso(post.updated)
    doc["url"] = post.url
    if is_article:
        doc["name"] = post.title
    if post.content_warning:
        doc["summary"] = post.content_warning
    elif is_article and post.summary:
        # Mastodon shows an Article as name + summary + link: give it a real summary.
        doc["summary"] = post.summary
    doc["sensitive"] = bool(post.content_warning)
    doc["content"] = content
    doc["contentMap"] = {post.lang or config.language: content}
    attachments = _attachments(post, body.images)
    if attachments:
        doc["attachment"] = attachments
    tag_docs: list[dict[str, Any]] = [
        {"type": "Hashtag", "name": f"#{name}", "href": href} for name, href in tags
    ]
    tag_docs += [
        {"type": "Mention", "href": href, "name": f"@{handle}"}
        for handle, href in zip(handles, mention_ids, strict=True)
    ]
    if tag_docs:
        doc["tag"] = tag_docs
    # Embedded with their counts, never bare links (some servers refuse those); the service
    # refreshes them for followers when they change (federation/quotes.py).
    doc["replies"] = replies_collection(post.url, thread)
    doc["likes"] = counted_collection(likes_id(post.url), thread.likes)
    doc["shares"] = counted_collection(shares_id(post.url), thread.shares)
    doc["interactionPolicy"] = interaction_policy(quote_policy(site, post), aid, followers)
    return _with_own_context(doc)  # a fresh dict of fresh values: no copy needed
