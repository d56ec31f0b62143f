"""Feeds: parsed back with xml.etree / json and checked against what each spec requires."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.config import FeedConfig
from fedipress.generator.feeds import (
    Contents,
    absolutize_html,
    plan_feeds,
    render_atom,
    render_json_feed,
    render_rss,
    rfc822,
    rfc3339,
)
from fedipress.model import Post, Site, Tag
from support.feeds import BASE, CET, by_path, make_config, make_site, post

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def render(site: Site, path: str) -> bytes:
    return by_path(plan_feeds(site, fingerprint_salt="s"))[path].render()


def test_plan_lists_every_file() -> None:
    paths = set(by_path(plan_feeds(make_site(), fingerprint_salt="s")))
    assert paths == {
        "feed.xml", "rss.xml", "feed.json", "sitemap.xml", "robots.txt",
        "tags/garden/feed.xml", "tags/garden/rss.xml", "tags/code/feed.xml", "tags/code/rss.xml",
    }


def test_toggles_turn_formats_off() -> None:
    site = make_site(feeds=FeedConfig(atom=False, rss=True, json=False))
    paths = set(by_path(plan_feeds(site, fingerprint_salt="s")))
    assert "feed.xml" not in paths and "feed.json" not in paths
    assert "tags/garden/feed.xml" not in paths
    assert {"rss.xml", "tags/garden/rss.xml", "sitemap.xml"} <= paths


def test_atom_has_required_elements() -> None:
    root = ET.fromstring(render(make_site(), "feed.xml"))
    assert root.tag == f"{ATOM}feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert root.findtext(f"{ATOM}id") == BASE + "feed.xml"
    assert root.findtext(f"{ATOM}title") == "Alice's <Notebook> & more"
    # Feed-level updated is the newest entry's date, never the clock.
    assert root.findtext(f"{ATOM}updated") == "2026-10-03T18:30:00+02:00"
    assert root.find(f"{ATOM}author/{ATOM}name").text == "Alice Example"  # type: ignore[union-attr]
    self_links = [e for e in root.findall(f"{ATOM}link") if e.get("rel") == "self"]
    assert [e.get("href") for e in self_links] == [BASE + "feed.xml"]
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        BASE + "posts/p2/", BASE + "posts/p1/", BASE + "posts/p0/"]
    first = entries[0]
    assert first.findtext(f"{ATOM}title") == "Title p2"
    assert first.findtext(f"{ATOM}updated") == "2026-10-03T18:30:00+02:00"
    assert first.find(f"{ATOM}link").get("href") == BASE + "posts/p2/"  # type: ignore[union-attr]
    assert [c.get("term") for c in first.findall(f"{ATOM}category")] == ["Garden", "Code"]
    content = first.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    # Full content with absolute URLs, fragments too (a reader would resolve "#fn" against
    # the feed); absolute links untouched.
    assert f'src="{BASE}posts/p2/pic.png"' in (content.text or "")
    assert f'href="{BASE}about/"' in (content.text or "")
    assert f'href="{BASE}posts/p2/#fn"' in (content.text or "")
    assert 'href="#' not in (content.text or "")
    assert 'href="https://other.example/x"' in (content.text or "")


def test_entry_updated_uses_edit_time() -> None:
    site = make_site(1)
    edited = replace(site.posts[0], updated=datetime(2026, 11, 5, 9, 0, tzinfo=UTC))
    site = replace(site, posts=(edited,))
    root = ET.fromstring(render(site, "feed.xml"))
    assert root.findtext(f"{ATOM}updated") == "2026-11-05T09:00:00+00:00"
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}published") == "2026-10-01T18:30:00+02:00"
    assert entry.findtext(f"{ATOM}updated") == "2026-11-05T09:00:00+00:00"


def test_rss_has_required_elements() -> None:
    root = ET.fromstring(render(make_site(), "rss.xml"))
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "Alice's <Notebook> & more"
    assert channel.findtext("link") == BASE
    assert channel.findtext("description") == "Notes on gardens"
    self_link = channel.find(f"{ATOM}link")
    assert self_link is not None and self_link.get("rel") == "self"
    assert self_link.get("href") == BASE + "rss.xml"
    items = channel.findall("item")
    assert len(items) == 3
    guid = items[0].find("guid")
    assert guid is not None and guid.get("isPermaLink") == "true"
    assert guid.text == BASE + "posts/p2/"
    pub = parsedate_to_datetime(items[0].findtext("pubDate") or "")
    assert pub == datetime(2026, 10, 3, 18, 30, tzinfo=CET)
    assert f'src="{BASE}posts/p2/pic.png"' in (items[0].findtext(f"{CONTENT}encoded") or "")
    assert items[0].findtext("description") == "<p>Summary of p2</p>"


def test_rss_without_full_content_has_no_content_encoded() -> None:
    site = make_site(feeds=FeedConfig(full_content=False))
    channel = ET.fromstring(render(site, "rss.xml")).find("channel")
    assert channel is not None
    assert channel.find(f"item/{CONTENT}encoded") is None
    atom = ET.fromstring(render(site, "feed.xml"))
    assert atom.findtext(f"{ATOM}entry/{ATOM}content") == "<p>Summary of p2</p>"


def test_json_feed() -> None:
    feed = json.loads(render(make_site(), "feed.json"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "Alice's <Notebook> & more"
    assert feed["feed_url"] == BASE + "feed.json"
    assert feed["home_page_url"] == BASE
    assert feed["authors"][0]["name"] == "Alice Example"
    item = feed["items"][0]
    assert item["id"] == item["url"] == BASE + "posts/p2/"
    assert item["date_published"] == "2026-10-03T18:30:00+02:00"
    assert f'src="{BASE}posts/p2/pic.png"' in item["content_html"]
    assert item["tags"] == ["Garden", "Code"]


def test_items_limit_keeps_newest() -> None:
    site = make_site(5, feeds=FeedConfig(items=2))
    entries = ET.fromstring(render(site, "feed.xml")).findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [BASE + "posts/p4/", BASE + "posts/p3/"]
    assert len(json.loads(render(site, "feed.json"))["items"]) == 2


def test_tag_feeds_only_hold_their_posts() -> None:
    site = make_site(4)
    code = ET.fromstring(render(site, "tags/code/feed.xml"))
    assert code.findtext(f"{ATOM}id") == BASE + "tags/code/feed.xml"
    ids = [e.findtext(f"{ATOM}id") for e in code.findall(f"{ATOM}entry")]
    assert ids == [BASE + "posts/p2/", BASE + "posts/p0/"]
    rss = ET.fromstring(render(site, "tags/code/rss.xml"))
    assert rss.findtext("channel/link") == BASE + "tags/code/"
    assert len(rss.findall("channel/item")) == 2


def test_empty_site_is_still_valid_and_deterministic() -> None:
    site = replace(make_site(0), pages=())
    root = ET.fromstring(render(site, "feed.xml"))
    assert root.findtext(f"{ATOM}updated") == "1970-01-01T00:00:00+00:00"
    ET.fromstring(render(site, "rss.xml"))
    assert json.loads(render(site, "feed.json"))["items"] == []


def test_sitemap_and_robots() -> None:
    site = make_site()
    root = ET.fromstring(render(site, "sitemap.xml"))
    locs = {u.findtext(f"{SM}loc"): u.findtext(f"{SM}lastmod") for u in root.findall(f"{SM}url")}
    assert locs[BASE] == "2026-10-03T18:30:00+02:00"
    assert locs[BASE + "posts/p0/"] == "2026-10-01T18:30:00+02:00"
    assert BASE + "about/" in locs
    assert locs[BASE + "tags/code/"] == "2026-10-03T18:30:00+02:00"
    assert len(locs) == 1 + 3 + 1 + 2
    robots = render(site, "robots.txt").decode()
    assert "Sitemap: https://alice.example/sitemap.xml\n" in robots


def test_sitemap_leaves_out_an_undated_pages_file_time() -> None:
    site = make_site()
    (about,) = site.pages

    def lastmod(page: Post) -> str | None:
        root = ET.fromstring(render(replace(site, pages=(page,)), "sitemap.xml"))
        (url,) = [u for u in root.findall(f"{SM}url") if u.findtext(f"{SM}loc") == page.url]
        return url.findtext(f"{SM}lastmod")

    assert lastmod(replace(about, dated=True)) == rfc3339(about.date)
    assert lastmod(replace(about, dated=False)) is None  # a checkout's time: left out
    edited = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert lastmod(replace(about, dated=False, updated=edited)) == "2026-11-02T08:00:00+00:00"


def test_fingerprints_follow_content() -> None:
    site = make_site()
    before = {o.path: o.fingerprint for o in plan_feeds(site, fingerprint_salt="s")}
    assert before == {o.path: o.fingerprint for o in plan_feeds(site, fingerprint_salt="s")}
    edited = replace(site.posts[0], html="<p>new body</p>")
    after = {o.path: o.fingerprint
             for o in plan_feeds(replace(site, posts=(edited, *site.posts[1:])),
                                 fingerprint_salt="s")}
    assert after["feed.xml"] != before["feed.xml"]
    assert after["tags/code/feed.xml"] != before["tags/code/feed.xml"]
    # A body edit does not move URLs or dates: the sitemap and robots stay put.
    assert after["sitemap.xml"] == before["sitemap.xml"]
    assert after["robots.txt"] == before["robots.txt"]
    salted = {o.path: o.fingerprint for o in plan_feeds(site, fingerprint_salt="t")}
    assert all(salted[p] != before[p] for p in before)


def test_sitemap_fingerprint_follows_what_it_shows() -> None:
    """The sitemap is fingerprinted by its (URL, lastmod) pairs: any change to one of
    them (a post's date or update, a URL, which posts a tag holds) must change it."""
    site = make_site()

    def sitemap_fp(s: Site) -> str:
        return by_path(plan_feeds(s, fingerprint_salt="s"))["sitemap.xml"].fingerprint

    def with_post(index: int, **changes: object) -> Site:
        posts = list(site.posts)
        posts[index] = replace(posts[index], **changes)  # type: ignore[arg-type]
        return replace(site, posts=tuple(posts))

    before, shown = sitemap_fp(site), render(site, "sitemap.xml")
    oldest = site.posts[-1]
    changed = [
        with_post(-1, updated=oldest.date + timedelta(days=30)),  # lastmod of post and tags
        with_post(-1, date=oldest.date + timedelta(minutes=1)),
        with_post(-1, url=BASE + "posts/moved/"),
        with_post(0, tags=()),  # the newest post leaves its tags: their lastmod moves
    ]
    for variant in changed:
        assert render(variant, "sitemap.xml") != shown
        assert sitemap_fp(variant) != before
    # Nothing shown changes (an update older than the date is not shown; the oldest post
    # leaving tags that hold newer posts): the fingerprint stays, so nothing is rendered.
    for variant in (with_post(-1, updated=oldest.date - timedelta(days=1)),
                    with_post(-1, tags=())):
        assert render(variant, "sitemap.xml") == shown
        assert sitemap_fp(variant) == before


def test_shared_contents_give_the_same_feeds() -> None:
    """A Contents shared by a plan's feeds (each post's content made once) changes no byte,
    and one made for another config is not used (full_content changes the content)."""
    site = make_site(4)
    c = site.config
    planned = {path: o.render() for path, o in by_path(plan_feeds(site, fingerprint_salt="s"))
               .items()}
    alone = {
        "feed.xml": render_atom(c, site.posts, self_url=c.url("feed.xml"), title=c.title,
                                alternate_url=c.base_url),
        "rss.xml": render_rss(c, site.posts, self_url=c.url("rss.xml"), title=c.title,
                              link=c.base_url, description=c.description),
        "feed.json": render_json_feed(c, site.posts, self_url=c.url("feed.json")),
    }
    for path, text in alone.items():
        assert planned[path] == text.encode()
    summaries = replace(c, feeds=replace(c.feeds, full_content=False))
    shared = Contents(c)
    render_atom(c, site.posts, self_url="u", title="t", alternate_url="a", contents=shared)
    assert render_json_feed(summaries, site.posts, self_url="u", contents=shared) \
        == render_json_feed(summaries, site.posts, self_url="u")
    assert "Body of" not in render_json_feed(summaries, site.posts, self_url="u",
                                             contents=shared)


def test_rfc822_keeps_offset() -> None:
    assert rfc822(datetime(2026, 10, 2, 18, 30, tzinfo=CET)) == "Fri, 02 Oct 2026 18:30:00 +0200"


def test_absolutize_leaves_special_urls() -> None:
    html = ('<a href="mailto:a@b">m</a><img src="data:image/png;base64,xx"><a href="x/y">r</a>'
            '<a href="#fn:1">1</a>')
    assert absolutize_html(html, BASE + "posts/a/") == (
        '<a href="mailto:a@b">m</a><img src="data:image/png;base64,xx">'
        f'<a href="{BASE}posts/a/x/y">r</a><a href="{BASE}posts/a/#fn:1">1</a>'
    )


_nasty = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(title=_nasty, body=_nasty, tag_name=_nasty)
def test_any_text_gives_well_formed_feeds(title: str, body: str, tag_name: str) -> None:
    """Control characters, ']]>', '&', quotes: every feed must still parse."""
    t = Tag(name=tag_name, slug="t", url=BASE + "tags/t/")
    p = post("x", 1, tags=(t,), title=title, html=body + "]]>", summary=title or None)
    site = Site(config=make_config(title=title or "T"), posts=(p,), pages=())
    outputs = by_path(plan_feeds(site, fingerprint_salt="s"))
    for path in ("feed.xml", "rss.xml", "tags/t/feed.xml", "tags/t/rss.xml", "sitemap.xml"):
        ET.fromstring(outputs[path].render())
    atom = ET.fromstring(outputs["feed.xml"].render())
    json.loads(outputs["feed.json"].render())
    # Text survives apart from the characters XML cannot carry.
    allowed = "".join(
        c for c in title
        if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD
        or ord(c) >= 0x10000
    )
    expected = allowed.replace("\r\n", "\n").replace("\r", "\n")  # XML end-of-line handling
    assert expected == (atom.findtext(f"{ATOM}entry/{ATOM}title") or "")


def _warned_site(**changes: object) -> Site:
    site = make_site(**changes)
    warned = replace(site.posts[0], content_warning="spiders & <snakes>")
    return replace(site, posts=(warned, *site.posts[1:]))


WARNING_P = "<p>Content warning: spiders &amp; &lt;snakes&gt;</p>"


def test_content_warning_comes_first_in_every_feed() -> None:
    site = _warned_site()
    atom = ET.fromstring(render(site, "feed.xml"))
    entries = atom.findall(f"{ATOM}entry")
    content = entries[0].findtext(f"{ATOM}content") or ""
    assert content.startswith(WARNING_P) and "Body of p2" in content
    assert entries[0].findtext(f"{ATOM}summary") == "Content warning: spiders & <snakes>"
    assert "Content warning" not in (entries[1].findtext(f"{ATOM}content") or "")
    assert entries[1].find(f"{ATOM}summary") is None

    items = ET.fromstring(render(site, "rss.xml")).findall("channel/item")
    encoded = items[0].findtext(f"{CONTENT}encoded") or ""
    assert encoded.startswith(WARNING_P) and "Body of p2" in encoded
    assert items[0].findtext("description") == WARNING_P + "\n<p>Summary of p2</p>"
    assert items[1].findtext("description") == "<p>Summary of p1</p>"

    feed = json.loads(render(site, "feed.json"))
    first, second = feed["items"][:2]
    assert first["content_html"].startswith(WARNING_P)
    assert first["summary"] == "Content warning: spiders & <snakes>"
    assert "summary" not in second and "Content warning" not in second["content_html"]


def test_content_warning_leads_an_existing_summary_and_the_teaser_feeds() -> None:
    site = _warned_site(feeds=FeedConfig(full_content=False))
    first = replace(site.posts[0], summary="A short <summary>")
    site = replace(site, posts=(first, *site.posts[1:]))
    feed = json.loads(render(site, "feed.json"))
    assert feed["items"][0]["summary"] == (
        "Content warning: spiders & <snakes>\n\nA short <summary>"
    )
    assert feed["items"][0]["content_html"] == WARNING_P + "\n<p>Summary of p2</p>"
    atom = ET.fromstring(render(site, "feed.xml"))
    assert (atom.findtext(f"{ATOM}entry/{ATOM}summary") or "").startswith("Content warning:")
    rss = ET.fromstring(render(site, "rss.xml"))
    assert rss.findtext("channel/item/description") == WARNING_P + "\nA short &lt;summary&gt;"


def test_content_warning_changes_the_fingerprint() -> None:
    plain = by_path(plan_feeds(make_site(), fingerprint_salt="s"))
    warned = by_path(plan_feeds(_warned_site(), fingerprint_salt="s"))
    for path in ("feed.xml", "rss.xml", "feed.json"):
        assert plain[path].fingerprint != warned[path].fingerprint
