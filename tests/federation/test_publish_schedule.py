"""Scheduled and back-dated posts, through real builds at chosen times, the manifest each
build writes and publish's plan against a real SQLite store (queued at the same times):

- a future-dated post is absent from the manifest until a build runs after its date, and the
  first publish after that announces it, however late that run is;
- a back-dated post (new, dated more than a week ago and before the last publish) is recorded
  without an announcement, unless --backfill asks for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.config import load_config
from fedipress.federation.mentions import canonical_manifest
from fedipress.federation.publish import Plan, load_manifest, plan_changes, queue_plan
from fedipress.generator.build import build_site
from fedipress.model import Site
from fedipress.store import SQLiteStore, open_store
from support.scheduled import make_dated_blog


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CI", raising=False)  # a CI build makes no key pair, so no federation
    root = make_dated_blog(tmp_path / "blog")
    post(root, "steady", "2026-04-20T08:00:00Z")
    return root


def post(root: Path, slug: str, date: str) -> None:
    path = root / "content" / "posts" / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: {slug}\ndate: {date}\n---\nBody of {slug}.\n",
                    encoding="utf-8")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def object_id(slug: str, month: str) -> str:
    return f"https://blog.example/2026/{month}/{slug}/object.json"


class Publisher:
    """A build at `now`, then publish's plan at the same `now`, queued as publish would."""

    def __init__(self, root: Path, store: SQLiteStore) -> None:
        self.config = load_config(root / "site.yaml")
        self.store = store
        self.last: Plan | None = None

    def build(self, now: datetime) -> set[str]:
        build_site(self.config, now=now, log=lambda _line: None)
        return set(load_manifest(self.config)["objects"])

    def plan(self, now: datetime, backfill: int = 0) -> list[tuple[str, str, str]]:
        plan = plan_changes(self.store.get_ledger(),
                            canonical_manifest(load_manifest(self.config)),
                            site=Site(config=self.config, posts=(), pages=()),
                            now=now, backfill=backfill)
        self.last = plan
        return [(c.action, c.object_id, c.reason) for c in plan.changes
                if not c.object_id.endswith("#profile")]

    def queue(self, now: datetime) -> None:
        assert self.last is not None
        queue_plan(self.store, self.last, now)


def test_a_scheduled_post_is_announced_by_the_first_publish_after_its_date(
        blog: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "state.db")
    try:
        p = Publisher(blog, store)
        p.build(at("2026-05-01T00:00"))
        p.plan(at("2026-05-01T00:00"))
        p.queue(at("2026-05-01T00:00"))  # the first publish: the baseline
        post(blog, "scheduled", "2026-05-03T09:00:00Z")
        scheduled = object_id("scheduled", "05")

        # A run before its date: not in the build, so nothing to announce (and no Delete).
        assert scheduled not in p.build(at("2026-05-02T00:00"))
        assert p.plan(at("2026-05-02T00:00")) == []

        # The first run after its date announces it, once.
        assert scheduled in p.build(at("2026-05-03T10:00"))
        assert p.plan(at("2026-05-03T10:00")) == [("Create", scheduled, "new")]
        p.queue(at("2026-05-03T10:00"))
        assert p.plan(at("2026-05-03T11:00")) == []

        # A scheduled run that missed a fortnight still announces a post that came due in
        # between (dated after the last publish: it was never out), while a post added now
        # but dated before the last publish is an import, recorded without an announcement.
        post(blog, "late", "2026-05-04T09:00:00Z")
        post(blog, "imported", "2026-04-01T09:00:00Z")
        late, imported = object_id("late", "05"), object_id("imported", "04")
        assert {late, imported} <= p.build(at("2026-05-20T00:00"))
        back_dated = ("back-dated (dated more than a week ago, before the last publish):"
                      " recorded as already announced; --backfill N announces it")
        assert p.plan(at("2026-05-20T00:00")) == [
            ("record", imported, back_dated), ("Create", late, "new")]
        # --backfill N asks for the newest N back-dated posts.
        assert p.plan(at("2026-05-20T00:00"), backfill=1) == [
            ("Create", imported, "back-dated, announced for --backfill"),
            ("Create", late, "new")]
        assert p.last is not None and p.last.notes == ()
        assert p.plan(at("2026-05-20T00:00"), backfill=3)[0][0] == "Create"
        assert p.last is not None
        assert p.last.notes == ("--backfill 3: 1 new back-dated post to announce",)
        p.plan(at("2026-05-20T00:00"))
        p.queue(at("2026-05-20T00:00"))
        # Recorded means recorded: a later --backfill does not dig it up again.
        assert p.plan(at("2026-05-21T00:00"), backfill=5) == []
    finally:
        store.close()


def test_a_recent_post_is_news_whatever_its_date_against_the_last_publish(
        blog: Path, tmp_path: Path) -> None:
    """Within a week of its date a new post is announced, even dated before the last
    publish (written yesterday, published today after another publish ran)."""
    store = open_store(tmp_path / "state.db")
    try:
        p = Publisher(blog, store)
        p.build(at("2026-05-10T00:00"))
        p.plan(at("2026-05-10T00:00"))
        p.queue(at("2026-05-10T00:00"))
        post(blog, "yesterday", "2026-05-09T12:00:00Z")
        p.build(at("2026-05-10T12:00"))
        assert p.plan(at("2026-05-10T12:00")) == [
            ("Create", object_id("yesterday", "05"), "new")]
    finally:
        store.close()
