"""Remote data never reaches the author's terminal as a control sequence: a hostile handle,
display name, reply text, actor URL, inbox and delivery error (ESC sequences, a right-to-left
override, a carriage return, a C1 CSI) are printed by `interactions`, `comments`, `followers`
and `deliveries`, as text and as --json, from a real state database; no control, format or
separator character but the newline reaches stdout, and the JSON lines still carry the values."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.store import Follower, Interaction, PlannedActivity, default_store_path, open_store

SITE = """\
title: Terminal Test
base_url: https://blog.example/
author:
  name: Blog Author
  handle: author
"""
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POST = "https://blog.example/posts/hello/object.json"
EVIL = "\x1b[31m\u202e\r"  # colour, right-to-left override, carriage return
HANDLE = f"{EVIL}mallory@evil.example"
NAME = f"Mal\x1b]0;owned\x07lory{EVIL}\x9b2J"
ACTOR = f"https://evil.example/users/{EVIL}mallory"
TEXT = f"<p>\x1b[2Jwiped{EVIL}fake text\u2028</p>"
ERROR = f"HTTP said {EVIL}\x1b[1A everything is fine"


def _bad(text: str) -> list[str]:
    """Characters a terminal could act on (only the newline is allowed)."""
    return [c for c in text if c != "\n" and (
        unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")
        or (unicodedata.category(c) == "Cf" and c not in "\u200c\u200d"))]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "site.yaml").write_text(SITE)
    store = open_store(default_store_path(tmp_path / ".fedipress"))
    common = {"author_name": NAME, "author_handle": HANDLE, "author_profile_url": ACTOR}
    store.add_interaction(Interaction(
        f"{ACTOR}/likes/1", "like", ACTOR, POST, T, T, **common))
    store.add_interaction(Interaction(
        f"{ACTOR}/create/1", "reply", ACTOR, POST, T, T, content_html=TEXT,
        content_safe_html=TEXT, reply_object_id=f"{ACTOR}/notes/1", in_reply_to=POST,
        approved=False, held_reason="not a follower", **common))
    store.add_interaction(Interaction(
        f"{ACTOR}/create/2", "mention", ACTOR, POST, T, T, content_html=TEXT,
        reply_object_id=f"{ACTOR}/notes/2", in_reply_to=f"https://evil.example/{EVIL}",
        **common))
    inbox = f"https://evil.example/inbox/{EVIL}"
    store.upsert_follower(Follower(ACTOR, inbox, None, HANDLE, NAME, T))
    store.upsert_follower(Follower(ACTOR + "2", inbox, None, HANDLE, NAME, T,
                                   state="pending"))
    activity = PlannedActivity("https://blog.example/activities/1", POST, "Create", b"{}")
    store.plan_deliveries(activity, [inbox], T)
    [claimed] = store.claim_due("test", T + timedelta(seconds=1), 10, timedelta(minutes=5))
    store.mark_failed(claimed.delivery.id, "test", ERROR, 500)
    store.close()
    return tmp_path / "site.yaml"


COMMANDS = [
    ["interactions"], ["interactions", "--json"],
    ["comments"], ["comments", "--json"], ["comments", "list", "--status", "held"],
    ["followers"], ["followers", "--json"], ["followers", "requests"],
    ["followers", "--json", "requests"], ["deliveries"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_remote_control_characters_reach_the_terminal(
        site: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command[0], "--config", str(site), *command[1:]]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip(), argv
    assert _bad(out) == [] and _bad(err) == [], (argv, out)
    # Still readable: the person named (or their actor shown), the error said.
    assert ("everything is fine" if command == ["deliveries"] else "mallory") in out


def test_json_lines_keep_their_values(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interactions", "--config", str(site), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["author_name"] for r in records} == {NAME}  # escaped on the wire, not changed
    assert {r["actor"] for r in records} == {ACTOR}


def test_human_lines_name_the_sanitised_handle_or_the_escaped_actor(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comments", "--config", str(site)]) == 0
    out = capsys.readouterr().out
    # The hostile handle is no handle at all: the actor is shown, its controls as escapes.
    assert "https://evil.example/users/\\u001b[31m\\u202e\\u000dmallory" in out
    assert "wiped" in out and "fake text" in out  # the reply's words are still readable
