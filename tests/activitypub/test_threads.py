"""A post's thread in its object: embedded replies (paged), likes, shares, context, and the
interaction policy (who may quote), as the build plans them from the public conversation."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType

import pytest

from fedipress.activitypub import documents as d
from fedipress.activitypub.conversation import (
    Conversations,
    Person,
    PostConversation,
    Reaction,
    Reply,
)
from fedipress.activitypub.site import plan_activitypub
from fedipress.model import Site
from support.documents import BASE, KEY, hello_post, make_site

POST_ID = BASE + "posts/hello/object.json"
ACTOR = BASE + "actor.json"
FOLLOWERS = BASE + "followers.json"


def _conversation(replies: int, likes: int = 0, boosts: int = 0) -> Conversations:
    who = Person("https://social.example/users/bob", "Bob", "bob@social.example")
    conv = PostConversation(
        POST_ID,
        replies=tuple(
            Reply(f"https://social.example/notes/{n:03d}", POST_ID,
                  f"2026-05-01T10:{n % 60:02d}:00Z",
                  "<p>hi</p>", who) for n in range(replies)),
        likes=tuple(Reaction("like", replace(who, id=f"https://s.example/u/{n}"),
                             "2026-05-01T10:00:00Z") for n in range(likes)),
        boosts=tuple(Reaction("boost", replace(who, id=f"https://s.example/u/{n}"),
                              "2026-05-01T10:00:00Z") for n in range(boosts)),
    )
    return Conversations(ACTOR, MappingProxyType({POST_ID: conv}))


def _outputs(site: Site, conversations: Conversations | None = None,
             **kw: object) -> dict[str, bytes]:
    plan = plan_activitypub(site, KEY, fingerprint_salt="s", conversations=conversations,
                            **kw)  # type: ignore[arg-type]
    return {o.path: o.render() for o in plan}


def test_object_embeds_counts_and_the_first_page_of_replies_from_the_conversation() -> None:
    site = make_site()
    out = _outputs(site, _conversation(replies=3, likes=5, boosts=2))
    obj = json.loads(out["posts/hello/object.json"])
    assert obj["replies"]["type"] == "OrderedCollection"
    assert obj["replies"]["totalItems"] == 3
    assert obj["replies"]["first"]["orderedItems"] == [
        f"https://social.example/notes/{n:03d}" for n in range(3)]
    assert "next" not in obj["replies"]["first"]
    assert obj["likes"] == {"id": BASE + "posts/hello/likes.json", "type": "Collection",
                            "totalItems": 5}
    assert obj["shares"]["totalItems"] == 2
    assert obj["context"] == BASE + "posts/hello/context.json"
    # The files beside it say the same.
    assert json.loads(out["posts/hello/likes.json"])["totalItems"] == 5
    assert json.loads(out["posts/hello/shares.json"])["totalItems"] == 2
    replies = json.loads(out["posts/hello/replies.json"])
    assert {k: v for k, v in replies.items() if k != "@context"} == obj["replies"]
    context = json.loads(out["posts/hello/context.json"])
    assert context["totalItems"] == 4 and context["first"]["orderedItems"][0] == POST_ID
    # The documents that embed the post embed the same counts.
    [pinned] = json.loads(out["featured.json"])["orderedItems"]
    assert pinned["likes"]["totalItems"] == 5 and pinned["replies"] == obj["replies"]
    creates = json.loads(out["outbox/page-1.json"])["orderedItems"]
    [create] = [c for c in creates if c["object"]["id"] == POST_ID]
    assert create["object"]["likes"]["totalItems"] == 5
    # Other posts have nothing yet, and say so with zeros (never a bare link).
    other = json.loads(out["posts/p1/object.json"])
    assert other["likes"]["totalItems"] == 0 and other["replies"]["totalItems"] == 0


def test_replies_beyond_a_page_are_paginated_into_files_the_build_writes() -> None:
    site = make_site()
    total = 2 * d.THREAD_PAGE_SIZE + 5
    out = _outputs(site, _conversation(replies=total))
    obj = json.loads(out["posts/hello/object.json"])
    first = obj["replies"]["first"]
    assert obj["replies"]["totalItems"] == total
    assert len(first["orderedItems"]) == d.THREAD_PAGE_SIZE
    seen = list(first["orderedItems"])
    page_url = first["next"]
    pages = 1
    while page_url:
        path = page_url.removeprefix(BASE)
        page = json.loads(out[path])
        assert page["id"] == page_url and page["partOf"] == obj["replies"]["id"]
        assert page["type"] == "OrderedCollectionPage"
        seen += page["orderedItems"]
        page_url = page.get("next")
        pages += 1
    assert pages == 3
    assert seen == [f"https://social.example/notes/{n:03d}" for n in range(total)]
    assert "posts/hello/replies/page-4.json" not in out
    # The context collection pages the post and its replies the same way.
    assert "posts/hello/context/page-3.json" in out
    assert "posts/p1/replies/page-2.json" not in out


def test_the_same_conversation_gives_byte_identical_documents() -> None:
    site = make_site()
    first = _outputs(site, _conversation(replies=30, likes=4))
    again = _outputs(site, _conversation(replies=30, likes=4))
    assert first == again
    changed = _outputs(site, _conversation(replies=30, likes=5))
    differ = sorted(p for p in first if first[p] != changed[p])
    # The post's object, its likes and the outbox page and featured list embedding it.
    assert "posts/hello/object.json" in differ and "posts/hello/likes.json" in differ
    assert "posts/hello/replies.json" not in differ


def test_fingerprints_follow_the_conversation() -> None:
    """An incremental build skips outputs whose fingerprint is unchanged: a new like must
    change the object's fingerprint (else object.json would keep the old count)."""
    site = make_site()

    def fps(conv: Conversations) -> dict[str, str]:
        return {o.path: o.fingerprint for o in
                plan_activitypub(site, KEY, fingerprint_salt="s", conversations=conv)}

    before, after = fps(_conversation(2, likes=1)), fps(_conversation(2, likes=2))
    assert before["posts/hello/object.json"] != after["posts/hello/object.json"]
    assert before["posts/hello/likes.json"] != after["posts/hello/likes.json"]
    assert before["posts/hello/replies.json"] == after["posts/hello/replies.json"]
    assert before["posts/p1/object.json"] == after["posts/p1/object.json"]


