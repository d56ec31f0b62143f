"""feeds: each post's Atom entry / RSS item made once per Contents and shared by the feeds
it is in; `_text`'s shortcut for text with nothing to escape."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urljoin

from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.generator.feeds import (
    _URL_ATTR,
    Contents,
    _text,
    absolutize_html,
    plan_feeds,
    render_atom,
    render_rss,
)
from support.feeds import by_path, make_site

_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def reference_text(value: str) -> str:
    value = _INVALID.sub("", value)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


@given(st.text())
def test_text_matches_the_full_escape(value: str) -> None:
    assert _text(value) == reference_text(value)


@given(st.sampled_from(["plain title", "a\x00b", "\ud800", "x\ufffey", "a&b", "<", '"q"', ""]))
def test_text_edge_cases(value: str) -> None:
    assert _text(value) == reference_text(value)


def _entries(feed: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}[ >].*?</{tag}>", feed, re.DOTALL)


def test_tag_feeds_repeat_the_site_feeds_entries_byte_for_byte() -> None:
    site = make_site(5)
    files = {p: o.render().decode() for p, o in by_path(
        plan_feeds(site, fingerprint_salt="s")).items()}
    for kind, tag in (("feed.xml", "entry"), ("rss.xml", "item")):
        site_entries = set(_entries(files[kind], tag))
        tagged = _entries(files[f"tags/garden/{kind}"], tag)
        assert tagged and set(tagged) <= site_entries


def test_shared_entries_give_the_same_feeds_as_fresh_ones() -> None:
    site = make_site(4)
    c = site.config
    shared = Contents(c)
    for _ in range(2):  # the second round is all memo hits
        assert render_atom(c, site.posts, self_url="u", title="t", alternate_url="a",
                           contents=shared) == render_atom(c, site.posts, self_url="u",
                                                           title="t", alternate_url="a")
        assert render_rss(c, site.posts, self_url="u", title="t", link="l", description="d",
                          contents=shared) == render_rss(c, site.posts, self_url="u",
                                                         title="t", link="l", description="d")


def test_entries_are_remembered_per_post_object() -> None:
    site = make_site(2)
    c = site.config
    shared = Contents(c)
    post = site.posts[0]
    before = shared.atom_entry(post)
    retitled = replace(post, title="Another title")
    assert "Another title" in shared.atom_entry(retitled)
    assert "Another title" in shared.rss_item(retitled)
    assert shared.atom_entry(post) == before


def reference_absolutize(html: str, base: str) -> str:
    """The plain regex substitution absolutize_html gives the same result as."""

    def fix(match: re.Match[str]) -> str:
        value = match.group(3)
        if not value or value.startswith(("data:", "mailto:", "tel:")) or "://" in value:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{urljoin(base, value)}{match.group(2)}"

    return _URL_ATTR.sub(fix, html)


_PIECES = st.sampled_from([
    " ", "\n", "\t", "\x1c", "\u00a0", "=", '"', "'", "<a", "<img", ">", "x", "/", "../",
    "href", "HREF", "Src", "src", "srcset", "poster", "POSTER", "hrefsrc", "\u017fRC", "#top",
    "mailto:a@b", "https://o.example/", "data:x", "page/", "?q=1", "&amp;", "\u00e9",
])


@settings(max_examples=400)
@given(st.lists(_PIECES, max_size=40).map("".join),
       st.sampled_from(["https://alice.example/posts/x/", "https://alice.example/"]))
def test_absolutize_matches_the_plain_regex(html: str, base: str) -> None:
    assert absolutize_html(html, base) == reference_absolutize(html, base)


def test_absolutize_examples() -> None:
    base = "https://alice.example/posts/x/"
    for html in ['<img src="a.png"> <a HREF=\'/b/\'>b</a><video poster = "c.jpg">',
                 ' href="x" href="y"', 'href="x"', ' src="a" srcset="b 2x"',
                 ' href="a" \u017frc="b"', ' hrefhref="a" href="b"',
                 # a name inside an earlier match's value is no match of its own
                 ' href="x href="y" src="z"', " src='a src=\"b\" ' c"]:
        assert absolutize_html(html, base) == reference_absolutize(html, base), html
    assert absolutize_html(' href="a.png"', base) == f' href="{base}a.png"'
