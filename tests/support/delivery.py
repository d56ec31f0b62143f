"""A real blog folder (fixture key, SQLite store) publishing to loopback inboxes.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.store import Follower, SQLiteStore, open_store
from support.inbox_sink import InboxSink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BLOG = "https://blog.example/"
SITE_YAML = f"""title: Test Blog
base_url: {BLOG}
author:
  name: Tester
  handle: tester
fediverse:
  display_name: Tester
  bio: A test blog.
"""


@dataclass
class Blog:
    root: Path

    @property
    def config(self) -> str:
        return str(self.root / "site.yaml")

    def post(self, slug: str, text: str = "Hello.", *, age: timedelta = timedelta(hours=1)) -> Path:
        date = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        path = self.root / "content" / "posts" / f"{slug}.md"
        path.write_text(f"---\ntitle: {slug}\ndate: {date}\nslug: {slug}\n---\n{text}\n")
        return path

    def store(self) -> SQLiteStore:
        return open_store(self.root / ".fedipress" / "state.db")

    def follow(self, *followers: Follower) -> None:
        store = self.store()
        try:
            store.upsert_followers(followers)
        finally:
            store.close()


def make_blog(root: Path) -> Blog:
    (root / "content" / "posts").mkdir(parents=True)
    (root / "site.yaml").write_text(SITE_YAML)
    (root / "fedipress-public-key.pem").write_bytes(
        (FIXTURES / "keys" / "blog-public.pem").read_bytes())
    state = root / ".fedipress"
    state.mkdir(mode=0o700)
    key = state / "private-key.pem"
    key.write_bytes((FIXTURES / "keys" / "blog-private.pem").read_bytes())
    key.chmod(0o600)
    return Blog(root)


def person(sink: InboxSink, name: str, shared: str | None = None) -> Follower:
    return Follower(actor_id=sink.url(f"/users/{name}"), inbox=sink.url(f"/users/{name}/inbox"),
                    shared_inbox=shared, handle=f"{name}@127.0.0.1", name=name,
                    followed_at=datetime.now(UTC))


def publish(blog: Blog, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["publish", "--config", blog.config, "--allow-private-addresses", *args])
    out, err = capsys.readouterr()
    return code, out, err
