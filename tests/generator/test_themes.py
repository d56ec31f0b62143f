"""themes: search path, single-template overrides, `!default/`, errors with file:line, hashes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.errors import ThemeError
from fedipress.generator.render import plan_pages
from fedipress.generator.themes import (
    PACKAGED_THEMES,
    available_themes,
    format_date,
    make_environment,
    render_template,
    theme_fingerprint,
    theme_search_path,
    theme_static_files,
)
from fedipress.model import Site
from support.render import make_site, render_all
from support.themes import write

DEFAULT = PACKAGED_THEMES / "default"


def with_theme(site: Site, name: str) -> Site:
    return dataclasses.replace(site, config=dataclasses.replace(site.config, theme=name))


def test_default_theme_alone(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    dirs = theme_search_path(site.config)
    assert [(d.name, d.path, d.label) for d in dirs] == [
        ("default", DEFAULT, "fedipress/themes/default")
    ]


def test_site_overrides_one_template_of_the_default(tmp_path: Path) -> None:
    write(tmp_path / "themes/default/templates/404.html", "custom 404 for {{ site.title }}\n")
    pages = render_all(make_site(tmp_path))
    assert pages["404.html"] == "custom 404 for Alice&#39;s Notebook\n"  # autoescaped
    assert 'class="post-nav"' in pages["posts/post-3/index.html"]  # the rest is untouched


def test_named_site_theme_extends_default_and_overrides_main(tmp_path: Path) -> None:
    write(tmp_path / "themes/mine/theme.yaml", "extends: default\n")
    write(
        tmp_path / "themes/mine/templates/main.html",
        '{% extends "base.html" %}\n'
        '{% block head_extra %}<meta name="mine" content="yes">{% endblock %}\n',
    )
    site = with_theme(make_site(tmp_path), "mine")
    assert [d.label for d in theme_search_path(site.config)] == [
        "themes/mine",
        "fedipress/themes/default",
    ]
    pages = render_all(site)
    for path in ("index.html", "posts/post-1/index.html", "404.html", "tags/index.html"):
        assert '<meta name="mine" content="yes">' in pages[path], path


def test_site_theme_without_theme_yaml_still_falls_back_to_default(tmp_path: Path) -> None:
    write(tmp_path / "themes/bare/templates/tags.html", "{{ tags|length }} tags\n")
    pages = render_all(with_theme(make_site(tmp_path), "bare"))
    assert pages["tags/index.html"] == "2 tags\n"
    assert "<article" in pages["posts/post-1/index.html"]


def test_override_can_extend_its_parent_with_bang_prefix(tmp_path: Path) -> None:
    write(
        tmp_path / "themes/default/templates/post.html",
        '{% extends "!default/post.html" %}\n'
        "{% block comments %}<section id=comments>{{ post.slug }}</section>{% endblock %}\n",
    )
    html = render_all(make_site(tmp_path))["posts/post-2/index.html"]
    assert "<section id=comments>post-2</section>" in html
    assert 'class="replies"' not in html  # the default block was replaced
    assert 'class="post-nav"' in html  # the rest of the parent post.html is kept


def test_chain_of_site_themes(tmp_path: Path) -> None:
    write(tmp_path / "themes/base2/theme.yaml", "extends: default\n")
    write(tmp_path / "themes/base2/templates/archive.html", "base2 archive\n")
    write(tmp_path / "themes/child/theme.yaml", "extends: base2\n")
    write(tmp_path / "themes/child/templates/404.html", "child 404\n")
    site = with_theme(make_site(tmp_path), "child")
    assert [d.name for d in theme_search_path(site.config)] == ["child", "base2", "default"]
    pages = render_all(site)
    assert pages["archive/index.html"] == "base2 archive\n"
    assert pages["404.html"] == "child 404\n"


def test_unknown_theme_lists_the_available_ones(tmp_path: Path) -> None:
    (tmp_path / "themes/mine").mkdir(parents=True)
    site = with_theme(make_site(tmp_path), "nope")
    with pytest.raises(ThemeError) as info:
        make_environment(site.config)
    assert str(info.value) == "site.yaml: unknown theme 'nope'; available themes: default, mine"
    assert available_themes(tmp_path) == ["default", "mine"]


def test_unknown_theme_names_the_line_of_site_yaml(tmp_path: Path) -> None:
    from fedipress.config import load_config

    write(tmp_path / "site.yaml", "title: T\nbase_url: https://a.example/\nauthor:\n"
          "  name: A\n  handle: a\ntheme: nope  # a typo\n")
    (tmp_path / "content").mkdir()
    with pytest.raises(ThemeError) as info:
        theme_search_path(load_config(tmp_path / "site.yaml"))
    assert str(info.value) == "site.yaml:6: unknown theme 'nope'; available themes: default"


def test_unknown_parent_theme(tmp_path: Path) -> None:
    write(tmp_path / "themes/mine/theme.yaml", "# mine\nextends: ghost\n")
    with pytest.raises(ThemeError, match=r"^themes/mine/theme.yaml:2: unknown theme 'ghost'"):
        theme_search_path(with_theme(make_site(tmp_path), "mine").config)


def test_theme_loop(tmp_path: Path) -> None:
    write(tmp_path / "themes/a/theme.yaml", "extends: b\n")
    write(tmp_path / "themes/b/theme.yaml", "extends: a\n")
    with pytest.raises(ThemeError, match=r"loop \(a -> b -> a\)"):
        theme_search_path(with_theme(make_site(tmp_path), "a").config)


def test_bad_theme_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "themes/mine/theme.yaml", "extends: default\nfoo: [unclosed\n")
    with pytest.raises(ThemeError, match=r"^themes/mine/theme.yaml:3: not valid YAML"):
        theme_search_path(with_theme(make_site(tmp_path), "mine").config)


def test_unknown_key_in_theme_yaml_is_named(tmp_path: Path) -> None:
    write(tmp_path / "themes/mine/theme.yaml", "# mine\nextnds: default\n")
    with pytest.raises(ThemeError) as info:
        theme_search_path(with_theme(make_site(tmp_path), "mine").config)
    assert str(info.value) == ("themes/mine/theme.yaml:2: unknown key 'extnds'; theme.yaml has"
                               " only `extends:`; did you mean 'extends'?")


def test_unreadable_theme_yaml_is_an_error_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path / "themes/mine/theme.yaml", "extends: default\nsince: 2026-02-30\n")
    with pytest.raises(ThemeError, match=r"^themes/mine/theme.yaml: cannot be read: day is out"):
        theme_search_path(with_theme(make_site(tmp_path), "mine").config)
    (tmp_path / "themes/mine/theme.yaml").write_bytes(b"extends: d\xe9fault\n")
    with pytest.raises(ThemeError, match=r"^themes/mine/theme.yaml: cannot be read: 'utf-8'"):
        theme_search_path(with_theme(make_site(tmp_path), "mine").config)


# --- errors name the template file and line ----------------------------------------------


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "themes/mine/templates/post.html", "line 1\nline 2\n{{ post.title }\n")
    site = with_theme(make_site(tmp_path), "mine")
    outputs = plan_pages(site, make_environment(site.config), fingerprint_salt="s")
    post = next(o for o in outputs if o.path == "posts/post-1/index.html")
    with pytest.raises(ThemeError) as info:
        post.render()
    assert str(info.value) == "themes/mine/templates/post.html:3: unexpected '}'"


def test_render_error_names_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path / "themes/mine/templates/tags.html",
        "ok\n{% for t in tags %}\n{{ t.count / 0 }}\n{% endfor %}\n",
    )
    site = with_theme(make_site(tmp_path), "mine")
    outputs = plan_pages(site, make_environment(site.config), fingerprint_salt="s")
    tags = next(o for o in outputs if o.path == "tags/index.html")
    with pytest.raises(ThemeError) as info:
        tags.render()
    assert str(info.value) == (
        "themes/mine/templates/tags.html:3: ZeroDivisionError: division by zero"
    )


def test_error_in_an_included_partial_names_the_partial(tmp_path: Path) -> None:
    write(tmp_path / "themes/default/templates/partials/post_meta.html", "{{ post.date|date(\n")
    site = make_site(tmp_path)
    outputs = plan_pages(site, make_environment(site.config), fingerprint_salt="s")
    post = next(o for o in outputs if o.path == "posts/post-1/index.html")
    with pytest.raises(ThemeError, match=r"^themes/default/templates/partials/post_meta.html:1: "):
        post.render()


def test_missing_template_is_a_theme_error(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    with pytest.raises(ThemeError, match=r"template 'nope.html' not found \(searched "):
        render_template(env, "nope.html", {})


def test_undefined_values_are_forgiving_for_user_themes(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    template = env.from_string("[{{ post.nothing.deeper }}]")
    assert template.render(post={}) == "[]"


def test_autoescape_is_on(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"  # from_string: html default
    write(tmp_path / "themes/default/templates/probe.html", "{{ x }}")
    env = make_environment(make_site(tmp_path).config)
    assert render_template(env, "probe.html", {"x": "<b>"}) == "&lt;b&gt;"


def test_date_filters_use_the_site_timezone() -> None:
    from zoneinfo import ZoneInfo

    moment = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert format_date(moment, ZoneInfo("Europe/Berlin")) == "29 March 2026"
    assert format_date(moment, ZoneInfo("America/New_York")) == "28 March 2026"


def test_no_clock_in_templates(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    assert "now" not in env.globals


# --- static files and fingerprints -------------------------------------------------------


def test_static_files_child_first(tmp_path: Path) -> None:
    mine = write(tmp_path / "themes/default/static/style.css", "body{}")
    write(tmp_path / "themes/default/static/img/logo.svg", "<svg/>")
    write(tmp_path / "themes/default/static/.DS_Store", "junk")
    files = dict(theme_static_files(make_site(tmp_path).config))
    assert files["theme/style.css"] == mine
    assert files["theme/img/logo.svg"] == tmp_path / "themes/default/static/img/logo.svg"
    assert "theme/.DS_Store" not in files
    assert set(files) == {"theme/style.css", "theme/img/logo.svg"}


def test_packaged_static_files(tmp_path: Path) -> None:
    files = theme_static_files(make_site(tmp_path).config)
    assert ("theme/style.css", DEFAULT / "static" / "style.css") in files


def test_theme_fingerprint_changes_with_any_file(tmp_path: Path) -> None:
    config = make_site(tmp_path).config
    first = theme_fingerprint(make_environment(config))
    assert first == theme_fingerprint(make_environment(config))
    write(tmp_path / "themes/default/static/extra.css", "a{}")
    second = theme_fingerprint(make_environment(config))
    write(tmp_path / "themes/default/static/extra.css", "a{color:red}")
    third = theme_fingerprint(make_environment(config))
    write(tmp_path / "themes/default/templates/404.html", "x")
    fourth = theme_fingerprint(make_environment(config))
    assert len({first, second, third, fourth}) == 4


def test_stylesheet_url_carries_the_theme_version(tmp_path: Path) -> None:
    before = render_all(make_site(tmp_path))["404.html"]
    write(tmp_path / "themes/default/static/style.css", "body{}")
    after = render_all(make_site(tmp_path))["404.html"]
    assert before != after and "theme/style.css?v=" in after


def test_packaged_templates_are_all_valid(tmp_path: Path) -> None:
    env = make_environment(make_site(tmp_path).config)
    names = env.list_templates()
    assert {"base.html", "main.html", "post.html", "page.html", "index.html", "tag.html"} <= set(
        names
    )
    for name in names:
        env.get_template(name)  # compiles


def test_main_html_is_an_empty_override_point() -> None:
    source = (DEFAULT / "templates" / "main.html").read_text()
    code = [line for line in source.splitlines() if line and not line.startswith(("{#", "  "))]
    assert code == ['{% extends "base.html" %}']


def test_base_and_post_define_the_documented_blocks() -> None:
    base = (DEFAULT / "templates" / "base.html").read_text()
    post = (DEFAULT / "templates" / "post.html").read_text()
    for block in ("title", "head_extra", "header", "content", "footer", "scripts"):
        assert f"{{% block {block} %}}" in base
    assert "{% block comments %}" in post
    docs = (Path(__file__).resolve().parents[2] / "docs" / "themes.md").read_text()
    for block in ("title", "head_extra", "header", "content", "footer", "scripts", "comments"):
        assert f"`{block}`" in docs, block


def test_theme_assets_load_nothing_from_elsewhere() -> None:
    for path in DEFAULT.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "@import" not in text and "fonts.googleapis" not in text
            assert "<script src" not in text and "cdn" not in text.lower(), path


def test_page_fingerprints_follow_the_theme_even_with_the_same_salt(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    before = plan_pages(site, make_environment(site.config), fingerprint_salt="same")
    write(tmp_path / "themes/default/static/style.css", "body{}")
    after = plan_pages(site, make_environment(site.config), fingerprint_salt="same")
    assert all(a.fingerprint != b.fingerprint for a, b in zip(before, after, strict=True))
