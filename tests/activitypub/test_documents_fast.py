"""The cold build's shortcuts for ActivityPub documents, each against the plain computation.

A build writes each post's object text once (PreparedObject) for object.json and the outbox
page embedding it, reads a page's terms from its objects' own @context, and makes the
federation manifest entry from the in-memory document in one sorted walk: every one of these
must give exactly the bytes (and the object_hash) of the plain functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.activitypub import documents as d
from fedipress.activitypub.documents import context as jsonld
from fedipress.activitypub.documents import json_text
from fedipress.activitypub.site import plan_activitypub
from fedipress.federation.manifest import _nested_json, entry_from_object_json
from fedipress.model import Image, Post, Site, Tag
from support.documents import BASE, KEY, hello_post, make_post, make_site

LONG = "é \"long\" line\n<p>" * 60  # past the memo threshold, with escapes and non-ASCII


def _plain_with_context(doc: Any) -> dict[str, Any]:
    """with_context as it was written first: a stripped copy, then a second walk for terms."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "@context"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    body = strip(doc)
    used: set[str] = set()
    jsonld._used_terms(body, used)
    return {"@context": jsonld._context(used), **body}


def _plain_entry(doc: dict[str, Any], level: int = 1) -> str:
    value = {"hash": d.object_hash(doc), "published": doc["published"], "doc": doc}
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).replace(
        "\n", "\n" + "  " * level)


_TERM_KEYS = ["sensitive", "focalPoint", "blurhash", "value", "webfinger", "movedTo"]
_keys = st.sampled_from(["id", "type", "name", "@context", "a", "Z", "0", "é", *_TERM_KEYS])
_strings = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["Hashtag", "Emoji", "PropertyValue", "Note", LONG, LONG + "x"]),
    st.text(min_size=json_text._LONG, max_size=json_text._LONG + 40),
)
_scalars = st.one_of(_strings, st.integers(), st.booleans(), st.none())
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=6))
def test_with_context_equals_the_two_walk_version(doc: dict[str, Any]) -> None:
    got = d.with_context(doc)
    assert got == _plain_with_context(doc)
    assert json.dumps(got) == json.dumps(_plain_with_context(doc))  # same key order too

    def containers(node: Any) -> list[int]:
        if isinstance(node, dict):
            return [id(node), *(i for v in node.values() for i in containers(v))]
        if isinstance(node, list):
            return [id(node), *(i for v in node for i in containers(v))]
        return []

    assert not set(containers(got)) & set(containers(doc))  # a copy, as before


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=6), _json, st.integers(0, 3))
def test_manifest_entry_equals_sorted_dump_with_object_hash(
    doc: dict[str, Any], published: Any, level: int
) -> None:
    doc["published"] = published
    doc["content"] = doc["contentMap"] = LONG  # one string written twice: encoded once
    expected = _plain_entry(doc, level)
    assert d.manifest_entry_json(doc, level=level) == expected
    strings: d.StringMemo = {}
    d.indented_json(doc, strings=strings)  # the memo object.json's writing leaves
    assert d.manifest_entry_json(doc, level=level, strings=strings) == expected


def test_manifest_entry_takes_the_general_path_for_unusual_values() -> None:
    doc: dict[str, Any] = {"id": "x", "published": 1.5, "n": (1, 2.5), "s": "é"}
    assert d.manifest_entry_json(doc) == _plain_entry(doc)


@settings(max_examples=300, deadline=None)
@given(_json, st.integers(0, 3))
def test_indented_json_with_a_shared_string_memo(value: Any, level: int) -> None:
    strings: d.StringMemo = {}
    for _ in range(2):  # the second call reads every long string from the memo
        got = d.indented_json([value, LONG, value], level=level, strings=strings)
        expected = json.dumps([value, LONG, value], ensure_ascii=False, indent=2)
        assert got == expected.replace("\n", "\n" + "  " * level)


