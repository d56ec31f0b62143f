"""The inbox app through httpx.ASGITransport with real signed requests (committed keys), a real
SQLite store, and the RemoteFetcher talking to a real loopback server hosting the remote actors.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from fedipress.activitypub.httpsig import sign_cavage, sign_rfc9421, verify_request
from fedipress.config import load_config
from fedipress.federation.inbox import InboxSettings, create_app
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.federation.signing import SigningAuth
from fedipress.store import SQLiteStore, open_store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BLOG = "https://blog.example/"
ACTOR = BLOG + "actor.json"
POST = BLOG + "posts/hello/object.json"
POST_PAGE = BLOG + "posts/hello/"
KEYS = Path(__file__).resolve().parent / "fixtures" / "keys"
AS2 = "application/activity+json"


def _private(name: str) -> rsa.RSAPrivateKey:
    key = load_pem_private_key((KEYS / f"{name}-private.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


REMOTE_KEY = _private("remote")
BLOG_KEY = _private("blog")
REMOTE_PEM = (KEYS / "remote-public.pem").read_text()
BLOG_PEM = (KEYS / "blog-public.pem").read_bytes()
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Remote:
    """A loopback server hosting remote actors and objects; records every GET and POST."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}
        self.gets: list[tuple[str, dict[str, str]]] = []
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="error",
            timeout_graceful_shutdown=1,
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        if scope["method"] == "POST":
            self.posts.append((path, headers, body))
            status, payload = 202, b""
        else:
            self.gets.append((path, headers))
            doc = self.docs.get(path)
            status, payload = (200, json.dumps(doc).encode()) if doc else (404, b"{}")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", AS2.encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def __enter__(self) -> Remote:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def remote_server() -> Any:
    with Remote() as server:
        yield server


def actor_doc(remote: Remote, name: str, pem: str = REMOTE_PEM, **extra: Any) -> dict[str, Any]:
    actor = remote.url(f"/users/{name}")
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Person",
        "preferredUsername": name,
        "name": name.title(),
        "inbox": actor + "/inbox",
        "endpoints": {"sharedInbox": remote.url("/inbox")},
        "icon": {"type": "Image", "url": remote.url(f"/avatars/{name}.png")},
        "url": remote.url(f"/@{name}"),
        "publicKey": {"id": actor + "#main-key", "owner": actor, "publicKeyPem": pem},
        **extra,
    }


@pytest.fixture
def remote(remote_server: Remote) -> Remote:
    remote_server.docs.clear()
    remote_server.gets.clear()
    remote_server.posts.clear()
    remote_server.docs["/users/alice"] = actor_doc(remote_server, "alice")
    return remote_server


SITE_YAML = """\
title: Inbox Test
base_url: https://blog.example/
author:
  name: Blog Author
  handle: author
fediverse:
  display_name: Blog Author
  bio: test
  manually_approves_followers: {manual}
  blocked: {blocked}
"""


@dataclass
class Env:
    tmp: Path
    remote: Remote
    manual: bool = False
    blocked: tuple[str, ...] = ()
    allow_private: bool = True
    settings: InboxSettings = field(default_factory=InboxSettings)
    clock: Callable[[], datetime] = lambda: NOW
    wakes: int = 0

    def __post_init__(self) -> None:
        (self.tmp / "site.yaml").write_text(
            SITE_YAML.format(
                manual=str(self.manual).lower(), blocked=json.dumps(list(self.blocked))
            )
        )
        self.config = load_config(self.tmp / "site.yaml")
        state = self.config.state_dir
        state.mkdir(exist_ok=True)
        manifest = {"objects": {POST: {"hash": "x", "doc": {"id": POST, "url": POST_PAGE}}}}
        (state / "manifest.json").write_text(json.dumps(manifest))
        self.store: SQLiteStore = open_store(state / "state.db")

    @property
    def alice(self) -> str:
        return self.remote.url("/users/alice")

    def activity(self, kind: str, obj: Any, n: int = 1, actor: str | None = None) -> dict[str, Any]:
        actor = actor or self.alice
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{actor}/activities/{kind.lower()}-{n}",
            "type": kind,
            "actor": actor,
            "object": obj,
        }

    def signed(
        self,
        activity: dict[str, Any] | bytes,
        *,
        key_id: str | None = None,
        key: rsa.RSAPrivateKey = REMOTE_KEY,
        now: datetime = NOW,
        scheme: str = "cavage",
        content_type: str = AS2,
    ) -> tuple[bytes, dict[str, str]]:
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        headers = {"Content-Type": content_type, "Host": "blog.example"}
        signer = sign_cavage if scheme == "cavage" else sign_rfc9421
        headers.update(
            signer(
                "POST",
                BLOG + "inbox",
                headers,
                body,
                key_id=key_id or self.alice + "#main-key",
                private_key=key,
                now=now,
            )
        )
        return body, headers

    def send(
        self, *requests: tuple[bytes, dict[str, str]], path: str = "/inbox", ip: str = "203.0.113.5"
    ) -> list[httpx.Response]:
        async def main() -> list[httpx.Response]:
            auth = SigningAuth.for_actor(ACTOR, BLOG_KEY)
            async with RemoteFetcher(
                policy=FetchPolicy(allow_private=self.allow_private), user_agent="test", auth=auth
            ) as fetcher:

                def wake() -> None:
                    self.wakes += 1

                app = create_app(
                    self.config,
                    self.store,
                    fetcher,
                    clock=self.clock,
                    delivery_wake=wake,
                    settings=self.settings,
                )
                transport = httpx.ASGITransport(app=app, client=(ip, 4321))
                async with httpx.AsyncClient(transport=transport, base_url=BLOG) as client:
                    return [
                        await client.post(path, content=body, headers=headers)
                        for body, headers in requests
                    ]

        return asyncio.run(main())

    def post(self, activity: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.send(self.signed(activity, **kw))[0]

    def count(self, table: str) -> int:
        return int(self.store._one(f"SELECT COUNT(*) FROM {table}")[0])  # noqa: SLF001


@pytest.fixture
def env(tmp_path: Path, remote: Remote) -> Any:
    e = Env(tmp_path, remote)
    yield e
    e.store.close()


def make_env(tmp_path: Path, remote: Remote, **kw: Any) -> Env:
    return Env(tmp_path, remote, **kw)


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
    from tests.inbox_sink import InboxSink

    from fedipress.federation.delivery import DeliveryWorker, owner_id

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


def note(env: Env, n: int, in_reply_to: str, content: str = "<p>Hi</p>") -> dict[str, Any]:
    return {
        "id": f"{env.alice}/statuses/{n}",
        "type": "Note",
        "attributedTo": env.alice,
        "inReplyTo": in_reply_to,
        "content": content,
        "published": "2026-05-01T11:00:00Z",
        "url": f"{env.alice}/statuses/{n}/html",
    }


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
