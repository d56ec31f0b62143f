"""fediverse.comments_live on a real `fedipress inbox`: the public endpoint serves exactly the
export's data for one post (never held or private replies), cached with an ETag, CORS for the
blog's origin only, rate-limited per address; off by default. The theme's script, in headless
Chromium, adds replies approved after the build and runs nothing a reply carries."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jinja2
import pytest

from fedipress.config import load_config
from fedipress.federation.hosting import hosting_config
from fedipress.store import Interaction, LedgerEntry, open_store
from support.config import MINIMAL, load, only_problem
from support.service import read_json, start_service

pytestmark = pytest.mark.slow

LIVE = "/.fedipress/live/v1/conversation"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
THEME = Path(__file__).resolve().parents[2] / "src/fedipress/generator/themes/default/templates"


def _store_conversation(root: Path, post: str, *, publish: bool = True) -> None:
    store = open_store(root / ".fedipress" / "state.db")
    try:
        if publish:
            store.plan_publication([], [], [LedgerEntry(post, "h", T0, T0, "live", None)], T0)

        def reply(n: int, text: str, **kw: object) -> None:
            store.add_interaction(Interaction(
                f"https://r{n}.example/activities/{n}", "reply",
                f"https://r{n}.example/users/u{n}", post, T0 + timedelta(minutes=n),
                T0 + timedelta(minutes=n), author_name=f"Name{n}",
                author_handle=f"u{n}@r{n}.example", content_html=text,
                reply_object_id=f"https://r{n}.example/notes/{n}",
                url=f"https://r{n}.example/@u{n}/{n}", **kw))  # type: ignore[arg-type]

        reply(1, "<p>First, already on the page</p>")
        reply(2, "<p>Second <script>alert(1)</script><a href='javascript:x'>x</a></p>")
        reply(3, "<p>HELD reply</p>", approved=False, held_reason="moderation")
        reply(4, "<p>FOLLOWERS reply</p>", visibility="followers")
        reply(5, "<p>DIRECT message</p>", visibility="direct")
        store.add_interaction(Interaction("https://r6.example/l/6", "like",
                                          "https://r6.example/users/u6", post, T0, T0))
    finally:
        store.close()


def test_the_live_endpoint_is_public_cached_and_for_the_blog_only(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home", fediverse_yaml="  comments_live: true\n")
    post = service.base + "posts/first/object.json"
    origin = service.base.rstrip("/")
    url = origin + LIVE
    try:
        _store_conversation(service.root, post)
        r = httpx.get(url, params={"post": post}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 200, r.text
        # CORS names the blog's origin only, whoever asks.
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["vary"] == "Origin"
        assert r.headers["cache-control"] == "public, max-age=30"
        data = read_json(r)
        # The same data as the owner API's export for that post, nothing private.
        export = read_json(httpx.get(service.api("/conversations"), headers=service.auth()))
        assert data["objects"] == {post: export["objects"][post]}  # type: ignore[index]
        assert data["format"] == 1
        replies = data["objects"][post]["replies"]  # type: ignore[index]
        assert [x["id"] for x in replies] == ["https://r1.example/notes/1",
                                              "https://r2.example/notes/2"]
        for private in ("HELD", "FOLLOWERS", "DIRECT", "script", "javascript:"):
            assert private not in r.text
        assert len(data["objects"][post]["likes"]) == 1  # type: ignore[index]

        # Unchanged: 304 on its ETag.
        again = httpx.get(url, params={"post": post}, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

        # Not a post of this blog, or asked wrongly.
        assert httpx.get(url, params={"post": service.base + "posts/none/object.json"}
                         ).status_code == 404
        assert httpx.get(url).status_code == 400
        assert httpx.get(url, params={"post": "https://other.example/x"}).status_code == 400
        assert httpx.options(url).headers["access-control-allow-origin"] == origin

        # One address asking too often is slowed down; others are not.
        flood = {"X-Forwarded-For": "203.0.113.50"}
        codes = [httpx.get(url, params={"post": post}, headers=flood).status_code
                 for _ in range(50)]  # faster than the refill of one a second
        assert codes[:30] == [200] * 30 and codes.count(429) >= 10
        assert httpx.get(url, params={"post": post}).status_code == 200

        # An approval after the build shows within the cache's few seconds.
        store = open_store(service.root / ".fedipress" / "state.db")
        try:
            store.set_interaction_approved("https://r3.example/activities/3", True)
        finally:
            store.close()
        time.sleep(10.5)
        fresh = httpx.get(url, params={"post": post})
        assert "HELD reply" in fresh.text and fresh.headers["etag"] != r.headers["etag"]
    finally:
        log = service.stop()
    assert f"live comments at {LIVE} for pages of {origin}" in log


def test_off_by_default(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")
    try:
        r = httpx.get(service.base.rstrip("/") + LIVE,
                      params={"post": service.base + "posts/first/object.json"})
        assert r.status_code == 404
        assert "access-control-allow-origin" not in r.headers
    finally:
        service.stop()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (the CI installs it): the live script is not run")


HOSTILE_JSON_REPLY = {
    "id": "https://evil.example/notes/1", "in_reply_to": "", "published": "2026-03-01T13:00:00Z",
    "updated": None, "url": "javascript:alert(1)",
    "content_html": ('<p>Evil <img src=x onerror="document.title=\'pwned\'">'
                     '<script>document.title="pwned"</script>'
                     '<a href="javascript:document.title=\'pwned\'">js</a>'
                     '<a href="https://ok.example/" onclick="x()" style="color:red">ok</a>'
                     '<svg onload="document.title=\'pwned\'"><circle/></svg>'
                     '<iframe src="javascript:parent.document.title=\'pwned\'"></iframe>'
                     '<b>bold</b></p>'),
    "author": {"id": "https://evil.example/users/e", "name": "<img src=x onerror=alert(1)>Eve",
               "handle": "eve@evil.example", "url": "javascript:alert(2)",
               "avatar": "http://plain.example/a.png"},
}


def test_the_theme_script_adds_new_replies_safely_in_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    service = start_service(tmp_path / "home", fediverse_yaml="  comments_live: true\n")
    post = service.base + "posts/first/object.json"
    try:
        _store_conversation(service.root, post)
        config = load_config(service.root / "site.yaml")
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(THEME), autoescape=True)
        partial = env.get_template("partials/comments_live.html").render(
            config=config, meta={"activity_json": post})
        assert 'data-live="' + service.base.rstrip("/") + LIVE + '"' in partial
        # A page as the build shows it: reply 1 already there; the partial inside. A second
        # box reads a hand-made answer (a static file) carrying what the service would never
        # send, to test the script's own allowlist.
        hostile = {"format": 1, "actor": "", "objects": {post: {
            "replies": [HOSTILE_JSON_REPLY], "likes": [], "boosts": [], "quotes": []}}}
        (service.root / "public" / "hostile.json").write_text(json.dumps(hostile))
        second = partial.split("<script>")[0].replace(
            service.base.rstrip("/") + LIVE, "/hostile.json").replace(
            'id="comments-live-title"', 'id="t2"').replace("comments-live-title", "t2")
        page = ("<!doctype html><html><head><title>clean</title></head><body>"
                '<ol><li class="p-comment h-cite"><a class="u-url"'
                ' href="https://r1.example/@u1/1">then</a></li></ol>'
                f"{second}{partial}</body></html>")
        (service.root / "public" / "live-test.html").write_text(page)
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000",
             "--dump-dom", service.base + "live-test.html"],
            capture_output=True, timeout=120)
        dom = proc.stdout.decode("utf-8", "replace")
    finally:
        service.stop()
    assert "<title>clean</title>" in dom, (dom[:2000], proc.stderr.decode()[-2000:])
    # The approved reply not yet on the page was added, once; reply 1 was not repeated.
    assert dom.count("Second ") == 1 and "First, already on the page" not in dom
    assert '<bdi class="p-name">Name2</bdi>' in dom
    assert 'class="u-url" href="https://r2.example/@u2/2"' in dom
    assert "HELD" not in dom and "FOLLOWERS" not in dom and "DIRECT" not in dom
    # The hostile answer: its text shows, nothing of it runs or loads.
    assert "Evil " in dom and "bold" in dom
    assert "&lt;img src=x onerror=alert(1)&gt;Eve" in dom  # the name stays text
    for bad in ("pwned\"", "<img src=\"x", "onerror=\"", "<svg", "<iframe", "<script>document",
                "javascript:", "onclick", "style=\"color", "http://plain.example"):
        assert bad not in dom, bad
    assert '<a href="https://ok.example/" rel="nofollow noopener ugc">ok</a>' in dom
    assert dom.count("<section") == 2 and "hidden" not in dom.split("<section")[2].split(">")[0]


def test_comments_live_in_site_yaml(tmp_path: Path) -> None:
    assert load(tmp_path / "a", MINIMAL).fediverse.comments_live is None
    on = load(tmp_path / "b", MINIMAL + "fediverse:\n  comments_live: true\n")
    assert on.fediverse.comments_live == "https://blog.example" + LIVE
    off = load(tmp_path / "c", MINIMAL + "fediverse:\n  comments_live: false\n")
    assert off.fediverse.comments_live is None
    elsewhere = load(tmp_path / "d",
                     MINIMAL + "fediverse:\n  comments_live: https://inbox.example/x/\n")
    assert elsewhere.fediverse.comments_live == "https://inbox.example" + LIVE
    line, message = only_problem(tmp_path / "e", MINIMAL + "fediverse:\n  comments_live: yes"
                                 "please\n")
    assert line == 6 and message.startswith(
        "fediverse.comments_live: expected true, false or the service's address")


def test_the_host_configurations_proxy_live_comments_only_when_on(tmp_path: Path) -> None:
    off = load(tmp_path / "off", MINIMAL)
    on = load(tmp_path / "on", MINIMAL + "fediverse:\n  comments_live: true\n")
    elsewhere = load(tmp_path / "x", MINIMAL + "fediverse:\n  comments_live: https://i.example/\n")
    for kind in ("nginx", "caddy", "apache"):
        assert "/.fedipress/live/" not in hosting_config(off, kind)
        assert "/.fedipress/live/" not in hosting_config(elsewhere, kind)  # nothing to proxy
        assert "/.fedipress/live/" in hosting_config(on, kind)
    nginx = hosting_config(on, "nginx")
    block = nginx.split("location ^~ /.fedipress/live/ {", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://127.0.0.1:8080;" in block and "no-store" not in block
