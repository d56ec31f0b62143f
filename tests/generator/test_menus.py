"""Front matter `weight:` and `menu:`: what they accept, the one-line errors for what they do
not, and how they choose and order the header navigation (render.menus_of, Hugo's rules)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.generator.content import load_site
from fedipress.generator.render import Link, menus_of
from fedipress.generator.scaffold import init_site
from fedipress.model import MenuEntry, Post, Site
from support.content import NOW, make_config, problems_of, write
from support.render import make_site, render_all

NAV = re.compile(r'<nav class="site-nav" aria-label="Site">(.*?)</nav>', re.S)
LINK = re.compile(r'<li><a [^>]*href="([^"]*)"[^>]*>([^<]*)</a></li>')


def page_text(title: str, front: str = "") -> str:
    return f"---\ntitle: {title}\n{front}---\nText.\n"


def nav_titles(html: str) -> list[str]:
    match = NAV.search(html)
    assert match, "no site navigation"
    return [title for _, title in LINK.findall(match.group(1))]


# --- front matter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "weight", "menus"),
    [
        ("", None, None),
        ("weight: 10\n", 10, None),
        ("weight: -3\n", -3, None),
        ("menu: main\n", None, (MenuEntry("main"),)),
        ("menu: [main, footer]\n", None, (MenuEntry("main"), MenuEntry("footer"))),
        ("menu: [main, main]\n", None, (MenuEntry("main"),)),
        ("menu: false\n", None, ()),
        ("menu: []\n", None, ()),
        ("menu:\n", None, None),  # empty: as if not written, like every other key
        ("menu:\n  main:\n    weight: 5\n    name: Hi\n", None, (MenuEntry("main", 5, "Hi"),)),
        ("weight: 2\nmenu:\n  main:\n  footer: {weight: 9}\n", 2,
         (MenuEntry("main"), MenuEntry("footer", 9))),
    ],
)
def test_weight_and_menu_are_read(tmp_path: Path, front: str, weight: int | None,
                                  menus: tuple[MenuEntry, ...] | None) -> None:
    write(tmp_path, "pages/a.md", page_text("A", front))
    (page,) = load_site(make_config(tmp_path), now=NOW).site.pages
    assert page.weight == weight
    assert page.menus == menus


def test_toml_front_matter_too(tmp_path: Path) -> None:
    write(tmp_path, "pages/a.md", '+++\ntitle = "A"\nweight = 4\nmenu = ["main"]\n+++\nText.\n')
    (page,) = load_site(make_config(tmp_path), now=NOW).site.pages
    assert (page.weight, page.menus) == (4, (MenuEntry("main"),))


def test_a_posts_weight_is_kept_for_themes(tmp_path: Path) -> None:
    # Hugo posts often carry `weight:`; it orders nothing here but stays in post.extra as
    # before, and a post named in a menu is listed there.
    write(tmp_path, "posts/2026-01-01-a.md", page_text("A", "weight: 3\n"))
    write(tmp_path, "posts/2026-01-02-b.md", page_text("B", "menu: main\n"))
    site = load_site(make_config(tmp_path), now=NOW).site
    by_title = {p.title: p for p in site.posts}
    assert by_title["A"].weight == 3 and by_title["A"].extra["weight"] == 3
    assert [link.title for link in menus_of(site)["main"]] == ["B"]


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("weight: heavy\n", "3: `weight`: expected a whole number such as 10 (lower comes"
                            " first in the navigation), got 'heavy'"),
        ("weight: 1.5\n", "3: `weight`: expected a whole number such as 10"),
        ("weight: true\n", "3: `weight`: expected a whole number such as 10"),
        ("weight: '10'\n", "3: `weight`: expected a whole number such as 10"),
        ("menu: true\n", "3: `menu`: expected a menu name such as main, a list of names such"
                         " as [main, footer], or false, got true/false"),
        ("menu: 7\n", "3: `menu`: expected a menu name such as main"),
        ("menu: [main, 3]\n", "3: `menu`: expected a menu name such as main, a list of names"
                              " such as [main, footer], or false; got a list holding 3"),
        ("menu: Main Menu\n", "3: `menu`: 'Main Menu' is not a menu name: use letters,"
                              " digits, - and _ (the header navigation is `main`)"),
        ("menu: ''\n", "3: `menu`: '' is not a menu name"),
        ("menu:\n  main: 5\n", "3: `menu`: under `main` expected `weight:` and `name:`, got 5"),
        ("menu:\n  main:\n    parent: about\n",
         "3: `menu`: `parent` under `main` is not understood: a menu entry takes only"
         " `weight:` (a whole number) and `name:` (the link's text); menus have one level"),
        ("menu:\n  main:\n    weight: first\n",
         "3: `menu`: `weight` under `main` must be a whole number such as 10, got 'first'"),
        ("menu:\n  main:\n    name: ''\n",
         "3: `menu`: `name` under `main` must be the link's text, got ''"),
    ],
)
def test_bad_weight_or_menu_is_one_line_with_file_and_line(tmp_path: Path, front: str,
                                                           expected: str) -> None:
    write(tmp_path, "pages/a.md", page_text("A", front))
    (problem,) = problems_of(tmp_path)
    assert problem.startswith("content/pages/a.md:" + expected), problem
    assert "\n" not in problem


def test_cli_build_refuses_a_bad_menu_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "blog"
    init_site(root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("CI", raising=False)  # a CI build makes no key pair
    (root / "content/pages").mkdir(parents=True, exist_ok=True)
    (root / "content/pages/now.md").write_text(page_text("Now", "weight: 1\nmenu: yes\n"))
    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "content/pages/now.md:4: `menu`: expected a menu name such as main" in err
    assert not (root / "public" / "now").exists()


# --- the navigation --------------------------------------------------------------------------


def site_with_pages(tmp_path: Path, *pages: tuple[str, int | None, tuple[MenuEntry, ...] | None],
                    posts_in_menus: dict[int, tuple[MenuEntry, ...]] | None = None) -> Site:
    site = make_site(tmp_path)
    about = site.pages[0]
    made = tuple(
        dataclasses.replace(about, title=title, slug=title.lower(), url=f"{about.url}{title}/",
                            path=f"{title.lower()}/", weight=weight, menus=menus, aliases=())
        for title, weight, menus in pages
    )
    posts: list[Post] = list(site.posts)
    for index, entries in (posts_in_menus or {}).items():
        posts[index] = dataclasses.replace(posts[index], menus=entries)
    return dataclasses.replace(site, pages=made, posts=tuple(posts))


def titles(links: tuple[Link, ...]) -> list[str]:
    return [link.title for link in links]


def test_without_weights_every_page_by_title(tmp_path: Path) -> None:
    site = site_with_pages(tmp_path, ("uses", None, None), ("About", None, None),
                           ("Contact", None, None))
    assert titles(menus_of(site)["main"]) == ["About", "Contact", "uses"]  # case-blind


def test_weights_first_lowest_first_then_the_rest_by_title(tmp_path: Path) -> None:
    site = site_with_pages(tmp_path, ("Zines", 20, None), ("About", None, None),
                           ("Now", -1, None), ("Books", 20, None), ("Contact", None, None))
    assert titles(menus_of(site)["main"]) == ["Now", "Books", "Zines", "About", "Contact"]


def test_menu_false_leaves_a_page_out(tmp_path: Path) -> None:
    site = site_with_pages(tmp_path, ("About", None, None), ("Imprint", None, ()))
    assert titles(menus_of(site)["main"]) == ["About"]


def test_once_a_page_names_main_only_named_entries_are_in_it(tmp_path: Path) -> None:
    main_entry = (MenuEntry("main"),)
    site = site_with_pages(
        tmp_path, ("About", None, None), ("Now", 2, main_entry),
        ("Projects", None, (MenuEntry("main", 1, "Work"),)),
        ("Imprint", None, (MenuEntry("footer"),)),
        posts_in_menus={0: (MenuEntry("main", 3),)},
    )
    menus = menus_of(site)
    # The entry's own weight and name win for that menu; a post can be listed too.
    assert titles(menus["main"]) == ["Work", "Now", site.posts[0].title]
    assert titles(menus["footer"]) == ["Imprint"]


def test_a_page_only_in_another_menu_is_not_in_the_header(tmp_path: Path) -> None:
    site = site_with_pages(tmp_path, ("About", None, None),
                           ("Imprint", None, (MenuEntry("footer"),)))
    menus = menus_of(site)
    assert titles(menus["main"]) == ["About"]
    assert titles(menus["footer"]) == ["Imprint"]


def test_the_header_shows_the_main_menu_and_themes_get_every_menu(tmp_path: Path) -> None:
    site = site_with_pages(tmp_path, ("Zines", 2, None), ("Now", 1, None),
                           ("Imprint", None, (MenuEntry("footer"),)))
    html = render_all(site)["index.html"]
    assert nav_titles(html) == ["Now", "Zines", "Archive", "Tags", "Follow"]
    env_site = dataclasses.replace(site.config, theme="mine")
    theme = tmp_path / "themes" / "mine" / "templates"
    theme.mkdir(parents=True)
    (theme / "main.html").write_text(
        '{% extends "base.html" %}{% block footer %}'
        '{% for link in site.menus.footer %}<a class="f" href="{{ link.url }}">'
        '{{ link.title }}</a>{% endfor %}{% endblock %}'
    )
    html = render_all(dataclasses.replace(site, config=env_site))["index.html"]
    assert '<a class="f" href="https://alice.example/about/Imprint/">Imprint</a>' in html


def test_changing_a_weight_changes_every_pages_fingerprint(tmp_path: Path) -> None:
    from support.render import plan

    site = site_with_pages(tmp_path, ("A", 1, None), ("B", 2, None))
    before = plan(site)
    after = plan(site_with_pages(tmp_path, ("A", 3, None), ("B", 2, None)))
    assert before["index.html"].fingerprint != after["index.html"].fingerprint
    assert before["posts/post-1/index.html"].fingerprint \
        != after["posts/post-1/index.html"].fingerprint


def test_a_built_site_orders_its_navigation_by_weight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "blog"
    init_site(root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("CI", raising=False)  # a CI build makes no key pair
    pages = root / "content/pages"
    pages.mkdir(parents=True, exist_ok=True)
    for old in pages.glob("*.md"):
        old.unlink()
    (pages / "about.md").write_text(page_text("About", "weight: 20\n"))
    (pages / "now.md").write_text(page_text("Now", "weight: 10\n"))
    (pages / "colophon.md").write_text(page_text("Colophon"))
    (pages / "imprint.md").write_text(page_text("Imprint", "menu: false\n"))
    assert main(["build"]) == 0
    html = (root / "public" / "index.html").read_text()
    assert nav_titles(html) == ["Now", "About", "Colophon", "Archive", "Tags", "Follow"]
    assert (root / "public" / "imprint" / "index.html").is_file()  # published, just not listed
