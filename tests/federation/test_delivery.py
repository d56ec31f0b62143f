"""Delivery and `fedipress publish` end to end: real sites, real SQLite, real keys, real
loopback inbox servers (tests/support/inbox_sink.py)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fedipress.cli import main
from fedipress.federation.delivery import DeliverySummary, DeliveryWorker, summary_line
from fedipress.store import Follower, PlannedActivity, SQLiteStore, open_store
from support.delivery import BLOG, Blog, make_blog, person, publish
from support.inbox_sink import InboxSink


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Blog:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return make_blog(tmp_path / "site")


@pytest.fixture
def sink(blog_public_pem: bytes) -> Iterator[InboxSink]:
    with InboxSink(blog_public_pem) as server:
        yield server


def kinds(posts: list[object]) -> list[str]:
    return [json.loads(p.body)["type"] for p in posts]  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the publish flow ------------------------------------------------------------------------


def test_create_update_delete_flow(blog: Blog, sink: InboxSink,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    blog.post("old", age=timedelta(days=30))
    blog.follow(person(sink, "bob"), person(sink, "carol"))
    code, out, _ = publish(blog, capsys)
    assert code == 0
    assert sink.posts == []  # the first publish announces nothing dated over a week ago
    assert "sent 0, retrying 0, failed 0" in out
    assert ("first publish: 0 new posts announced, 1 older post recorded as already"
            " published; use --backfill N to announce older ones") in out

    blog.post("new", "Brand new.")
    code, out, _ = publish(blog, capsys)
    assert code == 0, out
    assert sorted(p.path for p in sink.posts) == ["/users/bob/inbox", "/users/carol/inbox"]
    assert kinds(sink.posts) == ["Create", "Create"]
    assert "sent 2, retrying 0, failed 0" in out
    for post in sink.posts:
        assert post.verified_ours and post.verified_independent
        assert post.headers["content-type"] == "application/activity+json"
        assert BLOG in post.headers["user-agent"]
    create = json.loads(sink.posts[0].body)
    assert create["object"]["id"] == f"{BLOG}posts/new/object.json"
    assert "Brand new." in create["object"]["content"]

    blog.post("new", "Edited text.")
    code, out, _ = publish(blog, capsys)
    assert code == 0 and kinds(sink.posts[2:]) == ["Update", "Update"]
    update = json.loads(sink.posts[2].body)
    assert "Edited text." in update["object"]["content"]
    assert "updated" in update["object"]

    (blog.root / "content" / "posts" / "new.md").unlink()
    code, out, _ = publish(blog, capsys)
    assert code == 0 and kinds(sink.posts[4:]) == ["Delete", "Delete"]
    delete = json.loads(sink.posts[4].body)
    assert delete["object"]["type"] == "Tombstone"

    code, out, _ = publish(blog, capsys)  # nothing changed: nothing sent
    assert code == 0 and len(sink.posts) == 6
    store = blog.store()
    try:
        assert store.delivery_counts()["delivered"] == 6
    finally:
        store.close()


def test_first_publish_announces_the_last_week(blog: Blog, sink: InboxSink,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The first publish of a blog with followers already (the inbox ran before): the posts
    of the last week are news, the older ones the baseline."""
    blog.post("archive", age=timedelta(days=8))
    blog.post("recent", age=timedelta(days=6))
    blog.post("today", age=timedelta(minutes=5))
    blog.follow(person(sink, "bob"))
    line = ("first publish: 2 new posts announced, 1 older post recorded as already"
            " published; use --backfill N to announce older ones")
    # The dry run plans by the same rule and says the same.
    code, out, _ = publish(blog, capsys, "--dry-run")
    assert code == 0 and line in out and sink.posts == []
    assert "record        https://blog.example/posts/archive/object.json (first publish:" \
        in out, out
    code, out, _ = publish(blog, capsys)
    assert code == 0
    assert sorted(json.loads(p.body)["object"]["id"] for p in sink.posts) == [
        f"{BLOG}posts/recent/object.json", f"{BLOG}posts/today/object.json"]
    assert kinds(sink.posts) == ["Create", "Create"]
    assert line in out
    assert publish(blog, capsys)[0] == 0 and len(sink.posts) == 2  # announced once


