"""SigningAuth: what reaches the wire verifies (MockTransport and a real loopback server)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fedipress.activitypub.httpsig import VerifiedSignature, verify_request
from fedipress.errors import SignatureError
from fedipress.federation.signing import SigningAuth, utc_now

ACTOR = "https://blog.example/actor.json"
AS2 = "application/activity+json"
BODY = b'{"type":"Create","id":"https://blog.example/activities/1"}'
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def verify_wire(request: httpx.Request, pub: rsa.RSAPublicKey) -> VerifiedSignature:
    """Verify a request as an inbox sees it: raw target, headers and body."""
    return verify_request(
        request.method,
        request.url.raw_path.decode("ascii"),
        request.headers.multi_items(),
        request.content,
        public_key=pub,
        now=NOW,
    )


class Recorder:
    """A MockTransport handler that keeps every request and answers with queued statuses."""

    def __init__(self, *statuses: int) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses = list(statuses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 202)


def test_post_is_signed_with_cavage(
    blog_key: rsa.RSAPrivateKey, blog_pub: rsa.RSAPublicKey
) -> None:
    recorder = Recorder()
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW)
    with httpx.Client(transport=httpx.MockTransport(recorder), auth=auth) as client:
        response = client.post(
            "https://remote.example/inbox?x=1", content=BODY, headers={"Content-Type": AS2}
        )
    assert response.status_code == 202
    (sent,) = recorder.requests
    assert sent.headers["Date"] == "Wed, 01 May 2024 12:00:00 GMT"
    assert sent.headers["Digest"].startswith("SHA-256=")
    assert f'keyId="{ACTOR}#main-key"' in sent.headers["Signature"]
    got = verify_wire(sent, blog_pub)
    assert got.key_id == ACTOR + "#main-key"
    assert got.covered == ("(request-target)", "host", "date", "digest", "content-type")


def test_get_is_signed_without_digest(
    blog_key: rsa.RSAPrivateKey, blog_pub: rsa.RSAPublicKey
) -> None:
    recorder = Recorder(200)
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW)
    with httpx.Client(transport=httpx.MockTransport(recorder), auth=auth) as client:
        client.get("https://gts.example/users/bob", headers={"Accept": AS2})
    (sent,) = recorder.requests
    assert "Digest" not in sent.headers
    assert verify_wire(sent, blog_pub).covered == ("(request-target)", "host", "date")


def test_async_client_and_rfc9421(blog_key: rsa.RSAPrivateKey, blog_pub: rsa.RSAPublicKey) -> None:
    recorder = Recorder()
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW, scheme="rfc9421")

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recorder), auth=auth) as c:
            await c.post(
                "https://remote.example/inbox", content=BODY, headers={"Content-Type": AS2}
            )
            await c.get("https://remote.example/users/bob")

    asyncio.run(go())
    post, get = recorder.requests
    assert "Content-Digest" in post.headers and "Digest" not in post.headers
    assert verify_wire(post, blog_pub).covered == ("@method", "@target-uri", "content-digest")
    assert verify_wire(get, blog_pub).covered == ("@method", "@target-uri")


def test_rfc9421_falls_back_to_cavage_once(
    blog_key: rsa.RSAPrivateKey, blog_pub: rsa.RSAPublicKey
) -> None:
    recorder = Recorder(401, 202)
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW, scheme="rfc9421")
    with httpx.Client(transport=httpx.MockTransport(recorder), auth=auth) as client:
        response = client.post(
            "https://old.example/inbox", content=BODY, headers={"Content-Type": AS2}
        )
    assert response.status_code == 202
    first, second = recorder.requests
    assert verify_wire(first, blog_pub).scheme == "rfc9421"
    assert "Signature-Input" not in second.headers and "Content-Digest" not in second.headers
    assert verify_wire(second, blog_pub).scheme == "cavage"
    assert second.content == first.content == BODY


def test_no_fallback_for_cavage_or_when_disabled(blog_key: rsa.RSAPrivateKey) -> None:
    for auth in (
        SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW),
        SigningAuth(
            key_id=ACTOR + "#main-key",
            private_key=blog_key,
            clock=lambda: NOW,
            scheme="rfc9421",
            double_knock=False,
        ),
    ):
        recorder = Recorder(401, 202)
        with httpx.Client(transport=httpx.MockTransport(recorder), auth=auth) as client:
            assert client.post("https://x.example/inbox", content=BODY).status_code == 401
        assert len(recorder.requests) == 1


def test_every_request_gets_a_fresh_date(
    blog_key: rsa.RSAPrivateKey, blog_pub: rsa.RSAPublicKey
) -> None:
    times = iter([NOW - timedelta(minutes=2), NOW])
    recorder = Recorder()
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: next(times))
    with httpx.Client(transport=httpx.MockTransport(recorder), auth=auth) as client:
        for _ in range(2):
            client.post("https://remote.example/inbox", content=BODY)
    first, second = recorder.requests
    assert first.headers["Date"] != second.headers["Date"]
    assert first.headers["Digest"] == second.headers["Digest"]
    for sent in recorder.requests:
        verify_wire(sent, blog_pub)


def test_tampered_wire_request_fails(
    blog_key: rsa.RSAPrivateKey, blog_pub: rsa.RSAPublicKey
) -> None:
    recorder = Recorder()
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW)
    with httpx.Client(transport=httpx.MockTransport(recorder), auth=auth) as client:
        client.post("https://remote.example/inbox", content=BODY, headers={"Content-Type": AS2})
    (sent,) = recorder.requests
    with pytest.raises(SignatureError, match="digest does not match body"):
        verify_request("POST", "/inbox", sent.headers, BODY + b"x", public_key=blog_pub, now=NOW)


def test_private_key_stays_out_of_repr(blog_key: rsa.RSAPrivateKey) -> None:
    auth = SigningAuth.for_actor(ACTOR, blog_key)
    assert repr(auth) == f"SigningAuth(key_id='{ACTOR}#main-key', scheme='cavage')"
    assert "PRIVATE" not in repr(vars(auth))
    with pytest.raises(ValueError):
        SigningAuth(key_id="k", private_key=blog_key, scheme="bogus")  # type: ignore[arg-type]


def test_default_clock_is_aware_utc() -> None:
    now = utc_now()
    assert now.tzinfo is not None and abs(datetime.now(UTC) - now) < timedelta(seconds=5)


def test_signing_cost_is_small(blog_key: rsa.RSAPrivateKey) -> None:
    # The brief's budget is 2 ms per request (RSA-2048 signing alone is ~1 ms); the assertion
    # is looser so a loaded CI machine does not flake, the printed figure is the measurement.
    auth = SigningAuth.for_actor(ACTOR, blog_key, clock=lambda: NOW)
    request = httpx.Request(
        "POST", "https://remote.example/inbox", content=BODY * 20, headers={"Content-Type": AS2}
    )
    auth.sign(request, "cavage")
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        auth.sign(request, "cavage")
    per_request = (time.perf_counter() - start) / rounds
    print(f"cavage signing: {per_request * 1000:.3f} ms per request")
    assert per_request < 0.010


# ------------------------------------------------------------------------------------------
# a real loopback server: the bytes uvicorn receives verify


async def _inbox(request: Request) -> PlainTextResponse:
    target = request.scope["raw_path"].decode("ascii")
    if request.scope["query_string"]:
        target += "?" + request.scope["query_string"].decode("ascii")
    pub: rsa.RSAPublicKey = request.app.state.public_key
    try:
        got = verify_request(
            request.method,
            target,
            request.headers.items(),
            await request.body(),
            public_key=pub,
            now=utc_now(),
            scheme="http",
        )
    except SignatureError as error:
        return PlainTextResponse(error.reason, status_code=401)
    return PlainTextResponse(" ".join(got.covered), status_code=202)


@pytest.fixture(scope="module")
def loopback_inbox(blog_pub: rsa.RSAPublicKey) -> Iterator[str]:
    app = Starlette(routes=[Route("/inbox", _inbox, methods=["GET", "POST"])])
    app.state.public_key = blog_pub
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield f"http://127.0.0.1:{port}/inbox"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
def test_loopback_server_verifies_what_we_send(
    blog_key: rsa.RSAPrivateKey, loopback_inbox: str, scheme: str
) -> None:
    auth = SigningAuth.for_actor(ACTOR, blog_key, scheme=scheme)  # type: ignore[arg-type]

    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(auth=auth, timeout=10) as client:
            post = await client.post(
                loopback_inbox + "?a=1&b=%20", content=BODY, headers={"Content-Type": AS2}
            )
            get = await client.get(loopback_inbox)
            return post, get

    post, get = asyncio.run(go())
    assert (post.status_code, get.status_code) == (202, 202), (post.text, get.text)
    assert len(post.history) == 0  # no double knock was needed
    assert "digest" in post.text
