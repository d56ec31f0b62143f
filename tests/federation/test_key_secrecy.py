"""The private key never lands in public/, in the federation manifest, in logs or in error
messages (issue 3, point 1): every command that touches the key runs as a real process, and
everything it wrote or printed is scanned for any fragment of the key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support.e2e_helpers import Blog, CommandResult, write_post
from support.inbox_sink import InboxSink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def key_fragments(private_pem: bytes) -> list[bytes]:
    """Pieces of the key that must appear nowhere: every full base64 line of its PEM body in
    two encodings (PKCS#8 as stored, PKCS#1 as a careless export would print), 32-byte windows
    of the raw DER in base64, the private exponent in decimal and hex, and the PEM marker."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    fragments: list[bytes] = [b"PRIVATE KEY"]
    formats = serialization.PrivateFormat
    for encoding in (formats.PKCS8, formats.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, encoding, serialization.NoEncryption())
        fragments += [line for line in pem.splitlines() if len(line) == 64]
        der = key.private_bytes(serialization.Encoding.DER, encoding,
                                serialization.NoEncryption())
        # Windows at three byte offsets, so any base64 alignment of a leaked copy is caught.
        for start in range(0, len(der) - 48, 48):
            for shift in range(3):
                fragments.append(base64.b64encode(der[start + shift:start + shift + 30]))
    numbers = key.private_numbers()
    fragments += [str(numbers.d).encode()[:60], f"{numbers.d:x}".encode()[:60]]
    return fragments


def assert_clean(what: str, data: bytes, fragments: list[bytes]) -> None:
    for fragment in fragments:
        assert fragment not in data, f"{what} contains a fragment of the private key"


@pytest.fixture
def sink(remote_public_pem: bytes, blog_public_pem: bytes) -> Iterator[InboxSink]:
    with InboxSink(blog_public_pem) as server:
        actor = server.url("/users/zoe")
        server.documents["/users/zoe"] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor, "type": "Person", "preferredUsername": "zoe",
            "inbox": actor + "/inbox", "endpoints": {"sharedInbox": server.url("/inbox")},
            "publicKey": {"id": actor + "#main-key", "owner": actor,
                          "publicKeyPem": remote_public_pem.decode()},
        }
        yield server


def test_the_fragments_catch_a_leak() -> None:
    # The scan itself must be able to fail: a PEM, a PKCS#1 export and a base64 blob of the DER
    # (as a debug print of the key object would give) are all caught.
    pem = (FIXTURES / "keys" / "blog-private.pem").read_bytes()
    fragments = key_fragments(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    leaks = [
        b"log line: " + pem,
        key.private_bytes(serialization.Encoding.PEM,
                          serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption()).replace(b"\n", b"\\n"),
        b"x" + base64.b64encode(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))[100:400],
    ]
    for leak in leaks:
        with pytest.raises(AssertionError, match="fragment of the private key"):
            assert_clean("a leak", leak, fragments)


@pytest.mark.parametrize("key_in_env", [False, True], ids=["key-file", "key-in-env"])
def test_private_key_never_leaves_the_state_folder(
        tmp_path: Path, sink: InboxSink, key_in_env: bool) -> None:
    blog = Blog.create(tmp_path, key_in_env=key_in_env)
    fragments = key_fragments((FIXTURES / "keys" / "blog-private.pem").read_bytes())
    printed: list[CommandResult] = []

    printed.append(blog.fedipress("keys", "show"))
    printed.append(blog.fedipress("followers", "--allow-private-addresses", "add",
                                  sink.url("/users/zoe")))
    printed.append(blog.fedipress("build"))
    printed.append(blog.fedipress("publish", "-v", "--allow-private-addresses", "--wait", "10"))
    write_post(blog.root, "secret-test.md", "A fresh post", "Hello, followers.", slug="fresh")
    printed.append(blog.fedipress("publish", "-v", "--allow-private-addresses", "--wait", "10"))
    printed.append(blog.fedipress("deliveries"))
    # The deliveries were really signed with the key (so it was loaded and used).
    assert sink.posts and all(post.verified_independent for post in sink.posts)

    # A key that does not match the published one is refused, and the refusal names no part
    # of either key.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    blog.env["FEDIPRESS_PRIVATE_KEY"] = other_pem
    refused = blog.fedipress("publish", "--allow-private-addresses", expect=2)
    assert "does not match" in refused.stderr
    assert_clean("the mismatch error", refused.stderr.encode(), key_fragments(other_pem.encode()))
    printed.append(refused)

    for result in printed:
        assert_clean(f"output of fedipress {' '.join(result.args)}",
                     (result.stdout + result.stderr).encode(), fragments)
    published = [path for path in (blog.root / "public").rglob("*") if path.is_file()]
    assert len(published) > 20
    for path in published:
        assert_clean(str(path.relative_to(blog.root)), path.read_bytes(), fragments)
    state_files = [blog.root / ".fedipress" / "manifest.json",
                   *(blog.root / ".fedipress" / "federation").glob("*.json")]
    assert len(state_files) > 1  # the manifest and its object files
    for path in state_files:
        assert_clean(str(path.relative_to(blog.root)), path.read_bytes(), fragments)
    # The activities and deliveries are stored with their bodies: none carries the key either.
    assert_clean("state.db", (blog.root / ".fedipress" / "state.db").read_bytes(), fragments)
    for post in sink.posts:
        assert_clean("a delivered request", post.body + repr(post.headers).encode(), fragments)
