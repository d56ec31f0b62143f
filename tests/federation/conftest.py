"""Fixtures only the federation tests use: the inbox tests' remote actors on a loopback server,
and a blog environment (real SQLite store, or PostgreSQL when asked; the inbox app) receiving
from them; and, for the publish and leave tests, a blog made by `fedipress init` on its own
machine (`blog`) with a loopback follower inbox that verifies its signatures (`sink`). A module
that needs another kind of blog defines its own `blog`, which takes precedence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.e2e_helpers import Blog
from support.inbox import Env, Remote, actor_doc
from support.inbox_sink import InboxSink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def store_url(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL database a test parametrized with "postgresql" runs on, else None."""
    engine = getattr(request, "param", "sqlite")
    return str(request.getfixturevalue("postgres_url")) if engine == "postgresql" else None


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
def env(tmp_path: Path, remote: Remote, request: pytest.FixtureRequest) -> Iterator[Env]:
    """The blog on a SQLite store. A test marked
    `@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)` runs on each
    engine (PostgreSQL: a fresh database of the test cluster, named in site.yaml `store:`)."""
    e = Env(tmp_path, remote, store_url=store_url(request))
    yield e
    e.store.close()


@pytest.fixture
def blog(tmp_path: Path) -> Blog:
    made = Blog.create(tmp_path)
    made.env["CI"] = ""  # the blog's own machine, not a CI runner
    return made


@pytest.fixture
def sink() -> Iterator[InboxSink]:
    with InboxSink((FIXTURES / "keys" / "blog-public.pem").read_bytes()) as server:
        yield server
