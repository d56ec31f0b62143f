"""The inbox tests' world: remote actors on a loopback server, a blog store, signed requests.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fedipress.activitypub.httpsig import sign_cavage, sign_rfc9421
from fedipress.config import load_config
from fedipress.federation.inbox import InboxSettings, create_app
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.federation.signing import SigningAuth
from fedipress.store import StoreParts, open_store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BLOG = "https://blog.example/"
ACTOR = BLOG + "actor.json"
POST = BLOG + "posts/hello/object.json"
POST_PAGE = BLOG + "posts/hello/"
KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
AS2 = "application/activity+json"


def _private(name: str) -> rsa.RSAPrivateKey:
    key = load_pem_private_key((KEYS / f"{name}-private.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


REMOTE_KEY = _private("remote")
BLOG_KEY = _private("blog")
REMOTE_PEM = (KEYS / "remote-public.pem").read_text()
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
  comments: {comments}
  blocked_words: {blocked_words}
"""


@dataclass
class Env:
    tmp: Path
    remote: Remote
    manual: bool = False
    blocked: tuple[str, ...] = ()
    # Most inbox tests are about what is stored, not about moderation: every public reply shown.
    comments: str = "all"
    blocked_words: tuple[str, ...] = ()
    allow_private: bool = True
    settings: InboxSettings = field(default_factory=InboxSettings)
    clock: Callable[[], datetime] = lambda: NOW
    wakes: int = 0
    # A postgresql:// URL runs the same inbox on a PostgreSQL store; None: the blog's SQLite file.
    store_url: str | None = None

    def __post_init__(self) -> None:
        (self.tmp / "site.yaml").write_text(
            SITE_YAML.format(
                manual=str(self.manual).lower(), blocked=json.dumps(list(self.blocked)),
                comments=self.comments, blocked_words=json.dumps(list(self.blocked_words)),
            )
            # site.yaml names the store, so what opens it from the config (comments, block)
            # finds the same one; the test cluster's URL holds no password.
            + (f"store: {self.store_url}\n" if self.store_url else "")
        )
        self.config = load_config(self.tmp / "site.yaml")
        state = self.config.state_dir
        state.mkdir(exist_ok=True)
        manifest = {"objects": {POST: {"hash": "x", "doc": {"id": POST, "url": POST_PAGE}}}}
        (state / "manifest.json").write_text(json.dumps(manifest))
        self.store: StoreParts = open_store(self.location)

    @property
    def location(self) -> str | Path:
        """Where the store is: what the build's read-only snapshot is given."""
        return self.store_url or self.config.state_dir / "state.db"

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


def make_env(tmp_path: Path, remote: Remote, **kw: Any) -> Env:
    return Env(tmp_path, remote, **kw)


def note(env: Env, n: int, in_reply_to: str, content: str = "<p>Hi</p>") -> dict[str, Any]:
    return {
        "id": f"{env.alice}/statuses/{n}",
        "type": "Note",
        "attributedTo": env.alice,
        "inReplyTo": in_reply_to,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{env.alice}/followers"],
        "content": content,
        "published": "2026-05-01T11:00:00Z",
        "url": f"{env.alice}/statuses/{n}/html",
    }
