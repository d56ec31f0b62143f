"""Structured field values (RFC 8941): the subset RFC 9421 signatures need, strict.

Pure: text in, frozen values out (and back). Dictionaries of items and inner lists with
parameters; bare items are integers, booleans, strings, byte sequences and tokens (no
decimals, no dates). Any syntax error raises `SignatureError(reason)` with the caller's
`reason`, because the only callers are signature and digest headers whose errors go back
to the sender.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from ..errors import SignatureError

__all__ = [
    "Bare",
    "InnerList",
    "Item",
    "Token",
    "parse_dictionary",
    "serialize_bare",
    "serialize_inner_list",
    "serialize_params",
]


@dataclass(frozen=True)
class Token:
    """A bare token (`sha-256`, `*`), kept apart from a quoted string."""

    value: str


Bare: TypeAlias = int | bool | str | bytes | Token


@dataclass(frozen=True)
class Item:
    """A bare item with its parameters (`"@method"`, `:AAA=:`, `?1;x=2`)."""

    value: Bare
    params: tuple[tuple[str, Bare], ...]


@dataclass(frozen=True)
class InnerList:
    """A parenthesised list of items with its own parameters (`("@method");created=1`)."""

    items: tuple[Item, ...]
    params: tuple[tuple[str, Bare], ...]


class _Parser:
    """Recursive-descent parser; any syntax error raises SignatureError(reason)."""

    _KEY_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz*")
    _KEY_REST = _KEY_FIRST | frozenset("0123456789_-.")
    _TCHAR = frozenset(
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:/"
    )
    _B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

    def __init__(self, text: str, reason: str, max_length: int) -> None:
        self.s = text
        self.i = 0
        self.reason = reason
        self.max_length = max_length

    def fail(self) -> NoReturn:
        raise SignatureError(self.reason)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def dictionary(self) -> dict[str, Item | InnerList]:
        if len(self.s) > self.max_length:
            self.fail()
        result: dict[str, Item | InnerList] = {}
        self.skip(" ")
        while self.i < len(self.s):
            key = self.key()
            member: Item | InnerList
            if self.peek() == "=":
                self.i += 1
                member = self.inner_list() if self.peek() == "(" else self.item()
            else:
                member = Item(True, self.params())
            if key in result:  # RFC 8941 would overwrite; a repeated label is suspicious
                self.fail()
            result[key] = member
            self.skip(" \t")
            if self.i == len(self.s):
                break
            if self.peek() != ",":
                self.fail()
            self.i += 1
            self.skip(" \t")
            if self.i == len(self.s):
                self.fail()
        return result

    def skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def key(self) -> str:
        start = self.i
        if self.peek() == "" or self.peek() not in self._KEY_FIRST:
            self.fail()
        self.i += 1
        while self.peek() != "" and self.peek() in self._KEY_REST:
            self.i += 1
        return self.s[start : self.i]

    def inner_list(self) -> InnerList:
        self.i += 1  # "("
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                self.fail()

    def item(self) -> Item:
        return Item(self.bare(), self.params())

    def params(self) -> tuple[tuple[str, Bare], ...]:
        found: dict[str, Bare] = {}
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            key = self.key()
            value: Bare = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare()
            if key in found:
                self.fail()
            found[key] = value
        return tuple(found.items())

    def bare(self) -> Bare:
        c = self.peek()
        if c == "-" or ("0" <= c <= "9" and c != ""):
            return self.integer()
        if c == '"':
            return self.string()
        if c == ":":
            return self.byte_sequence()
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                self.fail()
            self.i += 2
            return flag == "1"
        if c != "" and (c == "*" or (c.isascii() and c.isalpha())):
            start = self.i
            self.i += 1
            while self.peek() != "" and self.peek() in self._TCHAR:
                self.i += 1
            return Token(self.s[start : self.i])
        self.fail()

    def integer(self) -> int:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        digits = self.i
        while self.peek() != "" and "0" <= self.peek() <= "9":
            self.i += 1
        if self.i == digits or self.i - digits > 15 or self.peek() == ".":
            self.fail()  # no digits, too long, or a decimal (never used by signatures)
        return int(self.s[start : self.i])

    def string(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\") or nxt == "":
                    self.fail()
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not (" " <= c <= "~"):
                self.fail()
            else:
                out.append(c)
        self.fail()

    def byte_sequence(self) -> bytes:
        end = self.s.find(":", self.i + 1)
        if end < 0:
            self.fail()
        chunk = self.s[self.i + 1 : end]
        if any(ch not in self._B64 for ch in chunk):
            self.fail()
        self.i = end + 1
        try:
            return base64.b64decode(chunk, validate=True)
        except (binascii.Error, ValueError):
            self.fail()


def parse_dictionary(value: str, reason: str, *, max_length: int) -> dict[str, Item | InnerList]:
    """An RFC 8941 dictionary; a repeated key or text over `max_length` is an error too."""
    return _Parser(value, reason, max_length).dictionary()


def serialize_bare(value: Bare) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: Iterable[tuple[str, Bare]]) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={serialize_bare(value)}" for key, value in params
    )


def serialize_inner_list(inner: InnerList) -> str:
    items = " ".join(serialize_bare(i.value) + serialize_params(i.params) for i in inner.items)
    return f"({items}){serialize_params(inner.params)}"
