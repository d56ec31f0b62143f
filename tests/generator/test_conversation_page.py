"""The conversation on a post's page: threading and faces (conversation_view), the default
theme's markup read back as microformats2 (support/mf2.py),
escaping of what other servers send, `comments: false`, and fingerprints that follow the
conversation."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fedipress.activitypub.conversation import Conversations, PostConversation, Reaction
from fedipress.generator.content import load_site
from fedipress.generator.conversation_view import MAX_FACES, conversation_view
from fedipress.generator.render import plan_pages
from fedipress.generator.themes import make_environment
from fedipress.model import Site
from support.content import NOW as CONTENT_NOW
from support.content import make_config, problems_of, write
from support.conversation import conversations_for, person, reply, thread_conversation
from support.mf2 import mf2_items
from support.render import make_site

BERLIN = ZoneInfo("Europe/Berlin")

def _entry(html: str) -> dict[str, Any]:
    entries = [i for i in mf2_items(html) if i["type"] == ["h-entry"]]
    assert len(entries) == 1
    return entries[0]


# --- helpers ------------------------------------------------------------------------------------


def _site(tmp_path: Path, **config: Any) -> Site:
    return make_site(tmp_path, **config)


def _object_id(site: Site) -> str:
    return site.posts[0].url + "object.json"


def _render(site: Site, conversations: Conversations | None) -> dict[str, Any]:
    env = make_environment(site.config)
    return {o.path: o for o in plan_pages(site, env, fingerprint_salt="s",
                                          conversations=conversations)}


def _page(site: Site, conversations: Conversations | None) -> str:
    out = _render(site, conversations)[site.posts[0].path + "index.html"]
    return str(out.render().decode())


def _with(site: Site, *convs: PostConversation) -> Conversations:
    return conversations_for(site.config.url("actor.json"), *convs)


# --- the view -----------------------------------------------------------------------------------


def test_replies_nest_three_deep_then_flatten_under_the_third() -> None:
    conv = thread_conversation("https://blog.example/p/object.json")
    view = conversation_view(conv, tz=UTC)
    assert view is not None and view.reply_count == 6
    first, edited = view.replies
    assert [r.depth for r in (first, first.replies[0], first.replies[0].replies[0])] == [1, 2, 3]
    third = first.replies[0].replies[0]
    # r4 answers r3, r5 answers r4: both listed flat under r3, in time order; r5 says whom.
    assert [r.id.rsplit("/", 1)[1] for r in third.replies] == ["r4", "r5"]
    assert [r.depth for r in third.replies] == [4, 4]
    assert third.replies[0].replying_to is None  # it answers the reply it is listed under
    assert third.replies[1].replying_to is not None
    assert third.replies[1].replying_to.name == "Person 4"
    assert all(r.replies == () for r in third.replies)
    assert edited.edited and edited.updated is not None and not first.edited
    assert edited.author.avatar is None and edited.author.initial == "P"


def test_a_reply_whose_parent_is_not_shown_and_a_loop_are_kept_at_the_top() -> None:
    oid = "https://blog.example/p/object.json"
    orphan = reply(1, "https://elsewhere.example/held-reply", 1)
    a = reply(2, "https://server0.example/notes/r3", 2)  # a answers b ...
    b = reply(3, a.id, 3)  # ... and b answers a: reached from nowhere
    view = conversation_view(PostConversation(oid, replies=(orphan, a, b)), tz=UTC)
    assert view is not None and view.reply_count == 3
    assert [r.id for r in view.replies][0] == orphan.id
    shown = {r.id for r in view.replies} | {c.id for r in view.replies for c in r.replies}
    assert shown == {orphan.id, a.id, b.id}


def test_faces_are_capped_with_the_rest_counted() -> None:
    view = conversation_view(thread_conversation("https://b.example/o", likes=15), tz=UTC)
    assert view is not None
    assert (view.likes.count, len(view.likes.shown), view.likes.more) == (15, MAX_FACES, 3)
    assert view.likes.shown[0].person.name == "Person 100"  # the earliest first
    exact = conversation_view(thread_conversation("https://b.example/o", likes=MAX_FACES),
                              tz=UTC)
    assert exact is not None and exact.likes.more == 0
    assert [f.kind for f in view.reactions] == ["like", "boost", "quote"]


def test_people_without_a_name_or_a_safe_avatar() -> None:
    nameless = dataclasses.replace(person(1), name="  ", avatar="http://server1.example/a.png")
    anonymous = dataclasses.replace(person(2), name="", handle="", url="javascript:alert(1)")
    conv = PostConversation("https://b.example/o", likes=(
        Reaction("like", nameless, "2026-05-01T10:00:00Z"),
        Reaction("like", anonymous, "2026-05-01T10:01:00Z")))
    view = conversation_view(conv, tz=UTC)
    assert view is not None
    first, second = (f.person for f in view.likes.shown)
    assert (first.name, first.avatar) == ("@p1@server1.example", None)  # http: never shown
    assert second.name == "server2.example"  # the server's name stands in
    assert second.url == "https://server2.example/users/p2"  # the id, not javascript:


def test_times_in_the_site_zone_and_relative_to_the_post() -> None:
    conv = PostConversation("https://b.example/o", replies=(reply(1, "https://b.example/o", 5),))
    view = conversation_view(conv, tz=BERLIN, post_date=datetime(2026, 5, 1, 7, 0, tzinfo=UTC))
    assert view is not None
    t = view.replies[0].published
    assert (t.iso, t.text, t.date) == ("2026-05-01T10:05:00Z", "1 May 2026, 12:05", "1 May 2026")
    assert t.relative == "3 hours after the post"
    odd = PostConversation("https://b.example/o", replies=(
        dataclasses.replace(reply(1, "https://b.example/o", 5), published="<b>soon</b>"),))
    shown = conversation_view(odd, tz=UTC)
    assert shown is not None and shown.replies[0].published.text == "<b>soon</b>"  # escaped later


def test_nothing_public_is_no_view() -> None:
    assert conversation_view(None, tz=UTC) is None
    assert conversation_view(PostConversation("https://b.example/o"), tz=UTC) is None


# --- the page -----------------------------------------------------------------------------------


def test_the_page_parses_as_microformats(tmp_path: Path) -> None:
    site = _site(tmp_path)
    html = _page(site, _with(site, thread_conversation(_object_id(site))))
    entry = _entry(html)
    props = entry["properties"]
    comments = props["comment"]
    assert len(comments) == 2  # r1 (with its thread) and r6
    first = comments[0]
    assert first["type"] == ["h-cite"]
    p = first["properties"]
    assert p["url"] == ["https://server1.example/@p1/r1"]
    assert p["published"] == ["2026-05-01T10:01:00Z"]
    assert p["content"][0]["html"] == "<p>Reply number 1</p>"
    author = p["author"][0]
    assert author["type"] == ["h-card"]
    assert author["properties"]["name"] == ["Person 1"]
    assert author["properties"]["url"] == ["https://server1.example/@p1"]
    assert author["properties"]["photo"] == ["https://server1.example/avatars/p1.png"]
    assert author["properties"]["nickname"] == ["p1@server1.example"]
    # The thread: r1 > r2 > r3 > (r4, r5).
    r2 = p["comment"][0]
    r3 = r2["properties"]["comment"][0]
    assert [c["properties"]["content"][0]["value"] for c in r3["properties"]["comment"]] == \
        ["Reply number 4", "Reply number 5"]
    assert comments[1]["properties"]["updated"] == ["2026-05-02T08:00:00Z"]  # edited
    assert "photo" not in comments[1]["properties"]["author"][0]["properties"]  # placeholder
    likes, reposts, mentions = props["like"], props["repost"], props["mention"]
    assert len(likes) == MAX_FACES and all(x["type"] == ["h-cite"] for x in likes)
    assert likes[0]["properties"]["author"][0]["properties"]["name"] == ["Person 100"]
    assert likes[0]["properties"]["author"][0]["properties"]["url"] == \
        ["https://server1.example/@p100"]
    assert reposts[0]["properties"]["author"][0]["properties"]["name"] == ["Person 200"]
    assert mentions[0]["properties"]["url"] == ["https://server0.example/notes/quoting"]
    assert "and 3 more" in html
    assert "6 replies · 15 likes · 1 boost · 1 quote" in html
    assert html.count('loading="lazy"') >= MAX_FACES + 5
    assert re.search(r'<img class="u-photo conv-avatar" src="https://server1\.example/avatars/'
                     r'p1\.png" alt="Person 1" width="40" height="40"', html)


def test_what_other_servers_send_is_escaped(tmp_path: Path) -> None:
    site = _site(tmp_path)
    oid = _object_id(site)
    evil = dataclasses.replace(
        person(1), name='<script>alert("n")</script>\u202egnp.exe',
        handle='x"><img src=x onerror=alert(1)>@server1.example',
        url='https://server1.example/" onmouseover="alert(1)',
        avatar='https://server1.example/a.png" onerror="alert(1)')
    hostile = dataclasses.replace(reply(1, oid, 1, author=evil), url="javascript:alert(1)")
    html = _page(site, _with(site, PostConversation(oid, replies=(hostile,))))
    section = html[html.index('<section class="conversation"'):html.index("</section>")]
    assert "<script>alert" not in section and "<img src=x" not in section
    assert "&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;" in section
    assert "<bdi>&lt;script&gt;" in section  # isolated: the RTL override stays inside
    assert 'onmouseover="' not in section and 'onerror="' not in section
    assert "javascript:" not in section


def test_no_section_without_conversation_or_with_comments_false(tmp_path: Path) -> None:
    site = _site(tmp_path)
    conv = _with(site, thread_conversation(_object_id(site)))
    bare = _page(site, None)
    assert 'class="conversation"' not in bare and "p-comment" not in bare
    # An empty conversation (a store with nothing public) gives the very same page.
    assert _page(site, Conversations(site.config.url("actor.json"))) == bare
    closed = dataclasses.replace(site, posts=(
        dataclasses.replace(site.posts[0], comments=False), *site.posts[1:]))
    assert 'class="conversation"' not in _page(closed, conv)
    left = _site(tmp_path, fediverse=dataclasses.replace(site.config.fediverse, enabled=False))
    assert 'class="conversation"' not in _page(left, conv)
    assert 'class="conversation"' in _page(site, conv)


def test_pages_follow_the_conversation_and_nothing_else(tmp_path: Path) -> None:
    site = _site(tmp_path)
    path = site.posts[0].path + "index.html"
    other = site.posts[1].path + "index.html"
    conv = thread_conversation(_object_id(site))
    before = _render(site, _with(site, conv))
    again = _render(site, _with(site, thread_conversation(_object_id(site))))  # equal, new
    assert before[path].fingerprint == again[path].fingerprint
    assert before[path].render() == again[path].render()  # byte-identical
    liked = dataclasses.replace(conv, likes=(*conv.likes, Reaction(
        "like", person(999), "2026-06-01T00:00:00Z")))
    after = _render(site, _with(site, liked))
    assert after[path].fingerprint != before[path].fingerprint
    assert after[other].fingerprint == before[other].fingerprint
    edited = dataclasses.replace(conv, replies=(
        dataclasses.replace(conv.replies[0], content_html="<p>changed</p>"), *conv.replies[1:]))
    assert _render(site, _with(site, edited))[path].fingerprint != before[path].fingerprint
    assert _render(site, None)[path].fingerprint != before[path].fingerprint


def test_front_matter_comments(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-02-quiet.md", "---\ntitle: Quiet\ncomments: false\n---\nx\n")
    write(tmp_path, "posts/2026-01-03-open.md", "---\ntitle: Open\n---\nx\n")
    site = load_site(make_config(tmp_path), now=CONTENT_NOW).site
    by_slug = {p.slug: p for p in site.posts}
    assert by_slug["quiet"].comments is False and by_slug["open"].comments is True
    assert "comments" not in by_slug["quiet"].extra


def test_front_matter_comments_must_be_true_or_false(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-02-x.md", "---\ntitle: X\ncomments: nope\n---\nx\n")
    assert any("3: `comments`: expected true or false" in p for p in problems_of(tmp_path))


def test_the_conversation_is_valid_html(tmp_path: Path) -> None:
    import html5lib

    site = _site(tmp_path)
    html = _page(site, _with(site, thread_conversation(_object_id(site))))
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(html)
    assert parser.errors == []
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # each reply's anchor is unique on the page
