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
