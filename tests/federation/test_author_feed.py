"""The author's private Atom feed from a real `fedipress inbox` on loopback: replies (held,
followers-only and direct ones too, marked), mentions, quotes and follows; valid Atom read by
feedparser; nothing executable from a hostile reply; the secret URL derived from the owner
token (a wrong or old one is 404, guessing is 429) and kept out of every log line."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest

from fedipress.federation.author_feed import feed_path, feed_secret, html_to_text
from fedipress.store import Follower, Interaction, open_store
from support.service import REPO, TOKEN, clean_env, start_service

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HOSTILE = ('<p>Nice <script>alert(1)</script><img src=x onerror=alert(2)>'
           '<a href="javascript:alert(3)">click</a> <a href="https://ok.example/">ok</a>'
           '<svg onload=alert(4)></svg>\x01</p><style>body{}</style>')


def _fill(root: Path, post: str) -> None:
    store = open_store(root / ".fedipress" / "state.db")
    try:
        def add(n: int, kind: str, **kw: object) -> None:
            store.add_interaction(Interaction(
                f"https://r{n}.example/activities/{n}", kind,  # type: ignore[arg-type]
                f"https://r{n}.example/users/u{n}", kw.pop("object_id", post),  # type: ignore[arg-type]
                T0 + timedelta(minutes=n), T0 + timedelta(minutes=n),
                author_handle=f"u{n}@r{n}.example", **kw))  # type: ignore[arg-type]

        add(1, "reply", author_name="Ada <b>Lovelace</b>", content_html="<p>Lovely post.</p>",
            reply_object_id="https://r1.example/notes/1", url="https://r1.example/@u1/1")
        add(2, "reply", author_name="Mallory\u202e<script>", content_html=HOSTILE,
            reply_object_id="https://r2.example/notes/2", approved=False,
            held_reason="blocked word")
        add(3, "reply", author_name="Friend", content_html="<p>Only for followers</p>",
            reply_object_id="https://r3.example/notes/3", visibility="followers")
        add(4, "reply", author_name="Whisper", content_html="<p>Just between us</p>",
            reply_object_id="https://r4.example/notes/4", visibility="direct")
        add(5, "mention", author_name="Mentioner", content_html="<p>@tester look</p>",
            object_id="https://r5.example/notes/5")
        add(6, "quote", author_name="Quoter", content_html="<p>Quoting this</p>",
            url="https://r6.example/notes/6")
        add(7, "like", author_name="Liker")  # likes are not in the feed
        store.upsert_follower(Follower("https://f1.example/users/fan", "https://f1.example/inbox",
                                       None, "fan@f1.example", "Fan", T0 + timedelta(minutes=8)))
        store.upsert_follower(Follower("https://f2.example/users/shy", "https://f2.example/inbox",
                                       None, "shy@f2.example", "Shy", T0 + timedelta(minutes=9),
                                       state="pending"), b"{}")
    finally:
        store.close()


def test_the_author_feed_lists_everything_safely_behind_its_secret(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home", args=["--access-log"])
    post = service.base + "posts/first/object.json"
    other = "other-owner-token-" + "Q" * 50
    try:
        _fill(service.root, post)
        url = service.base.rstrip("/") + feed_path(TOKEN)
        r = httpx.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/atom+xml")
        assert "no-cache" in r.headers["cache-control"]
        raw = r.text
        # The same feed with the bearer token, not without it.
        bearer = httpx.get(service.api("/feed.atom"), headers=service.auth())
        assert bearer.status_code == 200 and bearer.content == r.content
        assert httpx.get(service.api("/feed.atom")).status_code == 401
        # Unchanged: 304 on the ETag.
        again = httpx.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304

        # A wrong secret and the URL of another token (the old URL once the token rotates)
        # are 404; an address that keeps guessing is stopped.
        assert httpx.get(service.base.rstrip("/") + feed_path(other)).status_code == 404
        guesser = {"X-Forwarded-For": "198.51.100.7"}
        codes = [httpx.get(service.base.rstrip("/") + feed_path(f"{other}{i}"),
                           headers=guesser).status_code for i in range(12)]
        assert codes[:10] == [404] * 10 and codes[10:] == [429, 429]
        assert httpx.get(url, headers=guesser).status_code == 429

        # `fedipress service feed-url` prints the working URL from the same token.
        printed = subprocess.run(
            [sys.executable, "-m", "fedipress.cli", "service", "feed-url", "--config",
             str(service.root / "site.yaml")], capture_output=True, cwd=REPO, timeout=60,
            env=clean_env(FEDIPRESS_SERVICE_TOKEN=TOKEN))
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout.decode().strip() == url
        none = subprocess.run(
            [sys.executable, "-m", "fedipress.cli", "service", "feed-url", "--config",
             str(service.root / "site.yaml")], capture_output=True, cwd=REPO, timeout=60,
            env=clean_env())
        assert none.returncode == 2
        assert none.stderr.decode().count("\n") == 1
        assert "FEDIPRESS_SERVICE_TOKEN" in none.stderr.decode()
    finally:
        log = service.stop() + service.out

    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    titles = [e.title for e in feed.entries]
    assert len(titles) == 8, titles  # 4 replies, a mention, a quote, 2 follows; no like
    assert titles[0] == "Shy (@shy@f2.example) asks to follow you"
    assert titles[1] == "Fan (@fan@f1.example) follows you"
    assert "Quoter (@u6@r6.example) quoted posts/first/" in titles
    assert "Mentioner (@u5@r5.example) mentioned you" in titles
    assert "[direct message] Reply from Whisper (@u4@r4.example) on posts/first/" in titles
    assert "[followers only] Reply from Friend (@u3@r3.example) on posts/first/" in titles
    assert "Reply from Ada Lovelace (@u1@r1.example) on posts/first/" in titles
    held = next(e for e in feed.entries if e.title.startswith("[held"))
    assert held.title.startswith("[held: blocked word] Reply from Mallory")
    ada = next(e for e in feed.entries if "Ada" in e.title)
    assert ada.summary == "Lovely post."
    assert ada.link == "https://r1.example/@u1/1"
    assert [lk.href for lk in ada.links if lk.rel == "related"] == [
        post.removesuffix("object.json")]
    assert ada.updated == "2026-03-01T12:01:00Z"
    ids = [e.id for e in feed.entries]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:uuid:") for i in ids)

    # Nothing executable passes: not in the XML, not in the HTML a reader would render.
    html = held.content[0].value
    for bad in ("<script", "onerror", "onload", "javascript:", "<svg", "<img", "<style",
                "\u202e"):
        assert bad not in html.lower() and bad not in raw.lower(), bad
    assert 'href="https://ok.example/"' in html and "nofollow" in html
    assert "Nice" in held.summary and "<" not in held.summary

    # The secret and the token never reach the log, the access log included.
    assert feed_secret(TOKEN) not in log and TOKEN not in log
    assert "author feed: refused a feed URL from 198.51.100.7: wrong secret" in log
    assert "/.fedipress/api/v1/feed/<secret>.atom" in log  # the access log line, redacted


def test_html_to_text_keeps_paragraphs_and_drops_markup() -> None:
    assert html_to_text("<p>One &amp; <a href='x'>two</a></p><p>three<br>four</p>") == \
        "One & two\n\nthree\nfour"
    assert html_to_text("<p>" + "x" * 3000 + "</p>", limit=10) == "x" * 9 + "…"


def test_rotating_the_token_rotates_the_secret() -> None:
    assert feed_secret(TOKEN) != feed_secret(TOKEN + "x")
    assert len(feed_secret(TOKEN)) == 64 and TOKEN not in feed_path(TOKEN)
