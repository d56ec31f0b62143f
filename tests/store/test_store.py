"""The store's contract on both engines (`store`: a SQLite file and a PostgreSQL database) and
what is SQLite's own (`sqlite_store`): migrations, followers, planning, the queue, inbox side."""

from __future__ import annotations

import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.errors import StoreError
from fedipress.store import (
    MIGRATIONS,
    CachedKey,
    Follower,
    Interaction,
    InteractionCounts,
    LedgerEntry,
    PlannedActivity,
    SQLiteStore,
    Store,
    StoreParts,
    default_store_path,
    open_store,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


def follower(n: int, host: str = "a.example", *, shared: bool = True, **kw: object) -> Follower:
    actor = f"https://{host}/users/u{n:06d}"
    return Follower(
        actor_id=actor,
        inbox=f"{actor}/inbox",
        shared_inbox=f"https://{host}/inbox" if shared else None,
        handle=f"u{n}@{host}",
        name=f"User {n}",
        followed_at=NOW,
        **kw,  # type: ignore[arg-type]
    )


def activity(n: int, kind: str = "Create") -> PlannedActivity:
    return PlannedActivity(
        activity_id=f"https://blog.example/activities/{n}",
        object_id=f"https://blog.example/posts/{n}/",
        kind=kind,
        body=f'{{"id": "https://blog.example/activities/{n}"}}'.encode(),
    )


def ledger(n: int, state: str = "live") -> LedgerEntry:
    return LedgerEntry(
        object_id=f"https://blog.example/posts/{n}/",
        content_hash=f"hash{n}",
        announced_at=NOW,
        published_at=NOW - timedelta(days=1),
        state=state,  # type: ignore[arg-type]
        last_activity_id=f"https://blog.example/activities/{n}",
    )


def inboxes(n: int) -> list[str]:
    return [f"https://h{i}.example/inbox" for i in range(n)]


def count(store: StoreParts, table: str) -> int:
    """Rows in `table`, through the store's own connection (either engine)."""
    row = store._one(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row else 0


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# --- opening, pragmas, migrations --------------------------------------------------------------


def test_open_creates_private_dir_and_file_in_wal_mode(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        assert db_path.parent.stat().st_mode & 0o777 == 0o700
        assert db_path.stat().st_mode & 0o777 == 0o600
        assert store.journal_mode() == "wal"
        assert store.integrity_check() == "ok"
        conn = store._reader()
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        store.close()
    # WAL is a property of the file: a plain connection sees it too.
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_store_satisfies_protocol(store: StoreParts) -> None:
    typed: Store = store  # mypy checks the structural match
    assert typed.count_followers() == 0


def test_default_path(tmp_path: Path) -> None:
    assert default_store_path(tmp_path / ".fedipress") == tmp_path / ".fedipress" / "state.db"


def test_tables_are_strict(sqlite_store: SQLiteStore, db_path: Path) -> None:
    rows = raw(db_path, "SELECT name, strict FROM pragma_table_list WHERE schema = 'main'")
    tables = {str(name): strict for name, strict in rows if not str(name).startswith("sqlite_")}
    assert set(tables) >= {"followers", "ledger", "activities", "deliveries", "interactions"}
    assert all(strict == 1 for strict in tables.values()), tables


def test_migrations_recorded_once_and_reopen_is_idempotent(db_path: Path) -> None:
    open_store(db_path).close()
    open_store(db_path).close()
    names = [r[0] for r in raw(db_path, "SELECT name FROM migrations ORDER BY rowid")]
    assert names == [m.name for m in MIGRATIONS]
    applied_at = raw(db_path, "SELECT applied_at FROM migrations")[0][0]
    assert isinstance(applied_at, str) and applied_at.endswith("Z")


def test_newer_database_is_refused(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO migrations VALUES ('9999_from_the_future', '2030-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer fedipress.*9999_from_the_future"):
        open_store(db_path)


def test_not_a_database_is_a_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match=str(db_path)):
        open_store(db_path)


def test_naive_datetime_is_rejected(store: StoreParts) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.seen_activity("https://x.example/a", datetime(2024, 1, 1))


# --- followers ---------------------------------------------------------------------------------


def test_follower_upsert_dedupes_and_keeps_first_followed_at(store: StoreParts) -> None:
    f = follower(1)
    assert store.upsert_follower(f) is True
    later = Follower(f.actor_id, f.inbox, "https://a.example/new-shared", None, None, NOW + LEASE)
    assert store.upsert_follower(later) is False
    assert store.count_followers() == 1
    got = store.get_follower(f.actor_id)
    assert got is not None
    assert got.shared_inbox == "https://a.example/new-shared"
    assert got.handle == f.handle and got.name == f.name  # not erased by a sparser update
    assert got.followed_at == NOW
    assert store.remove_follower(f.actor_id) is True
    assert store.remove_follower(f.actor_id) is False
    assert store.get_follower(f.actor_id) is None


def test_followers_by_host_and_delivery_inboxes(store: StoreParts) -> None:
    store.upsert_followers(follower(i, "a.example") for i in range(5))
    store.upsert_followers(follower(i, "b.example", shared=False) for i in range(2))
    store.upsert_follower(follower(99, "c.example", state="pending"))
    assert store.followers_by_host() == [("a.example", 5), ("b.example", 2)]
    assert list(store.iter_delivery_inboxes(batch=2)) == [
        "https://a.example/inbox",
        "https://b.example/users/u000000/inbox",
        "https://b.example/users/u000001/inbox",
    ]
    assert store.count_followers("pending") == 1
    assert store.count_followers(None) == 8


def test_iter_followers_streams_in_batches(store: StoreParts) -> None:
    store.upsert_followers(follower(i) for i in range(25))
    got = [f.actor_id for f in store.iter_followers(batch=7)]
    assert got == sorted(follower(i).actor_id for i in range(25))


@pytest.mark.slow
def test_iter_followers_100k_memory_stays_flat(store: StoreParts) -> None:
    store.upsert_followers(follower(i, f"h{i % 300}.example") for i in range(100_000))
    assert store.count_followers() == 100_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in store.iter_followers(batch=1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    # One batch of 1000 followers is ~1-2 MB of Python objects; all 100k would be >100 MB.
    assert peak < 8 * 1024 * 1024, peak


def test_move_and_remove_actor(store: StoreParts) -> None:
    old, new = follower(1), follower(2, "b.example")
    store.upsert_follower(old)
    assert store.move_follower(old.actor_id, new) is True
    assert store.get_follower(old.actor_id) is None
    assert store.get_follower(new.actor_id) is not None
    assert store.move_follower("https://nobody.example/u", follower(3)) is False
    assert store.get_follower(follower(3).actor_id) is None

    store.add_interaction(like(new.actor_id, 1))
    store.put_key(CachedKey(f"{new.actor_id}#main-key", new.actor_id, "PEM", NOW))
    assert store.remove_actor(new.actor_id) == (1, 1)
    assert store.get_follower(new.actor_id) is None
    assert store.interactions_for_object("https://blog.example/posts/1/") == []
    assert store.get_key(f"{new.actor_id}#main-key") is None


def test_follow_requests_approve_and_reject(store: StoreParts) -> None:
    a, b = follower(1, state="pending"), follower(2, state="pending")
    store.upsert_follower(a, b'{"type": "Follow", "n": 1}')
    store.upsert_follower(b, b'{"type": "Follow", "n": 2}')
    requests = store.list_follow_requests()
    assert [r.follower.actor_id for r in requests] == [a.actor_id, b.actor_id]
    assert requests[0].follow_activity == b'{"type": "Follow", "n": 1}'
    assert store.count_followers() == 0  # pending followers get no posts

    with store.transaction():
        approved = store.approve_follow_request(a.actor_id)
        assert approved is not None and approved.state == "accepted"
        store.plan_deliveries(activity(100, "Accept"), [approved.inbox], NOW)
    assert store.approve_follow_request(a.actor_id) is None  # already accepted
    assert store.pending_for_activity(activity(100).activity_id) == 1

    rejected = store.reject_follow_request(b.actor_id)
    assert rejected is not None and rejected.follow_activity == b'{"type": "Follow", "n": 2}'
    assert store.get_follower(b.actor_id) is None
    assert store.reject_follow_request(a.actor_id) is None  # accepted, not a request
    assert store.count_followers() == 1


# --- ledger and planning -----------------------------------------------------------------------


def test_plan_publication_stores_everything(store: StoreParts) -> None:
    result = store.plan_publication(
        [activity(1), activity(2)], iter(inboxes(3) + inboxes(2)), [ledger(1), ledger(2)], NOW
    )
    assert result.new_activities == (activity(1).activity_id, activity(2).activity_id)
    assert result.deliveries == 6  # duplicate inboxes collapse to one row each
    assert store.delivery_counts()["pending"] == 6
    assert store.get_ledger()[ledger(1).object_id] == ledger(1)
    assert store.get_activity(activity(1).activity_id) == activity(1)
    # Rows interleave per inbox in the order given: inbox h0 gets activity 1 before 2.
    first_two = store.list_deliveries(["pending"], limit=2)
    assert [d.activity_id for d in first_two] == [activity(1).activity_id, activity(2).activity_id]
    assert {d.inbox for d in first_two} == {"https://h0.example/inbox"}


def test_replanning_is_a_no_op(store: StoreParts) -> None:
    store.plan_publication([activity(1)], inboxes(4), [ledger(1)], NOW)
    changed = PlannedActivity(activity(1).activity_id, activity(1).object_id, "Create", b"{}")
    again = store.plan_publication([changed], inboxes(10), [], NOW + LEASE)
    assert again.new_activities == ()
    assert again.existing_activities == (activity(1).activity_id,)
    assert again.changed_bodies == (activity(1).activity_id,)
    assert again.deliveries == 0
    assert count(store, "activities") == 1
    assert count(store, "deliveries") == 4
    assert store.get_activity(activity(1).activity_id) == activity(1)  # stored bytes win


def test_plan_is_atomic_when_recipients_fail(store: StoreParts) -> None:
    def exploding() -> Iterator[str]:
        yield from inboxes(1200)  # past one chunk, so some rows were already inserted
        raise RuntimeError("follower source broke")

    with pytest.raises(RuntimeError, match="follower source broke"):
        store.plan_publication([activity(1)], exploding(), [ledger(1)], NOW)
    for table in ("activities", "deliveries", "ledger"):
        assert count(store, table) == 0, table
    # ...and the store is still usable afterwards.
    assert store.plan_publication([activity(1)], inboxes(2), [ledger(1)], NOW).deliveries == 2


def test_plan_with_recipients_streamed_from_the_store_itself(store: StoreParts) -> None:
    store.upsert_followers(follower(i, f"h{i}.example") for i in range(1500))
    result = store.plan_publication(
        [activity(1)], store.iter_delivery_inboxes(batch=400), [ledger(1)], NOW
    )
    assert result.deliveries == 1500


def test_transaction_rolls_back_every_step(store: StoreParts) -> None:
    with pytest.raises(KeyError), store.transaction():
        store.upsert_follower(follower(1))
        store.plan_deliveries(activity(1, "Accept"), [follower(1).inbox], NOW)
        raise KeyError("boom")
    assert store.get_follower(follower(1).actor_id) is None
    assert store.get_activity(activity(1).activity_id) is None


def test_record_follow_and_plan_accept(store: StoreParts) -> None:
    f = follower(1)
    result = store.record_follow_and_plan_accept(f, activity(7, "Accept"), f.inbox, NOW)
    assert result.deliveries == 1
    assert store.get_follower(f.actor_id) is not None
    [claimed] = store.claim_due("w", NOW, 10, LEASE)
    assert claimed.inbox == f.inbox and claimed.kind == "Accept"


# --- delivery queue ----------------------------------------------------------------------------


def test_claim_lease_and_outcomes(store: StoreParts) -> None:
    store.plan_publication([activity(1)], inboxes(5), [], NOW)
    assert store.claim_due("w1", NOW - timedelta(seconds=1), 10, LEASE) == []  # not due yet
    claimed = store.claim_due("w1", NOW, 3, LEASE)
    assert len(claimed) == 3
    assert all(c.delivery.state == "in_flight" and c.delivery.attempts == 1 for c in claimed)
    assert all(c.delivery.lease_expires_at == NOW + LEASE for c in claimed)
    assert claimed[0].body == activity(1).body
    rest = store.claim_due("w2", NOW, 10, LEASE)
    assert len(rest) == 2 and not {c.id for c in rest} & {c.id for c in claimed}
    assert store.claim_due("w3", NOW, 10, LEASE) == []

    a, b, c = claimed
    assert store.mark_delivered(a.id, "w2", NOW) is False  # not w2's lease
    assert store.mark_delivered(a.id, "w1", NOW) is True
    assert store.mark_delivered(a.id, "w1", NOW) is False  # already finished
    retry_at = NOW + timedelta(minutes=10)
    assert store.mark_retry(b.id, "w1", retry_at, "HTTP 503", 503) is True
    assert store.mark_failed(c.id, "w1", "HTTP 410", 410) is True
    counts = store.delivery_counts()
    assert counts == {"pending": 1, "in_flight": 2, "delivered": 1, "failed": 1, "expired": 0}
    assert store.next_due_at() == NOW + LEASE  # w2's leases expire before the retry is due
    [failed] = store.list_deliveries(["failed"])
    assert (failed.last_status, failed.last_error, failed.lease_owner) == (410, "HTTP 410", None)

    for r in rest:
        assert store.mark_delivered(r.id, "w2", NOW)
    [retried] = store.claim_due("w1", retry_at, 10, timedelta(hours=1))
    assert retried.id == b.id and retried.delivery.attempts == 2
    assert retried.delivery.last_error == "HTTP 503"
    assert store.mark_failed(retried.id, "w1", "gave up", None, expired=True)
    assert store.delivery_counts()["expired"] == 1
    assert store.requeue_failed(retry_at) == 2
    assert store.delivery_counts()["pending"] == 2
    assert all(d.attempts == 0 for d in store.list_deliveries(["pending"]))


def test_expired_lease_is_reclaimed_and_stale_owner_ignored(store: StoreParts) -> None:
    store.plan_publication([activity(1)], inboxes(1), [], NOW)
    [first] = store.claim_due("dead-worker", NOW, 10, LEASE)
    assert store.claim_due("w2", NOW + LEASE - timedelta(seconds=1), 10, LEASE) == []
    [again] = store.claim_due("w2", NOW + LEASE, 10, LEASE)
    assert again.id == first.id and again.delivery.attempts == 2
    assert again.delivery.lease_owner == "w2"
    # The dead worker wakes up late: every outcome it reports is refused.
    assert store.mark_delivered(first.id, "dead-worker", NOW + LEASE) is False
    assert store.mark_retry(first.id, "dead-worker", NOW, "x", 500) is False
    assert store.mark_failed(first.id, "dead-worker", "x", 404) is False
    assert store.release(first.id, "dead-worker") is False
    assert store.list_deliveries(["in_flight"])[0].lease_owner == "w2"
    assert store.mark_delivered(again.id, "w2", NOW + LEASE) is True


def test_release_returns_row_without_counting_attempt(store: StoreParts) -> None:
    store.plan_publication([activity(1)], inboxes(1), [], NOW)
    [c] = store.claim_due("w", NOW, 1, LEASE)
    assert store.release(c.id, "w") is True
    [d] = store.list_deliveries(["pending"])
    assert d.attempts == 0 and d.lease_owner is None


def test_per_host_limit(store: StoreParts) -> None:
    same_host = [f"https://big.example/users/{i}/inbox" for i in range(10)]
    store.plan_publication([activity(1)], same_host + inboxes(3), [], NOW)
    first = store.claim_due("w1", NOW, 100, LEASE, per_host_limit=2)
    assert sorted(c.delivery.host for c in first) == [
        "big.example",
        "big.example",
        "h0.example",
        "h1.example",
        "h2.example",
    ]
    # Leases held by w1 count against the cap for everyone.
    assert store.claim_due("w2", NOW, 100, LEASE, per_host_limit=2) == []
    big = [c for c in first if c.delivery.host == "big.example"]
    store.mark_delivered(big[0].id, "w1", NOW)
    [next_one] = store.claim_due("w2", NOW, 100, LEASE, per_host_limit=2)
    assert next_one.delivery.host == "big.example"


def test_claim_order_is_oldest_due_first(store: StoreParts) -> None:
    store.plan_publication([activity(1)], inboxes(3), [], NOW)
    [c0, c1, c2] = store.claim_due("w", NOW, 10, LEASE)
    store.mark_retry(c0.id, "w", NOW + timedelta(minutes=3), "e", 500)
    store.mark_retry(c1.id, "w", NOW + timedelta(minutes=1), "e", 500)
    store.mark_retry(c2.id, "w", NOW + timedelta(minutes=2), "e", 500)
    later = store.claim_due("w", NOW + timedelta(hours=1), 10, LEASE)
    assert [c.id for c in later] == [c1.id, c2.id, c0.id]


def test_pending_for_activity_and_prune(store: StoreParts) -> None:
    store.plan_publication([activity(1), activity(2)], inboxes(3), [], NOW)
    claimed = store.claim_due("w", NOW, 3, LEASE)
    for c in claimed:
        store.mark_delivered(c.id, "w", NOW)
    assert store.pending_for_activity(activity(1).activity_id) == 1
    assert store.pending_for_activity(activity(2).activity_id) == 2
    assert store.prune_delivered(NOW) == 0
    assert store.prune_delivered(NOW + LEASE) == 3
    assert store.delivery_counts()["delivered"] == 0
    assert store.get_activity(activity(1).activity_id) is not None


@pytest.mark.slow
def test_queue_at_10k_rows_per_activity(store: StoreParts) -> None:
    many = [f"https://h{i}.example/inbox" for i in range(10_000)]
    assert store.plan_publication([activity(1)], many, [], NOW).deliveries == 10_000
    seen: set[int] = set()
    while batch := store.claim_due("w", NOW, 500, LEASE):
        for c in batch:
            assert store.mark_delivered(c.id, "w", NOW)
        seen.update(c.id for c in batch)
    assert len(seen) == 10_000
    assert store.pending_for_activity(activity(1).activity_id) == 0


def test_threads_writing_concurrently(store: StoreParts) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.upsert_follower(follower(n * 1000 + i))
                store.seen_activity(f"https://x.example/{n}/{i}", NOW)
                store.count_followers()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_followers() == 400


# --- inbox side --------------------------------------------------------------------------------


def test_seen_activity_dedupes(store: StoreParts) -> None:
    assert store.seen_activity("https://r.example/a/1", NOW) is True
    assert store.seen_activity("https://r.example/a/1", NOW) is False
    assert store.seen_activity("https://r.example/a/2", NOW) is True
    assert store.prune_seen(NOW + LEASE) == 2
    assert store.seen_activity("https://r.example/a/1", NOW) is True


def test_inbox_log(store: StoreParts) -> None:
    first = store.log_inbox("https://r.example/a/1", "https://r.example/u", b'{"a": 1}', NOW)
    second = store.log_inbox(None, None, b"{}", NOW)
    store.mark_inbox_processed(first, NOW)
    [pending] = store.unprocessed_inbox()
    assert pending.id == second and pending.body == b"{}"
    assert store.prune_inbox_log(NOW + LEASE) == 1


def test_inbox_log_recorded_processed_in_one_call(store: StoreParts) -> None:
    """The inbox logs each activity after its writes, already processed (one statement)."""
    store.log_inbox("https://r.example/a/1", "https://r.example/u", b"{}", NOW, (NOW, None))
    store.log_inbox("https://r.example/a/2", "https://r.example/u", b"{}", NOW,
                    (NOW, "Like of x: already stored"))
    assert store.unprocessed_inbox() == []
    assert store.prune_inbox_log(NOW + LEASE) == 2


def like(actor: str, post: int, activity_id: str | None = None) -> Interaction:
    return Interaction(
        activity_id=activity_id or f"{actor}/likes/{post}",
        kind="like",
        actor_id=actor,
        object_id=f"https://blog.example/posts/{post}/",
        published=NOW,
        received_at=NOW,
    )


def reply(actor: str, post: int, n: int, approved: bool = True) -> Interaction:
    return Interaction(
        activity_id=f"{actor}/statuses/{n}/activity",
        kind="reply",
        actor_id=actor,
        object_id=f"https://blog.example/posts/{post}/",
        published=NOW + timedelta(minutes=n),
        received_at=NOW + timedelta(minutes=n),
        author_name="Bob",
        author_handle="bob@r.example",
        content_html=f"<p>reply {n}</p>",
        reply_object_id=f"{actor}/statuses/{n}",
        in_reply_to=f"https://blog.example/posts/{post}/",
        approved=approved,
    )


def test_interactions_are_idempotent(store: StoreParts) -> None:
    bob = "https://r.example/users/bob"
    assert store.add_interaction(like(bob, 1)) is True
    assert store.add_interaction(like(bob, 1)) is False  # same activity id
    assert store.add_interaction(like(bob, 1, activity_id="https://r.example/other")) is False
    boost = Interaction("https://r.example/b/1", "announce", bob, like(bob, 1).object_id, NOW, NOW)
    assert store.add_interaction(boost) is True
    assert store.add_interaction(reply(bob, 1, 1)) is True
    assert store.add_interaction(reply(bob, 1, 2)) is True  # many replies per actor are fine
    assert store.add_interaction(reply(bob, 1, 2)) is False
    assert store.add_interaction(reply("https://r.example/users/eve", 1, 3, approved=False))
    post = "https://blog.example/posts/1/"
    assert store.interaction_counts() == {post: InteractionCounts(likes=1, shares=1, replies=2)}
    assert len(store.interactions_for_object(post)) == 4
    assert len(store.interactions_for_object(post, approved_only=False)) == 5
    assert (
        store.recent_interactions(1)[0].activity_id
        == reply("https://r.example/users/eve", 1, 3).activity_id
    )


def test_undo_update_delete_respect_the_author(store: StoreParts) -> None:
    bob, eve = "https://r.example/users/bob", "https://r.example/users/eve"
    store.add_interaction(like(bob, 1))
    assert store.remove_interaction_by_activity(like(bob, 1).activity_id, eve) is False
    assert store.remove_interaction_by_activity(like(bob, 1).activity_id, bob) is True
    store.add_interaction(like(bob, 1))
    assert store.remove_interaction("like", bob, like(bob, 1).object_id) is True

    r = reply(bob, 1, 1)
    store.add_interaction(r)
    assert r.reply_object_id is not None
    later = NOW + timedelta(hours=1)
    assert store.update_reply(r.reply_object_id, eve, "<p>hacked</p>", later) is False
    assert store.update_reply(r.reply_object_id, bob, "<p>edited</p>", later) is True
    [got] = store.interactions_for_object(r.object_id)
    assert (got.content_html, got.updated) == ("<p>edited</p>", later)
    assert store.set_interaction_approved(r.activity_id, False) is True
    assert store.interactions_for_object(r.object_id) == []
    assert store.delete_reply(r.reply_object_id, eve) is False
    assert store.delete_reply(r.reply_object_id, bob) is True
    assert store.interactions_for_object(r.object_id, approved_only=False) == []


def test_key_cache(store: StoreParts) -> None:
    key = CachedKey("https://r.example/u#main-key", "https://r.example/u", "PEM-1", NOW)
    store.put_key(key)
    assert store.get_key(key.key_id) == key
    newer = CachedKey(key.key_id, key.owner, "PEM-2", NOW + LEASE)
    store.put_key(newer)
    assert store.get_key(key.key_id) == newer
    assert store.delete_key(key.key_id) is True
    assert store.get_key(key.key_id) is None


def test_blocked_or_key_answers_both_in_one_read(store: StoreParts) -> None:
    key = CachedKey("https://r.example/u#main-key", "https://r.example/u", "PEM-1", NOW)
    assert store.blocked_or_key(key.key_id, key.owner) == (False, None)
    store.put_key(key)
    assert store.blocked_or_key(key.key_id, key.owner) == (False, key)
    assert store.blocked_or_key("https://other.example/k", key.owner) == (False, None)
    store.add_block("https://other.example/users/troll", NOW)
    assert store.blocked_or_key(key.key_id, "https://other.example/users/troll") == (True, None)
    assert store.blocked_or_key(key.key_id, "https://other.example/users/friend") == (False, key)
    store.add_block("r.example", NOW)  # the key's host: blocked, whatever the actor
    assert store.blocked_or_key(key.key_id, "https://x.example/u") == (True, None)
    assert store.blocked_or_key("not a url", "https://x.example/u") == (False, None)


def test_blocks_match_subdomains_and_actors(store: StoreParts) -> None:
    assert store.add_block("Spam.Example", NOW) is True
    assert store.add_block("*.spam.example", NOW) is False  # same domain
    assert store.add_block("https://ok.example/users/troll", NOW) is True
    assert store.list_blocks() == ["https://ok.example/users/troll", "spam.example"]
    assert store.is_blocked("https://spam.example/users/x")
    assert store.is_blocked("https://deep.sub.SPAM.example/users/x")
    assert store.is_blocked("sub.spam.example")
    assert not store.is_blocked("https://notspam.example/users/x")
    assert not store.is_blocked("https://spam.example.org/users/x")
    assert store.is_blocked("https://ok.example/users/troll")
    assert not store.is_blocked("https://ok.example/users/friend")
    assert store.remove_block("spam.example") is True
    assert not store.is_blocked("https://spam.example/users/x")
    with pytest.raises(StoreError, match="cannot block"):
        store.add_block("   ", NOW)


def test_backup_copies_a_consistent_database(sqlite_store: SQLiteStore, tmp_path: Path) -> None:
    store = sqlite_store
    store.upsert_follower(follower(1))
    target = tmp_path / "backup.db"
    store.backup(target)
    assert raw(target, "SELECT COUNT(*) FROM followers") == [(1,)]
    store.checkpoint()
    assert store.integrity_check() == "ok"


def test_writes_use_begin_immediate_and_plans_run_with_full_sync(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    try:
        store.seen_activity("https://r.example/a/1", NOW)
        plain = list(statements)
        statements.clear()
        store.plan_publication([activity(1)], inboxes(2), [ledger(1)], NOW)
        planned = list(statements)
    finally:
        store._writer.set_trace_callback(None)
    assert plain[0] == "BEGIN IMMEDIATE" and plain[-1] == "COMMIT"
    assert not any("synchronous" in s for s in plain)
    assert planned[:2] == ["PRAGMA synchronous = FULL", "BEGIN IMMEDIATE"]
    assert planned[-2:] == ["COMMIT", "PRAGMA synchronous = NORMAL"]


# --- the per-host circuit breaker ------------------------------------------------------------


def test_host_pause_moves_its_deliveries_in_one_step_and_success_resumes(
    store: StoreParts,
) -> None:
    store.upsert_followers([follower(1, "dead.example"), follower(2, "ok.example")])
    store.plan_publication([activity(1), activity(2)], [
        "https://dead.example/inbox", "https://ok.example/inbox"], [], NOW)
    first = store.record_host_failure("dead.example", NOW)
    assert first.first_failure_at == NOW and first.paused_until is None
    later = store.record_host_failure("dead.example", NOW + timedelta(days=1))
    assert later.first_failure_at == NOW and later.last_failure_at == NOW + timedelta(days=1)

    until = NOW + timedelta(hours=6)
    assert store.pause_host("dead.example", until, NOW) == 2  # both of its rows, one statement
    due = store.claim_due("w", NOW + timedelta(hours=1), 10, LEASE)
    assert {c.inbox for c in due} == {"https://ok.example/inbox"}
    for c in due:
        assert store.mark_delivered(c.id, "w", NOW + timedelta(hours=1))
    [paused] = store.failing_hosts()
    assert paused.host == "dead.example" and paused.paused_until == until

    # The first success (or anything the host sends) makes them due at once.
    assert store.record_host_success("dead.example", NOW + timedelta(hours=2)) == 2
    assert store.failing_hosts() == []
    again = store.claim_due("w", NOW + timedelta(hours=2), 10, LEASE)
    assert {c.inbox for c in again} == {"https://dead.example/inbox"}
    assert store.record_host_success("ok.example", NOW) == 0  # healthy: nothing recorded
    assert store.failing_hosts() == []


def test_dead_hosts_are_reported_and_pruned_only_on_request(store: StoreParts) -> None:
    store.upsert_followers([follower(1, "dead.example"), follower(2, "dead.example"),
                            follower(3, "ok.example")])
    store.plan_publication([activity(1)], store.iter_delivery_inboxes(), [], NOW)
    store.record_host_failure("dead.example", NOW)
    store.record_host_failure("ok.example", NOW + timedelta(days=6))
    week = NOW + timedelta(days=7)
    [(dead, followers)] = store.dead_hosts(week - timedelta(days=7))
    assert dead.host == "dead.example" and followers == 2
    assert store.count_followers() == 3  # reporting removes nothing
    assert store.resume_host("ok.example", week) == 0
    assert store.prune_dead_hosts(week - timedelta(days=7)) == (1, 2, 1)
    assert store.count_followers() == 1
    assert store.delivery_counts()["failed"] == 1
    assert store.dead_hosts(week) == []
