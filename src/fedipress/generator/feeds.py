"""Feeds and crawler files: Atom, RSS 2.0, JSON Feed 1.1, per-tag feeds, sitemap.xml, robots.txt.

PURE: a function from the Site to lazily rendered Outputs. No files, clock or globals; the
feed-level "updated" time is the newest entry's, so the same site always gives the same bytes.

XML is written by hand with one escaping function rather than xml.etree, because etree's
namespace prefixes are process-global state (register_namespace) and its output order is an
implementation detail; `_text` also drops characters XML 1.0 forbids, which would otherwise
make a whole feed unparseable because one post contains a stray control character.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin

from ..config import SiteConfig
from ..model import Output, Post, Site, Tag

__all__ = [
    "Contents",
    "absolutize_html",
    "plan_feeds",
    "render_atom",
    "render_json_feed",
    "render_robots",
    "render_rss",
    "render_sitemap",
    "rfc3339",
    "rfc822",
]

_FEED_FORMAT_VERSION = "3"  # bump when this module's output changes for the same input

# Characters allowed by XML 1.0 (§2.2). Anything else is dropped, never escaped: XML 1.0 has no
# way to represent U+0000..U+001F (other than tab/newline/return) even as a character reference.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# href/src/poster attribute values in post HTML; relative ones are made absolute because feed
# readers resolve them against the feed's URL (or not at all), not the post's.
_URL_ATTR = re.compile(
    r"""(\s(?:href|src|poster)\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL
)

_URL_NAMES = ("href", "src", "poster")  # _URL_ATTR's attribute names, lower case


# --- small helpers ----------------------------------------------------------------------------


# Anything _text would change: most titles, URLs and dates have none of it, and one search
# costs less than the substitution and four replaces.
_XML_SPECIAL = re.compile(
    '[&<>"]|[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]'
)


def _text(value: str) -> str:
    """Escape text for XML element content or a double-quoted attribute value."""
    if _XML_SPECIAL.search(value) is None:
        return value
    value = _INVALID_XML.sub("", value)
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def _el(name: str, text: str, **attrs: str) -> str:
    return f"<{name}{_attrs(attrs)}>{_text(text)}</{name}>"


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{_text(v)}"' for k, v in attrs.items())


def rfc3339(moment: datetime) -> str:
    """RFC 3339 timestamp with its offset (Atom, JSON Feed, sitemap)."""
    return moment.replace(microsecond=0).isoformat()


def rfc822(moment: datetime) -> str:
    """RFC 822 / RFC 2822 date (RSS 2.0), in the post's own offset."""
    return format_datetime(moment.replace(microsecond=0))


def _updated(post: Post) -> datetime:
    return post.updated if post.updated is not None and post.updated > post.date else post.date


def _newest(posts: Iterable[Post]) -> datetime | None:
    times = [_updated(p) for p in posts]
    return max(times) if times else None


# The Unix epoch stands in for "updated" of a site with no posts: a fixed value keeps the output
# deterministic, where the current time would not.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def absolutize_html(html: str, base: str) -> str:
    """Resolve relative href/src/poster URLs in `html` (fragments too) against `base` (the
    post's URL)."""

    def fix(match: re.Match[str]) -> str:
        value = match.group(3)
        # A fragment ("#fn:1", a heading's anchor) is made absolute too: a reader resolves
        # it against the feed, which does not hold that anchor.
        if not value or value.startswith(("data:", "mailto:", "tel:")) or "://" in value:
            return match.group(0)
        # Values are HTML-escaped in the source ("&amp;"); urljoin leaves escapes alone.
        try:
            joined = urljoin(base, value)
        except ValueError:  # a broken IPv6 host ("//[::1"): left as the author wrote it
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{joined}{match.group(2)}"

    if not html.isascii():
        # Case-insensitive matching folds some non-ASCII letters onto these names (U+017F
        # matches "s") and lower() can change the length of non-ASCII text: the plain scan.
        return _URL_ATTR.sub(fix, html)
    # The same matches as _URL_ATTR.sub, found faster: every match is a whitespace character
    # followed by one of the names, so only the places where a name occurs (str.find over
    # the lowered text) are tried, left to right, each no earlier than the last match's end.
    # The regex scan tried its alternation at every whitespace of the text (~80 us a post).
    lower = html.lower()
    starts: list[int] = []
    for name in _URL_NAMES:
        i = lower.find(name, 1)
        while i >= 0:
            starts.append(i - 1)
            i = lower.find(name, i + 1)
    if not starts:
        return html
    starts.sort()
    out: list[str] = []
    pos = 0
    match = _URL_ATTR.match
    for start in starts:
        if start < pos:
            continue
        found = match(html, start)
        if found is not None:
            out.append(html[pos:start])
            out.append(fix(found))
            pos = found.end()
    if not out:
        return html
    out.append(html[pos:])
    return "".join(out)


