"""Markdown -> HTML for posts and pages. PURE: a string in, a `Rendered` out.

Python-Markdown does the parsing, with the extensions a blogger expects (fenced code with
Pygments classes, tables, footnotes, heading anchors, attribute lists, definition lists,
abbreviations, Markdown inside HTML, sane lists). Around it:

* `normalize_lists` makes lists behave like GitHub/Hugo (CommonMark): two-space nesting
  nests and a list may follow a paragraph line without a blank line. Python-Markdown alone
  wants four spaces and a blank line, which silently flattens most imported content.
* Smart punctuation (quotes, dashes, ellipses) by a light tree pass instead of "smarty".
* `@user@server.tld` becomes a link to the account (`class="mention u-url"`), outside code.
* Every relative link and image source is made absolute, because the same HTML is also sent
  to other servers (ActivityPub) and put in feeds, where relative URLs break.

Speed matters (a build renders thousands of posts), so one Markdown instance is reused per
thread with `reset()`, Python-Markdown's passes run with the speed-ups of markup_speedups.py
(same output), and the HTML is post-processed with single linear regex passes rather than
re-parsed.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass
from itertools import filterfalse
from urllib.parse import urljoin
from xml.etree import ElementTree as etree

import markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

from ..model import Image
from .markup_speedups import (
    skip_absent_syntax,
    speedup_extensions,
    speedups_agree,
    speedups_left_out,
)
from .markup_writers import Formatters, html_serializer

__all__ = [
    "MARKUP_VERSION",
    "MAX_NESTING",
    "Rendered",
    "absolute_url",
    "highlight_css",
    "media_type_of",
    "normalize_lists",
    "render_markdown",
    "speedups_off_reason",
]

# Bump whenever the HTML this module produces for the same input changes: it is part of the
# parse-cache key, so old cached renderings are not reused.
MARKUP_VERSION = 4

MORE_MARKER = "<!--more-->"
WORDS_PER_MINUTE = 220
HIGHLIGHT_CLASS = "highlight"


@dataclass(frozen=True)
class Rendered:
    """The result of rendering one Markdown body."""

    html: str  # body HTML, all links/images absolute
    summary_html: str  # before <!--more--> if present, else the first paragraph
    toc_html: str  # "" when the body has no headings
    word_count: int
    reading_minutes: int  # >= 1, ~220 wpm
    images: tuple[Image, ...]  # inline images (absolute url, alt), in order
    mentions: tuple[str, ...]  # "user@server.tld", first occurrence order, no duplicates
    has_more: bool
    # Why the body could not be rendered ("" when it was): the file is then a content
    # problem, reported like bad front matter, never a crash.
    problem: str = ""


# Lists and quotes inside each other deeper than this are refused. The check is fedipress's
# own, on the source: Python-Markdown's handling of deep nesting differs between releases
# (up to 3.11.3 it overflows the stack; from 3.11.4 it stops nesting near the interpreter's
# limit and keeps the deeper markers as text, a silently different page), and it must not
# hang on whether the speed-ups of markup_speedups.py are in use. Far beyond any real post,
# and far below the depth at which either happens.
MAX_NESTING = 100

TOO_DEEP = ("the Markdown nests too deeply to render (lists, quotes, emphasis or HTML blocks"
            f" inside each other more than {MAX_NESTING} levels deep); flatten it")


# --------------------------------------------------------------------------------------------
# Lists: CommonMark-style indentation -> Python-Markdown's four-space indentation.

_ITEM = re.compile(r"( *)([*+-]|\d{1,9}\.)( +|$)")
_HRULE = re.compile(r" {0,3}([-*_])(?: *\1){2,} *$")
_FENCE = re.compile(r"( *)(`{3,}|~{3,})(.*)$")
_NOT_PARAGRAPH = re.compile(r" {0,3}(?:#|>|<|\||\[\^?[^\]]*\]:|\*\[|:)")
_MAYBE_LIST = re.compile(r"^[ >]*(?:[*+-]|\d{1,9}\.)(?: |$)", re.MULTILINE)


@dataclass
class _Item:
    src: int  # column where the item's content starts in the source (CommonMark rule)
    dst: int  # column where Python-Markdown expects that content (marker column + 4)


def _indent_of(line: str) -> tuple[int, str]:
    """(indent width with tabs expanded to 4, the line without its indentation)."""
    stripped = line.lstrip(" \t")
    lead = line[: len(line) - len(stripped)]
    if "\t" in lead:
        lead = lead.expandtabs(4)
    return len(lead), stripped


def _fence_lang(info: str) -> str:
    word = info.strip().lstrip("{").split(maxsplit=1)
    return word[0].lstrip(".").rstrip("}") if word else ""


def normalize_lists(text: str) -> str:
    """Rewrite list indentation so Python-Markdown nests lists the way CommonMark does.

    Each list item's content column is mapped to "marker column + 4"; nested lines keep their
    indentation relative to it, so an indented code block inside an item stays code. A list
    that starts right after a top-level paragraph line gets the blank line Python-Markdown
    needs (bullets with content, or ordered lists starting at 1, as in CommonMark). Fenced
    code is copied verbatim at top level; inside a list item (which Python-Markdown's fences
    do not support) it becomes an indented code block with a `:::lang` line for codehilite.
    A top-level block quote is normalized the same way, as a document of its own.
    Lines are handled once each, so this is linear in the input.
    """
    if not _MAYBE_LIST.search(text):
        return text  # fast path: nothing list-like, nothing to do
    out: list[str] = []
    stack: list[_Item] = []
    prev = "blank"  # blank | para | item | quote | other
    fence: tuple[str, int, _Item | None] | None = None  # (char, length, item it lives in)
    quote: list[str] = []  # a top-level block quote's lines, normalized as a document

    def flush_quote() -> None:
        inner = normalize_lists("\n".join(quote)).split("\n")
        out.extend(("> " + q) if q else ">" for q in inner)
        quote.clear()

    for line in text.split("\n"):
        if fence is None:
            stripped = line.lstrip(" ")
            if (
                stripped.startswith(">")
                and len(line) - len(stripped) < 4
                and not (stack and stack[0].src <= len(line) - len(stripped))
            ):
                stack.clear()
                body = stripped[1:]
                quote.append(body[1:] if body.startswith(" ") else body)
                prev = "quote"
                continue
            if quote:
                flush_quote()
        if fence is not None:
            char, length, owner = fence
            indent, rest = _indent_of(line)
            closing = rest.startswith(char * length) and not rest.lstrip(char).strip()
            if owner is None:
                out.append(line)
            elif not closing:
                shift = max(0, indent - owner.src)
                out.append(" " * (owner.dst + 4 + shift) + rest if rest else "")
            if closing:
                fence = None
                if owner is not None:
                    out.append("")  # an indented code block must end with a blank line
                prev = "other"
            continue

        if not line.strip():
            out.append("")
            prev = "blank"
            continue

        indent, rest = _indent_of(line)
        item = None if _HRULE.match(line) else _ITEM.match(" " * indent + rest)
        fence_match = _FENCE.match(" " * indent + rest)
        if indent >= 4 and not (stack and stack[0].src <= indent):
            item = fence_match = None  # four spaces with no list to belong to: not a block start

        # A non-blank line right after paragraph text in an item continues that paragraph
        # ("lazy" continuation), whatever its indentation, unless it starts another block.
        lazy = (
            stack
            and item is None
            and fence_match is None
            and prev in ("para", "item")
            and indent < stack[-1].src
            and not _NOT_PARAGRAPH.match(rest)
            and not _HRULE.match(line)
        )
        if not lazy:
            while stack and indent < stack[-1].src:
                stack.pop()
        parent = stack[-1] if stack else None

        if lazy:
            out.append(" " * stack[-1].dst + rest)
            prev = "para"
            continue

        if fence_match is not None and (parent is None or indent - parent.src < 4):
            char, length = fence_match.group(2)[0], len(fence_match.group(2))
            if char == "`" and "`" in fence_match.group(3):
                pass  # not a fence: an info string may not contain backticks
            else:
                if parent is None:
                    fence = (char, length, None)
                    out.append(line)
                else:
                    fence = (char, length, parent)
                    if prev != "blank":
                        out.append("")
                    lang = _fence_lang(fence_match.group(3))
                    if lang:
                        out.append(" " * (parent.dst + 4) + ":::" + lang)
                prev = "other"
                continue

        if item is not None and (parent is not None or indent < 4):
            marker, spaces = item.group(2), item.group(3)
            has_text = bool(rest[len(marker) :].strip())
            width = len(spaces) if 0 < len(spaces) <= 4 and has_text else 1
            dst_indent = parent.dst if parent is not None else 0
            if (
                parent is None
                and prev == "para"
                and has_text
                and (not marker[0].isdigit() or marker == "1.")
            ):
                out.append("")  # a list may interrupt a paragraph, as on GitHub
            elif prev == "quote":
                out.append("")  # else Python-Markdown pulls the item into the quote
            out.append(" " * dst_indent + rest)
            stack.append(_Item(src=indent + len(marker) + width, dst=dst_indent + 4))
            prev = "item"
            continue

        if parent is not None:
            # Continuing a paragraph, extra indentation means nothing (it cannot start code).
            continuing = prev in ("para", "item")
            extra = 0 if continuing else indent - parent.src
            out.append(" " * (parent.dst + extra) + rest)
            code = not continuing and extra >= 4
        else:
            out.append(line)
            code = prev != "para" and indent >= 4
        is_text = not code and not _NOT_PARAGRAPH.match(rest) and not _HRULE.match(line)
        prev = "para" if is_text else "quote" if rest.startswith(">") else "other"
    if quote:
        flush_quote()
    return "\n".join(out)


# A line can only sit more than MAX_NESTING levels deep if the run of spaces, tabs and ">"
# it starts with is longer than that (each level takes at least one character): one C-level
# search clears almost every document.
_DEEP_PREFIX = re.compile(rf"^[ \t>]{{{MAX_NESTING + 1},}}", re.MULTILINE)
_PREFIX = re.compile(r"[ \t>]*")
_TOP_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _nesting_too_deep(source: str, *, lists: bool = True) -> bool:
    """Whether a line of `source` (after `normalize_lists`) is nested more than MAX_NESTING
    block levels deep: each ">" of its prefix is a quote, and each four columns of indentation
    a list level, but one level at most deeper than the line before (a list nests only inside
    an item: deeper indentation is code or text). With `lists` False, quotes only (before
    `normalize_lists`, indentation means other things). Lines of a top-level fenced code block
    are code, whatever their indentation."""
    if not _DEEP_PREFIX.search(source):
        return False
    fence = ""
    level = 0  # the list level of the last line with text
    for line in source.split("\n"):
        opening = _TOP_FENCE.match(line)
        if fence:
            if opening is not None and opening.group(1).startswith(fence) \
                    and not line[opening.end():].strip():
                fence = ""
            continue
        if opening is not None:
            fence = opening.group(1)
            level = 0
            continue
        prefix = _PREFIX.match(line).group(0)  # type: ignore[union-attr]  # (matches "")
        if len(prefix) == len(line):
            continue  # blank (or only markers): a list goes on after a blank line
        if lists:
            columns = len(prefix.replace("> ", "").replace(">", "").expandtabs(4))
            level = min(columns // 4, level + 1)
        if prefix.count(">") + level > MAX_NESTING:  # (">" with the space that may follow)
            return True
    return False


# --------------------------------------------------------------------------------------------
# Mentions: @user@server.tld -> link, never inside code (inline patterns skip code spans and
# blocks) and never inside another link (ANCESTOR_EXCLUDES).

_MENTION_RE = (
    r"(?<![\w@/.:+-])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63})(?![\w@-])"
)


class _MentionProcessor(InlineProcessor):
    ANCESTOR_EXCLUDES = ("a",)
    REQUIRED_TEXT = ("@",)  # in every match: the inline speed-up skips text without it

    def __init__(self, found: list[str]) -> None:
        super().__init__(_MENTION_RE)
        self.found = found

    def handleMatch(  # type: ignore[override]  # noqa: N802
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element, int, int]:
        user, server = m.group(1), m.group(2)
        handle = f"{user}@{server}"
        if handle not in self.found:
            self.found.append(handle)
        card = etree.Element("span", {"class": "h-card"})
        link = etree.SubElement(
            card, "a", {"href": f"https://{server}/@{user}", "class": "mention u-url"}
        )
        link.text = AtomicString(f"@{handle}")
        return card, m.start(0), m.end(0)


class _MentionExtension(Extension):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802
        md.registerExtension(self)
        # Below links (160) and autolinks (120) so their text is already claimed.
        md.inlinePatterns.register(_MentionProcessor(self.found), "fedipress_mention", 65)

    def reset(self) -> None:
        self.found.clear()


# --------------------------------------------------------------------------------------------
# Smart punctuation. Python-Markdown's "smarty" runs a second full inline pass with 18 patterns
# and costs about a third of the render time; this does the same common cases with a few
# regexes per text node, writing the characters themselves (UTF-8) rather than entities.

_NO_TYPOGRAPHY = frozenset({"code", "pre", "kbd", "samp", "script", "style", "math"})
_DASHES = re.compile(r"---|--|\.\.\.|\. \. \.")
_DASH_CHARS = {"---": "\u2014", "--": "\u2013", "...": "\u2026", ". . .": "\u2026"}
_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)|'(?=\d\ds\b)")  # don't, '90s
_OPENING = re.compile(r"(?<![^\s(\[{\u2014\u2013/-])([\"'])(?=\S|$)")


def _smarten(text: str, at_start: bool) -> str:
    """Typographic quotes, dashes and ellipses in one text node.

    `at_start` is False for an element's tail: a quote right after an inline element
    ("**bold**" closing) closes rather than opens.
    """
    if "--" in text or ". ." in text or "..." in text:
        text = _DASHES.sub(lambda m: _DASH_CHARS[m.group(0)], text)
    if "'" not in text and '"' not in text:
        return text
    if not at_start:
        text = "x" + text  # a non-space before the first character
    text = _APOSTROPHE.sub("\u2019", text)
    text = _OPENING.sub(lambda m: "\u201c" if m.group(1) == '"' else "\u2018", text)
    text = text.replace('"', "\u201d").replace("'", "\u2019")
    return text if at_start else text[1:]


class _Typography(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        self._walk(root)

    def _walk(self, parent: etree.Element) -> None:
        for child in parent:
            if child.tag not in _NO_TYPOGRAPHY:
                if child.text and not isinstance(child.text, AtomicString):
                    child.text = _smarten(child.text, True)
                if len(child):  # (most elements are leaves: no call for those)
                    self._walk(child)
            if child.tail and not isinstance(child.tail, AtomicString):
                child.tail = _smarten(child.tail, False)


class _TypographyExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802
        # After inline patterns (20) and attribute lists (8), before the TOC (5) reads titles.
        md.treeprocessors.register(_Typography(md), "fedipress_typography", 6)


# --------------------------------------------------------------------------------------------
# One Markdown instance per thread (building one costs ~20 ms; reset() costs microseconds).

_local = threading.local()


def _new_markdown(*, stock: bool = False) -> tuple[markdown.Markdown, _MentionExtension]:
    """A configured parser; `stock` leaves out the speed-ups (markup_speedups.py; for tests)."""
    mentions = _MentionExtension()
    extensions: list[str | Extension] = [
        "fenced_code",
        "codehilite",
        "tables",
        "footnotes",
        "toc",
        "attr_list",
        "def_list",
        "abbr",
        "md_in_html",
        "sane_lists",
        mentions,
        _TypographyExtension(),
    ]
    if not stock:
        extensions += speedup_extensions()
    codehilite: dict[str, object] = {"css_class": HIGHLIGHT_CLASS, "guess_lang": False}
    if not stock:
        codehilite["pygments_formatter"] = Formatters()
    md = markdown.Markdown(
        extensions=extensions,
        extension_configs={
            "codehilite": codehilite,
            "toc": {"permalink": True, "permalink_title": "Link to this section"},
        },
        output_format="html",
    )
    serializer = None if stock else html_serializer()
    if serializer is not None:
        md.serializer = serializer  # also what the toc and md_in_html serialize with
    return md, mentions


def _markdown() -> tuple[markdown.Markdown, _MentionExtension]:
    pair: tuple[markdown.Markdown, _MentionExtension] | None = getattr(_local, "md", None)
    if pair is None:
        # (The speed-ups only where they give the stock parser's HTML: markup_speedups.py.)
        pair = _new_markdown(stock=not speedups_agree(_new_markdown, normalize_lists))
        _local.md = pair
    return pair


def speedups_off_reason() -> str:
    """Why this process renders Markdown without the speed-ups ("" when it uses them): the
    pages are the same, the build is slower. Checks once, as the first render would."""
    _markdown()
    return speedups_left_out()


# --------------------------------------------------------------------------------------------
# Post-processing of the HTML string: absolute URLs, images, summary, word count.

_URL_TAG = re.compile(
    r"<(a|img|source|video|audio|iframe|embed|track|area|object)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>",
    re.IGNORECASE,
)
_URL_ATTR = re.compile(
    r"""(\s(?:href|src|poster|srcset|data)\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE
)
_SRC_ATTR = re.compile(r"""\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_ALT_ATTR = re.compile(r"""\salt\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_MEDIA_TYPES = {
    "avif": "image/avif",
    "gif": "image/gif",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "svg": "image/svg+xml",
    "webp": "image/webp",
}


def media_type_of(url: str) -> str | None:
    """The image media type from a URL's file extension, or None if unknown."""
    path = url.split("#", 1)[0].split("?", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return _MEDIA_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None


def absolute_url(url: str, page_url: str, site_url: str) -> str:
    """`url` as written in a post -> absolute: relative to `page_url`, "/x" to `site_url`.

    Anything with a scheme (https:, mailto:, data:), protocol-relative "//host" and "#frag"
    is returned unchanged.
    """
    stripped = url.strip()
    if not stripped or stripped[0] == "#" or stripped.startswith("//"):
        return url
    if _SCHEME.match(stripped):
        return url  # http:, https:, mailto:, data:, tel: ... are already absolute
    if stripped[0] == "/":
        return site_url + stripped[1:]
    try:
        return urljoin(page_url, stripped)
    except ValueError:  # a broken IPv6 host: left as the author wrote it
        return url


def _rewrite_urls(body: str, page_url: str, site_url: str) -> tuple[str, tuple[Image, ...]]:
    images: list[Image] = []

    def attr(m: re.Match[str]) -> str:
        name = m.group(1)
        value = m.group(2) if m.group(2) is not None else m.group(3)
        quote = '"' if m.group(2) is not None else "'"
        if name.rstrip(" =").strip().lower() == "srcset":
            parts = []
            for candidate in value.split(","):
                words = candidate.split()
                if words:
                    words[0] = absolute_url(words[0], page_url, site_url)
                parts.append(" ".join(words))
            new = ", ".join(parts)
        else:
            new = absolute_url(value, page_url, site_url)
        return f"{name}{quote}{new}{quote}"

    def tag(m: re.Match[str]) -> str:
        attrs = _URL_ATTR.sub(attr, m.group(2))
        if m.group(1).lower() == "img":
            src = _SRC_ATTR.search(attrs)
            alt = _ALT_ATTR.search(attrs)
            if src is not None:
                url = src.group(1) if src.group(1) is not None else src.group(2)
                alt_text = ""
                if alt is not None:
                    alt_text = alt.group(1) if alt.group(1) is not None else alt.group(2)
                url = html.unescape(url)
                images.append(
                    Image(url=url, alt=html.unescape(alt_text), media_type=media_type_of(url))
                )
        return f"<{m.group(1)}{attrs}>"

    return _URL_TAG.sub(tag, body), tuple(images)


_OPEN_OR_CLOSE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>")
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


def _close_open_tags(fragment: str) -> str:
    """Append closing tags for elements left open (a <!--more--> inside a paragraph)."""
    stack: list[str] = []
    for m in _OPEN_OR_CLOSE.finditer(fragment):
        name = m.group(2).lower()
        if m.group(3) or name in _VOID:
            continue
        if m.group(1):
            if name in stack:
                while stack and stack.pop() != name:
                    pass
        else:
            stack.append(name)
    return fragment + "".join(f"</{name}>" for name in reversed(stack))


_FIRST_PARAGRAPH = re.compile(r"<p\b[^>]*>.*?</p>", re.DOTALL)
_PRE = re.compile(r"<pre\b.*?</pre>", re.DOTALL | re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_ENTITY = re.compile(r"&#?\w+;")
_WORD = re.compile(r"\w+(?:['\u2019.-]\w+)*")


def _count_words(body: str) -> int:
    # Prose only: code is skimmed, not read at 220 wpm; entities (smart quotes, the heading
    # permalink's &para;) must not count as words, so "don&rsquo;t" stays one word.
    text = _ENTITY.sub("", _TAGS.sub(" ", _PRE.sub(" ", body)))
    return _count_matches_of_word(text)


def _count_matches_of_word(text: str) -> int:
    r"""len(_WORD.findall(text)), about twice as fast on prose.

    A match never spans whitespace, and a whitespace-separated token made only of characters
    for which str.isalnum() holds (exactly what `\w` matches, less "_") is one match: those
    are counted in C, and only the other tokens (punctuation, "_", apostrophes) go through the
    regex, joined by spaces.
    """
    tokens = text.split()
    others = list(filterfalse(str.isalnum, tokens))
    return len(tokens) - len(others) + len(_WORD.findall(" ".join(others)))


def render_markdown(text: str, *, page_url: str, site_url: str) -> Rendered:
    """Render one Markdown body (front matter already removed).

    `page_url` is the absolute URL of the page's directory (ending in "/"), against which
    relative links resolve; `site_url` is the site's base URL (ending in "/"), against which
    root-relative links ("/about/") resolve. Safe to call from several threads: each
    thread gets its own parser.
    """
    md, mention_ext = _markdown()
    md.reset()
    try:
        # (Quotes are checked before normalize_lists too, whose work grows with the square of
        # their nesting; lists after it, when each list level has its four columns.)
        if _nesting_too_deep(text, lists=False):
            return _too_deep()
        source = normalize_lists(text)
        if _nesting_too_deep(source):
            return _too_deep()
        skip_absent_syntax(md, source)
        body = md.convert(source)
        mentions = tuple(mention_ext.found)
        toc_tokens: list[object] = getattr(md, "toc_tokens", [])
        toc_html = "" if not toc_tokens else str(getattr(md, "toc", ""))
        body, images = _rewrite_urls(body, page_url, site_url)
    except RecursionError:
        # The parser's state is left half-way (stashes, gated passes): a new one next time.
        _local.md = None
        return _too_deep()

    has_more = MORE_MARKER in body
    if has_more:
        before, _, after = body.partition(MORE_MARKER)
        summary_html = _close_open_tags(before).strip()
        body = before.rstrip("\n") + "\n" + after.lstrip("\n")
    else:
        first = _FIRST_PARAGRAPH.search(body)
        summary_html = first.group(0) if first is not None else ""

    words = _count_words(body)
    return Rendered(
        html=body,
        summary_html=summary_html,
        toc_html=toc_html,
        word_count=words,
        reading_minutes=max(1, round(words / WORDS_PER_MINUTE)),
        images=images,
        mentions=mentions,
        has_more=has_more,
    )


def _too_deep() -> Rendered:
    return Rendered(html="", summary_html="", toc_html="", word_count=0, reading_minutes=1,
                    images=(), mentions=(), has_more=False, problem=TOO_DEEP)


def highlight_css(light: str = "default", dark: str = "monokai") -> str:
    """Pygments CSS for code blocks: `light` style, and `dark` under prefers-color-scheme."""
    from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

    selector = f".{HIGHLIGHT_CLASS}"
    light_css = HtmlFormatter(style=light).get_style_defs(selector)
    dark_css = HtmlFormatter(style=dark).get_style_defs(selector)
    indented = "\n".join("  " + line for line in dark_css.splitlines())
    return f"{light_css}\n@media (prefers-color-scheme: dark) {{\n{indented}\n}}\n"
