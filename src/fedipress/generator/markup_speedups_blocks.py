"""The block pass and the smaller passes of Python-Markdown, the same HTML with less work.

Speed-ups of markup_speedups.py (which says how they stand on Python-Markdown's internals
and are checked against its own output): block processors passed over when the block lacks
the text their syntax needs, the whitespace, fenced-code and unescape passes asked only when
they can find something, attribute lists behind a gate, and block-level tags remembered.

PURE, like markup.py: strings and element trees in and out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from xml.etree import ElementTree as etree

import markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from .markup_internals import internal as _internal

if TYPE_CHECKING:
    from markdown.blockparser import BlockParser
    from markdown.blockprocessors import BlockProcessor
    from markdown.treeprocessors import UnescapeTreeprocessor as _UnescapeBase

__all__: list[str] = []

if not TYPE_CHECKING:
    # The class subclassed below, or a stand-in when missing: `_FastPassesExtension` then
    # leaves that pass as it is (the stand-in is never registered).
    _UnescapeBase = _internal("markdown.treeprocessors", "UnescapeTreeprocessor") or Treeprocessor

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
