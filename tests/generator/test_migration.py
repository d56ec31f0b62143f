"""Moving a blog from Hugo or Jekyll: real content trees built with `fedipress build`.

Each test writes a small site the way a Hugo or Jekyll user would copy it over, runs the
command line, and reads the pages it wrote (parsed with html5lib) and the warnings it
printed (`file:LINE: warning: ...`).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree.ElementTree import Element, tostring

import html5lib
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fedipress.generator.migration_syntax import preprocess

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
BASE = "https://blog.example/"

SITE_YAML = """\
title: Moved Blog
base_url: https://blog.example/
timezone: UTC
author:
  name: Mover
  handle: mover
"""


def make_site(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "site.yaml").write_text(SITE_YAML, encoding="utf-8")
    for rel, text in files.items():
        path = root / "content" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    state = root / ".fedipress"
    state.mkdir()
    shutil.copy(KEYS / "blog-private.pem", state / "private-key.pem")
    os.chmod(state / "private-key.pem", 0o600)
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    return root


def build(site: Path) -> list[str]:
    """Run `fedipress build`; its warning lines."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "build", "--config", str(site / "site.yaml")],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=site,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return [line for line in done.stderr.splitlines() if ": warning: " in line]


def prose(site: Path, path: str) -> Element:
    """The body of the page at `path` (its `.prose` element)."""
    document = html5lib.parse((site / "public" / path / "index.html").read_bytes(),
                              namespaceHTMLElements=False)
    found = [e for e in document.iter("div") if "prose" in (e.get("class") or "").split()]
    assert len(found) == 1, path
    return found[0]


def text_of(element: Element) -> str:
    return "".join(element.itertext())


def markup(element: Element) -> str:
    alone = copy.copy(element)
    alone.tail = None
    return tostring(alone, encoding="unicode", method="html")


def only(elements: list[Element]) -> Element:
    assert len(elements) == 1, [markup(e) for e in elements]
    return elements[0]


def by_class(root: Element, tag: str, cls: str) -> list[Element]:
    return [e for e in root.iter(tag) if cls in (e.get("class") or "").split()]


def scripts_and_frames(site: Path) -> list[str]:
    found = []
    for page in (site / "public" / "posts").rglob("index.html"):
        document = html5lib.parse(page.read_bytes(), namespaceHTMLElements=False)
        for tag in ("iframe", "script"):
            found += [f"{page}: {tag} {e.get('src')}" for e in document.iter(tag)
                      if e.get("src") and not e.get("src", "").startswith(BASE)]
    return found


# --------------------------------------------------------------------------------------------
# Hugo

HUGO_POST = """\
---
title: "Shortcodes"
date: 2020-01-01
tags: hugo go
---
Intro "quoted".

{{< figure src="pic.jpg" caption="A *nice* picture" link="https://example.org/big.jpg" >}}

{{< highlight go "hl_lines=2" >}}
package main
func main() {}
{{< /highlight >}}

Read [the other one]({{< ref "other.md" >}}) or {{< relref "bundle" >}}.
Broken: [gone]({{< ref "gone.md" >}}).

{{< youtube w7Ft2ymGmfc >}}

{{< gist spf13 7896402 "img.html" >}}

{{< tweet user="SanDiegoZoo" id="1453110110599868418" >}}

Inline `{{< figure src="code.jpg" >}}` stays.

```
{{< figure src="fenced.jpg" >}}
{{</* ref "shown.md" */>}}
```

Shown as text: {{</* figure src="x.jpg" */>}}
"""

HUGO_EQUIVALENT = """\
---
title: "Equivalent"
date: 2019-01-01
---
```{ .go hl_lines="2" }
package main
func main() {}
```
"""


@pytest.fixture(scope="module")
def hugo_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    site = make_site(tmp_path_factory.mktemp("hugo") / "blog", {
        "_index.md": "---\ntitle: Home\n---\nWelcome to my blog.\n",
        "about.md": "---\ntitle: About me\n---\nSee [my first post]({{< ref \"other.md\" >}}).\n",
        "contact/index.md": "---\ntitle: Contact\n---\nWrite to me.\n",
        "post/lost.md": "---\ntitle: Lost\ndate: 2020-01-01\n---\nIn Hugo's folder.\n",
        "posts/_index.md": "---\ntitle: All posts\n---\nThe list.\n",
        "posts/shortcodes.md": HUGO_POST,
        "posts/equivalent.md": HUGO_EQUIVALENT,
        "posts/other.md": "---\ntitle: Other\ndate: 2019-06-01\n---\nOther post.\n",
        "posts/bundle/index.md": "---\ntitle: Bundle\ndate: 2019-07-01\n---\nBack to"
                                 " [the start]({{< ref \"/posts/shortcodes.md#intro\" >}}),"
                                 " [home]({{< ref \"/_index.md\" >}}).\n",
        "static/x.txt": "x",
    })
    return site, build(site)


