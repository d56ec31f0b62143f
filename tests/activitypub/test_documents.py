"""ActivityPub documents: golden JSON for every static document, plus the rules behind them.

Golden files live in tests/golden/; regenerate with FEDIPRESS_UPDATE_GOLDEN=1 and review the
diff. The fixture site is built by hand (fixed dates, the committed test key), so every
byte is deterministic.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from fedipress.activitypub import documents as d
from fedipress.activitypub.site import federation_manifest, plan_activitypub
from fedipress.model import Image, Site, Tag
from support.documents import (
    BASE,
    KEY,
    WHEN,
    check_golden,
    hello_post,
    make_config,
    make_post,
    make_site,
)


@pytest.fixture
def site() -> Site:
    return make_site()


# --- golden documents ----------------------------------------------------------------------


def test_actor_golden(site: Site) -> None:
    check_golden("actor.json", d.actor_document(site, KEY))


def test_note_golden(site: Site) -> None:
    check_golden("note.json", d.object_document(site, hello_post()))


def test_article_golden() -> None:
    site = make_site(post_type="article")
    post = replace(hello_post(), summary="Why this blog federates.", content_warning=None)
    check_golden("article.json", d.object_document(site, post))


def test_outbox_and_page_golden() -> None:
    site = make_site(posts=25)
    check_golden("outbox.json", d.outbox_document(site))
    check_golden("outbox-page-2.json", d.outbox_page(site, 2))


def test_followers_golden(site: Site) -> None:
    check_golden("followers.json", d.followers_document(site, 7))


def test_activities_golden(site: Site) -> None:
    obj = d.object_document(site, hello_post())
    check_golden("create.json", d.create_activity(site, obj))
    check_golden("delete.json", d.delete_activity(site, obj["id"], deleted=WHEN))


# --- actor ---------------------------------------------------------------------------------


def test_actor_ids_and_endpoints(site: Site) -> None:
    actor = d.actor_document(site, KEY)
    assert actor["id"] == BASE + "actor.json"
    assert actor["publicKey"] == {
        "id": BASE + "actor.json#main-key",
        "owner": BASE + "actor.json",
        "publicKeyPem": KEY,
    }
    assert actor["endpoints"] == {"sharedInbox": BASE + "inbox"}
    for name in ("outbox", "followers", "following", "featured"):
        assert actor[name] == f"{BASE}{name}.json"
    assert actor["url"] == BASE
    assert actor["webfinger"] == "alice@blog.example"
    assert actor["attributionDomains"] == ["blog.example"]
    # profile fields: URLs become rel="me" links, other values are escaped text
    blog, pronouns = actor["attachment"]
    assert 'rel="me' in blog["value"] and f'href="{BASE}"' in blog["value"]
    assert pronouns["value"] == "she/her"


def test_actor_falls_back_to_author_links_and_oldest_post() -> None:
    site = make_site(fields=(), published=None, also_known_as=())
    actor = d.actor_document(site, KEY.encode())
    assert [f["name"] for f in actor["attachment"]] == ["Code"]
    assert actor["published"] == d.iso(min(p.date for p in site.posts))
    assert "alsoKnownAs" not in actor
    assert actor["publicKey"]["publicKeyPem"] == KEY


def test_handle_domain_differs_from_host() -> None:
    site = make_site(handle_domain="alice.example")
    actor = d.actor_document(site, KEY)
    assert actor["id"] == BASE + "actor.json"  # still on the blog's host
    assert actor["webfinger"] == "alice@alice.example"
    assert actor["preferredUsername"] == "alice"


# --- objects -------------------------------------------------------------------------------


def test_note_content_and_audience(site: Site) -> None:
    note = d.object_document(site, hello_post())
    assert note["id"] == BASE + "posts/hello/object.json"
    assert note["type"] == "Note"
    assert note["attributedTo"] == BASE + "actor.json"
    assert note["to"] == [d.PUBLIC]
    assert note["cc"][0] == BASE + "followers.json"
    assert note["content"].startswith("<p><strong>Hello, fediverse</strong></p>")
    assert note["contentMap"] == {"en": note["content"]}
    assert "<script" not in note["content"] and "alert" not in note["content"]
    assert "<img" not in note["content"] and "<table" not in note["content"]
    assert 'href="https://blog.example/posts/other/"' in note["content"]
    assert note["updated"] == "2024-03-21T08:00:00Z"
    assert note["sensitive"] is False and "summary" not in note
    assert "name" not in note
    for kind in ("replies", "likes", "shares"):
        assert note[kind]["id"] == f"{BASE}posts/hello/{kind}.json"
        assert note[kind]["totalItems"] == 0


def test_attachments_cover_first_then_inline_at_most_four(site: Site) -> None:
    inline = tuple(Image(f"{BASE}media/{i}.webp", alt=f"img {i}") for i in range(6))
    post = replace(hello_post(), images=inline, html="<p>x</p>")
    atts = d.object_document(site, post)["attachment"]
    assert len(atts) == 4
    assert atts[0]["url"] == BASE + "posts/hello/cover.jpg"
    assert atts[0]["type"] == "Image" and atts[0]["mediaType"] == "image/jpeg"
    assert [a["url"] for a in atts[1:]] == [f"{BASE}media/{i}.webp" for i in range(3)]
    assert atts[1]["mediaType"] == "image/webp" and atts[1]["name"] == "img 0"


def test_html_only_image_becomes_attachment_with_size(site: Site) -> None:
    post = replace(hello_post(), image=None, images=())
    atts = d.object_document(site, post)["attachment"]
    assert atts == [{"type": "Image", "mediaType": "image/png", "url": BASE + "media/cat.png",
                     "name": "A cat", "width": 640, "height": 480}]


def test_content_warning_and_reply(site: Site) -> None:
    post = replace(hello_post(), content_warning="Spoilers",
                   in_reply_to="https://social.example/users/bob/statuses/1")
    note = d.object_document(site, post)
    assert note["summary"] == "Spoilers" and note["sensitive"] is True
    assert note["inReplyTo"] == "https://social.example/users/bob/statuses/1"


def test_summary_mode_links_to_post() -> None:
    site = make_site(note_content="summary")
    note = d.object_document(site, hello_post())
    assert "Why this blog federates." in note["content"]
    assert "Why</strong>" not in note["content"]  # the body's heading is not there
    assert f'<a href="{BASE}posts/hello/">Read more</a>' in note["content"]


def test_article_has_name_and_no_title_paragraph() -> None:
    site = make_site(post_type="article")
    art = d.object_document(site, hello_post())
    assert art["type"] == "Article" and art["name"] == "Hello, fediverse"
    assert not art["content"].startswith("<p><strong>Hello, fediverse")


def test_no_updated_when_not_edited(site: Site) -> None:
    post = replace(hello_post(), updated=None)
    assert "updated" not in d.object_document(site, post)


def test_content_map_uses_post_language(site: Site) -> None:
    note = d.object_document(site, replace(hello_post(), lang="fr"))
    assert list(note["contentMap"]) == ["fr"]


# --- hashtags and mentions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("python", "python"), ("static sites", "StaticSites"), ("Node.js", "NodeJs"),
     ("c++", "c"), ("日本語", "日本語"), ("2024", None), ("!!", None), ("été indien", "ÉtéIndien")],
)
def test_hashtag_names(name: str, expected: str | None) -> None:
    assert d.hashtag_name(name) == expected


def test_hashtag_tags_and_links(site: Site) -> None:
    note = d.object_document(site, hello_post())
    hashtags = [t for t in note["tag"] if t["type"] == "Hashtag"]
    assert hashtags == [
        {"type": "Hashtag", "name": "#python", "href": BASE + "tags/python/"},
        {"type": "Hashtag", "name": "#StaticSites", "href": BASE + "tags/static-sites/"},
    ]
    assert 'class="mention hashtag" rel="tag">#<span>StaticSites</span></a>' in note["content"]


def test_duplicate_hashtags_collapse(site: Site) -> None:
    post = replace(hello_post(), tags=(Tag("Python", "python", BASE + "tags/python/"),
                                       Tag("python", "python", BASE + "tags/python/")))
    hashtags = [t for t in d.object_document(site, post)["tag"] if t["type"] == "Hashtag"]
    assert [t["name"] for t in hashtags] == ["#Python"]


def test_mentions_resolved_and_unresolved(site: Site) -> None:
    post = replace(
        hello_post(),
        html="<p>Hi @bob@social.example and @carol@other.example:8443, "
             "@bob@social.example again.</p><pre><code>@nobody@code.example</code></pre>",
    )
    assert d.post_mentions(post) == ("bob@social.example", "carol@other.example:8443")
    note = d.object_document(
        site, post, mentions={"bob@social.example": "https://social.example/users/bob"}
    )
    mentions = [t for t in note["tag"] if t["type"] == "Mention"]
    assert mentions == [
        {"type": "Mention", "href": "https://social.example/users/bob",
         "name": "@bob@social.example"},
        {"type": "Mention", "href": "https://other.example:8443/@carol",
         "name": "@carol@other.example:8443"},
    ]
    assert note["cc"] == [BASE + "followers.json", "https://social.example/users/bob",
                          "https://other.example:8443/@carol"]


def test_email_is_not_a_mention() -> None:
    post = replace(hello_post(), html="<p>Mail me: alice@blog.example</p>")
    assert d.post_mentions(post) == ()


# --- activities ----------------------------------------------------------------------------


def test_activity_ids_are_stable_and_derived(site: Site) -> None:
    obj = d.object_document(site, hello_post())
    create = d.create_activity(site, obj)
    assert create["id"] == obj["id"] + "#create"
    assert create == d.create_activity(site, d.object_document(site, hello_post()))
    assert "@context" not in create["object"]
    assert create["to"] == obj["to"] and create["cc"] == obj["cc"]
    update = d.update_activity(site, obj, revision="abc")
    assert update["id"] == obj["id"] + "#update-abc" and update["type"] == "Update"
    assert update["published"] == obj["updated"]
    delete = d.delete_activity(site, obj["id"], deleted=WHEN)
    assert delete["id"] == obj["id"] + "#delete"
    assert delete["object"] == {"id": obj["id"], "type": "Tombstone",
                                "deleted": "2024-04-01T12:00:00Z"}


def test_actor_update_accept_reject(site: Site) -> None:
    actor = d.actor_document(site, KEY)
    upd = d.actor_update_activity(site, actor, revision="r1")
    assert upd["object"]["id"] == actor["id"] and upd["id"] == actor["id"] + "#update-r1"
    assert "@context" not in upd["object"]
    follow = {"@context": d.AS_CONTEXT, "id": "https://social.example/f/1", "type": "Follow",
              "actor": "https://social.example/users/bob", "object": actor["id"]}
    accept = d.accept_activity(site, follow, accept_id=BASE + "accepts/1")
    assert accept["type"] == "Accept" and accept["id"] == BASE + "accepts/1"
    assert accept["actor"] == actor["id"]
    assert accept["to"] == ["https://social.example/users/bob"]
    assert accept["object"] == {k: v for k, v in follow.items() if k != "@context"}
    reject = d.reject_activity(site, follow, reject_id=BASE + "rejects/1")
    assert reject["type"] == "Reject" and reject["object"]["id"] == follow["id"]


# --- collections ---------------------------------------------------------------------------


def test_outbox_paging() -> None:
    site = make_site(posts=45)  # 45 federated posts -> 3 pages of 20, 20, 5
    outbox = d.outbox_document(site)
    assert outbox["totalItems"] == 45
    assert outbox["first"] == BASE + "outbox/page-1.json"
    assert outbox["last"] == BASE + "outbox/page-3.json"
    pages = d.outbox_pages(site)
    assert pages == [d.outbox_page(site, n) for n in (1, 2, 3)]
    assert [len(p["orderedItems"]) for p in pages] == [20, 20, 5]
    assert "prev" not in pages[0] and pages[0]["next"] == BASE + "outbox/page-2.json"
    assert pages[1]["prev"] == BASE + "outbox/page-1.json"
    assert "next" not in pages[2]
    assert all(p["partOf"] == BASE + "outbox.json" for p in pages)
    published = [i["published"] for p in pages for i in p["orderedItems"]]
    assert published == sorted(published, reverse=True)
    assert all(i["type"] == "Create" for p in pages for i in p["orderedItems"])
    for page in pages:
        assert len(d.serialize(page)) < 1024 * 1024
    with pytest.raises(ValueError):
        d.outbox_page(site, 4)


def test_empty_outbox_still_has_a_first_page() -> None:
    site = Site(config=make_config(), posts=(), pages=())
    assert d.outbox_document(site)["totalItems"] == 0
    assert d.outbox_page(site, 1)["orderedItems"] == []


def test_federated_posts_excludes_opted_out_and_drafts(site: Site) -> None:
    posts = (hello_post(), replace(make_post("x", 2), federate=False),
             replace(make_post("y", 3), draft=True))
    s = replace(site, posts=posts)
    assert [p.slug for p in d.federated_posts(s)] == ["hello"]


def test_followers_following_featured(site: Site) -> None:
    followers = d.followers_document(site, 12)
    assert followers["totalItems"] == 12 and followers["first"]["orderedItems"] == []
    assert d.following_document(site)["totalItems"] == 0
    featured = d.featured_document(site)
    assert featured["totalItems"] == 1
    assert featured["orderedItems"][0]["id"] == BASE + "posts/hello/object.json"
    assert "@context" not in featured["orderedItems"][0]


def test_interaction_collections(site: Site) -> None:
    post = hello_post()
    assert d.likes_document(post, 3)["totalItems"] == 3
    assert d.shares_document(post)["id"] == BASE + "posts/hello/shares.json"
    assert d.replies_document(post)["first"]["orderedItems"] == []
    thread = d.Thread(replies=("https://social.example/notes/1",), likes=2, shares=1)
    replies = d.replies_document(post, thread)
    assert replies["type"] == "OrderedCollection" and replies["totalItems"] == 1
    assert replies["first"]["orderedItems"] == ["https://social.example/notes/1"]


# --- JSON-LD context rules -----------------------------------------------------------------

_AS_TERMS_USED = {
    # terms the AS and security contexts define (checked in detail by test_jsonld.py)
    "id", "type", "preferredUsername", "name", "summary", "url", "icon", "image", "inbox",
    "outbox", "followers", "following", "endpoints", "sharedInbox", "publicKey", "owner",
    "publicKeyPem", "published", "updated", "attachment", "alsoKnownAs", "mediaType",
    "attributedTo", "to", "cc", "content", "contentMap", "tag", "href", "replies", "likes",
    "shares", "inReplyTo", "width", "height", "actor", "object", "deleted", "totalItems",
    "first", "last", "next", "prev", "partOf", "orderedItems", "items", "context",
}


def _keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("@context", "contentMap"):
                if k == "contentMap":
                    out.add(k)
                continue
            out.add(k)
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    return out


def _all_docs(site: Site) -> list[dict[str, Any]]:
    obj = d.object_document(site, hello_post())
    actor = d.actor_document(site, KEY)
    return [actor, obj, d.create_activity(site, obj), d.outbox_page(site, 1),
            d.featured_document(site), d.followers_document(site),
            d.delete_activity(site, obj["id"], deleted=WHEN),
            d.actor_update_activity(site, actor, revision="1"),
            d.object_document(make_site(post_type="article"), hello_post())]


def test_context_references_only_two_urls_and_defines_every_extension(site: Site) -> None:
    for doc in _all_docs(site):
        context = doc["@context"]
        assert context[:2] == [d.AS_CONTEXT, d.SEC_CONTEXT]
        assert all(not isinstance(c, str) for c in context[2:])
        assert len(context) <= 3
        inline = context[2] if len(context) == 3 else {}
        used = _keys(doc, set())
        types = {t for t in json.dumps(doc).split('"') if t in ("Hashtag", "PropertyValue")}
        for term in (used | types) - _AS_TERMS_USED:
            assert term in inline, f"{term} used in {doc['id']} but not defined inline"
        for term in inline:
            if term not in ("toot", "schema", "gts"):
                assert term in used | types, f"{term} defined but unused in {doc['id']}"


def test_nested_documents_carry_no_context(site: Site) -> None:
    for doc in _all_docs(site):
        assert '"@context"' not in json.dumps({k: v for k, v in doc.items() if k != "@context"})


# --- hashing, serialising and the build plan -----------------------------------------------


def test_object_hash_ignores_context_and_key_order(site: Site) -> None:
    obj = d.object_document(site, hello_post())
    shuffled = dict(reversed(list(obj.items())))
    assert d.object_hash(obj) == d.object_hash(shuffled)
    assert d.object_hash(obj) == d.object_hash({k: v for k, v in obj.items() if k != "@context"})
    edited = d.object_document(site, replace(hello_post(), html="<p>Changed.</p>"))
    assert d.object_hash(edited) != d.object_hash(obj)


def test_serialize_is_deterministic_utf8(site: Site) -> None:
    doc = d.object_document(site, replace(hello_post(), title="Ünïcode ✓"))
    data = d.serialize(doc)
    assert data == d.serialize(d.object_document(site, replace(hello_post(), title="Ünïcode ✓")))
    assert "Ünïcode ✓".encode() in data and data.endswith(b"\n")


def test_plan_paths_fingerprints_and_bytes(site: Site) -> None:
    counts = {BASE + "posts/hello/object.json": {"likes": 5}}
    outs = {o.path: o for o in plan_activitypub(site, KEY.encode(), fingerprint_salt="s",
                                                follower_count=3, interaction_counts=counts)}
    for path in ("actor.json", "outbox.json", "outbox/page-1.json", "followers.json",
                 "following.json", "featured.json", "posts/hello/object.json",
                 "posts/hello/replies.json", "posts/hello/likes.json", "posts/hello/shares.json",
                 ".well-known/webfinger", ".well-known/host-meta", ".well-known/nodeinfo",
                 "nodeinfo/2.1"):
        assert path in outs
    assert json.loads(outs["posts/hello/likes.json"].render())["totalItems"] == 5
    assert json.loads(outs["followers.json"].render())["totalItems"] == 3
    assert outs["actor.json"].render() == d.serialize(d.actor_document(site, KEY))
    # same inputs -> same fingerprints; an edit changes exactly the documents that show it
    again = {o.path: o.fingerprint for o in plan_activitypub(
        site, KEY, fingerprint_salt="s", follower_count=3, interaction_counts=counts)}
    assert again == {p: o.fingerprint for p, o in outs.items()}
    edited = replace(site, posts=tuple(
        replace(p, html="<p>new</p>") if p.slug == "p1" else p for p in site.posts))
    changed = {o.path for o in plan_activitypub(edited, KEY, fingerprint_salt="s",
                                                follower_count=3, interaction_counts=counts)
               if o.fingerprint != outs[o.path].fingerprint}
    assert changed == {"posts/p1/object.json", "outbox/page-1.json"}
    other_salt = plan_activitypub(site, KEY, fingerprint_salt="t")
    assert all(o.fingerprint != outs[o.path].fingerprint for o in other_salt)


def test_federation_manifest(site: Site) -> None:
    manifest = federation_manifest(site, KEY)
    assert manifest["actor"]["id"] == BASE + "actor.json"
    objects = manifest["objects"]
    assert list(objects) == [d.object_id(p) for p in d.federated_posts(site)]
    entry = objects[BASE + "posts/hello/object.json"]
    assert entry["hash"] == d.object_hash(entry["doc"])
    assert entry["published"] == "2024-03-20T09:30:00Z"
    json.dumps(manifest)  # plain JSON all the way down
