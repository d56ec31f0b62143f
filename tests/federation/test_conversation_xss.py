"""The hostile conversation: every payload of tests/support/xss_payloads.py, sent as real signed
replies and likes to the inbox service over loopback HTTP, approved, built into the blog, and
checked twice (parsing the HTML; loading the pages in headless Chromium): nothing a remote server
sends may run script, open a dialog, navigate or restyle the page.

Each payload has its own hostile actor on a loopback server whose actor document carries the
payload as display name, handle (preferredUsername), profile and avatar URL and custom emoji name;
the reply carries it as content, note URL and emoji name.

Two kinds of page are checked:
- the blog's real built pages (all of them), against the same blog built without a conversation
  (the theme's own scripts and styles are the baseline);
- a stand-in conversation (STAND_IN below: the store's public conversation, exactly as the build
  gets it, put into the built post page with the theme's escaping rules: Jinja autoescape, names in
  `<bdi>`), so the suite checks the sanitiser's output in a page before the theme renders
  replies itself. Once it does (the post page shows the replies), `test_the_theme_shows_...`
  stops skipping and the real pages carry every payload too.

The detectors are shown to fire: the same conversation with the sanitiser replaced by identity,
or put into the page without escaping, is caught by both; and every payload that runs script on
its own is caught alone.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import uvicorn

import fedipress
from fedipress.activitypub.conversation import PostConversation
from fedipress.activitypub.httpsig import sign_cavage
from fedipress.config import SiteConfig, load_config
from fedipress.federation.inbox import InboxSettings, create_app
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.federation.signing import SigningAuth
from fedipress.generator.build import Builder
from fedipress.store import LedgerEntry, open_store
from fedipress.store import conversations as store_conversations
from fedipress.store.snapshot import read_build_state
from support.inbox import BLOG_KEY, REMOTE_KEY, REMOTE_PEM, Remote
from support.xss_check import CHROMIUM, Baseline, BrowserProbe, markup_problems
from support.xss_payloads import PAYLOADS, Payload

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASE = "https://blog.example/"
KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
THEME = Path(fedipress.__file__).parent / "generator" / "themes" / "default" / "templates"
AS2 = "application/activity+json"
SITE_YAML = """\
title: Hostile Test
base_url: https://blog.example/
author:
  name: Blog Author
  handle: author
fediverse:
  display_name: Blog Author
  bio: test
"""
POST_MD = "---\ntitle: Hello\ndate: 2026-11-01T09:00:00+00:00\nslug: hello\n---\nHello.\n"
POST_PAGE = "posts/hello/index.html"
STAND_IN_PAGE = "posts/hello/stand-in.html"

# The conversation as a theme shows it (a reply: author face, name and handle, time, link to the
# original, content; likes: faces), with the escaping every fedipress template gets.
STAND_IN = """\
<section class="conversation" id="replies">
{%- for r in conv.replies %}
<article class="p-comment h-cite" id="reply-{{ loop.index }}">
  <a class="p-author h-card u-url" href="{{ r.author.url or r.author.id }}" rel="nofollow ugc">
    {%- if r.author.avatar %}<img class="u-photo" src="{{ r.author.avatar }}" alt="">{% endif -%}
    <bdi class="p-name">{{ r.author.name or r.author.handle }}</bdi></a>
  {% if r.author.handle %}<bdi class="handle">@{{ r.author.handle }}</bdi>{% endif %}
  <a class="u-url" href="{{ r.url or r.id }}" rel="nofollow ugc" title="{{ r.author.name }}">
    <time class="dt-published" datetime="{{ r.published }}">{{ r.published }}</time></a>
  <div class="e-content">{{ r.content_html | safe }}</div>
