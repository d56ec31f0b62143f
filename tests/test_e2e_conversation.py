"""Issue 14, as it will be checked: the conversation comes home, end to end.

Everything runs as real processes on 127.0.0.1: the blog's inbox service (`fedipress inbox`
with its owner token, `fediverse.comments: followers`) serving the built site, two Fedify peers
(tests/interop/peer.mjs, an independent ActivityPub implementation), the `fedipress` commands
an author runs, headless Chromium, and `git clone` for the CI build.

1. bob follows the blog (a verified Accept), a new post is published (bob gets the Create),
   bob replies, replies to his own reply (sent to the blog), sends a followers-only reply,
   likes, boosts and asks to quote it: the inbox answers with an Accept whose `result`
   dereferences to the authorization.
2. eve (not a follower) sends hostile replies (held under `followers`: one approved, one
   approved then hidden, one left held), a followers-only reply and a direct message.
3. The local build: the page shows the thread, the counts and "quoted by", parses as
   microformats2 (h-entry with comment/like/repost), runs nothing in Chromium; the post object
   embeds the right totalItems and its quote policy.
4. The followers-only replies and the DM are nowhere public, nor in the owner API's export or
   the live endpoint (off), and are listed by `fedipress comments` as private.
5. A fresh clone built in CI (only the service's URL and token, plus the loopback opt-in)
   gives the same page and the same object.json, byte for byte (and the same public/ but for
   the follower count).

Runs in about 10 s. The 285-payload XSS suite is tests/federation/test_conversation_xss.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import fedipress
from support.interop_peer import Peer, require_harness, start_peer
from support.mf2 import parse_items
from support.service import Service, clean_env, read_json, start_service, write_post
from support.xss_check import CHROMIUM, Baseline, BrowserProbe, markup_problems

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

WAIT = 30.0
SLUG = "news"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
THEME = Path(fedipress.__file__).parent / "generator" / "themes" / "default" / "templates"

BOB_REPLY = "<p>BOB-FIRST what a <b>lovely</b> post</p>"
BOB_ANSWER = "<p>BOB-SECOND and one more thought on my own reply</p>"
# eve's hostile replies: each carries a marker to find it and payloads that must never run.
EVE_SHOWN = ('<p>EVE-SHOWN <script>alert("xss-script")</script>'
             '<a href="javascript:alert(\'xss-js\')">click me</a> '
             '<img src="x" onerror="alert(\'xss-onerror\')">'
             '<svg onload="alert(\'xss-svg\')"><circle r="1"/></svg>'
             '<a href="https://example.org/fine" onclick="alert(\'xss-onclick\')">fine</a>'
             '<a href="&#106;avascript:alert(\'xss-entity\')">entity</a>'
             '<span style="background:url(javascript:alert(1))" onmouseover="alert(5)">hover'
             '</span></p>')
EVE_HIDDEN = ('<p>EVE-HIDDEN <iframe src="javascript:alert(\'xss-frame\')"></iframe>'
              '<math><mtext><table><mglyph><style><img src=x onerror=alert(6)></style>'
              '</mglyph></table></mtext></math></p>')
EVE_HELD = '<p>EVE-HELD <details open ontoggle="alert(7)">x</details></p>'
EVE_FOLLOWERS = "<p>EVE-FOLLOWERS-SECRET only for my followers</p>"
EVE_DIRECT = "<p>EVE-DIRECT-SECRET a word between us</p>"
# bob's followers-only reply: from a follower, so not held; private all the same.
BOB_FOLLOWERS = "<p>BOB-FOLLOWERS-SECRET for my followers only</p>"
SECRETS = ("EVE-FOLLOWERS-SECRET", "EVE-DIRECT-SECRET", "BOB-FOLLOWERS-SECRET")


def _fedipress(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", *args, "--config", str(root / "site.yaml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False)
    where = f"fedipress {' '.join(args)}"
    assert "Traceback" not in run.stderr, f"{where} crashed:\n{run.stderr}"
    assert run.returncode == 0, f"{where} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    return run


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=Tester", "-c", "user.email=tester@example.invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def _verified_from_blog(activity: dict[str, Any], service: Service) -> None:
    dump = json.dumps(activity, indent=1)[:4000]
    assert activity["verified"] is True, dump
    assert activity["actor"] == service.base + "actor.json", dump
    assert str(activity["signature"]["key_id"]).startswith(service.base + "actor.json"), dump


def _props(item: dict[str, Any]) -> dict[str, list[Any]]:
    props: dict[str, list[Any]] = item["properties"]
    return props


def _text(value: Any) -> str:
    """A property value as text: mf2py and support.mf2 give e-* as {"html", "value"}."""
    if isinstance(value, dict):
        return str(value.get("value", ""))
    return str(value)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    require_harness()
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium is not installed ({CHROMIUM})")
    running = start_service(tmp_path / "blog", posts=(),
                            fediverse_yaml="  comments: followers\n")
    try:
        yield running
    finally:
        log = running.stop()
        print(log[-20000:])  # shown by pytest when the test fails
        assert "Traceback" not in log, log
        assert running.token not in log


def test_the_issues_check_the_conversation_comes_home(service: Service, tmp_path: Path) -> None:
    root, base = service.root, service.base
    local = clean_env()
    actor = base + "actor.json"
    host = base.split("/")[2]
    bob = start_peer(tmp_path, username="bob")
    eve: Peer | None = None
    try:
        # --- 1. bob follows, a new post reaches him, and he joins the conversation -----------
        follow_id = bob.follow(f"tester@{host}")["id"]
        accept = bob.wait_for(lambda a: a.get("type") == "Accept"
                              and a.get("matched_follow_id") == follow_id, timeout=WAIT)
        _verified_from_blog(accept, service)

        write_post(root, SLUG, "Fresh news for the fediverse.", age=timedelta(minutes=1))
        _fedipress(root, "build", "--quiet", env=local)
        _fedipress(root, "publish", "--allow-private-addresses", "--wait", "20",
                   "--first-publish", env=local)
        post_id = base + f"posts/{SLUG}/object.json"
        page_path = root / "public" / "posts" / SLUG / "index.html"
        object_path = root / "public" / "posts" / SLUG / "object.json"
        create = bob.wait_for(lambda a: a.get("type") == "Create"
                              and a.get("object_id") == post_id, timeout=WAIT)
        _verified_from_blog(create, service)
        # The page as the theme makes it without any conversation: the XSS baseline.
        bare_page = page_path.read_text(encoding="utf-8")
        assert 'class="conversation"' not in bare_page

        first = bob.reply(post_id, BOB_REPLY)
        second = bob.reply(first["note"], BOB_ANSWER, to=actor)
        bob.reply(post_id, BOB_FOLLOWERS, visibility="followers")
        bob.like(post_id)
        bob.announce(post_id)
        quote = bob.quote_request(post_id)
        assert quote["status"] in (200, 202), quote
        quote_accept = bob.wait_for(
            lambda a: a.get("type") == "Accept" and a.get("object_id") == quote["id"],
            timeout=WAIT)
        _verified_from_blog(quote_accept, service)
        authorization_url = quote_accept["raw"]["result"]
        if isinstance(authorization_url, dict):
            authorization_url = authorization_url["id"]
        assert str(authorization_url).startswith(base + ".fedipress/quotes/"), quote_accept
        got = httpx.get(authorization_url, headers={"Accept": "application/activity+json"})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/activity+json"), got.headers
        authorization = got.json()
        assert authorization["type"] == "QuoteAuthorization", authorization
        assert authorization["id"] == authorization_url
        assert authorization["attributedTo"] == actor, authorization
        assert authorization["interactingObject"] == quote["note"], authorization
        assert authorization["interactionTarget"] == post_id, authorization

        # --- 2. eve, not a follower: hostile replies, a followers-only reply and a DM ---------
        eve = start_peer(tmp_path, username="eve")
        shown = eve.reply(post_id, EVE_SHOWN)
        hidden = eve.reply(post_id, EVE_HIDDEN)
        held = eve.reply(post_id, EVE_HELD)
        eve.reply(post_id, EVE_FOLLOWERS, visibility="followers")
        eve.reply(post_id, EVE_DIRECT, visibility="direct")

        listed = {c["object"]: c for c in [
            json.loads(line) for line in _fedipress(root, "comments", "--json",
                                                    env=local).stdout.splitlines()
            if line.strip()] if c["object"]}
        for note in (first["note"], second["note"]):
            assert listed[note]["status"] == "shown", listed[note]
        for sent in (shown, hidden, held):
            assert listed[sent["note"]]["status"] == "held", listed[sent["note"]]
            assert listed[sent["note"]]["reason"] == "not a follower", listed[sent["note"]]
        private = sorted((c["visibility"], c["text"].split()[0]) for c in listed.values()
                         if c["status"] == "private")
        assert private == [("direct", "EVE-DIRECT-SECRET"),
                           ("followers", "BOB-FOLLOWERS-SECRET"),
                           ("followers", "EVE-FOLLOWERS-SECRET")], listed
        for c in listed.values():  # plain text, never the sender's HTML
            assert "<script" not in c["text"] and "onerror" not in c["text"], c

        # The author moderates with the real commands.
        _fedipress(root, "comments", "approve", listed[shown["note"]]["id"], env=local)
        _fedipress(root, "comments", "approve", listed[hidden["note"]]["id"], env=local)
        _fedipress(root, "comments", "hide", listed[hidden["note"]]["id"], env=local)

        # --- 3. the local build -------------------------------------------------------------
        _fedipress(root, "build", "--quiet", env=local)
        page = page_path.read_text(encoding="utf-8")
        section = page[page.index('<section class="conversation"'):]
        section = section[:section.index("</section>")]
        assert "3 replies · 1 like · 1 boost · 1 quote" in section, section[:2000]
        assert "Quoted by" in section and "Liked by" in section and "Boosted by" in section
        assert quote["note"] in section  # the quote's face links to the quoting post
        assert "BOB-FIRST" in section and "BOB-SECOND" in section and "EVE-SHOWN" in section
        for gone in ("EVE-HIDDEN", "EVE-HELD", *SECRETS):
            assert gone not in page, gone

        # No payload runs: the HTML as parsed, and the page as Chromium runs it.
        baseline = Baseline.of_theme(THEME, bare_page)
        assert markup_problems(page, baseline) == []
        with BrowserProbe(tmp_path / "chromium-profile") as browser:
            # The detector works here: a page with one payload left raw is caught.
            (root / "public" / "canary.html").write_text(
                bare_page.replace("</body>", "<img src=x onerror=alert(1)></body>"))
            assert browser.visit(base + "canary.html", baseline.scripts) != []
            (root / "public" / "canary.html").unlink()
            assert browser.visit(base + f"posts/{SLUG}/", baseline.scripts) == []

        items, reader = parse_items(page, base + f"posts/{SLUG}/")
        entries = [i for i in items if "h-entry" in i["type"]]
        assert len(entries) == 1, (reader, items)
        entry = _props(entries[0])
        comments = entry["comment"]
        assert [c["type"] for c in comments] == [["h-cite"], ["h-cite"]], (reader, comments)
        top = {_text(_props(c)["content"][0]).split()[0]: c for c in comments}
        assert set(top) == {"BOB-FIRST", "EVE-SHOWN"}, (reader, top)
        bob_reply = _props(top["BOB-FIRST"])
        assert bob_reply["url"] == [first["note"]], (reader, bob_reply)
        assert bob_reply["published"] and re.match(r"\d{4}-\d\d-\d\dT", bob_reply["published"][0])
        # e-content: the reply's HTML reduced to the allowlist (<b> is not on it).
        assert bob_reply["content"][0]["html"].strip() == "<p>BOB-FIRST what a lovely post</p>", \
            bob_reply["content"]
        author = bob_reply["author"][0]
        assert author["type"] == ["h-card"], (reader, author)
        assert _props(author)["url"] == [bob.actor_id], (reader, author)  # the actor's `url`
        assert _props(author)["name"] == ["bob (Fedify interop peer)"], (reader, author)
        assert _props(author)["nickname"] == [bob.handle], (reader, author)
        nested = bob_reply["comment"]
        assert len(nested) == 1 and _props(nested[0])["url"] == [second["note"]], nested
        assert "BOB-SECOND" in _text(_props(nested[0])["content"][0])
        assert "comment" not in _props(top["EVE-SHOWN"]), top["EVE-SHOWN"]
        for kind in ("like", "repost"):
            [face] = entry[kind]
            assert face["type"] == ["h-cite"], (kind, face)
            who = _props(face)["author"][0]
            assert who["type"] == ["h-card"], who
            assert _props(who)["url"] == [bob.actor_id], (kind, who)
        # The quote: a u-mention h-cite whose u-url is the quoting post.
        [quoted] = entry["mention"]
        assert quoted["type"] == ["h-cite"] and _props(quoted)["url"] == [quote["note"]], quoted

        post = json.loads(object_path.read_bytes())
        assert post["id"] == post_id
        assert post["replies"]["type"] == "OrderedCollection", post["replies"]
        # bob's reply, his reply to it and eve's approved one; never the held, hidden or
        # private ones.
        assert post["replies"]["totalItems"] == 3, post["replies"]
        assert sorted(post["replies"]["first"]["orderedItems"]) == sorted(
            [first["note"], second["note"], shown["note"]]), post["replies"]
        assert post["likes"]["totalItems"] == 1, post["likes"]
        assert post["shares"]["totalItems"] == 1, post["shares"]
        assert post["interactionPolicy"]["canQuote"]["automaticApproval"] == [PUBLIC], post

        # --- 4. privacy: the followers-only reply and the DM are nowhere public ----------------
        for path in sorted((root / "public").rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, (secret, path)
        export = httpx.get(service.api("/conversations"), headers=service.auth())
        assert export.status_code == 200, export.text
        for secret in SECRETS:
            assert secret not in export.text, secret
        exported = read_json(export)["objects"]
        assert isinstance(exported, dict)
        assert len(exported[post_id]["replies"]) == 3, exported[post_id]
        # comments_live is off: the live endpoint answers nothing.
        live = httpx.get(base + ".fedipress/live/v1/conversation", params={"post": post_id})
        assert live.status_code == 404, live.text
        assert not any(secret in live.text for secret in SECRETS)

        # --- 5. the same build in a fresh clone, in CI, from the service ----------------------
        (root / ".gitignore").write_text("public/\n.fedipress/\n")
        _git("init", "--quiet", cwd=root)
        _git("add", "-A", cwd=root)
        _git("commit", "--quiet", "-m", "blog", cwd=root)
        clone = tmp_path / "ci"
        _git("clone", "--quiet", str(root), str(clone), cwd=tmp_path)
        assert not (clone / ".fedipress").exists() and not (clone / "public").exists()
        ci = clean_env(CI="true", FEDIPRESS_SERVICE_URL=base,
                       FEDIPRESS_SERVICE_TOKEN=service.token,
                       FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1")
        built = _fedipress(clone, "build", env=ci)
        assert "conversation: 3 replies and 3 reactions on 1 post from the service" in \
            built.stdout + built.stderr, built.stdout + built.stderr
        assert service.token not in built.stdout + built.stderr
        assert not (clone / ".fedipress" / "state.db").exists()
        ci_public = clone / "public" / "posts" / SLUG
        assert (ci_public / "index.html").read_bytes() == page_path.read_bytes()
        assert (ci_public / "object.json").read_bytes() == object_path.read_bytes()
        # And everything else the conversation reaches (replies.json, context.json, the outbox,
        # the feeds...) alike; only followers.json differs: its count is the store's, which a
        # CI build does not have (the conversation export carries no follower count).
        mine = {q.relative_to(root / "public"): q.read_bytes()
                for q in (root / "public").rglob("*") if q.is_file()}
        theirs = {q.relative_to(clone / "public"): q.read_bytes()
                  for q in (clone / "public").rglob("*") if q.is_file()}
        assert sorted(mine) == sorted(theirs)
        assert {str(q) for q in mine if mine[q] != theirs[q]} <= {"followers.json"}

        # Fedify accepted everything the blog sent along the way.
        for peer in (bob, eve):
            assert peer is not None
            problems = [a for a in peer.received()
                        if a.get("type") == "listener-error" or a.get("verified") is not True]
            assert not problems, json.dumps(problems, indent=1)[:4000]
    except Exception:
        for who in (bob, eve):  # Fedify's own warnings say why it refused something
            if who is not None:
                said = [r for r in who._get("logs") if r.get("level") in ("warning", "error")]
                print(who.username, json.dumps(said, indent=1)[-8000:])
        raise
    finally:
        bob.stop()
        if eve is not None:
            eve.stop()
