"""ActivityPub documents as plain dicts: the actor, post objects, activities and collections.

Every function here is pure: model objects (and, where time matters, an explicit datetime) in,
a dict out. Key order is fixed by construction and `serialize` is deterministic, so a rebuild
of unchanged content produces identical bytes and `object_hash` only changes on real edits.

JSON-LD: documents reference exactly two context URLs (ActivityStreams and security/v1) and
define every extension term they use in ONE inline context object, built from the terms the
document actually contains (`with_context`). That is Mastodon's own layout, which strict
JSON-LD consumers expand without dropping anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape, unescape
from json.encoder import encode_basestring as _encode_string
from typing import Any
from urllib.parse import urlsplit

import markdown

from ..model import Image, Post, Site
from .reduce import FoundImage, reduce_html

__all__ = [
    "AS_CONTEXT",
    "MAX_ACTIVITY_BYTES",
    "OUTBOX_PAGE_SIZE",
    "PUBLIC",
    "SEC_CONTEXT",
    "accept_activity",
    "actor_document",
    "actor_id",
    "actor_update_activity",
    "DocumentBytes",
    "PreparedObject",
    "create_activity",
    "delete_activity",
    "featured_document",
    "federated_posts",
    "fit_activity",
    "followers_document",
    "following_document",
    "hashtag_name",
    "indented_json",
    "iso",
    "manifest_entry_json",
    "likes_document",
    "object_document",
    "object_documents",
    "object_hash",
    "object_id",
    "outbox_document",
    "outbox_page",
    "outbox_page_count",
    "outbox_page_path",
    "outbox_pages",
    "post_mentions",
    "reject_activity",
    "replies_document",
    "serialize",
    "serialize_collection",
    "serialize_outbox_page",
    "shares_document",
    "update_activity",
    "with_context",
]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SEC_CONTEXT = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
OUTBOX_PAGE_SIZE = 20
MAX_ATTACHMENTS = 4  # Mastodon takes the first four

# Extension terms, defined the way Mastodon defines them (including its `schema` prefix,
# "http://schema.org#", which is wrong but is what everyone matches on).
_TOOT = "http://joinmastodon.org/ns#"
_SCHEMA = "http://schema.org#"
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
}
_PREFIXES = {"toot": _TOOT, "schema": _SCHEMA}
# The prefixes each term's definition is written with ("toot:" in "toot:Emoji").
_TERM_PREFIXES: dict[str, frozenset[str]] = {
    term: frozenset(p for p in _PREFIXES if f"{p}:" in json.dumps(definition))
    for term, definition in _TERMS.items()
}

_IMAGE_TYPES = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "webp": "image/webp", "avif": "image/avif", "svg": "image/svg+xml", "heic": "image/heic",
    "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg", "ogg": "audio/ogg",
    "pdf": "application/pdf",
}

# @user@server as written in a post; the server may carry a port (loopback tests do).
_MENTION_RE = re.compile(
    r"(?<![\w@/.:-])@([A-Za-z0-9_][A-Za-z0-9_.-]*)@"
    r"((?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+(?::\d{1,5})?|localhost(?::\d{1,5})?)"
)
_TAG_RE = re.compile(r"<[^>]*>")
_WORD_RE = re.compile(r"\w+")
_LETTER_RE = re.compile(r"[^\W\d]")
_CODE_RE = re.compile(r"<(pre|code)\b[^>]*>.*?</\1>", re.DOTALL | re.IGNORECASE)


# --- small helpers -------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, second precision: what every server parses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def actor_id(site: Site) -> str:
    return site.config.url("actor.json")


def object_id(post: Post) -> str:
    return post.url + "object.json"


def _followers_id(site: Site) -> str:
    return site.config.url("followers.json")


def _id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id", ""))
    return str(value)


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


def serialize(doc: Mapping[str, Any]) -> bytes:
    """Deterministic UTF-8 JSON (key order as built; 2-space indent; trailing newline)."""
    return (indented_json(doc) + "\n").encode("utf-8")


# A compact JSON text in tokens: whole strings (escapes included), structure, other scalars.
# (The string pattern is the unrolled loop: an alternation per character is 15x slower.)
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^"{}\[\],:]+')


class _Unusual(Exception):
    """A value the direct writer leaves to the general path (a float, a tuple, a subclass,
    a key that is not a string)."""


# Strings at least this long have their JSON encoding remembered (`strings` below): a post's
# content (~8 KB, and its contentMap copy) costs ~30 us to encode, and the same string is
# written in object.json, its outbox page and the federation manifest.
_LONG = 512
# id(string) -> (the string, its JSON encoding): the string is held so its id stays its own.
StringMemo = dict[int, tuple[str, str]]


def indented_json(value: Any, *, sort_keys: bool = False, level: int = 0,
                  strings: StringMemo | None = None) -> str:
    """json.dumps(value, ensure_ascii=False, indent=2, sort_keys=sort_keys), byte for byte,
    with every line after the first indented `level` more steps (a value nested that deep).

    json.dumps with `indent` runs CPython's pure-Python encoder (about a millisecond per
    post object). Documents are plain dicts, lists, strings, ints, booleans and None: those
    are written here directly, each string by the C string encoder json.dumps itself uses
    (~2x faster than re-spacing a compact dump); anything else takes that general path.
    Long strings are encoded once per call, or once across the calls sharing `strings`.
    """
    out: list[str] = []
    try:
        _write_plain(value, "\n" + "  " * level, sort_keys, out,
                     {} if strings is None else strings)
    except _Unusual:
        return _respaced_json(value, sort_keys=sort_keys, level=level)
    return "".join(out)


def _encoded(value: str, strings: StringMemo) -> str:
    """_encode_string(value), remembered in `strings` for a long one."""
    if len(value) < _LONG:
        return _encode_string(value)
    hit = strings.get(id(value))
    if hit is None or hit[0] is not value:
        hit = strings[id(value)] = (value, _encode_string(value))
    return hit[1]


class _Fragment:
    """JSON text written at level 0 (indented_json's output), spliced in place of a value:
    only ever inside a document this module builds and serializes itself."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _write_plain(value: Any, newline: str, sort_keys: bool, out: list[str],
                 strings: StringMemo) -> None:
    kind = type(value)
    if kind is str:
        out.append(_encode_string(value) if len(value) < _LONG else _encoded(value, strings))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        opener = "{" + inner
        between = "," + inner
        items = value.items()
        if sort_keys:
            if any(type(k) is not str for k in value):
                raise _Unusual
            items = sorted(items, key=_first)
        for i, (key, item) in enumerate(items):
            if type(key) is not str:
                raise _Unusual
            out.append((between if i else opener) + _encode_string(key) + ": ")
            _write_plain(item, inner, sort_keys, out, strings)
        out.append(newline + "}")
    elif kind is list:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        opener = "[" + inner
        between = "," + inner
        for i, item in enumerate(value):
            out.append(between if i else opener)
            _write_plain(item, inner, sort_keys, out, strings)
        out.append(newline + "]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is _Fragment:
        # Newlines in JSON text are all structural (strings escape theirs): re-indenting
        # every line gives the text the value would have had written at this depth.
        out.append(value.text.replace("\n", newline))
    else:
        raise _Unusual


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _respaced_json(value: Any, *, sort_keys: bool = False, level: int = 0) -> str:
    """indented_json for any value: the C encoder writes compact JSON and only its few
    structural tokens are re-spaced."""
    compact = json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, separators=(",", ":"))
    tokens = _JSON_TOKEN.findall(compact)
    out: list[str] = []
    depth = level
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t == "{" or t == "[":
            closer = "}" if t == "{" else "]"
            if i + 1 < n and tokens[i + 1] == closer:
                out.append(t + closer)
                i += 2
                continue
            depth += 1
            out.append(t + "\n" + "  " * depth)
        elif t == "}" or t == "]":
            depth -= 1
            out.append("\n" + "  " * depth + t)
        elif t == ",":
            out.append(",\n" + "  " * depth)
        elif t == ":":
            out.append(": ")
        else:
            out.append(t)
        i += 1
    return "".join(out)


