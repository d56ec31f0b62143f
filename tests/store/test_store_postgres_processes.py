"""Several real processes on one PostgreSQL store: a worker killed with SIGKILL loses nothing
(its leases are claimed again once they expire, its open transaction is rolled back by the
server), and a Follow reaching two inbox processes is recorded once and accepted once."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

from fedipress.store import Follower, PlannedActivity, open_store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
CTX = multiprocessing.get_context("spawn")  # no fork of a threaded pytest process


def _plan(url: str, inboxes: int) -> None:
    store = open_store(url)
    try:
        store.plan_publication(
            [PlannedActivity("https://blog.example/a/1", None, "Create", b"{}")],
            (f"https://h{i}.example/inbox" for i in range(inboxes)),
            [],
            NOW,
        )
    finally:
        store.close()


def _claim_and_hang(url: str, batch: int, in_transaction: bool, ready: Event) -> None:
    """Claim `batch` rows, tell the parent, then wait to be killed (never reporting back)."""
    import time

    store = open_store(url)
    if in_transaction:
        with store.transaction():  # killed before the claim commits: the server rolls it back
            store.claim_due("doomed", NOW, batch, LEASE)
            ready.set()
            time.sleep(600)
    store.claim_due("doomed", NOW, batch, LEASE)
    ready.set()
    time.sleep(600)


def _kill_after_claim(url: str, batch: int, in_transaction: bool) -> None:
    ready = CTX.Event()
    proc = CTX.Process(target=_claim_and_hang, args=(url, batch, in_transaction, ready))
    proc.start()
    try:
        assert ready.wait(60), "the worker never claimed"
    finally:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL


def test_sigkilled_workers_leases_are_claimed_again_after_they_expire(postgres_url: str) -> None:
    _plan(postgres_url, 30)
    _kill_after_claim(postgres_url, 10, in_transaction=False)
    store = open_store(postgres_url)
    try:
        assert store.delivery_counts()["in_flight"] == 10
        # Before the lease runs out, another worker gets only the 20 rows nobody held...
        first = store.claim_due("survivor", NOW + timedelta(seconds=1), 100, LEASE * 10)
        assert len(first) == 20 and {c.delivery.attempts for c in first} == {1}
        # ...and once it has, the dead worker's 10 as well, each counted as a second attempt
        # (a killed worker may have sent them).
        later = NOW + LEASE + timedelta(seconds=1)
        second = store.claim_due("survivor", later, 100, LEASE)
        assert len(second) == 10 and {c.delivery.attempts for c in second} == {2}
        assert not {c.id for c in first} & {c.id for c in second}
        for c in [*first, *second]:
            assert store.mark_delivered(c.id, "survivor", later)
        # The dead worker's late answer (had it been alive) would be ignored: not its lease.
        assert not store.mark_delivered(second[0].id, "doomed", later)
        assert store.delivery_counts()["delivered"] == 30
    finally:
        store.close()


def test_sigkill_inside_a_claim_transaction_leaves_the_rows_free_at_once(
    postgres_url: str,
) -> None:
    _plan(postgres_url, 12)
    _kill_after_claim(postgres_url, 12, in_transaction=True)
    store = open_store(postgres_url)
    try:
        # The claim never committed: nothing is in flight, every row is claimable now.
        assert store.delivery_counts()["pending"] == 12
        claimed = store.claim_due("survivor", NOW, 100, LEASE)
        assert len(claimed) == 12 and {c.delivery.attempts for c in claimed} == {1}
    finally:
        store.close()


FOLLOWS = 40


def _follow(n: int) -> tuple[Follower, PlannedActivity, str]:
    actor = f"https://remote{n % 4}.example/users/u{n}"
    follower = Follower(actor, f"{actor}/inbox", None, f"u{n}@remote{n % 4}.example", None, NOW)
    follow_id = f"{actor}/follows/1"
    accept = PlannedActivity(
        f"https://blog.example/accept/{n}", None, "Accept", f'{{"object": "{follow_id}"}}'.encode()
    )
    return follower, accept, follow_id


def _inbox_process(url: str, start: Barrier, out: str) -> None:
    """What an inbox process does with each Follow: dedupe the id, then store the follower and
    queue the Accept in one transaction. Records what it did."""
    store = open_store(url)
    lines: list[str] = []
    try:
        start.wait(60)
        for n in range(FOLLOWS):
            follower, accept, follow_id = _follow(n)
            if store.seen_activity(follow_id, NOW):
                lines.append(f"seen {n}")
            # Also without the dedupe (a retry after it, a second Follow id): still one Accept.
            with store.transaction():
                new = store.upsert_follower(follower)
                planned = store.plan_deliveries(accept, [follower.inbox], NOW)
            if new:
                lines.append(f"new {n}")
            if planned.deliveries:
                lines.append(f"accept {n}")
    finally:
        store.close()
    Path(out).write_text("\n".join(lines))


def test_a_follow_reaching_two_inbox_processes_is_recorded_and_accepted_once(
    postgres_url: str, tmp_path: Path
) -> None:
    start = CTX.Barrier(3)
    outs = [tmp_path / f"inbox-{i}.txt" for i in range(3)]
    procs = [CTX.Process(target=_inbox_process, args=(postgres_url, start, str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    done = Counter(line for o in outs for line in o.read_text().split("\n") if line)
    for n in range(FOLLOWS):
        assert done[f"seen {n}"] == 1, f"follow {n} passed the dedupe {done[f'seen {n}']} times"
        assert done[f"new {n}"] == 1, f"follower {n} was new {done[f'new {n}']} times"
        assert done[f"accept {n}"] == 1, f"follow {n} got {done[f'accept {n}']} Accepts"
    store = open_store(postgres_url)
    try:
        assert store.count_followers() == FOLLOWS
        assert store.delivery_counts()["pending"] == FOLLOWS
    finally:
        store.close()
