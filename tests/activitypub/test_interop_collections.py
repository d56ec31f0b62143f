"""Issue 14: a post's embedded collections, as an independent implementation reads them.

A blog with a conversation in its store (likes, boosts and more replies than fit on a page) is
built and served by `fedipress serve`; Fedify (tests/interop/peer.mjs) looks its post up and
reports the `replies`, `likes` and `shares` it parsed: their types, their totalItems, the first
page of reply ids and where the next page is, which Fedify then fetches as a page of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fedipress.activitypub.documents import THREAD_PAGE_SIZE
from fedipress.store import Interaction, LedgerEntry, open_store
from support.interop_peer import free_port, lookup, require_harness

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
REPLIES = THREAD_PAGE_SIZE + 3
WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _fedipress(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedipress.cli", *args]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_harness()
    root = tmp_path_factory.mktemp("conversation") / "blog"
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    (root / "content" / "posts").mkdir(parents=True)
    (root / "site.yaml").write_text(
        f"title: Talk\nbase_url: {base}\nauthor:\n  name: T\n  handle: tester\n"
        "fediverse:\n  quotes: followers\n")
    (root / "content" / "posts" / "2026-04-01-talk.md").write_text(
        "---\ntitle: Talk\n---\nLet us talk.\n")
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    oid = base + "posts/talk/object.json"
    store = open_store(root / ".fedipress" / "state.db")
    try:
        store.plan_publication([], [], [LedgerEntry(oid, "h", WHEN, WHEN, "live", None)], WHEN)
        for n in range(REPLIES):
            actor = f"https://social.example/users/u{n}"
            store.add_interaction(Interaction(
                f"{actor}/create/1", "reply", actor, oid, WHEN.replace(minute=n), WHEN,
                content_html="<p>hi</p>", reply_object_id=f"https://social.example/notes/{n:02d}"))
        for n in range(4):
            actor = f"https://fans.example/u/{n}"
            store.add_interaction(Interaction(f"{actor}/like", "like", actor, oid, WHEN, WHEN))
        store.add_interaction(Interaction("https://fans.example/u/0/boost", "announce",
                                          "https://fans.example/u/0", oid, WHEN, WHEN))
        # Kept for the author only: never counted or listed.
        store.add_interaction(Interaction("https://fans.example/u/9/like", "like",
                                          "https://fans.example/u/9", oid, WHEN, WHEN,
                                          visibility="followers"))
        store.add_interaction(Interaction(
            "https://fans.example/u/9/create", "reply", "https://fans.example/u/9", oid, WHEN,
            WHEN, content_html="<p>psst</p>", reply_object_id="https://fans.example/n/secret",
            visibility="direct"))
    finally:
        store.close()
    built = subprocess.run(_fedipress("build", "--quiet"), cwd=root, capture_output=True,
                           text=True, timeout=60, check=False)
    assert built.returncode == 0, built.stderr
    log = (root.parent / "serve.log").open("wb")
    process = subprocess.Popen(_fedipress("serve", "--port", str(port), "--no-reload"),
                               cwd=root, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "fedipress serve exited"
            try:
                if httpx.get(oid, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "fedipress serve did not answer"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_fedify_reads_the_counts_and_the_first_page_of_replies(served: str) -> None:
    result = lookup(served + "posts/talk/object.json")
    assert result["ok"], result
    post = result["object"]
    assert post["likes"]["total_items"] == 4  # the followers-only like is not counted
    assert post["shares"]["total_items"] == 1
    assert post["likes"]["id"] == served + "posts/talk/likes.json"
    replies = post["replies"]
    assert replies["type"] == "OrderedCollection" and replies["total_items"] == REPLIES
    assert replies["first_items"] == [f"https://social.example/notes/{n:02d}"
                                      for n in range(THREAD_PAGE_SIZE)]
    assert replies["first_next"] == served + "posts/talk/replies/page-2.json"
    assert post["contexts"] == [served + "posts/talk/context.json"]


def test_fedify_reads_the_next_page_of_replies(served: str) -> None:
    result = lookup(served + "posts/talk/replies/page-2.json")
    assert result["ok"], result
    page = result["object"]
    assert page["type"] == "OrderedCollectionPage"
    assert page["id"] == served + "posts/talk/replies/page-2.json"
