"""render.plan_pages: which pages exist, what their HTML says, and when fingerprints change."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fedipress.config import FeedConfig
from fedipress.generator.render import page_count, plain_text, plan_pages
from fedipress.generator.themes import make_environment
from fedipress.model import Site
from support.render import BASE, BODY, make_config, make_post, make_site, plan, render_all


class Head(HTMLParser):
    """Collects <link> and <meta> attributes, <title>, and every href."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.metas: dict[str, list[str]] = {}
        self.hrefs: list[str] = []
        self.title = ""
        self._in_title = False
        self.tags: list[str] = []
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "link":
            self.links.append(a)
        if tag == "meta":
            key = a.get("property") or a.get("name") or a.get("http-equiv")
            if key:
                self.metas.setdefault(key, []).append(a.get("content", ""))
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def link(self, rel: str, **attrs: str) -> list[str]:
        return [
            x["href"]
            for x in self.links
            if rel in x.get("rel", "").split() and all(x.get(k) == v for k, v in attrs.items())
        ]

    def meta(self, key: str) -> str:
        (value,) = self.metas[key]
        return value


def parse(html: str) -> Head:
    head = Head()
    head.feed(html)
    return head


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


@pytest.fixture
def pages(site: Site) -> dict[str, str]:
    return render_all(site)


# --- which pages -----------------------------------------------------------------------------


def test_planned_paths(pages: dict[str, str]) -> None:
    expected = {
        "index.html",
        "page/2/index.html",
        "page/3/index.html",
        *(f"posts/post-{i}/index.html" for i in range(1, 8)),
        "about/index.html",
        "tags/index.html",
        "tags/garden/index.html",
        "tags/garden/page/2/index.html",
        "tags/garden/page/3/index.html",
        "tags/code/index.html",
        "tags/code/page/2/index.html",
        "archive/index.html",
        "404.html",
        "2019/01/old-name/index.html",
        "about-me/index.html",
    }
    assert set(pages) == expected  # the alias posts/post-1/ collides with a real post: skipped


@pytest.mark.parametrize(
    ("items", "per_page", "pages"),
    [(0, 3, 1), (1, 3, 1), (3, 3, 1), (4, 3, 2), (7, 3, 3), (7, 0, 7)],
)
def test_page_count(items: int, per_page: int, pages: int) -> None:
    assert page_count(items, per_page) == pages


def test_pagination_math_and_links(pages: dict[str, str]) -> None:
    first, second, last = (
        pages["index.html"],
        pages["page/2/index.html"],
        pages["page/3/index.html"],
    )
    # 7 posts, 3 a page, newest first: 7 6 5 | 4 3 2 | 1
    assert re.findall(r'class="u-url" href="[^"]*/posts/(post-\d)/"', second) == [
        "post-4", "post-3", "post-2",
    ]  # fmt: skip
    assert re.findall(r'class="u-url" href="[^"]*/posts/(post-\d)/"', last) == ["post-1"]
    h1, h2, h3 = parse(first), parse(second), parse(last)
    assert h1.link("prev") == [] and h1.link("next") == [f"{BASE}page/2/"]
    assert h2.link("prev") == [BASE] and h2.link("next") == [f"{BASE}page/3/"]
    assert h3.link("prev") == [f"{BASE}page/2/"] and h3.link("next") == []
    assert "Page 2 of 3" in second
    assert h2.link("canonical") == [f"{BASE}page/2/"]
    assert h2.title == "Posts, page 2 — Alice's Notebook"


def test_single_page_home_has_no_pagination(tmp_path: Path) -> None:
    pages = render_all(make_site(tmp_path, n_posts=2))
    assert "page/2/index.html" not in pages
    assert 'class="pagination"' not in pages["index.html"]


def test_empty_site_still_has_home_archive_tags_and_404(tmp_path: Path) -> None:
    site = make_site(tmp_path, n_posts=0)
    pages = render_all(dataclasses.replace(site, pages=()))
    assert set(pages) == {"index.html", "tags/index.html", "archive/index.html", "404.html"}
    assert "Nothing published yet." in pages["index.html"]


