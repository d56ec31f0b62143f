"""Several OS processes and threads on one store (a real SQLite file, and a real PostgreSQL
database where the test takes `location`): no double claims, no lock errors."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from fedipress.store import Follower, PlannedActivity, SQLiteStore, StoreParts, open_store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(hours=1)  # long enough that no lease expires during the test
ROWS = 3000


def _plan(path: Path | str, activities: int = 3, inboxes: int = ROWS // 3) -> None:
    store = open_store(path)
    try:
        store.plan_publication(
            [
                PlannedActivity(f"https://blog.example/a/{n}", None, "Create", b"{}")
                for n in range(activities)
            ],
            (f"https://h{i}.example/inbox" for i in range(inboxes)),
            [],
            NOW,
        )
    finally:
        store.close()


def _claim_worker(path: str, owner: str, start: Barrier, first: Barrier, out: str) -> None:
    """Claim in small batches until the queue is empty; write the ids claimed to `out`."""
    store = open_store(path)  # a file path or a postgresql:// URL
    claimed: list[int] = []
    try:
        start.wait(60)  # every process is ready before any claims
        # Everyone claims once before anyone goes on, so on a loaded machine a process that
        # is scheduled late still takes part (the first claims race each other as well).
        batch = store.claim_due(owner, NOW, 7, LEASE)
        first.wait(60)
        while batch:
            for c in batch:
                claimed.append(c.id)
                if not store.mark_delivered(c.id, owner, NOW):
                    raise AssertionError(f"{owner} lost the lease on {c.id}")
            batch = store.claim_due(owner, NOW, 7, LEASE)
    finally:
        store.close()
    Path(out).write_text("\n".join(map(str, claimed)))


def _write_worker(path: str, n: int, start: Event, seconds: float, out: str) -> None:
    """Write as fast as possible for `seconds`; record how many writes and any errors."""
    import time

    store = open_store(Path(path))
    errors: list[str] = []
    writes = 0
    try:
        start.wait(30)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                store.upsert_follower(
                    Follower(
                        f"https://p{n}.example/u/{writes}",
                        f"https://p{n}.example/u/{writes}/inbox",
                        None,
                        None,
                        None,
                        NOW,
                    )
                )
                store.seen_activity(f"https://p{n}.example/act/{writes}", NOW)
                writes += 1
            except sqlite3.OperationalError as exc:  # "database is locked" would land here
                errors.append(str(exc))
    finally:
        store.close()
    Path(out).write_text(f"{writes}\n" + "\n".join(errors))


def test_processes_never_claim_the_same_row(tmp_path: Path, location: str) -> None:
    path = location
    _plan(path)
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded pytest process
    start, first = ctx.Barrier(4), ctx.Barrier(4)
    outs = [tmp_path / f"claimed-{i}.txt" for i in range(4)]
    procs = [
        ctx.Process(target=_claim_worker, args=(str(path), f"proc{i}", start, first, str(out)))
        for i, out in enumerate(outs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    per_worker = [[int(x) for x in out.read_text().split()] for out in outs]
    everything = Counter(i for ids in per_worker for i in ids)
    assert len(everything) == ROWS
    assert max(everything.values()) == 1, "a row was claimed twice"
    assert all(ids for ids in per_worker), "a worker got nothing: no real contention happened"

    store = open_store(path)
    try:
        counts = store.delivery_counts()
        assert counts["delivered"] == ROWS and counts["pending"] == counts["in_flight"] == 0
        # attempts == 1 everywhere: nobody claimed a row another worker held.
        assert {d.attempts for d in store.list_deliveries(["delivered"], limit=ROWS)} == {1}
        assert store.integrity_check() == "ok"
    finally:
        store.close()


def test_threads_with_separate_connections_never_double_claim(location: str) -> None:
    path = location
    _plan(path, activities=1, inboxes=1500)
    stores = [open_store(path) for _ in range(3)]  # three writer connections, like 3 processes
    shared = open_store(path)  # and three threads sharing one store's guarded writer
    claimed: list[list[int]] = [[] for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work(store: StoreParts, slot: int) -> None:
        try:
            barrier.wait()
            owner = f"t{slot}"
            while batch := store.claim_due(owner, NOW, 5, LEASE, per_host_limit=1):
                for c in batch:
                    claimed[slot].append(c.id)
                    assert store.mark_delivered(c.id, owner, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, i)) for i, s in enumerate(stores)]
    threads += [threading.Thread(target=work, args=(shared, 3 + i)) for i in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for s in [*stores, shared]:
            s.close()
    assert errors == []
    counts = Counter(i for ids in claimed for i in ids)
    assert len(counts) == 1500 and max(counts.values()) == 1


@pytest.mark.slow
def test_two_writer_processes_see_no_lock_errors(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_store(path).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    outs = [tmp_path / f"w{i}.txt" for i in range(2)]
    procs = [
        ctx.Process(target=_write_worker, args=(str(path), i, start, 3.0, str(out)))
        for i, out in enumerate(outs)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [out.read_text().split("\n") for out in outs]
    writes = [int(r[0]) for r in results]
    errors = [line for r in results for line in r[1:] if line]
    assert errors == []
    assert all(w > 50 for w in writes), writes
    store: SQLiteStore = open_store(path)
    try:
        assert store.count_followers() == sum(writes)
        assert store.integrity_check() == "ok"
    finally:
        store.close()