def _posts() -> list[Post]:
    hello = hello_post()
    return [
        hello,
        replace(hello, slug="cw", url=BASE + "posts/cw/", path="posts/cw/",
                content_warning="spoilers", html=LONG, in_reply_to="https://x.example/1"),
        make_post("plain", 3, html="<p>Hi @carol@example.org, ¶ “quoted”</p>"),
        make_post("pic", 4, image=Image(BASE + "a.png", alt="A"),
                  tags=(Tag("blur hash", "blur-hash", BASE + "tags/blur-hash/"),)),
        *[make_post(f"n{i}", i % 27 + 1, title="") for i in range(5, 30)],
    ]


def _site(**fediverse: Any) -> Site:
    posts = sorted(_posts(), key=lambda p: (p.date, p.url), reverse=True)
    return replace(make_site(**fediverse), posts=tuple(posts))


def test_outbox_pages_equal_the_plain_documents() -> None:
    for fediverse in ({}, {"post_type": "article"}, {"note_content": "summary"}):
        site = _site(**fediverse)
        posts = list(site.federated())
        mentions = {"carol@example.org": "https://example.org/users/carol"}
        docs = {p.url: d.object_document(site, p, mentions=mentions) for p in posts}
        for size in (1, 7, 20):
            pages = max(1, -(-len(posts) // size))
            for number in range(1, pages + 1):
                expected = d.serialize(d.outbox_page(
                    site, number, page_size=size, posts=posts,
                    objects=lambda p, docs=docs: docs[p.url]))
                got = d.serialize_outbox_page(
                    site, number, page_size=size, posts=posts,
                    objects=lambda p, docs=docs: d.PreparedObject(docs[p.url]))
                assert got == expected


def test_outbox_page_walks_objects_whose_context_is_not_its_own() -> None:
    site = _site()
    posts = list(site.federated())[:3]
    doc = d.object_document(site, posts[0])
    odd = [
        {k: v for k, v in doc.items() if k != "@context"},  # no context
        {**doc, "tag": [{"@context": "x", "type": "Emoji", "name": ":a:"}]},  # nested one
        {"id": doc["id"], **doc},  # @context not first
    ]
    for variant in odd:
        expected = d.serialize(d.outbox_page(site, 1, posts=posts, objects=lambda _p, v=variant: v))
        got = d.serialize_outbox_page(site, 1, posts=posts,
                                      objects=lambda _p, v=variant: d.PreparedObject(v))
        assert got == expected


def test_prepared_object_bytes_and_manifest_entry() -> None:
    site = _site()
    for post in site.federated():
        doc = d.object_document(site, post)
        data = d.PreparedObject(doc).serialized()
        assert bytes(data) == d.serialize(doc)
        rel = post.path + "object.json"
        assert entry_from_object_json(rel, data) == entry_from_object_json(rel, bytes(data))
        oid, entry = entry_from_object_json(rel, bytes(data)) or ("", b"")
        plain = {"hash": d.object_hash(doc), "published": doc["published"], "doc": doc}
        assert (oid, entry) == (doc["id"], _nested_json(plain, 1).encode())
        canonical = json.dumps({k: v for k, v in doc.items()
                                if k not in ("@context", "replies", "likes", "shares")},
                               sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert json.loads(entry)["hash"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_plan_renders_the_same_bytes_in_any_order() -> None:
    """object.json and its outbox page share one prepared text, whichever renders first,
    and equal the plain serialization of the plain documents."""
    site = _site()
    posts = list(site.federated())
    expected = {p.path + "object.json": d.serialize(d.object_document(site, p)) for p in posts}
    expected |= {d.outbox_page_path(n): d.serialize(d.outbox_page(site, n, page_size=4))
                 for n in range(1, -(-len(posts) // 4) + 1)}
    for reverse in (False, True):
        outputs = plan_activitypub(site, KEY, fingerprint_salt="s", page_size=4)
        wanted = [o for o in outputs if o.path in expected]
        assert len(wanted) == len(expected)
        for out in sorted(wanted, key=lambda o: o.path, reverse=reverse):
            assert bytes(out.render()) == expected[out.path], out.path
            assert bytes(out.render()) == expected[out.path], out.path  # and again


def test_context_terms_read_back_only_what_with_context_writes() -> None:
    doc = d.with_context({"type": "Note", "sensitive": False,
                          "attachment": [{"type": "Image", "blurhash": "x"}]})
    assert jsonld._context_terms(doc) == {"sensitive", "blurhash"}
    assert jsonld._context_terms(d.with_context({"type": "Note"})) == set()
    for context in ([d.AS_CONTEXT], [d.SEC_CONTEXT, d.AS_CONTEXT],
                    [d.AS_CONTEXT, d.SEC_CONTEXT, {"sensitive": "as:other"}],
                    [d.AS_CONTEXT, d.SEC_CONTEXT, {"blurhash": "toot:blurhash"}],  # no prefix
                    [d.AS_CONTEXT, d.SEC_CONTEXT, {"x": "y"}], "x"):
        assert jsonld._context_terms({"@context": context}) is None


def test_mentions_time_and_dates_unchanged() -> None:
    # The fast page keeps each object's published/to/cc exactly (a reply, a mention).
    site = _site()
    post = next(p for p in site.federated() if p.slug == "plain")
    doc = d.object_document(site, post)
    page = json.loads(d.serialize_outbox_page(site, 1, posts=[post],
                                              objects=lambda _p: d.PreparedObject(doc)))
    item = page["orderedItems"][0]
    assert item["published"] == doc["published"] == "2024-03-03T09:30:00Z"
    assert item["cc"] == doc["cc"] and item["to"] == doc["to"]
    assert datetime(2024, 3, 3, 9, 30, tzinfo=UTC) == post.date


def test_outbox_page_trusts_an_object_context_as_with_context_wrote_it() -> None:
    """The precondition the fast page relies on: an object's own @context names every term
    it uses (object_document's always does). One that lies is taken at its word."""
    site = _site()
    post = next(p for p in site.federated() if p.slug == "cw")
    doc = d.object_document(site, post)
    assert "sensitive" in doc["@context"][2]
    liar = {**doc, "@context": [d.AS_CONTEXT, d.SEC_CONTEXT]}
    page = json.loads(d.serialize_outbox_page(site, 1, posts=[post],
                                              objects=lambda _p: d.PreparedObject(liar)))
    assert page["@context"] == [d.AS_CONTEXT, d.SEC_CONTEXT]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12), st.integers(-5, 10**12))
def test_collections_written_from_their_shape_equal_the_plain_documents(
    slug: str, count: int
) -> None:
    post = make_post("x", 1)
    post = replace(post, url=f"{BASE}posts/{slug}\"é\\/")
    plain = {"likes": d.likes_document, "shares": d.shares_document}
    for kind, build in plain.items():
        assert d.serialize_collection(post, kind, count) == d.serialize(build(post, count))
        assert d.serialize_collection(post, kind) == d.serialize(build(post))
    assert d.serialize_collection(post, "likes", True) == d.serialize(d.likes_document(post, True))


def test_object_documents_equal_object_document() -> None:
    mentions = {"carol@example.org": "https://example.org/users/carol"}
    for fediverse in ({}, {"post_type": "article"}, {"note_content": "summary"}):
        site = _site(**fediverse)
        build = d.object_documents(site, mentions=mentions)
        for post in site.federated():
            doc = build(post)
            assert doc == d.object_document(site, post, mentions=mentions)
            assert doc == _plain_with_context(doc)  # its own @context, as with_context writes
            assert jsonld._context_terms(doc) is not None


def test_manifest_entry_with_keys_that_are_not_strings() -> None:
    import pytest

    for nested in ({1: "a", 2: "b"}, {"a": {3: 1}}):
        doc: dict[Any, Any] = {"id": "x", "published": "p", "n": nested}
        assert d.manifest_entry_json(doc) == _plain_entry(doc)
    mixed: dict[Any, Any] = {"id": "x", "published": "p", "n": {1: "a", "b": 2}}
    with pytest.raises(TypeError):  # as json.dumps(sort_keys=True) itself
        d.manifest_entry_json(mixed)