# --- every page's head --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["index.html", "posts/post-3/index.html", "tags/code/index.html", "archive/index.html",
             "tags/index.html", "about/index.html", "404.html"],
)  # fmt: skip
def test_every_page_has_the_common_head(pages: dict[str, str], path: str) -> None:
    html = pages[path]
    head = parse(html)
    assert html.startswith("<!doctype html>\n")
    assert head.lang == "en"
    assert '<meta charset="utf-8">' in html
    assert head.meta("viewport") == "width=device-width, initial-scale=1"
    assert head.title.endswith("Alice's Notebook")
    assert head.meta("description")
    assert len(head.link("canonical")) == 1 and head.link("canonical")[0].startswith(BASE)
    assert head.meta("og:url") == head.link("canonical")[0]
    assert head.meta("og:title") and head.meta("og:description") and head.meta("og:image")
    assert head.meta("twitter:card") in {"summary", "summary_large_image"}
    assert head.link("me") == ["https://code.example/alice", "https://photos.example/@alice"]
    assert head.link("alternate", type="application/atom+xml")[0] == f"{BASE}feed.xml"
    assert head.link("alternate", type="application/rss+xml") == [f"{BASE}rss.xml"]
    assert head.link("alternate", type="application/feed+json") == [f"{BASE}feed.json"]
    assert head.link("stylesheet")[0].startswith(f"{BASE}theme/style.css?v=")
    assert head.link("stylesheet")[1].startswith(f"{BASE}theme/highlight.css")
    for tag in ("header", "nav", "main", "footer"):
        assert tag in head.tags
    assert 'class="skip-link" href="#main"' in html and '<main id="main"' in html
    # The fediverse profile with copy button, follow form and its no-JS hint.
    assert '<code class="handle">@alice<wbr>@alice.example</code>' in html
    assert 'data-copy="@alice@alice.example"' in html
    assert 'data-acct="alice@alice.example"' in html
    assert '<input type="hidden" name="uri" value="acct:alice@alice.example">' in html
    assert '"/authorize_interaction"' in html
    assert "Search for <strong>@alice@alice.example</strong>" in html
    # Nothing from elsewhere: every script is inline, every stylesheet is ours.
    assert "<script src" not in html
    assert all(h.startswith(BASE) for h in head.link("stylesheet"))


def test_feeds_follow_config(tmp_path: Path) -> None:
    site = make_site(tmp_path, feeds=FeedConfig(atom=True, rss=False, json=False))
    head = parse(render_all(site)["index.html"])
    assert head.link("alternate", type="application/rss+xml") == []
    assert head.link("alternate", type="application/feed+json") == []
    assert head.link("alternate", type="application/atom+xml") == [f"{BASE}feed.xml"]


def test_website_pages_have_no_article_meta(pages: dict[str, str]) -> None:
    head = parse(pages["index.html"])
    assert head.meta("og:type") == "website"
    assert "article:published_time" not in head.metas
    assert "fediverse:creator" not in head.metas
    assert head.link("alternate", type="application/activity+json") == []
    assert head.title == "Alice's Notebook"
    assert head.meta("og:image") == f"{BASE}images/avatar.svg"  # avatar stands in


# --- post pages ---------------------------------------------------------------------------------


def test_post_page(pages: dict[str, str]) -> None:
    html = pages["posts/post-7/index.html"]
    head = parse(html)
    assert head.title == "Post number 7 about <tomatoes> & friends — Alice's Notebook"
    assert (
        '<h1 class="post-title p-name">Post number 7 about &lt;tomatoes&gt; &amp; friends</h1>'
        in html
    )
    assert head.meta("og:type") == "article"
    assert head.meta("og:title") == "Post number 7 about <tomatoes> & friends"
    assert head.meta("og:image") == f"{BASE}posts/post-7/cover.svg"
    assert head.meta("og:image:alt") == "Three tomatoes"
    assert head.meta("twitter:card") == "summary_large_image"
    assert head.meta("description") == "Summary of post 7: tomatoes & more."
    # 2026-07-18 22:30 UTC is already the 19th in Berlin (CEST, +02:00).
    assert head.meta("article:published_time") == "2026-07-19T00:30:00+02:00"
    assert head.meta("article:modified_time") == "2026-08-01T10:00:00+02:00"
    assert (
        '<time class="dt-published" datetime="2026-07-19T00:30:00+02:00">19 July 2026</time>'
        in html
    )
    assert "Updated <time" in html and "1 August 2026" in html
    assert "3 min read" in html
    assert head.metas["article:tag"] == ["garden", "Code"]
    assert f'href="{BASE}tags/code/" rel="tag">#Code</a>' in html
    assert head.link("alternate", type="application/activity+json") == [
        f"{BASE}posts/post-7/object.json"
    ]
    assert head.meta("fediverse:creator") == "@alice@alice.example"
    assert '<img class="u-photo" src="https://alice.example/posts/post-7/cover.svg"' in html
    assert 'width="1200" height="630"' in html
    assert BODY in html  # the body is trusted HTML from markup.py, inserted as is
    assert "{% block" not in html and "block comments" not in html
    assert 'class="replies"' in html  # the default comments block


