"""RemoteFetcher against real uvicorn servers on 127.0.0.1.

Two servers run the same Starlette app: a plain-http one (reached with the allow_private opt-in,
as a developer testing on one machine would) and a TLS one whose certificate is for
`remote.example`, reached with the production policy (https only, public addresses only)
through a FakeResolver that says remote.example is 93.184.216.34 and a connector that maps that
one public address to the loopback port. Any other connect attempt fails the test, so nothing
ever leaves the machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from fedipress.errors import FetchError, UnsafeURLError
from fedipress.federation.netguard import FakeResolver, GuardedTransport
from fedipress.federation.remote import (
    AP_ACCEPT,
    FetchPolicy,
    RemoteFetcher,
    actor_url_from_jrd,
    check_json_depth,
    is_activitypub_content_type,
    is_jrd_content_type,
    parse_actor,
    run_sync,
    user_agent,
)

T = TypeVar("T")
AP = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
PUBLIC_IP = "93.184.216.34"
UA = user_agent("https://blog.example/")
KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
REMOTE_PEM = (KEYS / "remote-public.pem").read_text()
BLOG_PEM = (KEYS / "blog-public.pem").read_text()

# How many bytes the endless endpoint produced (to prove the client stopped reading).
produced: dict[str, int] = {"big": 0}


# --- the remote server --------------------------------------------------------------------------


def base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def ap(data: Any, media_type: str = AP, status: int = 200) -> Response:
    return Response(json.dumps(data), status_code=status, media_type=media_type)


def actor_doc(
    request: Request, path: str, keys: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    actor_id = base(request) + path
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor_id,
        "type": "Person",
        "preferredUsername": path.rsplit("/", 1)[-1],
        "name": "Alice Remote",
        "inbox": actor_id + "/inbox",
        "endpoints": {"sharedInbox": base(request) + "/inbox"},
        "url": [
            {"type": "Link", "mediaType": "text/html", "href": base(request) + "/@alice"},
        ],
        "icon": {"type": "Image", "url": base(request) + "/avatar.png"},
        "alsoKnownAs": ["https://old.example/users/alice"],
        "publicKey": keys
        if keys is not None
        else {"id": actor_id + "#main-key", "owner": actor_id, "publicKeyPem": REMOTE_PEM},
    }


async def actor(request: Request) -> Response:
    media = {
        "ld": LD,
        "json": "application/json",
        "html": "text/html",
        "bare-ld": "application/ld+json",
    }
    kind = request.query_params.get("type")
    return ap(actor_doc(request, request.url.path), media.get(kind or "", AP))


async def mismatch(request: Request) -> Response:
    doc = actor_doc(request, "/users/someone-else")
    return ap(doc)


async def headers(request: Request) -> Response:
    doc = actor_doc(request, "/headers")
    doc["seen"] = {k: request.headers.get(k) for k in ("user-agent", "accept", "host", "signature")}
    return ap(doc)


async def big(request: Request) -> Response:
    produced["big"] = 0

    async def endless() -> AsyncIterator[bytes]:
        chunk = b'{"id": "' + b"x" * 65_000 + b'", '
        for _ in range(1000):  # 65 MB if nobody stops reading
            produced["big"] += len(chunk)
            yield chunk
            await asyncio.sleep(0)

    return StreamingResponse(endless(), media_type=AP)


async def big_declared(request: Request) -> Response:
    return Response(b" " * (2 << 20), media_type=AP)  # Content-Length: 2 MiB


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return ap(actor_doc(request, "/slow"))


async def drip(request: Request) -> Response:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(300):
            yield b" "
            await asyncio.sleep(0.05)

    return StreamingResponse(trickle(), media_type=AP)


async def redirect(request: Request) -> Response:
    hops = int(request.path_params["hops"])
    if hops == 0:
        return ap(actor_doc(request, "/redirect/0"))
    return RedirectResponse(f"/redirect/{hops - 1}", status_code=302)


async def redirect_to(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=301)


async def bad_body(request: Request) -> Response:
    kind = request.path_params["kind"]
    bodies = {
        "array": b"[1, 2]",
        "notjson": b"<html>secret-page-content</html>",
        "deep": b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}",
        "deep-in-string": json.dumps({"id": "", "text": "[" * 500}).encode(),
        "latin1": b'{"id": "\xff"}',
    }
    return Response(bodies[kind], media_type=AP)


async def status(request: Request) -> Response:
    return ap({"error": "nope"}, status=int(request.path_params["code"]))


# Keys in the three layouts in use.
async def users(request: Request) -> Response:
    name = request.path_params["name"]
    path = f"/users/{name}"
    me = base(request) + path
    if name == "bob":  # key in a document of its own
        keys = [{"id": base(request) + "/keys/bob", "owner": me, "publicKeyPem": REMOTE_PEM}]
        return ap(actor_doc(request, path, keys))
    if name == "carol":  # GoToSocial: key at <actor>/main-key
        keys = [{"id": me + "/main-key", "owner": me, "publicKeyPem": REMOTE_PEM}]
        return ap(actor_doc(request, path, keys))
    if name == "two-keys":
        keys = [
            {"id": me + "#main-key", "owner": me, "publicKeyPem": REMOTE_PEM},
            {"id": me + "#second", "owner": me, "publicKeyPem": BLOG_PEM},
            {"id": me + "#stolen", "owner": base(request) + "/users/bob", "publicKeyPem": BLOG_PEM},
        ]
        return ap(actor_doc(request, path, keys))
    if name == "badpem":
        keys = [{"id": me + "#main-key", "owner": me, "publicKeyPem": "not a key"}]
        return ap(actor_doc(request, path, keys))
    return ap(actor_doc(request, path))


async def gts_stub(request: Request) -> Response:
    name = request.path_params["name"]
    owner_host = "https://other.example" if name == "dave" else base(request)
    owner = f"{owner_host}/users/{name}"
    return ap(
        {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": owner,
            "type": "Person",
            "preferredUsername": name,
            "inbox": owner + "/inbox",
            "publicKey": {"id": str(request.url), "owner": owner, "publicKeyPem": REMOTE_PEM},
        }
    )


async def keys(request: Request) -> Response:
    name = request.path_params["name"]
    owner = {"bob": "bob", "mallory": "alice", "eve": "eve"}[name]
    pem = BLOG_PEM if name == "eve" else REMOTE_PEM
    doc = {
        "@context": "https://w3id.org/security/v1",
        "id": str(request.url),
        "type": "CryptographicKey",
        "owner": f"{base(request)}/users/{owner}",
        "publicKeyPem": pem,
    }
    return ap(doc)


async def eve_actor(request: Request) -> Response:
    # Lists /keys/eve, but with a different PEM from the one the key document claims.
    me = base(request) + "/users/eve"
    keys = [{"id": base(request) + "/keys/eve", "owner": me, "publicKeyPem": REMOTE_PEM}]
    return ap(actor_doc(request, "/users/eve", keys))


async def webfinger(request: Request) -> Response:
    resource = request.query_params.get("resource", "")
    host = request.headers["host"]
    if resource != f"acct:alice@{host}":
        return JSONResponse({}, status_code=404)
    jrd = {
        "subject": resource,
        "links": [
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": "x"},
            {"rel": "self", "type": AP, "href": base(request) + "/users/alice"},
        ],
    }
    return Response(json.dumps(jrd), media_type="application/jrd+json")


app = Starlette(
    routes=[
        Route("/actor", actor),
        Route("/mismatch", mismatch),
        Route("/headers", headers),
        Route("/big", big),
        Route("/big-declared", big_declared),
        Route("/slow", slow),
        Route("/drip", drip),
        Route("/redirect/{hops:int}", redirect),
        Route("/redirect-to", redirect_to),
        Route("/bad/{kind}", bad_body),
        Route("/status/{code:int}", status),
        Route("/users/eve", eve_actor),
        Route("/users/{name}", users),
        Route("/users/{name}/main-key", gts_stub),
        Route("/keys/{name}", keys),
        Route("/.well-known/webfinger", webfinger),
    ]
)


class ServerThread:
    """uvicorn in a thread on a free loopback port."""

    def __init__(self, ssl_files: tuple[Path, Path] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="error",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_certfile=str(ssl_files[0]) if ssl_files else None,
            ssl_keyfile=str(ssl_files[1]) if ssl_files else None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def make_tls_files(directory: Path) -> tuple[Path, Path, bytes]:
    """A throwaway CA and a certificate for remote.example signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedipress test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("remote.example")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, ca_cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def plain_server() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, bytes]]:
    cert, key, ca = make_tls_files(tmp_path_factory.mktemp("tls"))
    with ServerThread((cert, key)) as server:
        yield server, ca


