"""RFC 8941 structured fields as signature headers use them: what is read, what is refused.

ARCHITECTURE.md ("Libraries and why") keeps this parser over a library on two grounds: it reads
RFC 8941 dictionaries as the RFC does, and it is stricter where a signature header must be
(a repeated label, a decimal). Both are pinned here.
"""

from __future__ import annotations

import pytest

from fedipress.activitypub.structured_fields import (
    InnerList,
    Item,
    Token,
    parse_dictionary,
    serialize_bare,
    serialize_inner_list,
    serialize_params,
)
from fedipress.errors import SignatureError


def parse(text: str, max_length: int = 8192) -> dict[str, Item | InnerList]:
    return parse_dictionary(text, "bad header", max_length=max_length)


@pytest.mark.parametrize(("text", "expected"), [
    ("", {}),
    ("a=1", {"a": Item(1, ())}),
    ("a=-999999999999999", {"a": Item(-999999999999999, ())}),
    ("a", {"a": Item(True, ())}),
    ("a;x=?0", {"a": Item(True, (("x", False),))}),
    ("a=?1, b=?0", {"a": Item(True, ()), "b": Item(False, ())}),
    ('a="x \\"y\\" \\\\ z"', {"a": Item('x "y" \\ z', ())}),
    ("a=:aGk=:", {"a": Item(b"hi", ())}),
    ("a=::", {"a": Item(b"", ())}),
    ("a=sha-256", {"a": Item(Token("sha-256"), ())}),
    ("a=*foo:bar/baz", {"a": Item(Token("*foo:bar/baz"), ())}),
    ("sig1=(\"@method\" \"@path\");created=1618884475;keyid=\"k\"",
     {"sig1": InnerList((Item("@method", ()), Item("@path", ())),
                        (("created", 1618884475), ("keyid", "k")))}),
    ("a=(), b=( 1 2 );x", {"a": InnerList((), ()),
                            "b": InnerList((Item(1, ()), Item(2, ())), (("x", True),))}),
    ("a=1 ,\tb=2", {"a": Item(1, ()), "b": Item(2, ())}),
    ("  a=1", {"a": Item(1, ())}),
    ("a=1;  b=2", {"a": Item(1, (("b", 2),))}),
])
def test_dictionaries_are_read_as_rfc_8941_reads_them(
        text: str, expected: dict[str, Item | InnerList]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", [
    "a=1,",  # trailing comma
    "a=1,,b=2",
    "A=1",  # keys are lower case
    "1a=1",
    "a=1 b=2",  # no comma
    "a=1234567890123456",  # 16 digits
    "a=-",
    "a=\"unterminated",
    "a=\"bad \\n escape\"",
    "a=\"tab\tinside\"",
    "a=\"é\"",  # strings are ASCII
    "a=:not base64!:",
    "a=:aGk=",  # unterminated byte sequence
    "a=?2",
    "a=(1 2",  # unterminated inner list
    "a=(1,2)",
    "a=é",
    # Stricter than RFC 8941, on purpose: a signature header never needs these.
    "a=1.5",  # a decimal
    "a=1,b=2,a=3",  # a repeated label (RFC 8941 keeps the last; here it is suspicious)
    "a;x=1;x=2",  # a repeated parameter
])
def test_what_a_signature_header_cannot_be_is_refused(text: str) -> None:
    with pytest.raises(SignatureError, match="^bad header$"):
        parse(text)


def test_a_header_over_the_length_cap_is_refused_before_parsing() -> None:
    text = "a=" + "1" * 10
    assert parse(text, max_length=len(text)) == {"a": Item(1111111111, ())}
    with pytest.raises(SignatureError):
        parse(text, max_length=len(text) - 1)


@pytest.mark.parametrize("value", [
    0, -12, True, False, "plain", 'q"uote\\', b"\x00\xffbytes", Token("sha-512"),
])
def test_bare_items_serialize_back_to_what_is_read(value: int | bool | str | bytes | Token) -> None:
    assert parse(f"a={serialize_bare(value)}") == {"a": Item(value, ())}


def test_inner_lists_with_parameters_serialize_back() -> None:
    inner = InnerList((Item("@method", ()), Item("content-digest", (("sf", True),))),
                      (("created", 1700000000), ("alg", "ed25519"), ("tag", Token("x"))))
    text = serialize_inner_list(inner)
    assert text == '("@method" "content-digest";sf);created=1700000000;alg="ed25519";tag=x'
    assert parse(f"sig={text}") == {"sig": inner}
    assert serialize_params([("a", True), ("b", 2)]) == ";a;b=2"
