"""`fedipress followers` against a real loopback actor (tests/support/inbox_sink.py) and a real
store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.config import load_config
from fedipress.federation.followers import approve_follow_request
from fedipress.store import Follower
from support.delivery import Blog, make_blog
from support.inbox_sink import InboxSink


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Blog:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", raising=False)
    return make_blog(tmp_path / "site")


@pytest.fixture
def sink(remote_public_pem: bytes) -> Iterator[InboxSink]:
    with InboxSink() as server:
        actor = server.url("/users/zoe")
        server.documents["/users/zoe"] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor, "type": "Person", "preferredUsername": "zoe", "name": "Zoe",
            "inbox": actor + "/inbox", "endpoints": {"sharedInbox": server.url("/inbox")},
            "publicKey": {"id": actor + "#main-key", "owner": actor,
                          "publicKeyPem": remote_public_pem.decode()},
        }
        yield server


def run(blog: Blog, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["followers", "--config", blog.config, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_remove(blog: Blog, sink: InboxSink, capsys: pytest.CaptureFixture[str]) -> None:
    actor = sink.url("/users/zoe")
    code, _, err = run(blog, capsys, "add", actor)
    assert code == 2 and "error:" in err  # loopback refused without the opt-in
    code, out, err = run(blog, capsys, "--allow-private-addresses", "add", actor)
    assert code == 0, err
    assert "added" in out
    store = blog.store()
    try:
        follower = store.get_follower(actor)
        assert follower is not None
        assert follower.shared_inbox == sink.url("/inbox") and follower.name == "Zoe"
    finally:
        store.close()
    code, out, _ = run(blog, capsys, "list")
    assert code == 0 and actor in out and "1 follower on 1 server" in out
    code, out, _ = run(blog, capsys, "--json", "list")
    assert json.loads(out.splitlines()[0])["actor"] == actor
    assert run(blog, capsys, "remove", actor)[0] == 0
    code, _, err = run(blog, capsys, "remove", actor)
    assert code == 2 and "not a follower" in err


def _pending(blog: Blog, name: str) -> tuple[str, bytes]:
    actor = f"https://remote.example/users/{name}"
    follow = json.dumps({"id": f"https://remote.example/follows/{name}", "type": "Follow",
                         "actor": actor, "object": "https://blog.example/actor.json"}).encode()
    store = blog.store()
    try:
        store.upsert_follower(
            Follower(actor_id=actor, inbox=actor + "/inbox", shared_inbox=None, handle=None,
                     name=None, followed_at=datetime.now(UTC), state="pending"),
            follow,
        )
    finally:
        store.close()
    return actor, follow


def test_requests_approve_reject(blog: Blog, capsys: pytest.CaptureFixture[str]) -> None:
    amy, amy_follow = _pending(blog, "amy")
    ben, _ = _pending(blog, "ben")
    code, out, _ = run(blog, capsys, "requests")
    assert code == 0 and amy in out and ben in out
    assert run(blog, capsys, "approve", amy)[0] == 0
    assert run(blog, capsys, "reject", ben)[0] == 0
    code, _, err = run(blog, capsys, "approve", ben)
    assert code == 2 and "no pending follow request" in err
    store = blog.store()
    try:
        accepted = store.get_follower(amy)
        assert accepted is not None and accepted.state == "accepted"
        assert store.get_follower(ben) is None
        rows = {r.inbox: r for r in store.list_deliveries(["pending"])}
        assert set(rows) == {amy + "/inbox", ben + "/inbox"}
        accept = store.get_activity(rows[amy + "/inbox"].activity_id)
        assert accept is not None and accept.kind == "Accept"
        body = json.loads(accept.body)
        assert body["object"]["id"] == json.loads(amy_follow)["id"]
        assert body["actor"] == "https://blog.example/actor.json"
        reject = store.get_activity(rows[ben + "/inbox"].activity_id)
        assert reject is not None and json.loads(reject.body)["type"] == "Reject"
        # The library path the inbox service uses: nothing pending, nothing queued.
        config = load_config(Path(blog.config))
        assert approve_follow_request(store, config, amy, now=datetime.now(UTC)) is None
        assert len(store.list_deliveries(["pending"])) == 2
    finally:
        store.close()


def test_group_options_after_the_action(blog: Blog, sink: InboxSink,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # As people type it: the group's options after the action (and its argument).
    actor = sink.url("/users/zoe")
    capsys.readouterr()
    code = main(["followers", "add", actor, "--allow-private-addresses", "--config", blog.config])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "added" in out
    code = main(["followers", "list", "--json", "--config", blog.config])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out.splitlines()[0])["actor"] == actor
    # A flag given before the action is not reset by the action's own parser.
    code = main(["followers", "--json", "--config", blog.config, "list"])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out.splitlines()[0])["actor"] == actor
