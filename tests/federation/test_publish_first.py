"""publish against an empty store (a fresh clone, a CI runner) and against a built site of
another identity: refused with one line saying what to do, nothing written, nothing sent.

Real processes, a real SQLite store, the real fixture key pair, a real loopback inbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.config import load_config
from fedipress.federation.publish import PublishOptions, run_publish
from fedipress.store import Follower, open_store
from fedipress.wording import docs_url
from support.dryrun import run_without_base_url, tree_hashes
from support.e2e_helpers import Blog, write_post
from support.inbox_sink import InboxSink


def fresh_clone(blog: Blog) -> None:
    """No .fedipress/ at all; the key comes from the FEDIPRESS_PRIVATE_KEY secret."""
    key = blog.root / ".fedipress" / "private-key.pem"
    blog.env["FEDIPRESS_PRIVATE_KEY"] = key.read_text()
    key.unlink()
    key.parent.rmdir()


def add_follower(blog: Blog, sink: InboxSink, name: str = "bob") -> None:
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        store.upsert_followers([Follower(
            actor_id=sink.url(f"/users/{name}"), inbox=sink.url(f"/users/{name}/inbox"),
            shared_inbox=None, handle=f"{name}@127.0.0.1", name=name,
            followed_at=datetime.now(UTC))])
    finally:
        store.close()


def test_a_fresh_ci_runner_cannot_publish_into_the_void(blog: Blog) -> None:
    fresh_clone(blog)
    blog.env["CI"] = "true"
    before = tree_hashes(blog.root)
    for extra in ((), ("--first-publish",), ("--backfill", "2")):
        result = blog.fedipress("publish", "--allow-private-addresses", *extra, expect=2)
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1, line
        assert line.startswith("fedipress: error: .fedipress/state.db does not exist")
        assert "no ledger, no followers" in line
        assert "where `fedipress inbox` runs" in line
        # The runner's own way comes first: through the service, with where to read how.
        assert "publish through the blog's service instead" in line
        assert "FEDIPRESS_SERVICE_URL (or pass --to URL)" in line
        assert "FEDIPRESS_SERVICE_TOKEN" in line and docs_url("service") in line
        assert "not supported yet" not in line
        assert "sent" not in result.stdout and "first publish" not in result.stdout
        # Nothing built, no state folder, no database.
        assert tree_hashes(blog.root) == before


def test_an_empty_store_on_a_workstation_needs_first_publish(blog: Blog, sink: InboxSink
                                                            ) -> None:
    before = tree_hashes(blog.root)
    refused = blog.fedipress("publish", "--allow-private-addresses", expect=2)
    assert "--first-publish" in refused.stderr and "no ledger" in refused.stderr
    assert tree_hashes(blog.root) == before
    # Confirmed: the baseline is recorded (the fixture's posts are months old: none is news).
    done = blog.fedipress("publish", "--allow-private-addresses", "--first-publish",
                          "--wait", "1")
    assert "sent 0" in done.stdout
    assert "first publish: 0 new posts announced, 3 older posts recorded" in done.stdout
    # The flag on a store with a ledger is refused rather than ignored.
    again = blog.fedipress("publish", "--allow-private-addresses", "--first-publish",
                           expect=2)
    assert "not the first publish" in again.stderr
    # A later publish needs no flag, announces a new post, and says when a --backfill finds
    # fewer back-dated posts than asked.
    add_follower(blog, sink)
    write_post(blog.root, "2026-12-05-news.md", "News", "Fresh.", slug="news")
    later = blog.fedipress("publish", "--allow-private-addresses", "--backfill", "3",
                           "--wait", "10")
    assert "note: --backfill 3: 0 new back-dated posts to announce" in later.stderr
    assert "first publish" not in later.stdout
    assert "sent 1," in later.stdout
    assert [json.loads(p.body)["type"] for p in sink.posts] == ["Create"]


def test_a_store_with_followers_is_the_blogs_own(blog: Blog, sink: InboxSink) -> None:
    """Followers but no ledger: the inbox ran here, this is the first publish; no flag needed,
    even under CI (the runner keeps the store)."""
    add_follower(blog, sink)
    blog.env["CI"] = "true"
    result = blog.fedipress("publish", "--allow-private-addresses", "--wait", "1")
    assert "sent 0" in result.stdout


def test_help_shows_the_flag_and_its_default(blog: Blog) -> None:
    text = blog.fedipress("publish", "--help").stdout
    flat = " ".join(text.split())
    assert "--first-publish" in flat and "default: refuse an empty store" in flat
    assert "(default 0)" in flat


# --- identity: what publish announces is what followers can fetch ----------------------------


def test_publish_after_a_preview_build_refuses_to_announce_another_address(
        blog: Blog, sink: InboxSink) -> None:
    add_follower(blog, sink)
    blog.fedipress("build")  # for http://127.0.0.1:PORT/
    before = tree_hashes(blog.root)
    result = run_without_base_url(blog, ("publish", "--allow-private-addresses"))
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert f"public/actor.json is the actor {blog.actor_id}" in line
    assert "publish would announce https://blog.example/actor.json" in line
    assert "run `fedipress build`" in line
    assert tree_hashes(blog.root) == before
    assert sink.posts == []
    # The fix the line names works: rebuild for the real address, then publish.
    run_without_base_url(blog, ("build",))
    ok = run_without_base_url(blog, ("publish", "--allow-private-addresses", "--wait", "1"))
    assert ok.returncode == 0, ok.stderr


def test_publish_no_build_refuses_a_build_of_another_address(blog: Blog, sink: InboxSink
                                                            ) -> None:
    add_follower(blog, sink)
    blog.fedipress("build", "--base-url", "http://127.0.0.1:1/")
    result = blog.fedipress("publish", "--no-build", "--allow-private-addresses", expect=2)
    assert "http://127.0.0.1:1/actor.json" in result.stderr
    assert blog.actor_id in result.stderr
    assert "--base-url http://127.0.0.1:1/" in result.stderr
    assert sink.posts == []


def test_publish_no_build_refuses_a_served_key_it_does_not_sign_with(blog: Blog, sink: InboxSink
                                                                    ) -> None:
    add_follower(blog, sink)
    blog.fedipress("build")
    actor_file = blog.root / "public" / "actor.json"
    actor = json.loads(actor_file.read_text())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    actor["publicKey"]["publicKeyPem"] = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    actor_file.write_text(json.dumps(actor))
    result = blog.fedipress("publish", "--no-build", "--allow-private-addresses", expect=2)
    assert "public/actor.json publishes another public key" in result.stderr
    assert "SHA256:" in result.stderr
    assert sink.posts == []
    # A build puts the right key back; then publish goes ahead.
    blog.fedipress("publish", "--allow-private-addresses", "--wait", "1")


def test_run_publish_is_what_the_command_calls(blog: Blog, sink: InboxSink,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The library function behind `fedipress publish`, called in this process with typed
    options: its lines go to the callbacks and the delivery summary comes back."""
    monkeypatch.setenv("CI", "")
    monkeypatch.chdir(blog.root)
    config = load_config(blog.root / "site.yaml", base_url=blog.base)
    add_follower(blog, sink)
    out: list[str] = []
    err: list[str] = []
    dry = run_publish(config, PublishOptions(dry_run=True, first_publish=True, backfill=1,
                                             base_url=blog.base, allow_private=True),
                      out=out.append, err=err.append)
    assert dry.summary is None and dry.exit_code == 0
    assert out[-1] == "dry run: nothing stored or sent" and not sink.posts
    out.clear()
    done = run_publish(config, PublishOptions(first_publish=True, backfill=1, wait=10,
                                              base_url=blog.base, allow_private=True),
                       out=out.append, err=err.append)
    assert done.summary is not None and done.summary.sent == 1 and done.exit_code == 0
    assert out == ["queued 1 delivery for 1 new activity",
                   "first publish: 0 new posts announced, 1 older post announced for --backfill,"
                   " 2 older posts recorded as already published; use --backfill N to"
                   " announce older ones", done.summary.line()]
    assert [json.loads(p.body)["type"] for p in sink.posts] == ["Create"]
