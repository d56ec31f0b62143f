"""themes: partials that read only plan-wide objects (post, site, config, ...) render once per
input; overrides still reach every page, and anything page-specific is never shared."""

from __future__ import annotations

import html
from pathlib import Path

import jinja2

from fedipress.generator.render import plan_pages
from fedipress.generator.themes import make_environment
from support.render import make_site, render_all
from support.themes import write

PARTIALS = "themes/default/templates/partials"


def inputs(env: jinja2.Environment, name: str) -> object:
    return getattr(env.get_template(name), "_fedipress_inputs", "unset")


def test_default_partials_that_are_memoized(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    # (`tag`: a tag page leaves its own tag's chip out; missing, so one key, elsewhere)
    assert inputs(env, "partials/post_summary.html") == ("post", "tag")
    assert inputs(env, "partials/post_meta.html") == ("post", "tag")
    assert inputs(env, "partials/profile.html") == ("site",)
    assert inputs(env, "partials/scripts.html") == ()
    assert inputs(env, "partials/pagination.html") is None  # reads the page's paginator
    assert inputs(env, "post.html") is None  # extends; reads meta, newer, older


def test_override_of_post_summary_changes_home_and_tag_pages(tmp_path: Path) -> None:
    before = render_all(make_site(tmp_path))
    write(tmp_path / PARTIALS / "post_summary.html", "<i>S:{{ post.slug }}</i>\n")
    after = render_all(make_site(tmp_path))
    for path in ("index.html", "page/2/index.html", "tags/garden/index.html",
                 "tags/code/index.html"):
        assert 'class="summary h-entry"' in before[path], path
        assert 'class="summary h-entry"' not in after[path], path
        assert "<i>S:post-" in after[path], path
    assert 'class="post-meta"' in after["posts/post-3/index.html"]  # post pages: no summary
    assert "<i>S:" not in after["posts/post-3/index.html"]


def test_override_of_post_meta_changes_post_and_list_pages(tmp_path: Path) -> None:
    write(tmp_path / PARTIALS / "post_meta.html", "<b>M:{{ post.reading_minutes }}</b>\n")
    pages = render_all(make_site(tmp_path))
    for path in ("index.html", "tags/garden/index.html", "posts/post-3/index.html"):
        assert "<b>M:" in pages[path], path
        assert 'class="post-meta"' not in pages[path], path


def test_partial_reading_page_values_renders_per_page(tmp_path: Path) -> None:
    # The same post on the home page and on its tag page: meta and paginator differ, so the
    # partial must not be shared between them.
    write(tmp_path / PARTIALS / "post_summary.html",
          "<i>{{ post.slug }}@{{ meta.url }}#{{ paginator.number }}</i>\n")
    site = make_site(tmp_path, posts_per_page=2)
    pages = render_all(site)
    env = make_environment(site.config)
    assert inputs(env, "partials/post_summary.html") is None
    home = site.config.base_url
    assert f"<i>post-7@{home}#1</i>" in pages["index.html"]
    assert f"<i>post-7@{home}tags/garden/#1</i>" in pages["tags/garden/index.html"]
    assert f"<i>post-5@{home}page/2/#2</i>" in pages["page/2/index.html"]


def test_partial_reading_an_outer_variable_renders_per_page(tmp_path: Path) -> None:
    write(tmp_path / PARTIALS / "post_summary.html", "<i>{{ post.slug }}:{{ tag.name }}</i>\n")
    pages = render_all(make_site(tmp_path))
    assert "<i>post-7:garden</i>" in pages["tags/garden/index.html"]
    assert "<i>post-7:</i>" in pages["index.html"]  # no tag on the home page


def test_nested_include_of_a_page_specific_partial_is_not_memoized(tmp_path: Path) -> None:
    # post_summary itself reads only `post`, but the post_meta it includes reads the page.
    write(tmp_path / PARTIALS / "post_meta.html", "<b>{{ meta.url }}</b>\n")
    site = make_site(tmp_path)
    env = make_environment(site.config)
    assert inputs(env, "partials/post_summary.html") is None
    pages = render_all(site)
    home = site.config.base_url
    assert f"<b>{home}</b>" in pages["index.html"]
    assert f"<b>{home}tags/garden/</b>" in pages["tags/garden/index.html"]


def test_impure_filter_or_dynamic_include_is_not_memoized(tmp_path: Path) -> None:
    write(tmp_path / PARTIALS / "post_meta.html", "{{ [post.title]|random }}\n")
    write(tmp_path / PARTIALS / "post_summary.html",
          '{% include "partials/" ~ "profile.html" %}{{ post.title }}\n')
    env = make_environment(make_site(tmp_path).config)
    assert inputs(env, "partials/post_meta.html") is None
    assert inputs(env, "partials/post_summary.html") is None


def test_memoized_partial_gives_each_post_its_own_text(tmp_path: Path) -> None:
    write(tmp_path / PARTIALS / "post_summary.html", "<i>{{ post.title }}|{{ post.url }}</i>\n")
    site = make_site(tmp_path)
    pages = render_all(site)
    tag_pages = "".join(text for path, text in pages.items() if path.startswith("tags/garden/"))
    for post in site.posts:
        assert f"<i>{html.escape(post.title)}|{post.url}</i>" in tag_pages
    # Rendering again (the memo full) gives the same bytes as a fresh environment.
    outputs = plan_pages(site, make_environment(site.config), fingerprint_salt="s")
    first = {o.path: o.render() for o in outputs}
    again = {o.path: o.render() for o in outputs}
    assert first == again
    assert {p: b.decode() for p, b in first.items()} == pages


def test_loaded_templates_are_kept_in_a_plain_dict(tmp_path: Path) -> None:
    # Every include looks its template up again; the default LRU takes a lock per lookup.
    env = make_environment(make_site(tmp_path).config)
    env.get_template("partials/post_meta.html")
    assert type(env.cache) is dict and len(env.cache) == 1


def test_template_globals_are_a_plain_copy_with_every_global(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    template = env.get_template("partials/scripts.html")
    assert type(template.globals) is dict
    assert template.globals["theme_version"] == env.globals["theme_version"]
    assert set(env.globals) <= set(template.globals)
    assert env.from_string("{{ theme_version }} {{ range(2)|list }}").render() \
        == f"{env.globals['theme_version']} [0, 1]"


def test_an_edited_partial_is_analysed_again(tmp_path: Path) -> None:
    # What a source reads is remembered by (name, source) across environments (one per
    # build): the dev server's next build after an edit must see the new source's inputs.
    write(tmp_path / PARTIALS / "post_summary.html", "<i>{{ post.slug }}</i>\n")
    config = make_site(tmp_path).config
    assert inputs(make_environment(config), "partials/post_summary.html") == ("post",)
    assert inputs(make_environment(config), "partials/post_summary.html") == ("post",)
    write(tmp_path / PARTIALS / "post_summary.html", "<i>{{ post.slug }}{{ meta.url }}</i>\n")
    assert inputs(make_environment(config), "partials/post_summary.html") is None
    write(tmp_path / PARTIALS / "post_summary.html", "<i>{{ post.slug }}</i>\n")
    assert inputs(make_environment(config), "partials/post_summary.html") == ("post",)
