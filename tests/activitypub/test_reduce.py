"""HTML reduction to what Mastodon keeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fedipress.activitypub.reduce import ALLOWED_TAGS, FoundImage, reduce_html

BASE = "https://blog.example/posts/hello/"


def reduce(source: str) -> str:
    return reduce_html(source, base_url=BASE).html


def test_headings_become_strong_paragraphs() -> None:
    assert reduce("<h1>Title</h1><h3 id='x'>Sub <em>part</em></h3>") == (
        "<p><strong>Title</strong></p><p><strong>Sub <em>part</em></strong></p>"
    )


def test_images_are_removed_and_returned() -> None:
    result = reduce_html(
        '<p>Look <img src="cat.png" alt="A cat" width="640" height="480px"></p>'
        '<p><img src="/abs/dog.webp"><img src="data:image/png;base64,AAAA"></p>',
        base_url=BASE,
    )
    assert result.html == "<p>Look </p>"
    assert result.images == (
        FoundImage(BASE + "cat.png", "A cat", 640, 480),
        FoundImage("https://blog.example/abs/dog.webp", "", None, None),
    )


def test_tables_flatten_to_paragraphs() -> None:
    html = (
        "<table><thead><tr><th>Name</th><th>Age</th></tr></thead>\n"
        "<tbody><tr><td>Ann</td><td>3</td></tr>\n<tr><td>Bo</td><td>4</td></tr></tbody></table>"
    )
    assert reduce(html) == "<p>Name | Age</p><p>Ann | 3</p><p>Bo | 4</p>"


def test_scripts_styles_iframes_and_forms_vanish_with_content() -> None:
    out = reduce(
        "<p>a</p><script>alert(1)</script><style>p{color:red}</style>"
        "<iframe src='https://x.example'>frame</iframe><form><input value=v>"
        "<button>Go</button></form><video><source src=v.mp4>no video</video><p>b</p>"
    )
    assert out == "<p>a</p><p>b</p>"


def test_links_absolute_and_attributes_reduced() -> None:
    out = reduce(
        '<p><a href="../other/#top" onclick="x()" class="btn u-url mention" '
        'rel="nofollow" style="color:red" title="t">x</a> '
        '<a href="#sec">y</a> <a href="javascript:alert(1)">z</a> '
        '<a href="mailto:a@b.example">m</a></p>'
    )
    assert out == (
        '<p><a href="https://blog.example/posts/other/#top" rel="nofollow" '
        'class="u-url mention">x</a> <a href="https://blog.example/posts/hello/#sec">y</a> '
        '<a>z</a> <a href="mailto:a@b.example">m</a></p>'
    )


def test_kept_structure() -> None:
    html = (
        "<blockquote><p><del>old</del> <strong>b</strong> <b>b</b> <i>i</i> <u>u</u></p>"
        '</blockquote><ol start="3" reversed><li value="5">x</li></ol><ul><li>y</li></ul>'
        '<pre><code class="language-py">x = 1\n</code></pre><p>a<br>b</p>'
    )
    out = reduce(html)
    assert out == (
        "<blockquote><p><del>old</del> <strong>b</strong> <b>b</b> <i>i</i> <u>u</u></p>"
        '</blockquote><ol start="3" reversed=""><li value="5">x</li></ol><ul><li>y</li></ul>'
        "<pre><code>x = 1\n</code></pre><p>a<br>b</p>"
    )


def test_code_highlighting_spans_lose_their_classes() -> None:
    out = reduce('<div class="codehilite"><pre><span class="k">def</span> f</pre></div>')
    assert out == "<pre><span>def</span> f</pre>"


def test_text_is_escaped() -> None:
    assert reduce("<p>1 &lt; 2 &amp; &lt;script&gt;</p>") == "<p>1 &lt; 2 &amp; &lt;script&gt;</p>"


_tags = st.sampled_from(
    [
        "p",
        "div",
        "h2",
        "script",
        "table",
        "tr",
        "td",
        "img",
        "a",
        "span",
        "iframe",
        "em",
        "svg",
        "style",
        "li",
        "figure",
        "figcaption",
    ]
)
_fragment = st.lists(
    st.one_of(
        st.builds(lambda t: f"<{t} src='x.png' href='/y' class='c h-x' onclick='z'>", _tags),
        st.builds(lambda t: f"</{t}>", _tags),
        st.text(alphabet="ab <>&\"'", max_size=8),
    ),
    max_size=30,
).map("".join)


@given(_fragment)
def test_output_only_uses_allowed_tags(source: str) -> None:
    import re

    out = reduce(source)
    for tag in re.findall(r"</?([a-zA-Z0-9]+)", out):
        assert tag in ALLOWED_TAGS
    assert "onclick" not in out and "<script" not in out


# --- the fast paths against the html.parser reference --------------------------------------------
# reduce_html reads most posts in one pass with cached tag outputs and skips nh3 when it can
# show nh3 would change nothing (see reduce.py). The reference below is the slow, plain path:
# html.parser drives _Reducer, nh3 always runs. Both must agree on every input.

import importlib.util  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urljoin  # noqa: E402

from hypothesis import settings  # noqa: E402

from fedipress.activitypub import reduce as _r  # noqa: E402
from fedipress.activitypub.reduce import Reduced  # noqa: E402


def reference(source: str, base_url: str = BASE) -> Reduced:
    parser = _r._Reducer(base_url)
    parser.feed(source)
    parser.close()
    cleaned = _r._clean("".join(parser.out)).replace("<p></p>", "").strip()
    return Reduced(html=cleaned, images=tuple(parser.images))


def same_as_reference(source: str, base_url: str = BASE) -> None:
    try:
        expected: object = reference(source, base_url)
    except UnicodeEncodeError:  # a lone surrogate: nh3 refuses it, so must reduce_html
        expected = UnicodeEncodeError
    try:
        got: object = reduce_html(source, base_url=base_url)
    except UnicodeEncodeError:
        got = UnicodeEncodeError
    assert got == expected, source


_ALLOWED_AND_NOT = sorted(ALLOWED_TAGS) + [
    "h1", "h2", "h6", "div", "sup", "figure", "figcaption", "table", "thead", "tr", "td", "th",
    "img", "script", "style", "svg", "iframe", "textarea", "title", "hr", "section", "video",
]
_URLS = [
    "https://x.example/a", "http://x.example/a;b?c#d", "https://x.example", "https://x.example?",
    "#frag", "#", "#a#b", "../up/", "/root", "?q", "mailto:a@b.example", "javascript:alert(1)",
    "https://xn--bad.example/", "https://a.1/", "https://a.b:99999/", "https://h/it's",
    " https://x.example/t ", "data:image/png;base64,AA", "https://[::1]/", "https://h/\xa0",
]
_attr_value = st.one_of(
    st.sampled_from(_URLS),
    st.text(alphabet="ab &;#x27<>\"'=/\n\xa0\r", max_size=8),
    st.sampled_from(["c h-x mention", "u-url", "3", "10px", "0", "&amp;&quot;", "&#39;"]),
)
_attr_name = st.sampled_from(["href", "src", "class", "rel", "alt", "width", "height", "start",
                              "reversed", "value", "onclick", "HREF", "id"])


@st.composite
def _tag(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_ALLOWED_AND_NOT))
    if draw(st.integers(0, 3)) == 0:
        space = draw(st.sampled_from(["", " "]))
        return f"</{name.upper() if draw(st.booleans()) else name}{space}>"
    attrs = []
    for _ in range(draw(st.integers(0, 3))):
        quote = draw(st.sampled_from(['"', "'", ""]))
        value = draw(_attr_value)
        if quote == "":
            value = "".join(c for c in value if c not in " \"'=<>`\n\r") or "v"
        else:
            value = value.replace(quote, "")
        space = draw(st.sampled_from([" ", "  ", "\n", " \t"]))
        if draw(st.integers(0, 5)) == 0:
            attrs.append(f"{space}{draw(_attr_name)}")
        else:
            attrs.append(f"{space}{draw(_attr_name)}={quote}{value}{quote}")
    close = draw(st.sampled_from(["", "", "", "/", " /"]))
    return f"<{name}{''.join(attrs)}{close}>"


_text = st.text(alphabet="ab \n<>&;#'\"\xa0\r\x00¶", max_size=10) | st.sampled_from(
    ["&amp;", "&lt;", "&gt;", "&para;", "&quot;", "&#39;", "&nbsp;", "&#13;", "&#0;", "&#10;",
     "&#xd800;", "&bogus;", "\n", "<!-- c -->", "<!---->", "<!-- a -- b -->", "<![CDATA[x]]>",
     "<!DOCTYPE html>", "< p>", "a < b", "\ud800"]
)
_html = st.lists(st.one_of(_tag(), _text), max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(_html)
def test_reduce_html_equals_the_html_parser_reference(source: str) -> None:
    same_as_reference(source)


# Well-formed-looking markup built from allowed tags only: the one pass takes it and the nh3
# shortcut is tried, so nesting mistakes, blocks in paragraphs, nested links, stray list items
# and a newline after <pre> must all be caught by it.
_STRUCTURE = ["p", "ul", "ol", "li", "blockquote", "pre", "a", "span", "em", "strong", "b", "i",
              "u", "del", "code", "br", "h2"]


@st.composite
def _nested(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 9))
        if kind < 4 or depth > 4:
            parts.append(draw(st.sampled_from(["x", " ", "\n", "\nx", "a&amp;b", "&para;", "1 > 0",
                                               "\xa0", "\r", "it's"])))
        elif kind == 4:  # an unmatched or misplaced tag
            parts.append(draw(st.sampled_from([f"<{t}>" for t in _STRUCTURE]
                                              + [f"</{t}>" for t in _STRUCTURE])))
        else:
            name = draw(st.sampled_from(_STRUCTURE))
            attr = ""
            if name == "a" and draw(st.booleans()):
                attr = f' href="{draw(st.sampled_from(_URLS))}"'
            elif name == "span" and draw(st.booleans()):
                attr = f" class=\"{draw(st.sampled_from(['k', 'h-card', 'mention x', 'a']))}\""
            elif name == "ol" and draw(st.booleans()):
                attr = " start='2' reversed"
            parts.append(f"<{name}{attr}>{draw(_nested(depth + 1))}</{name}>")
    return "".join(parts)


@settings(max_examples=500, deadline=None)
@given(_nested())
def test_nested_allowed_markup_equals_the_reference(source: str) -> None:
    same_as_reference(source)


@settings(max_examples=300, deadline=None)
@given(_nested())
def test_nh3_is_skipped_only_where_it_changes_nothing(source: str) -> None:
    try:
        reduced, skeleton = _r._one_pass(source, _r._Reducer(BASE))
    except _r._NotOnePass:
        return
    if _r._nh3_keeps(reduced, skeleton):
        assert _r._clean(reduced) == reduced


def test_nh3_shortcut_rules() -> None:
    def keeps(source: str) -> bool:
        return _r._nh3_keeps(*_r._one_pass(source, _r._Reducer(BASE)))

    assert keeps('<p>a <em>b</em> <a href="https://x.example/">c</a></p><ul>\n<li>d</li></ul>')
    assert keeps("<pre><code>x\n</code></pre>")
    for changed in ["<p>a", "<p><ul></ul></p>", "<p><em>a</p></em>", "<a href='#x'><a>b</a></a>",
                    "<li>a</li>", "<em><li>a</li></em>", "<pre>\nx</pre>", "<p>a\xa0b</p>",
                    "<p>a\rb</p>", "<span class=\"h-x'\">a</span>", '<a href="mailto:a@b">a</a>',
                    '<a href="https://a.1/">a</a>', "</p>", "<p><p>a</p></p>"]:
        assert not keeps(changed), changed


@given(st.sampled_from(["https://blog.example/posts/x/", "https://blog.example/p?q=1#old", "",
                        "mailto:a@b.example", "http://h", "https://h/a;p?q#f", "//h/x"]),
       st.one_of(st.sampled_from(_URLS), st.text(alphabet="#?;:/.ahtps \t\n%é[]", max_size=12),
                 st.text(alphabet="#?;:/.ahtps \t\n%é[]", max_size=12).map(lambda s: "#" + s),
                 st.text(alphabet="#?;:/.ahx-9", max_size=12).map(lambda s: "https://" + s)))
def test_link_resolution_equals_urljoin(base: str, url: str) -> None:
    try:
        expected = urljoin(base, url.strip())
    except ValueError:
        return  # urljoin refuses it; so does the reducer, through urljoin
    assert _r._Reducer(base)._absolute(url) == expected


def test_cached_tags_do_not_leak_between_bases() -> None:
    # The same tag text in posts of different schemes, and relative links in different posts.
    html = '<p><a href="http://x.example/./a">x</a> <a href="#top">t</a> <a href="b/">b</a></p>'
    for base in ["https://one.example/p/", "http://two.example/q/", "https://one.example/r/"]:
        same_as_reference(html, base)


def _corpus_posts(count: int) -> list[str]:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus.py"
    spec = importlib.util.spec_from_file_location("_fedipress_bench_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        return [post.body for post in module.generate_posts(count)]
    finally:
        del sys.modules[spec.name]


def test_corpus_posts_equal_the_reference_and_skip_nh3() -> None:
    from fedipress.generator.markup import render_markdown

    skipped = 0
    bodies = _corpus_posts(300)
    for i, body in enumerate(bodies):
        url = f"https://blog.example/posts/p{i}/"
        html = render_markdown(body, page_url=url, site_url="https://blog.example/").html
        same_as_reference(html, url)
        reduced, skeleton = _r._one_pass(html, _r._Reducer(url))  # Markdown takes the one pass
        skipped += _r._nh3_keeps(reduced, skeleton)
    assert skipped > len(bodies) * 0.9  # else the shortcut is proven on nothing
