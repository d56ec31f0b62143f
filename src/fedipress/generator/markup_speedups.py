"""Speed-ups of Python-Markdown for markup.py: the same HTML with less interpreter work.

A cold build renders thousands of posts, and Python-Markdown spends most of its time asking
patterns and processors that cannot apply. Each speed-up here passes over work whose result is
known (a regex that does not occur, a pass with nothing to do) or does the same work in fewer
steps, and hands everything else to Python-Markdown's own code. They stand on a few of its
internals, each looked up by name (`_internal`, never an import that could fail):
`speedup_extensions` leaves out a speed-up whose internals are missing, the inline pass (a
copy of private methods) runs only on the releases it copies, and every shortcut is keyed by
the exact regex or class it was checked against, so a release that changes one just loses
that shortcut. Output is byte for byte the stock parser's (tests/generator/test_markup.py and
tests/generator/test_markup_fast.py compare them, also with internals missing or changed). No check
stands on a speed-up: markup.py's nesting limit and the rest run either way.

This module is their face: the html serializer, the Pygments formatters, which speed-ups
this Python-Markdown has footing for, and the once-per-process check that they give its
own HTML. The passes themselves are in markup_speedups_inline.py (the inline pass) and
markup_speedups_blocks.py (the block pass and the smaller passes); markup_internals.py
looks up Python-Markdown's internals by name.

PURE, like markup.py: strings and element trees in and out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import markdown

# Python-Markdown's documented extension API: markup.py stands on it as well.
from markdown.extensions import Extension

from .markup_internals import internal as _internal
from .markup_speedups_blocks import (
    _AttrListGate,
    _FastBlocksExtension,
    _FastPassesExtension,
    _GatedUnescape,
)
from .markup_speedups_inline import _FastInlineExtension, inline_footing

__all__ = ["skip_absent_syntax", "speedup_extensions", "speedups_agree", "speedups_left_out"]


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


def speedup_extensions() -> list[Extension]:
    """The speed-ups whose footing this Python-Markdown has.

    Each stands on some internals: one that is missing leaves that speed-up out (its stock
    pass runs: same output, slower), never an error. Within each, every shortcut is keyed by
    the class and regex it was written for, so a changed one only loses its shortcut.
    """
    found: list[Extension] = []
    if inline_footing():
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
