"""The store contract of issue 14's tables and of the caches, on both engines (the `store` and
`location` fixtures of conftest: a real SQLite file and a real PostgreSQL database): quote
authorizations, announced counts, the actor and mention caches, the purge of a blocked domain,
replies to replies, and the build's conversation read with visibility and held replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fedipress.store import (
    AnnouncedCounts,
    CachedActor,
    Follower,
    Interaction,
    LedgerEntry,
    QuoteAuthorization,
    ResolvedMention,
    StoreParts,
    open_store,
)
from fedipress.store.snapshot import read_build_state

POST = "https://blog.example/posts/a/object.json"
OTHER = "https://blog.example/posts/b/object.json"
ACTOR = "https://blog.example/actor.json"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def _auth(n: int, *, quoting: str | None = None, body: bytes = b"{}",
          when: datetime = NOW) -> QuoteAuthorization:
    return QuoteAuthorization(
        f"https://blog.example/quote-authorizations/{n}", POST,
        quoting or f"https://q.example/notes/{n}", "https://q.example/users/q", body, when,
        inbox="https://q.example/inbox")


def test_quote_authorizations_stand_revoke_and_stand_again(store: StoreParts) -> None:
    raw = b'{"type": "QuoteAuthorization", "x": "\x00\xff 100%"}'
    first = _auth(1, body=raw)
    assert store.put_quote_authorization(first)
    # Standing: a second put keeps the served bytes.
    assert not store.put_quote_authorization(_auth(1, body=b'{"changed": 1}'))
    assert store.get_quote_authorization(first.authorization_id) == first
    assert store.quote_authorization_for("https://q.example/notes/1") == first
    assert store.put_quote_authorization(_auth(2, when=NOW + timedelta(minutes=1)))
    assert [a.authorization_id for a in store.active_quote_authorizations()] == [
        first.authorization_id, _auth(2).authorization_id]

    later = NOW + timedelta(hours=1)
    assert store.revoke_quote_authorization(first.authorization_id, later)
    assert not store.revoke_quote_authorization(first.authorization_id, later)  # once
    assert not store.revoke_quote_authorization("https://blog.example/nope", later)
    revoked = store.get_quote_authorization(first.authorization_id)
    assert revoked is not None and revoked.revoked_at == later and revoked.body == raw
    assert [a.authorization_id for a in store.active_quote_authorizations()] == [
        _auth(2).authorization_id]
    # Revoked, then asked again: it stands again with the new bytes and no revocation.
    assert store.put_quote_authorization(_auth(1, body=b'{"again": 1}', when=later))
    again = store.get_quote_authorization(first.authorization_id)
    assert again is not None and again.revoked_at is None and again.body == b'{"again": 1}'
    assert store.get_quote_authorization("https://blog.example/nope") is None
    assert store.quote_authorization_for("https://q.example/notes/9") is None


def test_announced_counts_are_upserted_per_post(store: StoreParts) -> None:
    assert store.get_announced_counts(POST) is None
    assert store.announced_counts() == {}
    store.put_announced_counts(AnnouncedCounts(POST, 1, 2, 3, NOW))
    store.put_announced_counts(AnnouncedCounts(OTHER, 0, 0, 1, NOW))
    moved = AnnouncedCounts(POST, 4, 5, 6, NOW + timedelta(minutes=5))
    store.put_announced_counts(moved)
    assert store.get_announced_counts(POST) == moved
    assert store.announced_counts() == {POST: moved, OTHER: AnnouncedCounts(OTHER, 0, 0, 1, NOW)}


def test_replace_announced_counts_succeeds_only_over_what_was_read(store: StoreParts) -> None:
    first = AnnouncedCounts(POST, 1, 0, 0, NOW)
    assert store.replace_announced_counts(first, None)
    assert not store.replace_announced_counts(AnnouncedCounts(POST, 9, 9, 9, NOW), None)
    later = AnnouncedCounts(POST, 2, 5, 0, NOW + timedelta(minutes=15))
    assert store.replace_announced_counts(later, first)
    # A process that read `first` before `later` was recorded loses, and changes nothing.
    assert not store.replace_announced_counts(AnnouncedCounts(POST, 3, 3, 3, NOW), first)
    assert store.get_announced_counts(POST) == later


def test_two_stores_racing_to_record_one_refresh_have_one_winner(location: str) -> None:
    """Two connections (as two service processes would have) swap from the same read at once:
    exactly one succeeds each round, on both engines."""
    import threading

    stores = [open_store(location), open_store(location)]

    def swap(s: StoreParts, n: int, seen: AnnouncedCounts | None, at: datetime,
             barrier: threading.Barrier, wins: list[bool]) -> None:
        barrier.wait()
        wins.append(s.replace_announced_counts(AnnouncedCounts(POST, n, 0, 0, at), seen))

    try:
        previous: AnnouncedCounts | None = None
        for round_ in range(5):
            wins: list[bool] = []
            barrier = threading.Barrier(2)
            when = NOW + timedelta(minutes=15 * (round_ + 1))
            threads = [threading.Thread(target=swap, args=(s, n, previous, when, barrier, wins))
                       for n, s in enumerate(stores)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted(wins) == [False, True]
            previous = stores[0].get_announced_counts(POST)
            assert previous is not None and previous.sent_at == when
    finally:
        for s in stores:
            s.close()


def _actor(actor_id: str, **kw: object) -> CachedActor:
    fields: dict[str, object] = dict(
        actor_id=actor_id, type="Person", inbox=actor_id + "/inbox", shared_inbox=None,
        preferred_username="u", handle="u@x", name="U 100%", icon_url=None, profile_url=None,
        also_known_as=("https://old.example/u",), fetched_at=NOW)
    fields.update(kw)
    return CachedActor(**fields)  # type: ignore[arg-type]


def test_actor_cache_put_replace_delete_and_caps(store: StoreParts) -> None:
    a = _actor("https://r.example/users/a")
    store.put_actor(a)
    assert store.get_actor(a.actor_id) == a
    renamed = _actor(a.actor_id, name="x" * 500, shared_inbox="https://r.example/inbox",
                     also_known_as=tuple(f"https://o{i}.example/u" for i in range(30)))
    store.put_actor(renamed)
    got = store.get_actor(a.actor_id)
    assert got is not None and got.shared_inbox == "https://r.example/inbox"
    assert got.name == "x" * 200 and len(got.also_known_as) == 20  # capped, on both engines
    store.put_actor(_actor("https://r.example/" + "l" * 3000))  # too long: not cached at all
    assert store.get_actor("https://r.example/" + "l" * 3000) is None
    assert store.delete_actor(a.actor_id)
    assert not store.delete_actor(a.actor_id)
    assert store.get_actor(a.actor_id) is None


def test_mention_cache(store: StoreParts) -> None:
    m = ResolvedMention("bob@r.example", "https://r.example/users/bob",
                        "https://r.example/users/bob/inbox", None, None, NOW)
    store.put_mention(m)
    moved = ResolvedMention("bob@r.example", "https://r.example/users/bob2",
                            "https://r.example/users/bob2/inbox", "https://r.example/inbox",
                            "https://r.example/@bob", NOW + timedelta(days=1))
    store.put_mention(moved)
    store.put_mention(ResolvedMention("al@a.example", "https://a.example/al",
                                      "https://a.example/al/in", None, None, NOW))
    assert store.get_mention("bob@r.example") == moved
    assert store.get_mention("nobody@r.example") is None
    assert [x.acct for x in store.list_mentions()] == ["al@a.example", "bob@r.example"]


def test_knows_actor_and_remove_domain_forget_everything_under_it(store: StoreParts) -> None:
    store.upsert_follower(Follower("https://spam.example/u/1", "https://spam.example/u/1/in",
                                   None, None, None, NOW))
    store.upsert_follower(Follower("https://a.spam.example/u/2", "https://a.spam.example/in",
                                   None, None, None, NOW))
    store.upsert_follower(Follower("https://notspam.example/u/3", "https://notspam.example/in",
                                   None, None, None, NOW))
    store.add_interaction(Interaction("https://b.spam.example/like/1", "like",
                                      "https://b.spam.example/u/4", POST, NOW, NOW))
    store.add_interaction(Interaction("https://notspam.example/like/1", "like",
                                      "https://notspam.example/u/3", POST, NOW, NOW))
    store.put_actor(_actor("https://c.spam.example/u/5"))
    store.put_actor(_actor("https://notspam.example/u/3"))
    assert store.knows_actor("https://spam.example/u/1")  # a follower
    assert store.knows_actor("https://b.spam.example/u/4")  # left a like
    assert not store.knows_actor("https://c.spam.example/u/5")  # only cached

    assert store.remove_domain("*.Spam.example") == (2, 1)
    assert not store.knows_actor("https://spam.example/u/1")
    assert not store.knows_actor("https://b.spam.example/u/4")
    assert store.get_actor("https://c.spam.example/u/5") is None  # the cache goes too
    assert store.knows_actor("https://notspam.example/u/3")  # a lookalike domain stays
    assert store.get_actor("https://notspam.example/u/3") is not None
    assert store.count_followers() == 1


def test_replies_to_replies_are_found_by_object_id(store: StoreParts) -> None:
    reply = Interaction("https://r.example/create/1", "reply", "https://r.example/u", POST, NOW,
                        NOW, reply_object_id="https://r.example/n/1", content_html="<p>a</p>",
                        visibility="unlisted", held_reason="first reply from this account",
                        approved=False)
    assert store.add_interaction(reply)
    assert store.get_reply("https://r.example/n/1") == reply
    assert store.get_reply("https://r.example/create/1") is None  # by the Note's id only


def _interaction(n: int, kind: str, **kw: object) -> Interaction:
    when = NOW + timedelta(minutes=n)
    return Interaction(f"https://r.example/a/{n}", kind, f"https://r.example/users/u{n}",  # type: ignore[arg-type]
                       POST, when, when, author_name=f"U{n}", **kw)  # type: ignore[arg-type]


def test_build_reads_the_public_conversation_from_either_engine(location: str) -> None:
    """The build's read-only snapshot: only approved, public or unlisted interactions with a
    live post, the same from SQLite and PostgreSQL."""
    store = open_store(location)
    try:
        store.plan_publication([], [], [LedgerEntry(POST, "h", NOW, NOW, "live", None),
                                        LedgerEntry(OTHER, "h", NOW, NOW, "deleted", None)], NOW)
        for i in (
            _interaction(1, "reply", reply_object_id="https://r.example/n/1",
                         content_html="<p>public 100%</p><script>x()</script>"),
            _interaction(2, "reply", reply_object_id="https://r.example/n/2",
                         content_html="<p>unlisted</p>", visibility="unlisted"),
            _interaction(3, "reply", reply_object_id="https://r.example/n/3",
                         content_html="<p>followers only</p>", visibility="followers"),
            _interaction(4, "reply", reply_object_id="https://r.example/n/4",
                         content_html="<p>held</p>", approved=False,
                         held_reason="first reply from this account"),
            _interaction(5, "like"),
            _interaction(6, "announce", visibility="direct"),
            _interaction(7, "quote", reply_object_id="https://r.example/n/7"),
            _interaction(8, "mention", reply_object_id="https://r.example/n/8"),
        ):
            assert store.add_interaction(i)
        assert store.add_interaction(Interaction("https://r.example/a/9", "like",
                                                 "https://r.example/u9", OTHER, NOW, NOW))
        # The author approves the held reply, then hides the first one.
        assert store.review_interaction("https://r.example/a/4", approved=True, held_reason=None)
        assert store.review_interaction("https://r.example/a/1", approved=False,
                                        held_reason="hidden")
    finally:
        store.close()
    state = read_build_state(location, ACTOR)
    assert state.interaction_counts[POST] == {"replies": 2, "likes": 1, "shares": 0}
    conv = state.conversations.for_post(POST)
    assert conv is not None
    assert [r.content_html for r in conv.replies] == ["<p>unlisted</p>", "<p>held</p>"]
    assert [p.actor.name for p in conv.likes] == ["U5"]
    assert conv.boosts == () and [q.actor.name for q in conv.quotes] == ["U7"]
    assert state.conversations.for_post(OTHER) is None  # a deleted post shows nothing
