"""`fedipress publish` with mentions, end to end: a real site, SQLite store and keys, and a
loopback server that answers WebFinger, serves the mentioned actors and records deliveries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.activitypub import documents as d
from fedipress.store import Follower
from support.delivery import Blog, make_blog, publish
from support.mentions import Peer

BLOG = "https://blog.example/"


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Blog:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return make_blog(tmp_path / "site")


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as server:
        server.add("bob")
        yield server


def follow(blog: Blog, peer: Peer, name: str = "fan") -> None:
    actor = peer.url(f"/users/{name}")
    blog.follow(Follower(actor, actor + "/inbox", None, f"{name}@{peer.host}", name,
                         datetime.now(UTC)))


def object_json(blog: Blog, slug: str) -> dict[str, Any]:
    path = blog.root / "public" / "posts" / slug / "object.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def first_publish(blog: Blog, peer: Peer, capsys: pytest.CaptureFixture[str]) -> None:
    # A month old: the first publish records it as the baseline and announces nothing.
    blog.post("old", age=timedelta(days=30))
    follow(blog, peer)
    code, out, _ = publish(blog, capsys)
    assert code == 0 and peer.posts == [], out


def test_mention_is_resolved_addressed_and_delivered(
    blog: Blog, peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    first_publish(blog, peer, capsys)
    bob = peer.url("/users/bob")
    blog.post("hi", f"Hello @bob@{peer.host}!")
    code, out, err = publish(blog, capsys)
    assert code == 0, out + err
    assert "warning" not in err
    [to_fan] = peer.posts_to("/users/fan/inbox")
    [to_bob] = peer.posts_to("/inbox")  # bob's shared inbox
    assert to_fan == to_bob and to_fan["type"] == "Create"
    obj = to_fan["object"]
    assert {"type": "Mention", "href": bob, "name": f"@bob@{peer.host}"} in obj["tag"]
    assert bob in obj["cc"] and bob in to_fan["cc"]
    assert obj["cc"][0] == BLOG + "followers.json"
    # The static object.json (rebuilt by publish once bob was learned) says the same.
    assert d.object_hash(object_json(blog, "hi")) == d.object_hash(obj)
    assert "sent 2, retrying 0, failed 0" in out

    # Nothing changed: no Update, even though the manifest now holds the resolved form.
    code, out, _ = publish(blog, capsys)
    assert code == 0 and "sent 0" in out and len(peer.posts) == 2
    code, out, _ = publish(blog, capsys, "--no-build")
    assert code == 0 and "sent 0" in out and len(peer.posts) == 2

    # An edit: the Update carries the cached resolution without asking the server again.
    gets = len(peer.gets)
    blog.post("hi", f"Hello again @bob@{peer.host}!")
    code, out, _ = publish(blog, capsys)
    assert code == 0 and len(peer.gets) == gets
    [_, update] = peer.posts_to("/inbox")
    assert update["type"] == "Update" and bob in update["object"]["cc"]

    # Deleted: the Delete goes to bob's server as well, so his copy disappears too.
    (blog.root / "content" / "posts" / "hi.md").unlink()
    code, out, _ = publish(blog, capsys)
    assert code == 0, out
    [_, _, delete] = peer.posts_to("/inbox")
    assert delete["type"] == "Delete" and delete["object"]["type"] == "Tombstone"
    assert [p["type"] for p in peer.posts_to("/users/fan/inbox")] == ["Create", "Update", "Delete"]


def test_unresolvable_mention_warns_and_still_publishes(
    blog: Blog, peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    first_publish(blog, peer, capsys)
    blog.post("hi", f"Hello @ghost@{peer.host} and @ghost@{peer.host}.")
    code, out, err = publish(blog, capsys)
    assert code == 0, out + err
    assert err.count(f"warning: @ghost@{peer.host}") == 1
    [create] = peer.posts_to("/users/fan/inbox")
    profile = f"https://{peer.host}/@ghost"
    assert {"type": "Mention", "href": profile, "name": f"@ghost@{peer.host}"} in \
        create["object"]["tag"]
    assert peer.posts_to("/inbox") == []
    # Once the account exists, an edit addresses it; the unchanged post before did not flap.
    code, out, _ = publish(blog, capsys)
    assert "sent 0" in out
    peer.add("ghost")
    blog.post("hi", f"Hello @ghost@{peer.host}, found you.")
    code, out, err = publish(blog, capsys)
    assert code == 0 and "warning" not in err
    [update] = peer.posts_to("/inbox")
    assert update["type"] == "Update" and peer.url("/users/ghost") in update["cc"]


def test_dry_run_uses_the_cache_only_and_lists_mentioned_inboxes(
    blog: Blog, peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    first_publish(blog, peer, capsys)
    blog.post("hi", f"Hello @bob@{peer.host}!")
    code, out, _ = publish(blog, capsys, "--dry-run")
    assert code == 0 and peer.gets == [] and peer.url("/inbox") not in out
    publish(blog, capsys)  # learns bob
    blog.post("hi", f"Edited, @bob@{peer.host}!")
    gets = len(peer.gets)
    code, out, _ = publish(blog, capsys, "--dry-run")
    assert code == 0 and len(peer.gets) == gets
    assert f"-> {peer.url('/inbox')}" in out


# --- the build reads the store (read-only) ----------------------------------------------------


def public_json(blog: Blog, rel: str) -> dict[str, Any]:
    return json.loads((blog.root / "public" / rel).read_text())  # type: ignore[no-any-return]


def build(blog: Blog) -> None:
    from fedipress.cli import main

    assert main(["build", "--config", blog.config, "--quiet"]) == 0


def test_build_reads_counts_and_cached_mentions_from_the_store(blog: Blog) -> None:
    from fedipress.store import Interaction, LedgerEntry, ResolvedMention

    blog.post("hi", "Hello @bob@one.example.")
    db = blog.root / ".fedipress" / "state.db"
    build(blog)
    assert not db.exists()  # a build never creates the store
    assert public_json(blog, "followers.json")["totalItems"] == 0
    obj = public_json(blog, "posts/hi/object.json")
    assert "https://one.example/@bob" in obj["cc"]

    oid = BLOG + "posts/hi/object.json"
    now = datetime.now(UTC)
    blog.follow(*(Follower(f"https://f.example/u/{i}", f"https://f.example/u/{i}/inbox", None,
                           None, None, now) for i in range(3)))
    store = blog.store()
    try:
        store.add_interaction(Interaction("l1", "like", "https://f.example/u/1", oid, now, now))
        store.add_interaction(Interaction("l2", "like", "https://f.example/u/2", oid, now, now))
        store.add_interaction(Interaction("b1", "announce", "https://f.example/u/1", oid, now,
                                          now))
        store.add_interaction(Interaction("r1", "reply", "https://f.example/u/1", oid, now, now,
                                          reply_object_id="https://f.example/n/1"))
        store.put_mention(ResolvedMention("bob@one.example", "https://one.example/users/bob",
                                          "https://one.example/users/bob/inbox", None, None, now))
        # Replies are listed by id, from the public conversation of a post publish announced.
        store.plan_publication([], [], [LedgerEntry(oid, "h", now, now, "live", None)], now)
    finally:
        store.close()
    before = db.read_bytes()
    build(blog)
    assert db.read_bytes() == before  # read-only
    assert public_json(blog, "followers.json")["totalItems"] == 3
    assert public_json(blog, "posts/hi/likes.json")["totalItems"] == 2
    assert public_json(blog, "posts/hi/shares.json")["totalItems"] == 1
    replies = public_json(blog, "posts/hi/replies.json")
    assert replies["totalItems"] == 1
    assert replies["first"]["orderedItems"] == ["https://f.example/n/1"]
    obj = public_json(blog, "posts/hi/object.json")
    assert "https://one.example/users/bob" in obj["cc"]
    assert {"type": "Mention", "href": "https://one.example/users/bob",
            "name": "@bob@one.example"} in obj["tag"]
    [create] = public_json(blog, "outbox/page-1.json")["orderedItems"]
    assert create["object"]["cc"] == obj["cc"]
