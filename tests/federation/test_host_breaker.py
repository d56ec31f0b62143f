"""The per-host circuit breaker (issue 15, point 3) with a real worker, a real store and real
loopback inboxes: a host failing every delivery for a day is paused in one step, resumed by a
success or by anything it sends; a week-dead host is reported and pruned only on request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fedipress.cli import main
from fedipress.federation.delivery import DeliveryWorker
from fedipress.federation.signing import SigningAuth
from fedipress.store import Follower, PlannedActivity, StoreParts, open_store
from support.delivery import Blog, make_blog
from support.inbox import POST, Remote, make_env
from support.inbox_sink import InboxSink

BLOG = "https://blog.example/"


@pytest.fixture
def sink(blog_public_pem: bytes) -> Iterator[InboxSink]:
    with InboxSink(blog_public_pem, host="127.0.0.3") as server:
        yield server


def _worker(store: StoreParts, pem: bytes, clock: datetime) -> DeliveryWorker:
    key = load_pem_private_key(pem, password=None)
    return DeliveryWorker(store, auth=SigningAuth.for_actor(f"{BLOG}actor.json", key),  # type: ignore[arg-type]
                          owner="test@worker", user_agent="fedipress-test", allow_private=True,
                          per_host=2, concurrency=2, clock=lambda: clock)


def _plan(store: StoreParts, inbox: str, n: int, now: datetime) -> None:
    for i in range(n):
        body = json.dumps({"id": f"{BLOG}a/{i}", "type": "Create"}).encode()
        store.plan_deliveries(PlannedActivity(f"{BLOG}a/{i}", None, "Create", body), [inbox], now)


def test_a_day_of_failures_pauses_the_host_in_one_step_and_a_success_resumes_it(
    tmp_path: Path, sink: InboxSink, blog_private_pem: bytes
) -> None:
    store = open_store(tmp_path / "state.db")
    now = datetime.now(UTC)
    sink.script("/inbox", [503])
    _plan(store, sink.url("/inbox"), 10, now)
    store.record_host_failure("127.0.0.3", now - timedelta(hours=25))  # failing for a day
    asyncio.run(_worker(store, blog_private_pem, now).run_until(now + timedelta(seconds=1)))
    tried = len(sink.posts)
    assert 1 <= tried <= 2, "the host should be paused after its first failure, not tried 10x"
    [health] = store.failing_hosts()
    assert health.paused_until == now + timedelta(hours=6)
    pending = store.list_deliveries(["pending"], limit=100)
    assert len(pending) == 10
    untried = [d for d in pending if d.attempts == 0]
    assert len(untried) == 10 - tried
    assert all(d.next_attempt_at == now + timedelta(hours=6) for d in untried)

    # The host answers again: the first success clears it and frees every paused row.
    sink.script("/inbox", [202])
    later = now + timedelta(hours=1)
    store.plan_deliveries(PlannedActivity(f"{BLOG}a/new", None, "Create", b"{}"),
                          [sink.url("/inbox")], later)
    asyncio.run(_worker(store, blog_private_pem, later).run_until(later + timedelta(seconds=1)))
    assert store.failing_hosts() == []
    assert store.delivery_counts()["delivered"] == 11
    store.close()


def test_a_paused_host_that_sends_us_anything_is_resumed(tmp_path: Path, remote: Remote) -> None:
    env = make_env(tmp_path, remote)
    host = "127.0.0.1"  # where the remote actors live
    env.store.plan_deliveries(PlannedActivity(f"{BLOG}a/1", None, "Create", b"{}"),
                              [remote.url("/inbox")], datetime.now(UTC))
    paused_until = datetime.now(UTC) + timedelta(hours=6)
    assert env.store.pause_host(host, paused_until, datetime.now(UTC)) == 1
    response = env.post(env.activity("Like", POST))
    assert response.status_code == 202
    assert env.store.failing_hosts() == []
    [row] = env.store.list_deliveries(["pending"])
    assert row.next_attempt_at < paused_until
    assert env.wakes >= 1  # the delivery loop is told at once
    env.store.close()


def test_week_dead_hosts_are_listed_and_pruned_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDIPRESS_DATABASE_URL", raising=False)
    blog: Blog = make_blog(tmp_path / "site")
    now = datetime.now(UTC)
    store = blog.store()
    store.upsert_followers(
        Follower(f"https://gone.example/users/u{i}", f"https://gone.example/users/u{i}/inbox",
                 "https://gone.example/inbox", None, None, now) for i in range(3))
    store.upsert_follower(Follower("https://ok.example/users/a", "https://ok.example/a/inbox",
                                   None, None, None, now))
    store.record_host_failure("gone.example", now - timedelta(days=8))
    store.close()
    assert main(["deliveries", "--config", blog.config]) == 0
    out = capsys.readouterr().out
    assert ("dead      gone.example: every delivery failed since"
            f" {(now - timedelta(days=8)):%Y-%m-%d}, 3 followers there") in out
    assert "`fedipress deliveries prune` removes them" in out
    store = blog.store()
    assert store.count_followers() == 4  # listing removed nothing
    store.close()
    assert main(["deliveries", "prune", "--config", blog.config]) == 0
    assert "removed 3 followers on 1 dead host" in capsys.readouterr().out
    store = blog.store()
    assert [f.actor_id for f in store.iter_followers()] == ["https://ok.example/users/a"]
    store.close()
    assert main(["deliveries", "prune", "--config", blog.config]) == 0
    assert "nothing removed" in capsys.readouterr().out
