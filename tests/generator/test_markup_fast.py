"""markup.py's speed-ups give Python-Markdown's own bytes: serializer, tree passes, corpus."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree as etree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown.serializers import to_html_string

from fedipress.generator import markup
from fedipress.generator.markup import _new_markdown, normalize_lists
from fedipress.generator.markup_speedups import skip_absent_syntax
from fedipress.generator.markup_writers import html_serializer

REPO = Path(__file__).resolve().parents[2]
SITE = "https://alice.example/"
PAGE = "https://alice.example/posts/tomatoes/"


def _fast_serializer():  # type: ignore[no-untyped-def]
    serializer = html_serializer()
    assert serializer is not None  # Python-Markdown's writer is the one it was written from
    return serializer


# --- the serializer ----------------------------------------------------------------------------


def _tree(build: str) -> etree.Element:
    """A tree from a few lines of Python, so each case reads as what it builds."""
    root = etree.Element("div")
    exec(build, {"etree": etree, "root": root})  # noqa: S102  (test data written here)
    return root


SERIALIZER_CASES = [
    "root.text = 'a & b &amp; &#38; &#x26; &nbsp; &bogus < > \" \\' \\n'",
    "p = etree.SubElement(root, 'p'); p.text = 'x'; p.tail = 'tail & <t>'",
    "a = etree.SubElement(root, 'a', {'title': 'q\"<&>&amp;\\n', 'href': '/x?a=1&b=2'})",
    "etree.SubElement(root, 'input', {'checked': 'checked', 'disabled': 'disabled', 'x': 'x'})",
    "etree.SubElement(root, 'input', {'download': 'download', 'Checked': 'Checked'})",
    "etree.SubElement(root, 'details', {'open': None, 'b': '', 'a': 'A'})",
    "br = etree.SubElement(root, 'br'); br.tail = 'after'",
    "hr = etree.SubElement(root, 'HR'); hr.text = 'odd'; etree.SubElement(hr, 'i').text = 'in'",
    "img = etree.SubElement(root, 'img', {'src': 'a.png', 'alt': 'A & B'}); img.text = 't'",
    "s = etree.SubElement(root, 'script'); s.text = 'if (a < b && c > d) {}'",
    "s = etree.SubElement(root, 'STYLE'); s.text = 'a > b { x: \"&\" }'; s.tail = '<'",
    "c = etree.Comment(' a & b < c '); root.append(c); c.tail = 'ct&'",
    "c = etree.Comment('x'); root.append(c); etree.SubElement(c, 'b').text = 'lost'",
    "pi = etree.ProcessingInstruction('php', 'echo 1 > 0'); root.append(pi); pi.tail = 'x'",
    "n = etree.Element(None); n.text = 't<'; n.tail = 'tail>'; root.append(n); "
    "etree.SubElement(n, 'b').text = 'in'",
    "root.tag = None; root.text = 'top'",
    "q = etree.SubElement(root, etree.QName('{urn:x}tag')); q.text = 'ns'",
    "etree.SubElement(root, 'a', {etree.QName('{urn:x}k'): 'v'})",
    "etree.SubElement(root, 'a', {'k': etree.QName('v')})",
    "etree.SubElement(root, 'pre').text = '  code <x> &amp; & \\n'",
    "d = root\nfor _ in range(3000):\n    d = etree.SubElement(d, 'div')\nd.text = 'deep'",
    "p = etree.SubElement(root, 'p'); p.text = ''; p.tail = ''",
    "c = etree.Comment(None); root.append(c)",
    "p = etree.SubElement(root, 'p'); p.set('n', 5)",
]


@pytest.mark.parametrize("build", SERIALIZER_CASES)
def test_serializer_writes_what_python_markdown_writes(build: str) -> None:
    fast = _fast_serializer()
    tree = _tree(build)
    try:
        expected = to_html_string(tree)
    except Exception as error:  # noqa: BLE001
        with pytest.raises(type(error)):
            fast(tree)
        return
    assert fast(tree) == expected


_TAGS = st.sampled_from(["p", "a", "em", "br", "img", "hr", "pre", "code", "script", "input",
                         "div", "span", "H2", "sup"])
_TEXT = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("ab &;#<>\"'\nx0")),
                                     max_size=12))
_ATTRS = st.dictionaries(
    st.sampled_from(["href", "checked", "open", "title", "id", "class", "hidden"]),
    st.one_of(st.none(), st.sampled_from(["checked", "open", "hidden", "", "a&b", "<\">",
                                          "&amp;", "x\ny"])),
    max_size=3,
)


@st.composite
def _elements(draw: st.DrawFn, depth: int = 0) -> etree.Element:
    kind = draw(st.sampled_from(["tag"] * 6 + ["comment", "pi", "none"]))
    if kind == "comment":
        el = etree.Comment(draw(st.text(alphabet="a<&>- ", max_size=6)))
    elif kind == "pi":
        el = etree.ProcessingInstruction("x", draw(st.text(alphabet="a<&>? ", max_size=6)))
    else:
        el = etree.Element(None if kind == "none" else draw(_TAGS), draw(_ATTRS))
        el.text = draw(_TEXT)
        if depth < 3:
            el.extend(draw(st.lists(_elements(depth + 1), max_size=3)))
    el.tail = draw(_TEXT)
    return el


@settings(max_examples=300, deadline=None)
@given(root=_elements())
def test_serializer_on_random_trees(root: etree.Element) -> None:
    assert _fast_serializer()(root) == to_html_string(root)


def test_parsers_use_it_and_stock_ones_do_not() -> None:
    fast, _ = _new_markdown()
    stock, _ = _new_markdown(stock=True)
    assert fast.serializer is not to_html_string
    assert stock.serializer is to_html_string


def test_without_the_stock_writer_it_copies_the_stock_one_is_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from markdown import serializers

    monkeypatch.delattr(serializers, "_serialize_html")
    assert html_serializer() is None
    assert _new_markdown()[0].serializer is to_html_string


# --- whole documents ---------------------------------------------------------------------------

FEATURES = """\
Title with [TOC] later
======================