# --- helpers ------------------------------------------------------------------------------------


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class LoopbackConnector:
    """Maps PUBLIC_IP:443 to the TLS server; any other connect attempt fails the test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls: list[tuple[str, int]] = []

    async def __call__(
        self, ip: str, port: int, timeout: float | None
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append((ip, port))
        if (ip, port) != (PUBLIC_IP, 443):
            pytest.fail(f"the guard let a connection to {ip}:{port} through")
        return await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", self.port, timeout=timeout)


class Remote:
    """Production policy against the TLS server posing as https://remote.example."""

    def __init__(self, tls: tuple[ServerThread, bytes], **policy: Any) -> None:
        server, ca = tls
        self.connector = LoopbackConnector(server.port)
        self.resolver = FakeResolver(
            {
                "remote.example": [PUBLIC_IP],
                "wrong.example": [PUBLIC_IP],
                "internal.example": ["10.1.2.3"],
            }
        )
        self.policy = FetchPolicy(**policy)
        self.ssl_context = ssl.create_default_context(cadata=ca.decode())

    def fetcher(self, auth: httpx.Auth | None = None) -> RemoteFetcher:
        transport = GuardedTransport(
            resolver=self.resolver, connector=self.connector, verify=self.ssl_context
        )
        return RemoteFetcher(policy=self.policy, user_agent=UA, auth=auth, transport=transport)

    def __call__(self, func: Callable[[RemoteFetcher], Awaitable[T]]) -> T:
        async def main() -> T:
            async with self.fetcher() as fetcher:
                return await func(fetcher)

        return asyncio.run(main())


