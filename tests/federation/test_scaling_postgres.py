"""Several real fedipress processes on one PostgreSQL store, delivering to loopback inboxes.

Two `fedipress worker` processes drain one fan-out; one is killed with SIGKILL half-way. Every
inbox still gets the activity, and only what the killed worker had in flight may arrive twice.
Two `fedipress inbox` processes receive the same Follow at once: one follower, one Accept.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fedipress.activitypub.cavage import sign_cavage
from fedipress.store import PlannedActivity, open_store
from support.delivery import Blog, make_blog
from support.inbox import REMOTE_KEY, Remote, actor_doc
from support.inbox_sink import InboxSink
from support.service import REPO, clean_env, free_port, site_yaml

HOSTS = 4  # distinct loopback addresses: distinct hosts for the per-host cap
PER_HOST = 100
PER_HOST_CAP = 6  # in flight per host, counting both workers
LEASE = 5  # seconds: the killed worker's rows are taken over after this
ACTIVITY = "https://blog.example/activities/create-1"


@pytest.fixture
def blog(tmp_path: Path) -> Blog:
    return make_blog(tmp_path / "site")


@pytest.fixture
def sinks(blog_public_pem: bytes) -> Iterator[list[InboxSink]]:
    with ExitStack() as stack:
        found = []
        for n in range(HOSTS):
            sink = stack.enter_context(InboxSink(blog_public_pem, host=f"127.0.0.{n + 1}"))
            sink.delay = 0.1  # each POST takes a while: requests are in flight at the kill
            found.append(sink)
        yield found


def _worker(blog: Blog, url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "fedipress.cli", "worker", "--config", blog.config,
             "--allow-private-addresses", "--concurrency", "8", "--per-host", str(PER_HOST_CAP),
             "--lease", str(LEASE)],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
            env=clean_env(FEDIPRESS_DATABASE_URL=url), cwd=REPO,
        )


def _wait(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_workers_share_a_fan_out_and_survive_a_sigkill(
    blog: Blog, sinks: list[InboxSink], postgres_url: str, tmp_path: Path
) -> None:
    inboxes = [s.url(f"/users/u{i}/inbox") for s in sinks for i in range(PER_HOST)]
    store = open_store(postgres_url)
    try:
        store.plan_publication([PlannedActivity(ACTIVITY, None, "Create", b'{"id": "%s"}'
                                                % ACTIVITY.encode())],
                               inboxes, [], datetime.now(UTC))
    finally:
        store.close()
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    a, b = (_worker(blog, postgres_url, log) for log in logs)
    try:
        received = lambda: sum(len(s.posts) for s in sinks)  # noqa: E731
        _wait("a quarter of the fan-out", lambda: received() >= len(inboxes) // 4, 60)
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        killed_at = received()
        assert killed_at < len(inboxes), "the fan-out was over before the kill: nothing tested"

        def all_delivered() -> bool:
            s = open_store(postgres_url)
            try:
                return s.delivery_counts()["delivered"] == len(inboxes)
            finally:
                s.close()

        _wait("every delivery", all_delivered, 120)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert b.returncode == 0, logs[1].read_text()

    got = Counter(s.url(p.path) for s in sinks for p in s.posts if p.status < 300)
    assert set(got) == set(inboxes), "an inbox never got the activity"
    doubled = [inbox for inbox, n in got.items() if n > 1]
    # Only what the killed worker had in flight may be sent again: at most its concurrency.
    assert len(doubled) <= 8, doubled
    assert all(n <= 2 for n in got.values())
    assert all(p.verified_ours and p.verified_independent for s in sinks for p in s.posts)
    # Both workers took part, and the per-host cap held across them.
    sent_by = [log.read_text().count(" 202 done") for log in logs]
    assert sent_by[0] > 0 and sent_by[1] > 0, sent_by
    assert max(s.max_active for s in sinks) <= PER_HOST_CAP
    # The survivor took over the dead worker's rows once their lease ran out.
    store = open_store(postgres_url)
    try:
        assert store.delivery_counts()["in_flight"] == 0
        assert max(d.attempts for d in store.list_deliveries(["delivered"], limit=1000)) <= 2
    finally:
        store.close()


def _inbox(root: Path, port: int, url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "fedipress.cli", "inbox", "--config", str(root / "site.yaml"),
             "--port", str(port), "--allow-private-addresses"],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
            env=clean_env(FEDIPRESS_DATABASE_URL=url), cwd=REPO,
        )


def test_a_follow_reaching_two_inbox_processes_gets_one_accept(
    tmp_path: Path, postgres_url: str
) -> None:
    ports = [free_port(), free_port()]
    base = f"http://127.0.0.1:{ports[0]}/"
    root = tmp_path / "blog"
    make_blog(root)
    (root / "site.yaml").write_text(site_yaml(base))
    logs = [tmp_path / "inbox-a.log", tmp_path / "inbox-b.log"]
    with Remote() as remote:
        remote.docs["/users/alice"] = actor_doc(remote, "alice")
        alice = remote.url("/users/alice")
        procs = [_inbox(root, port, postgres_url, log)
                 for port, log in zip(ports, logs, strict=True)]
        try:
            for port, proc in zip(ports, procs, strict=True):
                _wait("the inbox to listen",
                      lambda port=port, proc=proc: _healthy(port, proc), 30)  # type: ignore[misc]
            follow = {"@context": "https://www.w3.org/ns/activitystreams",
                      "id": alice + "/follows/1", "type": "Follow", "actor": alice,
                      "object": base + "actor.json"}
            body = json.dumps(follow).encode()

            def deliver(port: int) -> int:
                url = f"http://127.0.0.1:{port}/inbox"
                headers = {"Content-Type": "application/activity+json",
                           "Host": f"127.0.0.1:{port}"}
                headers |= sign_cavage("POST", url, headers, body, key_id=alice + "#main-key",
                                       private_key=REMOTE_KEY, now=datetime.now(UTC))
                return httpx.post(url, content=body, headers=headers, timeout=30).status_code

            with ThreadPoolExecutor(2) as pool:  # both at once, as two load-balanced copies
                statuses = list(pool.map(deliver, ports))
            assert all(200 <= s < 300 for s in statuses), statuses

            def accepts() -> list[dict[str, object]]:
                found = [json.loads(b) for _, _, b in list(remote.posts)]
                return [a for a in found if a.get("type") == "Accept"]

            _wait("the Accept", lambda: accepts(), 30)
            time.sleep(2)  # both delivery loops poll every second: room for a second Accept
            [accept] = accepts()
            assert accept["object"] == follow or (
                isinstance(accept["object"], dict) and accept["object"]["id"] == follow["id"])
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
    store = open_store(postgres_url)
    try:
        assert [f.actor_id for f in store.iter_followers()] == [alice]
        assert store.delivery_counts()["delivered"] == 1
    finally:
        store.close()


def _healthy(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "an inbox process exited"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