def test_hugo_figure_is_a_figure(hugo_site: tuple[Path, list[str]]) -> None:
    site, _ = hugo_site
    body = prose(site, "posts/shortcodes")
    figure = only(list(body.iter("figure")))
    img = only(list(figure.iter("img")))
    assert img.get("src") == BASE + "posts/shortcodes/pic.jpg"
    assert img.get("alt") == "A nice picture"  # the caption as text, as Hugo does
    link = only(list(figure.iter("a")))
    assert link.get("href") == "https://example.org/big.jpg"
    caption = only(list(figure.iter("figcaption")))
    assert markup(caption) == "<figcaption>A <em>nice</em> picture</figcaption>"
    assert "figure" not in text_of(body).split("Inline")[0]  # nothing of it left as text


def test_hugo_highlight_is_the_same_code_block_as_a_fence(
        hugo_site: tuple[Path, list[str]]) -> None:
    site, _ = hugo_site
    block = only(by_class(prose(site, "posts/shortcodes"), "div", "highlight")[:1])
    fenced = only(by_class(prose(site, "posts/equivalent"), "div", "highlight"))
    assert markup(block) == markup(fenced)
    assert by_class(block, "span", "hll")  # hl_lines came through
    assert "package main" in text_of(block)


def test_hugo_refs_link_to_the_built_posts(hugo_site: tuple[Path, list[str]]) -> None:
    site, _ = hugo_site
    body = prose(site, "posts/shortcodes")
    links = {text_of(a): a.get("href") for a in body.iter("a")}
    assert links["the other one"] == BASE + "posts/other/"
    assert (site / "public" / "posts" / "other" / "index.html").is_file()
    # relref as bare text is the URL itself (fedipress writes absolute URLs everywhere)
    assert BASE + "posts/bundle/." in text_of(body)
    back = {text_of(a): a.get("href") for a in prose(site, "posts/bundle").iter("a")}
    assert back == {"the start": BASE + "posts/shortcodes/#intro", "home": BASE}
    about = only(list(prose(site, "about").iter("a")))
    assert about.get("href") == BASE + "posts/other/"


def test_hugo_missing_ref_is_a_warning_with_its_line(hugo_site: tuple[Path, list[str]]) -> None:
    site, warnings = hugo_site
    assert ("content/posts/shortcodes.md:16: warning: `ref` 'gone.md' names no post or page of"
            " this site") in "\n".join(warnings)
    gone = only([a for a in prose(site, "posts/shortcodes").iter("a") if text_of(a) == "gone"])
    assert gone.get("href") == '{{< ref "gone.md" >}}'  # the reference as written, not a URL


def test_hugo_youtube_and_gist_are_plain_links(hugo_site: tuple[Path, list[str]]) -> None:
    site, _ = hugo_site
    body = prose(site, "posts/shortcodes")
    hrefs = [a.get("href") for a in body.iter("a")]
    assert "https://www.youtube.com/watch?v=w7Ft2ymGmfc" in hrefs
    assert "https://gist.github.com/spf13/7896402#file-img-html" in hrefs
    assert scripts_and_frames(site) == []


def test_hugo_unknown_shortcode_stays_visible_and_is_warned(
        hugo_site: tuple[Path, list[str]]) -> None:
    site, warnings = hugo_site
    text = text_of(prose(site, "posts/shortcodes"))
    assert '{{< tweet user="SanDiegoZoo" id="1453110110599868418" >}}' in text
    assert ('content/posts/shortcodes.md:22: warning: Hugo shortcode `{{< tweet user="SanDiegoZoo"'
            ' id="1453110110599868418" >}}` is not supported; it is shown as written') in warnings
    page = site / "public" / "posts" / "shortcodes" / "index.html"
    assert "fedipress-x" not in page.read_text()  # no marker is left behind


def test_hugo_shortcodes_in_code_are_left_alone(hugo_site: tuple[Path, list[str]]) -> None:
    site, _ = hugo_site
    body = prose(site, "posts/shortcodes")
    codes = [text_of(c) for c in body.iter("code")]
    assert '{{< figure src="code.jpg" >}}' in codes
    assert '{{< figure src="fenced.jpg" >}}\n{{< ref "shown.md" >}}\n' in codes  # escape undone
    assert 'Shown as text: {{< figure src="x.jpg" >}}' in text_of(body)
    assert "Intro \u201cquoted\u201d." in text_of(body)  # ordinary prose is still typographic


