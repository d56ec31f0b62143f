"""`fedipress leave`, `fediverse.paused` and `fediverse.enabled: false` at publish time.

Real processes, a real SQLite store, the fixture key pair and a real loopback inbox sink that
verifies every signature twice (our verifier and `cryptography` alone).
"""

from __future__ import annotations

import builtins
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fedipress.activitypub.documents import PUBLIC
from fedipress.cli import main
from fedipress.store import Follower, open_store
from support.dryrun import tree_hashes
from support.e2e_helpers import Blog, write_post
from support.inbox_sink import InboxSink
from support.service import Service, clean_env, start_service


def _follower(sink: InboxSink, name: str, shared: str | None = None) -> Follower:
    return Follower(
        actor_id=sink.url(f"/users/{name}"), inbox=sink.url(f"/users/{name}/inbox"),
        shared_inbox=sink.url(shared) if shared else None, handle=f"{name}@127.0.0.1",
        name=name, followed_at=datetime.now(UTC))


def add_followers(blog: Blog, sink: InboxSink) -> None:
    """Four followers on three inboxes: carol and dave share one server's shared inbox."""
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        store.upsert_followers([
            _follower(sink, "bob"), _follower(sink, "carol", "/shared/inbox"),
            _follower(sink, "dave", "/shared/inbox"), _follower(sink, "erin")])
    finally:
        store.close()


def follower_count(blog: Blog) -> int:
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        return store.count_followers(None)
    finally:
        store.close()


def set_fediverse(blog: Blog, line: str) -> None:
    # The fixture's site.yaml ends with its fediverse: section.
    config = blog.root / "site.yaml"
    config.write_text(config.read_text(encoding="utf-8") + f"  {line}\n", encoding="utf-8")


def leave_args(blog: Blog, *extra: str) -> tuple[str, ...]:
    return ("--base-url", blog.base, "--allow-private-addresses", "--wait", "20", *extra)


def test_leave_sends_one_signed_delete_of_the_actor_per_inbox(blog: Blog, sink: InboxSink
                                                               ) -> None:
    add_followers(blog, sink)
    result = blog.fedipress("leave", *leave_args(blog, "--yes"))
    paths = sorted(post.path for post in sink.posts)
    assert paths == ["/shared/inbox", "/users/bob/inbox", "/users/erin/inbox"], paths
    for post in sink.posts:
        assert post.status == 202 or post.status == 200
        assert post.verified_ours and post.verified_independent, post.path
        body = json.loads(post.body)
        assert body["type"] == "Delete"
        assert body["actor"] == blog.actor_id
        assert body["object"] == blog.actor_id
        assert body["to"] == [PUBLIC]
        assert body["id"] == blog.actor_id + "#delete"
    assert "queued the Delete" in result.stdout and "3 inboxes" in result.stdout
    assert "forgot 4 followers" in result.stdout
    assert "sent 3, retrying 0, failed 0" in result.stdout
    assert "fediverse.enabled: false" in result.stdout
    # A fresh start: nobody follows any more, so nothing later reaches those servers.
    assert follower_count(blog) == 0

    # Again: the Delete is already queued and delivered; no inbox hears it twice.
    again = blog.fedipress("leave", *leave_args(blog, "--yes"))
    assert len(sink.posts) == 3
    assert "earlier `leave`" in again.stdout


def test_leave_retries_through_the_queue(blog: Blog, sink: InboxSink) -> None:
    add_followers(blog, sink)
    sink.script("/users/bob/inbox", [503, 202])
    blog.fedipress("leave", *leave_args(blog, "--yes"))
    bob = sink.posts_to("/users/bob/inbox")
    assert [p.status for p in bob] == [503, 202]
    assert bob[0].body == bob[1].body  # the same activity, byte for byte


def test_leave_under_ci_without_yes_refuses_and_sends_nothing(blog: Blog, sink: InboxSink
                                                               ) -> None:
    add_followers(blog, sink)
    blog.env["CI"] = "true"
    before = tree_hashes(blog.root)
    refused = blog.fedipress("leave", *leave_args(blog), expect=2)
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "under CI" in line and "--yes" in line
    assert sink.posts == []
    assert follower_count(blog) == 4
    assert tree_hashes(blog.root) == before