def local(func: Callable[[RemoteFetcher], Awaitable[T]], **policy: Any) -> T:
    """The opt-in path: plain http to loopback through the default guarded transport."""
    return run_sync(func, policy=FetchPolicy(allow_private=True, **policy), user_agent=UA)


R = "https://remote.example"


# --- content types, ids, bodies -----------------------------------------------------------------


def test_fetches_an_actor_over_tls_with_the_production_policy(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    remote = Remote(tls_server)
    actor = remote(lambda f: f.fetch_actor(f"{R}/users/alice"))
    assert actor.id == f"{R}/users/alice"
    assert actor.inbox == f"{R}/users/alice/inbox"
    assert actor.shared_inbox == f"{R}/inbox"
    assert actor.handle == "alice@remote.example"
    assert actor.name == "Alice Remote"
    assert actor.profile_url == f"{R}/@alice"
    assert actor.icon_url == f"{R}/avatar.png"
    assert actor.also_known_as == ("https://old.example/users/alice",)
    assert actor.public_key is not None
    assert actor.public_key.key_id == f"{R}/users/alice#main-key"
    assert actor.public_key.pem == REMOTE_PEM
    assert remote.connector.calls == [(PUBLIC_IP, 443)]


def test_certificate_is_verified_for_the_hostname(tls_server: tuple[ServerThread, bytes]) -> None:
    # wrong.example resolves to the same (public) address, but the certificate is not for it.
    remote = Remote(tls_server)
    with pytest.raises(FetchError, match="ConnectError"):
        remote(lambda f: f.fetch_json("https://wrong.example/actor"))


def test_sends_user_agent_accept_and_auth_and_keeps_host(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    class Stamp(httpx.Auth):
        def auth_flow(
            self, request: httpx.Request
        ) -> Generator[httpx.Request, httpx.Response, None]:
            request.headers["Signature"] = f"signed {request.url.path}"
            yield request

    remote = Remote(tls_server)

    async def go(fetcher: RemoteFetcher) -> dict[str, Any]:
        return (await fetcher.fetch_json(f"{R}/headers")).data

    async def main() -> dict[str, Any]:
        async with remote.fetcher(auth=Stamp()) as fetcher:
            return await go(fetcher)

    seen = asyncio.run(main())["seen"]
    assert seen == {
        "user-agent": "fedipress/0.1.0 (+https://blog.example/)",
        "accept": AP_ACCEPT,
        "host": "remote.example",
        "signature": "signed /headers",
    }


@pytest.mark.parametrize("kind", ["", "ld"])
def test_accepts_activitypub_content_types(plain_server: ServerThread, kind: str) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/actor" + (f"?type={kind}" if kind else "")
    doc = local(lambda f: f.fetch_json(url, check_id=False))
    assert doc.status == 200
    assert is_activitypub_content_type(doc.content_type)


@pytest.mark.parametrize("kind", ["json", "html", "bare-ld"])
def test_refuses_other_content_types(plain_server: ServerThread, kind: str) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/actor?type={kind}"
    with pytest.raises(FetchError, match="Content-Type .* is not ActivityPub JSON"):
        local(lambda f: f.fetch_json(url, check_id=False))


def test_refuses_id_that_does_not_match_the_url(tls_server: tuple[ServerThread, bytes]) -> None:
    with pytest.raises(FetchError, match="does not match its URL"):
        Remote(tls_server)(lambda f: f.fetch_actor(f"{R}/mismatch"))


def test_accepts_id_matching_url(tls_server: tuple[ServerThread, bytes]) -> None:
    doc = Remote(tls_server)(lambda f: f.fetch_json(f"{R}/actor"))
    assert doc.url == doc.data["id"] == f"{R}/actor"


def test_streams_and_stops_reading_oversized_bodies(tls_server: tuple[ServerThread, bytes]) -> None:
    remote = Remote(tls_server)
    start = time.monotonic()
    with pytest.raises(FetchError, match="response larger than 1 MiB"):
        remote(lambda f: f.fetch_json(f"{R}/big"))
    assert time.monotonic() - start < 10
    time.sleep(0.3)  # let the server notice the closed connection
    assert produced["big"] < 16 << 20, produced  # far less than the 65 MB on offer


def test_refuses_declared_oversized_bodies(plain_server: ServerThread) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/big-declared"
    with pytest.raises(FetchError, match="larger than 1 MiB"):
        local(lambda f: f.fetch_json(url))


def test_size_limit_is_configurable(tls_server: tuple[ServerThread, bytes]) -> None:
    with pytest.raises(FetchError, match="larger than 512 bytes"):
        Remote(tls_server, max_bytes=512)(lambda f: f.fetch_json(f"{R}/actor"))


def test_read_timeout(plain_server: ServerThread) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/slow"
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out waiting for data"):
        local(lambda f: f.fetch_json(url), read_timeout=0.5)
    assert time.monotonic() - start < 2.5


def test_total_timeout_stops_a_slow_drip(plain_server: ServerThread) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/drip"
    start = time.monotonic()
    with pytest.raises(FetchError, match="no complete answer within 1 s"):
        local(lambda f: f.fetch_json(url), read_timeout=5, total_timeout=1)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("array", "not an object"),
        ("notjson", "not valid JSON"),
        ("deep", "nested deeper than 64"),
        ("latin1", "not valid JSON"),
    ],
)
def test_refuses_bad_json(tls_server: tuple[ServerThread, bytes], kind: str, message: str) -> None:
    with pytest.raises(FetchError, match=message) as info:
        Remote(tls_server)(lambda f: f.fetch_json(f"{R}/bad/{kind}"))
    assert "secret-page-content" not in str(info.value)  # never quote the remote body