def test_backfill_and_old_dated_import(blog: Blog, sink: InboxSink,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    blog.post("one", age=timedelta(days=30))
    blog.post("two", age=timedelta(days=20))
    blog.post("three", age=timedelta(days=10))
    blog.follow(person(sink, "bob"))
    code, out, _ = publish(blog, capsys, "--backfill", "2")
    assert code == 0
    # Both go out at once (one inbox, concurrent requests): compare without order.
    assert sorted(json.loads(p.body)["object"]["id"] for p in sink.posts) == [
        f"{BLOG}posts/three/object.json", f"{BLOG}posts/two/object.json"]
    assert ("first publish: 0 new posts announced, 2 older posts announced for --backfill,"
            " 1 older post recorded as already published") in out
    # An archive imported later, dated months ago, is recorded but not announced.
    blog.post("imported", age=timedelta(days=90))
    code, _, _ = publish(blog, capsys)
    assert code == 0 and len(sink.posts) == 2
    store = blog.store()
    try:
        assert f"{BLOG}posts/imported/object.json" in store.get_ledger()
    finally:
        store.close()


def test_outcomes_dead_gone_flaky_and_shared_inbox(blog: Blog, sink: InboxSink,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    blog.post("first", age=timedelta(days=30))
    dead_port = free_port()  # nothing listens there: connection refused
    dead = Follower(actor_id=f"http://127.0.0.1:{dead_port}/users/dead",
                    inbox=f"http://127.0.0.1:{dead_port}/users/dead/inbox", shared_inbox=None,
                    handle=None, name=None, followed_at=datetime.now(UTC))
    shared = sink.url("/shared/inbox")
    crowd = [person(sink, f"m{i}", shared=shared) for i in range(100)]
    blog.follow(dead, person(sink, "gone"), person(sink, "flaky"), *crowd)
    assert publish(blog, capsys)[0] == 0  # first publish: nothing sent

    sink.script("/users/gone/inbox", [410])
    sink.script("/users/flaky/inbox", [500, 200])
    blog.post("second")
    code, out, err = publish(blog, capsys, "--wait", "20")
    # The 410 is a permanent failure, but its follower is removed: nothing for the author to
    # do, so exit 0 (docs/publishing.md, Output and exit codes).
    assert code == 0, (out, err)
    assert "sent 2, retrying 1, failed 1 (410 gone: 1 follower removed)" in out
    assert len(sink.posts_to("/shared/inbox")) == 1  # 100 followers, one POST
    flaky = sink.posts_to("/users/flaky/inbox")
    assert [p.status for p in flaky] == [500, 200]  # retried within --wait
    assert flaky[0].body == flaky[1].body  # the same bytes on every try...
    assert flaky[0].headers["signature"] != flaky[1].headers["signature"]  # ...freshly signed
    assert all(p.verified_ours and p.verified_independent for p in flaky)
    store = blog.store()
    try:
        assert store.get_follower(sink.url("/users/gone")) is None
        assert store.get_follower(dead.actor_id) is not None
        queued = store.list_deliveries(["pending"])
        assert [d.inbox for d in queued] == [dead.inbox]
        assert queued[0].attempts == 2 and queued[0].last_error
        failed = store.list_deliveries(["failed"])
        assert [(d.inbox, d.last_status) for d in failed] == [(sink.url("/users/gone/inbox"), 410)]
    finally:
        store.close()
    # `deliveries` shows them; `retry` requeues the failed one.
    capsys.readouterr()
    assert main(["deliveries", "--config", blog.config]) == 0
    listing = capsys.readouterr().out
    assert dead.inbox in listing and "410" in listing
    assert main(["deliveries", "--config", blog.config, "retry"]) == 0
    assert "requeued 1" in capsys.readouterr().out


def test_dry_run_sends_and_stores_nothing(blog: Blog, sink: InboxSink,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    blog.post("a", age=timedelta(days=30))
    blog.follow(person(sink, "bob"))
    assert publish(blog, capsys)[0] == 0
    blog.post("b")
    code, out, _ = publish(blog, capsys, "--dry-run")
    assert code == 0
    assert "Create" in out and f"{BLOG}posts/b/object.json" in out
    assert sink.url("/users/bob/inbox") in out and "nothing stored or sent" in out
    assert sink.posts == []
    store = blog.store()
    try:
        assert f"{BLOG}posts/b/object.json" not in store.get_ledger()
        assert sum(store.delivery_counts().values()) == 0
    finally:
        store.close()


def test_user_errors_exit_2(blog: Blog, capsys: pytest.CaptureFixture[str]) -> None:
    (blog.root / ".fedipress" / "private-key.pem").unlink()
    code, _, err = publish(blog, capsys)
    assert code == 2
    assert err.startswith("fedipress: error: ") and "Traceback" not in err
    code, _, err = publish(blog, capsys, "--backfill", "-1", "--dry-run")
    assert code == 2 and "--backfill" in err


def test_verbose_logs_requests_but_no_key_or_signature(
    blog: Blog, sink: InboxSink, capsys: pytest.CaptureFixture[str], blog_private_pem: bytes
) -> None:
    blog.post("a", age=timedelta(days=30))
    blog.follow(person(sink, "bob"))
    publish(blog, capsys)
    blog.post("b")
    code, out, err = publish(blog, capsys, "-v")
    assert code == 0
    logs = out + err
    assert re.search(r"POST http://127\.0\.0\.1:\d+/users/bob/inbox 202 done", logs)
    key_lines = [ln for ln in blog_private_pem.decode().splitlines() if "-----" not in ln]
    assert key_lines and not any(line in logs for line in key_lines)
    for post in sink.posts:
        signature = re.search(r'signature="([^"]+)"', post.headers["signature"])
        assert signature and signature.group(1) not in logs
        assert signature.group(1)[:24] not in logs


def test_summary_line_format() -> None:
    assert summary_line(DeliverySummary(sent=1204, retrying=3, failed=1, gone=1,
                                        followers_removed=1)) == (
        "sent 1,204, retrying 3, failed 1 (410 gone: 1 follower removed)")
    assert summary_line(DeliverySummary(sent=2)) == "sent 2, retrying 0, failed 0"


# --- the worker on its own -----------------------------------------------------------------------


def _worker(store: SQLiteStore, blog_private_pem: bytes, **options: object) -> DeliveryWorker:
    from fedipress.federation.signing import SigningAuth

    key = load_pem_private_key(blog_private_pem, password=None)
    return DeliveryWorker(store, auth=SigningAuth.for_actor(f"{BLOG}actor.json", key),  # type: ignore[arg-type]
                          owner="test@worker", user_agent="fedipress-test",
                          allow_private=True, **options)  # type: ignore[arg-type]


def _activity(n: int) -> PlannedActivity:
    body = json.dumps({"id": f"{BLOG}a/{n}", "type": "Create"}).encode()
    return PlannedActivity(f"{BLOG}a/{n}", None, "Create", body)


def test_per_host_limit_and_status_matrix(tmp_path: Path, sink: InboxSink,
                                          blog_private_pem: bytes) -> None:
    store = open_store(tmp_path / "state.db")
    now = datetime.now(UTC)
    sink.delay = 0.15
    matrix = {200: "done", 201: "done", 204: "done", 400: "permanent", 403: "permanent",
              404: "permanent", 422: "permanent", 501: "permanent", 401: "retry",
              408: "retry", 429: "retry", 502: "retry", 503: "retry", 302: "retry"}
    for status in matrix:
        sink.script(f"/s{status}", [status])
    plain = [sink.url(f"/p{i}") for i in range(12)]
    store.plan_deliveries(_activity(1), [sink.url(f"/s{s}") for s in matrix] + plain, now)
    results = []
    worker = _worker(store, blog_private_pem, on_result=results.append, per_host=4)
    asyncio.run(worker.run_until(datetime.now(UTC) + timedelta(seconds=5)))
    store.close()
    assert sink.max_active <= 4
    outcome = {r.inbox: r.outcome for r in results}
    for status, expected in matrix.items():
        assert outcome[sink.url(f"/s{status}")] == expected, status
    retry_after = [r for r in results if r.inbox == sink.url("/s429")][0]
    assert retry_after.outcome == "retry"


def test_run_forever_picks_up_new_rows(tmp_path: Path, sink: InboxSink,
                                       blog_private_pem: bytes) -> None:
    store = open_store(tmp_path / "state.db")
    worker = _worker(store, blog_private_pem, idle_poll=5.0)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(worker.run_forever(stop))
        await asyncio.sleep(0.2)
        store.plan_deliveries(_activity(7), [sink.url("/late")], datetime.now(UTC))
        worker.wake()
        for _ in range(100):
            if sink.posts_to("/late"):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(runner, 5)

    asyncio.run(scenario())
    assert len(sink.posts_to("/late")) == 1  # well before the 5 s poll
    assert store.delivery_counts()["delivered"] == 1
    store.close()