def test_hugo_top_level_pages_and_list_texts(hugo_site: tuple[Path, list[str]]) -> None:
    site, warnings = hugo_site
    public = site / "public"
    assert "About me" in (public / "about" / "index.html").read_text()
    assert "Write to me." in (public / "contact" / "index.html").read_text()
    assert not (public / "index" / "index.html").exists()
    assert not (public / "posts" / "index" / "index.html").exists()  # posts/_index.md
    assert ("content/_index.md:1: warning: Hugo's home page text is not published:"
            " fedipress's home page shows `title` and `description` from site.yaml") \
        in "\n".join(warnings)
    assert any(w.startswith("content/posts/_index.md:1: warning: a Hugo section page")
               for w in warnings)
    assert ("content/post/: warning: 1 Markdown file is not published: posts belong in"
            " content/posts/") in "\n".join(warnings)
    tags = sorted(p.name for p in (public / "tags").iterdir() if p.is_dir())
    assert tags == ["go", "hugo"]


# --------------------------------------------------------------------------------------------
# Jekyll

JEKYLL_POST = """\
---
layout: post
title: Liquid
tags: jekyll ruby
categories: blog update
---
{% highlight ruby linenos %}
def foo
  puts 'foo'
end
{% endhighlight %}

See [the welcome]({% post_url 2010-07-21-welcome %}), [the about page]({% link about.md %})
and [the PDF]({% link files/doc.pdf %}). Gone: [x]({% post_url 2001-01-01-nothing %}).

{% raw %}Jekyll writes {{ page.title }} and {% if x %}.{% endraw %}

```liquid
{% raw %}{{ page.title | upcase }}{% endraw %}
```

![logo]({{ site.baseurl }}/images/logo.png)

{% include note.html text="hi" %}
{% comment %}Never shown.{% endcomment %}
"""

JEKYLL_EQUIVALENT = """\
---
title: Equivalent
---
```{ .ruby linenums="true" }
def foo
  puts 'foo'
end
```
"""


@pytest.fixture(scope="module")
def jekyll_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    site = make_site(tmp_path_factory.mktemp("jekyll") / "blog", {
        "posts/2020-03-01-liquid.md": JEKYLL_POST,
        "posts/2010-07-21-welcome.md": "---\ntitle: Welcome\n---\nHi.\n",
        "posts/2010-01-01-equivalent.md": JEKYLL_EQUIVALENT,
        "about.md": "---\ntitle: About\n---\nMe.\n",
        "static/files/doc.pdf": "%PDF-1.4\n",
        "static/images/logo.png": "png",
    })
    return site, build(site)


def test_jekyll_highlight_is_the_same_code_block_as_a_fence(
        jekyll_site: tuple[Path, list[str]]) -> None:
    site, _ = jekyll_site
    body = prose(site, "posts/liquid")
    block = by_class(body, "div", "highlight")[0]
    fenced = only(by_class(prose(site, "posts/equivalent"), "div", "highlight"))
    assert markup(block) == markup(fenced)
    assert "puts 'foo'" in text_of(block)
    assert "endhighlight" not in text_of(body)


def test_jekyll_links_to_posts_pages_and_files(jekyll_site: tuple[Path, list[str]]) -> None:
    site, warnings = jekyll_site
    links = {text_of(a): a.get("href") for a in prose(site, "posts/liquid").iter("a")}
    assert links["the welcome"] == BASE + "posts/welcome/"
    assert links["the about page"] == BASE + "about/"
    assert links["the PDF"] == BASE + "files/doc.pdf"
    assert (site / "public" / "files" / "doc.pdf").is_file()
    assert ("content/posts/2020-03-01-liquid.md:14: warning: `post_url` '2001-01-01-nothing'"
            " names no post or page of this site") in "\n".join(warnings)