class DocumentBytes(bytes):
    """serialize(document), carrying the document and its string memo: whoever reads the
    bytes where they were made (the build's after-render hook computing the federation
    manifest entry) can use the document instead of parsing them back."""

    document: dict[str, Any]
    strings: StringMemo


class PreparedObject:
    """An object document with its JSON text, written once for object.json and the outbox
    page that embeds it (and its long strings' encodings, for the federation manifest)."""

    __slots__ = ("document", "strings", "text", "_body_start")

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.strings: StringMemo = {}
        self.text = indented_json(document, strings=self.strings)
        # Where the members after "@context" start, when it is the first key (with_context
        # puts it there) and the rest holds no other: "{\n" + text[start:] is then the text
        # of the document without it, as create_activity embeds it.
        # (Newlines are structural and the first member is the only text before the first
        # ',\n  "' : deeper members are indented further.)
        self._body_start = 0
        if next(iter(document), None) == "@context" and self.text.startswith('{\n  "@context'):
            end = self.text.find(',\n  "')
            if end > 0 and '"@context"' not in self.text[end:]:
                self._body_start = end + 2

    def serialized(self) -> DocumentBytes:
        """serialize(self.document)."""
        data = DocumentBytes((self.text + "\n").encode("utf-8"))
        data.document, data.strings = self.document, self.strings
        return data

    def embedded(self) -> _Fragment | None:
        """The text of the document without its @context, to embed in another document;
        None when it has no such text (@context not first, or another one nested)."""
        if self._body_start:
            return _Fragment("{\n" + self.text[self._body_start:])
        return None