def test_prev_next_links(pages: dict[str, str]) -> None:
    newest, middle, oldest = (pages[f"posts/post-{i}/index.html"] for i in (7, 4, 1))
    assert 'class="post-nav-newer"' not in newest
    assert f'class="post-nav-older" href="{BASE}posts/post-6/" rel="prev"' in newest
    assert f'class="post-nav-older" href="{BASE}posts/post-3/"' in middle
    assert f'class="post-nav-newer" href="{BASE}posts/post-5/"' in middle
    assert 'class="post-nav-older"' not in oldest


def test_unfederated_page_has_no_activity_json(pages: dict[str, str]) -> None:
    head = parse(pages["about/index.html"])
    assert head.link("alternate", type="application/activity+json") == []
    assert head.meta("og:type") == "website"
    assert 'class="post-nav"' not in pages["about/index.html"]
    assert 'aria-current="page">About</a>' in pages["about/index.html"]


def test_toc_only_for_long_posts(tmp_path: Path) -> None:
    short = make_post(BASE, 1, word_count=100)
    long = make_post(BASE, 2, word_count=1500)
    forced = make_post(BASE, 3, word_count=50, extra={"toc": True})
    site = Site(make_config(tmp_path), (forced, long, short), ())
    pages = render_all(site)
    assert 'class="toc"' not in pages["posts/post-1/index.html"]
    assert 'class="toc"' in pages["posts/post-2/index.html"]
    assert 'class="toc"' in pages["posts/post-3/index.html"]


def test_content_warning_hides_body(tmp_path: Path) -> None:
    post = make_post(BASE, 1, content_warning="spoilers <b>")
    pages = render_all(Site(make_config(tmp_path), (post,), ()))
    assert (
        '<details class="cw">\n<summary>Content warning: spoilers &lt;b&gt;</summary>'
        in pages["posts/post-1/index.html"]
    )
    assert "Content warning: spoilers" in pages["index.html"]


def test_reply_box_address_breaks_after_each_slash_only(pages: dict[str, str]) -> None:
    html = pages["posts/post-7/index.html"]
    assert ('<code class="post-address">https://<wbr>' not in html)  # never inside "://"
    assert ('<code class="post-address">https://alice.example/<wbr>posts/<wbr>post-7/<wbr>'
            '</code>') in html
    assert f'data-copy="{BASE}posts/post-7/"' in html  # what the Copy button copies


def test_reply_box_address_is_escaped(tmp_path: Path) -> None:
    post = make_post(BASE, 1, url=f"{BASE}posts/a&b<c/", path="posts/a-b-c/")
    html = render_all(Site(make_config(tmp_path), (post,), ()))["posts/a-b-c/index.html"]
    assert "https://alice.example/<wbr>posts/<wbr>a&amp;b&lt;c/<wbr>" in html


# --- tags, archive, 404, aliases -------------------------------------------------------------


def test_tag_pages(pages: dict[str, str]) -> None:
    code = pages["tags/code/index.html"]
    head = parse(code)
    assert head.link("canonical") == [f"{BASE}tags/code/"]
    assert f"{BASE}tags/code/feed.xml" in head.link("alternate", type="application/atom+xml")
    assert "<h1>#Code</h1>" in code and "4 posts · page 1 of 2" in code
    assert re.findall(r'class="u-url" href="[^"]*/posts/(post-\d)/"', code) == [
        "post-7", "post-5", "post-3",
    ]  # fmt: skip
    assert parse(pages["tags/code/page/2/index.html"]).link("prev") == [f"{BASE}tags/code/"]
    # Every entry of a tag's page has that tag: its chip is left out there, the others stay.
    chips = re.compile(r'class="p-category" href="[^"]*" rel="tag">#(\w+)<')
    assert chips.findall(code) == ["garden"] * 3
    assert chips.findall(pages["tags/garden/index.html"]) == ["Code", "Code"]  # post-7, post-5
    assert chips.findall(pages["index.html"]) == ["garden", "Code", "garden", "garden", "Code"]
    assert chips.findall(pages["posts/post-7/index.html"]) == ["garden", "Code"]
    # A post whose only tag is the page's has no empty list left behind (post-4 and post-2
    # on this page; post-3 has #Code too).
    assert pages["tags/garden/page/2/index.html"].count('<ul class="tag-list"') == 1
    index = pages["tags/index.html"]
    assert re.findall(r'rel="tag">#(\w+)</a> <span class="count">(\d+) posts?', index) == [
        ("Code", "4"), ("garden", "7"),
    ]  # fmt: skip


