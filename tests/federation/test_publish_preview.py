"""A build made with --drafts or --future is a preview: publish refuses it with one line
naming the flag, never builds over it, and so never announces a draft or a future post.

Real `fedipress` processes on a copy of the fixture blog (which has a draft and a post dated
2030), a real SQLite store and a real loopback inbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fedipress.store import Follower, open_store
from support.dryrun import tree_hashes
from support.e2e_helpers import Blog, write_post
from support.inbox_sink import InboxSink


def follow(blog: Blog, sink: InboxSink) -> None:
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        store.upsert_followers([Follower(
            actor_id=sink.url("/users/bob"), inbox=sink.url("/users/bob/inbox"),
            shared_inbox=None, handle="bob@127.0.0.1", name="bob",
            followed_at=datetime.now(UTC))])
    finally:
        store.close()


def announced(sink: InboxSink) -> list[tuple[str, str]]:
    """(activity type, object url) of every POST the inbox received."""
    found = []
    for post in sink.posts:
        activity = json.loads(post.body)
        obj = activity["object"]
        found.append((activity["type"], obj.get("url", "") if isinstance(obj, dict) else obj))
    return found


@pytest.mark.parametrize("flags", [("--drafts",), ("--future",), ("--drafts", "--future")])
def test_a_preview_build_is_refused_and_never_built_over(blog: Blog, sink: InboxSink,
                                                         flags: tuple[str, ...]) -> None:
    follow(blog, sink)
    blog.fedipress("publish", "--allow-private-addresses", "--wait", "1")  # the baseline
    write_post(blog.root, "2026-12-05-news.md", "News", "Fresh.", slug="news")
    blog.fedipress("build", *flags)
    manifest = json.loads((blog.root / ".fedipress" / "manifest.json").read_text())
    assert manifest["build"] == {"drafts": "--drafts" in flags, "future": "--future" in flags}
    before = tree_hashes(blog.root)
    used = " ".join(flags)
    for extra in ((), ("--no-build",), ("--dry-run",), ("--dry-run", "--no-build")):
        refused = blog.fedipress("publish", "--allow-private-addresses", *extra, expect=2)
        assert refused.stderr.strip() == (
            f"fedipress: error: public/ was built with {used}: a preview build; run"
            f" fedipress build without {used}, then publish"), extra
        assert refused.stdout == ""
    # Nothing rebuilt (the preview is still what public/ holds), stored or sent.
    assert tree_hashes(blog.root) == before
    assert sink.posts == []
    # The fix the line names: a build without the flag, then publish announces the new post
    # and neither the draft nor the future-dated one.
    blog.fedipress("build")
    assert json.loads((blog.root / ".fedipress" / "manifest.json").read_text())["build"] == {
        "drafts": False, "future": False}
    done = blog.fedipress("publish", "--allow-private-addresses", "--wait", "10")
    assert "sent 1," in done.stdout
    assert announced(sink) == [("Create", blog.base + "posts/news/")]


def test_a_build_without_recorded_flags_is_refused_only_without_a_build(
        blog: Blog, sink: InboxSink) -> None:
    """A manifest written by an older fedipress does not say whether it was a preview: with
    --no-build publish cannot tell, so it refuses; a publish that builds replaces it."""
    follow(blog, sink)
    blog.fedipress("build")
    path = blog.root / ".fedipress" / "manifest.json"
    older = json.loads(path.read_text())
    del older["build"]
    older["format"] = 2
    path.write_text(json.dumps(older, indent=2))
    # The build's cache key of that version (it did not include the manifest's format).
    key = blog.root / ".fedipress" / "cache" / "federation-manifest.key"
    key.write_text(key.read_text().split(":")[0])
    refused = blog.fedipress("publish", "--no-build", "--allow-private-addresses", expect=2)
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "was written by an older fedipress" in line and "run fedipress build" in line
    assert sink.posts == []
    blog.fedipress("publish", "--allow-private-addresses", "--wait", "1")
    assert json.loads(path.read_text())["build"] == {"drafts": False, "future": False}


def test_a_damaged_build_record_is_refused_with_no_build(blog: Blog, sink: InboxSink) -> None:
    follow(blog, sink)
    blog.fedipress("build")
    path = blog.root / ".fedipress" / "manifest.json"
    data = json.loads(path.read_text())
    data["build"] = {"drafts": "no"}
    path.write_text(json.dumps(data))
    refused = blog.fedipress("publish", "--no-build", "--allow-private-addresses", expect=2)
    assert "does not record the build's flags" in refused.stderr
    assert "run `fedipress build`" in refused.stderr