[TOC]

Text with *em*, **strong**, `code <x> & y`, a [link](/a "T & <q>"), ![img](i.png "t"),
an entity &copy; &#169; &amp; & a bare ampersand, <b class="x">raw *inline*</b>,
escapes \\* \\_ \\[, a mention @bob@social.example and the HTML abbreviation. Line break{BR}
here. A footnote[^1] and another[^n].

## Second "heading" with `code` & <i>html</i> {: #custom .cls }

<!-- a comment & <b> -->

<div markdown="1">
Markdown *inside* HTML, with a [link](x.html).
</div>

<div class="raw">
  <p>raw block &amp; <script>if (a < b) {}</script></p>
</div>

<?php echo 1; ?>

| a | b & c |
|:--|------:|
| `1` | *2* |

Term
:   Definition with **bold**.

```python
def f(x):
    return x < 2 and "&"
```

    indented <code> & block

> quote with - list
> - item
>     - nested

1. one
2. two
    * three

<details open>
<summary>More</summary>
Hidden *text*.
</details>

### Third ### {#third}

#### Fourth \\#4 with &lt;entity&gt;

*[HTML]: Hyper Text Markup Language

[^1]: The note, with a [link](/n).
[^n]: Another, `code`.
""".replace("{BR}", "  ")


def _assert_same(text: str) -> None:
    fast, fast_mentions = _new_markdown()
    stock, stock_mentions = _new_markdown(stock=True)
    skip_absent_syntax(fast, text)
    assert fast.convert(text) == stock.convert(text)
    assert getattr(fast, "toc", None) == getattr(stock, "toc", None)
    assert getattr(fast, "toc_tokens", None) == getattr(stock, "toc_tokens", None)
    assert fast_mentions.found == stock_mentions.found


@pytest.mark.parametrize("variant", ["as is", "no backslashes", "no headings", "no code"])
def test_a_document_with_every_feature(variant: str) -> None:
    text = FEATURES
    if variant == "no backslashes":
        text = text.replace("\\", "")
    elif variant == "no headings":
        text = "\n".join(line for line in text.split("\n") if not line.startswith(("#", "==")))
    elif variant == "no code":
        text = text.replace("`", "")
    _assert_same(normalize_lists(text))


def _corpus_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_h31_corpus", REPO / "benchmarks/corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-free, but keep it importable while it runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus_bodies() -> Iterator[list[str]]:
    yield [post.body for post in _corpus_module().generate_posts(300)]


def _render_all(bodies: list[str]) -> list[markup.Rendered]:
    return [markup.render_markdown(body, page_url=PAGE, site_url=SITE) for body in bodies]


def test_300_corpus_posts_render_as_with_the_stock_parser(corpus_bodies: list[str]) -> None:
    fast = _render_all(corpus_bodies)
    box: list[list[markup.Rendered]] = []

    def stock_run() -> None:
        markup._local.md = _new_markdown(stock=True)  # this thread only
        box.append(_render_all(corpus_bodies))

    thread = threading.Thread(target=stock_run)
    thread.start()
    thread.join()
    assert len(fast) == len(box[0]) == 300
    for index, (mine, theirs) in enumerate(zip(fast, box[0], strict=True)):
        assert mine == theirs, index


# --- smaller passes ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(alphabet=st.sampled_from(list(" \t\r\nx\x02\x03")), max_size=8),
                      max_size=8))
def test_whitespace_preprocessor_as_python_markdown(lines: list[str]) -> None:
    from markdown.preprocessors import NormalizeWhitespace

    fast, _ = _new_markdown()
    stock, _ = _new_markdown(stock=True)
    assert type(stock.preprocessors["normalize_whitespace"]) is NormalizeWhitespace
    assert type(fast.preprocessors["normalize_whitespace"]) is not NormalizeWhitespace
    assert fast.preprocessors["normalize_whitespace"].run(list(lines)) == \
        stock.preprocessors["normalize_whitespace"].run(list(lines))


@pytest.mark.parametrize("text", ["a \\* b", "\\\\", "`\\``", "[a\\]](/b\\))", "no escapes",
                                  "x\x02" + "92\x03y", "<b title='\\*'>\\_</b>"])
def test_unescape_pass_runs_when_there_can_be_escapes(text: str) -> None:
    _assert_same(text)
    _assert_same(f"# {text}\n\n{text} {{: title='{text}' }}\n")


def test_block_level_answers_follow_changes_to_the_list() -> None:
    fast, _ = _new_markdown()
    stock, _ = _new_markdown(stock=True)
    text = "<custom>\n*x*\n</custom>\n\n<p>a</p>\n\npara <custom>y</custom>\n"
    for md in (fast, stock):
        md.convert(text)  # remembered answers for "custom" made
        md.block_level_elements.append("custom")
        md.reset()
    skip_absent_syntax(fast, text)
    assert fast.convert(text) == stock.convert(text)
    assert fast.is_block_level("custom") and fast.is_block_level("CUSTOM/")
    assert not fast.is_block_level(etree.Comment) and not fast.is_block_level("span")


def test_inline_trigger_search_covers_every_pattern_in_use() -> None:
    # None would mean a pattern with no known required text: correct, but every text node
    # then goes through the whole pattern loop again.
    fast, _ = _new_markdown()
    fast.convert("a *b* [c](/d)")
    triggers = fast.treeprocessors["inline"]._triggers  # type: ignore[attr-defined]
    assert triggers is not None
    assert triggers("plain words only") is None
    for text in ["*", "_", "`", "\\", "[", "![", "&;", "<>", "@", "a://b>", "  \n"]:
        assert triggers(text) is not None, text


_LINK_PIECES = ["[", "]", "(", ")", "![", '"', "'", "<", ">", " ", "a", "b c", "\\", "\n",
                "&amp;", "*", "`", "[a]", "(/u)", '(/u "t")', "(<u v>)", "]("]


_LINK_TEXT = st.lists(st.sampled_from(_LINK_PIECES), max_size=5).map("".join)
_LINKS = st.builds("{}[{}]({}){}".format, st.sampled_from(["", "!", "\\", "["]), _LINK_TEXT,
                   _LINK_TEXT, st.sampled_from(["", ")", "]", " x"]))


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(st.one_of(st.sampled_from(_LINK_PIECES), _LINKS), max_size=8))
def test_links_and_images_read_as_python_markdown_reads_them(pieces: list[str]) -> None:
    _assert_same("".join(pieces))


@pytest.mark.parametrize("text", [
    "~~~\ncode\n~~~\n", "```python\nx = 1\n```\n", "text ``` not a fence\n", "  ```\n  x\n  ```\n",
    "> ```\n> quoted\n> ```\n", "no fence at all\n", "~~ ~\nx\n~~~\n", "````\n```\n````\n",
])
def test_fenced_code_as_python_markdown_reads_it(text: str) -> None:
    _assert_same(text)
    _assert_same(normalize_lists(text))


_EMPHASIS_PIECES = ["*", "**", "***", "_", "__", "___", "a", "bc", " ", "\n", "\n\n", "`x`",
                    "[a](/b)", "\\*", "\\_", "<b>", "</b>", "x_y", "'", "(", ")", ".", "!",
                    "\u00e9", "1", "- ", "# ", "*a*", "**b**", "_c_", "__d__", "**e*", "*f**"]


@settings(max_examples=1000, deadline=None)
@given(pieces=st.lists(st.sampled_from(_EMPHASIS_PIECES), max_size=16))
def test_emphasis_as_python_markdown_pairs_it(pieces: list[str]) -> None:
    _assert_same("".join(pieces))


@pytest.mark.parametrize("text", [
    "`x`*_c_ _c_**e*",  # Markdown 3.11.4 keeps built elements for later matches: not at rest
    "*a**", "**a***b", "x*_c_*_d_*",
])
def test_emphasis_shortcut_only_when_python_markdown_keeps_nothing(text: str) -> None:
    _assert_same(text)


def test_emphasis_shortcut_is_used() -> None:
    from markdown.inlinepatterns import DelimiterProcessor

    fast, _ = _new_markdown()
    (emphasis,) = [p for p in fast.inlinePatterns if type(p) is DelimiterProcessor]
    assert "handleMatch" in vars(emphasis)  # the shortcut is installed on this instance
    assert fast.convert("a *b* __c__ d") == "<p>a <em>b</em> <strong>c</strong> d</p>"


# Nested inline nodes, tails and text with placeholders, string nodes (inline HTML, entities),
# atomic text (code, autolinks): the fast inline pass against the stock one.
_NESTED_PIECES = ["*", "**", "_", "[", "](/u)", "![", "`c`", "<b>", "</b>", "&amp;", "&copy;",
                  "<https://x.example/a>", "<m@x.example>", "@bob@social.example", "a", " b ",
                  "\\*", "  \n", "'", "--", "\n", "[^1]", "\n\n[^1]: note *x*\n",
                  "***a* _b_**", "**a *b* `c` d**", "__e _f_ [g](/h) i__"]


@settings(max_examples=600, deadline=None)
@given(pieces=st.lists(st.sampled_from(_NESTED_PIECES), max_size=14))
def test_nested_inline_nodes_as_python_markdown_builds_them(pieces: list[str]) -> None:
    _assert_same("".join(pieces))


def test_nested_inline_examples_as_python_markdown_builds_them() -> None:
    _assert_same("x *a [b `c` **d** <i>e</i>](/u \"t\") f* &amp; <https://x.example/> "
                 "@bob@social.example")
    _assert_same("**a *b* `c` d** and __e _f_ [g](/h) i__")  # a tail holding a placeholder


# --- when Python-Markdown is not the release the speed-ups were written for ---------------------
# A release may drop or rename an internal, change a regex, or change what a private method
# does. Each case is simulated on the Python-Markdown installed: the speed-ups concerned are
# left out and the HTML is still the stock parser's, with no exception.

_SAMPLES = [FEATURES, "a *b* __c__ _d_ ***e*** [f](/g) ![h](i.png) <https://j.example/k> \\*",
            "- a\n  - b\n\n> q *r*\n\n+[X]: ex\n\nX and <tel:+123> and <web+ap://x.example/y>"]


def _same_as_stock() -> None:
    for text in _SAMPLES:
        _assert_same(text)
        _assert_same(normalize_lists(text))


@pytest.mark.parametrize(("constant", "speed_up"), [
    ("_PLACEHOLDER", "inline"),
    ("_PLACEHOLDER_PREFIX", "inline"),
    ("_STX", "whitespace"),
    ("_ETX", "whitespace"),
])
def test_a_missing_constant_leaves_out_its_speed_up(monkeypatch: pytest.MonkeyPatch,
                                                     constant: str, speed_up: str) -> None:
    from fedipress.generator import markup_speedups_blocks, markup_speedups_inline

    owner = markup_speedups_inline if speed_up == "inline" else markup_speedups_blocks
    monkeypatch.setattr(owner, constant, None)
    md, _ = _new_markdown()
    if speed_up == "inline":
        assert not isinstance(md.treeprocessors["inline"], markup_speedups_inline._FastInline)
    else:
        assert not isinstance(md.preprocessors["normalize_whitespace"],
                              markup_speedups_blocks._Whitespace)
    _same_as_stock()


@pytest.mark.parametrize("name", [
    "DelimiterProcessor", "LinkInlineProcessor", "ImageInlineProcessor",
    "ReferenceInlineProcessor", "NormalizeWhitespace", "BlockParser", "INLINE_PLACEHOLDER",
])
def test_a_missing_internal_leaves_out_only_what_stands_on_it(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from fedipress.generator import (
        markup_internals,
        markup_speedups,
        markup_speedups_blocks,
        markup_speedups_inline,
    )

    real = markup_internals.internal
    for user in (markup_speedups, markup_speedups_blocks, markup_speedups_inline):
        monkeypatch.setattr(
            user, "_internal",
            lambda module, wanted: None if wanted == name else real(module, wanted))
    md, _ = _new_markdown()
    patched = [p for p in md.inlinePatterns if vars(p).keys() & {"handleMatch", "getLink"}]
    if name == "DelimiterProcessor":
        assert not any("handleMatch" in vars(p) for p in patched)
    if name in ("LinkInlineProcessor", "ImageInlineProcessor"):
        assert not any(type(p).__name__ == name for p in patched)
    if name == "BlockParser":
        assert "parseBlocks" not in vars(md.parser)
    if name == "NormalizeWhitespace":
        assert not isinstance(md.preprocessors["normalize_whitespace"],
                              markup_speedups_blocks._Whitespace)
    _same_as_stock()


_IMPORT_WITHOUT = """
import importlib, sys
missing = {missing!r}
saved = []
for module, name in missing:
    m = importlib.import_module(module)
    saved.append((m, name, getattr(m, name)))
    delattr(m, name)
import fedipress.generator.markup as markup  # must import without them
from fedipress.generator.markup_speedups import speedup_extensions
for m, name, value in saved:  # (Python-Markdown itself needs them back to run)
    setattr(m, name, value)
kinds = sorted(type(e).__name__ for e in speedup_extensions())
fast, _ = markup._new_markdown()
stock, _ = markup._new_markdown(stock=True)
text = sys.stdin.read()
assert fast.convert(text) == stock.convert(text)
print(" ".join(kinds))
"""


@pytest.mark.parametrize(("missing", "left"), [
    ([("markdown.inlinepatterns", "DelimiterProcessor")],  # as in Markdown 3.11
     "_FastBlocksExtension _FastInlineExtension _FastPassesExtension"),
    ([("markdown.treeprocessors", "InlineProcessor")],
     "_FastBlocksExtension _FastPassesExtension"),
    ([("markdown.treeprocessors", "InlineProcessor"), ("markdown.util", "STX"),
      ("markdown.treeprocessors", "UnescapeTreeprocessor"), ("markdown.util", "ETX"),
      ("markdown.util", "INLINE_PLACEHOLDER"), ("markdown.blockparser", "BlockParser"),
      ("markdown.inlinepatterns", "DelimiterProcessor"),
      ("markdown.inlinepatterns", "LinkInlineProcessor")],
     "_FastBlocksExtension _FastPassesExtension"),
], ids=["DelimiterProcessor", "InlineProcessor", "many"])
def test_fedipress_imports_without_the_internals(missing: list[tuple[str, str]],
                                                  left: str) -> None:
    # `import fedipress` once failed with "cannot import name 'DelimiterProcessor'" on a
    # Markdown release that `markdown>=3.6` allowed.
    import subprocess

    done = subprocess.run([sys.executable, "-c", _IMPORT_WITHOUT.format(missing=missing)],
                          input=FEATURES, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == left


def test_a_changed_block_regex_loses_only_its_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    # A release whose abbreviations may also start "+[": the shortcut that asks for "*[" in
    # the block must not pass over them (the 3.11.4 change to this regex was not in the table).
    import re

    from markdown.extensions.abbr import AbbrBlockprocessor

    from fedipress.generator.markup_speedups_blocks import _block_requirement

    regex = AbbrBlockprocessor.RE
    monkeypatch.setattr(AbbrBlockprocessor, "RE",
                        re.compile(regex.pattern.replace("^[*]", "^[*+]"), regex.flags))
    fast, _ = _new_markdown()
    (abbr,) = [p for p in fast.parser.blockprocessors if type(p) is AbbrBlockprocessor]
    assert _block_requirement(abbr) == ("", ())
    text = "+[HTML]: Hyper Text Markup Language\n\nSome HTML."
    assert "<abbr" in fast.convert(text)
    _same_as_stock()


def test_a_changed_inline_regex_loses_only_its_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autolinks for any scheme, "//" or not: the shortcut that asks for "://" must not apply.
    import markdown.inlinepatterns

    monkeypatch.setattr(markdown.inlinepatterns, "AUTOLINK_RE",
                        r"<([A-Za-z][A-Za-z0-9+.-]*:[^<>@ ]*)>")
    fast, _ = _new_markdown()
    assert '<a href="tel:+123">' in fast.convert("call <tel:+123>")
    _same_as_stock()


@pytest.mark.parametrize("version", [(3, 10, 3, "final", 0), (3, 12, 0, "final", 0),
                                     (4, 0, 0, "beta", 1), None])
def test_another_release_runs_the_stock_inline_pass(monkeypatch: pytest.MonkeyPatch,
                                                    version: object) -> None:
    # The inline pass copies private methods as the 3.11 releases have them (3.10 restarts
    # each pattern at 0 after a match): no name or regex would show such a change.
    import markdown

    from fedipress.generator.markup_speedups_inline import _FastInline

    monkeypatch.setattr(markdown, "__version_info__", version)
    md, _ = _new_markdown()
    assert not isinstance(md.treeprocessors["inline"], _FastInline)
    assert "parseBlocks" in vars(md.parser)
    _same_as_stock()


def _wrong_text(stock, data, index):  # type: ignore[no-untyped-def]
    return ("changed", *stock(data, index)[1:])


def _failing(*args: object) -> object:
    raise TypeError("a changed internal")


@pytest.mark.parametrize(("name", "replacement", "said"), [
    ("_get_text", _wrong_text, "do not give its own HTML"),
    ("_emphasis", _failing, "fail (TypeError: a changed internal)"),
])
def test_speed_ups_that_do_not_give_the_stock_html_are_left_out(
        monkeypatch: pytest.MonkeyPatch, name: str, replacement: object, said: str) -> None:
    # A release whose internals changed in a way no name, regex or version shows: a probe
    # document is rendered both ways, once per process, before the speed-ups are used.
    from markdown.treeprocessors import InlineProcessor

    from fedipress.generator import markup_speedups, markup_speedups_inline

    monkeypatch.setattr(markup_speedups, "_AGREED", [])  # a new process, as it were
    monkeypatch.setattr(markup_speedups, "_WHY_NOT", [])
    monkeypatch.setattr(markup._local, "md", None, raising=False)
    monkeypatch.setattr(markup_speedups_inline, name, replacement)
    rendered = markup.render_markdown("[a](/b) *c*", page_url=PAGE, site_url=SITE)
    assert rendered.html == '<p><a href="https://alice.example/b">a</a> <em>c</em></p>'
    why = markup_speedups.speedups_left_out()
    version = _markdown_version()
    assert why.startswith(f"Markdown speed-ups left out: with Python-Markdown {version} ")
    assert said in why
    assert type(markup._local.md[0].treeprocessors["inline"]) is InlineProcessor
    assert markup_speedups._AGREED == [False]


def _markdown_version() -> str:
    import markdown

    return str(markdown.__version__)


def test_speed_ups_that_give_the_stock_html_are_used() -> None:
    from fedipress.generator import markup_speedups, markup_speedups_inline

    markup.render_markdown("x", page_url=PAGE, site_url=SITE)
    assert markup_speedups._AGREED == [True]
    assert markup_speedups.speedups_left_out() == ""
    assert isinstance(markup._local.md[0].treeprocessors["inline"],
                      markup_speedups_inline._FastInline)


def test_a_build_says_when_it_renders_without_the_speed_ups(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Degrading to the stock parser is right, but never silent: `build` says why it is slower.
    from fedipress.cli import main
    from fedipress.generator import markup_speedups, markup_speedups_inline
    from fedipress.generator.scaffold import init_site

    init_site(tmp_path / "blog")
    monkeypatch.chdir(tmp_path / "blog")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(markup_speedups, "_AGREED", [])
    monkeypatch.setattr(markup_speedups, "_WHY_NOT", [])
    monkeypatch.setattr(markup._local, "md", None, raising=False)
    monkeypatch.setattr(markup_speedups_inline, "_emphasis", _failing)
    assert main(["build"]) == 0
    err = capsys.readouterr().err
    [note] = [line for line in err.splitlines() if line.startswith("note: Markdown speed-ups")]
    assert "fail (TypeError: a changed internal)" in note and "builds are slower" in note

    monkeypatch.setattr(markup_speedups, "_AGREED", [])  # a release the speed-ups fit
    monkeypatch.setattr(markup_speedups, "_WHY_NOT", [])
    monkeypatch.setattr(markup._local, "md", None)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path / "blog")
    monkeypatch.delenv("CI", raising=False)
    assert main(["build"]) == 0
    assert "speed-ups" not in capsys.readouterr().err