def test_archive_groups_by_year_in_site_timezone(tmp_path: Path) -> None:
    # 2025-12-31 23:30 UTC is already 2026 in Berlin.
    edge = make_post(BASE, 1, date=datetime(2025, 12, 31, 23, 30, tzinfo=UTC))
    old = make_post(BASE, 2, date=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    html = render_all(Site(make_config(tmp_path), (edge, old), ()))["archive/index.html"]
    assert re.findall(r'<h2 id="year-(\d+)">', html) == ["2026", "2024"]
    assert '<time datetime="2026-01-01T00:30:00+01:00">1 January 2026</time>' in html


def test_404_page(pages: dict[str, str]) -> None:
    html = pages["404.html"]
    head = parse(html)
    assert head.meta("robots") == "noindex"
    assert "Page not found" in head.title
    assert all(h.startswith(("https://", "#")) for h in head.hrefs)  # works at any depth


def test_alias_pages(pages: dict[str, str]) -> None:
    html = pages["2019/01/old-name/index.html"]
    head = parse(html)
    target = f"{BASE}posts/post-7/"
    assert head.meta("refresh") == f"0; url={target}"
    assert head.link("canonical") == [target]
    assert head.meta("robots") == "noindex"
    assert f'<a href="{target}">' in html
    assert f'<a href="{BASE}about/">About</a>' in pages["about-me/index.html"]


def test_alias_never_overwrites_a_real_page(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    outputs = plan_pages(site, make_environment(site.config), fingerprint_salt="s")
    paths = [o.path for o in outputs]
    assert len(paths) == len(set(paths))
    by_path = {o.path: o for o in outputs}
    assert b"post-nav" in by_path["posts/post-1/index.html"].render()


def test_unsafe_alias_is_skipped(tmp_path: Path) -> None:
    post = make_post(BASE, 1, aliases=("../escape/", "ok/"))
    paths = set(render_all(Site(make_config(tmp_path), (post,), ())))
    assert "ok/index.html" in paths and not any(".." in p for p in paths)


# --- fingerprints and determinism -------------------------------------------------------------


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    a = plan(make_site(tmp_path))
    b = plan(make_site(tmp_path))
    assert {p: o.fingerprint for p, o in a.items()} == {p: o.fingerprint for p, o in b.items()}
    assert {p: o.render() for p, o in a.items()} == {p: o.render() for p, o in b.items()}


def _fingerprints(site: Site, salt: str = "salt") -> dict[str, str]:
    return {p: o.fingerprint for p, o in plan(site, salt).items()}


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def test_fingerprint_salt_changes_everything(site: Site) -> None:
    assert _changed(_fingerprints(site, "a"), _fingerprints(site, "b")) == set(_fingerprints(site))


def test_editing_a_post_body_changes_only_pages_showing_it(site: Site) -> None:
    posts = list(site.posts)
    posts[3] = dataclasses.replace(posts[3], html="<p>new body</p>", content_hash="new")  # post-4
    changed = _changed(
        _fingerprints(site), _fingerprints(dataclasses.replace(site, posts=tuple(posts)))
    )
    # The post itself and the list pages that hold it (they carry the whole Post), not its
    # neighbours, whose links show only its title and URL.
    assert changed == {
        "posts/post-4/index.html",
        "page/2/index.html",
        "tags/garden/page/2/index.html",
    }


def test_retitling_a_post_changes_its_neighbours(site: Site) -> None:
    posts = list(site.posts)
    posts[3] = dataclasses.replace(posts[3], title="Renamed")  # post-4
    changed = _changed(
        _fingerprints(site), _fingerprints(dataclasses.replace(site, posts=tuple(posts)))
    )
    assert {"posts/post-3/index.html", "posts/post-5/index.html", "archive/index.html"} <= changed
    assert "posts/post-6/index.html" not in changed


def test_fingerprint_changes_exactly_when_bytes_change(site: Site) -> None:
    """Across a set of edits, a page whose bytes changed always has a new fingerprint."""
    posts = list(site.posts)
    edits = [
        dataclasses.replace(
            site, posts=(dataclasses.replace(posts[0], reading_minutes=9), *posts[1:])
        ),
        dataclasses.replace(site, pages=(dataclasses.replace(site.pages[0], title="About me"),)),
        dataclasses.replace(site, config=dataclasses.replace(site.config, title="Renamed blog")),
        dataclasses.replace(site, posts=tuple(posts[1:])),
    ]
    base = plan(site)
    for edited in edits:
        new = plan(edited)
        for path, out in new.items():
            old = base.get(path)
            if old is None:
                continue
            if old.render() != out.render():
                assert old.fingerprint != out.fingerprint, path


def test_plain_text() -> None:
    assert plain_text("<p>A &amp; <em>B</em></p>\n<p>C</p>") == "A & B C"
    long = "<p>" + "word " * 100 + "</p>"
    cut = plain_text(long, 30)
    assert cut.endswith("…") and len(cut) <= 30 and "  " not in cut
