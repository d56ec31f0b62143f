"""`fedipress store migrate` and `fedipress store copy --to postgresql://…` on a real SQLite
store and a real PostgreSQL server; then the other commands read the copy through
FEDIPRESS_DATABASE_URL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from fedipress.cli import main
from fedipress.store import (
    CachedActor,
    CachedKey,
    Follower,
    Interaction,
    LedgerEntry,
    PlannedActivity,
    ResolvedMention,
    open_store,
)
from support.delivery import Blog, make_blog
from support.postgres import PostgresCluster

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Blog:
    monkeypatch.delenv("FEDIPRESS_DATABASE_URL", raising=False)
    return make_blog(tmp_path / "site")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _fill(path: Path) -> None:
    """A little of everything the store keeps, with a delivery half done and one failed."""
    store = open_store(path)
    try:
        store.upsert_followers(
            Follower(f"https://h{i % 7}.example/users/u{i}", f"https://h{i % 7}.example/u{i}/in",
                     f"https://h{i % 7}.example/inbox", f"u{i}@h{i % 7}.example", None, NOW)
            for i in range(120))
        store.upsert_follower(Follower("https://p.example/users/asks", "https://p.example/in",
                                       None, None, None, NOW, state="pending"), b'{"Follow":1}')
        store.plan_publication(
            [PlannedActivity("https://blog.example/a/1", "https://blog.example/p/1", "Create",
                             b'{"bytes": "\x00\xff kept"}')],
            store.iter_delivery_inboxes(), [LedgerEntry(
                "https://blog.example/p/1", "h1", NOW, NOW, "live", "https://blog.example/a/1")],
            NOW)
        [first, second, *_] = store.claim_due("w", NOW, 3, timedelta(minutes=5))
        store.mark_delivered(first.id, "w", NOW)
        store.mark_failed(second.id, "w", "410 Gone", 410)
        store.seen_activity("https://r.example/a/9", NOW)
        store.log_inbox("https://r.example/a/9", "https://r.example/u", b"{}", NOW)
        store.add_interaction(Interaction(
            "https://r.example/a/9", "reply", "https://r.example/u", "https://blog.example/p/1",
            NOW, NOW, content_html="<p>100% yes</p>", reply_object_id="https://r.example/n/9"))
        store.put_key(CachedKey("https://r.example/u#k", "https://r.example/u", "PEM", NOW))
        store.put_actor(CachedActor("https://r.example/u", "Person", "https://r.example/in",
                                    None, "u", "u@r.example", "U", None, None, (), NOW))
        store.put_mention(ResolvedMention("u@r.example", "https://r.example/u",
                                          "https://r.example/in", None, None, NOW))
        store.add_block("spam.example", NOW)
    finally:
        store.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO quote_authorizations (authorization_id, quoted_object_id,"
                 " quoting_object_id, actor_id, body, created_at, revoked_at)"
                 " VALUES ('https://blog.example/qa/1',"
                 " 'https://blog.example/p/1', 'https://r.example/n/10', 'https://r.example/u',"
                 " X'7b7d', '2026-05-01T10:00:00.000000Z', NULL)")
    conn.commit()
    conn.close()


def _dump(location: str | Path) -> dict[str, object]:
    store = open_store(location)
    try:
        return {
            "followers": list(store.iter_followers(None)),
            "requests": store.list_follow_requests(),
            "ledger": store.get_ledger(),
            "deliveries": store.list_deliveries(limit=1000),
            "activity": store.get_activity("https://blog.example/a/1"),
            "interactions": store.recent_interactions(),
            "key": store.get_key("https://r.example/u#k"),
            "actor": store.get_actor("https://r.example/u"),
            "mentions": store.list_mentions(),
            "blocks": store.list_blocks(),
            "inbox": store.unprocessed_inbox(),
        }
    finally:
        store.close()


def test_copy_moves_everything_and_verifies_counts(
    blog: Blog, postgres: PostgresCluster, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = Path(blog.root) / ".fedipress" / "state.db"
    _fill(state)
    url = postgres.create_database()  # empty: copy migrates it first
    code, out, err = run(capsys, "store", "copy", "--config", blog.config, "--to", url)
    assert code == 0, err
    assert "  followers: 121\n" in out and "  deliveries: 7\n" in out
    assert "  quote_authorizations: 1\n" in out
    assert "every table's count checked on both sides" in out
    assert _dump(url) == _dump(state)

    # New rows continue after the copied ids (the identity sequences were moved on).
    store = open_store(url)
    try:
        assert store.log_inbox(None, None, b"{}", NOW) > 1
        with psycopg.connect(url) as conn:
            [(body,)] = conn.execute("SELECT body FROM quote_authorizations").fetchall()
            assert bytes(body) == b"{}"
    finally:
        store.close()

    # A second copy is refused: the target holds rows...
    code, _, err = run(capsys, "store", "copy", "--config", blog.config, "--to", url)
    assert code == 2 and "already holds rows (" in err and "--force" in err
    # ...unless --force, which replaces them.
    code, out, err = run(capsys, "store", "copy", "--config", blog.config, "--to", url, "--force")
    assert code == 0, err
    assert "replaced what it held with" in out
    assert _dump(url) == _dump(state)

    # Every command then works on the copy, e.g. followers and deliveries.
    monkeypatch.setenv("FEDIPRESS_DATABASE_URL", url)
    code, out, err = run(capsys, "followers", "--config", blog.config)
    assert code == 0, err
    assert "120" in out


def test_migrate_both_engines(
    blog: Blog, postgres: PostgresCluster, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run(capsys, "store", "migrate", "--config", blog.config)
    assert code == 2 and "no state database here yet" in err
    open_store(Path(blog.root) / ".fedipress" / "state.db").close()
    code, out, _ = run(capsys, "store", "migrate", "--config", blog.config)
    assert code == 0 and "up to date (0008_webhook_claims)" in out

    url = postgres.create_database()
    monkeypatch.setenv("FEDIPRESS_DATABASE_URL", url)
    code, _, err = run(capsys, "followers", "--config", blog.config)
    assert code == 2 and "run `fedipress store migrate`" in err
    code, out, err = run(capsys, "store", "migrate", "--config", blog.config)
    assert code == 0, err
    assert f"{url}: applied 0001_initial" in out
    assert f"{url}: now at 0008_webhook_claims" in out
    code, out, _ = run(capsys, "store", "migrate", "--config", blog.config)
    assert code == 0 and "up to date" in out
    code, _, err = run(capsys, "followers", "--config", blog.config)
    assert code == 0, err


def test_copy_refuses_a_url_that_is_not_postgresql(
    blog: Blog, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "store", "copy", "--config", blog.config, "--to", "/tmp/x.db")
    assert code == 2 and "expected a postgresql:// URL" in err


def test_migrate_an_older_sqlite_store_and_refuse_a_newer_one(
    blog: Blog, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedipress.store import MIGRATIONS
    from fedipress.store.migrations import apply_migrations

    path = Path(blog.root) / ".fedipress" / "state.db"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, path, [m for m in MIGRATIONS if m.name < "0006"])
    conn.close()
    code, out, err = run(capsys, "store", "migrate", "--config", blog.config)
    assert code == 0, err
    assert f"{path}: applied 0007_scaling" in out

    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO migrations VALUES ('9999_future', 'x')")
    conn.commit()
    conn.close()
    code, _, err = run(capsys, "store", "migrate", "--config", blog.config)
    assert code == 2 and "created by a newer fedipress (unknown migrations: 9999_future)" in err
