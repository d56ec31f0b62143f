"""(site, theme environment) -> the HTML pages of the blog, as lazily rendered Outputs.

Pure: nothing here reads or writes files or looks at the clock (templates are loaded by the
environment, which the build made). Every page is rendered from a small, explicit context of
frozen data, and its fingerprint is a hash of exactly that context (plus the build's salt for
config and theme), so a page's fingerprint changes whenever its bytes could.

Pages planned: the paginated home (`index.html`, `page/N/index.html`), one page per post and
per page, tag pages (`tags/<slug>/`, paginated like home), the tag index, the archive by year,
`404.html`, and a redirect page for every alias that does not collide with a real page.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from functools import partial
from operator import attrgetter
from pathlib import PurePath
from types import MappingProxyType
from typing import Any

import jinja2
import markdown

from ..activitypub.conversation import Conversations
from ..config import Author, SiteConfig
from ..model import Image, Output, Post, Site, Tag
from .conversation_view import ConversationView, conversation_view
from .themes import render_template

__all__ = [
    "RENDER_VERSION",
    "TOC_MIN_WORDS",
    "Alternate",
    "Link",
    "PageMeta",
    "Paginator",
    "SiteView",
    "TagCount",
    "YearGroup",
    "menus_of",
    "page_count",
    "plan_pages",
    "plain_text",
]

# Bump when this module changes what it passes to templates, so old fingerprints go stale.
RENDER_VERSION = "render-4"  # 3: site.menus, weighted navigation; 4: conversation
TOC_MIN_WORDS = 400  # below this a table of contents is clutter (front matter `toc:` overrides)
DESCRIPTION_CHARS = 200

FEED_TYPES = (
    ("atom", "application/atom+xml", "Atom", "feed.xml"),
    ("rss", "application/rss+xml", "RSS", "rss.xml"),
    ("json", "application/feed+json", "JSON Feed", "feed.json"),
)


@dataclass(frozen=True)
class Link:
    """Something to link to: title, absolute URL and (for posts) its date."""

    title: str
    url: str
    date: datetime | None = None


@dataclass(frozen=True)
class Alternate:
    """A `<link rel="alternate">`: media type, human title, absolute href."""

    type: str
    title: str
    href: str
    label: str = ""  # short name for visible links ("Atom", "RSS", "JSON Feed")


@dataclass(frozen=True)
class SiteView:
    """What every page may show about the site. Deliberately not the whole post list: a page
    depends only on what it is given, which keeps incremental rebuilds small."""

    title: str
    description: str
    url: str
    language: str
    author: Author
    author_bio_html: str
    avatar: str | None
    handle: str  # user@domain, no leading @
    display_name: str
    nav: tuple[Link, ...]  # the header navigation: menus["main"] (see menus_of)
    feeds: tuple[Alternate, ...]
    home_url: str
    tags_url: str
    archive_url: str
    # Every menu named in front matter (`menu:`), by name, each in order; "main" always.
    menus: Mapping[str, tuple[Link, ...]] = field(default_factory=dict)
    # False with `fediverse.enabled: false`: themes leave out the Follow and reply boxes,
    # which would point at an account that no longer exists.
    fediverse: bool = True


@dataclass(frozen=True)
class PageMeta:
    """The `<head>` of one page: title, description, canonical URL and social metadata."""

    title: str  # the full <title>
    heading: str  # the page's own name, without the site title
    description: str
    url: str  # canonical, absolute
    og_type: str  # "article" or "website"
    lang: str
    image: Image | None = None
    published: datetime | None = None
    updated: datetime | None = None
    tags: tuple[Tag, ...] = ()
    alternates: tuple[Alternate, ...] = ()
    activity_json: str | None = None  # the post's ActivityPub object URL
    creator: str | None = None  # "@user@domain" for <meta name="fediverse:creator">
    noindex: bool = False


@dataclass(frozen=True)
class Paginator:
    """One page of a list: `number` is 1-based; URLs are absolute (None at the ends)."""

    number: int
    total_pages: int
    total_items: int
    items: tuple[Post, ...]
    first_url: str
    prev_url: str | None
    next_url: str | None


@dataclass(frozen=True)
class TagCount:
    tag: Tag
    count: int


@dataclass(frozen=True)
class YearGroup:
    year: int
    posts: tuple[Link, ...]


# --- helpers ----------------------------------------------------------------------------------

_TAG_RE = re.compile(r"<[^>]*>")
_FINGERPRINT = attrgetter("fingerprint")
_SPACE_RE = re.compile(r"\s+")


def plain_text(fragment: str, limit: int = DESCRIPTION_CHARS) -> str:
    """Visible text of an HTML fragment, cut at a word boundary to `limit` characters."""
    text = _SPACE_RE.sub(" ", html.unescape(_TAG_RE.sub(" ", fragment))).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:!?-")
    return cut + "…"


def page_count(items: int, per_page: int) -> int:
    """Pages needed for `items` at `per_page` each; an empty list still has one page."""
    per_page = max(1, per_page)
    return max(1, -(-items // per_page))


def menus_of(site: Site) -> dict[str, tuple[Link, ...]]:
    """Each menu named in front matter (`menu:`) -> its links, lowest weight first, then
    those without a weight, each group by title. Hugo's rule for the header menu, "main":
    once any page or post names it, it holds exactly those; until then it holds every page
    that does not say `menu:` (so a site without menus keeps all its pages in the header)."""
    named: dict[str, list[tuple[tuple[bool, int, str, str], Link]]] = {}
    unnamed: list[tuple[tuple[bool, int, str, str], Link]] = []

    def order(weight: int | None, title: str, url: str) -> tuple[bool, int, str, str]:
        return (weight is None, weight or 0, title.casefold(), url)

    for item in site.pages:
        if item.menus is None:
            unnamed.append((order(item.weight, item.title, item.url), Link(item.title, item.url)))
    for item in (*site.pages, *site.posts):
        for entry in item.menus or ():
            weight = entry.weight if entry.weight is not None else item.weight
            title = entry.name or item.title
            named.setdefault(entry.menu, []).append((order(weight, title, item.url),
                                                     Link(title, item.url)))
    if "main" not in named:
        named["main"] = unnamed
    return {name: tuple(link for _, link in sorted(links, key=lambda e: e[0]))
            for name, links in sorted(named.items())}


def _index_path(path: str) -> str:
    """Output file for a page directory ("posts/x/" -> "posts/x/index.html")."""
    path = path.lstrip("/")
    if path.endswith(".html"):
        return path
    return f"{path.rstrip('/')}/index.html" if path.strip("/") else "index.html"


def _safe_relative(path: str) -> bool:
    parts = PurePath(path).parts
    return bool(parts) and all(p not in ("..", ".") for p in parts) and "\\" not in path


def _post_description(post: Post, fallback: str) -> str:
    if post.summary:
        return plain_text(post.summary)
    return plain_text(post.summary_html or post.html) or fallback


def _show_toc(post: Post) -> bool:
    wanted = post.extra.get("toc")
    if isinstance(wanted, bool):
        return wanted and bool(post.toc_html)
    return bool(post.toc_html) and post.word_count >= TOC_MIN_WORDS


# --- fingerprints -----------------------------------------------------------------------------


class _Fingerprinter:
    """Hashes template contexts canonically; big shared objects (posts, config) hash once."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self._memo: dict[int, tuple[object, str]] = {}

    def _digest(self, obj: object) -> str:
        hit = self._memo.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        data = json.dumps(self._fields(obj), sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(data.encode()).hexdigest()
        self._memo[id(obj)] = (obj, digest)  # keep obj alive so its id stays unique
        return digest

    def _fields(self, obj: Any) -> Any:
        return [type(obj).__name__, {f.name: self.canon(getattr(obj, f.name)) for f in fields(obj)}]

    def canon(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (str, int, float, bool)):
            return obj
        if isinstance(obj, datetime):
            return ["datetime", obj.isoformat()]
        if isinstance(obj, Post) and obj.fingerprint:
            return ["post", obj.fingerprint]  # content.py's hash of every field
        if isinstance(obj, (Post, SiteConfig, SiteView)):
            return ["digest", self._digest(obj)]
        if is_dataclass(obj) and not isinstance(obj, type):
            return self._fields(obj)
        if isinstance(obj, Mapping):
            return ["map", sorted(([str(k), self.canon(v)] for k, v in obj.items()))]
        if isinstance(obj, (list, tuple)):
            return [self.canon(v) for v in obj]
        if isinstance(obj, (set, frozenset)):
            return ["set", sorted(json.dumps(self.canon(v), sort_keys=True) for v in obj)]
        return ["repr", type(obj).__name__, repr(obj)]

    def __call__(self, template: str, context: Mapping[str, Any]) -> str:
        payload = json.dumps(
            [RENDER_VERSION, self.salt, template, self.canon(context)],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


# --- the plan ---------------------------------------------------------------------------------


class _PlannerHolder:
    """Points at the current plan's _Pages, for post pages planned by an earlier plan and
    reused (a long-lived caller's memo)."""

    pages: _Pages | None = None

    def render_post(self, post: Post, newer: Post | None, older: Post | None) -> bytes:
        assert self.pages is not None
        return self.pages.render_post(post, newer, older)


class _Pages:
    """What rendering a page needs (environment, config, site view), apart from the planner.

    Lazy renders point here, never at the _Planner: the planner holds the outputs, so an
    output whose render closure reached the planner made a reference cycle per output, and a
    finished build (~160,000 objects at 10,000 posts) was freed only by the cyclic
    collector instead of by reference counting.
    """

    def __init__(self, site: Site, env: jinja2.Environment, bio_html: str,
                 conversations: Conversations | None = None) -> None:
        self.config = site.config
        self.env = env
        self.view = self._site_view(site, bio_html)
        self.conversations = conversations

    def _site_view(self, site: Site, bio: str) -> SiteView:
        c = self.config
        feeds = tuple(
            Alternate(mime, f"{c.title} ({label})", c.url(name), label)
            for key, mime, label, name in FEED_TYPES
            if getattr(c.feeds, key)
        )
        menus = menus_of(site)
        return SiteView(
            title=c.title,
            description=c.description,
            url=c.base_url,
            language=c.language,
            author=c.author,
            author_bio_html=bio,
            avatar=c.author.avatar or c.fediverse.avatar,
            handle=c.handle,
            display_name=c.fediverse.display_name or c.author.name,
            nav=menus["main"],
            feeds=feeds,
            home_url=c.base_url,
            tags_url=c.url("tags/"),
            archive_url=c.url("archive/"),
            menus=MappingProxyType(menus),
            fediverse=c.fediverse.enabled,
        )

    def title(self, heading: str) -> str:
        return f"{heading} — {self.config.title}" if heading else self.config.title

    def meta(self, heading: str, url: str, **kw: Any) -> PageMeta:
        kw.setdefault("description", self.config.description)
        kw.setdefault("og_type", "website")
        kw.setdefault("lang", self.config.language)
        kw.setdefault("alternates", self.view.feeds)
        if kw.get("image") is None and self.view.avatar:
            kw["image"] = Image(url=self.view.avatar, alt=self.view.display_name)
        return PageMeta(title=self.title(heading), heading=heading, url=url, **kw)

    def full(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"site": self.view, "config": self.config, "nav": self.view.nav, **context}

    def render(self, template: str, context: dict[str, Any]) -> bytes:
        """`context` without the parts every page shares (full() adds them)."""
        return render_template(self.env, template, self.full(context)).encode("utf-8")

    def conversation(self, post: Post) -> ConversationView | None:
        """The post's public conversation for its page: None when there is none, when the
        post says `comments: false`, or when the blog has left the fediverse."""
        if self.conversations is None or not post.comments or not self.config.fediverse.enabled:
            return None
        return conversation_view(self.conversations.for_post(f"{post.url}object.json"),
                                 tz=self.config.tz, post_date=post.date)

    def render_lazy(self, template: str, make: Callable[[], dict[str, Any]]) -> bytes:
        return self.render(template, make())

    def render_post(self, post: Post, newer: Post | None, older: Post | None) -> bytes:
        return self.render(*self.post_context(post, newer, older))

    def post_context(
        self, post: Post, newer: Post | None, older: Post | None
    ) -> tuple[str, dict[str, Any]]:
        c = self.config
        meta = self.meta(
            post.title,
            post.url,
            description=_post_description(post, c.description),
            og_type="article" if post.kind == "post" else "website",
            lang=post.lang or c.language,
            image=post.image,
            published=post.date,
            updated=post.updated,
            tags=post.tags,
            # Only what activitypub/ publishes has an object.json (federated_posts: posts,
            # not pages or drafts); announcing one anywhere else is a broken link.
            activity_json=(f"{post.url}object.json"
                           if post.kind == "post" and post.federate and not post.draft
                           and c.fediverse.enabled else None),
            creator=f"@{c.handle}" if c.fediverse.enabled else None,
        )
        context: dict[str, Any] = {"meta": meta, "post": post}
        context["show_toc"] = _show_toc(post)
        template = "page.html"
        if post.kind == "post":
            context["conversation"] = self.conversation(post)
            context["newer"] = Link(newer.title, newer.url, newer.date) if newer else None
            context["older"] = Link(older.title, older.url, older.date) if older else None
            template = "post.html"
        return template, context


class _Planner:
    def __init__(self, site: Site, env: jinja2.Environment, salt: str,
                 memo: MutableMapping[tuple[object, ...], Any] | None = None,
                 conversations: Conversations | None = None) -> None:
        self.site = site
        # Post pages (and archive rows) by their inputs; a long-lived caller passes the same
        # dict between plans.
        self.memo: MutableMapping[tuple[object, ...], Any] = memo if memo is not None else {}
        self.holder: _PlannerHolder = self.memo.setdefault(("planner-holder",), _PlannerHolder())
        self.config = site.config
        c = self.config
        # The bio's Markdown once per bio, not per plan (each markdown.markdown() call leaves
        # a Markdown instance in reference cycles behind it).
        bio_key = ("author-bio", c.author.bio)
        bio = self.memo.get(bio_key)
        if bio is None:
            bio = self.memo[bio_key] = markdown.markdown(c.author.bio) if c.author.bio else ""
        self.pages = _Pages(site, env, bio, conversations)
        self.holder.pages = self.pages
        self._shared: str | None = None
        self._post_head: Any = None  # hashlib's sha256 object of _shared
        self._render_post: Callable[[Post, Post | None, Post | None], bytes] = \
            self.holder.render_post
        # The theme's own hash goes in too, so a build that forgets it in the salt stays correct.
        self.fingerprint = _Fingerprinter(f"{salt}\0{getattr(env, 'theme_hash', '')}")
        self.view = self.pages.view
        self.outputs: list[Output] = []
        self.paths: set[str] = set()

    def _meta(self, heading: str, url: str, **kw: Any) -> PageMeta:
        return self.pages.meta(heading, url, **kw)

    def add(self, path: str, template: str, context: dict[str, Any]) -> None:
        self.outputs.append(Output(path, self.fingerprint(template, self.pages.full(context)),
                                   partial(self.pages.render, template, context)))
        self.paths.add(path)

    def paginate(
        self,
        posts: Sequence[Post],
        base_url: str,
        base_path: str,
        template: str,
        heading: str,
        extra: Mapping[str, Any],
        meta_kw: Mapping[str, Any],
    ) -> None:
        per_page = max(1, self.config.posts_per_page)
        total = page_count(len(posts), per_page)
        pages = self.pages  # (not self: see _Pages)

        def url(n: int) -> str:
            return base_url if n == 1 else f"{base_url}page/{n}/"

        def context_of(n: int, items: tuple[Post, ...]) -> dict[str, Any]:
            paginator = Paginator(
                number=n,
                total_pages=total,
                total_items=len(posts),
                items=items,
                first_url=base_url,
                prev_url=url(n - 1) if n > 1 else None,
                next_url=url(n + 1) if n < total else None,
            )
            page_heading = heading if n == 1 else f"{heading or 'Posts'}, page {n}"
            meta = pages.meta(page_heading, url(n), **meta_kw)
            return {"meta": meta, "paginator": paginator, "posts": items, **extra}

        # As for post pages: with every post fingerprinted, a list page is fingerprinted by
        # what its context is made of (built only to render); the shared parts hash once.
        fp = self.fingerprint
        shared = None
        if all(map(_FINGERPRINT, posts)):  # (map: no generator frame per post)
            shared = json.dumps([
                RENDER_VERSION, fp.salt, "list-page", template, base_url, base_path, heading,
                fp.canon(extra), fp.canon(meta_kw), fp.canon(self.config), fp.canon(self.view),
                total, len(posts),
            ])
        for n in range(1, total + 1):
            items = tuple(posts[(n - 1) * per_page : n * per_page])
            path = f"{base_path}index.html" if n == 1 else f"{base_path}page/{n}/index.html"
            if shared is None:
                self.add(path, template, context_of(n, items))
                continue
            key = "\0".join([shared, str(n), *map(_FINGERPRINT, items)])
            self.outputs.append(Output(path, hashlib.sha256(key.encode()).hexdigest(),
                                       self._lazy(template, partial(context_of, n, items))))
            self.paths.add(path)

    def _lazy(self, template: str, make: Callable[[], dict[str, Any]]) -> Callable[[], bytes]:
        return partial(self.pages.render_lazy, template, make)

    def post_page(self, post: Post, newer: Post | None, older: Post | None) -> None:
        if post.fingerprint and (newer is None or newer.fingerprint) \
                and (older is None or older.fingerprint):
            self._post_page_by_fingerprint(post, newer, older)
            return
        self.add(_index_path(post.path), *self.pages.post_context(post, newer, older))

    def _post_page_by_fingerprint(
        self, post: Post, newer: Post | None, older: Post | None
    ) -> None:
        """A post's page fingerprinted by what its context is made of, not the context.

        The context (_Pages.post_context) is a function of the post, its neighbours, the config
        and the site view, all of which have fingerprints already; hashing those instead of
        the built context saves building it at all when the page is skipped (most of a
        rebuild's planning, one per post). Bump RENDER_VERSION when _Pages.post_context changes.
        """
        if self._shared is None:
            fp = self.fingerprint
            self._shared = json.dumps([RENDER_VERSION, fp.salt, "post-page",
                                       fp.canon(self.config), fp.canon(self.view)])
            self._post_head = hashlib.sha256(self._shared.encode())
        newer_fp = newer.fingerprint if newer else ""
        older_fp = older.fingerprint if older else ""
        # The conversation shown is part of the page: a new reply, like or edit re-renders it
        # (and keeps a CI build from taking the old page out of the render pack).
        conv_fp = self._conversation_fp(post) if post.kind == "post" else ""
        parts = (self._shared, post.fingerprint, newer_fp, older_fp, post.kind, conv_fp)
        out = self.memo.get(parts)
        if out is None:
            # One hash over the shared head (hashed once per plan) and this page's parts
            # (fingerprints are hex digits, kind a word: "\0" separates them unambiguously);
            # a json.dumps of the parts per post cost 1.5 us more per page.
            h = self._post_head.copy()
            h.update(f"\0{post.fingerprint}\0{newer_fp}\0{older_fp}\0{post.kind}"
                     f"\0{conv_fp}".encode())
            # Reused by a long-lived caller's next plan as is: it renders through the holder,
            # which always points at the current plan's _Pages (never keeping an old one).
            out = self.memo[parts] = Output(_index_path(post.path), h.hexdigest(),
                                            partial(self._render_post, post, newer, older))
        self.outputs.append(out)
        self.paths.add(out.path)

    def _conversation_fp(self, post: Post) -> str:
        view = self.pages.conversation(post)
        if view is None:
            return ""
        data = json.dumps(self.fingerprint.canon(view), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()

    def tag_pages(self) -> None:
        c = self.config
        counts: list[TagCount] = []
        for slug, (tag, posts) in self.site.tags().items():
            counts.append(TagCount(tag, len(posts)))
            alternates = self.view.feeds
            if c.feeds.atom:
                tag_feed = Alternate(
                    "application/atom+xml", f"{c.title}: #{tag.name} (Atom)",
                    c.url(f"tags/{slug}/feed.xml"),
                )  # fmt: skip
                alternates = (*alternates, tag_feed)
            self.paginate(
                posts,
                tag.url,
                f"tags/{slug}/",
                "tag.html",
                f"#{tag.name}",
                {"tag": tag},
                {
                    "description": f"Posts tagged #{tag.name} on {c.title}",
                    "alternates": alternates,
                },
            )
        counts.sort(key=lambda tc: (tc.tag.name.casefold(), tc.tag.slug))
        meta = self._meta("Tags", c.url("tags/"), description=f"All tags on {c.title}")
        self.add("tags/index.html", "tags.html", {"meta": meta, "tags": tuple(counts)})

    def archive(self) -> None:
        site, pages = self.site, self.pages  # (not self: see _Pages)

        def context() -> dict[str, Any]:
            groups: dict[int, list[Link]] = {}
            for post in site.posts:
                year = post.date.astimezone(site.config.tz).year
                groups.setdefault(year, []).append(Link(post.title, post.url, post.date))
            years = tuple(YearGroup(y, tuple(groups[y])) for y in sorted(groups, reverse=True))
            meta = pages.meta(
                "Archive", site.config.url("archive/"),
                description=f"Every post on {site.config.title}, by year",
            )  # fmt: skip
            return {"meta": meta, "years": years}

        # Every post's title, URL and date (all the page shows), one line each rather than
        # 10,000 Link objects through canon(); repr() quotes and escapes each string, so the
        # lines cannot run into each other (and cost a third of a json.dumps per post).
        fp = self.fingerprint
        memo = self.memo
        rows: list[str] = []
        for p in self.site.posts:
            row = memo.get(("archive", p.fingerprint)) if p.fingerprint else None
            if row is None:
                row = f"{p.title!r} {p.url!r} {p.date.isoformat()}"
                if p.fingerprint:
                    memo[("archive", p.fingerprint)] = row
            rows.append(row)
        key = json.dumps([
            RENDER_VERSION, fp.salt, "archive-2", fp.canon(self.config), fp.canon(self.view),
        ]) + "\n".join(rows)
        path = "archive/index.html"
        self.outputs.append(Output(path, hashlib.sha256(key.encode()).hexdigest(),
                                   self._lazy("archive.html", context)))
        self.paths.add(path)

    def aliases(self) -> None:
        for post in (*self.site.posts, *self.site.pages):
            for alias in post.aliases:
                if not _safe_relative(alias.strip("/")):
                    continue
                path = _index_path(alias)
                if path in self.paths:
                    continue  # never shadow a real page; the build reports the collision
                meta = self._meta(
                    post.title, post.url, description=_post_description(post, ""), noindex=True
                )
                self.add(path, "alias.html", {"meta": meta, "target": Link(post.title, post.url)})

    def plan(self) -> list[Output]:
        c = self.config
        self.paginate(self.site.posts, c.base_url, "", "index.html", "", {}, {})
        posts = self.site.posts
        for i, post in enumerate(posts):
            newer = posts[i - 1] if i > 0 else None
            older = posts[i + 1] if i + 1 < len(posts) else None
            self.post_page(post, newer, older)
        for page in self.site.pages:
            self.post_page(page, None, None)
        self.tag_pages()
        self.archive()
        meta = self._meta(
            "Page not found", c.url("404.html"),
            description="There is nothing at this address.", noindex=True,
        )  # fmt: skip
        self.add("404.html", "404.html", {"meta": meta})
        self.aliases()
        return self.outputs


def plan_pages(site: Site, env: jinja2.Environment, *, fingerprint_salt: str,
               memo: MutableMapping[tuple[object, ...], Any] | None = None,
               conversations: Conversations | None = None) -> list[Output]:
    """Every HTML page of the site as an Output (path, fingerprint, lazy render).

    `fingerprint_salt` stands for what all pages share and this function cannot see (the
    theme's files and the build's config hash). Rendering raises ThemeError naming the
    template file and line when a template is broken. `memo` (optional, kept by a
    long-lived builder between plans) remembers post pages by their inputs.
    `conversations` (the store's or the service's) gives each post page its
    `conversation`; None shows none.
    """
    return _Planner(site, env, fingerprint_salt, memo, conversations).plan()
