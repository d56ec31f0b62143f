"""The inbox app through httpx.ASGITransport with real signed requests (committed keys), a real
SQLite store, and the RemoteFetcher talking to a real loopback server hosting the remote actors.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fedipress.activitypub.httpsig import verify_request
from support.inbox import (
    ACTOR,
    BLOG,
    BLOG_KEY,
    KEYS,
    NOW,
    OTHER_KEY,
    POST,
    POST_PAGE,
    Env,
    Remote,
    actor_doc,
    make_env,
    note,
)

BLOG_PEM = (KEYS / "blog-public.pem").read_bytes()


# --- Follow ---------------------------------------------------------------------------------


def test_follow_records_follower_and_queues_accept_embedding_the_follow(
    env: Env, remote: Remote
) -> None:
    follow = env.activity("Follow", ACTOR)
    response = env.post(follow)
    assert response.status_code == 202
    follower = env.store.get_follower(env.alice)
    assert follower is not None
    assert follower.inbox == env.alice + "/inbox"
    assert follower.shared_inbox == remote.url("/inbox")
    assert follower.handle == f"alice@127.0.0.1:{remote.port}"
    assert follower.follow_activity_id == follow["id"]
    assert follower.state == "accepted"
    # The actor and key were fetched with a GET signed by the blog actor.
    assert remote.gets
    for path, headers in remote.gets:
        verify_request(
            "GET",
            path,
            headers,
            b"",
            public_key=load_pem_public_key(BLOG_PEM),  # type: ignore[arg-type]
            now=datetime.now(UTC),
            scheme="http",
        )
        assert ACTOR + "#main-key" in headers["signature"]
    [delivery] = env.store.list_deliveries()
    assert delivery.inbox == env.alice + "/inbox"  # the personal inbox, not the shared one
    accept = env.store.get_activity(delivery.activity_id)
    assert accept is not None and accept.kind == "Accept"
    doc = json.loads(accept.body)
    assert doc["type"] == "Accept" and doc["actor"] == ACTOR
    assert doc["object"]["id"] == follow["id"] and doc["object"]["type"] == "Follow"
    assert env.wakes == 1


def test_accept_is_delivered_by_the_delivery_worker_to_a_loopback_sink(
    env: Env, remote: Remote
) -> None:
    from fedipress.federation.delivery import DeliveryWorker, owner_id
    from support.inbox_sink import InboxSink

    with InboxSink(BLOG_PEM) as sink:
        remote.docs["/users/alice"] = actor_doc(
            remote, "alice", inbox=sink.url("/users/alice/inbox")
        )
        assert env.post(env.activity("Follow", ACTOR)).status_code == 202

        async def deliver() -> None:
            worker = DeliveryWorker.for_site(
                env.store, env.config, BLOG_KEY, owner=owner_id("test"), allow_private=True
            )
            await worker.run_until(datetime.now(UTC) + timedelta(seconds=5))

        asyncio.run(deliver())
        [received] = sink.posts_to("/users/alice/inbox")
        assert received.verified_independent and received.verified_ours
        assert json.loads(received.body)["type"] == "Accept"


def test_repeated_follow_gets_a_fresh_accept_and_no_duplicate_follower(env: Env) -> None:
    assert env.post(env.activity("Follow", ACTOR, 1)).status_code == 202
    assert env.post(env.activity("Follow", ACTOR, 2)).status_code == 202
    assert env.store.count_followers() == 1
    accepts = {d.activity_id for d in env.store.list_deliveries()}
    assert len(accepts) == 2


def test_follow_of_someone_else_is_ignored(env: Env) -> None:
    assert env.post(env.activity("Follow", BLOG + "other.json")).status_code == 202
    assert env.store.count_followers() == 0


def test_undo_follow_removes_the_follower(env: Env) -> None:
    follow = env.activity("Follow", ACTOR)
    env.post(follow)
    assert env.post(env.activity("Undo", follow)).status_code == 202
    assert env.store.get_follower(env.alice) is None


def test_undo_follow_by_id_only(env: Env) -> None:
    follow = env.activity("Follow", ACTOR)
    env.post(follow)
    assert env.post(env.activity("Undo", follow["id"])).status_code == 202
    assert env.store.get_follower(env.alice) is None


def test_delete_actor_removes_follower_and_interactions(env: Env) -> None:
    env.post(env.activity("Follow", ACTOR))
    env.post(env.activity("Like", POST))
    assert env.store.recent_interactions()
    assert env.post(env.activity("Delete", env.alice)).status_code == 202
    assert env.store.get_follower(env.alice) is None
    assert env.store.recent_interactions() == []


def test_move_repoints_follower_when_new_account_lists_old(env: Env, remote: Remote) -> None:
    env.post(env.activity("Follow", ACTOR))
    new = remote.url("/users/alice2")
    move = env.activity("Move", env.alice)
    move["target"] = new
    # Without alsoKnownAs: ignored.
    remote.docs["/users/alice2"] = actor_doc(remote, "alice2")
    assert env.post(move).status_code == 202
    assert env.store.get_follower(env.alice) is not None
    assert env.store.get_follower(new) is None
    # With it: moved.
    remote.docs["/users/alice2"] = actor_doc(remote, "alice2", alsoKnownAs=[env.alice])
    move["id"] += "-again"
    assert env.post(move).status_code == 202
    assert env.store.get_follower(env.alice) is None
    moved = env.store.get_follower(new)
    assert moved is not None and moved.inbox == new + "/inbox"


def test_manual_approval_holds_follow_as_request(tmp_path: Path, remote: Remote) -> None:
    env = make_env(tmp_path, remote, manual=True)
    follow = env.activity("Follow", ACTOR)
    assert env.post(follow).status_code == 202
    assert env.store.count_followers() == 0
    [request] = env.store.list_follow_requests()
    assert request.follower.actor_id == env.alice
    assert request.follow_activity is not None
    assert json.loads(request.follow_activity)["id"] == follow["id"]
    assert env.store.list_deliveries() == []
    assert env.wakes == 0
    # `fedipress followers approve` (followers.approve_follow_request) answers the stored Follow.
    from fedipress.federation.followers import approve_follow_request

    approved = approve_follow_request(env.store, env.config, env.alice, now=NOW)
    assert approved is not None and approved.state == "accepted"
    [delivery] = env.store.list_deliveries()
    assert delivery.inbox == env.alice + "/inbox"
    accept = env.store.get_activity(delivery.activity_id)
    assert accept is not None and json.loads(accept.body)["object"]["id"] == follow["id"]
    # Once approved, a later Follow (refollow) is answered at once.
    assert env.post(env.activity("Follow", ACTOR, 2)).status_code == 202
    assert len(env.store.list_deliveries()) == 2
    env.store.close()


# --- Likes, boosts, replies -----------------------------------------------------------------


def test_like_and_undo(env: Env, remote: Remote) -> None:
    like = env.activity("Like", POST)
    assert env.post(like).status_code == 202
    [i] = env.store.recent_interactions()
    assert (i.kind, i.actor_id, i.object_id, i.activity_id) == ("like", env.alice, POST, like["id"])
    assert i.author_name == "Alice"
    assert i.author_handle == f"alice@127.0.0.1:{remote.port}"
    assert i.author_avatar_url == remote.url("/avatars/alice.png")
    assert i.author_profile_url == remote.url("/@alice")
    assert env.post(env.activity("Undo", like)).status_code == 202
    assert env.store.recent_interactions() == []


def test_like_by_post_page_url_counts_for_the_post(env: Env) -> None:
    env.post(env.activity("Like", POST_PAGE))
    assert env.store.interaction_counts()[POST].likes == 1


def test_like_of_unknown_post_is_ignored(env: Env) -> None:
    assert env.post(env.activity("Like", BLOG + "posts/nope/object.json")).status_code == 202
    assert env.post(env.activity("Like", "https://elsewhere.example/x", 2)).status_code == 202
    assert env.store.recent_interactions() == []


def test_announce_and_undo_with_embedded_object(env: Env) -> None:
    boost = env.activity("Announce", {"id": POST, "type": "Note"})
    assert env.post(boost).status_code == 202
    assert env.store.interaction_counts()[POST].shares == 1
    undo = env.activity("Undo", {"type": "Announce", "id": "other-id", "object": POST})
    assert env.post(undo).status_code == 202
    assert env.store.interaction_counts() == {}


def test_reply_create_update_delete(env: Env) -> None:
    content = '<p>Nice <a href="javascript:alert(1)">x</a><script>bad()</script></p>'
    create = env.activity("Create", note(env, 1, POST, content))
    assert env.post(create).status_code == 202
    [reply] = env.store.interactions_for_object(POST)
    assert reply.kind == "reply" and reply.content_html == content
    assert reply.reply_object_id == f"{env.alice}/statuses/1"
    assert reply.in_reply_to == POST
    assert reply.published == datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    assert reply.content_safe_html is not None
    assert "script" not in reply.content_safe_html and "javascript" not in reply.content_safe_html
    update = env.activity("Update", note(env, 1, POST, "<p>Edited</p>"))
    assert env.post(update).status_code == 202
    [edited] = env.store.interactions_for_object(POST)
    assert edited.content_html == "<p>Edited</p>" and edited.updated is not None
    delete = env.activity("Delete", {"id": f"{env.alice}/statuses/1", "type": "Tombstone"})
    assert env.post(delete).status_code == 202
    assert env.store.interactions_for_object(POST) == []


def test_reply_to_a_reply_is_recorded_under_the_post(env: Env) -> None:
    env.post(env.activity("Create", note(env, 1, POST), 1))
    env.post(env.activity("Create", note(env, 2, f"{env.alice}/statuses/1"), 2))
    replies = env.store.interactions_for_object(POST)
    assert [r.reply_object_id for r in replies] == [
        f"{env.alice}/statuses/1",
        f"{env.alice}/statuses/2",
    ]
    assert replies[1].in_reply_to == f"{env.alice}/statuses/1"


def test_create_not_replying_to_us_is_ignored(env: Env) -> None:
    env.post(env.activity("Create", note(env, 1, "https://elsewhere.example/x")))
    assert env.store.recent_interactions() == []


def test_embedded_object_from_another_origin_is_fetched_from_its_origin(
    env: Env, remote: Remote
) -> None:
    # Alice embeds a Note claiming to live on localhost: not trusted; the origin has no such
    # note, so the activity is refused and nothing stored.
    forged = note(env, 1, POST)
    forged["id"] = f"http://localhost:{remote.port}/statuses/99"
    response = env.post(env.activity("Create", forged))
    assert response.status_code == 400
    assert env.store.recent_interactions() == []
    assert ("/statuses/99",) == tuple(p for p, _ in remote.gets if p == "/statuses/99")
    # When the origin does serve it, the origin's version is used.
    real = dict(forged, content="<p>from the origin</p>", attributedTo=env.alice)
    remote.docs["/statuses/99"] = real
    response = env.post(env.activity("Create", forged, 2))
    assert response.status_code == 202
    [reply] = env.store.recent_interactions()
    assert reply.content_html == "<p>from the origin</p>"


def test_update_by_someone_else_does_not_edit(env: Env, remote: Remote) -> None:
    env.post(env.activity("Create", note(env, 1, POST)))
    remote.docs["/users/mallory"] = actor_doc(remote, "mallory")
    mallory = remote.url("/users/mallory")
    bad = note(env, 1, POST, "<p>hijacked</p>")
    update = env.activity("Update", bad, actor=mallory)
    assert env.post(update, key_id=mallory + "#main-key").status_code == 202
    [reply] = env.store.recent_interactions()
    assert reply.content_html == "<p>Hi</p>"


def test_unknown_types_are_accepted_and_ignored(env: Env) -> None:
    assert env.post(env.activity("Add", POST)).status_code == 202
    assert env.post(env.activity("EmojiReact", POST, 2)).status_code == 202
    assert env.store.recent_interactions() == []
    assert env.count("inbox_log") == 2


def test_duplicate_activity_processed_once(env: Env) -> None:
    like = env.activity("Like", POST)
    signed = env.signed(like)
    responses = env.send(signed, signed)
    assert [r.status_code for r in responses] == [202, 202]
    assert env.count("inbox_log") == 1
    assert len(env.store.recent_interactions()) == 1
    # A replay in a new process (no in-memory filter) is still stored once.
    assert env.send(signed)[0].status_code == 202
    assert env.count("inbox_log") == 1


def test_rfc9421_signed_request_is_accepted(env: Env) -> None:
    assert env.post(env.activity("Like", POST), scheme="rfc9421").status_code == 202
    assert len(env.store.recent_interactions()) == 1


def test_shared_inbox_path_is_served(env: Env) -> None:
    body, headers = env.signed(env.activity("Like", POST))
    assert env.send((body, headers), path="/inbox")[0].status_code == 202


# --- key cache and rotation -----------------------------------------------------------------


def test_key_is_cached_and_refetched_once_after_rotation(env: Env, remote: Remote) -> None:
    env.post(env.activity("Like", POST))
    assert env.store.get_key(env.alice + "#main-key") is not None
    remote.gets.clear()
    assert env.post(env.activity("Add", POST, 2)).status_code == 202
    assert remote.gets == []  # cached key: no fetch at all
    # Alice rotates her key: the cached one fails, the key is refetched once and verifies.
    from cryptography.hazmat.primitives import serialization

    new_pem = (
        OTHER_KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    remote.docs["/users/alice"] = actor_doc(remote, "alice", pem=new_pem)
    remote.gets.clear()
    response = env.post(env.activity("Undo", env.activity("Like", POST), 3), key=OTHER_KEY)
    assert response.status_code == 202
    assert len([p for p, _ in remote.gets if p == "/users/alice"]) == 1
    cached = env.store.get_key(env.alice + "#main-key")
    assert cached is not None and cached.public_key_pem == new_pem
    assert env.store.recent_interactions() == []
