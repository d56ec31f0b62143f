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
from urllib.parse import urljoin, urlsplit

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


# URLs urljoin returns unchanged for any base: http(s), a plain host, then a path without
# ";" (which urlparse would split off as params), a non-empty query and fragment (an empty
# "?" or "#" would be dropped), and none of the characters urlsplit strips or removes.
_PLAIN_ABSOLUTE = re.compile(r"https?://[A-Za-z0-9.:-]+(?:/[^?#;\s]*)?(?:\?[^#\s]+)?(?:#\S+)?")
_NO_URL_CONTROLS = re.compile(r"[^\t\n\r]*")


class _Reducer(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.out: list[str] = []
        self.images: list[FoundImage] = []
        self._skip: list[str] = []  # stack of dropped-with-content tags we are inside
        self._cell_in_row = 0
        self._in_table = 0
        self._page: str | None = None  # base_url without its fragment, once needed

    # -- helpers ---------------------------------------------------------------------------
    def _emit_tag(self, tag: str, attrs: dict[str, str], *, void: bool = False) -> None:
        parts = [tag]
        for name, value in attrs.items():
            parts.append(f'{name}="{html.escape(value, quote=True)}"')
        self.out.append(f"<{' '.join(parts)}>")

    def _absolute(self, url: str) -> str:
        """urljoin(base_url, url.strip()), without its cost for the two commonest links."""
        url = url.strip()
        if _PLAIN_ABSOLUTE.fullmatch(url):
            return url  # urljoin gives it back as it is, whatever the base
        if url[:1] == "#" and len(url) > 1 and _NO_URL_CONTROLS.fullmatch(url):
            # A link into the page: the base without its fragment, then this one.
            if self._page is None:
                self._page = urljoin(self.base_url, "#x")[:-2]
            return self._page + url
        try:
            return urljoin(self.base_url, url)
        except ValueError:  # a broken IPv6 host ("https://[::1/"): left as the author wrote it
            return url

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
# html.parser instead, so the result never depends on which path ran. The tag name is
# possessive: html.parser takes the longest one, never a shorter one that lets a following
# "\xa0" (whitespace to \s) start an attribute.
_TOKEN = re.compile(
    r"<(?:!--(?P<comment>(?:[^-]|-(?!-))*)-->"
    r"|/(?P<end>[a-zA-Z][-.a-zA-Z0-9:_]*)\s*>"
    r"|(?P<start>[a-zA-Z][^\t\n\r\f />\x00]*+)"
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
            raw = m.group("attrs")
            attrs = _attributes(raw) if raw else []
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


# The one-pass reduction. Most posts are paragraphs, lists, links and code blocks whose
# hundreds of highlighting spans repeat the same few dozen tag strings, so one findall cuts the
# document into (text, tag) pieces and each tag's output is looked up by its exact text; only
# a tag never seen before goes through _Reducer (the same code the token path runs). Text is
# copied as it is unless it holds "&" or ">", the only characters the token path's unescaping
# and handle_data's escaping would change ("<" aside). Tags whose output depends on where they
# stand (tables, elements dropped with their content, raw-text elements) and a "<" that starts
# no tag stop it (_NotOnePass), and the token path runs instead. The tag alternative is
# _TOKEN's own pattern (its groups made non-capturing), so a tag is read as _fast_tokens
# reads it; the "text" groups are possessive, so the scan is linear.
_ONE_PASS = re.compile(
    r"([^<&>]*+)((?:[&>][^<]*+)?)("
    + re.sub(r"\(\?P<\w+>", "(?:", _TOKEN.pattern)
    + r"|<|\Z)"
)
_TABLE = frozenset({"table", "tr", "td", "th"})
_ONE_PASS_STOP = _DROP_WITH_CONTENT | _RAW_TEXT | _TABLE  # start tags; end tags: _TABLE
# An href urljoin resolves without reading the base beyond its scheme (an explicit scheme and
# a non-empty host): a link holding one has the same output in every post of that scheme.
_BASE_FREE_HREF = re.compile(r"https?://[^/?#\s]")

# Skipping nh3. nh3 (ammonia on html5ever) parses the reduction as HTML and writes the tree
# back. For the one-pass output that is the identity when all of these hold, so nh3 is skipped
# and the result is byte for byte what it would have returned:
# - only allowed tags and attributes: _Reducer emits nothing else;
# - every href is an http(s) URL that ammonia's URL check keeps (_KEPT_HREF: a plain host whose
#   last label is no number, no "xn--" label, a short port, printable ASCII after it);
# - html5ever writes attribute values and text as html.escape did, except "'" in attributes
#   ("&#x27;" for us) and, anywhere, NUL, CR, U+00A0 and lone surrogates (nh3 refuses those);
# - the tags nest properly and end closed (else html5ever closes or reopens elements);
# - no <p> holds a block that would close it (p, ul, ol, li, blockquote, pre), no <a> holds an
#   <a>, every <li> is a child of a <ul> or <ol> (else html5ever closes the open ones);
# - no <pre> starts with a newline (html5ever drops it).
# The tag structure is checked on a skeleton: one letter a tag, upper case to open, lower case
# to close ("!" for a tag that breaks a rule above), e.g. "<p><em>x</em></p>" is "PEep".
_LETTERS = {"p": "P", "ul": "U", "ol": "O", "li": "L", "blockquote": "Q", "pre": "R",
            "a": "A", "span": "S", "em": "E", "strong": "G", "b": "B", "i": "I", "u": "N",
            "del": "D", "code": "C"}
_EMITTED_TAG = re.compile(r'<(/?)([a-z]+)((?: [a-z]+="[^"]*")*)>')
_HREF = re.compile(r' href="([^"]*)"')
_KEPT_HREF = re.compile(
    r"https?://(?:(?![xX][nN]--)[A-Za-z0-9-]+\.)*(?![xX][nN]--)[A-Za-z][A-Za-z0-9-]*"
    r"(?::[0-9]{1,4})?(?:[/?#][!#-&(-;=?-\[\]-~]*)?"
)
_BLOCK_IN_P = re.compile(r"P[^PUOLQRpuolqr]*[PUOLQRuolqr]")
_A_IN_A = re.compile(r"A[^Aa]*A")
_LOOSE_LI = re.compile(r"(?<![UOl])L")
_EMPTY_PAIR = re.compile("|".join(k + k.lower() for k in _LETTERS.values()))
_MAX_DEPTH = 40

# Output and skeleton by exact tag text, one pair of tables per base URL scheme (see
# _BASE_FREE_HREF). Only values of pure functions go in, so sharing them between calls and
# threads is safe; they are emptied (before a call, never during one) when they grow past
# _CACHE_LIMIT, as hand-written HTML can be endless. "" is the end of the document.
# A third table holds the escaped form of short text runs holding "&" or ">" ("&para;" of
# every heading's anchor link, "&quot;" and "&lt;" in code).
_CACHE: dict[str, tuple[dict[str, str], dict[str, str], dict[str, str]]] = {}
_CACHE_LIMIT = 20_000
_CACHED_TEXT = 64


class _NotOnePass(Exception):
    """The one-pass reduction met markup it leaves to the token path."""


def _attributes(raw: str) -> list[tuple[str, str | None]]:
    # A tag's attributes as both fast paths read them (html.parser's names and values).
    attrs: list[tuple[str, str | None]] = []
    for a in _ATTR.finditer(raw):
        value = a.group(2)
        if value is None:
            value = a.group(3)
        if value is None:
            value = a.group(4)
        if value and "&" in value:
            value = html.unescape(value)
        attrs.append((a.group(1).lower(), value))
    return attrs


def _skeleton(emitted: str) -> str:
    letters = []
    for m in _EMITTED_TAG.finditer(emitted):
        close, name, attrs = m.groups()
        if name == "br" and not close:
            continue
        letter = _LETTERS.get(name)
        if letter is None or "&#x27;" in attrs:
            return "!"
        if name == "a" and (href := _HREF.search(attrs)) and not _KEPT_HREF.fullmatch(href[1]):
            return "!"
        letters.append(letter.lower() if close else letter)
    return "".join(letters)


def _tag_output(raw: str, parser: _Reducer) -> tuple[tuple[str, str], bool]:
    """(output, skeleton) of one tag and whether it may be cached; raises _NotOnePass."""
    m = _TOKEN.match(raw)
    if m is None or m.end() != len(raw):
        raise _NotOnePass  # a "<" that starts no tag
    out = parser.out
    mark = len(out)
    cacheable = True
    if (name := m.group("start")) is not None:
        tag = name.lower()
        if tag in _ONE_PASS_STOP:
            raise _NotOnePass
        attrs = _attributes(m.group("attrs") or "")
        if m.group("close"):
            parser.handle_startendtag(tag, attrs)
        else:
            parser.handle_starttag(tag, attrs)
        if tag == "img":
            cacheable = False  # it adds to this post's images
        elif tag == "a" and (href := dict(attrs).get("href")):
            cacheable = _BASE_FREE_HREF.match(href.strip()) is not None
    elif (name := m.group("end")) is not None:
        tag = name.lower()
        if tag in _TABLE:
            raise _NotOnePass
        parser.handle_endtag(tag)
    # else a comment: no output
    emitted = "".join(out[mark:])
    del out[mark:]
    return (emitted, _skeleton(emitted)), cacheable


def _scheme(url: str) -> str:
    # urlsplit's answer, without its cost for the usual bases.
    if url.startswith("https://"):
        return "https"
    if url.startswith("http://"):
        return "http"
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def _tables(scheme: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The caches for one base scheme, emptied first when they have grown too big."""
    tables = _CACHE.get(scheme)
    if tables is None:
        tables = _CACHE.setdefault(scheme, ({}, {}, {}))
    if len(tables[0]) + len(tables[2]) >= _CACHE_LIMIT or not tables[0]:
        for table in tables:
            table.clear()
            table[""] = ""
    return tables


def _one_pass(source: str, parser: _Reducer) -> tuple[str, str]:
    """(reduction, skeleton) of `source` as the token path reduces it; raises _NotOnePass."""
    outputs, skeletons, escaped = _tables(_scheme(parser.base_url))
    # The common case runs in C: a findall, then dict lookups and joins over whole lists.
    texts, specials, raws = zip(*_ONE_PASS.findall(source), strict=True)
    emitted = list(map(outputs.get, raws))
    not_cached: dict[int, str] = {}
    if None in emitted:
        for i, raw in enumerate(raws):
            if emitted[i] is None:
                if raw in outputs:
                    emitted[i] = outputs[raw]
                    continue
                (output, skeleton), cacheable = _tag_output(raw, parser)
                emitted[i] = output
                if cacheable:
                    outputs[raw] = output
                    skeletons[raw] = skeleton
                else:
                    not_cached[i] = skeleton
    found = list(map(skeletons.get, raws))
    for i, skeleton in not_cached.items():
        found[i] = skeleton
    # Text holding "&" or ">" (from its first one on): as _fast_tokens and handle_data write it.
    special_out = list(map(escaped.get, specials))
    if None in special_out:
        for i, special in enumerate(specials):
            if special_out[i] is None:
                special_out[i] = text = html.escape(html.unescape(special), quote=False)
                if len(special) <= _CACHED_TEXT:
                    escaped[special] = text
    # Every None is filled in above; join() would refuse one.
    pieces: list[str | None] = [""] * (3 * len(raws))
    pieces[0::3] = texts
    pieces[1::3] = special_out
    pieces[2::3] = emitted
    return "".join(pieces), "".join(found)  # type: ignore[arg-type]


def _nh3_keeps(reduced: str, skeleton: str) -> bool:
    """Whether nh3.clean returns the one-pass `reduced` unchanged (see "Skipping nh3")."""
    if ("!" in skeleton or "<pre>\n" in reduced or "\x00" in reduced or "\r" in reduced
            or "\xa0" in reduced or _BLOCK_IN_P.search(skeleton) or _A_IN_A.search(skeleton)
            or _LOOSE_LI.search(skeleton)):
        return False
    if not reduced.isascii():
        try:
            reduced.encode()
        except UnicodeEncodeError:
            return False  # a lone surrogate: nh3 raises, as it should
    # Nested properly and all closed: taking out "open, close" pairs empties it.
    for _ in range(_MAX_DEPTH):
        if not skeleton:
            return True
        shorter = _EMPTY_PAIR.sub("", skeleton)
        if len(shorter) == len(skeleton):
            return False
        skeleton = shorter
    return False


def _reduce_by_tokens(source: str, parser: _Reducer) -> str:
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
    return "".join(parser.out)


def _clean(reduced: str) -> str:
    return nh3.clean(
        reduced,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT - {"head"}),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
        strip_comments=True,
    )


def reduce_html(source: str, *, base_url: str) -> Reduced:
    """Reduce `source` to Mastodon's allowlist; relative links resolve against `base_url`."""
    parser = _Reducer(base_url)
    try:
        reduced, skeleton = _one_pass(source, parser)
        cleaned = reduced if _nh3_keeps(reduced, skeleton) else _clean(reduced)
    except _NotOnePass:
        parser = _Reducer(base_url)
        cleaned = _clean(_reduce_by_tokens(source, parser))
    # Empty paragraphs are left behind where a block held only an image.
    cleaned = cleaned.replace("<p></p>", "").strip()
    return Reduced(html=cleaned, images=tuple(parser.images))
