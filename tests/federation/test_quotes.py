"""Quotes (FEP-044f) and count refreshes, through the real inbox with real signed requests.

A remote server on loopback hosts the quoting actors and their posts; the blog's inbox verifies
every request, reads the quoted post's own canQuote, answers with an Accept (whose authorization
it serves at once) or a Reject, and revokes the authorization when the quoting post is deleted
or its author blocked. The count refresh loop turns a burst of likes into at most one Update per
post per interval."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from fedipress.activitypub import documents as d
from fedipress.activitypub.httpsig import sign_cavage
from fedipress.config import load_config
from fedipress.federation.inbox import create_app
from fedipress.federation.publish_plan import plan_changes, queue_plan
from fedipress.federation.quotes import (
    STALE_AFTER,
    CountRefresher,
    authorization_id,
    authorization_routes,
    meaningful_change,
)
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.federation.signing import SigningAuth
from fedipress.model import Site
from fedipress.store import Follower, Interaction, LedgerEntry, open_store
from support.inbox import (
    ACTOR,
    AS2,
    BLOG,
    BLOG_KEY,
    NOW,
    POST,
    POST_PAGE,
    REMOTE_KEY,
    Env,
    Remote,
    actor_doc,
)
from support.service import start_service

T = TypeVar("T")
FOLLOWERS = BLOG + "followers.json"
QUOTE_CONTEXT = ["https://www.w3.org/ns/activitystreams",
                 {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest"}]


# --- the world ----------------------------------------------------------------------------------


def publish_post(env: Env, policy: str = "anyone", *, likes: int = 0) -> None:
    """The manifest the build writes, with the post's document as it publishes it, and the
    ledger entry publish makes (the public conversation is that of announced posts)."""
    doc = {"id": POST, "type": "Note", "url": POST_PAGE,
           "interactionPolicy": d.interaction_policy(policy, ACTOR, FOLLOWERS),  # type: ignore[arg-type]
           "replies": {"id": POST_PAGE + "replies.json", "type": "OrderedCollection",
                       "totalItems": 0},
           "likes": {"id": POST_PAGE + "likes.json", "type": "Collection", "totalItems": likes},
           "shares": {"id": POST_PAGE + "shares.json", "type": "Collection", "totalItems": 0}}
    (env.config.state_dir / "manifest.json").write_text(
        json.dumps({"objects": {POST: {"hash": "x", "published": "2026-04-01T00:00:00Z",
                                       "doc": doc}}}))
    env.store.plan_publication([], [], [LedgerEntry(POST, "x", NOW, NOW, "live", None)], NOW)


def quoting_post(remote: Remote, name: str, n: int = 1, *, to: str = d.PUBLIC,
                 quote: str = POST) -> str:
    actor = remote.url(f"/users/{name}")
    path = f"/users/{name}/statuses/q{n}"
    remote.docs[path] = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": remote.url(path), "type": "Note", "attributedTo": actor,
        "to": [to], "cc": [actor + "/followers"], "content": "<p>Look at this</p>",
        "url": remote.url(f"/@{name}/q{n}"), "published": "2026-05-01T11:30:00Z", "quote": quote,
    }
    return remote.url(path)


def quote_request(actor: str, quoting: str, n: int = 1, target: str = POST) -> dict[str, Any]:
    return {"@context": QUOTE_CONTEXT, "id": f"{actor}/quote_requests/{n}",
            "type": "QuoteRequest", "actor": actor, "object": target, "instrument": quoting}


def with_client(env: Env, fn: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """The inbox app as `fedipress inbox` serves it (its authorization routes included), for
    one session of requests."""
    async def main() -> T:
        auth = SigningAuth.for_actor(ACTOR, BLOG_KEY)
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True), user_agent="test",
                                 auth=auth) as fetcher:
            app = create_app(env.config, env.store, fetcher, clock=env.clock,
                             extra_routes=authorization_routes(env.config, env.store))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4321))
            async with httpx.AsyncClient(transport=transport, base_url=BLOG) as client:
                return await fn(client)

    return asyncio.run(main())


def post_all(env: Env, *activities: dict[str, Any]) -> list[httpx.Response]:
    async def go(client: httpx.AsyncClient) -> list[httpx.Response]:
        out = []
        for activity in activities:
            key_id = str(activity["actor"]) + "#main-key"
            body, headers = env.signed(activity, key_id=key_id)
            out.append(await client.post("/inbox", content=body, headers=headers))
        return out

    return with_client(env, go)


def get(env: Env, url: str) -> httpx.Response:
    async def go(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(url)

    return with_client(env, go)


def queued(env: Env, kind: str) -> list[dict[str, Any]]:
    rows = env.store._all(  # noqa: SLF001
        "SELECT body FROM activities WHERE kind = ? ORDER BY created_at, activity_id", (kind,))
    return [json.loads(bytes(r[0])) for r in rows]


def inboxes_of(env: Env, activity_id: str) -> list[str]:
    rows = env.store._all("SELECT inbox FROM deliveries WHERE activity_id = ?",  # noqa: SLF001
                          (activity_id,))
    return sorted(r[0] for r in rows)


# --- QuoteRequest -------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_an_allowed_quote_is_accepted_with_an_authorization_served_at_once(env: Env) -> None:
    publish_post(env, "anyone")
    quoting = quoting_post(env.remote, "alice")
    [response] = post_all(env, quote_request(env.alice, quoting))
    assert response.status_code == 202, response.text

    [accept] = queued(env, "Accept")
    auth = authorization_id(env.config, quoting)
    assert accept["actor"] == ACTOR and accept["result"] == auth
    # The request by its id: a reader without a QuoteRequest type (Fedify) refuses it embedded.
    assert accept["object"] == env.alice + "/quote_requests/1"
    assert inboxes_of(env, accept["id"]) == [env.alice + "/inbox"]
    assert auth.startswith(BLOG + ".fedipress/quotes/")

    served = get(env, auth)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith(AS2)
    doc = served.json()
    assert {k: doc[k] for k in ("id", "type", "attributedTo", "interactingObject",
                                "interactionTarget")} == {
        "id": auth, "type": "QuoteAuthorization", "attributedTo": ACTOR,
        "interactingObject": quoting, "interactionTarget": POST}
    assert "QuoteAuthorization" in doc["@context"][2]

    # Recorded as a quote: shown as "quoted by", with the quoting post's page as its link.
    [quote] = [i for i in env.store.interactions_for_object(POST) if i.kind == "quote"]
    assert quote.url == env.remote.url("/@alice/q1") and quote.visibility == "public"
    assert quote.actor_id == env.alice and quote.author_name == "Alice"


def test_a_retried_request_gets_the_same_authorization(env: Env) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    post_all(env, quote_request(env.alice, quoting, 1), quote_request(env.alice, quoting, 2))
    accepts = queued(env, "Accept")
    assert len(accepts) == 2 and {a["result"] for a in accepts} == {
        authorization_id(env.config, quoting)}
    assert len([i for i in env.store.interactions_for_object(POST) if i.kind == "quote"]) == 1


@pytest.mark.parametrize(("policy", "follows", "answer"), [
    ("anyone", False, "Accept"),
    ("followers", False, "Reject"),
    ("followers", True, "Accept"),
    ("nobody", False, "Reject"),
    ("nobody", True, "Reject"),
])
def test_the_posts_policy_decides(env: Env, policy: str, follows: bool, answer: str) -> None:
    publish_post(env, policy)
    if follows:
        env.store.upsert_follower(Follower(env.alice, env.alice + "/inbox", None, None, None,
                                           NOW))
    quoting = quoting_post(env.remote, "alice")
    [response] = post_all(env, quote_request(env.alice, quoting))
    assert response.status_code == 202
    other = "Reject" if answer == "Accept" else "Accept"
    assert queued(env, other) == []
    [sent] = queued(env, answer)
    assert sent["object"] == env.alice + "/quote_requests/1"
    assert inboxes_of(env, sent["id"]) == [env.alice + "/inbox"]
    quotes = [i for i in env.store.interactions_for_object(POST) if i.kind == "quote"]
    authorized = get(env, authorization_id(env.config, quoting)).status_code
    if answer == "Accept":
        assert len(quotes) == 1 and authorized == 200
    else:
        assert "result" not in sent and quotes == [] and authorized == 404


def test_a_pending_follower_is_no_follower(env: Env) -> None:
    publish_post(env, "followers")
    env.store.upsert_follower(Follower(env.alice, env.alice + "/inbox", None, None, None, NOW,
                                       state="pending"))
    post_all(env, quote_request(env.alice, quoting_post(env.remote, "alice")))
    assert len(queued(env, "Reject")) == 1 and queued(env, "Accept") == []


def test_a_private_quoting_post_is_approved_but_never_shown(env: Env) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice", to=env.alice + "/followers")
    post_all(env, quote_request(env.alice, quoting))
    assert len(queued(env, "Accept")) == 1
    [quote] = env.store.interactions_for_object(POST)
    assert quote.visibility == "followers"  # kept for the author, not public


@pytest.mark.parametrize("problem", ["other-host", "not-theirs", "quotes-another", "no-instrument"])
def test_requests_that_cannot_be_answered_are_refused(env: Env, problem: str) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    request = quote_request(env.alice, quoting)
    if problem == "other-host":
        request["instrument"] = "https://elsewhere.example/notes/1"
    elif problem == "not-theirs":
        env.remote.docs["/users/alice/statuses/q1"]["attributedTo"] = env.remote.url("/users/eve")
    elif problem == "quotes-another":
        env.remote.docs["/users/alice/statuses/q1"]["quote"] = BLOG + "posts/other/object.json"
    else:
        del request["instrument"]
    [response] = post_all(env, request)
    assert response.status_code == 400
    assert queued(env, "Accept") == [] and queued(env, "Reject") == []
    assert env.count("quote_authorizations") == 0


def test_a_request_for_something_else_is_ignored_and_logged(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    with caplog.at_level("INFO", logger="fedipress.inbox"):
        [response] = post_all(env, quote_request(env.alice, quoting,
                                                 target=BLOG + "posts/nope/object.json"))
    assert response.status_code == 202
    assert queued(env, "Accept") == [] and queued(env, "Reject") == []
    assert "not one of this blog's posts" in caplog.text


def test_unknown_authorizations_are_404(env: Env) -> None:
    for path in ("/.fedipress/quotes/" + "0" * 32, "/.fedipress/quotes/nothex",
                 "/.fedipress/quotes/" + "A" * 32):
        assert get(env, BLOG.rstrip("/") + path).status_code == 404


# --- revocation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_deleting_the_quoting_post_revokes_the_authorization(env: Env) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    post_all(env, quote_request(env.alice, quoting))
    auth = authorization_id(env.config, quoting)
    delete = {"@context": "https://www.w3.org/ns/activitystreams",
              "id": quoting + "#delete", "type": "Delete", "actor": env.alice,
              "object": {"id": quoting, "type": "Tombstone"}}
    [response] = post_all(env, delete)
    assert response.status_code == 202
    [revocation] = queued(env, "Delete")
    assert revocation["object"] == auth and revocation["actor"] == ACTOR
    assert inboxes_of(env, revocation["id"]) == [env.alice + "/inbox"]
    gone = get(env, auth)
    assert gone.status_code == 410
    assert gone.json()["type"] == "Tombstone" and gone.json()["id"] == auth
    assert gone.json()["formerType"] == "QuoteAuthorization"
    assert [i for i in env.store.interactions_for_object(POST) if i.kind == "quote"] == []


def test_someone_elses_delete_revokes_nothing(env: Env, remote: Remote) -> None:
    publish_post(env)
    remote.docs["/users/eve"] = actor_doc(remote, "eve")
    quoting = quoting_post(env.remote, "alice")
    post_all(env, quote_request(env.alice, quoting))
    eve = remote.url("/users/eve")
    post_all(env, {"@context": "https://www.w3.org/ns/activitystreams", "id": eve + "/d/1",
                   "type": "Delete", "actor": eve, "object": quoting})
    assert queued(env, "Delete") == []
    assert get(env, authorization_id(env.config, quoting)).status_code == 200


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_blocking_the_quoter_revokes_its_authorizations(env: Env) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    post_all(env, quote_request(env.alice, quoting))
    refresher = CountRefresher(env.config, env.store, lambda: NOW + timedelta(minutes=1))
    refresher.run_once()
    assert queued(env, "Delete") == []  # nothing to revoke yet
    env.store.add_block(env.alice, NOW)
    refresher.run_once()
    [revocation] = queued(env, "Delete")
    assert revocation["object"] == authorization_id(env.config, quoting)
    assert get(env, revocation["object"]).status_code == 410
    refresher.run_once()
    assert len(queued(env, "Delete")) == 1  # once


def _publish_deleting_the_post(env: Env) -> None:
    """What `fedipress publish` does once the post is gone from the blog: the plan against the
    ledger (a Delete of the post), queued in one transaction."""
    site = Site(config=env.config, posts=(), pages=())
    manifest = {"actor": {"id": ACTOR, "type": "Person", "preferredUsername": "blog"},
                "objects": {}}
    plan = plan_changes(env.store.get_ledger(), manifest, site=site, now=NOW)
    queue_plan(env.store, plan, NOW + timedelta(minutes=5))


def test_deleting_our_post_revokes_its_quote_authorizations(env: Env) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    post_all(env, quote_request(env.alice, quoting))
    auth = authorization_id(env.config, quoting)
    assert get(env, auth).status_code == 200
    _publish_deleting_the_post(env)
    deletes = {str(a["object"] if isinstance(a["object"], str) else a["object"]["id"]): a
               for a in queued(env, "Delete")}
    assert set(deletes) == {POST, auth}  # the post's Delete and the authorization's
    revocation = deletes[auth]
    assert revocation["actor"] == ACTOR
    assert inboxes_of(env, revocation["id"]) == [env.alice + "/inbox"]
    gone = get(env, auth)
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    assert [i for i in env.store.interactions_for_object(POST) if i.kind == "quote"] == []
    _publish_deleting_the_post(env)  # a second publish: nothing more to delete or revoke
    assert len(queued(env, "Delete")) == 2


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_the_revocation_and_the_posts_delete_are_one_transaction(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    publish_post(env)
    quoting = quoting_post(env.remote, "alice")
    post_all(env, quote_request(env.alice, quoting))

    def fail(authorization_id: str, now: datetime) -> bool:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(env.store, "revoke_quote_authorization", fail)
    with pytest.raises(RuntimeError, match="the disk is full"):
        _publish_deleting_the_post(env)
    assert queued(env, "Delete") == []  # the post's Delete was not queued without it
    assert env.store.get_ledger()[POST].state == "live"
    monkeypatch.undo()
    _publish_deleting_the_post(env)
    assert len(queued(env, "Delete")) == 2


# --- count refreshes ----------------------------------------------------------------------------


def _likers(remote: Remote, n: int) -> list[str]:
    actors = []
    for i in range(n):
        name = f"fan{i}"
        remote.docs[f"/users/{name}"] = actor_doc(remote, name)
        actors.append(remote.url(f"/users/{name}"))
    return actors


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_a_burst_of_likes_makes_at_most_one_update_per_interval(env: Env) -> None:
    publish_post(env)
    follower = Follower(env.remote.url("/users/f"), env.remote.url("/users/f/inbox"),
                        env.remote.url("/inbox"), None, None, NOW)
    env.store.upsert_follower(follower)
    fans = _likers(env.remote, 50)
    clock = [NOW]
    refresher = CountRefresher(env.config, env.store, lambda: clock[0])
    assert env.config.fediverse.count_refresh_minutes == 15

    async def burst(client: httpx.AsyncClient) -> None:
        for i, fan in enumerate(fans):
            like = {"@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{fan}/likes/1", "type": "Like", "actor": fan, "object": POST}
            body, headers = env.signed(like, key_id=fan + "#main-key")
            assert (await client.post("/inbox", content=body, headers=headers)).status_code == 202
            clock[0] = NOW + timedelta(seconds=10 * i)  # the loop ticks during the burst
            refresher.run_once()

    with_client(env, burst)
    [first] = queued(env, "Update")
    assert first["object"]["likes"]["totalItems"] == 1  # the first tick saw the first like
    assert first["object"]["id"] == POST
    assert inboxes_of(env, first["id"]) == [env.remote.url("/inbox")]  # shared inbox

    clock[0] = NOW + timedelta(minutes=15, seconds=1)
    refresher.run_once()
    updates = queued(env, "Update")
    assert len(updates) == 2
    assert updates[1]["object"]["likes"]["totalItems"] == 50
    assert updates[1]["object"]["replies"]["totalItems"] == 0
    clock[0] += timedelta(hours=1)
    refresher.run_once()
    assert len(queued(env, "Update")) == 2  # nothing changed since


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_a_refresh_another_service_sent_first_is_not_sent_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services on one store tick at once: both read the counts last announced before
    either recorded its refresh. The one that records second drops its Update."""
    publish_post(env)
    env.store.upsert_follower(Follower("https://f.example/u", "https://f.example/u/inbox", None,
                                       None, None, NOW))
    env.store.add_interaction(_like(env, 1))
    read_before = env.store.announced_counts()  # what the slower service read
    assert CountRefresher(env.config, env.store, lambda: NOW).run_once() == 1
    monkeypatch.setattr(env.store, "announced_counts", lambda: read_before)
    assert CountRefresher(env.config, env.store, lambda: NOW).run_once() == 0
    assert len(queued(env, "Update")) == 1


