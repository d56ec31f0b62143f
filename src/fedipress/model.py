"""The frozen data every part of fedipress speaks: posts, pages, tags and the site.

Content is parsed into these once (content.py) and then only read: render.py turns them into
HTML and feeds, activitypub/ turns them into ActivityPub documents. All URLs held here are
absolute, and all datetimes are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from .config import SiteConfig

__all__ = ["Image", "MenuEntry", "Output", "Post", "Site", "Tag"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Image:
    """An image used by a post (cover or inline), with absolute `url`."""

    url: str
    alt: str = ""
    media_type: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Tag:
    """A tag as written (`name`), its URL-safe `slug`, and its page's absolute `url`."""

    name: str
    slug: str
    url: str


@dataclass(frozen=True)
class MenuEntry:
    """A post or page's place in one menu (front matter `menu:`): the menu's `menu` name
    (`main` is the header navigation), and optionally a `weight` and a `name` (the link's
    text) that apply to this menu only."""

    menu: str
    weight: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class Post:
    """One post or page, fully parsed and rendered to HTML.

    `source` is the path relative to the content directory (`posts/hello.md`) and is what
    error messages name. `path` is the output path relative to the output directory of the
    page's directory (`posts/hello/`); `url` is its absolute URL.
    """

    source: str
    kind: Literal["post", "page"]
    slug: str
    title: str
    date: datetime
    url: str
    path: str
    html: str
    summary_html: str
    lang: str
    updated: datetime | None = None
    tags: tuple[Tag, ...] = ()
    summary: str | None = None  # author-written summary (front matter), plain text
    draft: bool = False
    image: Image | None = None
    images: tuple[Image, ...] = ()  # inline images in the body, in order
    aliases: tuple[str, ...] = ()  # old output paths (relative, e.g. "2019/01/old-name/")
    toc_html: str = ""
    word_count: int = 0
    reading_minutes: int = 1
    federate: bool = True
    pinned: bool = False
    content_warning: str | None = None
    in_reply_to: str | None = None
    # Front matter `quotes`: who may quote the post (FEP-044f); None follows fediverse.quotes.
    quotes: Literal["anyone", "followers", "nobody"] | None = None
    bundle_files: tuple[str, ...] = ()  # files beside a bundle's index.md, relative to source dir
    content_hash: str = ""  # sha256 of the source file bytes
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # other front matter
    mentions: tuple[str, ...] = ()  # "user@server.tld" written as @user@server.tld in the body
    has_more: bool = False  # the body has a <!--more--> marker (summary_html is the part before)
    weight: int | None = None  # front matter `weight`: lower comes first in menus
    # Front matter `menu`: None when not written (a page is then in the navigation unless
    # some page names `main`), () for `menu: false` (in no menu).
    menus: tuple[MenuEntry, ...] | None = None
    # False for a page with no date in its front matter or file name: `date` is then the
    # file's modification time, which a fresh checkout resets, so no output may depend on it
    # being stable (the sitemap leaves such a page's lastmod out).
    dated: bool = True
    # Hugo's publishDate: `date` is it, and even a page (otherwise built whatever its date)
    # waits for it. `expires`: Hugo's expiryDate; once passed, no build includes the post.
    scheduled: bool = False
    expires: datetime | None = None
    # Front matter `comments: false`: no conversation section on this post's page.
    comments: bool = True
    # A hash of every field above, set by content.py (cached with the parse) so that output
    # fingerprints hash 64 characters instead of the whole post; "" when not computed.
    fingerprint: str = ""


@dataclass(frozen=True)
class Site:
    """Everything a build renders: the config plus published posts (newest first) and pages."""

    config: SiteConfig
    posts: tuple[Post, ...]
    pages: tuple[Post, ...]

    def tags(self) -> dict[str, tuple[Tag, tuple[Post, ...]]]:
        """Tag slug -> (tag, its posts newest first), sorted by slug."""
        return self._tag_index

    def federated(self) -> tuple[Post, ...]:
        """Posts that federate (front matter `federate`, defaulted from config), newest first
        by (date, url): what the outbox, the object documents and the federation manifest
        list."""
        return self._federated

    @cached_property
    def _federated(self) -> tuple[Post, ...]:
        # Asked for by the ActivityPub plan, the outbox, the federation manifest and the
        # build's render order (~18 ms a sort at 10,000 posts).
        posts = [p for p in self.posts if p.kind == "post" and p.federate and not p.draft]
        return tuple(sorted(posts, key=lambda p: (p.date, p.url), reverse=True))

    @cached_property
    def _tag_index(self) -> dict[str, tuple[Tag, tuple[Post, ...]]]:
        # Render and feeds ask for it up to three times per build (~15 ms each at 10,000
        # posts); cached_property writes the instance dict, which a frozen dataclass allows.
        by_slug: dict[str, tuple[Tag, list[Post]]] = {}
        for post in self.posts:
            for tag in post.tags:
                by_slug.setdefault(tag.slug, (tag, []))[1].append(post)
        return {slug: (tag, tuple(ps)) for slug, (tag, ps) in sorted(by_slug.items())}


@dataclass(frozen=True)
class Output:
    """One file the build may write, rendered lazily.

    `path` is relative to the output directory ("posts/x/index.html"). `fingerprint` is a hash
    of everything the bytes depend on (inputs, theme, config); when it equals the previous
    build's and the file is still there, the build skips `render()` entirely. That is what makes
    rebuilds incremental, so a fingerprint must change whenever the bytes would.
    """

    path: str
    fingerprint: str
    render: Callable[[], bytes]
