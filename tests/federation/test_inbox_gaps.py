"""Inbox behaviour around remote failures and account changes, with real signed requests, a real
SQLite store and a real loopback server for the remote side (tests/federation/test_inbox.py's
harness):

- temporary fetch failures (5xx, connection refused, timeout) answer 503 + Retry-After, so the
  sender retries; permanent ones (404, 410, wrong content type) stay 401/400;
- a Delete of an account whose key is 410 Gone removes what it left (Mastodon's deletions);
- an Update of a follower's actor refreshes the follower;
- a domain block removes the followers and interactions on the domain and its subdomains.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedipress.cli import main
from fedipress.federation.inbox import create_app
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.federation.signing import SigningAuth
from fedipress.store import Follower, Interaction, open_store
from support.delivery import make_blog, publish
from support.inbox import ACTOR, BLOG, BLOG_KEY, NOW, POST, Env, Remote, actor_doc
from support.inbox_sink import InboxSink


class FlakyRemote(Remote):
    """test_inbox's remote server, plus scripted statuses, delays and content types per path."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.ctype: dict[str, str] = {}
        # Bumped by each test: a request an earlier test gave up on (a delay past its timeout)
        # may finish during a later one, and must not count as that test's fetch.
        self.generation = 0
        super().__init__()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        generation = self.generation
        if scope["type"] == "http" and path in self.delay:
            await asyncio.sleep(self.delay[path])
        if scope["type"] == "http" and scope["method"] == "GET" and (
            path in self.status or path in self.ctype
        ):
            if generation == self.generation:
                self.gets.append((path, {}))
            doc = self.docs.get(path, {})
            ctype = self.ctype.get(path, "application/activity+json")
            await send({"type": "http.response.start", "status": self.status.get(path, 200),
                        "headers": [(b"content-type", ctype.encode())]})
            await send({"type": "http.response.body", "body": json.dumps(doc).encode()})
            return
        await super().app(scope, receive, send)


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[FlakyRemote]:
    with FlakyRemote() as server:
        yield server


@pytest.fixture
def remote(flaky_server: FlakyRemote) -> FlakyRemote:
    for table in (flaky_server.docs, flaky_server.status, flaky_server.delay, flaky_server.ctype):
        table.clear()
    flaky_server.generation += 1
    flaky_server.gets.clear()
    flaky_server.posts.clear()
    flaky_server.docs["/users/alice"] = actor_doc(flaky_server, "alice")
    return flaky_server


@pytest.fixture
def env(tmp_path: Path, remote: FlakyRemote) -> Iterator[Env]:
    e = Env(tmp_path, remote)
    yield e
    e.store.close()


def seen(env: Env) -> int:
    return env.count("seen_activities")


def follower(actor: str) -> Follower:
    return Follower(actor, actor + "/inbox", None, None, None, NOW)


def like(actor: str, n: int = 1) -> Interaction:
    return Interaction(f"{actor}/likes/{n}", "like", actor, POST, NOW, NOW)


# --- temporary failures: 503 + Retry-After; permanent ones stay 401/400 --------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_key_fetch_server_error_is_503_and_the_retry_succeeds(
    env: Env, remote: FlakyRemote, status: int
) -> None:
    remote.status["/users/alice"] = status
    follow = env.activity("Follow", ACTOR)
    response = env.post(follow)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert seen(env) == 0 and env.store.get_follower(env.alice) is None
    # The sender retries once the server is back: processed normally, at once.
    del remote.status["/users/alice"]
    assert env.post(follow).status_code == 202
    assert env.store.get_follower(env.alice) is not None


def test_key_fetch_connection_refused_is_503(env: Env) -> None:
    from support.interop_peer import free_port

    dead = f"http://127.0.0.1:{free_port()}/users/zed"
    response = env.post(env.activity("Like", POST, actor=dead), key_id=dead + "#main-key")
    assert response.status_code == 503 and "retry-after" in response.headers
    assert seen(env) == 0


def send_with_policy(env: Env, policy: FetchPolicy, activity: dict[str, Any]) -> httpx.Response:
    """Env.send with a fetcher under `policy` (short timeouts)."""

    async def run() -> httpx.Response:
        auth = SigningAuth.for_actor(ACTOR, BLOG_KEY)
        async with RemoteFetcher(policy=policy, user_agent="test", auth=auth) as fetcher:
            app = create_app(env.config, env.store, fetcher, clock=env.clock)
            transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4321))
            async with httpx.AsyncClient(transport=transport, base_url=BLOG) as client:
                body, headers = env.signed(activity)
                return await client.post("/inbox", content=body, headers=headers)

    return asyncio.run(run())


def test_key_fetch_timeout_is_503(env: Env, remote: FlakyRemote) -> None:
    remote.delay["/users/alice"] = 1.5
    policy = FetchPolicy(allow_private=True, read_timeout=0.3, total_timeout=1.0)
    response = send_with_policy(env, policy, env.activity("Like", POST))
    assert response.status_code == 503 and response.headers["retry-after"] == "60"


