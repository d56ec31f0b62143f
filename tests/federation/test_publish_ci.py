"""Under CI (`CI=true`): nothing waits for input, the output is a plain log, no secret ever
appears in it, and the exit code is non-zero only when a delivery needs the author.

Real `fedipress` processes with stdin closed, the key only in FEDIPRESS_PRIVATE_KEY (as a CI
secret carries it), a real SQLite store and a real loopback inbox that answers as scripted.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.store import Follower, open_store
from support.e2e_helpers import Blog, CommandResult, write_post
from support.inbox_sink import InboxSink
from support.interop_peer import free_port


@pytest.fixture
def blog(tmp_path: Path) -> Blog:
    made = Blog.create(tmp_path, key_in_env=True)
    made.env["CI"] = "true"
    return made


def follow(blog: Blog, name: str, inbox: str) -> None:
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        store.upsert_followers([Follower(
            actor_id=inbox.rsplit("/", 1)[0], inbox=inbox, shared_inbox=None,
            handle=f"{name}@127.0.0.1", name=name, followed_at=datetime.now(UTC))])
    finally:
        store.close()


def secret_pieces(blog: Blog) -> list[str]:
    """The values that must never be printed: the token, and every line of the private key
    (a line is enough to leak a part of it), plus the PEM's label."""
    pem = blog.env["FEDIPRESS_PRIVATE_KEY"]
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [blog.env["FEDIPRESS_SERVICE_TOKEN"], "PRIVATE KEY", *lines]


def assert_plain_and_masked(blog: Blog, results: list[CommandResult]) -> None:
    pieces = secret_pieces(blog)
    for result in results:
        for stream in (result.stdout, result.stderr):
            for piece in pieces:
                assert piece not in stream, f"{result.args} printed a secret"
            # A plain log: no carriage returns (progress bars), no escape codes (colours).
            assert "\r" not in stream and "\x1b" not in stream, result.args


def test_build_and_publish_under_ci_print_no_secret(blog: Blog, sink: InboxSink) -> None:
    blog.env["FEDIPRESS_SERVICE_TOKEN"] = secrets.token_urlsafe(32)
    follow(blog, "bob", sink.url("/users/bob/inbox"))
    results = [
        blog.fedipress("build"),
        blog.fedipress("publish", "--allow-private-addresses", "--verbose", "--wait", "5"),
    ]
    write_post(blog.root, "2026-12-05-news.md", "News", "Fresh.", slug="news")
    results += [
        blog.fedipress("publish", "--allow-private-addresses", "--dry-run"),
        blog.fedipress("publish", "--allow-private-addresses", "--verbose", "--wait", "10"),
        blog.fedipress("publish", "--allow-private-addresses", "--verbose", "--wait", "1"),
        blog.fedipress("build", "--drafts"),
        blog.fedipress("publish", "--allow-private-addresses", expect=2),
    ]
    assert "sent 1," in results[3].stdout
    assert [json.loads(p.body)["type"] for p in sink.posts] == ["Create"]
    for post in sink.posts:  # nor does anything sent carry them
        assert not any(piece in post.body.decode() for piece in secret_pieces(blog))
    assert_plain_and_masked(blog, results)


def test_a_broken_key_secret_is_refused_without_echoing_it(blog: Blog, sink: InboxSink) -> None:
    """A secret pasted wrong (here: its last lines cut off) is refused in one line that
    does not repeat any part of it."""
    blog.env["FEDIPRESS_SERVICE_TOKEN"] = secrets.token_urlsafe(32)
    follow(blog, "bob", sink.url("/users/bob/inbox"))
    pem = blog.env["FEDIPRESS_PRIVATE_KEY"]
    # (the PEM's label may be named in the advice: it is no secret)
    pieces = [piece for piece in secret_pieces(blog) if piece != "PRIVATE KEY"]
    blog.env["FEDIPRESS_PRIVATE_KEY"] = "\n".join(pem.splitlines()[:6])
    refused = blog.fedipress("publish", "--allow-private-addresses", expect=2)
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "FEDIPRESS_PRIVATE_KEY" in refused.stderr
    for piece in pieces:
        assert piece not in refused.stdout + refused.stderr
    assert sink.posts == []


def test_exit_code_is_non_zero_only_when_a_delivery_needs_the_author(
        blog: Blog, sink: InboxSink) -> None:
    # 503 and an unreachable server: scheduled for retry; 410: the account is gone and its
    # follower removed. Nothing for the author to do: exit 0.
    sink.script("/users/busy/inbox", [503])
    sink.script("/users/gone/inbox", [410])
    follow(blog, "busy", sink.url("/users/busy/inbox"))
    follow(blog, "gone", sink.url("/users/gone/inbox"))
    follow(blog, "down", f"http://127.0.0.1:{free_port()}/users/down/inbox")
    blog.fedipress("publish", "--allow-private-addresses", "--wait", "1")  # the baseline
    write_post(blog.root, "2026-12-05-news.md", "News", "Fresh.", slug="news")
    calm = blog.fedipress("publish", "--allow-private-addresses", "--wait", "2", expect=0)
    assert "sent 0, retrying 2, failed 1 (410 gone: 1 follower removed)" in calm.stdout
    # 400: this inbox refuses what was sent, for good: the author must look (exit 1).
    sink.script("/users/picky/inbox", [400])
    follow(blog, "picky", sink.url("/users/picky/inbox"))
    write_post(blog.root, "2026-12-06-more.md", "More", "Again.", slug="more")
    red = blog.fedipress("publish", "--allow-private-addresses", "--wait", "2", expect=1)
    assert "failed 1" in red.stdout and "410" not in red.stdout
    assert {p.path: p.status for p in sink.posts}["/users/picky/inbox"] == 400
