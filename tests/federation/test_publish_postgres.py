"""`fedipress publish` with FEDIPRESS_DATABASE_URL: the plan, the ledger and the queue live in
PostgreSQL (no state.db appears), and each follower gets the Create exactly once; `--dry-run`
plans against a SQLite copy of the PostgreSQL store and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fedipress.store import open_store
from support.delivery import Blog, make_blog, person, publish
from support.inbox_sink import InboxSink


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> Blog:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("FEDIPRESS_DATABASE_URL", postgres_url)
    return make_blog(tmp_path / "site")


@pytest.fixture
def sink(blog_public_pem: bytes) -> Iterator[InboxSink]:
    with InboxSink(blog_public_pem) as server:
        yield server


def test_publish_plans_and_delivers_through_postgresql(
    blog: Blog, sink: InboxSink, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blog.post("old", age=timedelta(days=30))  # older than a week: the baseline records it
    store = open_store(postgres_url)
    try:
        store.upsert_followers([person(sink, "bob"), person(sink, "carol")])
    finally:
        store.close()
    code, out, err = publish(blog, capsys)
    assert code == 0, err
    assert sink.posts == []  # the store has followers: the first publish is the baseline

    blog.post("new", "Brand new.")
    code, out, err = publish(blog, capsys)
    assert code == 0, err
    assert "sent 2, retrying 0, failed 0" in out
    assert sorted(p.path for p in sink.posts) == ["/users/bob/inbox", "/users/carol/inbox"]
    assert {json.loads(p.body)["type"] for p in sink.posts} == {"Create"}
    code, out, err = publish(blog, capsys)  # nothing new: nothing sent again
    assert code == 0, err
    assert len(sink.posts) == 2

    assert not (blog.root / ".fedipress" / "state.db").exists()
    store = open_store(postgres_url)
    try:
        assert store.delivery_counts()["delivered"] == 2
        assert any(oid.endswith("posts/new/object.json") for oid in store.get_ledger())
    finally:
        store.close()


def test_dry_run_plans_against_a_copy_of_the_postgresql_store(
    blog: Blog, sink: InboxSink, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blog.post("old", age=timedelta(days=30))  # older than a week: the baseline records it
    store = open_store(postgres_url)
    try:
        store.upsert_followers([person(sink, "bob")])
    finally:
        store.close()
    assert publish(blog, capsys)[0] == 0  # the baseline
    blog.post("new", "Brand new.")
    code, out, err = publish(blog, capsys, "--dry-run")
    assert code == 0, err
    assert "1 activity to 1 inbox" in out and sink.url("/users/bob/inbox") in out
    assert "dry run: nothing stored or sent" in out
    assert sink.posts == []
    store = open_store(postgres_url)
    try:  # nothing reached the real store
        assert not any(oid.endswith("posts/new/object.json") for oid in store.get_ledger())
        assert sum(store.delivery_counts().values()) == 0
    finally:
        store.close()
    assert not (blog.root / ".fedipress" / "state.db").exists()