</article>
{%- endfor %}
<ul class="likes">
{%- for like in conv.likes %}
  <li class="u-like h-cite"><a class="h-card" href="{{ like.actor.url or like.actor.id }}"
    title="{{ like.actor.name }}">
    {%- if like.actor.avatar %}<img src="{{ like.actor.avatar }}" alt="{{ like.actor.name }}">
    {%- else %}<bdi>{{ like.actor.name }}</bdi>{% endif %}</a></li>
{%- endfor %}
</ul>
</section>
"""


def _stand_in(conv: PostConversation, *, escape: bool = True) -> str:
    env = jinja2.Environment(autoescape=escape, undefined=jinja2.StrictUndefined)
    return env.from_string(STAND_IN).render(conv=conv)


def _insert(page: str, section: str) -> str:
    assert "</main>" in page
    return page.replace("</main>", section + "\n</main>", 1)


# --- the hostile world -------------------------------------------------------------------------


def _actor(remote: Remote, n: int, p: Payload) -> dict[str, Any]:
    actor = remote.url(f"/users/h{n}")
    emoji = {"type": "Emoji", "name": p.text, "icon": {"type": "Image", "url": p.text}}
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Person",
        "preferredUsername": p.text,
        "name": p.text,
        "summary": p.text,
        "inbox": actor + "/inbox",
        "endpoints": {"sharedInbox": remote.url("/inbox")},
        "icon": {"type": "Image", "url": p.text},
        "url": p.text,
        "tag": [emoji],
        "publicKey": {"id": actor + "#main-key", "owner": actor, "publicKeyPem": REMOTE_PEM},
    }


def _reply(actor: str, n: int, p: Payload, post: str) -> dict[str, Any]:
    note = {
        "id": f"{actor}/statuses/{n}",
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": post,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "content": f"<p>xss-canary-{n}</p>{p.text}",
        "published": "2026-11-10T11:00:00Z",
        "url": p.text,
        "tag": [{"type": "Emoji", "name": p.text, "icon": {"type": "Image", "url": p.text}}],
    }
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor}/create/{n}",
            "type": "Create", "actor": actor, "object": note,
            "to": ["https://www.w3.org/ns/activitystreams#Public"]}


def _like(actor: str, n: int, post: str) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor}/like/{n}",
            "type": "Like", "actor": actor, "object": post}


def _signed(activity: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(activity).encode()
    headers = {"Content-Type": AS2, "Host": "blog.example"}
    headers.update(sign_cavage("POST", BASE + "inbox", headers, body,
                               key_id=activity["actor"] + "#main-key", private_key=REMOTE_KEY,
                               now=NOW))
    return body, headers


def _requests_by_payload() -> list[str]:
    return [f"{p.name}:{kind}" for p in PAYLOADS for kind in ("reply", "like")]


def _deliver(config: SiteConfig, requests: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    """POST each request over loopback HTTP to the blog's inbox service (the real app under
    uvicorn, as `fedipress inbox` runs it; real signatures; the actors fetched from the loopback
    server), and return the answers' statuses."""
    store = open_store(config.state_dir / "state.db")
    # Hundreds of actors on one host in a second: the rate limits are not what is tested here.
    settings = InboxSettings(ip_burst=100_000, host_burst=100_000)

    async def main() -> list[int]:
        auth = SigningAuth.for_actor(BASE + "actor.json", BLOG_KEY)
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True), user_agent="test",
                                 auth=auth) as fetcher:
            app = create_app(config, store, fetcher, clock=lambda: NOW, settings=settings)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="error",
                                                   http="h11"))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    assert not serving.done(), serving.result()  # raises why it stopped
                    await asyncio.sleep(0.01)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                             timeout=30) as client:
                    return [(await client.post("/inbox", content=b, headers=h)).status_code
                            for b, h in requests]
            finally:
                server.should_exit = True
                await serving
                sock.close()

    try:
        return asyncio.run(main())
    finally:
        store.close()


def _site(root: Path) -> SiteConfig:
    root.mkdir(parents=True)
    (root / "site.yaml").write_text(SITE_YAML)
    (root / "content" / "posts").mkdir(parents=True)
    (root / "content" / "posts" / "hello.md").write_text(POST_MD)
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    state = root / ".fedipress"
    state.mkdir(mode=0o700)
    shutil.copy(KEYS / "blog-private.pem", state / "private-key.pem")
    (state / "private-key.pem").chmod(0o600)
    return load_config(root / "site.yaml")


def _build(config: SiteConfig) -> None:
    Builder(config, log=lambda _line: None, warn=lambda _line: None).build(now=NOW)


def _pages(public: Path) -> dict[str, str]:
    return {str(p.relative_to(public)): p.read_text(encoding="utf-8")
            for p in sorted(public.rglob("*.html"))}