def _warning_html(post: Post) -> str:
    """The post's content warning as a first paragraph ("" without one): feed readers have no
    field for it, so it goes where every reader shows it, before the content."""
    if not post.content_warning:
        return ""
    return f"<p>Content warning: {html.escape(post.content_warning, quote=False)}</p>\n"


def _summary(post: Post) -> str | None:
    """The plain-text summary, led by the content warning when there is one (readers that
    list summaries show the warning before anything else)."""
    if not post.content_warning:
        return post.summary
    warning = f"Content warning: {post.content_warning}"
    return f"{warning}\n\n{post.summary}" if post.summary else warning


def _content(post: Post, config: SiteConfig) -> str:
    body = post.html if config.feeds.full_content else post.summary_html
    return _warning_html(post) + absolutize_html(body, post.url)


class Contents:
    """Each post's feed content (_content) and its XML-escaped form, made once for all the
    feeds rendered in one process: a post shows in the Atom, RSS and JSON feeds and in its
    tags' feeds, and making its content (absolutize_html over the whole post, then _text)
    is most of a feed's rendering time (~0.2 ms per post at 9 KB of HTML)."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        # id(post) -> (post, value): the post is kept so its id stays its own.
        self._html: dict[int, tuple[Post, str]] = {}
        self._xml: dict[int, tuple[Post, str]] = {}
        self._atom: dict[int, tuple[Post, str]] = {}
        self._rss: dict[int, tuple[Post, str]] = {}

    def html(self, post: Post) -> str:
        hit = self._html.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        value = _content(post, self.config)
        self._html[id(post)] = (post, value)
        return value

    def xml(self, post: Post) -> str:
        """html(post) escaped for XML element content (_text)."""
        hit = self._xml.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        value = _text(self.html(post))
        self._xml[id(post)] = (post, value)
        return value

    def atom_entry(self, post: Post) -> str:
        """The post's `<entry>` lines: the same in the site's feed and each of its tags'."""
        hit = self._atom.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        value = _atom_entry(self.config, post, self)
        self._atom[id(post)] = (post, value)
        return value

    def rss_item(self, post: Post) -> str:
        """The post's `<item>` lines, likewise shared by the feeds it is in."""
        hit = self._rss.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        value = _rss_item(self.config, post, self)
        self._rss[id(post)] = (post, value)
        return value


def _contents(config: SiteConfig, contents: Contents | None) -> Contents:
    return contents if contents is not None and contents.config is config else Contents(config)


def _stand_in(part: object) -> object:
    """A post as its fingerprint (content.py's hash of every field): repr of its HTML costs
    far more; posts without one (made by hand) are represented by themselves."""
    if isinstance(part, Post):
        return ("post", part.fingerprint) if part.fingerprint else part
    if isinstance(part, tuple | list) and part and all(isinstance(p, Post) for p in part):
        return tuple(_stand_in(p) for p in part)
    return part


def _fingerprint(salt: str, kind: str, *parts: object) -> str:
    digest = hashlib.sha256()
    for part in (_FEED_FORMAT_VERSION, salt, kind, *parts):
        # repr of frozen dataclasses, tuples and datetimes is stable and covers every field the
        # document could use, so a fingerprint changes whenever the bytes could.
        digest.update(repr(_stand_in(part)).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _output(path: str, fingerprint: str, make: Callable[[], str]) -> Output:
    return Output(path=path, fingerprint=fingerprint, render=lambda: make().encode("utf-8"))


# --- Atom 1.0 (RFC 4287) ------------------------------------------------------------------------


def render_atom(
    config: SiteConfig,
    posts: Sequence[Post],
    *,
    self_url: str,
    title: str,
    alternate_url: str,
    tag: Tag | None = None,
    contents: Contents | None = None,
) -> str:
    """An Atom feed of `posts` (already limited and newest first). `contents` may be shared
    between the feeds of one build (see Contents)."""
    contents = _contents(config, contents)
    updated = _newest(posts) or _EPOCH
    author = config.author
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{_text(config.language)}">',
        _el("id", self_url),
        _el("title", title),
    ]
    if config.description and tag is None:
        out.append(_el("subtitle", config.description))
    out += [
        _el("updated", rfc3339(updated)),
        f'<link rel="self" type="application/atom+xml" href="{_text(self_url)}"/>',
        f'<link rel="alternate" type="text/html" href="{_text(alternate_url)}"/>',
        "<author>" + _el("name", author.name) + _el("uri", config.base_url)
        + (_el("email", author.email) if author.email else "") + "</author>",
        _el("generator", "fedipress", uri="https://github.com/fedipress/fedipress"),
    ]
    if author.avatar:
        out.append(_el("icon", urljoin(config.base_url, author.avatar)))
    out += map(contents.atom_entry, posts)
    out.append("</feed>")
    return "\n".join(out) + "\n"


