"""`--dry-run` changes nothing: every file of the blog folder (public/, .fedipress/ with its
database, caches and key, the sources) hashes the same before and after, for every command
that has the option, including right after a preview build for another base URL.

Real processes (`python -m fedipress.cli`), a real SQLite store, the real fixture key pair.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.cli import build_parser
from fedipress.store import Follower, open_store
from support.dryrun import run_without_base_url, tree_hashes
from support.e2e_helpers import Blog, write_post

# Each command that has --dry-run, and how the tests below run it.
DRY_RUNS: dict[str, tuple[str, ...]] = {
    "publish": ("publish", "--dry-run"),
}


def _options(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
             ) -> dict[tuple[str, ...], set[str]]:
    """Every (sub)command's option strings, by command path."""
    found: dict[tuple[str, ...], set[str]] = {prefix: set()}
    for action in parser._actions:
        found[prefix] |= set(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_options(sub, (*prefix, name)))
    return found


def test_every_dry_run_option_is_covered_here() -> None:
    having = {" ".join(path) for path, opts in _options(build_parser()).items()
              if "--dry-run" in opts}
    assert having == set(DRY_RUNS), "a command gained --dry-run: add it to DRY_RUNS"


def seed_store(blog: Blog, *, ledger: bool) -> None:
    """A follower (the inbox has run here) and, with `ledger`, a first publish recorded."""
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        store.upsert_followers([Follower(
            actor_id="http://127.0.0.1:9/users/bob", inbox="http://127.0.0.1:9/users/bob/inbox",
            shared_inbox=None, handle="bob@127.0.0.1", name="bob",
            followed_at=datetime.now(UTC))])
    finally:
        store.close()
    if ledger:
        blog.fedipress("publish", "--wait", "0", "--allow-private-addresses")


@pytest.fixture
def blog(tmp_path: Path) -> Blog:
    made = Blog.create(tmp_path)
    made.env["CI"] = ""  # a workstation, whatever the test runner's environment says
    return made


@pytest.mark.parametrize("command", sorted(DRY_RUNS))
def test_dry_run_after_a_preview_build_changes_nothing(blog: Blog, command: str) -> None:
    seed_store(blog, ledger=True)
    write_post(blog.root, "2026-12-01-new.md", "Brand new", "Not announced yet.", slug="new")
    # The preview build (blog.fedipress passes --base-url http://127.0.0.1:PORT/).
    blog.fedipress("build")
    served = json.loads((blog.root / "public" / "actor.json").read_text())
    assert served["id"] == blog.actor_id
    before = tree_hashes(blog.root)

    # Without --base-url: site.yaml says https://blog.example/, the built site another address.
    result = run_without_base_url(blog, DRY_RUNS[command])
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert blog.actor_id in line and "https://blog.example/actor.json" in line
    assert "fedipress build" in line and f"--base-url {blog.base}" in line
    assert tree_hashes(blog.root) == before

    # With the built site's address it plans, from the content as it is, and still writes nothing.
    planned = blog.fedipress(*DRY_RUNS[command])
    assert "Create" in planned.stdout and "/posts/new/object.json" in planned.stdout
    assert "-> http://127.0.0.1:9/users/bob/inbox" in planned.stdout
    assert "dry run: nothing stored or sent" in planned.stdout
    assert tree_hashes(blog.root) == before
    assert json.loads((blog.root / "public" / "actor.json").read_text()) == served


def test_dry_run_in_a_fresh_clone_creates_no_state(blog: Blog) -> None:
    """No .fedipress/ at all (the key in the environment, as on a CI runner): the dry run
    plans, says the real publish would stop, and leaves no folder, database or cache."""
    key = (blog.root / ".fedipress" / "private-key.pem").read_text()
    (blog.root / ".fedipress" / "private-key.pem").unlink()
    (blog.root / ".fedipress").rmdir()
    blog.env["FEDIPRESS_PRIVATE_KEY"] = key
    before = tree_hashes(blog.root)
    for ci in ("", "true"):
        blog.env["CI"] = ci
        result = blog.fedipress("publish", "--dry-run")
        assert "record" in result.stdout and "dry run: nothing stored or sent" in result.stdout
        assert "a real publish would stop here" in result.stderr
        assert ("inbox" in result.stderr) if ci else ("--first-publish" in result.stderr)
        assert tree_hashes(blog.root) == before
        assert not (blog.root / ".fedipress").exists()


def test_dry_run_plans_the_content_not_the_last_build(blog: Blog) -> None:
    """The plan is what publish would send now: a post written since the last build shows,
    and an edit shows as an Update, while public/ and the manifest stay the last build's."""
    seed_store(blog, ledger=True)
    before = tree_hashes(blog.root)
    write_post(blog.root, "2026-12-02-later.md", "Later", "Written after the build.",
               slug="later")
    edited = tree_hashes(blog.root)
    assert set(edited) - set(before) == {"content/posts/2026-12-02-later.md"}
    result = blog.fedipress("publish", "--dry-run")
    assert "/posts/later/object.json" in result.stdout
    assert tree_hashes(blog.root) == edited
    # --no-build plans from the last build, which has no such post.
    last = blog.fedipress("publish", "--dry-run", "--no-build")
    assert "/posts/later/" not in last.stdout
    assert "0 activities" in last.stdout
    assert tree_hashes(blog.root) == edited


def test_dry_run_with_no_build_refuses_a_manifest_of_another_address(blog: Blog) -> None:
    seed_store(blog, ledger=True)
    other = blog.fedipress("build", "--base-url", "http://127.0.0.1:1/")  # last --base-url wins
    assert other.returncode == 0
    before = tree_hashes(blog.root)
    result = blog.fedipress("publish", "--dry-run", "--no-build", expect=2)
    assert "http://127.0.0.1:1/actor.json" in result.stderr and blog.actor_id in result.stderr
    assert tree_hashes(blog.root) == before


def test_dry_run_leaves_a_database_in_use_alone(blog: Blog) -> None:
    """With the store open elsewhere (its -wal and -shm files present, as while the inbox
    runs) the dry run reads it without writing to it either."""
    seed_store(blog, ledger=True)
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        store.upsert_followers([Follower(
            actor_id="http://127.0.0.1:9/users/carol",
            inbox="http://127.0.0.1:9/users/carol/inbox", shared_inbox=None,
            handle="carol@127.0.0.1", name="carol",
            followed_at=datetime.now(UTC) - timedelta(minutes=1))])
        write_post(blog.root, "2026-12-03-third.md", "Third", "Third post.", slug="third")
        # state.db-shm is SQLite's shared-memory index, which every reader updates (its read
        # marks) while the database is open; the database and its log must not change.
        shm = ".fedipress/state.db-shm"
        before = tree_hashes(blog.root)
        assert shm in before and ".fedipress/state.db-wal" in before
        result = blog.fedipress("publish", "--dry-run")
        assert "-> http://127.0.0.1:9/users/carol/inbox" in result.stdout
        after = tree_hashes(blog.root)
        assert {k: v for k, v in after.items() if k != shm} == \
            {k: v for k, v in before.items() if k != shm}
    finally:
        store.close()