@pytest.mark.parametrize(("status", "ctype"), [
    (404, "application/activity+json"),
    (410, "application/activity+json"),  # gone, but this is not a Delete of the actor
    (200, "text/html"),
])
def test_permanent_key_fetch_failures_stay_401(
    env: Env, remote: FlakyRemote, status: int, ctype: str
) -> None:
    remote.status["/users/alice"] = status
    remote.ctype["/users/alice"] = ctype
    response = env.post(env.activity("Like", POST))
    assert response.status_code == 401 and "retry-after" not in response.headers


def test_key_document_with_the_wrong_id_stays_401(env: Env, remote: FlakyRemote) -> None:
    remote.docs["/users/alice"] = {**actor_doc(remote, "alice"),
                                   "id": remote.url("/users/mallory")}
    assert env.post(env.activity("Like", POST)).status_code == 401


def test_actor_fetch_for_a_follow_temporary_503_permanent_400(
    env: Env, remote: FlakyRemote
) -> None:
    assert env.post(env.activity("Like", POST)).status_code == 202  # caches alice's key
    env.store.delete_actor(env.alice)  # else the actor cache answers the Follow: no fetch
    remote.status["/users/alice"] = 502
    response = env.post(env.activity("Follow", ACTOR, 2))
    assert response.status_code == 503 and response.headers["retry-after"] == "60"
    remote.status["/users/alice"] = 404
    assert env.post(env.activity("Follow", ACTOR, 3)).status_code == 400
    assert env.store.get_follower(env.alice) is None


def test_object_fetch_temporary_503_permanent_400(env: Env, remote: FlakyRemote) -> None:
    note = remote.url("/notes/1")
    remote.docs["/notes/1"] = {"id": note, "type": "Note", "attributedTo": env.alice,
                               "inReplyTo": POST, "content": "<p>hi</p>"}
    remote.status["/notes/1"] = 503
    response = env.post(env.activity("Create", note, 1))
    assert response.status_code == 503 and "retry-after" in response.headers
    remote.status["/notes/1"] = 404
    assert env.post(env.activity("Create", note, 2)).status_code == 400
    del remote.status["/notes/1"]
    assert env.post(env.activity("Create", note, 3)).status_code == 202
    assert [i.kind for i in env.store.recent_interactions()] == ["reply"]


# --- Delete of an account whose key is gone ------------------------------------------------------


def test_delete_of_a_known_actor_with_a_gone_key_removes_everything(
    env: Env, remote: FlakyRemote
) -> None:
    env.store.upsert_follower(follower(env.alice))
    env.store.add_interaction(like(env.alice))
    remote.status["/users/alice"] = 410
    assert env.store.get_key(env.alice + "#main-key") is None
    response = env.post(env.activity("Delete", env.alice))
    assert response.status_code == 202
    assert env.store.get_follower(env.alice) is None
    assert env.store.recent_interactions() == []
    assert env.count("inbox_log") == 1


def test_delete_of_an_unknown_actor_is_accepted_without_fetching(
    env: Env, remote: FlakyRemote
) -> None:
    remote.status["/users/alice"] = 410
    assert env.post(env.activity("Delete", env.alice)).status_code == 202
    assert remote.gets == [] and seen(env) == 0 and env.count("inbox_log") == 0


def test_gone_key_elsewhere_but_living_actor_removes_nothing(env: Env, remote: FlakyRemote) -> None:
    # GoToSocial layout: the key at <actor>/main-key. The key says 410, the actor is alive:
    # the unverifiable Delete must not remove anyone.
    env.store.upsert_follower(follower(env.alice))
    remote.status["/users/alice/main-key"] = 410
    response = env.post(env.activity("Delete", env.alice), key_id=env.alice + "/main-key")
    assert response.status_code == 401
    assert env.store.get_follower(env.alice) is not None
    # Once the actor is gone too, the same Delete removes the follower.
    remote.status["/users/alice"] = 410
    response = env.post(env.activity("Delete", env.alice, 2), key_id=env.alice + "/main-key")
    assert response.status_code == 202
    assert env.store.get_follower(env.alice) is None


def test_gone_key_on_a_delete_of_something_else_is_401(env: Env, remote: FlakyRemote) -> None:
    env.store.upsert_follower(follower(env.alice))
    remote.status["/users/alice"] = 410
    response = env.post(env.activity("Delete", remote.url("/notes/1")))
    assert response.status_code == 401
    assert env.store.get_follower(env.alice) is not None


# --- Update of a follower's actor ----------------------------------------------------------------


