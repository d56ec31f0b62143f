"""Every activity the inbox accepts (202) and then ignores is logged at info level with the
reason, naming the actor or object it was for: accepted-and-dropped must never be silent.
Real signed requests, a real SQLite store and a real loopback server for the remote actors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from support.inbox import ACTOR, BLOG, POST, Env, note

ELSEWHERE = "https://elsewhere.example/notes/1"


def _ignored_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.name == "fedipress.inbox" and r.levelno == logging.INFO
        and "ignored" in r.getMessage()
    ]


# name: (activity to send, texts the log line must contain)
CASES: dict[str, Callable[[Env], tuple[dict[str, Any], list[str]]]] = {
    "Follow of another actor": lambda e: (
        e.activity("Follow", BLOG + "someone-else.json"),
        [BLOG + "someone-else.json", ACTOR],
    ),
    "Like of something not ours": lambda e: (
        e.activity("Like", ELSEWHERE), [ELSEWHERE, "not one of this blog's posts"],
    ),
    "Announce of something not ours": lambda e: (
        e.activity("Announce", ELSEWHERE), [ELSEWHERE, "not one of this blog's posts"],
    ),
    "an unhandled type": lambda e: (
        e.activity("Arrive", ELSEWHERE), ["Arrive activities are not handled", ELSEWHERE],
    ),
    "Create not replying to us": lambda e: (
        e.activity("Create", note(e, 9, ELSEWHERE)),
        [f"{e.alice}/statuses/9", ELSEWHERE, "not a reply to this blog"],
    ),
    "Create of a reply attributed to someone else": lambda e: (
        e.activity("Create", {**note(e, 8, POST), "attributedTo": "https://x.example/u"}),
        ["attributed to https://x.example/u", e.alice],
    ),
    "Update of a reply never stored": lambda e: (
        e.activity("Update", note(e, 7, POST)),
        [f"{e.alice}/statuses/7", "not a reply of"],
    ),
    "Delete of a reply never stored": lambda e: (
        e.activity("Delete", f"{e.alice}/statuses/6"),
        [f"{e.alice}/statuses/6", "not a reply of"],
    ),
    "Undo of a Like never stored": lambda e: (
        e.activity("Undo", {"id": f"{e.alice}/likes/5", "type": "Like", "object": POST}),
        [f"{e.alice}/likes/5", "nothing of", e.alice],
    ),
    "Undo of another actor's activity": lambda e: (
        e.activity("Undo", {"id": "https://x.example/f/1", "type": "Follow",
                            "actor": "https://x.example/u", "object": ACTOR}),
        ["https://x.example/f/1", "https://x.example/u"],
    ),
    "Move of another account": lambda e: (
        {**e.activity("Move", "https://x.example/u"), "target": "https://y.example/u"},
        ["Move of https://x.example/u", e.alice],
    ),
    "Move of an account that does not follow": lambda e: (
        {**e.activity("Move", e.alice), "target": "https://y.example/u"},
        [e.alice, "does not follow"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_accepted_and_ignored_is_logged_with_the_reason(
    env: Env, caplog: pytest.LogCaptureFixture, name: str  # noqa: F811
) -> None:
    activity, texts = CASES[name](env)
    caplog.set_level(logging.INFO, logger="fedipress.inbox")
    response = env.post(activity)
    assert response.status_code == 202, response.text
    lines = _ignored_lines(caplog)
    assert lines, f"nothing logged for {name}: {[r.getMessage() for r in caplog.records]}"
    assert activity["id"] in lines[-1]
    for text in texts:
        assert text in lines[-1], lines[-1]
    assert env.store.count_followers() == 0 and env.store.recent_interactions() == []


def test_a_duplicate_is_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    like = env.activity("Like", POST)
    assert env.post(like).status_code == 202
    caplog.set_level(logging.INFO, logger="fedipress.inbox")
    assert env.post(like).status_code == 202
    [line] = _ignored_lines(caplog)
    assert "duplicate" in line and like["id"] in line and env.alice in line


def test_a_self_delete_of_a_stranger_is_logged(
    env: Env, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    caplog.set_level(logging.INFO, logger="fedipress.inbox")
    assert env.post(env.activity("Delete", env.alice)).status_code == 202
    [line] = _ignored_lines(caplog)
    assert env.alice in line and "never heard of" in line