def test_leave_without_a_terminal_refuses(blog: Blog, sink: InboxSink) -> None:
    add_followers(blog, sink)
    refused = blog.fedipress("leave", *leave_args(blog), expect=2)
    assert "on a terminal" in refused.stderr and "--yes" in refused.stderr
    assert sink.posts == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _leave_in_process(blog: Blog, monkeypatch: pytest.MonkeyPatch, typed: str,
                      capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.chdir(blog.root)
    monkeypatch.setenv("CI", "")
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(builtins, "input", lambda prompt="": typed)
    code = main(["leave", *leave_args(blog)])
    return code, capsys.readouterr().err


def test_leave_on_a_terminal_needs_the_handle_typed(
        blog: Blog, sink: InboxSink, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    add_followers(blog, sink)
    code, err = _leave_in_process(blog, monkeypatch, "yes", capsys)
    assert code == 2 and "not typed as shown" in err
    assert "fresh start" in err  # the prompt says what coming back means
    assert sink.posts == [] and follower_count(blog) == 4

    code, err = _leave_in_process(blog, monkeypatch, f"@{blog.handle}", capsys)
    assert code == 0, err
    assert len(sink.posts) == 3 and follower_count(blog) == 0


def test_leave_without_a_store_refuses(tmp_path: Path) -> None:
    blog = Blog.create(tmp_path)
    refused = blog.fedipress("leave", *leave_args(blog, "--yes"), expect=2)
    assert "state.db does not exist" in refused.stderr
    assert "where `fedipress inbox` runs" in refused.stderr


def test_leave_help_says_coming_back_is_a_fresh_start(blog: Blog) -> None:
    text = " ".join(blog.fedipress("leave", "--help").stdout.split())
    assert "fresh start" in text and "Delete" in text


def test_paused_publish_plans_nothing_until_unpaused(blog: Blog, sink: InboxSink) -> None:
    add_followers(blog, sink)
    blog.fedipress("publish", "--allow-private-addresses", "--first-publish", "--wait", "5")
    assert sink.posts == []  # existing posts recorded as announced, not sent
    write_post(blog.root, "2020-01-05-paused.md", "Written while paused", "Hello.",
               slug="written-while-paused")
    set_fediverse(blog, "paused: true")
    db = blog.root / ".fedipress" / "state.db"
    before = db.read_bytes()
    paused = blog.fedipress("publish", "--allow-private-addresses", "--wait", "5")
    assert paused.stdout.strip().splitlines() == [
        line for line in paused.stdout.strip().splitlines() if "paused" in line]
    assert "nothing new announced" in paused.stdout
    assert sink.posts == []
    assert db.read_bytes() == before  # nothing planned, nothing queued
    # The documents are still built and served while paused.
    blog.fedipress("build")
    assert (blog.root / "public" / "actor.json").is_file()

    config = blog.root / "site.yaml"
    config.write_text(config.read_text().replace("  paused: true\n", ""), encoding="utf-8")
    blog.fedipress("publish", "--allow-private-addresses", "--wait", "10")
    kinds = {json.loads(p.body)["type"] for p in sink.posts}
    assert kinds == {"Create"} and len(sink.posts) == 3


def test_publish_with_fediverse_disabled_refuses_in_one_line(blog: Blog, sink: InboxSink
                                                             ) -> None:
    add_followers(blog, sink)
    set_fediverse(blog, "enabled: false")
    refused = blog.fedipress("publish", "--allow-private-addresses", "--first-publish",
                             expect=2)
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "fediverse.enabled is false" in line and "fedipress leave" in line
    assert sink.posts == []


def test_paused_and_disabled_together_is_a_config_error(blog: Blog) -> None:
    set_fediverse(blog, "enabled: false")
    set_fediverse(blog, "paused: true")
    refused = blog.fedipress("build", expect=2)
    assert "site.yaml:" in refused.stderr and "fediverse.paused" in refused.stderr


def test_the_inbox_service_of_a_blog_that_left_answers_410(blog: Blog) -> None:
    """`fedipress inbox --site` serves the blog on one machine: after leaving it takes no
    follow and WebFinger finds nobody, as the generated host configurations answer."""
    set_fediverse(blog, "enabled: false")
    blog.fedipress("build")
    blog.start_inbox()
    try:
        with httpx.Client(timeout=10) as client:
            posted = client.post(blog.base + "inbox", content=b'{"type": "Follow"}',
                                 headers={"Content-Type": "application/activity+json"})
            assert posted.status_code == 410
            finger = client.get(blog.base + ".well-known/webfinger",
                                params={"resource": f"acct:{blog.handle}"})
            assert finger.status_code == 410
            assert client.get(blog.base).status_code == 200  # the pages stay
    finally:
        blog.stop_inbox()
    assert follower_count(blog) == 0
    assert "answered 410 Gone" in blog.inbox_output()


# --- through the blog's service ----------------------------------------------------------------


def _service_leave(service: Service, *args: str, env: dict[str, str] | None = None,
                   token: str | None = None) -> subprocess.CompletedProcess[str]:
    """`fedipress leave` where CI runs it: no store, no key, the service's address and owner
    token in the environment (plus the opt-in to loopback addresses a test needs)."""
    run = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "leave", "--wait", "20", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
        cwd=service.root.parent,
        env=clean_env(CI="true", FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1", **(env if env is not None
                      else {"FEDIPRESS_SERVICE_URL": service.base,
                            "FEDIPRESS_SERVICE_TOKEN": token or service.token})))
    assert "Traceback" not in run.stderr, run.stderr
    assert service.token not in run.stdout + run.stderr
    return run


