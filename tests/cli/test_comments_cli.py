"""`fedipress comments` on a real state database: the listing (plain text, statuses, newest
first, mentions apart), approve, hide, block and unblock, and what the next build then reads."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.federation.comments import short_id
from fedipress.store import Follower, Interaction, LedgerEntry, open_store, store_location
from fedipress.store.snapshot import read_build_state

SITE = """\
title: CLI Test
base_url: https://blog.example/
author:
  name: Blog Author
  handle: author
fediverse:
  comments: followers
"""
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POST = "https://blog.example/posts/hello/object.json"
ACTOR = "https://blog.example/actor.json"
SHOWN = "https://a.example/create/1"
HELD = "https://b.example/create/2"
PRIVATE = "https://c.example/create/3"
MENTION = "https://d.example/create/4"


def _reply(activity: str, n: int, **kw: object) -> Interaction:
    host = activity.split("/")[2]
    fields: dict[str, object] = {
        "author_handle": f"u{n}@{host}",
        "reply_object_id": f"https://{host}/notes/{n}",
        "in_reply_to": POST,
    }
    fields.update(kw)
    return Interaction(activity, "reply", f"https://{host}/users/u{n}", POST,
                       T + timedelta(minutes=n), T + timedelta(minutes=n), **fields)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def site(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The blog, its store on each engine (PostgreSQL: named by FEDIPRESS_DATABASE_URL, as
    a deployment on several processes names it)."""
    if request.param == "postgresql":
        monkeypatch.setenv("FEDIPRESS_DATABASE_URL", request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv("FEDIPRESS_DATABASE_URL", raising=False)
    (tmp_path / "site.yaml").write_text(SITE)
    store = open_store(_location(tmp_path / "site.yaml"))
    store.plan_publication([], [], [LedgerEntry(POST, "h", T, T, "live", None)], T)
    store.add_interaction(_reply(SHOWN, 1, content_html="<p>Great <b>post</b>!</p>"))
    store.add_interaction(_reply(
        HELD, 2, approved=False, held_reason="not a follower",
        content_html=('<p>Hello<br>there <script>alert(1)</script>\x1b\u202e'
                      '<a href="x">link</a></p>')))
    store.add_interaction(_reply(PRIVATE, 3, visibility="followers",
                                 content_html="<p>between us</p>"))
    store.add_interaction(Interaction(
        MENTION, "mention", "https://d.example/users/u4", ACTOR, T + timedelta(minutes=4),
        T + timedelta(minutes=4), author_handle="u4@d.example", content_html="<p>@author hi</p>",
        reply_object_id="https://d.example/notes/4", visibility="direct", approved=False,
        held_reason="mentions the blog without replying to a post"))
    store.add_interaction(Interaction("https://a.example/likes/1", "like",
                                      "https://a.example/users/u1", POST, T, T))
    store.upsert_follower(Follower("https://b.example/users/u2", "https://b.example/inbox", None,
                                   "u2@b.example", None, T))
    store.close()
    return tmp_path / "site.yaml"


def _location(site: Path) -> Path | str:
    return store_location(site.parent / ".fedipress")


def _shown(site: Path) -> list[str]:
    state = read_build_state(_location(site), ACTOR)
    post = state.conversations.for_post(POST)
    return [r.id for r in post.replies] if post is not None else []


def _run(site: Path, *args: str) -> int:
    return main(["comments", "--config", str(site), *args])


def test_listing_is_plain_text_newest_first_with_statuses_and_mentions_apart(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(site) == 0
    out = capsys.readouterr().out
    assert "<" not in out and "\x1b" not in out and "\u202e" not in out and "alert" not in out
    assert "Hello there link" in out and "Great post!" in out
    head, _, mentions = out.partition("mentions (not replies to a post")
    ids = [line.split()[0] for line in head.splitlines() if line and not line.startswith(" ")]
    assert ids[:3] == [short_id(PRIVATE), short_id(HELD), short_id(SHOWN)]  # newest first
    assert f"{short_id(HELD)}  reply  held (not a follower)" in head
    assert f"{short_id(PRIVATE)}  reply  private (followers only)" in head
    assert f"{short_id(SHOWN)}  reply  shown (public)" in head
    assert f"on {POST}" in head
    assert short_id(MENTION) in mentions and "@author hi" in mentions
    assert short_id(MENTION) not in head
    assert "1 held" in out


def test_json_and_status_filter(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(site, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"]: r["status"] for r in rows} == {
        short_id(SHOWN): "shown", short_id(HELD): "held", short_id(PRIVATE): "private",
        short_id(MENTION): "mention"}
    held = next(r for r in rows if r["status"] == "held")
    assert held["text"] == "Hello there link" and held["post"] == POST
    assert _run(site, "list", "--status", "held", "--json") == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == [short_id(HELD)]


def test_approve_and_hide_change_the_next_build(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _shown(site) == ["https://a.example/notes/1"]
    assert _run(site, "approve", short_id(HELD)) == 0
    assert "approved" in capsys.readouterr().out
    assert _shown(site) == ["https://a.example/notes/1", "https://b.example/notes/2"]
    assert _run(site, "hide", short_id(SHOWN)[:5]) == 0  # a unique prefix is enough
    assert _shown(site) == ["https://b.example/notes/2"]
    assert _run(site, "list", "--status", "held") == 0
    assert "hidden with `fedipress comments hide`" in capsys.readouterr().out
    # The reply's own URL works as its id too.
    assert _run(site, "approve", "https://a.example/notes/1") == 0
    assert len(_shown(site)) == 2


def test_private_replies_and_mentions_cannot_be_approved(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(site, "approve", short_id(PRIVATE)) == 2
    assert "did not make it public" in capsys.readouterr().err
    assert _run(site, "approve", short_id(MENTION)) == 2
    assert "never shown on pages" in capsys.readouterr().err
    assert _shown(site) == ["https://a.example/notes/1"]


def test_unknown_malformed_and_ambiguous_ids_are_one_line_errors(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(site, "approve", "ffffffff") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no reply, quote or mention has the id ffffffff" in err
    assert _run(site, "hide", "zz") == 2
    assert "not a comment id" in capsys.readouterr().err
    # Two stored replies whose ids share their first four hex digits.
    seen: dict[str, str] = {}
    for n in itertools.count():
        activity = f"https://e.example/create/{n}"
        prefix = hashlib.sha256(activity.encode()).hexdigest()[:4]
        if prefix in seen:
            pair = (seen[prefix], activity)
            break
        seen[prefix] = activity
    store = open_store(_location(site))
    for k, activity in enumerate(pair):
        store.add_interaction(_reply(activity, 10 + k))
    store.close()
    assert _run(site, "approve", prefix) == 2
    err = capsys.readouterr().err
    assert "matches 2 comments" in err and short_id(pair[0]) in err and short_id(pair[1]) in err


def test_block_by_handle_removes_follower_and_replies_and_unblock_lifts_it(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(site, "approve", short_id(HELD)) == 0
    assert _run(site, "block", "@u2@b.example") == 0
    out = capsys.readouterr().out
    assert "blocked https://b.example/users/u2" in out and "1 follower" in out
    store = open_store(_location(site))
    try:
        assert store.is_blocked("https://b.example/users/u2")
        assert store.get_follower("https://b.example/users/u2") is None
    finally:
        store.close()
    assert _shown(site) == ["https://a.example/notes/1"]
    assert _run(site, "block", "@nobody@nowhere.example") == 2
    assert "no reply, reaction or follower" in capsys.readouterr().err
    assert _run(site, "unblock", "https://b.example/users/u2") == 0
    assert "unblocked" in capsys.readouterr().out
    assert _run(site, "unblock", "@u2@b.example") == 2


def test_block_a_domain_takes_every_account_on_it(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(site, "block", "A.Example") == 0
    assert "removed 0 followers and 2" in capsys.readouterr().out  # the reply and the like
    assert _shown(site) == []
    assert _run(site, "block", "not a domain/x") == 2


def test_interactions_shows_replies_as_plain_text_with_status(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["interactions", "--config", str(site)]) == 0
    out = capsys.readouterr().out
    assert "<" not in out and "alert" not in out and "\x1b" not in out
    assert "@u2@b.example" in out and "Hello there link" in out and POST in out
    assert "[held: not a follower]" in out and "[private: followers]" in out
    assert "(mentions the blog)" in out and "@author hi" in out
    assert main(["interactions", "--config", str(site), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    held = next(r for r in rows if r["id"] == HELD)
    assert held["text"] == "Hello there link" and held["held_reason"] == "not a follower"


def test_comments_runs_as_a_command(site: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fedipress.cli", "comments", "--config",
                           str(site), "approve", "nope1234"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("fedipress: error: ")


def test_a_new_site_says_comments_followers(tmp_path: Path) -> None:
    from fedipress.config import load_config

    assert main(["init", str(tmp_path / "blog")]) == 0
    text = (tmp_path / "blog" / "site.yaml").read_text()
    assert "\n  comments: followers" in text
    assert load_config(tmp_path / "blog" / "site.yaml").fediverse.comments == "followers"


@pytest.mark.parametrize(("yaml", "message"), [
    ("  comments: sometimes\n",
     "site.yaml:7: fediverse.comments: must be one of all | followers | approved"),
    ("  blocked_words: ['  ']\n", "site.yaml:7: fediverse.blocked_words: expected a word"),
    ("  blocked_words: casino\n", "site.yaml:7: fediverse.blocked_words: expected a list"),
])
def test_policy_mistakes_are_one_line_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml: str, message: str
) -> None:
    (tmp_path / "site.yaml").write_text(SITE.replace("  comments: followers\n", yaml))
    assert _run(tmp_path / "site.yaml") == 2
    assert message in capsys.readouterr().err


def test_blocked_words_are_read_folded_and_the_default_policy_is_followers(
    tmp_path: Path,
) -> None:
    from fedipress.config import load_config

    (tmp_path / "site.yaml").write_text(SITE.replace(
        "  comments: followers\n", "  blocked_words: ['Buy   Followers', casino, CASINO]\n"))
    fediverse = load_config(tmp_path / "site.yaml").fediverse
    assert fediverse.comments == "followers"
    assert fediverse.blocked_words == ("buy followers", "casino")
