"""Writers for markup.py, split from its speed-ups (markup_speedups.py): the fast html
serializer and the shared Pygments formatters. Same bytes as Python-Markdown's and
codehilite's own, with less interpreter work; tests/generator/test_markup_fast.py compares them.

PURE, like markup.py: element trees in, strings out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from xml.etree import ElementTree as etree

import markdown

__all__ = ["Formatters", "html_serializer"]


# --------------------------------------------------------------------------------------------
# The serializer, same bytes with less interpreter work. Python-Markdown's html writer pushes
# every element, end tag and tail through a deque and calls an escape function per string; it
# runs for the whole document and, through the toc, once more per heading. This writes the
# same strings with plain recursion and inline `in` tests. Anything it does not expect (a
# QName tag or attribute, non-string values, a tree too deep to recurse) raises, and the stock
# serializer then writes the whole element, as it would have.


def html_serializer() -> Callable[[etree.Element], str] | None:
    """The fast html writer, or None when Python-Markdown's writer is not the one it copies."""
    from markdown import serializers

    stock = serializers.to_html_string
    amp = getattr(serializers, "RE_AMP", None)
    boolean = getattr(serializers, "BOOLEAN_ATTRIBUTES", {}).get("html")
    empty = getattr(etree, "HTML_EMPTY", None)
    if (
        markdown.Markdown.output_formats.get("html") is not stock
        or not hasattr(serializers, "_serialize_html")  # the writer this one was read from
        or not isinstance(amp, re.Pattern)
        or not isinstance(boolean, frozenset)
        or not isinstance(empty, (set, frozenset))
    ):
        return None
    amp_sub = partial(amp.sub, "&amp;")
    comment, instruction = etree.Comment, etree.ProcessingInstruction
    str_ = str

    def escape(text: str) -> str:  # serializers._escape_cdata
        if "&" in text:
            text = amp_sub(text)
        if "<" in text:
            text = text.replace("<", "&lt;")
        if ">" in text:
            text = text.replace(">", "&gt;")
        return text

    def write(el: etree.Element, out: Callable[[str], None]) -> None:
        tag: object = el.tag
        text = el.text
        if type(tag) is not str_:
            if tag is comment or tag is instruction or tag is None:
                if tag is comment:
                    out("<!--" + escape(text) + "-->")  # type: ignore[arg-type]
                elif tag is instruction:
                    out("<?" + escape(text) + "?>")  # type: ignore[arg-type]
                else:  # no tag: text and children only
                    if text:
                        out(escape(text))
                    for child in el:
                        write(child, out)
                tail = el.tail
                if tail:
                    out(escape(tail))
                return
            if not isinstance(tag, str_):
                raise TypeError("left to the stock serializer")  # QName: namespaces
            tag = str_(tag)
        name = tag
        attrib = el.attrib
        if attrib:
            out("<" + name)
            for key, value in sorted(attrib.items()):
                if type(key) is not str_:
                    raise TypeError("left to the stock serializer")
                if value is None:
                    out(" " + key)
                    continue
                if not isinstance(value, str_):
                    raise TypeError("left to the stock serializer")
                if "&" in value:
                    value = amp_sub(value)
                if "<" in value:
                    value = value.replace("<", "&lt;")
                if ">" in value:
                    value = value.replace(">", "&gt;")
                if '"' in value:
                    value = value.replace('"', "&quot;")
                if key == value and key in boolean:
                    out(" " + value)
                else:
                    out(" " + key + '="' + value + '"')
            out(">")
        else:
            out("<" + name + ">")
        lower = name.lower()
        if text:
            if ("&" in text or "<" in text or ">" in text) and lower != "script" \
                    and lower != "style":
                text = escape(text)
            out(text)
        for child in el:
            write(child, out)
        if lower not in empty:
            out("</" + name + ">")
        tail = el.tail
        if tail:
            out(escape(tail) if "&" in tail or "<" in tail or ">" in tail else tail)

    def to_html(element: etree.Element) -> str:
        parts: list[str] = []
        try:
            write(element, parts.append)
        except Exception:  # noqa: BLE001  (whatever the stock writer makes of it, error or text)
            return stock(element)
        return "".join(parts)

    return to_html


# --------------------------------------------------------------------------------------------
# Pygments formatters, one per set of options. codehilite builds an HtmlFormatter per code
# block (its style sheet table: ~0.13 ms each); a formatter holds nothing from one `format`
# to the next, so the same one serves every block with the same options. Given as codehilite's
# `pygments_formatter`, a callable it calls with the options (and `lang_str`, which its default
# "html" formatter never gets, so it is not passed on).


class Formatters:
    def __init__(self) -> None:
        self._made: dict[str, object] = {}

    def __call__(self, lang_str: str = "", **options: object) -> object:
        key = repr(sorted(options.items()))
        formatter = self._made.get(key)
        if formatter is None:
            from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

            formatter = self._made[key] = HtmlFormatter(**options)
        return formatter
