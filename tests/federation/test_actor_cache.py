"""The remote actor cache: the store's table and the inbox's use of it, with real signed POSTs
through the inbox app and a real loopback server that counts every actor GET."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.federation.inbox_handlers import ACTOR_MAX_AGE, cached_actor, remote_actor
from fedipress.federation.interactions import block
from fedipress.federation.remote import parse_actor
from fedipress.store import CachedActor, SQLiteStore, applied_migrations, open_store
from fedipress.store.sqlite_actors import MAX_ACTOR_NAME, MAX_ACTOR_URL, MAX_ALSO_KNOWN_AS
from support.inbox import ACTOR, NOW, POST, Env, Remote, actor_doc

URL = "https://social.example/users/alice"


def record(actor_id: str = URL, **changes: Any) -> CachedActor:
    fields: dict[str, Any] = {
        "actor_id": actor_id,
        "type": "Person",
        "inbox": actor_id + "/inbox",
        "shared_inbox": "https://social.example/inbox",
        "preferred_username": "alice",
        "handle": "alice@social.example",
        "name": "Alice",
        "icon_url": "https://social.example/a.png",
        "profile_url": "https://social.example/@alice",
        "also_known_as": ("https://old.example/users/alice",),
        "fetched_at": NOW,
    }
    fields.update(changes)
    return CachedActor(**fields)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = open_store(tmp_path / "state.db")
    yield s
    s.close()


def actor_gets(remote: Remote, name: str = "alice") -> int:
    return len([p for p, _ in remote.gets if p == f"/users/{name}"])


# --- the store -----------------------------------------------------------------------------------


def test_migration_is_named_and_recorded(store: SQLiteStore) -> None:
    assert "0004_actor_cache" in applied_migrations(store._writer)  # noqa: SLF001


def test_put_get_round_trip_and_replace(store: SQLiteStore) -> None:
    assert store.get_actor(URL) is None
    store.put_actor(record())
    assert store.get_actor(URL) == record()
    later = record(name="Alice B", inbox=URL + "/inbox2", fetched_at=NOW + timedelta(hours=1))
    store.put_actor(later)
    assert store.get_actor(URL) == later


def test_fields_are_capped(store: SQLiteStore) -> None:
    long_url = "https://social.example/" + "x" * MAX_ACTOR_URL
    store.put_actor(
        record(
            name="n" * 5000,
            handle="h" * 5000,
            icon_url=long_url,
            shared_inbox=long_url,
            also_known_as=tuple(f"https://old.example/{i}" for i in range(50)) + (long_url,),
        )
    )
    got = store.get_actor(URL)
    assert got is not None
    assert got.name == "n" * MAX_ACTOR_NAME and got.handle == "h" * MAX_ACTOR_NAME
    assert got.icon_url is None and got.shared_inbox is None  # a cut URL would point elsewhere
    assert len(got.also_known_as) == MAX_ALSO_KNOWN_AS and long_url not in got.also_known_as
    # An actor whose id or inbox is over-long is not cached at all.
    store.put_actor(record(long_url))
    store.put_actor(record("https://social.example/bob", inbox=long_url))
    assert store.get_actor(long_url) is None
    assert store.get_actor("https://social.example/bob") is None


def test_delete_remove_actor_and_blocked_domain_purge(store: SQLiteStore) -> None:
    store.put_actor(record())
    assert store.delete_actor(URL) and not store.delete_actor(URL)
    assert store.get_actor(URL) is None
    store.put_actor(record())
    store.remove_actor(URL)  # Delete{actor}, and blocking one actor
    assert store.get_actor(URL) is None
    sub = "https://eu.social.example/users/bob"
    other = "https://notsocial.example/users/carol"
    for actor_id in (URL, sub, other):
        store.put_actor(record(actor_id))
    block(store, "social.example", NOW)
    assert store.get_actor(URL) is None and store.get_actor(sub) is None
    assert store.get_actor(other) is not None


def test_record_conversions_round_trip() -> None:
    doc = {
        "id": URL, "type": "Service", "inbox": URL + "/inbox", "preferredUsername": "alice",
        "name": "Alice", "endpoints": {"sharedInbox": "https://social.example/inbox"},
        "icon": {"url": "https://social.example/a.png"}, "url": "https://social.example/@alice",
        "alsoKnownAs": ["https://old.example/users/alice"],
    }
    parsed = parse_actor(doc, where=URL)
    back = remote_actor(cached_actor(parsed, NOW))
    assert back == parsed  # no keys in either: the key cache keeps those


# --- the inbox -----------------------------------------------------------------------------------


def test_key_fetch_caches_the_actor_and_a_like_makes_no_actor_get(
    env: Env, remote: Remote  # noqa: F811
) -> None:
    assert env.post(env.activity("Like", POST)).status_code == 202
    # The key fetch of alice#main-key fetched her actor document: fetched once, not twice.
    assert actor_gets(remote) == 1
    cached = env.store.get_actor(env.alice)
    assert cached is not None and cached.name == "Alice" and cached.fetched_at == NOW
    remote.gets.clear()
    assert env.post(env.activity("Announce", POST, 2)).status_code == 202
    assert remote.gets == []  # cached key and cached actor: no GET at all
    [boost] = [i for i in env.store.recent_interactions() if i.kind == "announce"]
    assert boost.author_name == "Alice"
    assert boost.author_avatar_url == remote.url("/avatars/alice.png")


def test_cached_key_without_cached_actor_fetches_and_records_it(
    env: Env, remote: Remote  # noqa: F811
) -> None:
    env.post(env.activity("Like", POST))
    env.store.delete_actor(env.alice)
    remote.gets.clear()
    assert env.post(env.activity("Announce", POST, 2)).status_code == 202
    assert actor_gets(remote) == 1
    assert env.store.get_actor(env.alice) is not None
    remote.gets.clear()
    assert env.post(env.activity("Undo", env.activity("Announce", POST, 2), 3)).status_code == 202
    assert env.post(env.activity("Announce", POST, 4)).status_code == 202
    assert remote.gets == []


def test_stale_cache_is_refetched(env: Env, remote: Remote) -> None:  # noqa: F811
    env.post(env.activity("Like", POST))
    stale = NOW - ACTOR_MAX_AGE - timedelta(minutes=1)
    env.store.put_actor(record(env.alice, name="Old Name", fetched_at=stale))
    remote.docs["/users/alice"] = {**actor_doc(remote, "alice"), "name": "New Name"}
    remote.gets.clear()
    assert env.post(env.activity("Announce", POST, 2)).status_code == 202
    assert actor_gets(remote) == 1
    cached = env.store.get_actor(env.alice)
    assert cached is not None and cached.name == "New Name" and cached.fetched_at == NOW
    # Just under the limit counts as fresh.
    env.store.put_actor(record(env.alice, name="Recent", fetched_at=NOW - ACTOR_MAX_AGE / 2))
    remote.gets.clear()
    assert env.post(env.activity("Undo", env.activity("Announce", POST, 2), 3)).status_code == 202
    assert env.post(env.activity("Announce", POST, 4)).status_code == 202
    assert remote.gets == []


def test_stale_cache_is_used_for_a_like_when_the_refetch_fails(
    env: Env, remote: Remote  # noqa: F811
) -> None:
    env.post(env.activity("Follow", ACTOR))  # key cached
    stale = NOW - ACTOR_MAX_AGE * 2
    env.store.put_actor(record(env.alice, name="Cached Alice", fetched_at=stale))
    del remote.docs["/users/alice"]  # 404 now
    assert env.post(env.activity("Like", POST, 2)).status_code == 202
    [like] = env.store.recent_interactions()
    assert like.author_name == "Cached Alice"


def test_follow_uses_a_fresh_cache_and_refetches_a_stale_one(
    env: Env, remote: Remote  # noqa: F811
) -> None:
    env.post(env.activity("Like", POST))  # key and actor cached
    remote.gets.clear()
    assert env.post(env.activity("Follow", ACTOR, 2)).status_code == 202
    assert remote.gets == []
    follower = env.store.get_follower(env.alice)
    assert follower is not None and follower.inbox == env.alice + "/inbox"
    # A day later her inbox moved: the stale cache is not trusted for a Follow.
    stale = NOW - ACTOR_MAX_AGE - timedelta(seconds=1)
    env.store.put_actor(record(env.alice, fetched_at=stale))
    remote.docs["/users/alice"] = actor_doc(remote, "alice", inbox=remote.url("/box/alice"))
    assert env.post(env.activity("Follow", ACTOR, 3)).status_code == 202
    assert actor_gets(remote) == 1
    follower = env.store.get_follower(env.alice)
    assert follower is not None and follower.inbox == remote.url("/box/alice")
    # ... and a stale cache whose refetch fails refuses the Follow (the sender retries).
    env.store.put_actor(record(env.alice, fetched_at=stale))
    del remote.docs["/users/alice"]
    assert env.post(env.activity("Follow", ACTOR, 4)).status_code == 400


def test_update_actor_refreshes_the_cache(env: Env, remote: Remote) -> None:  # noqa: F811
    env.post(env.activity("Like", POST))  # not a follower, but cached
    doc = {**actor_doc(remote, "alice", inbox=remote.url("/new/inbox")), "name": "Renamed"}
    del doc["@context"]
    remote.gets.clear()
    assert env.post(env.activity("Update", doc, 2)).status_code == 202
    assert remote.gets == []  # the signed Update carries the document itself
    cached = env.store.get_actor(env.alice)
    assert cached is not None and cached.name == "Renamed"
    assert cached.inbox == remote.url("/new/inbox")
    # By reference: refetched and recorded.
    remote.docs["/users/alice"] = {**actor_doc(remote, "alice"), "name": "Fetched"}
    assert env.post(env.activity("Update", env.alice, 3)).status_code == 202
    assert actor_gets(remote) == 1
    cached = env.store.get_actor(env.alice)
    assert cached is not None and cached.name == "Fetched"
    [like] = env.store.recent_interactions()
    assert like.author_name == "Alice"  # stored interactions keep what they were stored with


def test_update_of_an_unknown_actor_caches_nothing(env: Env, remote: Remote) -> None:  # noqa: F811
    env.post(env.activity("Add", POST))  # key and actor cached by the key fetch
    env.store.delete_actor(env.alice)
    doc = {**actor_doc(remote, "alice"), "name": "Renamed"}
    assert env.post(env.activity("Update", doc, 2)).status_code == 202
    assert env.store.get_actor(env.alice) is None


def test_delete_actor_purges_the_cache(env: Env, remote: Remote) -> None:  # noqa: F811
    env.post(env.activity("Like", POST))
    assert env.store.get_actor(env.alice) is not None
    assert env.post(env.activity("Delete", env.alice, 2)).status_code == 202
    assert env.store.get_actor(env.alice) is None


def test_move_records_the_target_and_drops_the_old_account(
    env: Env, remote: Remote  # noqa: F811
) -> None:
    env.post(env.activity("Follow", ACTOR))
    new = remote.url("/users/alice2")
    remote.docs["/users/alice2"] = actor_doc(remote, "alice2", alsoKnownAs=[env.alice])
    # A cached copy of the target without the alias must not decide the Move.
    env.store.put_actor(record(new, also_known_as=()))
    move = env.activity("Move", env.alice, 2)
    move["target"] = new
    assert env.post(move).status_code == 202
    assert env.store.get_follower(new) is not None
    target = env.store.get_actor(new)
    assert target is not None and target.also_known_as == (env.alice,)
    assert env.store.get_actor(env.alice) is None


def test_only_the_activitys_own_actor_is_cached_from_a_key_fetch(
    env: Env, remote: Remote  # noqa: F811
) -> None:
    # bob's key signs alice's activity: refused, and bob's document is not cached through it.
    remote.docs["/users/bob"] = actor_doc(remote, "bob")
    response = env.post(env.activity("Like", POST), key_id=remote.url("/users/bob#main-key"))
    assert response.status_code == 401
    assert env.store.get_actor(remote.url("/users/bob")) is None


def test_fetch_key_returns_the_actor_document_it_fetched(remote: Remote) -> None:  # noqa: F811
    import asyncio

    from fedipress.federation.remote import FetchPolicy, RemoteFetcher, RemoteKey

    alice = remote.url("/users/alice")
    doc = actor_doc(remote, "alice")
    separate_key = {**doc["publicKey"], "id": remote.url("/keys/alice")}
    remote.docs["/keys/alice"] = separate_key
    remote.docs["/users/alice"] = {**doc, "publicKey": [doc["publicKey"], separate_key]}

    async def main() -> tuple[RemoteKey, RemoteKey]:
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True), user_agent="t") as f:
            return await f.fetch_key(alice + "#main-key"), await f.fetch_key(
                remote.url("/keys/alice"))

    in_actor, separate = asyncio.run(main())
    assert in_actor.actor is not None and in_actor.actor.id == alice
    assert in_actor.actor.inbox == alice + "/inbox"
    # A key document's owner is fetched to confirm the key: that document comes back too.
    assert separate.actor is not None and separate.actor.id == alice
    # Equality of keys is about the key, not the document that came with it.
    assert in_actor == RemoteKey(in_actor.key_id, in_actor.owner, in_actor.pem)
