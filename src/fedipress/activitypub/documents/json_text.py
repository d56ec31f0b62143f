"""Deterministic JSON text for documents: `serialize` (and the faster writers that give the
same bytes), the prepared object text shared by object.json and the outbox, the federation
manifest's entries and `object_hash`, which only changes on real edits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from json.encoder import encode_basestring as _encode_string
from typing import Any

__all__ = [
    "DocumentBytes",
    "indented_json",
    "manifest_entry_json",
    "object_hash",
    "VOLATILE_MEMBERS",
    "PreparedObject",
    "serialize",
    "StringMemo",
]


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


# Top-level members of a post object that change with its conversation, not with its content.
VOLATILE_MEMBERS = frozenset({"replies", "likes", "shares"})


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
            if key == "@context" or key in VOLATILE_MEMBERS:
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
    """sha256 of what followers see of `obj` (canonical JSON, keys sorted, no @context), the
    live counts (VOLATILE_MEMBERS) left out: a like is no edit, so publish sends no Update for
    it; the service refreshes counts on its own, rate-limited (federation/quotes.py)."""
    canonical = json.dumps(
        {k: v for k, v in obj.items() if k != "@context" and k not in VOLATILE_MEMBERS},
        sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