def test_brackets_inside_strings_do_not_count_as_depth(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    with pytest.raises(FetchError, match="does not match"):  # parsed fine, then id-checked
        Remote(tls_server)(lambda f: f.fetch_json(f"{R}/bad/deep-in-string"))


@pytest.mark.parametrize("code", [404, 410, 500, 401])
def test_non_200_is_an_error(tls_server: tuple[ServerThread, bytes], code: int) -> None:
    with pytest.raises(FetchError, match=f"HTTP {code}"):
        Remote(tls_server)(lambda f: f.fetch_json(f"{R}/status/{code}"))


def test_json_depth_check() -> None:
    assert check_json_depth(b"[" * 64 + b"]" * 64)
    assert not check_json_depth(b"[" * 65 + b"]" * 65)
    assert not check_json_depth(b'{"a": ' + b'{"b": ' * 70 + b"1" + b"}" * 71)
    assert check_json_depth(b'{"a": "' + b"{[" * 200 + b'"}')
    assert check_json_depth(b'{"a": "\\"' + b"[" * 200 + b'"}')
    assert check_json_depth(b'"unterminated ' + b"[" * 200)


def test_json_depth_check_is_linear_on_hostile_input() -> None:
    # Escaped quotes with no closing quote made a naive string regex quadratic (hours on 1 MiB).
    body = b'"' + b'\\"[' * 350_000
    start = time.monotonic()
    check_json_depth(body)
    assert time.monotonic() - start < 5


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=3)
    ),
    max_leaves=20,
)