@dataclass(frozen=True)
class Hostile:
    config: SiteConfig
    post: str  # the post's object id
    statuses: list[int]
    baseline: dict[str, str]  # page -> HTML, built before any reply arrived
    pages: dict[str, str]  # page -> HTML, built with the hostile conversation

    @property
    def public(self) -> Path:
        return self.config.output_dir

    def conversation(self) -> PostConversation:
        conv = read_build_state(self.config.state_dir / "state.db").conversations
        found = conv.for_post(self.post)
        assert found is not None, "the store has no public conversation for the post"
        return found

    def baseline_for(self, page: str) -> Baseline:
        return Baseline.of_theme(THEME, self.baseline.get(page) or self.baseline[POST_PAGE])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    config = _site(tmp_path_factory.mktemp("hostile") / "blog")
    _build(config)
    baseline = _pages(config.output_dir)
    post = json.loads((config.output_dir / "posts/hello/object.json").read_text())["id"]
    with Remote() as remote:
        requests = []
        for n, payload in enumerate(PAYLOADS):
            actor = _actor(remote, n, payload)
            remote.docs[f"/users/h{n}"] = actor
            requests.append(_signed(_reply(actor["id"], n, payload, post)))
            requests.append(_signed(_like(actor["id"], n, post)))
        statuses = _deliver(config, requests)
    store = open_store(config.state_dir / "state.db")
    try:
        for interaction in store.interactions_for_object(post, approved_only=False):
            store.set_interaction_approved(interaction.activity_id, True)
        store.plan_publication([], [], [LedgerEntry(post, "x", NOW, NOW, "live", None)], NOW)
    finally:
        store.close()
    _build(config)
    yield Hostile(config, post, statuses, baseline, _pages(config.output_dir))


# --- the corpus arrived -------------------------------------------------------------------------


def test_every_hostile_activity_was_accepted_and_is_in_the_public_conversation(
    hostile: Hostile,
) -> None:
    """All but one: "\\ud800" is valid JSON but no text, and is refused (4xx, never a 5xx) in
    an activity and in the actor document the inbox fetches."""
    answers = dict(zip(_requests_by_payload(), hostile.statuses, strict=True))
    unreadable = {name for name, status in answers.items() if status >= 300}
    assert unreadable == {"bidi:lone-surrogate:reply", "bidi:lone-surrogate:like"}
    # The reply is refused as unreadable (400), the like as unverifiable: its actor document
    # cannot be read (401). Before, the actor's name crashed the store: a 503, retried forever.
    assert [answers[name] for name in sorted(unreadable)] == [401, 400]
    conv = hostile.conversation()
    assert len(conv.replies) == len(conv.likes) == len(PAYLOADS) - 1


def test_what_the_build_gets_is_already_plain(hostile: Hostile) -> None:
    """The conversation the build reads: names and handles plain, URLs http(s), avatars https."""
    conv = hostile.conversation()
    for reply in conv.replies:
        person = reply.author
        for text in (person.name, person.handle):  # plain text: "<" is a character, escaped later
            assert not any(c in text for c in "\u202e\u202d\u2066\u2067\u2068\u200b\ufeff")
        assert len(person.name) <= 100
        for url in (person.url, reply.url):
            assert url is None or url.startswith(("http://", "https://")), url
        assert person.avatar is None or person.avatar.startswith("https://")
        assert markup_problems(reply.content_html) == [], reply.content_html[:200]


# --- check 1: the HTML --------------------------------------------------------------------------


def test_built_pages_parse_clean(hostile: Hostile) -> None:
    assert POST_PAGE in hostile.pages
    problems = {page: found for page, html in hostile.pages.items()
                if (found := markup_problems(html, hostile.baseline_for(page)))}
    assert problems == {}


def test_stand_in_conversation_parses_clean(hostile: Hostile) -> None:
    page = _insert(hostile.pages[POST_PAGE], _stand_in(hostile.conversation()))
    assert page.count('class="p-comment h-cite"') == len(PAYLOADS) - 1
    assert markup_problems(page, hostile.baseline_for(POST_PAGE)) == []


def test_the_theme_shows_every_hostile_reply(hostile: Hostile) -> None:
    """Runs once the theme renders replies; until then the stand-in carries the check."""
    post = hostile.pages[POST_PAGE]
    if "xss-canary-" not in post:
        pytest.skip("the theme does not show replies on post pages yet (issue 14, page"
                    " rendering): the stand-in conversation is checked instead")
    missing = [n for n, p in enumerate(PAYLOADS)
               if f"xss-canary-{n}<" not in post and p.name != "bidi:lone-surrogate"]
    assert missing == [], f"{len(missing)} approved replies are not on the page"


