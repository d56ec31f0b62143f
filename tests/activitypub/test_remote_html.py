"""The remote-HTML wall (activitypub/remote_html.py): reply HTML to a strict allowlist, names and
handles to plain text, URLs to absolute http(s). The 200-payload corpus runs through it in
tests/federation/test_conversation_xss.py; these pin each rule on its own."""

from __future__ import annotations

import pytest

from fedipress.activitypub.remote_html import (
    MAX_DISPLAY_NAME,
    plain_text,
    safe_handle,
    safe_name,
    safe_reply_html,
    safe_url,
)
from support.xss_check import markup_problems
from support.xss_payloads import PAYLOADS

REL = 'rel="nofollow noopener ugc"'


def test_a_mastodon_reply_keeps_its_shape() -> None:
    html = (
        '<p><span class="h-card" translate="no"><a href="https://blog.example/@author"'
        ' class="u-url mention">@<span>author</span></a></span> Agreed! See'
        ' <a href="https://example.org/a/very/long/path" target="_blank" rel="nofollow noopener'
        ' noreferrer" translate="no"><span class="invisible">https://</span><span'
        ' class="ellipsis">example.org/a/very/lo</span><span class="invisible">ng/path</span></a>'
        '<br>#<a href="https://m.example/tags/x" class="mention hashtag">x</a></p>'
    )
    assert safe_reply_html(html) == (
        f'<p><span class="h-card"><a href="https://blog.example/@author" {REL}>@<span>author'
        f'</span></a></span> Agreed! See <a href="https://example.org/a/very/long/path" {REL}>'
        '<span class="invisible">https://</span><span class="ellipsis">example.org/a/very/lo'
        f'</span><span class="invisible">ng/path</span></a><br>#<a href="https://m.example/tags/x"'
        f' {REL}>x</a></p>'
    )


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<script>alert(1)</script>after", "after"),
        ("<style>body{display:none}</style>after", "after"),
        ("<b>bold</b> <em>it</em> <h1>head</h1>", "bold it head"),  # reduced to text, not lost
        ("<img src=x onerror=alert(1)>pic", "pic"),
        ("<!-- hidden -->shown", "shown"),
        ('<span class="mention evil" style="color:red" id="x">m</span>',
         '<span class="mention">m</span>'),
        ('<span class="evil">m</span>', "<span>m</span>"),
        ('<p onclick="alert(1)" class="x">p</p>', "<p>p</p>"),
        ('<a href="javascript:alert(1)">j</a>', f"<a {REL}>j</a>"),
        ('<a href="JaVaScRiPt:alert(1)">j</a>', f"<a {REL}>j</a>"),
        ('<a href="java&#x09;script:alert(1)">j</a>', f"<a {REL}>j</a>"),
        ('<a href="data:text/html,<script>alert(1)</script>">d</a>', f"<a {REL}>d</a>"),
        ('<a href="/relative">r</a>', f"<a {REL}>r</a>"),
        ('<a href="//other.example/">s</a>', f"<a {REL}>s</a>"),
        ('<a href="https://user:pw@x.example/">c</a>', f"<a {REL}>c</a>"),
        ('<a href="https://x.example/" target="_top" rel="opener">t</a>',
         f'<a href="https://x.example/" {REL}>t</a>'),
        ("<xmp><script>alert(1)</script></xmp>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("a\ud800b", "a\ufffdb"),  # a lone surrogate (JSON can carry one) must not crash
    ],
)
def test_reply_html_allowlist(html: str, expected: str) -> None:
    assert safe_reply_html(html) == expected


def test_reply_html_that_is_not_a_string_is_empty() -> None:
    assert safe_reply_html(None) == ""  # type: ignore[arg-type]