def test_jekyll_raw_comment_and_site_baseurl(jekyll_site: tuple[Path, list[str]]) -> None:
    site, warnings = jekyll_site
    body = prose(site, "posts/liquid")
    text = text_of(body)
    assert "Jekyll writes {{ page.title }} and {% if x %}." in text
    assert "{{ page.title | upcase }}\n" in [text_of(c) for c in body.iter("code")]
    assert "raw" not in text and "Never shown" not in text
    img = only(list(body.iter("img")))
    assert img.get("src") == BASE + "images/logo.png"
    # Only the include is reported: raw, comment and site.baseurl are understood.
    mine = [w for w in warnings if "liquid.md" in w]
    assert mine == [
        "content/posts/2020-03-01-liquid.md:14: warning: `post_url` '2001-01-01-nothing' names"
        " no post or page of this site (looked for '2001-01-01-nothing' under content/): the"
        " link would be broken; fix the name or the file",
        'content/posts/2020-03-01-liquid.md:24: warning: Jekyll tag `{% include note.html'
        ' text="hi" %}` is not supported; it is shown as written',
    ]
    assert '{% include note.html text="hi" %}' in text


def test_jekyll_space_separated_tags_and_categories(jekyll_site: tuple[Path, list[str]]) -> None:
    site, _ = jekyll_site
    tags = sorted(p.name for p in (site / "public" / "tags").iterdir() if p.is_dir())
    assert tags == ["blog", "jekyll", "ruby", "update"]


# --------------------------------------------------------------------------------------------
# Rebuilds: references follow the site, warnings come back every time


def test_references_and_warnings_survive_cached_rebuilds(tmp_path: Path) -> None:
    site = make_site(tmp_path / "blog", {
        "posts/2020-01-01-a.md": "---\ntitle: A\n---\nTo [b]({{< ref \"b.md\" >}}).\n\n"
                                 "{{< vimeo 1 >}}\n",
        "posts/b.md": "---\ntitle: B\ndate: 2020-01-02\n---\nB.\n",
    })
    first = build(site)
    assert first == ["content/posts/2020-01-01-a.md:6: warning: Hugo shortcode"
                     " `{{< vimeo 1 >}}` is not supported; it is shown as written"]
    assert build(site) == first  # a.md's rendering came from the cache this time
    b = site / "content" / "posts" / "b.md"
    b.write_text("---\ntitle: B\ndate: 2020-01-02\nslug: bee\n---\nB.\n", encoding="utf-8")
    build(site)
    link = only(list(prose(site, "posts/a").iter("a")))
    assert link.get("href") == BASE + "posts/bee/"  # a.md itself did not change
    b.unlink()
    warnings = build(site)
    assert any(w.startswith("content/posts/2020-01-01-a.md:4: warning: `ref` 'b.md' names no")
               for w in warnings)


def test_reference_to_a_draft_says_so(tmp_path: Path) -> None:
    site = make_site(tmp_path / "blog", {
        "posts/2020-01-01-a.md": "---\ntitle: A\n---\n\nSee {% post_url 2020-01-02-b %}.\n",
        "posts/2020-01-02-b.md": "---\ntitle: B\ndraft: true\n---\nB.\n",
    })
    assert build(site) == [
        "content/posts/2020-01-01-a.md:5: warning: `post_url` '2020-01-02-b' names a draft, a"
        " future or an expired post, which this build leaves out: the link would be broken"]


# --------------------------------------------------------------------------------------------
# The pre-processing step alone


def test_text_without_shortcodes_is_untouched() -> None:
    text = "a { b } c % d `{{` e\n\n    {% x %}\n"
    assert preprocess("plain *text*\n") == "plain *text*\n"
    assert preprocess(text).replace("&#123;", "{") == text  # nothing but code and braces


@pytest.mark.parametrize("text", [
    "    {{< figure src=\"a.jpg\" >}}\n",  # indented code
    "~~~\n{% highlight ruby %}\n~~~\n",  # fenced code
    "``{% post_url x %}``\n",  # inline code
    "Text\n\n```go\n{{< ref \"x\" >}}\n```\n",
])
def test_shortcodes_in_code_stay_as_written(text: str) -> None:
    assert preprocess(text) == text


def test_unclosed_highlight_is_shown_and_warned() -> None:
    out = preprocess("{% highlight ruby %}\nputs 1\n")
    assert out.startswith("&#123;&#37; highlight ruby &#37;&#125;<!--fedipress-x:w1.")
    assert "puts 1" in out


def test_warnings_leave_no_trace_and_keep_the_text_apart() -> None:
    from fedipress.generator.markup import render_markdown
    from fedipress.generator.migration_syntax import Note, resolve

    body = ("## About {{< tweet 1 >}}\n\nOne {{< vimeo 2 >}}\nnext line.\n\n"
            "{{< highlight go \"style=monokai\" >}}\nx\n{{< /highlight >}}\n")
    rendered = render_markdown(preprocess(body), page_url=BASE + "a/", site_url=BASE)
    notes: list[Note] = []
    html = resolve(rendered.html, lambda kind, target: (None, "unused"), notes)
    assert [n.line for n in notes] == [1, 3, 6]
    assert "fedipress-x" not in html and "<!--" not in html
    assert '<h2 id="about-tweet-1">' in html  # the id is made of the visible text only
    assert "&#62;&#125;&#125;\nnext line." in html
    assert html.count('<div class="highlight">') == 1
    assert notes[2].message == ("code block option(s) style=monokai not supported; the code is"
                                " shown without them")


