"""Strict JSON-LD: our documents expand with every property intact.

Strict servers (Fedify, and anything that processes JSON-LD) drop terms the context does not
define. The ActivityStreams context even maps unknown terms to blank-node IRIs ("@vocab": "_:"),
so a missing definition fails quietly. Here pyld expands each document offline, using the
context documents Fedify ships preloaded (tests/interop/node_modules, read once per session),
and every key we emit must come out as an absolute IRI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld

from fedipress.activitypub import documents as d
from support.documents import KEY, WHEN, hello_post, make_site

INTEROP = Path(__file__).parents[1] / "interop"
NODE = INTEROP / "node_modules" / ".bin" / "node"


@pytest.fixture(scope="session")
def contexts() -> dict[str, Any]:
    node = str(NODE) if NODE.exists() else shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "@fedify").exists():
        pytest.skip("Fedify is not installed in tests/interop (npm ci there)")
    result = subprocess.run(
        [node, "dump-contexts.mjs", d.AS_CONTEXT, d.SEC_CONTEXT],
        cwd=INTEROP, capture_output=True, text=True, timeout=60, check=True,
    )
    docs: dict[str, Any] = json.loads(result.stdout)
    assert set(docs) == {d.AS_CONTEXT, d.SEC_CONTEXT}
    return docs


def _expand(doc: Any, contexts: dict[str, Any]) -> list[Any]:
    def loader(url: str, options: Any = None) -> dict[str, Any]:
        if url not in contexts:
            raise AssertionError(f"document needs context {url}, which nothing should load")
        return {"contextUrl": None, "documentUrl": url, "document": contexts[url]}

    expanded: list[Any] = jsonld.expand(doc, {"documentLoader": loader})
    return expanded


def _is_iri(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _walk_expanded(node: Any, keys: set[str], types: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "@type":
                types.update(value if isinstance(value, list) else [value])
            elif not key.startswith("@"):
                keys.add(key)
            _walk_expanded(value, keys, types)
    elif isinstance(node, list):
        for item in node:
            _walk_expanded(item, keys, types)


def _emitted(node: Any, out: list[tuple[str, Any]]) -> None:
    """(key, value) of every property we wrote, at any depth (not language-map keys)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                continue
            out.append((key, value))
            if key != "contentMap":
                _emitted(value, out)
    elif isinstance(node, list):
        for item in node:
            _emitted(item, out)


# 25 replies: the replies collection has two pages, the context (the post and them) too.
THREAD = d.Thread(replies=tuple(f"https://social.example/notes/{n}" for n in range(25)),
                  likes=7, shares=2)
QUOTING = "https://social.example/notes/quoting"
AUTHORIZATION = "https://blog.example/.fedipress/quotes/abc"
QUOTE_REQUEST = {"id": "https://social.example/requests/1", "type": "QuoteRequest",
                 "actor": "https://social.example/users/bob",
                 "object": "https://blog.example/posts/hello/object.json",
                 "instrument": {"id": QUOTING, "type": "Note"}}


def _documents() -> dict[str, dict[str, Any]]:
    site = make_site(posts=3, handle_domain="alice.example")
    article_site = make_site(post_type="article")
    post = hello_post()
    obj = d.object_document(site, post, mentions={"bob@social.example": "https://s.example/u/b"})
    actor = d.actor_document(site, KEY)
    follow = {"id": "https://social.example/f/1", "type": "Follow",
              "actor": "https://social.example/users/bob", "object": actor["id"]}
    return {
        "actor": actor,
        "note": obj,
        "article": d.object_document(article_site, post),
        "create": d.create_activity(site, obj),
        "update": d.update_activity(site, obj, revision="r1"),
        "delete": d.delete_activity(site, obj["id"], deleted=WHEN),
        "actor-update": d.actor_update_activity(site, actor, revision="r1"),
        "accept": d.accept_activity(site, follow, accept_id=site.config.url("a/1")),
        "reject": d.reject_activity(site, follow, reject_id=site.config.url("r/1")),
        "outbox": d.outbox_document(site),
        "outbox-page": d.outbox_page(site, 1),
        "followers": d.followers_document(site, 4),
        "following": d.following_document(site),
        "featured": d.featured_document(site),
        "replies": d.replies_document(post, THREAD),
        "replies-page": d.thread_page_document("replies", site, post, THREAD, 2),
        "context": d.context_document(site, post, THREAD),
        "context-page": d.thread_page_document("context", site, post, THREAD, 2),
        "note-with-thread": d.object_document(site, replace(post, quotes="followers"),
                                              thread=THREAD),
        "quote-authorization": d.quote_authorization_document(
            actor["id"], AUTHORIZATION, quoting=QUOTING, quoted=obj["id"]),
        "quote-accept": d.quote_accept_activity(actor["id"], QUOTE_REQUEST,
                                                accept_id=actor["id"] + "#accepts/q1",
                                                authorization_id=AUTHORIZATION),
        "quote-reject": d.quote_reject_activity(actor["id"], QUOTE_REQUEST,
                                                reject_id=actor["id"] + "#rejects/q1"),
        "authorization-delete": d.authorization_delete_activity(
            actor["id"], AUTHORIZATION, "https://social.example/users/bob",
            delete_id=AUTHORIZATION + "#delete-1"),
        "likes": d.likes_document(post, 2),
        "shares": d.shares_document(post, 3),
    }


