"""Shared fixtures: committed test keys, fixture sites, and the repo root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from support.interop_peer import Peer, start_peer
from support.postgres import PostgresCluster, cluster_or_skip, migrated_template

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



@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on a loopback port for the whole run (skipped with the
    reason when PostgreSQL is not installed, failed instead under CI=true)."""
    cluster = cluster_or_skip()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresCluster) -> str:
    return migrated_template(postgres)


@pytest.fixture
def postgres_url(postgres: PostgresCluster, postgres_template: str) -> str:
    """A fresh, migrated database of the test cluster for one test."""
    return postgres.create_database(template=postgres_template)