def _atom_entry(config: SiteConfig, post: Post, contents: Contents) -> str:
    """One post's Atom `<entry>`, its lines joined by newlines like the rest of the feed."""
    out = [f'<entry xml:lang="{_text(post.lang or config.language)}">']
    # The post URL is the id: stable across rebuilds and what readers de-duplicate on.
    out.append(_el("id", post.url))
    out.append(_el("title", post.title))
    out.append(f'<link rel="alternate" type="text/html" href="{_text(post.url)}"/>')
    out.append(_el("published", rfc3339(post.date)))
    out.append(_el("updated", rfc3339(_updated(post))))
    for t in post.tags:
        out.append(f'<category term="{_text(t.name)}" scheme="{_text(config.base_url)}tags/"'
                   f' label="{_text(t.name)}"/>')
    summary = _summary(post)
    if summary:
        out.append(_el("summary", summary))
    if post.image is not None:
        media = {"type": post.image.media_type} if post.image.media_type else {}
        out.append(f'<link rel="enclosure" href="{_text(post.image.url)}"{_attrs(media)}/>')
    out.append(f'<content type="html">{contents.xml(post)}</content>')  # _el, escaped once
    out.append("</entry>")
    return "\n".join(out)


# --- RSS 2.0 ----------------------------------------------------------------------------------


def render_rss(
    config: SiteConfig,
    posts: Sequence[Post],
    *,
    self_url: str,
    title: str,
    link: str,
    description: str,
    contents: Contents | None = None,
) -> str:
    """An RSS 2.0 channel with atom:link rel=self and content:encoded (full HTML)."""
    contents = _contents(config, contents)
    updated = _newest(posts) or _EPOCH
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<channel>",
        _el("title", title),
        _el("link", link),
        # RSS requires a description; an empty one is valid but some readers show the title.
        _el("description", description or title),
        f'<atom:link href="{_text(self_url)}" rel="self" type="application/rss+xml"/>',
        _el("language", config.language),
        _el("lastBuildDate", rfc822(updated)),
        _el("generator", "fedipress"),
    ]
    out += map(contents.rss_item, posts)
    out += ["</channel>", "</rss>"]
    return "\n".join(out) + "\n"


def _rss_item(config: SiteConfig, post: Post, contents: Contents) -> str:
    """One post's RSS `<item>`, its lines joined by newlines like the rest of the channel."""
    out = ["<item>"]
    out.append(_el("title", post.title))
    out.append(_el("link", post.url))
    out.append(_el("guid", post.url, isPermaLink="true"))
    out.append(_el("pubDate", rfc822(post.date)))
    out.append(_el("dc:creator", config.author.name))
    for t in post.tags:
        out.append(_el("category", t.name))
    # description is the teaser (escaped HTML is what RSS readers expect there).
    teaser = post.summary or absolutize_html(post.summary_html, post.url)
    if post.content_warning:
        # HTML from here on: the plain summary is escaped so it stays text.
        shown = html.escape(post.summary, quote=False) if post.summary else teaser
        teaser = _warning_html(post) + shown
    out.append(_el("description", teaser))
    if config.feeds.full_content:
        out.append(f"<content:encoded>{contents.xml(post)}</content:encoded>")  # _el
    out.append("</item>")
    return "\n".join(out)


# --- JSON Feed 1.1 ----------------------------------------------------------------------------


def render_json_feed(config: SiteConfig, posts: Sequence[Post], *, self_url: str,
                     contents: Contents | None = None) -> str:
    contents = _contents(config, contents)
    author: dict[str, str] = {"name": config.author.name, "url": config.base_url}
    if config.author.avatar:
        author["avatar"] = urljoin(config.base_url, config.author.avatar)
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": config.title,
        "home_page_url": config.base_url,
        "feed_url": self_url,
        "language": config.language,
        "authors": [author],
    }
    if config.description:
        feed["description"] = config.description
    if config.author.avatar:
        feed["icon"] = author["avatar"]
    items = []
    for post in posts:
        item: dict[str, object] = {
            "id": post.url,
            "url": post.url,
            "title": post.title,
            "content_html": contents.html(post),
            "date_published": rfc3339(post.date),
            "date_modified": rfc3339(_updated(post)),
            "language": post.lang or config.language,
        }
        summary = _summary(post)
        if summary:
            item["summary"] = summary
        if post.tags:
            item["tags"] = [t.name for t in post.tags]
        if post.image is not None:
            item["image"] = post.image.url
        items.append(item)
    feed["items"] = items
    # ensure_ascii=False keeps the file readable; sort_keys=False keeps the spec's order.
    return json.dumps(feed, ensure_ascii=False, indent=2) + "\n"