def _like(env: Env, n: int) -> Interaction:
    actor = f"https://fans.example/u/{n}"
    return Interaction(f"{actor}/like", "like", actor, POST, NOW, NOW)


def test_small_changes_wait_but_are_not_lost(env: Env) -> None:
    publish_post(env, likes=100)
    env.store.upsert_follower(Follower("https://f.example/u", "https://f.example/u/inbox", None,
                                       None, None, NOW))
    for n in range(105):
        env.store.add_interaction(_like(env, n))
    clock = [NOW + timedelta(hours=1)]
    refresher = CountRefresher(env.config, env.store, lambda: clock[0])
    refresher.run_once()
    # 100 -> 105 from what the build published: never refreshed, so sent now.
    assert [u["object"]["likes"]["totalItems"] for u in queued(env, "Update")] == [105]
    env.store.add_interaction(_like(env, 200))
    clock[0] += timedelta(hours=1)
    refresher.run_once()  # 105 -> 106: below a tenth, waits
    assert len(queued(env, "Update")) == 1
    clock[0] += STALE_AFTER
    refresher.run_once()  # ... until it is stale
    assert [u["object"]["likes"]["totalItems"] for u in queued(env, "Update")] == [105, 106]


def test_no_refresh_without_followers_or_when_turned_off(env: Env) -> None:
    publish_post(env)
    env.store.add_interaction(_like(env, 1))
    CountRefresher(env.config, env.store, lambda: NOW).run_once()
    assert queued(env, "Update") == []  # nobody to tell
    env.store.upsert_follower(Follower("https://f.example/u", "https://f.example/u/inbox", None,
                                       None, None, NOW))
    off = replace(env.config, fediverse=replace(env.config.fediverse, count_refresh_minutes=0))
    CountRefresher(off, env.store, lambda: NOW).run_once()
    assert queued(env, "Update") == []
    CountRefresher(env.config, env.store, lambda: NOW).run_once()
    assert len(queued(env, "Update")) == 1


