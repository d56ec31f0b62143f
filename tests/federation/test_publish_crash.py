"""Crash safety: SIGKILL a real `fedipress publish` at random points, run it again, and check
that every (activity, inbox) was delivered, duplicates only for requests in flight at the kill,
no activity was created twice, and the database is intact.

FEDIPRESS_KILL_RUNS=50 runs 50 iterations (the acceptance run); the normal suite runs 8.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.store import Follower
from support.delivery import make_blog
from support.inbox_sink import InboxSink

RUNS = int(os.environ.get("FEDIPRESS_KILL_RUNS", "8"))
POSTS = 6
PER_SINK = 10
CONCURRENCY = 32  # the worker's default: at most this many requests in flight at a kill
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
BLOG = "https://blog.example/"


@pytest.fixture(scope="module")
def sinks(blog_public_pem: bytes) -> Iterator[list[InboxSink]]:
    servers = [InboxSink(blog_public_pem, host=h) for h in HOSTS]
    for server in servers:
        server.__enter__()
        server.delay = 0.005
    try:
        yield servers
    finally:
        for server in servers:
            server.__exit__()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FEDIPRESS_PRIVATE_KEY"}
    env["CI"] = "1"
    return env


def _publish(config: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fedipress.cli", "publish", "--config", config, "--no-build",
         "--allow-private-addresses", "--backfill", str(POSTS), "--wait", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )


def _kill(proc: subprocess.Popen[str], mode: str, rng: random.Random,
          received: Callable[[], int]) -> None:
    if mode == "after-plan":
        assert proc.stdout is not None
        for line in proc.stdout:  # the line is printed right after the plan commits
            if line.startswith("queued"):
                break
    elif mode == "mid-delivery":
        target = rng.randint(1, POSTS * PER_SINK * len(HOSTS) - 1)
        deadline = time.monotonic() + 20
        while received() < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
    else:
        time.sleep(rng.uniform(0.0, 1.5))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # reap it: a zombie still looks alive to the lease recovery


@pytest.mark.slow
@pytest.mark.timeout(60 + RUNS * 30)
def test_sigkill_publish_then_rerun_delivers_everything(
    tmp_path: Path, sinks: list[InboxSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    rng = random.Random(int(os.environ.get("FEDIPRESS_KILL_SEED", str(time.time_ns()))))
    modes = ["after-plan", "mid-delivery", "random-time"]
    for run in range(RUNS):
        mode = modes[run % len(modes)]
        blog = make_blog(tmp_path / f"run{run}")
        for i in range(POSTS):
            blog.post(f"p{i}", f"Post {i} of run {run}.", age=timedelta(hours=POSTS - i))
        prefix = f"/r{run}"
        blog.follow(*[
            Follower(actor_id=s.url(f"{prefix}/u{j}"), inbox=s.url(f"{prefix}/u{j}/inbox"),
                     shared_inbox=None, handle=None, name=None, followed_at=datetime.now(UTC))
            for s in sinks for j in range(PER_SINK)
        ])
        assert main(["build", "--config", blog.config, "--quiet"]) == 0

        def posts(prefix: str = prefix) -> list[tuple[str, str]]:
            return [(s.url(p.path), p.activity_id) for s in sinks for p in list(s.posts)
                    if p.path.startswith(prefix + "/")]

        proc = _publish(blog.config)
        _kill(proc, mode, rng, lambda: len(posts()))
        db = blog.root / ".fedipress" / "state.db"
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        in_flight_at_kill = len(posts())

        rerun = _publish(blog.config)
        out, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, (mode, out, err)
        time.sleep(0.05)  # let the servers finish recording the last answers

        received = Counter(posts())
        expected_ids = {f"{BLOG}posts/p{i}/object.json#create" for i in range(POSTS)}
        assert {a for _, a in received} == expected_ids, (mode, run)
        inboxes = {s.url(f"{prefix}/u{j}/inbox") for s in sinks for j in range(PER_SINK)}
        for path in inboxes:
            for activity in expected_ids:
                assert received[(path, activity)] >= 1, (mode, run, path, activity)
        duplicates = sum(n - 1 for n in received.values())
        assert duplicates <= CONCURRENCY, (mode, run, duplicates, in_flight_at_kill)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT COUNT(*) FROM activities").fetchone()[0] == POSTS
            states = dict(conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
        assert states == {"delivered": POSTS * PER_SINK * len(HOSTS)}, (mode, run, states)