@given(value=json_values, wrap=st.integers(min_value=0, max_value=80))
def test_json_depth_check_agrees_with_the_real_depth(value: Any, wrap: int) -> None:
    for _ in range(wrap):
        value = [value]
    assert check_json_depth(json.dumps(value).encode()) == (_depth(value) <= 64)


# --- redirects ----------------------------------------------------------------------------------


def test_follows_up_to_three_redirects(tls_server: tuple[ServerThread, bytes]) -> None:
    doc = Remote(tls_server)(lambda f: f.fetch_json(f"{R}/redirect/3"))
    assert doc.url == f"{R}/redirect/0"


def test_refuses_a_fourth_redirect(tls_server: tuple[ServerThread, bytes]) -> None:
    remote = Remote(tls_server)
    with pytest.raises(FetchError, match="too many redirects"):
        remote(lambda f: f.fetch_json(f"{R}/redirect/4"))
    assert len(remote.connector.calls) >= 1


@pytest.mark.parametrize(
    "target",
    [
        "https://internal.example/actor",  # resolves to 10.1.2.3
        "https://127.0.0.1/actor",
        "https://169.254.169.254/latest/meta-data/",
        "http://remote.example/actor",  # downgrade to http
        "file:///etc/passwd",
    ],
)
def test_refuses_redirects_to_unsafe_places(
    tls_server: tuple[ServerThread, bytes], target: str
) -> None:
    remote = Remote(tls_server)
    url = str(httpx.URL(f"{R}/redirect-to", params={"to": target}))
    with pytest.raises(UnsafeURLError):
        remote(lambda f: f.fetch_json(url))
    assert all(call == (PUBLIC_IP, 443) for call in remote.connector.calls)