def test_counts_without_a_conversation_come_from_the_interaction_counts() -> None:
    site = make_site()
    out = _outputs(site, None, interaction_counts={POST_ID: {"likes": 3, "shares": 1,
                                                             "replies": 2}})
    obj = json.loads(out["posts/hello/object.json"])
    assert (obj["likes"]["totalItems"], obj["shares"]["totalItems"]) == (3, 1)
    # Replies are listed by id or not at all: no count the collection cannot back up.
    assert obj["replies"]["totalItems"] == 0


def test_a_like_is_no_edit_for_publish() -> None:
    """object_hash (what publish compares) leaves the live counts out: likes alone never make
    publish send an Update; an edit still does."""
    site = make_site()
    post = hello_post()
    plain = d.object_document(site, post)
    liked = d.object_document(site, post, thread=d.Thread(("https://s.example/n/1",), 9, 4))
    assert plain != liked
    assert d.object_hash(plain) == d.object_hash(liked)
    edited = d.object_document(site, replace(post, html="<p>Changed.</p>"))
    assert d.object_hash(edited) != d.object_hash(plain)


@pytest.mark.parametrize(("policy", "quoters"), [
    ("anyone", [d.PUBLIC]),
    ("followers", [FOLLOWERS, ACTOR]),
    ("nobody", [ACTOR]),
])
def test_quote_policy_from_site_yaml(policy: str, quoters: list[str]) -> None:
    site = make_site(quotes=policy)
    for post_type in ("note", "article"):
        typed = Site(replace(site.config, fediverse=replace(site.config.fediverse,
                                                            post_type=post_type)),
                     site.posts, ())
        obj = d.object_document(typed, hello_post())
        rules = obj["interactionPolicy"]
        assert rules["canQuote"] == {"automaticApproval": quoters}
        for rule in ("canReply", "canLike", "canAnnounce"):
            assert rules[rule] == {"automaticApproval": [d.PUBLIC]}
        assert "interactionPolicy" in obj["@context"][2]


def test_front_matter_overrides_the_quote_policy() -> None:
    site = make_site(quotes="anyone")
    obj = d.object_document(site, replace(hello_post(), quotes="nobody"))
    assert obj["interactionPolicy"]["canQuote"] == {"automaticApproval": [ACTOR]}
    open_site = make_site(quotes="nobody")
    obj = d.object_document(open_site, replace(hello_post(), quotes="anyone"))
    assert obj["interactionPolicy"]["canQuote"] == {"automaticApproval": [d.PUBLIC]}


def test_a_policy_reads_the_same_in_either_gotosocial_vocabulary() -> None:
    bob = "https://social.example/users/bob"
    ours = d.interaction_policy("followers", ACTOR, FOLLOWERS)
    old_terms = {"canQuote": {"always": [FOLLOWERS, ACTOR], "approvalRequired": []}}
    assert d.read_approval(ours) == d.read_approval(old_terms)
    approval = d.read_approval(ours)
    assert approval.decide(bob) is None
    assert approval.decide(bob, follower_of=FOLLOWERS) == "automatic"
    assert approval.decide(ACTOR) == "automatic"
    anyone = d.read_approval({"canQuote": {"automaticApproval": "as:Public"}})
    assert anyone.decide(bob) == "automatic"
    manual = d.read_approval({"canQuote": {"approvalRequired": [{"id": d.PUBLIC}]}})
    assert manual.decide(bob) == "manual"
    # No policy, or an unreadable one, is "nobody" (what Mastodon makes of it).
    for nothing in (None, {}, {"canQuote": "yes"}, {"canQuote": {"always": 3}}, []):
        assert d.read_approval(nothing).decide(bob) is None
