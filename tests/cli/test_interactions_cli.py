"""`fedipress interactions [--json]` and `fedipress block` on a real state database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.store import Follower, Interaction, default_store_path, open_store

SITE = """\
title: CLI Test
base_url: https://blog.example/
author:
  name: Blog Author
  handle: author
"""
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POST = "https://blog.example/posts/hello/object.json"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "site.yaml").write_text(SITE)
    store = open_store(default_store_path(tmp_path / ".fedipress"))
    store.add_interaction(
        Interaction(
            "https://a.example/likes/1",
            "like",
            "https://a.example/u/a",
            POST,
            T,
            T,
            author_handle="a@a.example",
        )
    )
    store.add_interaction(
        Interaction(
            "https://b.example/create/1",
            "reply",
            "https://b.example/u/b",
            POST,
            T,
            T,
            content_html="<p>hello <b>there</b></p>",
            content_safe_html="<p>hello there</p>",
            reply_object_id="https://b.example/notes/1",
            in_reply_to=POST,
        )
    )
    store.upsert_follower(
        Follower(
            "https://b.example/u/b", "https://b.example/u/b/inbox", None, "b@b.example", None, T
        )
    )
    store.close()
    return tmp_path / "site.yaml"


def test_interactions_json_lines(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interactions", "--config", str(site), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert set(by_id) == {"https://a.example/likes/1", "https://b.example/create/1"}
    like = by_id["https://a.example/likes/1"]
    assert (like["type"], like["actor"], like["object"]) == ("Like", "https://a.example/u/a", POST)
    reply = by_id["https://b.example/create/1"]
    assert reply["type"] == "Create" and reply["content"] == "<p>hello <b>there</b></p>"


def test_interactions_table(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interactions", "--config", str(site)]) == 0
    out = capsys.readouterr().out
    assert "@a@a.example" in out and "like" in out and "hello there" in out


def test_interactions_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.yaml").write_text(SITE)
    assert main(["interactions", "--config", str(tmp_path / "site.yaml")]) == 0
    assert "no likes" in capsys.readouterr().out


def test_block_domain_and_actor(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["block", "--config", str(site), "Spam.Example"]) == 0
    assert main(["block", "--config", str(site), "spam.example"]) == 0
    assert "already blocked" in capsys.readouterr().out
    assert main(["block", "--config", str(site), "https://b.example/u/b"]) == 0
    store = open_store(default_store_path(site.parent / ".fedipress"))
    try:
        assert store.is_blocked("https://x.spam.example/u/1")
        assert store.is_blocked("https://b.example/u/b")
        assert not store.is_blocked("https://b.example/u/c")
        # Blocking an actor removes it as a follower and removes what it left.
        assert store.get_follower("https://b.example/u/b") is None
        assert [i.actor_id for i in store.recent_interactions()] == ["https://a.example/u/a"]
    finally:
        store.close()


def test_block_rejects_nonsense(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["block", "--config", str(site), "not a domain/x"]) == 2
    assert "error:" in capsys.readouterr().err
