"""Issues 4 and 5, end to end: a fedipress blog federating with an independent implementation.

Everything runs as real processes on 127.0.0.1: the fixture blog is built with `fedipress
build`, served together with its inbox by `fedipress inbox --site public`, announced with
`fedipress publish`, and inspected with `fedipress followers|interactions|deliveries`. The
other side is the Fedify peer (tests/interop/peer.mjs): it looks the blog up, follows it, and
reports whether Fedify verified each delivery and by what (tests/interop/README.md).

The issue-4/5 tests share one blog and one peer (module scope) and go through the story in
order: follow -> Accept; new post -> Create; like + reply; edit -> Update; delete -> Delete.
Each step first makes sure the steps before it happened (`Story.ensure_*`), so any single test
also runs alone. The dead-follower test has its own blog and two peers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from support.e2e_helpers import Blog, write_post
from support.interop_peer import Peer, require_harness, start_peer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

CAVAGE = "draft-cavage-http-signatures-12"
WAIT = 30.0  # generous bound for one delivery (signing, Fedify's key fetch, verification)
SLUG = "e2e-news"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
REPLY_HTML = "<p>Lovely post, <b>thank you</b>!</p>"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _assert_verified_by_http_signature(activity: dict[str, Any], blog: Blog) -> None:
    """Fedify verified it, and what it verified was our draft-cavage HTTP signature: the body
    carries no LD signature or object proof that Fedify could have accepted instead."""
    dump = json.dumps(activity, indent=1)[:4000]
    assert activity["verified"] is True, dump
    assert activity["signature"]["scheme"] == CAVAGE, dump
    assert str(activity["signature"]["key_id"]).startswith(blog.actor_id), dump
    assert activity["ld_signature"] is False, dump
    assert activity["object_proof"] is False, dump
    assert activity["actor"] == blog.actor_id, dump


@dataclass
class Story:
    """The shared blog + peer, and what has happened so far."""

    blog: Blog
    peer: Peer
    follow_id: str | None = None
    post_id: str | None = None
    create: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    done: set[str] = field(default_factory=set)

    def publish(self) -> str:
        # --wait bounds the run; every peer here is alive, so it returns as soon as all is sent.
        result = self.blog.fedipress("publish", "--allow-private-addresses", "--wait", "20")
        return result.stdout

    def activities(self, kind: str, object_id: str) -> list[dict[str, Any]]:
        return [a for a in self.peer.received()
                if a.get("type") == kind and a.get("object_id") == object_id]

    def ensure_followed(self) -> None:
        if self.follow_id is None:
            sent = self.peer.follow(self.blog.handle)
            self.follow_id = str(sent["id"])
            self.peer.wait_for(
                lambda a: a.get("type") == "Accept" and a.get("verified") is True
                and a.get("matched_follow_id") == self.follow_id,
                timeout=WAIT,
            )

    def ensure_post_created(self) -> str:
        self.ensure_followed()
        if self.post_id is None:
            write_post(self.blog.root, "e2e-news.md", "News from the test",
                       "A brand new post, fresh for the fediverse.", slug=SLUG)
            self.blog.fedipress("build", "--quiet")
            self.publish()
            self.create = self.peer.wait_for(
                lambda a: a.get("type") == "Create" and SLUG in str(a.get("object_id")),
                timeout=WAIT,
            )
            self.post_id = str(self.create["object_id"])
        return self.post_id

    def ensure_updated(self) -> dict[str, Any]:
        post_id = self.ensure_post_created()
        if self.update is None:
            path = self.blog.root / "content" / "posts" / "e2e-news.md"
            path.write_text(path.read_text(encoding="utf-8")
                            + "\nEdited: one more paragraph.\n", encoding="utf-8")
            self.blog.fedipress("build", "--quiet")
            self.publish()
            self.update = self.peer.wait_for(
                lambda a: a.get("type") == "Update" and a.get("object_id") == post_id,
                timeout=WAIT,
            )
        return self.update


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    require_harness()
    tmp = tmp_path_factory.mktemp("e2e")
    blog = Blog.create(tmp)
    blog.env["CI"] = ""  # the blog's own machine: its first publish, confirmed (CI refuses it)
    blog.fedipress("build", "--quiet")
    # The first publish of an existing blog records its posts as announced and sends nothing,
    # so the post added later is the only new one.
    first = blog.fedipress("publish", "--allow-private-addresses", "--wait", "5",
                           "--first-publish")
    assert re.search(r"^sent 0, retrying 0, failed 0$", first.stdout, re.M), first.stdout
    assert not re.search(r"for [1-9]\d* new activit", first.stdout), first.stdout
    blog.start_inbox()
    try:
        with start_peer(tmp) as peer:
            yield Story(blog, peer)
    finally:
        blog.stop_inbox()


@pytest.fixture(autouse=True)
def _inbox_stays_healthy(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "story" in request.fixturenames:
        request.getfixturevalue("story").blog.assert_inbox_healthy()


# --- issue 5 ----------------------------------------------------------------------------------


def test_peer_follows_and_verifies_the_accept(story: Story) -> None:
    blog, peer = story.blog, story.peer
    sent = peer.follow(blog.handle)
    story.follow_id = str(sent["id"])
    # Fedify resolved the handle through our WebFinger and actor, and sent to our inbox.
    assert sent["actor"] == blog.actor_id
    assert sent["inbox"] == blog.base + "inbox"

    follow_id = story.follow_id
    # The Accept that embeds this Follow (the peer's own matching is asserted below).
    accept = peer.wait_for(
        lambda a: a.get("type") == "Accept" and follow_id in json.dumps(a.get("raw")),
        timeout=WAIT)
    dump = json.dumps(accept, indent=1)
    assert accept["verified"] is True, dump
    assert accept["matched_follow"] is True, dump
    assert accept["matched_follow_id"] == story.follow_id, dump
    assert accept["actor"] == blog.actor_id, dump
    assert accept["inbox"] == "personal" and accept["recipient"] == peer.username, dump

    followers = blog.fedipress("followers", "--json").json_lines()
    [mine] = [f for f in followers if f["actor"] == peer.actor_id]
    assert mine["inbox"] == peer.inbox
    assert mine["shared_inbox"] == peer.shared_inbox
    assert mine["handle"] in {peer.handle, f"@{peer.handle}"}, mine
    assert mine["state"] == "accepted", mine


def test_new_post_is_delivered_as_a_create_verified_by_http_signature(story: Story) -> None:
    story.ensure_followed()
    post_id = story.ensure_post_created()
    create = story.create
    assert create is not None
    _assert_verified_by_http_signature(create, story.blog)
    assert post_id == story.blog.base + f"posts/{SLUG}/object.json"
    # One POST to the peer's shared inbox, although publish and the inbox's delivery loop
    # both drain the same queue.
    assert create["inbox"] == "shared"
    assert len(story.activities("Create", post_id)) == 1
    parsed = create["parsed_object"]
    assert parsed["id"] == post_id
    assert parsed["attributed_to"] == story.blog.actor_id
    assert "A brand new post" in parsed["content"]
    # Public, and to the blog's followers collection (what Mastodon shows on timelines).
    assert parsed["to"] == [PUBLIC], parsed
    assert parsed["cc"] == [story.blog.base + "followers.json"], parsed


def test_like_and_reply_are_recorded(story: Story) -> None:
    post_id = story.ensure_post_created()
    peer, blog = story.peer, story.blog
    like = peer.like(post_id)
    reply = peer.reply(post_id, REPLY_HTML)
    # The control calls return once our inbox answered 2xx, so the store already has them.
    records = blog.fedipress("interactions", "--json").json_lines()
    [liked] = [r for r in records if r["id"] == like["id"]]
    assert (liked["type"], liked["actor"], liked["object"]) == ("Like", peer.actor_id, post_id)
    [replied] = [r for r in records if r["id"] == reply["id"]]
    assert replied["type"] == "Create" and replied["actor"] == peer.actor_id, replied
    assert replied["object"] == post_id, replied
    assert replied["reply_object"] == reply["note"], replied
    assert replied["in_reply_to"] == post_id, replied
    assert "thank you" in replied["content"], replied
    assert "Lovely post" in replied["content_safe"], replied


def test_boost_and_reply_edit_then_undo_and_delete_are_applied(story: Story) -> None:
    post_id = story.ensure_post_created()
    peer, blog = story.peer, story.blog
    boost = peer.announce(post_id)
    reply = peer.reply(post_id, "<p>First thoughts.</p>")
    peer.update_reply(reply["note"], "<p>Second thoughts, edited.</p>")
    records = {r["id"]: r for r in blog.fedipress("interactions", "--json").json_lines()}
    boosted = records[boost["id"]]
    assert (boosted["type"], boosted["actor"], boosted["object"]) == (
        "Announce", peer.actor_id, post_id)
    assert "Second thoughts" in records[reply["id"]]["content"], records[reply["id"]]

    peer.undo(boost["id"])
    peer.delete_reply(reply["note"])
    records = {r["id"]: r for r in blog.fedipress("interactions", "--json").json_lines()}
    assert boost["id"] not in records, records
    assert reply["id"] not in records, records


# --- issue 4 ----------------------------------------------------------------------------------


def test_edited_post_is_delivered_as_an_update(story: Story) -> None:
    post_id = story.ensure_post_created()
    update = story.ensure_updated()
    _assert_verified_by_http_signature(update, story.blog)
    assert update["object_type"] in {"Article", "Note"}, update
    assert update["id"] != (story.create or {}).get("id")
    created = (story.create or {})["raw"]["object"]
    edited = update["raw"]["object"]
    before = _when(created.get("updated") or created["published"])
    assert _when(edited["updated"]) > before, (created, edited)
    assert "one more paragraph" in update["parsed_object"]["content"]
    assert len(story.activities("Update", post_id)) == 1


def test_deleted_post_is_delivered_as_a_tombstone(story: Story) -> None:
    post_id = story.ensure_post_created()
    story.ensure_updated()
    (story.blog.root / "content" / "posts" / "e2e-news.md").unlink()
    story.blog.fedipress("build", "--quiet")
    story.publish()
    delete = story.peer.wait_for(
        lambda a: a.get("type") == "Delete" and a.get("object_id") == post_id, timeout=WAIT)
    _assert_verified_by_http_signature(delete, story.blog)
    assert delete["object_type"] == "Tombstone", delete
    assert delete["raw"]["object"]["id"] == post_id
    assert len(story.activities("Delete", post_id)) == 1


def test_peer_refused_nothing_and_no_listener_failed(story: Story) -> None:
    """Runs last: across the whole story, Fedify accepted every delivery from the blog."""
    story.ensure_updated()
    received = story.peer.received()
    assert received, "the peer received nothing"
    problems = [a for a in received
                if a.get("type") == "listener-error" or a.get("verified") is not True]
    assert not problems, json.dumps(problems, indent=1)[:4000]


# --- a dead follower --------------------------------------------------------------------------


def _follow_and_wait_for_accept(peer: Peer, blog: Blog) -> None:
    follow_id = peer.follow(blog.handle)["id"]
    accept = peer.wait_for(
        lambda a: a.get("type") == "Accept" and a.get("matched_follow_id") == follow_id,
        timeout=WAIT)
    assert accept["verified"] is True, accept


def test_dead_follower_is_queued_for_retry_while_the_live_one_gets_the_create(
    tmp_path: Path,
) -> None:
    require_harness()
    # This blog signs with the key from FEDIPRESS_PRIVATE_KEY (no key file), as in CI.
    blog = Blog.create(tmp_path, key_in_env=True)
    assert not (blog.root / ".fedipress" / "private-key.pem").exists()
    blog.env["CI"] = ""  # the blog's own machine: its first publish, confirmed (CI refuses it)
    blog.fedipress("build", "--quiet")
    blog.fedipress("publish", "--allow-private-addresses", "--wait", "5", "--first-publish")
    blog.start_inbox()
    try:
        with start_peer(tmp_path, username="alive") as alive, \
                start_peer(tmp_path, username="dead") as dead:
            for peer in (alive, dead):
                _follow_and_wait_for_accept(peer, blog)
            followers = {f["actor"] for f in blog.fedipress("followers", "--json").json_lines()}
            assert followers == {alive.actor_id, dead.actor_id}
            dead.stop()

            write_post(blog.root, "e2e-news.md", "News from the test", "Fresh.", slug=SLUG)
            blog.fedipress("build", "--quiet")
            # A short --wait: the first retry (about 15 s later) falls after it, so the dead
            # follower's delivery must be left queued, and that is not a failure.
            result = blog.fedipress("publish", "--allow-private-addresses", "--wait", "3")
            summary = result.stdout.strip().splitlines()[-1]
            assert re.search(r"retrying [1-9]", summary), result.stdout
            assert "failed 0" in summary, result.stdout

            post_id = blog.base + f"posts/{SLUG}/object.json"
            create = alive.wait_for(
                lambda a: a.get("type") == "Create" and a.get("object_id") == post_id,
                timeout=WAIT)
            _assert_verified_by_http_signature(create, blog)

            listing = blog.fedipress("deliveries").stdout
            dead_rows = [line for line in listing.splitlines()
                         if line.startswith(("pending", "in_flight")) and dead.base_url in line]
            assert dead_rows, listing
            # Queued after its attempt (the next is 15 s away), with the error it got: the
            # connection was refused.
            [row] = dead_rows
            assert re.search(r" tries [12] ", row), listing
            assert re.search(r" — .*(Connect|refused)", row), listing
            assert not any(alive.base_url in line for line in listing.splitlines()), listing
            blog.assert_inbox_healthy()
    finally:
        blog.stop_inbox()
