"""markup.py: Markdown -> HTML, lists, links, mentions, summaries (pure, so all exact)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.generator.markup import (
    Rendered,
    absolute_url,
    highlight_css,
    media_type_of,
    normalize_lists,
    render_markdown,
)
from fedipress.model import Image

SITE = "https://alice.example/"
PAGE = "https://alice.example/posts/tomatoes/"


def render(text: str) -> Rendered:
    return render_markdown(text, page_url=PAGE, site_url=SITE)


def squash(html: str) -> str:
    return re.sub(r"\s+", "", html)


# --- lists -----------------------------------------------------------------------------------


def test_two_space_nested_bullets_nest() -> None:
    html = render("- a\n  - b\n    - c\n- d\n").html
    assert squash(html) == "<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li><li>d</li></ul>"


def test_two_space_nested_under_ordered_item_nests() -> None:
    # "1. " has its content at column 3; CommonMark nests at >= 3, Python-Markdown wants 4.
    html = render("1. one\n   - x\n2. two\n").html
    assert squash(html) == "<ol><li>one<ul><li>x</li></ul></li><li>two</li></ol>"


def test_four_space_nesting_still_works() -> None:
    html = render("*   a\n    *   b\n").html
    assert squash(html) == "<ul><li>a<ul><li>b</li></ul></li></ul>"


def test_list_directly_after_paragraph_is_a_list() -> None:
    html = render("Notes for spring:\n- sow early\n- water soil\n").html
    assert squash(html) == "<p>Notesforspring:</p><ul><li>sowearly</li><li>watersoil</li></ul>"


def test_ordered_list_after_paragraph_only_when_starting_at_one() -> None:
    assert "<ol>" in render("Steps:\n1. first\n2. second\n").html
    # "2024. was a year" continuing a paragraph is text, as in CommonMark.
    assert "<ol>" not in render("It all began in\n2024. What a year.\n").html


def test_hyphen_line_after_paragraph_is_a_setext_heading_not_a_list() -> None:
    html = render("Title\n---\n").html
    assert html.startswith("<h2")


def test_lists_inside_fenced_code_are_untouched() -> None:
    text = "```\n- a\n  - b\n```\n"
    assert normalize_lists(text) == text
    assert "- a\n  - b" in render(text).html


def test_indented_code_block_at_top_level_is_untouched() -> None:
    text = "Para.\n\n    - not a list\n      - at all\n"
    assert normalize_lists(text) == text
    assert "<ul>" not in render(text).html


def test_fenced_code_inside_list_item_is_highlighted_code() -> None:
    html = render("1. Run:\n\n   ```python\n   x = 1\n   ```\n2. Done\n").html
    assert '<div class="highlight">' in html
    assert '<span class="n">x</span>' in html
    assert "```" not in html
    assert squash(html).endswith("<li><p>Done</p></li></ol>")


def test_lists_in_block_quotes_nest_too() -> None:
    html = render("> Quoted:\n> - a\n>   - b\n>\n> end\n\nafter\n").html
    assert squash(html) == (
        "<blockquote><p>Quoted:</p><ul><li>a<ul><li>b</li></ul></li></ul><p>end</p></blockquote>"
        "<p>after</p>"
    )


def test_list_right_after_a_block_quote_is_outside_it() -> None:
    html = render("> quoted\n- a\n- b\n").html
    assert squash(html) == "<blockquote><p>quoted</p></blockquote><ul><li>a</li><li>b</li></ul>"


def test_block_quote_inside_list_item_stays_in_the_item() -> None:
    html = render("- item\n\n  > quoted\n- next\n").html
    assert squash(html) == (
        "<ul><li><p>item</p><blockquote><p>quoted</p></blockquote></li><li><p>next</p></li></ul>"
    )


def test_paragraph_continuation_then_nested_list() -> None:
    html = render("- item\n  more text\n  - nested\n").html
    assert squash(html) == "<ul><li>itemmoretext<ul><li>nested</li></ul></li></ul>"


_line = st.one_of(
    st.sampled_from(["", "text", "- item", "* item", "1. item", "```", "~~~", "# head", "> q"]),
    st.text(alphabet=" -*1.`abc\t", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    indents=st.lists(st.integers(min_value=0, max_value=9), max_size=20),
    lines=st.lists(_line, max_size=20),
)
def test_normalize_lists_keeps_text_and_never_fails(indents: list[int], lines: list[str]) -> None:
    text = "\n".join(" " * i + line for i, line in zip(indents, lines, strict=False))
    out = normalize_lists(text)
    # Only whitespace, blank lines and `:::lang` lines may change; words stay in order.

    def words(s: str) -> list[str]:
        return [w for w in s.split() if not w.startswith(":::") and set(w) != {"`"}]

    assert words(out) == words(text) or "```" in text or "~~~" in text
    assert normalize_lists(text) == out  # deterministic
    render(text)  # and Python-Markdown accepts the result


_Tree = list[tuple[str, "_Tree"]]


def _trees(depth: int) -> st.SearchStrategy[_Tree]:
    word = st.sampled_from(["alpha", "beta", "gamma", "delta"])
    child = _trees(depth - 1) if depth > 0 else st.just([])
    return st.lists(st.tuples(word, child), min_size=1, max_size=3)


def _markdown_of(tree: _Tree, indent: int, ordered: bool) -> list[str]:
    lines = []
    for number, (text, children) in enumerate(tree, start=1):
        marker = f"{number}." if ordered else "-"
        lines.append(" " * indent + f"{marker} {text}")
        lines.extend(_markdown_of(children, indent + len(marker) + 1, not ordered))
    return lines


def _html_of(tree: _Tree, ordered: bool) -> str:
    tag = "ol" if ordered else "ul"
    items = "".join(
        f"<li>{text}{_html_of(children, not ordered) if children else ''}</li>"
        for text, children in tree
    )
    return f"<{tag}>{items}</{tag}>"


@settings(max_examples=150, deadline=None)
@given(tree=_trees(3), ordered=st.booleans())
def test_commonmark_indented_lists_nest_like_the_tree(tree: _Tree, ordered: bool) -> None:
    # Each level indented to its parent's content column (2 for "-", 3 for "1."), as
    # GitHub and Hugo expect; the output must nest exactly like the tree.
    text = "Intro line:\n" + "\n".join(_markdown_of(tree, 0, ordered)) + "\n"
    assert squash(render(text).html) == "<p>Introline:</p>" + _html_of(tree, ordered)


# --- links and images ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "absolute"),
    [
        ("tomatoes.svg", "https://alice.example/posts/tomatoes/tomatoes.svg"),
        ("./img/a.png", "https://alice.example/posts/tomatoes/img/a.png"),
        ("../other/", "https://alice.example/posts/other/"),
        ("/about/", "https://alice.example/about/"),
        ("https://x.example/a", "https://x.example/a"),
        ("http://x.example/a", "http://x.example/a"),
        ("mailto:a@b.example", "mailto:a@b.example"),
        ("#notes", "#notes"),
        ("//cdn.example/x.js", "//cdn.example/x.js"),
        ("?page=2", "https://alice.example/posts/tomatoes/?page=2"),
    ],
)
def test_absolute_url(written: str, absolute: str) -> None:
    assert absolute_url(written, PAGE, SITE) == absolute


def test_root_relative_link_uses_site_url_with_a_path() -> None:
    assert absolute_url("/about/", "https://x.example/blog/p/", "https://x.example/blog/") == (
        "https://x.example/blog/about/"
    )


def test_links_and_images_in_body_become_absolute() -> None:
    r = render(
        "[about](/about/) [next](../next/) [out](https://o.example/) [top](#top)\n\n"
        '![Three "red" tomatoes](tomatoes.svg)\n'
    )
    assert '<a href="https://alice.example/about/">about</a>' in r.html
    assert '<a href="https://alice.example/posts/next/">next</a>' in r.html
    assert '<a href="https://o.example/">out</a>' in r.html
    assert '<a href="#top">top</a>' in r.html
    assert 'src="https://alice.example/posts/tomatoes/tomatoes.svg"' in r.html
    assert r.images == (
        Image(
            url="https://alice.example/posts/tomatoes/tomatoes.svg",
            alt='Three "red" tomatoes',
            media_type="image/svg+xml",
        ),
    )


def test_raw_html_urls_are_rewritten_too() -> None:
    r = render(
        "<figure><img src='a.jpg' alt='A'><video poster=\"p.png\"></video></figure>\n\n"
        '<a href="/tags/x/">x</a> <img srcset="s.png 1x, /l.png 2x" src="s.png">\n'
    )
    assert "src='https://alice.example/posts/tomatoes/a.jpg'" in r.html
    assert 'poster="https://alice.example/posts/tomatoes/p.png"' in r.html
    assert 'href="https://alice.example/tags/x/"' in r.html
    assert (
        'srcset="https://alice.example/posts/tomatoes/s.png 1x, https://alice.example/l.png 2x"'
        in r.html
    )
    assert [i.url for i in r.images] == [
        "https://alice.example/posts/tomatoes/a.jpg",
        "https://alice.example/posts/tomatoes/s.png",
    ]
    assert [i.alt for i in r.images] == ["A", ""]


def test_urls_in_code_are_not_rewritten() -> None:
    r = render('`<a href="x.html">` and\n\n```html\n<img src="y.png">\n```\n')
    assert "alice.example" not in r.html
    assert r.images == ()


def test_media_type_of() -> None:
    assert media_type_of("https://a.example/x.JPG?v=1") == "image/jpeg"
    assert media_type_of("https://a.example/x") is None


# --- mentions --------------------------------------------------------------------------------


def test_mention_becomes_link() -> None:
    r = render("Thanks @bob@social.example and @Carol_1@mastodon.example.org!\n")
    assert (
        '<span class="h-card"><a class="mention u-url" href="https://social.example/@bob">'
        "@bob@social.example</a></span>" in r.html
    )
    assert 'href="https://mastodon.example.org/@Carol_1"' in r.html
    assert r.mentions == ("bob@social.example", "Carol_1@mastodon.example.org")


def test_mention_at_end_of_sentence_excludes_the_dot() -> None:
    r = render("Ask @bob@social.example.\n")
    assert r.mentions == ("bob@social.example",)
    assert "</span>.</p>" in r.html


def test_mentions_are_deduplicated_in_order() -> None:
    r = render("@b@y.example @a@x.example @b@y.example\n")
    assert r.mentions == ("b@y.example", "a@x.example")


@pytest.mark.parametrize(
    "text",
    [
        "`@bob@social.example`\n",
        "```\n@bob@social.example\n```\n",
        "    @bob@social.example\n",
        "mail me at alice@example.com\n",
        "[@bob@social.example](https://elsewhere.example/)\n",
        "<https://social.example/@bob@social.example>\n",
    ],
)
def test_no_mention_in_code_links_or_emails(text: str) -> None:
    r = render(text)
    assert r.mentions == ()
    assert "mention" not in r.html


# --- summary, more, toc, counts ----------------------------------------------------------------


def test_more_marker_splits_summary() -> None:
    r = render("First para.\n\nSecond para.\n\n<!--more-->\n\nThird para.\n")
    assert r.has_more
    assert r.summary_html == "<p>First para.</p>\n<p>Second para.</p>"
    assert "<!--more-->" not in r.html
    assert squash(r.html) == "<p>Firstpara.</p><p>Secondpara.</p><p>Thirdpara.</p>"


def test_more_marker_inside_paragraph_closes_open_tags() -> None:
    r = render("Start *of <!--more--> it* all.\n")
    assert r.has_more
    assert r.summary_html == "<p>Start <em>of </em></p>"


def test_summary_defaults_to_first_paragraph() -> None:
    r = render("# Title\n\nFirst **para**.\n\nSecond.\n")
    assert not r.has_more
    assert r.summary_html == "<p>First <strong>para</strong>.</p>"


def test_summary_empty_when_there_is_no_paragraph() -> None:
    assert render("```\ncode\n```\n").summary_html == ""


def test_toc_and_heading_anchors() -> None:
    r = render("## Sowing seeds\n\ntext\n\n### In March\n")
    assert '<h2 id="sowing-seeds">' in r.html
    assert 'class="headerlink" href="#sowing-seeds"' in r.html
    assert '<a href="#sowing-seeds">Sowing seeds</a>' in r.toc_html
    assert '<a href="#in-march">In March</a>' in r.toc_html
    assert render("no headings\n").toc_html == ""


def test_word_count_and_reading_time() -> None:
    r = render("## Heading here\n\nDon't count `code` twice.\n\n```\nnot counted at all\n```\n")
    # Heading here / Don't / count / code / twice: the smart quote keeps don't one word.
    assert r.word_count == 6
    assert r.reading_minutes == 1
    long = render(" ".join(["word"] * 1100) + "\n")
    assert long.word_count == 1100
    assert long.reading_minutes == 5


# --- extensions --------------------------------------------------------------------------------


def test_fenced_code_uses_pygments_classes_not_inline_styles() -> None:
    html = render("```python\ndef f(): pass\n```\n").html
    assert '<div class="highlight">' in html
    assert '<span class="k">def</span>' in html
    assert "style=" not in html


def test_extensions_tables_footnotes_smarty_attr_deflist_abbr_md_in_html() -> None:
    text = (
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        'Said "hi" -- twice.[^n]\n{: .lead }\n\n'
        "Term\n:   Definition\n\n"
        "The HTML spec.\n\n*[HTML]: Hyper Text Markup Language\n\n"
        '<div markdown="1">**bold**</div>\n\n'
        "[^n]: A note.\n"
    )
    html = render(text).html
    assert "<table>" in html and "<td>1</td>" in html
    assert 'class="footnote"' in html and 'href="#fn:n"' in html
    assert "\u201chi\u201d \u2013 twice" in html
    assert '<p class="lead">' in html
    assert "<dt>Term</dt>" in html and "<dd>Definition</dd>" in html
    assert '<abbr title="Hyper Text Markup Language">HTML</abbr>' in html
    assert "<div>\n<p><strong>bold</strong></p>\n</div>" in html


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("Don't -- ever --- wait...", "<p>Don\u2019t \u2013 ever \u2014 wait\u2026</p>"),
        ("He said \"hi\" and 'bye'.", "<p>He said \u201chi\u201d and \u2018bye\u2019.</p>"),
        ("Back in the '90s.", "<p>Back in the \u201990s.</p>"),
        (
            '"**bold**" (*"em"*)',
            "<p>\u201c<strong>bold</strong>\u201d (<em>\u201cem\u201d</em>)</p>",
        ),
        ('"[link](/x/)"', '<p>\u201c<a href="https://alice.example/x/">link</a>\u201d</p>'),
        ('`it\'s -- "code"`', '<p><code>it\'s -- "code"</code></p>'),
        (
            "<https://a--b.example/>",
            '<p><a href="https://a--b.example/">https://a--b.example/</a></p>',
        ),
    ],
)
def test_smart_punctuation(text: str, html: str) -> None:
    assert render(text).html == html


def test_smart_punctuation_not_in_code_blocks() -> None:
    html = render('```\nprint("don\'t -- stop")\n```\n').html
    # Pygments escapes quotes in code or not, depending on its version: compare the text.
    text = unescape(re.sub(r"<[^>]+>", "", html))
    assert 'print("don\'t -- stop")' in text
    assert not set("\u2018\u2019\u201c\u201d\u2013\u2014") & set(text)


def test_heading_id_ignores_typographic_apostrophe() -> None:
    assert '<h2 id="whats-next">' in render("## What's next\n").html


def test_raw_html_is_kept() -> None:
    html = render('<aside class="note">Mine <b>own</b></aside>\n').html
    assert '<aside class="note">Mine <b>own</b></aside>' in html


def test_rendering_is_deterministic_and_state_free_between_calls() -> None:
    text = "# A\n\nHi @a@b.example[^1]\n\n[^1]: n\n"
    first = render(text)
    render("# Other\n\n@c@d.example\n\n*[X]: y\n")
    assert render(text) == first


def test_highlight_css_has_light_and_dark() -> None:
    css = highlight_css()
    assert ".highlight .k" in css
    assert "@media (prefers-color-scheme: dark)" in css
    light, dark = css.split("@media")
    assert ".highlight .k" in dark


# --- the faster inline pass gives Python-Markdown's own result ----------------------------------

_INLINE_PIECES = [
    "word",
    "two words",
    " ",
    "  \n",
    "\n",
    "\n\n",
    "*",
    "**",
    "_",
    "__",
    "`",
    "``",
    "\\",
    "\\*",
    "[",
    "]",
    "(",
    ")",
    "!",
    "![",
    "[^1]",
    "[^x]",
    "[a](/b)",
    "[a][r]",
    "[r]",
    "![i](p.png)",
    "![i][r]",
    "<",
    ">",
    "<b>",
    "</b>",
    "<!-- c -->",
    "<https://x.example/a>",
    "<me@x.example>",
    "https://x.example",
    "&",
    ";",
    "&amp;",
    "&#38;",
    "&nbsp;",
    "@bob@social.example",
    "@",
    '"',
    "'",
    "--",
    "...",
    "# ",
    "- ",
    "1. ",
    "> ",
    "    ",
    "|",
    "{: .c}",
    "*[HTML]: Hyper",
    "\n\n[r]: /ref\n\n",
    "\n\n[^1]: note\n\n",
    "\n\n```\ncode * _ [x]\n```\n\n",
    "[TOC]",
    "\n\n[TOC]\n\n",
    "[TO",
    "C]",
    "\x02",
    "\x03",
    "\\[TOC\\]",
    "&#91;TOC&#93;",
    "\n\n# Title\n\n",
    "\n\n## Part *two*\n\n",
    "\n===\n",
    "\n---\n",
    "\n***\n",
    "\n_ _ _\n",
    "\n: a definition\n",
    "\n\na | b\n--- | ---\n1 | 2\n\n",
    "\n\n| x |\n|---|\n| y |\n\n",
    "\n>> nested\n",
    "## closed ##",
    "\n\n*[ABBR]: An abbreviation\n\n",
    "{",
    "}",
    "{#id}",
    "\n{: #para }",
]


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(st.sampled_from(_INLINE_PIECES), max_size=40))
def test_fast_paths_match_python_markdown(pieces: list[str]) -> None:
    from fedipress.generator.markup import _new_markdown
    from fedipress.generator.markup_speedups import skip_absent_syntax

    text = "".join(pieces)
    fast, fast_mentions = _new_markdown()
    stock, stock_mentions = _new_markdown(stock=True)
    skip_absent_syntax(fast, text)
    assert fast.convert(text) == stock.convert(text)
    assert getattr(fast, "toc", None) == getattr(stock, "toc", None)
    assert fast_mentions.found == stock_mentions.found


def test_fast_inline_shortcuts_are_for_the_regexes_in_use() -> None:
    # A key that no longer matches a registered regex (a Python-Markdown upgrade changed it)
    # stays correct but loses its shortcut: this says so.
    from fedipress.generator.markup import _new_markdown
    from fedipress.generator.markup_speedups_inline import _REQUIRED

    md, _ = _new_markdown()
    in_use = {p.getCompiledRegExp().pattern for p in md.inlinePatterns}
    assert set(_REQUIRED) <= in_use


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(
            list("ab Z09_'\u2019.-,;!?\n\t\xa0\u2028\u3000\x1c\xb2\xbd\u0663\u00e9\u4e2d\u200b")
        )
    )
)
def test_word_count_shortcut_equals_the_regex(text: str) -> None:
    from fedipress.generator.markup import _WORD, _count_matches_of_word

    assert _count_matches_of_word(text) == len(_WORD.findall(text))


def test_reused_pygments_formatters_give_the_same_html() -> None:
    from fedipress.generator.markup import _new_markdown

    text = (
        "```python\ndef f(x):\n    return x * 2\n```\n\n"
        '```{.python hl_lines="2"}\ndef f(x):\n    return x * 2\n```\n\n'
        "```rust\nfn main() {}\n```\n\n"
        "```\nplain <text> & more\n```\n\n"
        "- item\n\n  ```js\n  let a = 1;\n  ```\n\n"
        '```{.python linenums="1"}\nimport os\nprint(os.sep)\n```\n'
    )
    fast, _ = _new_markdown()
    stock, _ = _new_markdown(stock=True)
    for _round in range(2):  # the second round reuses the formatters of the first
        fast.reset()
        stock.reset()
        fast_html = fast.convert(normalize_lists(text))
        assert fast_html == stock.convert(normalize_lists(text))
    assert 'class="hll"' in fast_html and "linenos" in fast_html


@pytest.mark.parametrize(
    "marker", ["[TOC]", "  [TOC] ", "[TO\x02C]", "[\x03TOC]", "\\[TOC\\]", "&#91;TOC&#93;", "[toc]"]
)
def test_toc_marker_as_python_markdown_finds_it(marker: str) -> None:
    from fedipress.generator.markup import _new_markdown
    from fedipress.generator.markup_speedups import skip_absent_syntax

    text = f"{marker}\n\n# One\n\n## Two\n\ntext {marker}\n"
    fast, _ = _new_markdown()
    stock, _ = _new_markdown(stock=True)
    skip_absent_syntax(fast, text)
    assert fast.convert(text) == stock.convert(text)


def test_block_shortcuts_are_for_the_processors_in_use() -> None:
    # Every processor the table knows by class is known by its regex too: a release that
    # changed one stays correct but loses its shortcut, and this says so. (The table holds
    # the regexes of several releases: one per class is in use.)
    from fedipress.generator.markup import _new_markdown
    from fedipress.generator.markup_speedups_blocks import _BLOCK_REQUIRED, _block_requirement

    md, _ = _new_markdown()
    known = [p for p in md.parser.blockprocessors if _block_requirement(p) != ("", ())]
    assert sorted(type(p).__name__ for p in known) == sorted({name for name, _ in _BLOCK_REQUIRED})


def test_without_the_internals_the_inline_speed_up_relies_on_its_stock_pass_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from markdown.treeprocessors import InlineProcessor

    from fedipress.generator.markup import _new_markdown
    from fedipress.generator.markup_speedups_inline import _FastInline

    assert isinstance(_new_markdown()[0].treeprocessors["inline"], _FastInline)
    monkeypatch.delattr(InlineProcessor, "_InlineProcessor__applyPattern")
    md, _ = _new_markdown()
    assert type(md.treeprocessors["inline"]) is InlineProcessor
    assert "parseBlocks" in vars(md.parser)  # only that speed-up is left out: not the others


def test_fast_paths_match_python_markdown_on_real_documents() -> None:
    # Real prose, tables, code and lists: this repository's own docs and example blog.
    from fedipress.generator.markup import _new_markdown
    from fedipress.generator.markup_speedups import skip_absent_syntax

    repo = Path(__file__).resolve().parents[2]
    documents = sorted([*repo.glob("docs/*.md"), repo / "README.md",
                        *(repo / "content").rglob("*.md")])
    assert len(documents) > 15
    for path in documents:
        text = path.read_text(encoding="utf-8")
        fast, fast_mentions = _new_markdown()
        stock, stock_mentions = _new_markdown(stock=True)
        skip_absent_syntax(fast, text)
        assert fast.convert(text) == stock.convert(text), path
        assert getattr(fast, "toc", None) == getattr(stock, "toc", None), path
        assert fast_mentions.found == stock_mentions.found, path


# --- nesting too deep to render ---------------------------------------------------------------
# fedipress's own check on the source, whatever Python-Markdown does near the stack limit
# (up to 3.11.3 it overflows, from 3.11.4 it stops nesting and keeps the markers as text: a
# silently different page) and whether or not the speed-ups of markup_speedups.py are in use.

_DEEP = {
    "lists": lambda n: "\n".join("  " * i + "- x" for i in range(n)),
    "ordered lists": lambda n: "\n".join("   " * i + "1. x" for i in range(n)),
    "quotes": lambda n: "> " * n + "x",
    "tight quotes": lambda n: ">" * n + "x",
    "quotes of lists": lambda n: "\n".join("> " * i + "- x" for i in range(n)),
    "lists of quotes": lambda n: "\n".join("  " * i + "- > x" for i in range(n)),
    "tabs": lambda n: "\n".join("\t" * i + "- x" for i in range(n)),
}


@pytest.fixture(params=["speed-ups", "stock"])
def parser_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """render_markdown with, or without, every speed-up of markup_speedups.py."""
    from fedipress.generator import markup

    monkeypatch.setattr(markup._local, "md", None, raising=False)  # a new parser, then back
    if request.param == "stock":
        monkeypatch.setattr(markup, "speedup_extensions", lambda: [])
        monkeypatch.setattr(markup, "html_serializer", lambda: None)
        md, _ = markup._markdown()
        assert not any(type(p).__module__.startswith("fedipress.generator.markup_speedups")
                       for p in [*md.treeprocessors, *md.preprocessors])
        assert "parseBlocks" not in vars(md.parser)
    return str(request.param)


@pytest.mark.parametrize("shape", sorted(_DEEP))
def test_nesting_deeper_than_the_limit_is_refused(parser_kind: str, shape: str) -> None:
    from fedipress.generator.markup import MAX_NESTING, TOO_DEEP

    for levels in (MAX_NESTING + 5, 500, 1000):
        assert render(_DEEP[shape](levels)).problem == TOO_DEEP, levels
    # Up to the limit, the page is all there: nothing flattened into text.
    fine = render(_DEEP[shape](MAX_NESTING - 5))
    assert fine.problem == ""
    assert "&gt;" not in fine.html and "- x" not in fine.html


def test_nesting_is_refused_when_python_markdown_would_stop_nesting(
        parser_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Python-Markdown that gives up nesting early (as 3.11.4 does near the stack limit):
    # a post 500 lists deep is still refused, not rendered with the deeper markers as text.
    import markdown.util

    from fedipress.generator.markup import TOO_DEEP

    monkeypatch.setattr(markdown.util, "nearing_recursion_limit", lambda: True, raising=False)
    assert render(_DEEP["lists"](500)).problem == TOO_DEEP
    assert render(_DEEP["quotes"](500)).problem == TOO_DEEP


@pytest.mark.parametrize("text", [
    "*" * 20000 + "x" + "*" * 20000,  # emphasis 10,000 deep: the stack overflows
    '<div markdown="1">\n\n' * 600 + "x\n\n" + "</div>\n\n" * 600,
])
def test_deeper_than_the_stack_is_refused(parser_kind: str, text: str) -> None:
    from fedipress.generator.markup import TOO_DEEP

    assert render(text).problem == TOO_DEEP
    assert render("*a*").html == "<p><em>a</em></p>"  # and the next post renders


def test_deep_indentation_inside_fenced_code_is_only_code(parser_kind: str) -> None:
    code = "\n".join(" " * (4 * i) + "{" for i in range(150))
    rendered = render(f"```\n{code}\n```\n\n~~~~\n{code}\n~~~~\n")
    assert rendered.problem == ""
    assert rendered.html.count("{") == 300


def test_deep_indentation_that_nests_nothing_is_not_refused(parser_kind: str) -> None:
    # A list item's continuation line, however far indented, is still that item's paragraph.
    rendered = render("- item\n" + " " * 500 + "continued\n\n" + "\t" * 120 + "code\n")
    assert rendered.problem == ""
    assert squash(rendered.html).startswith("<ul><li>itemcontinued<")
    assert "code\n</code></pre>" in rendered.html
