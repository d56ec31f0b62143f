"""Fixtures only the federation tests use: the inbox tests' remote actors on a loopback server,
and a blog environment (real SQLite store, the inbox app) receiving from them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.inbox import Env, Remote, actor_doc


@pytest.fixture(scope="module")
def remote_server() -> Iterator[Remote]:
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
def env(tmp_path: Path, remote: Remote) -> Iterator[Env]:
    e = Env(tmp_path, remote)
    yield e
    e.store.close()