def test_update_of_a_follower_actor_refreshes_it(env: Env, remote: FlakyRemote) -> None:
    assert env.post(env.activity("Follow", ACTOR)).status_code == 202
    before = env.store.get_follower(env.alice)
    assert before is not None
    moved = {**actor_doc(remote, "alice", preferredUsername="alice2",
                         inbox=remote.url("/boxes/alice"),
                         endpoints={"sharedInbox": remote.url("/shared")}),
             "name": "Alice Renamed"}
    assert env.post(env.activity("Update", moved, 2)).status_code == 202
    after = env.store.get_follower(env.alice)
    assert after is not None
    assert (after.inbox, after.shared_inbox, after.name, after.handle) == (
        remote.url("/boxes/alice"), remote.url("/shared"), "Alice Renamed",
        f"alice2@127.0.0.1:{remote.port}")
    assert (after.followed_at, after.state, after.follow_activity_id) == (
        before.followed_at, before.state, before.follow_activity_id)


def test_update_by_id_only_fetches_the_actor(env: Env, remote: FlakyRemote) -> None:
    env.store.upsert_follower(follower(env.alice))
    remote.docs["/users/alice"] = {**actor_doc(remote, "alice"), "name": "Fetched"}
    assert env.post(env.activity("Update", env.alice)).status_code == 202
    got = env.store.get_follower(env.alice)
    assert got is not None and got.name == "Fetched"
    assert got.shared_inbox == remote.url("/inbox")


def test_update_of_a_non_follower_actor_changes_nothing(env: Env, remote: FlakyRemote) -> None:
    doc = {**actor_doc(remote, "alice"), "name": "Whoever"}
    assert env.post(env.activity("Update", doc)).status_code == 202
    assert env.store.count_followers(state=None) == 0


def test_update_of_another_actor_is_not_a_profile_update(env: Env, remote: FlakyRemote) -> None:
    env.store.upsert_follower(follower(env.alice))
    bob = remote.url("/users/bob")
    env.store.upsert_follower(follower(bob))
    forged = actor_doc(remote, "bob", inbox=remote.url("/evil"))
    assert env.post(env.activity("Update", forged)).status_code == 202
    got = env.store.get_follower(bob)
    assert got is not None and got.inbox == bob + "/inbox"


# --- domain blocks -------------------------------------------------------------------------------


ACTORS = ["https://spam.example/u/1", "https://a.spam.example/u/2", "https://ok.example/u/3",
          "https://spam.example.org/u/4"]


def populate(path: Path) -> None:
    store = open_store(path)
    try:
        store.upsert_followers(follower(a) for a in ACTORS)
        for n, actor in enumerate(ACTORS):
            store.add_interaction(like(actor, n))
    finally:
        store.close()


def remaining(path: Path) -> tuple[list[str], list[str]]:
    store = open_store(path)
    try:
        return (sorted(f.actor_id for f in store.iter_followers()),
                sorted(i.actor_id for i in store.recent_interactions()))
    finally:
        store.close()


def test_block_command_removes_the_domain_and_its_subdomains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blog = make_blog(tmp_path / "site")
    db = blog.root / ".fedipress" / "state.db"
    populate(db)
    assert main(["block", "--config", blog.config, "spam.example"]) == 0
    assert "blocked spam.example" in capsys.readouterr().out
    assert remaining(db) == (ACTORS[2:], ACTORS[2:])


def test_site_yaml_blocks_are_applied_when_the_inbox_starts(
    tmp_path: Path, remote: FlakyRemote
) -> None:
    (tmp_path / ".fedipress").mkdir()
    populate(tmp_path / ".fedipress" / "state.db")
    env = Env(tmp_path, remote, blocked=("spam.example", "https://ok.example/u/3"))
    try:
        env.send()  # creating the app applies the blocks
        assert sorted(f.actor_id for f in env.store.iter_followers()) == [ACTORS[3]]
        assert [i.actor_id for i in env.store.recent_interactions()] == [ACTORS[3]]
    finally:
        env.store.close()


def test_site_yaml_blocks_get_no_deliveries_from_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    blog_public_pem: bytes,
) -> None:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("CI", raising=False)
    blog = make_blog(tmp_path / "site")
    config = blog.root / "site.yaml"
    config.write_text(config.read_text() + "  blocked: [127.0.0.2]\n")
    with InboxSink(blog_public_pem) as ok, InboxSink(blog_public_pem, host="127.0.0.2") as bad:
        blog.post("old", age=timedelta(days=30))
        now = datetime.now(UTC)
        blog.follow(Follower(ok.url("/u/ok"), ok.url("/u/ok/inbox"), None, None, None, now),
                    Follower(bad.url("/u/bad"), bad.url("/u/bad/inbox"), None, None, None, now))
        assert publish(blog, capsys)[0] == 0
        blog.post("new", "Fresh.")
        code, out, _ = publish(blog, capsys)
        assert code == 0 and "sent 1," in out
        assert [p.path for p in ok.posts] == ["/u/ok/inbox"] and bad.posts == []
    store = blog.store()
    try:
        assert [f.actor_id for f in store.iter_followers()] == [ok.url("/u/ok")]
    finally:
        store.close()
