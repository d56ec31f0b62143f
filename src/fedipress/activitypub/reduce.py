"""Reduce a post's HTML to what Mastodon keeps, so followers see what we meant.

Mastodon (4.2+) sanitises remote HTML down to a short list of tags and drops the rest, often
with their text glued together. We do the reduction ourselves first, on purpose:

- headings become `<p><strong>…</strong></p>` (Mastodon would keep only the bare text);
- images are taken out of the text and returned, so the caller can attach them;
- tables become one paragraph per row, cells separated by " | ";
- scripts, styles, iframes, forms and media players disappear with their content;
- every link is made absolute against the post's URL;
- classes survive only where Mastodon keeps them (microformats and its own few).

Pure: a string and a base URL in, a string and a list of images out. nh3 does the final,
allowlist-based sanitising, so nothing outside the list below can slip through.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import nh3

__all__ = ["ALLOWED_TAGS", "FoundImage", "Reduced", "reduce_html"]

# What Mastodon's sanitiser keeps for remote posts (lib/sanitize_ext/sanitize_config.rb, 4.2+).
ALLOWED_TAGS = frozenset(
    {"p", "br", "span", "a", "del", "pre", "code", "em", "strong", "b", "i", "u", "ul", "ol",
     "li", "blockquote"}
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "rel", "class"},
    "span": {"class"},
    "ol": {"start", "reversed"},
    "li": {"value"},
}
URL_SCHEMES = frozenset(
    {"http", "https", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "xmpp", "magnet", "gemini",
     "mailto"}
)
_KEPT_CLASSES = frozenset({"mention", "hashtag", "ellipsis", "invisible"})
_MICROFORMAT_PREFIXES = ("h-", "p-", "u-", "dt-", "e-")

# Dropped together with everything inside them.
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math",
     "video", "audio", "canvas", "form", "button", "select", "textarea", "head", "title"}
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset({"br", "img", "hr", "wbr", "input", "source", "track", "meta", "link", "area",
                   "col", "base", "param"})


@dataclass(frozen=True)
class FoundImage:
    """An `<img>` taken out of the HTML: absolute `url`, `alt`, and size when written."""

    url: str
    alt: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Reduced:
    html: str
    images: tuple[FoundImage, ...]


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip().removesuffix("px")
    return int(value) if value.isdigit() and int(value) > 0 else None


def _kept_classes(value: str | None) -> str:
    if not value:
        return ""
    kept = [
        c for c in value.split()
        if c in _KEPT_CLASSES or c.startswith(_MICROFORMAT_PREFIXES)
    ]
    return " ".join(kept)


class _Reducer(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.out: list[str] = []
        self.images: list[FoundImage] = []
        self._skip: list[str] = []  # stack of dropped-with-content tags we are inside
        self._cell_in_row = 0
        self._in_table = 0

    # -- helpers ---------------------------------------------------------------------------
    def _emit_tag(self, tag: str, attrs: dict[str, str], *, void: bool = False) -> None:
        parts = [tag]
        for name, value in attrs.items():
            parts.append(f'{name}="{html.escape(value, quote=True)}"')
        self.out.append(f"<{' '.join(parts)}>")

    def _absolute(self, url: str) -> str:
        return urljoin(self.base_url, url.strip())

    # -- parser callbacks ------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag in _DROP_WITH_CONTENT:
                self._skip.append(tag)
            return
        if tag in _DROP_WITH_CONTENT:
            self._skip.append(tag)
            return
        a = {k: (v or "") for k, v in attrs}
        if tag in _HEADINGS:
            self.out.append("<p><strong>")
        elif tag == "img":
            src = a.get("src", "").strip()
            if src and not src.startswith("data:"):
                self.images.append(
                    FoundImage(
                        url=self._absolute(src),
                        alt=a.get("alt", ""),
                        width=_int_or_none(a.get("width")),
                        height=_int_or_none(a.get("height")),
                    )
                )
        elif tag == "table":
            self._in_table += 1
        elif tag == "tr":
            self._cell_in_row = 0
            self.out.append("<p>")
        elif tag in ("td", "th"):
            if self._cell_in_row:
                self.out.append(" | ")
            self._cell_in_row += 1
        elif tag == "figcaption":
            self.out.append("<p>")
        elif tag == "a":
            kept: dict[str, str] = {}
            if a.get("href"):
                kept["href"] = self._absolute(a["href"])
            if a.get("rel"):
                kept["rel"] = a["rel"]
            if classes := _kept_classes(a.get("class")):
                kept["class"] = classes
            self._emit_tag("a", kept)
        elif tag == "span":
            classes = _kept_classes(a.get("class"))
            self._emit_tag("span", {"class": classes} if classes else {})
        elif tag in ALLOWED_TAGS:
            kept = {k: v for k, v in a.items() if k in ALLOWED_ATTRIBUTES.get(tag, set())}
            self._emit_tag(tag, kept)
        # Anything else (div, section, figure, sup, hr…) is dropped; its text stays.

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag in _HEADINGS:
            self.out.append("</strong></p>")
        elif tag == "table":
            self._in_table = max(0, self._in_table - 1)
        elif tag == "tr":
            self.out.append("</p>")
        elif tag == "figcaption":
            self.out.append("</p>")
        elif tag in ALLOWED_TAGS and tag not in _VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_table and not data.strip():
            return  # whitespace between table cells
        self.out.append(html.escape(data, quote=False))


# A fast tokenizer for the plain HTML Markdown writes, driving the same _Reducer callbacks
# as html.parser would (which spends most of a reduction in pure-Python scanning). It only
# accepts markup it reads exactly as html.parser does: tags with simple attributes, end tags,
# comments without "--" inside, text without "<". Anything else (a stray "<", CDATA, odd
# attribute syntax, raw-text elements such as <script>) sends the whole document through
# html.parser instead, so the result never depends on which path ran.
_TOKEN = re.compile(
    r"<(?:!--(?P<comment>(?:[^-]|-(?!-))*)-->"
    r"|/(?P<end>[a-zA-Z][-.a-zA-Z0-9:_]*)\s*>"
    r"|(?P<start>[a-zA-Z][^\t\n\r\f />\x00]*)"
    r"(?P<attrs>(?:\s+[^\s/>\"'=]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)"
    r"\s*(?P<close>/?)>)"
)
_ATTR = re.compile(r"\s+([^\s/>\"'=]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?")
# Elements whose content html.parser (or a newer Python's) reads as raw text.
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed",
                       "noframes", "noscript", "plaintext"})
_Token = tuple[int, str, Any]


def _fast_tokens(source: str) -> list[_Token] | None:
    """(kind, name, attrs) tokens of `source` (0 data, 1 start, 2 startend, 3 end), or None
    when it holds anything the fast path does not read exactly like html.parser."""
    tokens: list[_Token] = []
    pos = 0
    unescape = html.unescape
    for m in _TOKEN.finditer(source):
        start = m.start()
        if start > pos:
            text = source[pos:start]
            if "<" in text:
                return None
            tokens.append((0, unescape(text) if "&" in text else text, None))
        pos = m.end()
        name = m.group("start")
        if name is not None:
            tag = name.lower()
            if tag in _RAW_TEXT:
                return None
            attrs: list[tuple[str, str | None]] = []
            raw = m.group("attrs")
            if raw:
                for a in _ATTR.finditer(raw):
                    value = a.group(2)
                    if value is None:
                        value = a.group(3)
                    if value is None:
                        value = a.group(4)
                    if value and "&" in value:
                        value = unescape(value)
                    attrs.append((a.group(1).lower(), value))
            tokens.append((2 if m.group("close") else 1, tag, attrs))
        elif m.group("end") is not None:
            tokens.append((3, m.group("end").lower(), None))
        # comments are dropped, as _Reducer drops them
    if pos < len(source):
        text = source[pos:]
        if "<" in text:
            return None
        tokens.append((0, html.unescape(text), None))
    return tokens


def reduce_html(source: str, *, base_url: str) -> Reduced:
    """Reduce `source` to Mastodon's allowlist; relative links resolve against `base_url`."""
    parser = _Reducer(base_url)
    tokens = _fast_tokens(source)
    if tokens is None:
        parser.feed(source)
        parser.close()
    else:
        for kind, name, attrs in tokens:
            if kind == 0:
                parser.handle_data(name)
            elif kind == 1:
                parser.handle_starttag(name, attrs)
            elif kind == 2:
                parser.handle_startendtag(name, attrs)
            else:
                parser.handle_endtag(name)
    cleaned = nh3.clean(
        "".join(parser.out),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT - {"head"}),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
        strip_comments=True,
    )
    # Empty paragraphs are left behind where a block held only an image.
    cleaned = cleaned.replace("<p></p>", "").strip()
    return Reduced(html=cleaned, images=tuple(parser.images))