# --- sitemap and robots ----------------------------------------------------------------------


def _sitemap_entries(site: Site) -> list[tuple[str, datetime | None]]:
    """(URL, lastmod) of every sitemap entry, duplicates included: what the sitemap shows,
    and so what its fingerprint hashes."""
    entries: list[tuple[str, datetime | None]] = [(site.config.base_url, _newest(site.posts))]
    entries += [(p.url, _updated(p)) for p in site.posts]
    # An undated page's date is its file's time, which a fresh checkout resets: no lastmod
    # (it is optional) rather than one that changes with every clone.
    entries += [(p.url, p.updated if not p.dated else _updated(p)) for p in site.pages]
    entries += [(tag.url, _newest(posts)) for tag, posts in site.tags().values()]
    return entries


def render_sitemap(site: Site) -> str:
    """sitemaps.org 0.9: home, posts, pages and tag pages with lastmod."""
    entries = _sitemap_entries(site)
    seen: set[str] = set()
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for url, lastmod in entries:
        if url in seen:
            continue
        seen.add(url)
        out.append("<url>" + _el("loc", url)
                   + (_el("lastmod", rfc3339(lastmod)) if lastmod else "") + "</url>")
    out.append("</urlset>")
    return "\n".join(out) + "\n"


def render_robots(config: SiteConfig) -> str:
    return f"User-agent: *\nAllow: /\n\nSitemap: {config.url('sitemap.xml')}\n"


# --- the plan ---------------------------------------------------------------------------------


def plan_feeds(site: Site, *, fingerprint_salt: str) -> list[Output]:
    """Every feed and crawler file of `site`, rendered lazily, with fingerprints."""
    config = site.config
    feeds = config.feeds
    limit = max(0, feeds.items)
    recent = site.posts[:limit]
    salt = fingerprint_salt
    outputs: list[Output] = []
    contents = Contents(config)  # shared by this plan's feeds when they render

    def add(path: str, kind: str, parts: tuple[object, ...], make: Callable[[], str]) -> None:
        outputs.append(_output(path, _fingerprint(salt, kind, path, *parts), make))

    if feeds.atom:
        add("feed.xml", "atom", (recent,), lambda: render_atom(
            config, recent, self_url=config.url("feed.xml"), title=config.title,
            alternate_url=config.base_url, contents=contents))
    if feeds.rss:
        add("rss.xml", "rss", (recent,), lambda: render_rss(
            config, recent, self_url=config.url("rss.xml"), title=config.title,
            link=config.base_url, description=config.description, contents=contents))
    if feeds.json:
        add("feed.json", "json", (recent,), lambda: render_json_feed(
            config, recent, self_url=config.url("feed.json"), contents=contents))

    for slug, (tag, posts) in site.tags().items():
        tagged = posts[:limit]
        title = f"{config.title}: #{tag.name}"
        base = f"tags/{slug}/"
        if feeds.atom:
            add(base + "feed.xml", "atom-tag", (tag, tagged),
                _tag_atom(config, tagged, tag, title, config.url(base + "feed.xml"), contents))
        if feeds.rss:
            add(base + "rss.xml", "rss-tag", (tag, tagged),
                _tag_rss(config, tagged, tag, title, config.url(base + "rss.xml"), contents))

    # The sitemap depends only on URLs and dates, so fingerprint just those: editing a post's
    # body then leaves sitemap.xml alone. Exactly the (URL, lastmod) pairs it shows, as text
    # (repr() of 35,000 datetimes at 10,000 posts cost ~0.03 s; isoformat is a third of it).
    stamps = "\n".join(f"{url!r} {lastmod.isoformat() if lastmod else ''}"
                        for url, lastmod in _sitemap_entries(site))
    add("sitemap.xml", "sitemap-2", (config.base_url, stamps), lambda: render_sitemap(site))
    add("robots.txt", "robots", (config.base_url,), lambda: render_robots(config))
    return outputs


def _tag_atom(
    config: SiteConfig, posts: Sequence[Post], tag: Tag, title: str, self_url: str,
    contents: Contents,
) -> Callable[[], str]:
    # A factory, so each lambda binds its own tag (a loop variable would be late-bound).
    return lambda: render_atom(
        config, posts, self_url=self_url, title=title, alternate_url=tag.url, tag=tag,
        contents=contents)


def _tag_rss(
    config: SiteConfig, posts: Sequence[Post], tag: Tag, title: str, self_url: str,
    contents: Contents,
) -> Callable[[], str]:
    return lambda: render_rss(
        config, posts, self_url=self_url, title=title, link=tag.url,
        description=f"Posts tagged #{tag.name} on {config.title}", contents=contents)