def _identity_conversation(hostile: Hostile, monkeypatch: pytest.MonkeyPatch) -> PostConversation:
    """The public conversation as the build would get it with every sanitiser replaced by
    identity (what the detectors must catch)."""
    def same(value: object, *_args: object, **_kw: object) -> object:
        return value
    for name in ("safe_reply_html", "safe_name", "safe_handle", "safe_url"):
        monkeypatch.setattr(store_conversations, name, same)
    return hostile.conversation()


def test_html_check_fires_without_the_sanitiser(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = _insert(hostile.pages[POST_PAGE],
                   _stand_in(_identity_conversation(hostile, monkeypatch)))
    problems = markup_problems(page, hostile.baseline_for(POST_PAGE))
    assert len(problems) > 150
    assert any("script not from the theme" in p for p in problems)
    assert any("event handler" in p for p in problems)
    assert any("scheme javascript" in p for p in problems)
    assert any("style attribute" in p for p in problems)


def test_html_check_fires_without_escaping(hostile: Hostile) -> None:
    """The sanitised data put into a page unescaped: plain-text names that spell markup run."""
    page = _insert(hostile.pages[POST_PAGE], _stand_in(hostile.conversation(), escape=False))
    problems = markup_problems(page, hostile.baseline_for(POST_PAGE))
    assert any("script not from the theme" in p for p in problems), problems[:5]


# --- check 2: Chromium --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(hostile: Hostile) -> Iterator[Callable[[str], str]]:
    """The built public/ on loopback; returns a page's URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (/usr/bin/chromium)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(hostile.public)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield lambda page: base + page.removesuffix("index.html")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(served: Callable[[str], str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserProbe]:
    with BrowserProbe(tmp_path_factory.mktemp("chromium-profile")) as probe:
        yield probe


def _write(hostile: Hostile, name: str, html: str) -> str:
    path = hostile.public / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return name


@pytest.mark.browser
def test_no_built_page_runs_anything_in_chromium(
    hostile: Hostile, served: Callable[[str], str], browser: BrowserProbe,
) -> None:
    findings = {}
    for page in hostile.pages:
        found = browser.visit(served(page), hostile.baseline_for(page).scripts)
        if found:
            findings[page] = found
    assert findings == {}


@pytest.mark.browser
def test_stand_in_conversation_runs_nothing_in_chromium(
    hostile: Hostile, served: Callable[[str], str], browser: BrowserProbe,
) -> None:
    page = _write(hostile, STAND_IN_PAGE,
                  _insert(hostile.pages[POST_PAGE], _stand_in(hostile.conversation())))
    assert browser.visit(served(page), hostile.baseline_for(POST_PAGE).scripts) == []


@pytest.mark.browser
@pytest.mark.parametrize("escape", [True, False], ids=["identity-sanitiser", "no-escaping"])
def test_chromium_check_fires_on_an_unsafe_page(
    hostile: Hostile, served: Callable[[str], str], browser: BrowserProbe,
    monkeypatch: pytest.MonkeyPatch, escape: bool,
) -> None:
    conv = _identity_conversation(hostile, monkeypatch) if escape else hostile.conversation()
    page = _write(hostile, f"posts/hello/unsafe-{escape}.html",
                  _insert(hostile.pages[POST_PAGE], _stand_in(conv, escape=escape)))
    found = browser.visit(served(page), hostile.baseline_for(POST_PAGE).scripts)
    assert any(f.startswith(("a script ran", "dialog")) for f in found), found[:5]


@pytest.mark.browser
def test_chromium_check_catches_every_live_payload_alone(
    hostile: Hostile, served: Callable[[str], str], browser: BrowserProbe,
) -> None:
    """Each payload that runs script on its own, pasted raw into the post page: seen every time
    (so a page where one of them slipped through could not pass)."""
    known = hostile.baseline_for(POST_PAGE).scripts
    missed = []
    live = [p for p in PAYLOADS if p.live]
    for n, payload in enumerate(live):
        page = _write(hostile, f"raw/{n}.html",
                      _insert(hostile.pages[POST_PAGE], f"<div>{payload.text}</div>"))
        found = browser.visit(served(page), known)
        if not any(not f.startswith("DOM:") for f in found):
            missed.append(payload.name)
    assert missed == []
    assert len(live) >= 80
