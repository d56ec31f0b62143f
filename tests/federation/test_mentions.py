"""Mentions: the pure document rewrite (checked against documents.object_document), the mention
cache in a real SQLite store, the read-only build snapshot, and resolution through WebFinger
against a real loopback server (`Peer`, also used by test_publish_mentions and test_inbox_gaps).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.activitypub import documents as d
from fedipress.config import Author, FediverseConfig, SiteConfig
from fedipress.federation.mentions import (
    MENTION_REFRESH,
    canonical_manifest,
    default_href,
    mention_inboxes,
    object_handles,
    resolve_mentions,
    with_mentions,
)
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.model import Post, Site
from fedipress.store import (
    Follower,
    Interaction,
    PlannedActivity,
    ResolvedMention,
    SQLiteStore,
    open_store,
)
from fedipress.store.snapshot import read_build_state
from support.mentions import Peer

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = "https://blog.example/"


# --- a loopback fediverse server -----------------------------------------------------------------


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = open_store(tmp_path / "state.db")
    yield s
    s.close()


# --- pure: the document rewrite ------------------------------------------------------------------


def make_site() -> Site:
    fed = FediverseConfig(username="alice", handle_domain="blog.example", display_name="A", bio="",
                          inbox_url=BASE + "inbox", shared_inbox_url=BASE + "inbox")
    config = SiteConfig(root=Path("/nonexistent"), title="T", base_url=BASE,
                        author=Author(name="A", handle="alice"), fediverse=fed, language="en")
    return Site(config=config, posts=(), pages=())


def make_post(html: str) -> Post:
    return Post(source="posts/m.md", kind="post", slug="m", title="M",
                date=datetime(2026, 5, 1, tzinfo=UTC), url=BASE + "posts/m/", path="posts/m/",
                html=html, summary_html="", lang="en")


POST = make_post(
    "<p>Hi @bob@one.example and @carol@Two.Example:8443, again @bob@one.example, "
    "<code>@nobody@code.example</code>.</p>"
)


def test_handles_come_from_the_tags_in_order() -> None:
    doc = d.object_document(make_site(), POST)
    assert object_handles(doc) == ("bob@one.example", "carol@two.example:8443")
    assert default_href("bob@one.example") == "https://one.example/@bob"


@pytest.mark.parametrize("resolved", [
    {},
    {"bob@one.example": "https://one.example/users/bob"},
    {"bob@one.example": "https://one.example/users/bob",
     "carol@two.example:8443": "https://two.example:8443/ap/carol"},
    # Two handles of one account (an alias): addressed once, tagged twice, like documents does.
    {"bob@one.example": "https://x.example/u/1", "carol@two.example:8443": "https://x.example/u/1"},
])
def test_with_mentions_equals_the_documents_own_resolution(resolved: dict[str, str]) -> None:
    site = make_site()
    unresolved = d.object_document(site, POST)
    expected = d.object_document(site, POST, mentions=resolved)
    assert with_mentions(unresolved, resolved) == expected
    # Whatever form it starts from: the result depends only on `resolved`.
    other = d.object_document(site, POST, mentions={"bob@one.example": "https://o.example/x"})
    assert with_mentions(other, resolved) == expected
    assert with_mentions(expected, {}) == unresolved
    if resolved:
        assert d.object_hash(expected) != d.object_hash(unresolved)


def test_with_mentions_leaves_documents_without_mentions_alone() -> None:
    doc = d.object_document(make_site(), make_post("<p>plain</p>"))
    assert with_mentions(doc, {"bob@one.example": "https://one.example/u/bob"}) == doc


def test_canonical_manifest_hashes_the_unresolved_form() -> None:
    site = make_site()
    resolved = d.object_document(site, POST, mentions={"bob@one.example": "https://o.example/b"})
    plain = d.object_document(site, make_post("<p>plain</p>"))
    manifest: dict[str, Any] = {"actor": {"id": BASE + "actor.json"}, "objects": {
        "a": {"hash": d.object_hash(resolved), "published": "x", "doc": resolved},
        "b": {"hash": "kept as is", "published": "x", "doc": plain},
    }}
    canonical = canonical_manifest(manifest)
    unresolved = d.object_document(site, POST)
    assert canonical["objects"]["a"]["doc"] == unresolved
    assert canonical["objects"]["a"]["hash"] == d.object_hash(unresolved)
    assert canonical["objects"]["b"]["hash"] == "kept as is"
    assert canonical["actor"] == manifest["actor"]
    assert manifest["objects"]["a"]["doc"] is resolved  # the input is not modified


def test_mention_inboxes_per_create_and_update_prefer_shared_inbox() -> None:
    site = make_site()
    bob = ResolvedMention("bob@one.example", "https://one.example/users/bob",
                          "https://one.example/users/bob/inbox", "https://one.example/inbox",
                          None, NOW)
    carol = ResolvedMention("carol@two.example:8443", "https://two.example:8443/ap/carol",
                            "https://two.example:8443/ap/carol/inbox", None, None, NOW)
    found = {m.acct: m for m in (bob, carol)}
    obj = d.object_document(site, POST, mentions={h: m.actor_id for h, m in found.items()})
    create = PlannedActivity("c", obj["id"], "Create", d.serialize(d.create_activity(site, obj)))
    delete = PlannedActivity("x", obj["id"], "Delete", d.serialize(
        d.delete_activity(site, obj["id"], deleted=NOW)))
    unresolved = d.object_document(site, POST)
    plain = PlannedActivity("p", obj["id"], "Create",
                            d.serialize(d.create_activity(site, unresolved)))
    assert mention_inboxes([create, delete, plain], found) == {
        "c": ("https://one.example/inbox", "https://two.example:8443/ap/carol/inbox")}


# --- the store: cache, domain purge, the read-only snapshot -------------------------------------


def test_mention_cache_round_trip_and_update(store: SQLiteStore) -> None:
    first = ResolvedMention("bob@one.example", "https://one.example/u/bob",
                            "https://one.example/u/bob/inbox", None, "https://one.example/@bob",
                            NOW)
    store.put_mention(first)
    assert store.get_mention("bob@one.example") == first
    moved = replace(first, actor_id="https://one.example/u/bob2", shared_inbox="https://one.example/i",
                    resolved_at=NOW + timedelta(days=1))
    store.put_mention(moved)
    assert store.get_mention("bob@one.example") == moved
    assert store.list_mentions() == [moved]
    assert store.get_mention("nobody@one.example") is None


def test_remove_domain_takes_subdomains_but_not_lookalikes(store: SQLiteStore) -> None:
    def follower(actor: str) -> Follower:
        return Follower(actor, actor + "/inbox", None, None, None, NOW)

    actors = ["https://spam.example/u/1", "https://a.spam.example:8443/u/2",
              "https://notspam.example/u/3", "https://spam.example.org/u/4"]
    store.upsert_followers(follower(a) for a in actors)
    for n, actor in enumerate(actors):
        store.add_interaction(Interaction(f"{actor}/like/{n}", "like", actor, BASE + "p/o.json",
                                          NOW, NOW))
    assert store.remove_domain("*.Spam.Example") == (2, 2)
    assert sorted(f.actor_id for f in store.iter_followers()) == actors[2:]
    assert store.interaction_counts()[BASE + "p/o.json"].likes == 2
    assert store.remove_domain("spam.example") == (0, 0)


def test_build_snapshot_reads_counts_and_mentions_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.db"
    assert read_build_state(path).follower_count == 0
    assert not path.exists() and not path.parent.exists()  # never created
    s = open_store(path)
    try:
        s.upsert_followers([Follower(f"https://x.example/u/{i}", f"https://x.example/u/{i}/i",
                                     None, None, None, NOW) for i in range(3)])
        s.upsert_follower(Follower("https://x.example/p", "https://x.example/p/i", None, None,
                                   None, NOW, state="pending"))
        oid = BASE + "posts/a/object.json"
        s.add_interaction(Interaction("l1", "like", "https://x.example/u/1", oid, NOW, NOW))
        s.add_interaction(Interaction("b1", "announce", "https://x.example/u/1", oid, NOW, NOW))
        s.add_interaction(Interaction("r1", "reply", "https://x.example/u/2", oid, NOW, NOW,
                                      reply_object_id="https://x.example/n/1"))
        s.add_interaction(Interaction("r2", "reply", "https://x.example/u/2", oid, NOW, NOW,
                                      reply_object_id="https://x.example/n/2", approved=False))
        s.put_mention(ResolvedMention("bob@one.example", "https://one.example/u/bob", "i",
                                      None, None, NOW))
        state = read_build_state(path)
    finally:
        s.close()
    assert state.follower_count == 3
    assert state.interaction_counts == {oid: {"replies": 1, "likes": 1, "shares": 1}}
    assert state.mentions == {"bob@one.example": "https://one.example/u/bob"}


def test_build_snapshot_of_a_database_without_the_mention_table(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = open_store(path)
    s.upsert_followers([Follower("https://x.example/u", "https://x.example/i", None, None, None,
                                 NOW)])
    s.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE mention_cache")
    conn.commit()
    conn.close()
    state = read_build_state(path)
    assert state.follower_count == 1 and state.mentions == {}


def test_build_snapshot_of_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not sqlite at all" * 100)
    assert read_build_state(path).follower_count == 0


# --- resolution against a loopback server --------------------------------------------------------


def resolve(store: SQLiteStore, handles: list[str], *, now: datetime = NOW,
            offline: bool = False) -> tuple[dict[str, ResolvedMention], list[str]]:
    warnings: list[str] = []

    async def main() -> dict[str, ResolvedMention]:
        if offline:
            return await resolve_mentions(handles, store=store, fetcher=None, now=now,
                                          warn=warnings.append)
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True),
                                 user_agent="test") as fetcher:
            return await resolve_mentions(handles, store=store, fetcher=fetcher, now=now,
                                          warn=warnings.append)

    return asyncio.run(main()), warnings


def test_resolves_through_webfinger_and_caches(peer: Peer, store: SQLiteStore) -> None:
    peer.add("bob")
    bob = peer.handle("bob")
    found, warnings = resolve(store, [bob, bob])
    assert warnings == []
    assert found == {bob: ResolvedMention(bob, peer.url("/users/bob"),
                                          peer.url("/users/bob/inbox"), peer.url("/inbox"),
                                          peer.url("/@bob"), NOW)}
    assert store.get_mention(bob) == found[bob]
    assert peer.gets == ["/.well-known/webfinger", "/users/bob"]
    # Cached: no network the second time.
    again, _ = resolve(store, [bob], now=NOW + timedelta(days=1))
    assert again == found and len(peer.gets) == 2


def test_unresolvable_mentions_warn_once_and_are_not_cached(peer: Peer,
                                                            store: SQLiteStore) -> None:
    peer.add("gone")
    peer.status["/users/gone"] = 410
    handles = [peer.handle("nobody"), peer.handle("gone"), peer.handle("nobody")]
    found, warnings = resolve(store, handles)
    assert found == {}
    assert len(warnings) == 2
    assert all(w.startswith("warning: @") and "not resolved" in w for w in warnings)
    assert store.list_mentions() == []


def test_stale_entry_is_refreshed_and_kept_when_the_refresh_fails(peer: Peer,
                                                                  store: SQLiteStore) -> None:
    peer.add("bob")
    bob = peer.handle("bob")
    found, _ = resolve(store, [bob])
    later = NOW + MENTION_REFRESH + timedelta(minutes=1)
    peer.docs["/users/bob"]["endpoints"] = {"sharedInbox": peer.url("/new-inbox")}
    refreshed, _ = resolve(store, [bob], now=later)
    assert refreshed[bob].shared_inbox == peer.url("/new-inbox")
    assert refreshed[bob].resolved_at == later
    peer.status["/.well-known/webfinger"] = 503
    much_later = later + MENTION_REFRESH * 2
    kept, warnings = resolve(store, [bob], now=much_later)
    assert warnings == [] and kept[bob] == refreshed[bob]


def test_dry_run_reads_only_the_cache(peer: Peer, store: SQLiteStore) -> None:
    peer.add("bob")
    found, warnings = resolve(store, [peer.handle("bob")], offline=True)
    assert found == {} and warnings == [] and peer.gets == []
    resolve(store, [peer.handle("bob")])
    cached, _ = resolve(store, [peer.handle("bob")], offline=True,
                        now=NOW + MENTION_REFRESH * 3)
    assert cached[peer.handle("bob")].actor_id == peer.url("/users/bob")
