"""Every built HTML page is valid HTML and a sound page, checked over whole built sites.

The same two sites as tests/generator/test_feed_validity.py (the `basic` fixture and the tricky one)
are built once per module. html5lib, an independent implementation of the WHATWG parsing algorithm,
reports every parse error of every page; then each page is checked for what a reader, a screen
reader and a privacy-minded visitor rely on: one <h1> and one <main>, <html lang>, unique ids,
alt text on every image, no inline event handlers, no resources loaded from other hosts (author
content aside), and no broken internal link or fragment anywhere on the site.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree.ElementTree import Element

import html5lib
import pytest

from fedipress.config.settings import INTERACT_PATH
from support.feed_validity import EXPECTED, SITE_NAMES, build_fixture_site

# Attributes that hold a URL the browser follows or fetches, per element.
LINK_ATTRS = {"a": ("href",), "link": ("href",), "img": ("src",), "script": ("src",),
              "source": ("src",), "video": ("src", "poster"), "audio": ("src",),
              "iframe": ("src",), "form": ("action",), "area": ("href",), "embed": ("src",),
              "object": ("data",), "track": ("src",)}
# <link rel=...> values that make the browser fetch the target while loading the page.
FETCHING_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload",
                 "modulepreload", "prefetch", "manifest", "mask-icon"}
# Author-written HTML (post bodies, summaries, the profile bio): it may embed what the author
# chooses, so the external-resource rule does not apply inside it.
AUTHOR_CLASSES = {"e-content", "p-summary", "p-note"}
# Raw HTML the fixture authors wrote on purpose: Markdown passes inline HTML through as the
# author wrote it, so parse errors it causes are the author's, not the theme's. Only errors on
# a line holding one of these are excused.
AUTHOR_RAW_HTML = ("<tag>",)


@dataclass
class Page:
    rel: str  # path under public/
    url: str  # the URL a static host serves it at
    source: str
    root: Element
    errors: list[str] = field(default_factory=list)


def page_url(base_url: str, rel: str) -> str:
    return base_url + (rel.removesuffix("index.html") if rel.endswith("index.html") else rel)


def parse_page(public: Path, base_url: str, path: Path) -> Page:
    source = path.read_bytes()
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    root = parser.parse(source)
    rel = path.relative_to(public).as_posix()
    text = source.decode("utf-8")
    page = Page(rel, page_url(base_url, rel), text, root)
    lines = text.splitlines()
    for (line, col), code, data in parser.errors:
        here = lines[line - 1] if 0 < line <= len(lines) else ""
        if any(raw in here for raw in AUTHOR_RAW_HTML):
            continue
        page.errors.append(f"{rel}:{line}:{col}: {code} {data or ''}".rstrip())
    return page


@pytest.fixture(scope="module")
def publics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("html-validity")
    return {name: build_fixture_site(name, root / name) for name in SITE_NAMES}


@pytest.fixture(scope="module")
def pages(publics: dict[str, Path]) -> dict[str, dict[str, Page]]:
    out: dict[str, dict[str, Page]] = {}
    for name, public in publics.items():
        base = EXPECTED[name].base_url
        out[name] = {p.rel: p for p in (parse_page(public, base, path)
                                        for path in sorted(public.rglob("*.html")))}
    return out


def elements(page: Page) -> Iterator[Element]:
    return page.root.iter()


def inside_author_content(page: Page) -> set[int]:
    """ids (Python object ids) of elements inside author-written HTML."""
    inside: set[int] = set()
    for el in page.root.iter():
        if AUTHOR_CLASSES & set(el.get("class", "").split()):
            inside.update(id(child) for child in el.iter() if child is not el)
    return inside


def is_redirect(page: Page) -> bool:
    return any(el.tag == "meta" and el.get("http-equiv", "").lower() == "refresh"
               for el in page.root.iter())


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SITE_NAMES)
def test_every_page_parses_without_errors(pages: dict[str, dict[str, Page]], name: str) -> None:
    assert len(pages[name]) > 8
    errors = [e for page in pages[name].values() for e in page.errors
              if "invalid-codepoint" not in e]
    assert errors == []


def test_control_characters_never_reach_pages(pages: dict[str, dict[str, Page]],
                                              publics: dict[str, Path]) -> None:
    errors = [e for page in pages["tricky"].values() for e in page.errors
              if "invalid-codepoint" in e]
    # The JSON feed's content_html is HTML too (Atom and RSS already drop these characters).
    feed = (publics["tricky"] / "feed.json").read_text("utf-8")
    assert errors == [] and not re.search(r"\\u00(0[0-8bcef]|1[0-9a-f])", feed)


def test_the_parse_check_catches_broken_markup(pages: dict[str, dict[str, Page]],
                                               tmp_path: Path) -> None:
    good = pages["basic"]["about/index.html"].source
    for broken in (good.replace("<!doctype html>", ""),
                   good.replace("</main>", "</div></main>"),
                   good.replace('<meta charset="utf-8">', '<meta charset="utf-8"><p>x</p>', 1),
                   good.replace("<html", "<html x=1 x=2", 1)):
        path = tmp_path / "about" / "index.html"
        path.parent.mkdir(exist_ok=True)
        path.write_text(broken, encoding="utf-8")
        assert parse_page(tmp_path, "https://blog.example/", path).errors


# --- page structure -------------------------------------------------------------------------


def test_pages_declare_their_own_language(pages: dict[str, dict[str, Page]]) -> None:
    site = pages["tricky"]
    assert site["posts/reply/index.html"].root.get("lang") == "pt-BR"
    assert site["posts/cw/index.html"].root.get("lang") == "en"
    assert {p.root.get("lang") for p in pages["basic"].values()} == {"en"}


def structure_problems(page: Page) -> list[str]:
    problems: list[str] = []
    tags = [el.tag for el in elements(page)]
    html = page.root if page.root.tag == "html" else page.root.find("html")
    if html is None or not (html.get("lang") or "").strip():
        problems.append("no <html lang>")
    if not is_redirect(page):
        # A redirect stub is not a page anyone reads; everything else has one heading and one
        # main region for screen readers and the skip link.
        for tag in ("h1", "main"):
            if tags.count(tag) != 1:
                problems.append(f"{tags.count(tag)} <{tag}> elements")
    ids = [el.get("id") for el in elements(page) if el.get("id") is not None]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"duplicate ids {dupes}")
    if "" in ids:
        problems.append("empty id")
    for el in elements(page):
        if el.tag == "img" and el.get("alt") is None:
            problems.append(f"<img src={el.get('src')!r}> has no alt")
        handlers = sorted(a for a in el.attrib if a.lower().startswith("on"))
        if handlers:
            problems.append(f"<{el.tag}> has inline event handlers {handlers}")
        for attr in LINK_ATTRS.get(el.tag, ()):
            if (el.get(attr) or "").strip().lower().startswith("javascript:"):
                problems.append(f"<{el.tag} {attr}> is a javascript: URL")
    title = page.root.find(".//head/title")
    if title is None or not (title.text or "").strip():
        problems.append("no <title>")
    return [f"{page.rel}: {p}" for p in problems]


@pytest.mark.parametrize("name", SITE_NAMES)
def test_every_page_is_well_formed_for_readers(pages: dict[str, dict[str, Page]],
                                               name: str) -> None:
    problems = [p for page in pages[name].values() for p in structure_problems(page)]
    assert problems == []


def test_structure_check_catches_problems(pages: dict[str, dict[str, Page]],
                                          tmp_path: Path) -> None:
    good = pages["basic"]["posts/tomatoes/index.html"].source
    assert "<img" in good and 'id="main"' in good
    breakers = {
        "no lang": re.sub(r'<html lang="[^"]*">', "<html>", good),
        "two h1": good.replace("</main>", "<h1>Again</h1></main>"),
        "no main": good.replace("<main", "<div").replace("</main>", "</div>"),
        "duplicate id": good.replace("</main>", '<p id="main">x</p></main>'),
        "img without alt": re.sub(r'(<img[^>]*?) alt="[^"]*"', r"\1", good, count=1),
        "event handler": good.replace("<main", '<main onclick="go()"'),
        "javascript url": good.replace("</main>", '<a href="javascript:go()">x</a></main>'),
    }
    for why, broken in breakers.items():
        path = tmp_path / "posts" / "tomatoes" / "index.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(broken, encoding="utf-8")
        page = parse_page(tmp_path, "https://blog.example/", path)
        assert structure_problems(page), why


# --- resources and links --------------------------------------------------------------------


def external_loads(page: Page, base_url: str) -> list[str]:
    """Resources the page makes the browser fetch from another origin (author content aside)."""
    host = urlsplit(base_url).netloc
    authored = inside_author_content(page)
    found: list[str] = []
    for el in elements(page):
        if id(el) in authored or el.tag == "a" or el.tag == "form":
            continue  # links and forms are followed by the reader, not loaded
        if el.tag == "link" and not FETCHING_RELS & set(el.get("rel", "").lower().split()):
            continue  # canonical, alternate, me, prev/next: never fetched by the page
        urls = [el.get(attr) for attr in LINK_ATTRS.get(el.tag, ())]
        urls += [part.split()[0] for part in (el.get("srcset") or "").split(",") if part.strip()]
        for url in urls:
            if url and urlsplit(urljoin(page.url, url)).netloc != host:
                found.append(f"{page.rel}: <{el.tag}> loads {url}")
    return found


@pytest.mark.parametrize("name", SITE_NAMES)
def test_no_resources_from_other_hosts(pages: dict[str, dict[str, Page]], name: str) -> None:
    base = EXPECTED[name].base_url
    assert [f for page in pages[name].values() for f in external_loads(page, base)] == []


def test_external_load_check_catches_trackers(pages: dict[str, dict[str, Page]],
                                              tmp_path: Path) -> None:
    good = pages["basic"]["about/index.html"].source
    for tag in ('<script src="https://cdn.example/x.js"></script>',
                '<link rel="stylesheet" href="//fonts.example/css">',
                '<img src="https://pixel.example/p.gif" alt="">',
                '<img srcset="https://cdn.example/a.png 2x" alt="">'):
        path = tmp_path / "about" / "index.html"
        path.parent.mkdir(exist_ok=True)
        path.write_text(good.replace("</main>", tag + "</main>"), encoding="utf-8")
        assert external_loads(parse_page(tmp_path, "https://blog.example/", path),
                              "https://blog.example/"), tag
    # The same image inside a post body is the author's choice.
    authored = good.replace("</main>", '<div class="e-content"><img src="https://'
                                       'photos.example/p.jpg" alt="x"></div></main>')
    path.write_text(authored, encoding="utf-8")
    assert external_loads(parse_page(tmp_path, "https://blog.example/", path),
                          "https://blog.example/") == []


def _target(public: Path, base_url: str, url: str) -> str | None:
    """The page path (under public/) a same-site URL points at, or None when it is missing."""
    path = unquote(urlsplit(url).path)
    rel = path.removeprefix(urlsplit(base_url).path)
    candidates = [rel + "index.html", rel.rstrip("/") + "/index.html"] if (
        rel == "" or rel.endswith("/")) else [rel, rel + "/index.html"]
    for candidate in candidates:
        if (public / candidate).is_file():
            return candidate
    return None


def broken_links(pages: dict[str, Page], public: Path, base_url: str) -> list[str]:
    """Every same-site URL in every page that does not lead to a built file (or fragment)."""
    base = urlsplit(base_url)
    ids = {rel: {el.get("id") for el in elements(p)} | {el.get("name") for el in elements(p)
                                                        if el.tag == "a"}
           for rel, p in pages.items()}
    broken: list[str] = []
    for page in pages.values():
        for el in elements(page):
            for attr in LINK_ATTRS.get(el.tag, ()):
                value = el.get(attr)
                if value is None or value.startswith(("mailto:", "tel:", "data:")):
                    continue
                if page.rel == "404.html" and not value.startswith(("https:", "http:", "#")):
                    # A 404 page is served at any address: a relative URL there breaks.
                    broken.append(f"404.html: <{el.tag} {attr}={value!r}> is not absolute")
                    continue
                url = urljoin(page.url, value)
                parts = urlsplit(url)
                if parts.netloc != base.netloc or not parts.path.startswith(base.path):
                    continue
                if parts.path == INTERACT_PATH:
                    continue  # the post form's action: answered by the inbox service, no file
                target = _target(public, base_url, url)
                if target is None:
                    broken.append(f"{page.rel}: <{el.tag} {attr}={value!r}> -> nothing")
                elif parts.fragment and target in ids and unquote(parts.fragment) not in ids[
                        target]:
                    broken.append(f"{page.rel}: <{el.tag} {attr}={value!r}> -> no such id")
    return broken


@pytest.mark.parametrize("name", SITE_NAMES)
def test_no_broken_internal_links(pages: dict[str, dict[str, Page]],
                                  publics: dict[str, Path], name: str) -> None:
    base = EXPECTED[name].base_url
    assert broken_links(pages[name], publics[name], base) == []
    # The checker saw real links: every post is linked from somewhere.
    linked = {urljoin(p.url, a.get("href") or "") for p in pages[name].values()
              for a in elements(p) if a.tag == "a"}
    assert {u for u in linked if "/posts/" in u}


def test_link_check_catches_broken_links(pages: dict[str, dict[str, Page]],
                                         publics: dict[str, Path]) -> None:
    site = dict(pages["basic"])
    about = site["about/index.html"]
    for tag in ('<a href="https://blog.example/posts/nope/">x</a>',
                '<a href="/missing.css">x</a>', '<a href="#no-such-id">x</a>',
                '<img src="../images/missing.svg" alt="">',
                '<a href="https://blog.example/posts/hello/#nowhere">x</a>'):
        root = html5lib.parse(about.source.replace("</main>", tag + "</main>"),
                              namespaceHTMLElements=False)
        site["about/index.html"] = Page(about.rel, about.url, about.source, root)
        assert broken_links(site, publics["basic"], "https://blog.example/"), tag