def test_refuses_http_without_opt_in_before_any_lookup(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    remote = Remote(tls_server)
    with pytest.raises(UnsafeURLError, match="only https"):
        remote(lambda f: f.fetch_actor("http://remote.example/users/alice"))
    assert remote.resolver.calls == [] and remote.connector.calls == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_default_fetcher_refuses_loopback_without_opt_in(
    plain_server: ServerThread, host: str
) -> None:
    # The real resolver and connector, production policy: the loopback server is off limits.
    url = f"https://{host}:{plain_server.port}/actor"
    with pytest.raises(UnsafeURLError):
        run_sync(lambda f: f.fetch_json(url), policy=FetchPolicy(), user_agent=UA)


def test_opt_in_from_environment() -> None:
    assert FetchPolicy.from_options(False, {"FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1"}).allow_private
    assert FetchPolicy.from_options(True, {}).allow_private
    assert not FetchPolicy.from_options(
        False, {"FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "0"}
    ).allow_private
    assert FetchPolicy.from_options(False, {}, max_bytes=10).max_bytes == 10


# --- keys ---------------------------------------------------------------------------------------


def test_key_in_actor_by_fragment(tls_server: tuple[ServerThread, bytes]) -> None:
    key = Remote(tls_server)(lambda f: f.fetch_key(f"{R}/users/alice#main-key"))
    assert (key.key_id, key.owner, key.pem) == (
        f"{R}/users/alice#main-key",
        f"{R}/users/alice",
        REMOTE_PEM,
    )


def test_second_key_by_fragment_and_keys_of_other_owners_ignored(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    remote = Remote(tls_server)
    key = remote(lambda f: f.fetch_key(f"{R}/users/two-keys#second"))
    assert key.pem == BLOG_PEM
    with pytest.raises(FetchError, match="does not list the key"):
        remote(lambda f: f.fetch_key(f"{R}/users/two-keys#stolen"))
    with pytest.raises(FetchError, match="does not list the key"):
        remote(lambda f: f.fetch_key(f"{R}/users/alice#other-key"))


def test_key_id_equal_to_the_actor_with_one_key(tls_server: tuple[ServerThread, bytes]) -> None:
    remote = Remote(tls_server)
    key = remote(lambda f: f.fetch_key(f"{R}/users/alice"))
    assert (key.key_id, key.owner) == (f"{R}/users/alice#main-key", f"{R}/users/alice")
    with pytest.raises(FetchError, match="does not list the key"):  # two keys: ambiguous
        remote(lambda f: f.fetch_key(f"{R}/users/two-keys"))


def test_separate_key_document_confirmed_by_owner(tls_server: tuple[ServerThread, bytes]) -> None:
    key = Remote(tls_server)(lambda f: f.fetch_key(f"{R}/keys/bob"))
    assert (key.key_id, key.owner) == (f"{R}/keys/bob", f"{R}/users/bob")


def test_key_document_whose_owner_does_not_list_it(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    with pytest.raises(FetchError, match="does not list the key"):
        Remote(tls_server)(lambda f: f.fetch_key(f"{R}/keys/mallory"))


def test_key_document_whose_owner_lists_another_pem(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    with pytest.raises(FetchError, match="different key"):
        Remote(tls_server)(lambda f: f.fetch_key(f"{R}/keys/eve"))


def test_gotosocial_stub_actor_key(tls_server: tuple[ServerThread, bytes]) -> None:
    key = Remote(tls_server)(lambda f: f.fetch_key(f"{R}/users/carol/main-key"))
    assert (key.key_id, key.owner, key.pem) == (
        f"{R}/users/carol/main-key",
        f"{R}/users/carol",
        REMOTE_PEM,
    )


def test_stub_claiming_an_actor_on_another_origin_is_refused(
    tls_server: tuple[ServerThread, bytes],
) -> None:
    with pytest.raises(FetchError, match="does not match its URL"):
        Remote(tls_server)(lambda f: f.fetch_key(f"{R}/users/dave/main-key"))


def test_bad_pem_is_refused(tls_server: tuple[ServerThread, bytes]) -> None:
    with pytest.raises(FetchError, match="not a PEM public key"):
        Remote(tls_server)(lambda f: f.fetch_key(f"{R}/users/badpem#main-key"))


def test_keys_over_the_opt_in_path(plain_server: ServerThread) -> None:
    b = f"http://127.0.0.1:{plain_server.port}"
    assert local(lambda f: f.fetch_key(f"{b}/users/alice#main-key")).owner == f"{b}/users/alice"
    assert local(lambda f: f.fetch_key(f"{b}/keys/bob")).owner == f"{b}/users/bob"
    assert local(lambda f: f.fetch_key(f"{b}/users/carol/main-key")).pem == REMOTE_PEM


# --- WebFinger ----------------------------------------------------------------------------------


def test_webfinger_over_tls(tls_server: tuple[ServerThread, bytes]) -> None:
    jrd = Remote(tls_server)(lambda f: f.webfinger("@alice@remote.example"))
    assert jrd["subject"] == "acct:alice@remote.example"
    assert actor_url_from_jrd(jrd) == f"{R}/users/alice"


def test_webfinger_then_actor_over_the_opt_in_path(plain_server: ServerThread) -> None:
    host = f"127.0.0.1:{plain_server.port}"

    async def follow(fetcher: RemoteFetcher) -> str | None:
        jrd = await fetcher.webfinger(f"acct:alice@{host}")
        url = actor_url_from_jrd(jrd)
        assert url is not None
        return (await fetcher.fetch_actor(url)).handle

    assert local(follow) == f"alice@{host}"


def test_webfinger_unknown_user(tls_server: tuple[ServerThread, bytes]) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        Remote(tls_server)(lambda f: f.webfinger("bob@remote.example"))


@pytest.mark.parametrize(
    "acct", ["alice", "@remote.example", "alice@", "a@b/c", "a@evil.example?x"]
)
def test_webfinger_refuses_malformed_handles(acct: str) -> None:
    with pytest.raises(UnsafeURLError):
        run_sync(lambda f: f.webfinger(acct), policy=FetchPolicy(), user_agent=UA)


def test_webfinger_uses_https_unless_opted_in_for_loopback(plain_server: ServerThread) -> None:
    # Without the opt-in a loopback handle is refused rather than fetched over http.
    with pytest.raises(UnsafeURLError):
        run_sync(
            lambda f: f.webfinger(f"alice@127.0.0.1:{plain_server.port}"),
            policy=FetchPolicy(),
            user_agent=UA,
        )


# --- pure helpers -------------------------------------------------------------------------------


def test_content_type_rules() -> None:
    assert is_activitypub_content_type("application/activity+json; charset=utf-8")
    assert is_activitypub_content_type(
        'Application/LD+JSON; profile="https://www.w3.org/ns/activitystreams"'
    )
    assert is_activitypub_content_type(
        'application/ld+json; profile="https://example.org/p https://www.w3.org/ns/activitystreams"'
    )
    assert not is_activitypub_content_type("application/ld+json")
    assert not is_activitypub_content_type("application/json")
    assert not is_activitypub_content_type("")
    assert is_jrd_content_type("application/jrd+json")
    assert is_jrd_content_type("application/json; charset=utf-8")
    assert not is_jrd_content_type("text/html")


def test_parse_actor_requires_actor_type_and_inbox() -> None:
    good = {"id": "https://r.example/u", "type": "Service", "inbox": "https://r.example/i"}
    actor = parse_actor(good, where="x")
    assert (actor.type, actor.handle, actor.public_key) == ("Service", None, None)
    with pytest.raises(FetchError, match="not an actor"):
        parse_actor({**good, "type": "Note"}, where="x")
    with pytest.raises(FetchError, match="no inbox"):
        parse_actor({**good, "inbox": None}, where="x")
    with pytest.raises(FetchError, match="no id"):
        parse_actor({**good, "id": 5}, where="x")
    with pytest.raises(FetchError, match="not a URL"):
        parse_actor({**good, "id": "https://exa\x00mple/", "preferredUsername": "a"}, where="x")


def test_user_agent() -> None:
    assert user_agent("https://blog.example/") == "fedipress/0.1.0 (+https://blog.example/)"


def test_fetcher_works_with_an_injected_mock_transport() -> None:
    # Other modules' unit tests inject httpx.MockTransport; the policy checks still apply.
    def handler(request: httpx.Request) -> httpx.Response:
        doc = {"id": str(request.url), "type": "Person", "inbox": "https://m.example/inbox"}
        return httpx.Response(200, json=doc, headers={"content-type": AP})

    async def main() -> None:
        transport = httpx.MockTransport(handler)
        policy = FetchPolicy()
        async with RemoteFetcher(policy=policy, user_agent=UA, transport=transport) as fetcher:
            assert (await fetcher.fetch_actor("https://m.example/u")).inbox.endswith("/inbox")
            with pytest.raises(UnsafeURLError):
                await fetcher.fetch_actor("https://10.0.0.1/u")

    asyncio.run(main())
