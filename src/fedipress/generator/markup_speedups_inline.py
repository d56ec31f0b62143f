"""The inline pass of Python-Markdown, the same HTML with less interpreter work.

One of the speed-ups of markup_speedups.py (which says how they stand on Python-Markdown's
internals and are checked against its own output). This pass overrides private methods of
Python-Markdown's inline tree processor with copies of them, so it runs only on the releases
it copies (`inline_footing`); emphasis and links get shortcuts keyed by the exact regex and
class they were written for.

PURE, like markup.py: strings and element trees in and out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from xml.etree import ElementTree as etree

import markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor, Pattern
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

from .markup_internals import internal as _internal

if TYPE_CHECKING:
    from markdown.inlinepatterns import LinkInlineProcessor
    from markdown.treeprocessors import InlineProcessor as _InlineBase

__all__ = ["inline_footing"]

if not TYPE_CHECKING:
    # The class subclassed below, or a stand-in when missing: `inline_footing` then says no
    # (the stand-in is never registered).
    _InlineBase = _internal("markdown.treeprocessors", "InlineProcessor") or Treeprocessor

# --------------------------------------------------------------------------------------------
# The inline pass, same result with less interpreter work. Python-Markdown tries each of its ~17
# inline patterns on every text node through a method call that re-sorts the pattern registry,
# checks excluded ancestors and starts a `finditer`, even though almost every try finds nothing:
# that was a third of the render time. Here a pattern whose regex does not occur in the text
# from the current position is passed over with one C-level search; the rest go through
# Python-Markdown's own `__applyPattern` as before, so matches are handled by the same code.
# Passing over a pattern is what `__applyPattern` would have returned (no match, restart at 0):
# it runs `finditer` from the same position and only calls `handleMatch` on a hit.


# Text that a match of one of Python-Markdown's inline regexes cannot do without, keyed by the
# regex itself (so a changed regex in a later release just loses its shortcut): `in` is a
# memchr-speed scan, while regexes that start with a look-behind or an alternation are tried at
# every position of every text node.
_REQUIRED: dict[str, tuple[str] | tuple[str, str]] = {
    r"(?:(?<!\\)((?:\\{2})+)(?=`+)|(?<!\\)`)": ("`",),  # backtick
    r"\\(.)": ("\\",),  # escape
    r"\[\^([^\]]*)\]": ("[^",),  # footnote reference
    r"(?<!\!)\[": ("[",),  # link, reference, short reference
    r"\!\[": ("![",),  # image link, image reference, short image reference
    r"<([A-Za-z][A-Za-z0-9+.-]*://[^<>]*)>": ("://", ">"),  # autolink
    r"<([^<> !]+@[^@<> ]+)>": ("@", ">"),  # automail
    r"  \n": ("  \n",),  # line break
    r"(&(?:\#[0-9]+|\#x[0-9a-fA-F]+|[a-zA-Z0-9]+);)": ("&", ";"),  # entity
    (  # inline HTML: a tag, comment, processing instruction or CDATA, each inside <...>
        r"""(<(\/?+[a-zA-Z][^\s"'<>@]*+(?:\s+[^\s"'=<>]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|"""
        r"""[^\s"'=<>]++))?+)*+\s*+/?|!--(?:(?!<!--|-->).)*--|[?](?:(?!<[?]|[?]>).)*[?]|"""
        r"""!\[CDATA\[(?:(?!<!\[CDATA\[|\]\]>).)*\]\])>)"""
    ): ("<", ">"),
}


def _inline_classes(*names: str) -> frozenset[type]:
    """Those of the named classes of markdown.inlinepatterns that this release has."""
    found = (_internal("markdown.inlinepatterns", name) for name in names)
    return frozenset(cls for cls in found if isinstance(cls, type))


# Exactly these classes (a subclass may do more): their handleMatch returns no node for an
# id that is not in md.references.
_REFERENCE_NAMES = ("ReferenceInlineProcessor", "ShortReferenceInlineProcessor",
                    "ImageReferenceInlineProcessor", "ShortImageReferenceInlineProcessor")


def _no_match(data: str, start: int) -> None:
    return None


class _FastInline(_InlineBase):
    def __init__(self, md: markdown.Markdown) -> None:
        super().__init__(md)
        self._references = _inline_classes(*_REFERENCE_NAMES)
        self._delimiter = _internal("markdown.inlinepatterns", "DelimiterProcessor")

    def run(self, tree: etree.Element, ancestors: list[str] | None = None) -> etree.Element:
        # The registry is read per run, as Python-Markdown does, in case it changed.
        # Two required texts per pattern, "" where fewer ("" is in every string): plain `in`
        # tests in the loop below, no generator per pattern per text node.
        # Without reference definitions ("[id]: url") in the document, the reference patterns
        # cannot change the text: Python-Markdown's handlers leave an undefined "[text][id]"
        # as it is (no node), so they are passed over like a pattern that does not occur.
        no_references = not self.md.references
        searches: list[tuple[Pattern, Callable[[str, int], object] | None, str, str]] = []
        # (The registry is annotated with the tree processor's class; it holds Patterns.)
        for pattern in cast("list[Pattern]", list(self.inlinePatterns)):
            if no_references and type(pattern) in self._references:
                searches.append((pattern, _no_match, "", ""))
            elif isinstance(pattern, InlineProcessor):
                regex = pattern.getCompiledRegExp()
                # Our own patterns declare it (REQUIRED_TEXT); Python-Markdown's are known
                # by their regex.
                required: tuple[str, ...] = getattr(pattern, "REQUIRED_TEXT", ()) \
                    or _REQUIRED.get(regex.pattern) or ()
                first, second = (*required, "", "")[:2]
                searches.append((pattern, regex.search, first, second))
            else:
                searches.append((pattern, None, "", ""))  # old-style: always tried, as before
        self._searches = searches
        self._triggers = _triggers(searches, self._delimiter)
        return super().run(tree, ancestors)

    def _InlineProcessor__handleInline(  # noqa: N802  # overrides the name-mangled method
        self,
        data: str,
        patternIndex: int = 0,  # noqa: N803
    ) -> str:
        if isinstance(data, AtomicString):
            return data
        triggers = self._triggers
        if triggers is not None and triggers(data) is None:
            return data  # no pattern's required text occurs: each would be passed over below
        searches = self._searches
        apply = self._InlineProcessor__applyPattern
        start = 0
        count = len(searches)
        while patternIndex < count:
            pattern, search, first, second = searches[patternIndex]
            if search is not None and (
                first not in data or second not in data or search(data, start) is None
            ):
                patternIndex += 1
                start = 0
                continue
            data, matched, start = apply(pattern, data, patternIndex, start)
            if not matched:
                patternIndex += 1
        return data

    def _InlineProcessor__applyPattern(  # noqa: N802  # overrides the name-mangled method
        self,
        pattern: Pattern,
        data: str,
        patternIndex: int,  # noqa: N803
        startIndex: int = 0,  # noqa: N803
    ) -> tuple[str, bool, int]:
        """Python-Markdown's __applyPattern for InlineProcessors, with its helpers inlined."""
        if not isinstance(pattern, InlineProcessor):
            return _STOCK_APPLY(self, pattern, data, patternIndex, startIndex)  # type: ignore[no-any-return,misc]
        for exclude in pattern.ANCESTOR_EXCLUDES:
            if exclude.lower() in self.ancestors:
                return data, False, 0
        match = None
        # handleMatch may reject a match: the next one is tried, as in Python-Markdown.
        for match in pattern.getCompiledRegExp().finditer(data, startIndex):
            node, start, end = pattern.handleMatch(match, data)
            if start is None or end is None:
                startIndex += match.end(0)
                match = None
                continue
            break
        if not match:
            return data, False, 0
        end = cast(int, end)
        if node is None:
            return data, True, end
        start = cast(int, start)
        if not isinstance(node, str) and not isinstance(node.text, AtomicString):
            handle = self._InlineProcessor__handleInline
            for child in [node, *node]:
                if child.text:
                    self.ancestors.append(child.tag.lower())
                    child.text = handle(child.text, patternIndex + 1)
                    self.ancestors.pop()
                if child.tail:
                    child.tail = handle(child.tail, patternIndex)
        stashed = self.stashed_nodes
        key = f"{len(stashed):04d}"
        placeholder = _PLACEHOLDER % key
        stashed[key] = node
        return data[:start] + placeholder + data[end:], True, start + len(placeholder)

    def _InlineProcessor__processElementText(  # noqa: N802  # overrides the name-mangled method
        self, node: etree.Element, subnode: etree.Element, isText: bool = True  # noqa: N803
    ) -> None:
        # Without a placeholder in it, Python-Markdown's version puts the same text back.
        text = subnode.text if isText else subnode.tail
        if text is not None and _PLACEHOLDER_PREFIX not in text:
            return
        _STOCK_PROCESS_TEXT(self, node, subnode, isText)  # type: ignore[misc]  # (see `fast`)


_STOCK_APPLY = getattr(_InlineBase, "_InlineProcessor__applyPattern", None)
_STOCK_PROCESS_TEXT = getattr(_InlineBase, "_InlineProcessor__processElementText", None)
# (Missing in some release: the inline speed-up is then left out, see `speedup_extensions`.)
_PLACEHOLDER: str = _internal("markdown.util", "INLINE_PLACEHOLDER")
_PLACEHOLDER_PREFIX: str = _internal("markdown.util", "INLINE_PLACEHOLDER_PREFIX")


def _triggers(
    searches: list[tuple[Pattern, Callable[[str, int], object] | None, str, str]],
    delimiter: type | None,
) -> Callable[[str], object] | None:
    """A search for any text some pattern needs, or None when one pattern needs none we know.

    Most text nodes handled are short (an emphasis's or a link's text) and hold none: one C
    search then replaces the loop over every pattern.
    """
    needed: list[str] = []
    for pattern, search, first, _second in searches:
        if search is _no_match:
            continue
        if search is not None and first:
            needed.append(first)
        elif (
            search is not None
            and delimiter is not None
            and type(pattern) is delimiter
            and _tokens_regex(pattern)
        ):
            needed += cast(Any, pattern).tokens  # the emphasis processor: its regex is its tokens
        else:
            return None
    key = tuple(needed)
    found = _TRIGGERS.get(key)
    if found is None:
        found = _TRIGGERS[key] = re.compile("|".join(map(re.escape, needed))).search
    return found


_TRIGGERS: dict[tuple[str, ...], Callable[[str], object]] = {}


def _tokens_regex(pattern: object) -> bool:
    """Whether a delimiter processor's regex is the alternation of its tokens, as written for."""
    tokens = getattr(pattern, "tokens", None)
    regex = getattr(getattr(pattern, "compiled_re", None), "pattern", None)
    return (
        isinstance(tokens, (list, tuple))
        and all(isinstance(token, str) and token for token in tokens)
        and regex == "|".join(map(re.escape, tokens))
    )


class _FastInlineExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802
        # Replaces the stock "inline" tree processor at its own priority.
        md.treeprocessors.register(_FastInline(md), "inline", 20)
        links = _inline_classes("LinkInlineProcessor", "ImageInlineProcessor")
        delimiter = _internal("markdown.inlinepatterns", "DelimiterProcessor")
        for pattern in md.inlinePatterns:
            if type(pattern) in links and getattr(
                getattr(pattern, "RE_LINK", None), "pattern", ""
            ) == _RE_LINK and all(
                callable(getattr(pattern, name, None))
                for name in ("getText", "getLink", "unescape")
            ):
                link = cast("LinkInlineProcessor", pattern)
                setattr(link, "getText", partial(_get_text, link.getText))  # noqa: B010
                setattr(link, "getLink", partial(_get_link, link, link.getLink))  # noqa: B010
            elif (delimiter is not None and type(pattern) is delimiter
                  and _simple_pairs_readable(pattern)):
                emphasis: Any = pattern
                setattr(emphasis, "handleMatch",  # noqa: B010
                        partial(_emphasis, emphasis, emphasis.handleMatch))


# Emphasis: Python-Markdown's delimiter processor pairs "*" and "_" runs with a stack machine
# that, from the run it is called at, reads on until every opened run is closed, and caches the
# regions it found. Its most common input is the simplest: a run of one or two that can only
# open ("*word", by its own boundary regex), followed by the next delimiter character of all,
# a run of the same character and length that can only close ("word*"). The machine then
# pairs those two, finds every stack empty and stops, leaving itself reset: the result is one
# <em> (or <strong>) holding the text between. That case is answered directly, from the
# processor's own regexes; anything else goes to its handleMatch.


# Everything the processor and its delimiters hold in the releases `_emphasis` was written for
# (3.11.3; 3.11.4 added a cache of built elements, the rest of a closing run, the positions
# seen and a memo of searches). The shortcut answers only when all of the state is at rest:
# a release that adds any other attribute may keep state it does not know, so loses it.
_PROCESSOR_CONFIG = frozenset({"compiled_re", "delimiters", "md", "pattern", "safe_mode",
                               "tokens", "handleMatch"})
_PROCESSOR_STATE = frozenset({"regions", "stack", "cache", "positions", "searched",
                              "cache_index", "cache_pos", "remainder"})
_DELIMITER_ATTRIBUTES = frozenset({"bad", "boundary", "double", "max_size", "single", "smart",
                                   "stack", "tag_count", "tags", "token"})


def _simple_pairs_readable(processor: object) -> bool:
    """Whether the processor has the internals `_emphasis` reads, as it had when written."""
    delimiters = getattr(processor, "delimiters", None)
    return (
        isinstance(delimiters, dict)
        and set(vars(processor)) <= _PROCESSOR_CONFIG | _PROCESSOR_STATE
        and all(isinstance(token, str) and len(token) == 1 for token in delimiters)
        and all(hasattr(processor, name)
                for name in ("regions", "stack", "get_match", "handleMatch"))
        and all(
            all(hasattr(d, name) for name in ("boundary", "tags", "tag_count", "double", "stack"))
            and set(vars(d)) <= _DELIMITER_ATTRIBUTES
            for d in delimiters.values()
        )
    )


def _at_rest(processor: Any) -> bool:
    """Whether the processor holds nothing from an earlier match (as after its reset)."""
    return (
        not processor.regions
        and not processor.stack
        and not getattr(processor, "cache", None)
        and not getattr(processor, "positions", None)
        and not getattr(processor, "searched", None)
        and getattr(processor, "remainder", None) is None
        and not any(d.stack for d in processor.delimiters.values())
    )


def _emphasis(processor: Any,
              stock: Callable[[re.Match[str], str], tuple[etree.Element | None, int | None,
                                                          int | None]],
              m: re.Match[str], data: str) -> tuple[etree.Element | None, int | None, int | None]:
    delimiters = processor.delimiters
    first = m.start(0)
    delim = delimiters.get(data[first])
    if (
        delim is not None
        and delim.tag_count == 2
        and not delim.double
        and _at_rest(processor)
    ):
        opening = processor.get_match(data, first)
        if opening is not None and opening.lastgroup == "start":
            size = opening.end(0) - first
            after = first + size
            if size <= 2:
                second = -1  # the next delimiter character of any kind
                for token in delimiters:
                    found = data.find(token, after)
                    if found != -1 and (second == -1 or found < second):
                        second = found
                if second != -1 and data[second] == data[first]:
                    closing = delim.boundary.match(data, second)
                    if (
                        closing is not None
                        and closing.lastgroup == "end"
                        and closing.end(0) - second == size
                        # (else the rest of the closing run is left for the next match)
                        and data[second + size : second + size + 1] != data[first]
                    ):
                        el = etree.Element(delim.tags[0] if size == 2 else delim.tags[1])
                        el.text = data[after:second]
                        return el, first, second + size
    return stock(m, data)


# Links: Python-Markdown reads "[text](url)" a character at a time in Python, tracking nested
# brackets, parentheses and quotes. The common cases are read with one search each, and
# whatever else goes to its own method.
_RE_LINK = r"""\(\s*(?:(<[^<>]*>)\s*(?:('[^']*'|"[^"]*")\s*)?\))?"""
_PLAIN_URL_END = re.compile(r"""[^()'"]*\)""")


def _get_text(stock: Callable[[str, int], tuple[str, int, bool]], data: str,
              index: int) -> tuple[str, int, bool]:
    """getText: with no "[" before the first "]", the text is all up to that "]"."""
    end = data.find("]", index)
    if end != -1 and data.find("[", index, end) == -1:
        return data[index:end], end + 1, True
    return stock(data, index)


def _get_link(link: LinkInlineProcessor,
              stock: Callable[[str, int], tuple[str, str | None, int, bool]], data: str,
              index: int) -> tuple[str, str | None, int, bool]:
    """getLink: a "(url)" with no "<url>", parenthesis or quote ends at the first ")".

    Python-Markdown's scan then meets only that ")", which closes the link with no title."""
    m = link.RE_LINK.match(data, index)
    if m is not None and not m.group(1):
        end = _PLAIN_URL_END.match(data, m.end())
        if end is not None:
            return link.unescape(data[m.end() : end.end() - 1]).strip(), None, end.end(), True
    return stock(data, index)


# The inline pass overrides private methods of Python-Markdown's with copies of them as they
# are in these releases (older ones restart each pattern at 0 after a match, and a later one
# may change them in ways no name or regex shows): in any other, the stock pass runs.
_INLINE_RELEASES = ((3, 11, 0), (3, 12, 0))


def _written_for(releases: tuple[tuple[int, int, int], tuple[int, int, int]]) -> bool:
    """Whether the Python-Markdown in use is in [first, last) of `releases`."""
    version = getattr(markdown, "__version_info__", None)
    if not isinstance(version, tuple) or len(version) < 3:
        return False
    try:
        numbers = (int(version[0]), int(version[1]), int(version[2]))
    except (TypeError, ValueError):
        return False
    return releases[0] <= numbers < releases[1]


def inline_footing() -> bool:
    """Whether this Python-Markdown has every internal the inline pass stands on."""
    return (
        _written_for(_INLINE_RELEASES)
        and _InlineBase is not Treeprocessor
        and all(callable(getattr(_InlineBase, "_InlineProcessor__" + name, None))
                for name in ("applyPattern", "processElementText", "handleInline"))
        and isinstance(_PLACEHOLDER, str)
        and isinstance(_PLACEHOLDER_PREFIX, str)
    )
