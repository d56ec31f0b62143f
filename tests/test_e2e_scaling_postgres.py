"""Issue 15, end to end: two `fedipress inbox` processes and two `fedipress worker` processes
on one PostgreSQL store, and an independent ActivityPub implementation (the Fedify peer).

The peer follows the blog through one inbox process and receives exactly one Accept; a
publish reaches it exactly once, although four processes (and publish itself) deliver from
the one queue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fedipress.store import open_store
from support.e2e_helpers import Blog, write_post
from support.interop_peer import free_port, require_harness, start_peer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

WAIT = 30.0
QUIET = 3.0  # after the first copy arrives, how long a second one is waited for


def _spawn(blog: Blog, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fedipress.cli", *args, "--base-url", blog.base,
             "--allow-private-addresses"],
            cwd=blog.root, env=blog_env(blog), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)


def blog_env(blog: Blog) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"FEDIPRESS_PRIVATE_KEY", "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"}}
    return env | {"PYTHONUNBUFFERED": "1"} | blog.env


@pytest.fixture
def processes(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Blog, list[Path]]]:
    require_harness()
    blog = Blog.create(tmp_path)
    blog.env["CI"] = ""
    blog.env["FEDIPRESS_DATABASE_URL"] = postgres_url
    blog.fedipress("build", "--quiet")
    first = blog.fedipress("publish", "--allow-private-addresses", "--wait", "5",
                           "--first-publish")
    assert re.search(r"^sent 0, retrying 0, failed 0$", first.stdout, re.M), first.stdout
    blog.start_inbox()  # inbox A: the blog's public address
    port_b = free_port()
    logs = [tmp_path / "inbox-b.log", tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    others = [
        _spawn(blog, logs[0], "inbox", "--port", str(port_b), "--site", "public"),
        _spawn(blog, logs[1], "worker"),
        _spawn(blog, logs[2], "worker"),
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            assert all(p.poll() is None for p in others), [log.read_text() for log in logs]
            try:
                if httpx.get(f"http://127.0.0.1:{port_b}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, logs[0].read_text()
            time.sleep(0.1)
        yield blog, logs
    finally:
        for proc in others:
            proc.terminate()
        for proc in others:
            proc.wait(30)
        blog.stop_inbox()
    for log in logs:
        assert "Traceback" not in log.read_text(), log.read_text()


def test_one_accept_and_one_create_with_four_processes_on_postgresql(
    processes: tuple[Blog, list[Path]], tmp_path: Path, postgres_url: str
) -> None:
    blog, logs = processes
    with start_peer(tmp_path) as peer:
        follow_id = str(peer.follow(blog.handle)["id"])
        peer.wait_for(lambda a: a.get("type") == "Accept" and a.get("verified") is True
                      and a.get("matched_follow_id") == follow_id, timeout=WAIT)
        time.sleep(QUIET)
        accepts = [a for a in peer.received() if a.get("type") == "Accept"]
        assert len(accepts) == 1, accepts

        write_post(blog.root, "scaled.md", "Scaled", "Sent once by four processes.",
                   slug="scaled")
        blog.fedipress("build", "--quiet")
        blog.fedipress("publish", "--allow-private-addresses", "--wait", "20")
        create = peer.wait_for(lambda a: a.get("type") == "Create"
                               and "scaled" in str(a.get("object_id")), timeout=WAIT)
        assert create["verified"] is True
        time.sleep(QUIET)
        creates = [a for a in peer.received() if a.get("type") == "Create"]
        assert len(creates) == 1, creates
        assert all(a.get("verified") is True for a in peer.received())

    store = open_store(postgres_url)
    try:
        assert store.count_followers() == 1
        counts = store.delivery_counts()
        assert counts["delivered"] == 2 and counts["pending"] == counts["in_flight"] == 0
    finally:
        store.close()
    assert not (blog.root / ".fedipress" / "state.db").exists()
