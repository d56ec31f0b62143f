"""Shared fixtures: committed test keys, fixture sites, and the repo root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from support.inbox import Env, Remote, actor_doc
from support.interop_peer import Peer, start_peer

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def blog_private_pem() -> bytes:
    return (FIXTURES / "keys" / "blog-private.pem").read_bytes()


@pytest.fixture(scope="session")
def blog_public_pem() -> bytes:
    return (FIXTURES / "keys" / "blog-public.pem").read_bytes()


@pytest.fixture(scope="session")
def remote_private_pem() -> bytes:
    return (FIXTURES / "keys" / "remote-private.pem").read_bytes()


@pytest.fixture(scope="session")
def remote_public_pem() -> bytes:
    return (FIXTURES / "keys" / "remote-public.pem").read_bytes()


@pytest.fixture(scope="session")
def blog_key(blog_private_pem: bytes) -> rsa.RSAPrivateKey:
    key = load_pem_private_key(blog_private_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="session")
def blog_pub(blog_public_pem: bytes) -> rsa.RSAPublicKey:
    key = load_pem_public_key(blog_public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@pytest.fixture
def interop_peer(tmp_path: Path) -> Iterator[Peer]:
    """A running independent peer (@bob, Fedify) for one test; stopped after it."""
    with start_peer(tmp_path) as peer:
        yield peer


# the inbox tests' remote actors on a loopback server, and a blog environment receiving from them
@pytest.fixture(scope="module")
def remote_server() -> Any:
    with Remote() as server:
        yield server


@pytest.fixture
def remote(remote_server: Remote) -> Remote:
    remote_server.docs.clear()
    remote_server.gets.clear()
    remote_server.posts.clear()
    remote_server.docs["/users/alice"] = actor_doc(remote_server, "alice")
    return remote_server


@pytest.fixture
def env(tmp_path: Path, remote: Remote) -> Any:
    e = Env(tmp_path, remote)
    yield e
    e.store.close()