def test_deeply_nested_html_is_handled() -> None:
    assert safe_reply_html("<span>" * 5_000 + "x").count("x") == 1
    assert "script" not in safe_reply_html("<span>" * 20_000 + "x<script>alert(1)</script>")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("<b>Bob</b> &amp; <script>alert(1)</script>Co", "Bob & Co"),
        ("I <3 cats", "I <3 cats"),
        ("Alice\u202eecila", "Aliceecila"),  # right-to-left override dropped
        ("Al\u200bi\u2066ce\u2069", "Alice"),  # zero-width space, isolates dropped
        ("\u200f\u200e\u061c", ""),
        ("👩\u200d💻 dev", "👩\u200d💻 dev"),  # joiners kept: emoji sequences need them
        ("line\nbreak\u2028and\ttab\x00nul\x1b[31m", "line break and tabnul[31m"),
        ("\u3164\u3164\u3164", ""),  # blank letters are no name
        (":blobcat: Alice :verified:", ":blobcat: Alice :verified:"),  # shortcodes stay text
        ("a\ud800b", "a\ufffdb"),
        (None, ""),
        (42, ""),
    ],
)
def test_names_are_plain_text(name: object, expected: str) -> None:
    assert safe_name(name) == expected


def test_names_are_capped_with_an_ellipsis() -> None:
    name = safe_name("x" * 1000)
    assert len(name) == MAX_DISPLAY_NAME and name.endswith("…")
    assert plain_text("y" * 50, 10) == "y" * 9 + "…"


def test_combining_mark_stacks_are_capped() -> None:
    assert safe_name("Z" + "\u0301" * 200) == "Z" + "\u0301" * 8
    assert safe_name("Tiếng Việt") == "Tiếng Việt"


@pytest.mark.parametrize(
    ("handle", "expected"),
    [
        ("alice@mastodon.example", "alice@mastodon.example"),
        ("@alice@mastodon.example", "alice@mastodon.example"),
        ("alice@127.0.0.1:3000", "alice@127.0.0.1:3000"),
        ("al.ice-b_c@xn--bcher-kva.example", "al.ice-b_c@xn--bcher-kva.example"),
        ("élise@serveur.example", "élise@serveur.example"),
        ("alice@good.example@evil.example", ""),
        ("alice", ""),
        ("ali ce@x.example", ""),
        ("<script>@x.example", ""),
        ("alice\u202e@x.example", ""),
        ("alice@x.example/path", ""),
        ("alice@x.example\u200b", ""),
        ("a" * 300 + "@x.example", ""),
        (None, ""),
    ],
)
def test_handles_are_user_at_host_or_nothing(handle: object, expected: str) -> None:
    assert safe_handle(handle) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/", "http://x.example/@a", "https://x.example:8443/a?b=c#d",
        "HTTPS://X.EXAMPLE/", "http://127.0.0.1:3000/users/a",
    ],
)
def test_good_urls_pass(url: str) -> None:
    assert safe_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)", "data:text/html,x", "vbscript:x", "ftp://x.example/",
        "https:x.example", "https:///x.example", "/relative", "//x.example/",
        "https://user:pw@x.example/", "https://x.example@evil.example/",
        "https://x.example\\@evil.example/", "https://x.example/a b", "https://x.example/\x00",
        "https://x.example/\u202e", "https://x.example:99999/", "https://x.example:/",
        "https://%65vil.example/", "https://[::1]/", "https://x.example/" + "a" * 3000,
        " https://x.example/", 'https://x.example/"><script>alert(1)</script>',
        "https://x.example/`", None, 7,
    ],
)
def test_bad_urls_are_refused(url: object) -> None:
    assert safe_url(url) is None


def test_avatars_are_https_only() -> None:
    assert safe_url("http://x.example/a.png", https_only=True) is None
    assert safe_url("https://x.example/a.png", https_only=True) == "https://x.example/a.png"


def test_no_payload_survives_as_markup() -> None:
    """Every corpus payload through each wall: no script, handler, style or bad URL is left."""
    for payload in PAYLOADS:
        assert markup_problems(safe_reply_html(payload.text)) == [], payload.name
        for name in (safe_name(payload.text), safe_handle(payload.text)):
            assert not any(c in name for c in "\u202e\u202d\u2066\u2067\u2068\u200b"), payload.name
        url = safe_url(payload.text)
        assert url is None or url.lower().startswith(("http://", "https://")), payload.name


def test_the_corpus_check_fails_without_the_wall() -> None:
    """The same check over the raw payloads finds most of them: it can fail."""
    caught = [p.name for p in PAYLOADS if markup_problems(p.text)]
    assert len(caught) >= 150, len(caught)
