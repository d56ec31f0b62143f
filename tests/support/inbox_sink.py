"""A real loopback test inbox: uvicorn + a tiny ASGI app that records every POST.

    with InboxSink(public_key_pem) as sink:
        sink.script("/users/b/inbox", [500, 200])      # first POST 500, then 200 ever after
        sink.script("/slow/inbox", [("sleep", 30)])    # never answers in time
        sink.documents["/users/b"] = {...actor...}     # served on GET (followers add)
        ... deliver to sink.url("/users/b/inbox") ...
        sink.posts                                     # every POST, in arrival order

Each POST's signature is checked twice: with fedipress's own httpsig (`verified_ours`) and
independently from the raw headers with `cryptography` alone (`verified_independent`), so a
bug shared by our signer and verifier cannot hide.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fedipress.activitypub.httpsig import verify_request
from fedipress.errors import SignatureError

Step = int | tuple[str, float]  # a status, or ("sleep", seconds) then 202


@dataclass(frozen=True)
class ReceivedPost:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    received_at: float
    status: int  # what the sink answered
    verified_ours: bool
    verified_independent: bool

    @property
    def activity_id(self) -> str:
        return str(json.loads(self.body)["id"])


def independent_verify(
    method: str, path: str, headers: dict[str, str], body: bytes, public_pem: bytes
) -> bool:
    """draft-cavage verification from the raw headers, using only `cryptography`."""
    raw = headers.get("signature")
    if not raw:
        return False
    params: dict[str, str] = {}
    for part in raw.split(","):
        name, _, value = part.strip().partition("=")
        params[name] = value.strip('"')
    if "digest" in headers:
        expected = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers["digest"] != expected:
            return False
    lines = []
    for name in params.get("headers", "date").split():
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {path}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            return False
    key = load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(params.get("signature", "")), "\n".join(lines).encode(),
                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return "digest" in params.get("headers", "").split()


class InboxSink:
    """One uvicorn server on 127.0.0.1 (or another loopback address) and a free port."""

    def __init__(self, public_pem: bytes | None = None, *, host: str = "127.0.0.1") -> None:
        self.public_pem = public_pem
        self.host = host
        self.posts: list[ReceivedPost] = []
        self.documents: dict[str, Any] = {}
        self._scripts: dict[str, list[Step]] = {}
        self.default: Step = 202
        self.delay = 0.0  # seconds every POST takes (to have requests in flight)
        self.active = 0  # POSTs being answered right now, and the most ever at once
        self.max_active = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self._app, interface="asgi3", lifespan="off", log_level="error",
                                access_log=False, ws="none", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # -- control ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def script(self, path: str, steps: list[Step]) -> None:
        """Answers for POSTs to `path`, one step per POST; the last step repeats."""
        with self._lock:
            self._scripts[path] = list(steps)

    def posts_to(self, path: str) -> list[ReceivedPost]:
        with self._lock:
            return [p for p in self.posts if p.path == path]

    def __enter__(self) -> InboxSink:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("inbox sink did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    # -- the ASGI app -----------------------------------------------------------------------

    def _next_step(self, path: str) -> Step:
        with self._lock:
            steps = self._scripts.get(path)
            if not steps:
                return self.default
            return steps.pop(0) if len(steps) > 1 else steps[0]

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender died mid-request: nothing was delivered
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        if scope["method"] == "GET":
            doc = self.documents.get(path)
            status = 200 if doc is not None else 404
            payload = json.dumps(doc).encode() if doc is not None else b"{}"
            await self._answer(send, status, payload, "application/activity+json")
            return
        step = self._next_step(path)
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status = 202
            if isinstance(step, tuple):
                await asyncio.sleep(step[1])
            else:
                status = step
        finally:
            with self._lock:
                self.active -= 1
        ours = independent = False
        if self.public_pem is not None:
            key = load_pem_public_key(self.public_pem)
            assert isinstance(key, rsa.RSAPublicKey)
            target = path + (("?" + scope["query_string"].decode()) if scope["query_string"]
                             else "")
            try:
                verify_request("POST", target, headers, body, public_key=key,
                               now=datetime.now(UTC), scheme="http")
                ours = True
            except SignatureError:
                ours = False
            independent = independent_verify("POST", target, headers, body, self.public_pem)
        with self._lock:
            self.posts.append(ReceivedPost(path, headers, body, time.monotonic(), status,
                                           ours, independent))
        extra = [(b"retry-after", b"1")] if status in (429, 503) else []
        await self._answer(send, status, b"", "text/plain", extra)

    @staticmethod
    async def _answer(send: Any, status: int, payload: bytes, content_type: str,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(payload)).encode()), *(extra or [])]})
        await send({"type": "http.response.body", "body": payload})