def serialize_outbox_page(
    site: Site,
    number: int,
    *,
    posts: Sequence[Post],
    objects: Callable[[Post], PreparedObject],
    page_size: int = OUTBOX_PAGE_SIZE,
) -> bytes:
    """serialize(outbox_page(site, number, page_size=page_size, posts=posts, objects=...)),
    byte for byte, for objects as object_document made them (prepared once per build).

    Each Create embeds its object's JSON text as written for object.json (re-indented), and
    the page's terms are those of its objects' own @context: the Create and page around them
    add none. Nothing is walked or copied again (the plain way walked each object 3 times).
    """
    pages = max(1, -(-len(posts) // page_size))
    if not 1 <= number <= pages:
        raise ValueError(f"outbox page {number} out of range 1..{pages}")
    chunk = posts[(number - 1) * page_size : number * page_size]
    actor = actor_id(site)
    followers = _followers_id(site)
    used: set[str] = set()
    items: list[dict[str, Any]] = []
    for post in chunk:
        prepared = objects(post)
        obj = prepared.document
        embedded = prepared.embedded()
        terms = _context_terms(obj) if type(embedded) is _Fragment else None
        if terms is None:  # not as with_context writes it: the plain way, walked
            item = _without_context(create_activity(site, obj))
            _used_terms(item, used)
            items.append(item)
            continue
        used |= terms
        create = {
            "id": f"{obj['id']}#create",
            "type": "Create",
            "actor": actor,
            "published": obj.get("published"),
            "to": obj.get("to", [PUBLIC]),
            "cc": obj.get("cc", [followers]),
            "object": embedded,
        }
        _used_terms({k: v for k, v in create.items() if k != "object"}, used)
        items.append(create)
    doc: dict[str, Any] = {"@context": _context(used),
                           **_outbox_page_head(site, number, pages, len(posts))}
    doc["orderedItems"] = items
    out: list[str] = []
    _write_plain(doc, "\n", False, out, {})  # only plain values and fragments: no _Unusual
    out.append("\n")
    return "".join(out).encode("utf-8")


def manifest_entry_json(doc: Mapping[str, Any], *, level: int = 1,
                        strings: StringMemo | None = None) -> str:
    """indented_json({"hash": object_hash(doc), "published": doc["published"], "doc": doc},
    sort_keys=True, level=level): the federation manifest's entry for an object document.

    One walk writes both the sorted, indented document and the compact text object_hash
    digests (json.dumps' separators and string encoder, so the same hash), each long string
    encoded once (or never, with the `strings` of the document's serialization).
    """
    memo: StringMemo = {} if strings is None else strings
    pad = "\n" + "  " * level
    try:
        if type(doc) is not dict or any(type(k) is not str for k in doc):
            raise _Unusual
        body: list[str] = []
        compact: list[str] = []
        inner = pad + "    "
        for i, (key, item) in enumerate(sorted(doc.items(), key=_first)):
            body.append(("," if i else "{") + inner + _encode_string(key) + ": ")
            if key == "@context":
                _write_plain(item, inner, True, body, memo)
            else:
                compact.append(("," if len(compact) else "{") + _encode_string(key) + ":")
                _write_both(item, inner, body, compact, memo)
        body.append(pad + "  }" if doc else "{}")
        compact.append("}" if compact else "{}")
        published: list[str] = []
        _write_plain(doc["published"], pad + "  ", True, published, memo)
    except (_Unusual, TypeError):
        return indented_json({"hash": object_hash(doc), "published": doc["published"],
                              "doc": doc}, sort_keys=True, level=level)
    digest = hashlib.sha256("".join(compact).encode("utf-8")).hexdigest()
    return ("{" + pad + '  "doc": ' + "".join(body) + "," + pad + '  "hash": "' + digest
            + '",' + pad + '  "published": ' + "".join(published) + pad + "}")


def _write_both(value: Any, newline: str, out: list[str], compact: list[str],
                strings: StringMemo) -> None:
    """_write_plain(value, newline, True, out, strings), and into `compact` the text of
    json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))."""
    kind = type(value)
    if kind is str:
        text = _encode_string(value) if len(value) < _LONG else _encoded(value, strings)
        out.append(text)
        compact.append(text)
    elif kind is dict:
        if not value:
            out.append("{}")
            compact.append("{}")
            return
        inner = newline + "  "
        # (Keys of mixed types fail the sort with a TypeError, all ints fail the check below:
        # the caller then writes the whole entry the general way.)
        for i, (key, item) in enumerate(sorted(value.items(), key=_first)):
            if type(key) is not str:
                raise _Unusual
            name = _encode_string(key)
            out.append(("," if i else "{") + inner + name + ": ")
            compact.append(("," if i else "{") + name + ":")
            _write_both(item, inner, out, compact, strings)
        out.append(newline + "}")
        compact.append("}")
    elif kind is list:
        if not value:
            out.append("[]")
            compact.append("[]")
            return
        inner = newline + "  "
        for i, item in enumerate(value):
            out.append(("," if i else "[") + inner)
            compact.append("," if i else "[")
            _write_both(item, inner, out, compact, strings)
        out.append(newline + "]")
        compact.append("]")
    elif value is None:
        out.append("null")
        compact.append("null")
    elif value is True:
        out.append("true")
        compact.append("true")
    elif value is False:
        out.append("false")
        compact.append("false")
    elif kind is int:
        text = int.__repr__(value)
        out.append(text)
        compact.append(text)
    else:
        raise _Unusual


def object_hash(obj: Mapping[str, Any]) -> str:
    """sha256 of what followers see of `obj` (canonical JSON, keys sorted, no @context)."""
    canonical = json.dumps(
        _without_context(obj), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _media_type(url: str, declared: str | None = None) -> str | None:
    if declared:
        return declared
    path = urlsplit(url).path
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _IMAGE_TYPES.get(ext)


def _attachment(url: str, alt: str, media_type: str | None, width: int | None,
                height: int | None) -> dict[str, Any]:
    mt = _media_type(url, media_type)
    doc: dict[str, Any] = {"type": "Image" if (mt or "").startswith("image/") else "Document"}
    if mt:
        doc["mediaType"] = mt
    doc["url"] = url
    doc["name"] = alt
    if width:
        doc["width"] = width
    if height:
        doc["height"] = height
    return doc


def _image_doc(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "Image"}
    if mt := _media_type(url):
        doc["mediaType"] = mt
    doc["url"] = url
    return doc


def hashtag_name(name: str) -> str | None:
    """A tag as Mastodon would write it, without '#': no spaces or punctuation.

    Several words become CamelCase ("static sites" -> "StaticSites"); a single word keeps its
    case. None when nothing valid remains (Mastodon needs at least one non-digit).
    """
    words: list[str] = _WORD_RE.findall(name)
    if not words:
        return None
    if len(words) == 1:
        joined = words[0]
    else:
        joined = "".join(w[:1].upper() + w[1:] for w in words)
    if not _LETTER_RE.search(joined):
        return None
    return joined


def _hashtags(post: Post) -> list[tuple[str, str]]:
    """(normalised name, href) per distinct tag, in the post's order."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for tag in post.tags:
        name = hashtag_name(tag.name)
        if name is None or name.lower() in seen:
            continue
        seen.add(name.lower())
        out.append((name, tag.url))
    return out


def post_mentions(post: Post) -> tuple[str, ...]:
    """Distinct "user@server" mentions written in the post's text, in order of appearance."""
    if "@" not in post.html:
        return ()  # most posts: no need to strip code and tags from all of the HTML
    # Code is not text: "@a@b.example" in a snippet mentions nobody (markup agrees).
    text = _TAG_RE.sub(" ", _CODE_RE.sub(" ", post.html))
    seen: dict[str, None] = {}
    for user, server in _MENTION_RE.findall(text):
        seen.setdefault(f"{user}@{server.lower()}", None)
    return tuple(seen)


def _mention_href(handle: str, mentions: Mapping[str, str]) -> str:
    if handle in mentions:
        return mentions[handle]
    user, server = handle.split("@", 1)
    return f"https://{server}/@{user}"


def federated_posts(site: Site) -> list[Post]:
    """Posts that federate (front matter `federate`, defaulted from config), newest first."""
    return list(site.federated())


# --- actor ---------------------------------------------------------------------------------


def _bio_html(bio: str, base_url: str) -> str:
    if not bio.strip():
        return ""
    rendered = markdown.markdown(bio, output_format="html")
    return reduce_html(rendered, base_url=base_url).html


def _field_value(value: str) -> str:
    """Profile field value as HTML: URLs become rel="me" links (Mastodon verifies those)."""
    v = value.strip()
    if re.match(r"^https?://\S+$", v):
        shown = re.sub(r"^https?://", "", v).rstrip("/")
        return (
            f'<a href="{escape(v)}" rel="me nofollow noopener" target="_blank">'
            f"{escape(shown)}</a>"
        )
    return escape(v)


def actor_document(site: Site, public_key_pem: str | bytes) -> dict[str, Any]:
    """The blog's Person, served at actor.json (its `id`)."""
    config = site.config
    fed = config.fediverse
    aid = actor_id(site)
    pem = public_key_pem.decode("ascii") if isinstance(public_key_pem, bytes) else public_key_pem
    doc: dict[str, Any] = {
        "id": aid,
        "type": "Person",
        "preferredUsername": fed.username,
        "name": fed.display_name,
        "summary": _bio_html(fed.bio, config.base_url),
        "url": config.base_url,
    }
    avatar = fed.avatar or config.author.avatar
    if avatar:
        doc["icon"] = _image_doc(config.url(avatar) if "://" not in avatar else avatar)
    if fed.header:
        doc["image"] = _image_doc(fed.header)
    doc.update(
        {
            "inbox": fed.inbox_url,
            "outbox": config.url("outbox.json"),
            "followers": config.url("followers.json"),
            "following": config.url("following.json"),
            "featured": config.url("featured.json"),
            "endpoints": {"sharedInbox": fed.shared_inbox_url},
            "publicKey": {"id": aid + "#main-key", "owner": aid, "publicKeyPem": pem},
            "manuallyApprovesFollowers": fed.manually_approves_followers,
            "discoverable": fed.discoverable,
            "indexable": fed.indexable,
        }
    )
    published = fed.published
    if published is None and site.posts:
        published = iso(min(p.date for p in site.posts))
    if published is not None:
        doc["published"] = published
    fields: list[tuple[str, str]] = [(f.name, f.value) for f in fed.fields]
    if not fields:
        fields = [(link.name, link.url) for link in config.author.links]
    if fields:
        doc["attachment"] = [
            {"type": "PropertyValue", "name": name, "value": _field_value(value)}
            for name, value in fields
        ]
    if fed.also_known_as:
        doc["alsoKnownAs"] = list(fed.also_known_as)
    doc["webfinger"] = config.handle
    doc["attributionDomains"] = [urlsplit(config.base_url).hostname or config.host]
    return with_context(doc)


# --- post objects --------------------------------------------------------------------------


def _attachments(post: Post, found: Sequence[FoundImage]) -> list[dict[str, Any]]:
    """Cover first, then inline images, at most four; metadata merged by URL."""
    html_sizes = {img.url: img for img in found}
    images: list[Image | FoundImage] = []
    if post.image is not None:
        images.append(post.image)
    images.extend(post.images)
    images.extend(found)  # images only the HTML knows about (no metadata from content.py)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for img in images:
        if img.url in seen:
            continue
        seen.add(img.url)
        declared = img.media_type if isinstance(img, Image) else None
        in_html = html_sizes.get(img.url)
        width = img.width or (in_html.width if in_html else None)
        height = img.height or (in_html.height if in_html else None)
        alt = img.alt or (in_html.alt if in_html else "")
        out.append(_attachment(img.url, alt, declared, width, height))
        if len(out) == MAX_ATTACHMENTS:
            break
    return out


def _hashtag_paragraph(tags: Sequence[tuple[str, str]]) -> str:
    links = [
        f'<a href="{escape(href)}" class="mention hashtag" rel="tag">'
        f"#<span>{escape(name)}</span></a>"
        for name, href in tags
    ]
    return f"<p>{' '.join(links)}</p>" if links else ""


def object_document(
    site: Site, post: Post, *, mentions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The post's Note (default) or Article, served at post.path + "object.json".

    `mentions` maps "user@server" to the actor id publish resolved; unresolved ones point at
    https://server/@user (Mastodon then still links them, it just may not notify).
    """
    return _object_document(site, post, mentions or {}, actor_id(site), _followers_id(site))


def object_documents(
    site: Site, *, mentions: Mapping[str, str] | None = None
) -> Callable[[Post], dict[str, Any]]:
    """object_document(site, post, mentions=mentions) for many posts of one site (the
    actor's and followers' URLs, two urljoins, made once)."""
    resolved = mentions or {}
    aid, followers = actor_id(site), _followers_id(site)

    def build(post: Post) -> dict[str, Any]:
        return _object_document(site, post, resolved, aid, followers)

    return build


def _object_document(site: Site, post: Post, resolved: Mapping[str, str], aid: str,
                     followers: str) -> dict[str, Any]:
    config = site.config
    fed = config.fediverse
    oid = object_id(post)
    is_article = fed.post_type == "article"

    body = reduce_html(post.html, base_url=post.url)
    tags = _hashtags(post)
    handles = post_mentions(post)
    mention_ids = [_mention_href(h, resolved) for h in handles]

    if is_article:
        content = body.html
    else:
        title = f"<p><strong>{escape(post.title)}</strong></p>" if post.title else ""
        if fed.note_content == "summary":
            summary = reduce_html(post.summary_html, base_url=post.url).html
            if not summary and post.summary:
                summary = f"<p>{escape(post.summary)}</p>"
            more = f'<p><a href="{escape(post.url)}">Read more</a></p>'
            content = title + summary + more
        else:
            content = title + body.html
    content += _hashtag_paragraph(tags)

    doc: dict[str, Any] = {
        "id": oid,
        "type": "Article" if is_article else "Note",
        "attributedTo": aid,
    }
    if post.in_reply_to:
        doc["inReplyTo"] = post.in_reply_to
    doc["to"] = [PUBLIC]
    doc["cc"] = [followers, *dict.fromkeys(mention_ids)]
    doc["published"] = iso(post.date)
    if post.updated is not None and post.updated > post.date:
        doc["updated"] = iso(post.updated)
    doc["url"] = post.url
    if is_article:
        doc["name"] = post.title
    if post.content_warning:
        doc["summary"] = post.content_warning
    elif is_article and post.summary:
        # Mastodon shows an Article as name + summary + link: give it a real summary.
        doc["summary"] = post.summary
    doc["sensitive"] = bool(post.content_warning)
    doc["content"] = content
    doc["contentMap"] = {post.lang or config.language: content}
    attachments = _attachments(post, body.images)
    if attachments:
        doc["attachment"] = attachments
    tag_docs: list[dict[str, Any]] = [
        {"type": "Hashtag", "name": f"#{name}", "href": href} for name, href in tags
    ]
    tag_docs += [
        {"type": "Mention", "href": href, "name": f"@{handle}"}
        for handle, href in zip(handles, mention_ids, strict=True)
    ]
    if tag_docs:
        doc["tag"] = tag_docs
    doc["replies"] = post.url + "replies.json"
    doc["likes"] = post.url + "likes.json"
    doc["shares"] = post.url + "shares.json"
    return _with_own_context(doc)  # a fresh dict of fresh values: no copy needed


# --- activities ----------------------------------------------------------------------------


def create_activity(site: Site, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Create for `obj`; its id derives from the object's, so rebuilds never change it."""
    return with_context(
        {
            "id": f"{obj['id']}#create",
            "type": "Create",
            "actor": actor_id(site),
            "published": obj.get("published"),
            "to": obj.get("to", [PUBLIC]),
            "cc": obj.get("cc", [_followers_id(site)]),
            "object": _without_context(obj),
        }
    )


def update_activity(site: Site, obj: Mapping[str, Any], *, revision: str) -> dict[str, Any]:
    """Update for an edited `obj`; `revision` (e.g. the object hash) keeps ids distinct."""
    return with_context(
        {
            "id": f"{obj['id']}#update-{revision}",
            "type": "Update",
            "actor": actor_id(site),
            "published": obj.get("updated", obj.get("published")),
            "to": obj.get("to", [PUBLIC]),
            "cc": obj.get("cc", [_followers_id(site)]),
            "object": _without_context(obj),
        }
    )


def delete_activity(site: Site, object_id: str, *, deleted: datetime) -> dict[str, Any]:
    """Delete of a removed post; the object is a Tombstone with the same id."""
    return with_context(
        {
            "id": f"{object_id}#delete",
            "type": "Delete",
            "actor": actor_id(site),
            "to": [PUBLIC],
            "cc": [_followers_id(site)],
            "object": {"id": object_id, "type": "Tombstone", "deleted": iso(deleted)},
        }
    )


def actor_update_activity(
    site: Site, actor: Mapping[str, Any], *, revision: str
) -> dict[str, Any]:
    """Update(Person) so followers' servers refresh the profile (object = the actor itself)."""
    return with_context(
        {
            "id": f"{actor['id']}#update-{revision}",
            "type": "Update",
            "actor": actor["id"],
            "to": [PUBLIC],
            "cc": [_followers_id(site)],
            "object": _without_context(actor),
        }
    )


# --- size --------------------------------------------------------------------------------------

# Misskey's inbox refuses a body over 64 KiB (and others are not far off): every activity sent
# stays under 60 KiB, leaving room for whatever a server or proxy counts on top.
MAX_ACTIVITY_BYTES = 60 * 1024
_EXCERPT_CHARS = 500  # of plain text, about what Mastodon shows before "show more"
_ALT_CHARS = 1500  # Mastodon's own limit for an image description
_HASHTAG_PARAGRAPH = re.compile(
    r'<p>(?:<a href="[^"]*" class="mention hashtag" rel="tag">#<span>[^<]*</span></a> ?)+</p>$'
)
_TITLE_PARAGRAPH = re.compile(r"<p><strong>[^<]*</strong></p>")


def _plain_text(html: str) -> str:
    return " ".join(unescape(_TAG_RE.sub(" ", html)).split())


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    # End on a word boundary when there is one in the last fifth (a URL may have none).
    space = cut.rfind(" ")
    if space > limit * 4 // 5:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "\u2026"


def _short_object(obj: Mapping[str, Any], *, hashtags: bool) -> dict[str, Any]:
    """`obj` with its text replaced by its title (a Note's), an excerpt and a link to the post;
    an Article's over-long summary shortened too (a content warning is left whole)."""
    content = str(obj.get("content", ""))
    hashtag_match = _HASHTAG_PARAGRAPH.search(content)
    if hashtag_match:
        content = content[: hashtag_match.start()]
    title_match = _TITLE_PARAGRAPH.match(content)
    title = title_match.group(0) if title_match else ""
    summary = obj.get("summary")
    warned = bool(obj.get("sensitive"))
    if isinstance(summary, str) and summary.strip() and not warned:
        text = _plain_text(summary)  # an Article's summary says it best
    else:
        text = _plain_text(content[len(title):])
    excerpt = f"<p>{escape(_excerpt(text))}</p>" if text else ""
    link = f'<p><a href="{escape(str(obj["url"]))}">Read more</a></p>'
    short = title + excerpt + link
    if hashtags and hashtag_match:
        short += hashtag_match.group(0)
    out = dict(obj)
    out["content"] = short
    if isinstance(obj.get("contentMap"), Mapping):
        out["contentMap"] = {lang: short for lang in obj["contentMap"]}
    if isinstance(summary, str) and not warned and len(summary) > _EXCERPT_CHARS:
        out["summary"] = _excerpt(summary)
    return out


def fit_activity(
    activity: Mapping[str, Any], *, limit: int = MAX_ACTIVITY_BYTES
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`activity` made to serialize within `limit` bytes, and a note for each thing cut.

    An activity that fits comes back unchanged, with no notes. A Create or Update of a post
    that does not fit keeps its ids, url, addressing, mentions and attachments; what changes,
    step by step until it fits: its text becomes an excerpt (an Article's summary) and a link
    to the post, image descriptions are cut to 1,500 characters, then hashtags are left out
    from the last. Mentions are never dropped: when even that does not fit, the result is
    still too long, which the caller checks with `serialize` and refuses.
    """
    doc = dict(activity)
    size = len(serialize(doc))
    if size <= limit:
        return doc, ()  # the very bytes it would have had: no id or hash moves
    obj = doc.get("object")
    if not isinstance(obj, Mapping) or obj.get("type") not in ("Note", "Article") \
            or not isinstance(obj.get("url"), str):
        return doc, ()  # not a post: nothing here to shorten (the caller refuses it)
    notes: list[str] = []

    def fits(new_obj: Mapping[str, Any]) -> dict[str, Any] | None:
        candidate = with_context({**doc, "object": new_obj})
        return candidate if len(serialize(candidate)) <= limit else None

    short = _short_object(obj, hashtags=True)
    notes.append(f"{size / 1024:.0f} KiB: its text is replaced by an excerpt and a link")
    done = fits(short)
    if done is None:
        short = _short_object(obj, hashtags=False)
        done = fits(short)
    attachments = short.get("attachment")
    if done is None and isinstance(attachments, list):
        cut = [
            {**a, "name": _excerpt(a["name"], _ALT_CHARS)}
            if isinstance(a, Mapping) and isinstance(a.get("name"), str)
            and len(a["name"]) > _ALT_CHARS else a
            for a in attachments
        ]
        if cut != attachments:
            short = {**short, "attachment": cut}
            notes.append(f"image descriptions cut to {_ALT_CHARS:,}-character excerpts")
            done = fits(short)
    tags = short.get("tag")
    if done is None and isinstance(tags, list):
        hashtags = [t for t in tags if isinstance(t, Mapping) and t.get("type") == "Hashtag"]
        others = [t for t in tags if t not in hashtags]
        # The most hashtags that fit, by bisection (thousands of tags: a few dozen tries).
        low, high = 0, len(hashtags) - 1  # `high + 1` tags are known not to fit
        best = fits({**short, "tag": others}) if hashtags else None
        while best is not None and low < high:
            middle = (low + high + 1) // 2
            candidate = fits({**short, "tag": hashtags[:middle] + others})
            if candidate is None:
                high = middle - 1
            else:
                low, best = middle, candidate
        if hashtags:
            short = {**short, "tag": hashtags[:low] + others}
            done = best
            # Never a single one: `high + 1` tags did not fit and `low` is below it.
            notes.append(f"hashtags left out: {len(hashtags) - low:,} of {len(hashtags):,}")
    return (done if done is not None else with_context({**doc, "object": short})), tuple(notes)


def _answer(site: Site, kind: str, follow: Mapping[str, Any], answer_id: str) -> dict[str, Any]:
    follower = _id_of(follow.get("actor", ""))
    doc = with_context(
        {
            "id": answer_id,
            "type": kind,
            "actor": actor_id(site),
            "to": [follower],
            # The Follow exactly as received (minus its context): Mastodon matches on its id,
            # others on the embedded actor/object.
            "object": _without_context(follow),
        }
    )
    if len(serialize(doc)) <= MAX_ACTIVITY_BYTES:
        return doc
    # A Follow can arrive with up to the inbox's body limit of extra members; echoing them all
    # would make an answer no inbox takes. What matching needs is its id, actor and object.
    slim: dict[str, Any] = {"id": follow.get("id"), "type": follow.get("type", "Follow"),
                            "actor": follower, "object": _id_of(follow.get("object", ""))}
    return with_context({**doc, "object": slim})


def accept_activity(site: Site, follow: Mapping[str, Any], *, accept_id: str) -> dict[str, Any]:
    return _answer(site, "Accept", follow, accept_id)


def reject_activity(site: Site, follow: Mapping[str, Any], *, reject_id: str) -> dict[str, Any]:
    return _answer(site, "Reject", follow, reject_id)


# --- collections ---------------------------------------------------------------------------


def outbox_page_count(site: Site, page_size: int = OUTBOX_PAGE_SIZE) -> int:
    """Number of outbox pages; at least one, so `first` always resolves."""
    return max(1, -(-len(federated_posts(site)) // page_size))


def outbox_page_path(number: int) -> str:
    return f"outbox/page-{number}.json"


def outbox_document(site: Site, *, page_size: int = OUTBOX_PAGE_SIZE) -> dict[str, Any]:
    config = site.config
    pages = outbox_page_count(site, page_size)
    return with_context(
        {
            "id": config.url("outbox.json"),
            "type": "OrderedCollection",
            "totalItems": len(federated_posts(site)),
            "first": config.url(outbox_page_path(1)),
            "last": config.url(outbox_page_path(pages)),
        }
    )


def outbox_page(
    site: Site,
    number: int,
    *,
    page_size: int = OUTBOX_PAGE_SIZE,
    mentions: Mapping[str, str] | None = None,
    posts: Sequence[Post] | None = None,
    objects: Callable[[Post], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Page `number` (1-based) of the outbox: Create activities, newest first.

    A build planning every page passes `posts` (federated_posts(site), sorted once) and
    `objects` (post -> its object_document, computed once per post per build): each object
    costs an HTML reduction, and every post is also in its own object.json.
    """
    if posts is None:
        posts = federated_posts(site)
    pages = max(1, -(-len(posts) // page_size))
    if not 1 <= number <= pages:
        raise ValueError(f"outbox page {number} out of range 1..{pages}")
    chunk = posts[(number - 1) * page_size : number * page_size]
    if objects is None:
        def objects(p: Post) -> Mapping[str, Any]:
            return object_document(site, p, mentions=mentions)
    items = [_without_context(create_activity(site, objects(p))) for p in chunk]
    doc = _outbox_page_head(site, number, pages, len(posts))
    doc["orderedItems"] = items
    return with_context(doc)


def _outbox_page_head(site: Site, number: int, pages: int, total: int) -> dict[str, Any]:
    """An outbox page's members before its items (shared by the two ways it is written)."""
    config = site.config
    head: dict[str, Any] = {
        "id": config.url(outbox_page_path(number)),
        "type": "OrderedCollectionPage",
        "partOf": config.url("outbox.json"),
        "totalItems": total,
    }
    if number < pages:
        head["next"] = config.url(outbox_page_path(number + 1))
    if number > 1:
        head["prev"] = config.url(outbox_page_path(number - 1))
    return head


def outbox_pages(
    site: Site,
    *,
    page_size: int = OUTBOX_PAGE_SIZE,
    mentions: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every outbox page, first to last (page N is at `outbox_page_path(N)`)."""
    return [
        outbox_page(site, n, page_size=page_size, mentions=mentions)
        for n in range(1, outbox_page_count(site, page_size) + 1)
    ]


def _hidden_collection(collection_id: str, total: int) -> dict[str, Any]:
    """A collection that publishes its size but not its members.

    Mastodon treats a collection without `first` as hidden and shows no count, so `first` is
    an embedded, empty page: the count shows, the list stays private.
    """
    return with_context(
        {
            "id": collection_id,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": {
                "type": "OrderedCollectionPage",
                "partOf": collection_id,
                "orderedItems": [],
            },
        }
    )


def followers_document(site: Site, count: int = 0) -> dict[str, Any]:
    return _hidden_collection(site.config.url("followers.json"), count)


def following_document(site: Site, count: int = 0) -> dict[str, Any]:
    return _hidden_collection(site.config.url("following.json"), count)


def featured_document(
    site: Site, *, mentions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Pinned posts (front matter `pinned: true`), embedded in full as Mastodon expects."""
    pinned = [p for p in federated_posts(site) if p.pinned]
    return with_context(
        {
            "id": site.config.url("featured.json"),
            "type": "OrderedCollection",
            "totalItems": len(pinned),
            "orderedItems": [
                _without_context(object_document(site, p, mentions=mentions)) for p in pinned
            ],
        }
    )


def replies_document(post: Post, count: int = 0) -> dict[str, Any]:
    cid = post.url + "replies.json"
    return with_context(
        {
            "id": cid,
            "type": "Collection",
            "totalItems": count,
            "first": {"type": "CollectionPage", "partOf": cid, "items": []},
        }
    )


def likes_document(post: Post, count: int = 0) -> dict[str, Any]:
    return with_context(
        {"id": post.url + "likes.json", "type": "Collection", "totalItems": count}
    )


def shares_document(post: Post, count: int = 0) -> dict[str, Any]:
    return with_context(
        {"id": post.url + "shares.json", "type": "Collection", "totalItems": count}
    )


# serialize() of a document whose @context is just the two URLs, up to its "id" value.
_PLAIN_HEAD = ('{\n  "@context": ' + indented_json([AS_CONTEXT, SEC_CONTEXT], level=1)
               + ',\n  "id": ')


def serialize_collection(post: Post, kind: str, count: int = 0) -> bytes:
    """serialize(replies_document(post, count)) for kind "replies" (likes_document for
    "likes", shares_document for "shares"), written from its fixed shape: a build writes
    three per post, each ~10 us the plain way (a context walk and a general writer)."""
    if type(count) is not int or kind not in ("replies", "likes", "shares"):
        build = {"replies": replies_document, "likes": likes_document,
                 "shares": shares_document}[kind]
        return serialize(build(post, count))
    cid = _encode_string(post.url + kind + ".json")
    text = _PLAIN_HEAD + cid + ',\n  "type": "Collection",\n  "totalItems": ' + int.__repr__(count)
    if kind == "replies":
        text += (',\n  "first": {\n    "type": "CollectionPage",\n    "partOf": ' + cid
                 + ',\n    "items": []\n  }')
    return (text + "\n}\n").encode("utf-8")