def _service_followers(service: Service) -> int:
    answer = httpx.get(service.api("/followers"), headers=service.auth(), timeout=10)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["count"])


@pytest.fixture
def service(tmp_path: Path, sink: InboxSink) -> Iterator[Service]:
    """The blog's service on loopback with four followers on three of the sink's inboxes."""
    running = start_service(tmp_path / "home", followers=[
        _follower(sink, "bob"), _follower(sink, "carol", "/shared/inbox"),
        _follower(sink, "dave", "/shared/inbox"), _follower(sink, "erin")])
    try:
        yield running
    finally:
        log = running.stop()
        assert "Traceback" not in log, log
        assert running.token not in log


def test_leave_through_the_service_sends_the_delete_from_its_queue(
        service: Service, sink: InboxSink) -> None:
    # Under CI without --yes: refused in one line before the service is even asked.
    refused = _service_leave(service)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "fedipress: error: `fedipress leave` deletes the blog's fediverse account and asks"
        " for confirmation; under CI nothing can answer: pass --yes if you mean it"]
    # No token, or a wrong one (401): one line, nothing changes.
    no_token = _service_leave(service, "--yes", env={"FEDIPRESS_SERVICE_URL": service.base})
    assert no_token.returncode == 2
    assert no_token.stderr.strip().splitlines() == [
        f"fedipress: error: leaving through {service.base} needs the owner token in"
        " FEDIPRESS_SERVICE_TOKEN (the value the service was started with)"]
    wrong = _service_leave(service, "--yes", token="w" * 64)
    assert wrong.returncode == 2 and "refused the owner token" in wrong.stderr, wrong.stderr
    assert "w" * 64 not in wrong.stdout + wrong.stderr
    # A POST that does not name the blog's handle is refused as well.
    unconfirmed = httpx.post(service.api("/leave"), json={"confirm": "someone@else"},
                             headers=service.auth(), timeout=10)
    assert unconfirmed.status_code == 422 and "handle" in unconfirmed.json()["error"]
    time.sleep(0.5)
    assert sink.posts == [] and _service_followers(service) == 4

    done = _service_leave(service, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    actor = service.base + "actor.json"
    lines = done.stdout.splitlines()
    assert lines[0] == (f"{service.base}: queued the Delete of {actor} for 3 inboxes;"
                        " forgot 4 followers"), done.stdout
    assert lines[1] == f"{service.base}: sent 3, retrying 0, failed 0", done.stdout
    assert "fediverse.enabled: false" in lines[-1]
    # One signed Delete of the actor per inbox (the shared inbox once), from the service.
    assert sorted(p.path for p in sink.posts) == [
        "/shared/inbox", "/users/bob/inbox", "/users/erin/inbox"]
    for post in sink.posts:
        assert post.verified_ours and post.verified_independent, post.path
        body = json.loads(post.body)
        assert (body["type"], body["actor"], body["object"]) == ("Delete", actor, actor)
        assert body["to"] == [PUBLIC]
    assert _service_followers(service) == 0
    status = httpx.get(service.api("/leave"), headers=service.auth(), timeout=10).json()
    assert status["queued"] is True and status["pending"] == 0 and status["failed"] == 0

    # Again (a re-run job): nobody hears it twice.
    again = _service_leave(service, "--yes", "--to", service.base,
                           env={"FEDIPRESS_SERVICE_TOKEN": service.token})
    assert again.returncode == 0, again.stderr
    assert "was queued by an earlier `leave`" in again.stdout
    time.sleep(0.5)
    assert len(sink.posts) == 3


def test_leave_through_the_service_asks_on_a_terminal(
        service: Service, sink: InboxSink, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CI", "")
    monkeypatch.setenv("FEDIPRESS_SERVICE_TOKEN", service.token)
    monkeypatch.setenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "1")
    monkeypatch.setattr(sys, "stdin", _Terminal())
    handle = f"tester@{service.base.split('/')[2]}"
    monkeypatch.setattr(builtins, "input", lambda prompt="": "nope")
    assert main(["leave", "--to", service.base, "--wait", "20"]) == 2
    err = capsys.readouterr().err
    # The prompt shows what the service would do: its handle, followers and inboxes.
    assert f"This deletes @{handle} on the fediverse: 4 followers on 3 inboxes" in err
    assert "not typed as shown" in err
    assert sink.posts == [] and _service_followers(service) == 4

    monkeypatch.setattr(builtins, "input", lambda prompt="": handle)
    assert main(["leave", "--to", service.base, "--wait", "20"]) == 0
    assert "sent 3, retrying 0, failed 0" in capsys.readouterr().out
    assert len(sink.posts) == 3 and _service_followers(service) == 0