def test_highlight_in_a_list_item_keeps_its_indentation() -> None:
    out = preprocess("- step\n\n  {{< highlight sh >}}\n  make\n  {{< /highlight >}}\n- next\n")
    assert re.search(r"\n  ```sh\n  make\n  ```\n", out), out


def test_stray_openers_cost_linear_time() -> None:
    # Unclosed shortcodes, tags and code spans by the ten thousand: each was a search to the
    # end of the body (minutes in all) before the looks were bounded and remembered.
    bodies = [
        "word `code` " * 20000 + "{{< x >}}",
        '{{< figure src="a" ' * 5000,
        "`" + "{% x " * 20000,
        "{% raw %} " * 20000,
        "{{ site.x " * 20000,
        "```\n" + "{{</* x " * 20000,
        "a {{ b\n" * 50000,
        "{{< highlight go >}}\n" * 20000,
    ]
    started = time.perf_counter()
    for body in bodies:
        preprocess(body)
    assert time.perf_counter() - started < 5


def test_image_named_by_a_link_tag_is_the_post_image(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from fedipress.config import load_config
    from fedipress.generator.content import load_site

    site = make_site(tmp_path / "blog", {
        "posts/2020-01-01-a.md": "---\ntitle: A\n---\n![Logo]({% link images/logo.png %})\n",
        "static/images/logo.png": "png",
    })
    result = load_site(load_config(site / "site.yaml"), now=datetime(2026, 1, 1, tzinfo=UTC))
    (post,) = result.site.posts
    assert [(i.url, i.alt, i.media_type) for i in post.images] == [
        (BASE + "images/logo.png", "Logo", "image/png")]  # (feeds, ActivityPub attachments)
    assert f'<img alt="Logo" src="{BASE}images/logo.png">' in post.html
    assert result.warnings == ()


def test_warnings_print_even_when_quiet(tmp_path: Path) -> None:
    site = make_site(tmp_path / "blog", {
        "post/2020-01-01-a.md": "---\ntitle: A\n---\nA.\n",  # Hugo's singular folder
        "posts/2020-01-02-b.md": "---\ntitle: B\n---\n{{< instagram x >}}\n",
    })
    done = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "build", "--quiet", "--config",
         str(site / "site.yaml")],
        capture_output=True, text=True, timeout=120, check=False, cwd=site,
        env={k: v for k, v in os.environ.items() if k != "CI"},
    )
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "content/post/: warning: 1 Markdown file is not published: posts belong in"
        " content/posts/ and pages in content/pages/ (or directly in content/); move them there",
        "content/posts/2020-01-02-b.md:4: warning: Hugo shortcode `{{< instagram x >}}` is not"
        " supported; it is shown as written",
    ]


@pytest.mark.parametrize("which", ["hugo", "jekyll"])
def test_migrated_pages_are_valid_html(which: str, hugo_site: tuple[Path, list[str]],
                                       jekyll_site: tuple[Path, list[str]]) -> None:
    site, _ = hugo_site if which == "hugo" else jekyll_site
    pages = sorted((site / "public").rglob("index.html"))
    assert len(pages) > 5
    for page in pages:
        parser = html5lib.HTMLParser(namespaceHTMLElements=False)
        parser.parse(page.read_bytes())
        assert parser.errors == [], page
    # No marker is left in any page, feed or ActivityPub document.
    for path in (site / "public").rglob("*"):
        if path.is_file() and path.suffix in (".html", ".xml", ".json"):
            assert b"fedipress-x" not in path.read_bytes(), path


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}<>%/*\"'` \nabc-=_")), max_size=80))
def test_code_keeps_anything_but_the_escapes(code: str) -> None:
    # Whatever shortcode-like text a fenced block holds comes out as it went in, unless it
    # holds an escape form (undone, as on the old site) or a line that would close the fence.
    assume("~~~" not in code and "/*" not in code and "raw" not in code)
    text = f"Before.\n\n~~~\n{code}\n~~~\n\nAfter.\n"
    assert preprocess(text) == text
