"""A loopback fediverse peer whose actors can be mentioned.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn

AS2 = "application/activity+json"


class Peer:
    """uvicorn on 127.0.0.1: WebFinger for `accounts`, their actor documents, any extra
    `docs`, scripted statuses/delays per path, and a record of every request."""

    def __init__(self) -> None:
        self.accounts: set[str] = set()
        self.docs: dict[str, Any] = {}
        self.status: dict[str, int] = {}  # path -> status answered instead of the document
        self.delay: dict[str, float] = {}  # path -> seconds to wait before answering
        self.gets: list[str] = []
        self.posts: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(self.app, lifespan="off", log_level="error",
                                timeout_graceful_shutdown=1, interface="asgi3")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def handle(self, name: str) -> str:
        return f"{name}@{self.host}"

    def actor(self, name: str, **extra: Any) -> dict[str, Any]:
        actor = self.url(f"/users/{name}")
        return {
            "@context": ["https://www.w3.org/ns/activitystreams"],
            "id": actor, "type": "Person", "preferredUsername": name, "name": name.title(),
            "inbox": actor + "/inbox", "endpoints": {"sharedInbox": self.url("/inbox")},
            "url": self.url(f"/@{name}"), **extra,
        }

    def add(self, name: str, **extra: Any) -> dict[str, Any]:
        """An account reachable by WebFinger and by its actor URL."""
        self.accounts.add(name)
        doc = self.actor(name, **extra)
        self.docs[f"/users/{name}"] = doc
        return doc

    def posts_to(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for p, body in self.posts if p == path]

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path in self.delay:
            await asyncio.sleep(self.delay[path])
        ctype, payload = AS2, b"{}"
        with self._lock:
            if scope["method"] == "POST":
                self.posts.append((path, body))
            else:
                self.gets.append(path)
        if path in self.status:
            status = self.status[path]
        elif scope["method"] == "POST":
            status = 202
        elif path == "/.well-known/webfinger":
            resource = parse_qs(scope["query_string"].decode()).get("resource", [""])[0]
            user, _, host = resource.removeprefix("acct:").partition("@")
            status = 200 if user in self.accounts and host == self.host else 404
            ctype = "application/jrd+json"
            payload = json.dumps({
                "subject": resource,
                "links": [{"rel": "self", "type": AS2, "href": self.url(f"/users/{user}")}],
            }).encode()
        elif path in self.docs:
            status, payload = 200, json.dumps(self.docs[path]).encode()
        else:
            status = 404
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode())]})
        await send({"type": "http.response.body", "body": payload})

    def __enter__(self) -> Peer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "peer did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