DOCS = _documents()


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_property_survives_expansion(name: str, contexts: dict[str, Any]) -> None:
    doc = DOCS[name]
    expanded = _expand(doc, contexts)
    keys: set[str] = set()
    types: set[str] = set()
    _walk_expanded(expanded, keys, types)
    dropped = sorted(k for k in keys if not _is_iri(k))
    assert not dropped, f"{name}: terms expanded to non-IRIs (undefined): {dropped}"
    assert types and all(_is_iri(t) for t in types), f"{name}: undefined types {types}"

    # Each key we emitted, expanded on its own with the document's context, must give one
    # absolute IRI, and that IRI must appear in the full expansion.
    emitted: list[tuple[str, Any]] = []
    _emitted(doc, emitted)
    for key, value in emitted:
        if key in ("id", "type"):
            continue
        probe = _expand({"@context": doc["@context"], "@id": "https://x.example/", key: value},
                        contexts)
        props = [k for k in (probe[0] if probe else {}) if not k.startswith("@")]
        assert len(props) == 1 and _is_iri(props[0]), f"{name}: {key!r} is dropped: {probe}"
        assert props[0] in keys, f"{name}: {key!r} ({props[0]}) missing from the expansion"


def test_extension_terms_expand_to_their_vocabularies(contexts: dict[str, Any]) -> None:
    keys: set[str] = set()
    types: set[str] = set()
    _walk_expanded(_expand(DOCS["actor"], contexts), keys, types)
    _walk_expanded(_expand(DOCS["note"], contexts), keys, types)
    for iri in ("http://joinmastodon.org/ns#discoverable", "http://joinmastodon.org/ns#indexable",
                "http://joinmastodon.org/ns#featured",
                "http://joinmastodon.org/ns#attributionDomains",
                "https://www.w3.org/ns/activitystreams#manuallyApprovesFollowers",
                "https://www.w3.org/ns/activitystreams#sensitive", "http://schema.org#value",
                "https://purl.archive.org/socialweb/webfinger#webfinger",
                "https://w3id.org/security#publicKeyPem"):
        assert iri in keys, iri
    assert "http://schema.org#PropertyValue" in types
    assert "https://www.w3.org/ns/activitystreams#Hashtag" in types
    assert "https://www.w3.org/ns/activitystreams#Mention" in types


def test_quote_terms_expand_to_their_vocabularies(contexts: dict[str, Any]) -> None:
    """interactionPolicy and FEP-044f's terms expand to the IRIs Mastodon and GoToSocial use,
    so a strict reader finds `canQuote` where Mastodon 4.5 looks for it."""
    keys: set[str] = set()
    types: set[str] = set()
    for name in ("note-with-thread", "quote-authorization", "quote-accept"):
        _walk_expanded(_expand(DOCS[name], contexts), keys, types)
    for iri in ("https://gotosocial.org/ns#interactionPolicy", "https://gotosocial.org/ns#canQuote",
                "https://gotosocial.org/ns#canReply", "https://gotosocial.org/ns#canLike",
                "https://gotosocial.org/ns#canAnnounce",
                "https://gotosocial.org/ns#automaticApproval",
                "https://gotosocial.org/ns#interactingObject",
                "https://gotosocial.org/ns#interactionTarget",
                "https://www.w3.org/ns/activitystreams#context",
                "https://www.w3.org/ns/activitystreams#result"):
        assert iri in keys, iri
    assert "https://w3id.org/fep/044f#QuoteAuthorization" in types
    # The followers policy names the followers collection (and the author) as IRIs.
    expanded = _expand(DOCS["note-with-thread"], contexts)[0]
    policy = expanded["https://gotosocial.org/ns#interactionPolicy"][0]
    quoters = policy["https://gotosocial.org/ns#canQuote"][0][
        "https://gotosocial.org/ns#automaticApproval"]
    assert [q["@id"] for q in quoters] == ["https://blog.example/followers.json",
                                            "https://blog.example/actor.json"]


def test_an_undefined_term_is_caught(contexts: dict[str, Any]) -> None:
    """The check above can fail: a made-up term does not expand to an IRI."""
    doc = {**DOCS["note"], "madeUpTerm": True}
    keys: set[str] = set()
    _walk_expanded(_expand(doc, contexts), keys, set())
    assert [k for k in keys if not _is_iri(k)] == ["_:madeUpTerm"]
    probe = _expand({"@context": doc["@context"], "@id": "https://x.example/", "madeUpTerm": 1},
                    contexts)
    props = [k for k in (probe[0] if probe else {}) if not k.startswith("@")]
    assert not (len(props) == 1 and _is_iri(props[0]))
