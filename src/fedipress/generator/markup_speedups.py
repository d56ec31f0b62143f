"""Speed-ups of Python-Markdown for markup.py: the same HTML with less interpreter work.

A cold build renders thousands of posts, and Python-Markdown spends most of its time asking
patterns and processors that cannot apply. Each speed-up here passes over work whose result is
known (a regex that does not occur, a pass with nothing to do) or does the same work in fewer
steps, and hands everything else to Python-Markdown's own code. They stand on a few of its
internals, each looked up by name (`_internal`, never an import that could fail):
`speedup_extensions` leaves out a speed-up whose internals are missing, the inline pass (a
copy of private methods) runs only on the releases it copies, and every shortcut is keyed by
the exact regex or class it was checked against, so a release that changes one just loses
that shortcut. Output is byte for byte the stock parser's (tests/test_markup.py and
tests/test_markup_fast.py compare them, also with internals missing or changed). No check
stands on a speed-up: markup.py's nesting limit and the rest run either way.

PURE, like markup.py: strings and element trees in and out.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING, Any, cast
from xml.etree import ElementTree as etree

import markdown

# Python-Markdown's documented extension API: markup.py stands on it as well.
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor, Pattern
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

if TYPE_CHECKING:
    from markdown.blockparser import BlockParser
    from markdown.blockprocessors import BlockProcessor
    from markdown.inlinepatterns import LinkInlineProcessor
    from markdown.treeprocessors import InlineProcessor as _InlineBase
    from markdown.treeprocessors import UnescapeTreeprocessor as _UnescapeBase

__all__ = ["skip_absent_syntax", "speedup_extensions", "speedups_agree", "speedups_left_out"]


def _internal(module: str, name: str) -> Any:
    """A name from Python-Markdown's internals, or None when this release has no such name.

    Every internal is looked up through here, never imported: a release that drops or moves
    one loses the speed-up that needs it, and fedipress still imports and renders the same
    HTML with the stock passes.
    """
    try:
        return getattr(import_module(module), name, None)
    except ImportError:
        return None


if not TYPE_CHECKING:
    # The classes subclassed below, or a stand-in when missing: `speedup_extensions` then
    # leaves out the speed-up built on it (the stand-in is never registered).
    _InlineBase = _internal("markdown.treeprocessors", "InlineProcessor") or Treeprocessor
    _UnescapeBase = _internal("markdown.treeprocessors", "UnescapeTreeprocessor") or Treeprocessor

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


# --------------------------------------------------------------------------------------------
# The block pass, same result with less work. For each block Python-Markdown asks every block
# processor in turn whether it applies; most answer with a regex search over the block (or pop
# it, search and put it back) and say no. A processor whose syntax needs a text the block does
# not contain is passed over: its test would have said no, or its run would have put the block
# back and returned False, with nothing else changed. Keyed by class and regex (as `_REQUIRED`):
# (texts all required, texts of which one is required).
_BLOCK_REQUIRED: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    (
        "HashHeaderProcessor",
        r"(?:^|\n)(?P<level>#{1,6})(?P<header>(?:\\.|[^\\#]|#+(?=[^#\n]))*?)#*(?:\n|$)",
    ): ("#", ()),
    ("DefListProcessor", r"(^|\n)[ ]{0,3}:[ ]{1,3}(.*?)(\n|$)"): (":", ()),
    ("BlockQuoteProcessor", r"(^|\n)[ ]{0,3}>[ ]?(.*)"): (">", ()),
    ("SetextHeaderProcessor", r"^.*?\n(?:=+|-+)[ ]*(\n|$)"): ("\n", ("=", "-")),
    (
        "HRProcessor",
        r"^[ ]{0,3}(?=(?P<atomicgroup>(-+[ ]{0,2}){3,}|(_+[ ]{0,2}){3,}|(\*+[ ]{0,2}){3,}))"
        r"(?P=atomicgroup)[ ]*$",
    ): ("", ("-", "_", "*")),
    ("FootnoteBlockProcessor", r"^[ ]{0,3}\[\^([^\]]*)\]:[ ]*(.*)$"): ("[^", ()),
    ("AbbrBlockprocessor", r"^[*]\[(?P<abbr>[^\\]*?)\][ ]?:[ ]*\n?[ ]*(?P<title>.*)$"): ("*[", ()),
    # (From Markdown 3.11.4: the abbreviation stays on one line.)
    ("AbbrBlockprocessor", r"^[*]\[(?P<abbr>[^\\\n]*?)\][ ]?:[ ]*\n?[ ]*(?P<title>.*)$"): (
        "*[", ()),
    (
        "ReferenceProcessor",
        r"^[ ]{0,3}\[([^\[\]]*)\]:[ ]*(?:\n[ ]*)?([^\s]+)[ ]*(?:\n[ ]*)?"
        r"""((["\'])(.*)\4[ ]*|\((.*)\)[ ]*)?$""",
    ): ("]:", ()),
    # A table's header row is split on "|": without one it is a single cell and no table.
    ("TableProcessor", ""): ("|", ()),
}
_BLOCK_MODULES = frozenset(
    {
        "markdown.blockprocessors",
        "markdown.extensions.def_list",
        "markdown.extensions.footnotes",
        "markdown.extensions.abbr",
        "markdown.extensions.tables",
    }
)


def _block_requirement(processor: object) -> tuple[str, tuple[str, ...]]:
    cls = type(processor)
    if cls.__module__ not in _BLOCK_MODULES:
        return "", ()  # not one of Python-Markdown's own: always asked
    regex = getattr(processor, "SEARCH_RE", None) or getattr(processor, "RE", None)
    key = (cls.__name__, getattr(regex, "pattern", ""))
    return _BLOCK_REQUIRED.get(key, ("", ()))


_BlockTable = list[tuple["BlockProcessor", str, tuple[str, ...]]]


def _parse_blocks(parser: BlockParser, table: _BlockTable, parent: etree.Element,
                  blocks: list[str]) -> None:
    """BlockParser.parseBlocks, passing over processors that cannot apply to the block.

    `table` is each processor with what its syntax needs, filled on the first call (the
    registry is complete once every extension is loaded) and kept: parseBlocks also runs
    for every nested list item and quote."""
    if not table:
        table += [(p, *_block_requirement(p)) for p in parser.blockprocessors]
    while blocks:
        for processor, need, one_of in table:
            block = blocks[0]  # re-read like Python-Markdown, should a run change it and say no
            if need not in block or (one_of and not any(text in block for text in one_of)):
                continue
            if processor.test(parent, block) and processor.run(parent, blocks) is not False:
                break  # run returns True or None when it took the block


class _FastBlocksExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802
        # Block processors call parser.parseBlocks for nested content: the instance attribute
        # serves those calls too.
        setattr(md.parser, "parseBlocks", partial(_parse_blocks, md.parser, []))  # noqa: B010  (mypy: no assigning to a method)
        # attr_list's tree pass behind a gate, if its regexes are the ones that need a "{".
        if "attr_list" not in md.treeprocessors:
            return
        inner = md.treeprocessors["attr_list"]
        regexes = [getattr(inner, name, None) for name in ("BLOCK_RE", "HEADER_RE", "INLINE_RE")]
        if all(r"\{" in getattr(regex, "pattern", "") for regex in regexes):
            md.treeprocessors.register(_AttrListGate(md, inner), "attr_list", 8)


class _AttrListGate(Treeprocessor):
    """attr_list's tree pass, run only when the source has a "{" (`_skip_absent_syntax`).

    Every change it makes follows a match of one of its regexes, each of which needs a "{";
    no text in the tree has one that the source did not (code, HTML and entities are stashed).
    """

    def __init__(self, md: markdown.Markdown, inner: Treeprocessor) -> None:
        super().__init__(md)
        self.inner = inner
        self.active = True

    def run(self, root: etree.Element) -> None:
        if self.active:
            self.inner.run(root)


# --------------------------------------------------------------------------------------------
# Smaller passes, same result.


class _Whitespace(Preprocessor):
    """NormalizeWhitespace with its blank-line regex turned round.

    `(?<=\n) +\n` is tried at every position of the source (the look-behind gives the regex
    engine no character to skip to); `\n +(?=\n)` starts with one, and removes the same spaces:
    a run of spaces between two newlines, the newlines kept.
    """

    def run(self, lines: list[str]) -> list[str]:
        source = "\n".join(lines)
        source = source.replace(_STX, "").replace(_ETX, "")
        source = source.replace("\r\n", "\n").replace("\r", "\n") + "\n\n"
        source = source.expandtabs(self.md.tab_length)
        if "\n " in source:
            source = _BLANK_WITH_SPACES.sub("\n", source)
        return source.split("\n")


_BLANK_WITH_SPACES = re.compile(r"\n +(?=\n)")
_STX: str = _internal("markdown.util", "STX")
_ETX: str = _internal("markdown.util", "ETX")


class _GatedUnescape(_UnescapeBase):
    """The unescape pass, run only when the source has a backslash (`_skip_absent_syntax`).

    (A subclass, not a wrapper: inline patterns read this processor's `RE`.)"""

    active = True

    def run(self, root: etree.Element) -> None:
        if self.active:
            super().run(root)


def _remembering_is_block_level(md: markdown.Markdown) -> Callable[[object], bool]:
    """md.is_block_level with its answer kept per tag name.

    The stock method lowercases the tag and scans the list `md.block_level_elements` on each of
    ~130 calls a post. The answers are forgotten whenever that list differs from the copy they
    were made with (checked per render, in `_skip_absent_syntax`).
    """
    known: dict[str, bool] = {}
    stock = markdown.Markdown.is_block_level

    def is_block_level(tag: object) -> bool:
        if type(tag) is not str:
            return stock(md, tag)
        answer = known.get(tag)
        if answer is None:
            answer = known[tag] = stock(md, tag)
        return answer

    is_block_level.known = known  # type: ignore[attr-defined]
    is_block_level.names = list(md.block_level_elements)  # type: ignore[attr-defined]
    return is_block_level


def _fenced_if_any(stock: Callable[[list[str]], list[str]], lines: list[str]) -> list[str]:
    """The fenced code preprocessor, asked only when a fence can be there: its regex needs
    "```" or "~~~", and a search for it over a document without one costs ~25 us."""
    text = "\n".join(lines)
    if "```" not in text and "~~~" not in text:
        return lines
    return stock(lines)


_FENCE_START = "(?P<fence>^(?:~{3,}|`{3,}))"


class _FastPassesExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802
        # Each pass is replaced only if it is the very class, and regex, this was written for.
        if "fenced_code_block" in md.preprocessors:
            fenced = md.preprocessors["fenced_code_block"]
            regex = getattr(fenced, "FENCED_BLOCK_RE", None)
            if type(fenced).__name__ == "FencedBlockPreprocessor" and _FENCE_START in getattr(
                regex, "pattern", ""
            ):
                setattr(fenced, "run", partial(_fenced_if_any, fenced.run))  # noqa: B010
        normalize = _internal("markdown.preprocessors", "NormalizeWhitespace")
        if (
            normalize is not None
            and isinstance(_STX, str) and isinstance(_ETX, str)
            and "normalize_whitespace" in md.preprocessors
            and type(md.preprocessors["normalize_whitespace"]) is normalize
        ):
            md.preprocessors.register(_Whitespace(md), "normalize_whitespace", 30)
        # The unescape pass behind a gate (`_skip_absent_syntax`), if its regex is the one for
        # the placeholders of backslash escapes.
        unescape = md.treeprocessors["unescape"] if "unescape" in md.treeprocessors else None
        if (
            _UnescapeBase is not Treeprocessor
            and type(unescape) is _UnescapeBase
            and getattr(getattr(unescape, "RE", None), "pattern", "") == "\x02(\\d+)\x03"
        ):
            md.treeprocessors.register(_GatedUnescape(md), "unescape", 0)
        if (
            type(md).is_block_level is markdown.Markdown.is_block_level
            and isinstance(getattr(md, "block_level_elements", None), list)
        ):
            setattr(md, "is_block_level", _remembering_is_block_level(md))  # noqa: B010  (mypy: no assigning to a method)


# --------------------------------------------------------------------------------------------
# Passes left out for syntax a document does not use, and which speed-ups this release gets.


_TOC_MARKER = "[TOC]"


def skip_absent_syntax(md: markdown.Markdown, source: str) -> None:
    """Tree passes that can find nothing in this source are told not to look.

    The toc extension looks for its "[TOC]" marker with a walk of the whole tree joining every
    element's text (~3% of a render); a paragraph reading "[TOC]" can only come from those
    characters in the source (escapes and entities are still placeholders when the toc runs),
    but Python-Markdown deletes STX/ETX from the source first, so with either of those present
    the marker is looked for as before. Attribute lists ("{: .class}") need a "{".
    """
    written = _TOC_MARKER in source or "\x02" in source or "\x03" in source
    if "toc" in md.treeprocessors:
        # (An empty marker is the toc extension's documented "no marker".)
        toc: Any = md.treeprocessors["toc"]
        if getattr(toc, "marker", None) in (_TOC_MARKER, ""):
            toc.marker = _TOC_MARKER if written else ""
    attr_list = md.treeprocessors["attr_list"] if "attr_list" in md.treeprocessors else None
    if isinstance(attr_list, _AttrListGate):
        attr_list.active = "{" in source
    # Escape placeholders ("\x02" digits "\x03") come only from backslash escapes.
    unescape = md.treeprocessors["unescape"] if "unescape" in md.treeprocessors else None
    if isinstance(unescape, _GatedUnescape):
        unescape.active = "\\" in source or written
    is_block_level = md.is_block_level
    names = getattr(is_block_level, "names", None)
    if names is not None and names != md.block_level_elements:
        is_block_level.known.clear()  # type: ignore[attr-defined]
        names[:] = md.block_level_elements


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


def speedup_extensions() -> list[Extension]:
    """The speed-ups whose footing this Python-Markdown has.

    Each stands on some internals: one that is missing leaves that speed-up out (its stock
    pass runs: same output, slower), never an error. Within each, every shortcut is keyed by
    the class and regex it was written for, so a changed one only loses its shortcut.
    """
    found: list[Extension] = []
    inline_internals = (
        _written_for(_INLINE_RELEASES)
        and _InlineBase is not Treeprocessor
        and all(callable(getattr(_InlineBase, "_InlineProcessor__" + name, None))
                for name in ("applyPattern", "processElementText", "handleInline"))
        and isinstance(_PLACEHOLDER, str)
        and isinstance(_PLACEHOLDER_PREFIX, str)
    )
    if inline_internals:
        found.append(_FastInlineExtension())
    parser = _internal("markdown.blockparser", "BlockParser")
    if callable(getattr(parser, "parseBlocks", None)):
        found.append(_FastBlocksExtension())
    found.append(_FastPassesExtension())  # (each of its passes checks its own footing)
    return found


# --------------------------------------------------------------------------------------------
# The last guard: what no name, regex or release number shows (a private method that now does
# something else) shows in the HTML. Once per process, a document using every syntax a
# speed-up touches is rendered with and without them; if the two differ, markup.py uses the
# stock parser for good, and `speedups_left_out` says why (for the edges to log: this module
# is pure).

_PROBE = """[TOC]

# Title *em* **strong** `code` & <i>html</i> {: #t .c }

Text *a* _b_ ***c*** __d__ **e *f* g** [link](/a "T & <q>") [ref][r] [missing][x]
![img](i.png "t") ![ref][r] <https://x.example/y> <m@x.example> @bob@social.example
\\* \\[ &copy; &#169; & a < b, line break{BR}
here, HTML and a note[^1]. <b class="x">raw *inline*</b> -- "quoted"...

[r]: /ref "Ref"

<div markdown="1">
*inside* [x](x.html)
</div>

| a | b |
|:--|--:|
| `1` | *2* |

Term
:   Definition.

```python
def f(x):
    return x < 2
```

    indented & code

> quote
> - item
>     - nested

1. one
2. two
    * three

*[HTML]: Hyper Text Markup Language
[^1]: The note.
""".replace("{BR}", "  ")

_AGREED: list[bool] = []  # the verdict, once made
_WHY_NOT: list[str] = []  # and why the speed-ups are left out, if they are
_AGREED_LOCK = threading.Lock()


def speedups_left_out() -> str:
    """Why markup.py renders without the speed-ups ("" when it uses them, or has not yet
    rendered): output is the same either way, only slower."""
    return _WHY_NOT[0] if _WHY_NOT else ""


def speedups_agree(make: Callable[..., tuple[markdown.Markdown, object]],
                   normalize: Callable[[str], str]) -> bool:
    """Whether parsers made by `make()` (with the speed-ups) and `make(stock=True)` give the
    same HTML for a probe document, after `normalize` (markup.py's list rewriting). Checked
    once per process; a difference or an error means no speed-ups (`speedups_left_out`)."""
    with _AGREED_LOCK:
        if not _AGREED:
            why = _probe(make, normalize(_PROBE))
            _AGREED.append(not why)
            _WHY_NOT[:] = [why] if why else []
        return _AGREED[0]


def _probe(make: Callable[..., tuple[markdown.Markdown, object]], text: str) -> str:
    """"" when the speed-ups give the stock HTML for `text`, else why not."""
    version = getattr(markdown, "__version__", "?")
    try:
        fast, _ = make()
        stock, _ = make(stock=True)
        skip_absent_syntax(fast, text)
        same = (fast.convert(text) == stock.convert(text)
                and getattr(fast, "toc", None) == getattr(stock, "toc", None))
    except Exception as exc:  # noqa: BLE001  (whatever it is, the stock parser is the answer)
        return (f"Markdown speed-ups left out: with Python-Markdown {version} they fail"
                f" ({type(exc).__name__}: {exc}); the stock parser gives the same pages, slower")
    if not same:
        return (f"Markdown speed-ups left out: with Python-Markdown {version} they do not give"
                " its own HTML; the stock parser gives the pages, slower")
    return ""
