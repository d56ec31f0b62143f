"""JSON-LD contexts: documents reference exactly two context URLs (ActivityStreams and
security/v1) and define every extension term they use in ONE inline context object, built
from the terms the document actually contains (`with_context`). That is Mastodon's own
layout, which strict JSON-LD consumers expand without dropping anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["AS_CONTEXT", "SEC_CONTEXT", "with_context"]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SEC_CONTEXT = "https://w3id.org/security/v1"

# Extension terms, defined the way Mastodon defines them (including its `schema` prefix,
# "http://schema.org#", which is wrong but is what everyone matches on).
_TOOT = "http://joinmastodon.org/ns#"
_SCHEMA = "http://schema.org#"
_GTS = "https://gotosocial.org/ns#"  # interaction policies, as Mastodon and GoToSocial write them
_FEP_044F = "https://w3id.org/fep/044f#"  # quote requests and authorizations
_TERMS: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "featuredTags": {"@id": "toot:featuredTags", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "memorial": "toot:memorial",
    "attributionDomains": {"@id": "toot:attributionDomains", "@type": "@id"},
    "blurhash": "toot:blurhash",
    "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
    "Emoji": "toot:Emoji",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    # FEP-2c59: the canonical handle, read by Mastodon 4.6+.
    "webfinger": {
        "@id": "https://purl.archive.org/socialweb/webfinger#webfinger",
        "@type": "http://www.w3.org/2001/XMLSchema#string",
    },
    # Who may quote, reply, like and boost a post (FEP-044f reads `canQuote`).
    "interactionPolicy": {"@id": "gts:interactionPolicy", "@type": "@id"},
    "canQuote": {"@id": "gts:canQuote", "@type": "@id"},
    "canReply": {"@id": "gts:canReply", "@type": "@id"},
    "canLike": {"@id": "gts:canLike", "@type": "@id"},
    "canAnnounce": {"@id": "gts:canAnnounce", "@type": "@id"},
    "automaticApproval": {"@id": "gts:automaticApproval", "@type": "@id"},
    "manualApproval": {"@id": "gts:manualApproval", "@type": "@id"},
    "QuoteRequest": _FEP_044F + "QuoteRequest",
    "QuoteAuthorization": _FEP_044F + "QuoteAuthorization",
    "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
    "interactionTarget": {"@id": "gts:interactionTarget", "@type": "@id"},
}
_PREFIXES = {"toot": _TOOT, "schema": _SCHEMA, "gts": _GTS}
# The prefixes each term's definition is written with ("toot:" in "toot:Emoji").
_TERM_PREFIXES: dict[str, frozenset[str]] = {
    term: frozenset(p for p in _PREFIXES if f"{p}:" in json.dumps(definition))
    for term, definition in _TERMS.items()
}


def _without_context(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "@context"}


def _used_terms(node: Any, found: set[str]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "@context":
                continue
            _note_terms(key, value, found)
            # contentMap etc. have language keys, not terms; values are plain strings.
            if _is_container(value):  # (a string holds no terms: no call)
                _used_terms(value, found)
    elif isinstance(node, list):
        for item in node:
            if _is_container(item):
                _used_terms(item, found)


def _note_terms(key: Any, value: Any, found: set[str]) -> None:
    """The extension terms one member uses: its key, and for "type" its value(s)."""
    if key in _TERMS:
        found.add(key)
    if key == "type":
        for t in value if isinstance(value, list) else [value]:
            if isinstance(t, str) and t in _TERMS:
                found.add(t)


def _is_container(value: Any) -> bool:
    """isinstance(value, (Mapping, list)), the plain types answered without the ABC check."""
    kind = type(value)
    if kind is dict or kind is list:
        return True
    return kind is not str and isinstance(value, (Mapping, list))


def _stripped(node: Any, found: set[str]) -> Any:
    """`node` without nested @context keys (new containers, as before), collecting the terms
    it uses into `found` on the way: one walk where strip + _used_terms took two."""
    if isinstance(node, Mapping):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            if key == "@context":
                continue
            _note_terms(key, value, found)
            out[key] = _stripped(value, found) if isinstance(value, (Mapping, list)) else value
        return out
    if isinstance(node, list):
        return [_stripped(v, found) if isinstance(v, (Mapping, list)) else v for v in node]
    return node


def _context(used: set[str]) -> list[Any]:
    """The @context of a document using the extension terms `used`."""
    inline: dict[str, Any] = {}
    needed_prefixes = {prefix for term in used for prefix in _TERM_PREFIXES[term]}
    for prefix in _PREFIXES:  # fixed order
        if prefix in needed_prefixes:
            inline[prefix] = _PREFIXES[prefix]
    for term in _TERMS:  # fixed order, whatever order the document used them in
        if term in used:
            inline[term] = _TERMS[term]
    context: list[Any] = [AS_CONTEXT, SEC_CONTEXT]
    if inline:
        context.append(inline)
    return context


def with_context(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with one top-level @context: the two URLs plus the inline terms it uses.

    Nested @context keys (from embedded documents) are removed: one context governs all.
    The result shares nothing mutable with `doc`.
    """
    used: set[str] = set()
    body = _stripped(doc, used)
    return {"@context": _context(used), **body}


def _with_own_context(doc: dict[str, Any]) -> dict[str, Any]:
    """with_context(doc) for a document this module just built and nobody else holds (so its
    containers need no copy) and that embeds no @context: one walk, collecting terms only."""
    used: set[str] = set()
    _used_terms(doc, used)
    return {"@context": _context(used), **doc}


def _context_terms(doc: Mapping[str, Any]) -> set[str] | None:
    """The extension terms `doc` uses, read from its own top-level @context when that is
    exactly what with_context writes (the two URLs, then known prefixes and terms with their
    definitions); None otherwise. Valid for a document as with_context returned it."""
    context = doc.get("@context")
    if type(context) is not list or context[:2] != [AS_CONTEXT, SEC_CONTEXT]:
        return None
    if len(context) == 2:
        return set()
    inline = context[2]
    if len(context) != 3 or type(inline) is not dict:
        return None
    used: set[str] = set()
    for key, value in inline.items():
        if key in _TERMS and value == _TERMS[key]:
            used.add(key)
        elif not (key in _PREFIXES and value == _PREFIXES[key]):
            return None
    return used if _context(used) == context else None