def test_what_counts_as_meaningful() -> None:
    assert meaningful_change((0, 0, 0), (1, 0, 0))  # any reply
    assert meaningful_change((0, 0, 0), (0, 1, 0))
    assert meaningful_change((0, 9, 0), (0, 10, 0))
    assert not meaningful_change((0, 100, 0), (0, 109, 0))
    assert meaningful_change((0, 100, 0), (0, 110, 0))
    assert meaningful_change((0, 100, 0), (0, 90, 0))
    assert not meaningful_change((0, 0, 50), (0, 0, 54))


# --- the real service ---------------------------------------------------------------------------


def _signed_post(base: str, activity: dict[str, Any]) -> httpx.Response:
    body = json.dumps(activity).encode()
    host = base.split("//", 1)[1].rstrip("/")
    headers = {"Content-Type": AS2, "Host": host}
    headers |= sign_cavage("POST", base + "inbox", headers, body,
                           key_id=str(activity["actor"]) + "#main-key", private_key=REMOTE_KEY,
                           now=datetime.now(UTC))
    return httpx.post(base + "inbox", content=body, headers=headers, timeout=30)


def _received(remote: Remote, kind: str, deadline: float = 20.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        for path, _headers, body in list(remote.posts):
            doc = json.loads(body)
            if path == "/users/alice/inbox" and doc.get("type") == kind:
                return dict(doc)
        assert time.monotonic() < end, f"no {kind} delivered; got {remote.posts}"
        time.sleep(0.1)


def test_the_service_answers_serves_and_revokes(tmp_path: Path, remote: Remote) -> None:
    """`fedipress inbox` on loopback: a signed QuoteRequest gets a delivered, signed Accept
    whose authorization the service serves at once; deleting the quoting post delivers the
    Delete of the authorization, which then answers 410 Gone."""
    service = start_service(tmp_path / "home", posts=("first",))
    try:
        target = service.base + "posts/first/object.json"
        obj = httpx.get(target).json()
        assert obj["interactionPolicy"]["canQuote"] == {"automaticApproval": [d.PUBLIC]}
        assert obj["likes"]["totalItems"] == 0 and obj["replies"]["type"] == "OrderedCollection"
        alice = remote.url("/users/alice")
        quoting = quoting_post(remote, "alice", quote=target)
        response = _signed_post(service.base, quote_request(alice, quoting, target=target))
        assert response.status_code == 202, response.text
        accept = _received(remote, "Accept")
        assert accept["object"] == alice + "/quote_requests/1"
        served = httpx.get(accept["result"])
        assert served.status_code == 200 and served.headers["content-type"].startswith(AS2)
        assert served.json()["interactionTarget"] == target
        assert served.json()["interactingObject"] == quoting
        assert accept["result"].startswith(service.base + ".fedipress/quotes/")

        delete = {"@context": "https://www.w3.org/ns/activitystreams", "id": quoting + "#del",
                  "type": "Delete", "actor": alice, "object": quoting}
        assert _signed_post(service.base, delete).status_code == 202
        revocation = _received(remote, "Delete")
        assert revocation["object"] == accept["result"]
        assert httpx.get(accept["result"]).status_code == 410
    finally:
        log = service.stop()
    assert "Traceback" not in log
    store = open_store(tmp_path / "home" / ".fedipress" / "state.db")
    try:
        assert store.delivery_counts().get("delivered") == 2
        # A count refresh takes the post's full document from the build's sharded manifest.
        now = datetime.now(UTC)
        store.plan_publication([], [], [LedgerEntry(target, "h", now, now, "live", None)], now)
        store.upsert_follower(Follower(alice, alice + "/inbox", None, None, None, now))
        store.add_interaction(Interaction(alice + "/like", "like", alice, target, now, now))
        config = load_config(tmp_path / "home" / "site.yaml")
        assert CountRefresher(config, store, lambda: now).run_once() == 1
        [update] = [json.loads(bytes(r[0])) for r in store._all(  # noqa: SLF001
            "SELECT body FROM activities WHERE kind = 'Update'")]
        assert update["object"]["likes"]["totalItems"] == 1
        assert update["object"]["content"] == obj["content"]
        assert update["object"]["interactionPolicy"] == obj["interactionPolicy"]
    finally:
        store.close()
