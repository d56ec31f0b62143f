"""The default theme in a real browser: headless Chromium at 320/375/1280 px, light and dark.

A small site is rendered to a temporary directory and served from 127.0.0.1. Chromium is
driven over its DevTools pipe (`--remote-debugging-pipe`, JSON messages on fds 3 and 4, so no
extra dependency): headless windows cannot be narrower than 500 px, but device-metrics
emulation can, and media emulation switches prefers-color-scheme. Screenshots are kept in
$FEDIPRESS_SCREENSHOTS when that is set, for a human to look at.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fedipress.generator.markup import render_markdown
from fedipress.generator.render import plan_pages
from fedipress.generator.slug import slugify
from fedipress.generator.themes import make_environment, theme_static_files
from fedipress.model import Site
from support.conversation import conversations_for, thread_conversation
from support.devtools import CHROMIUM, DevTools
from support.render import make_site

pytestmark = pytest.mark.browser

PAGES = ["index.html", "posts/post-7/", "archive/", "tags/", "tags/code/", "about/", "404.html"]

# Every visible element that reaches past the viewport, except inside the boxes that are meant
# to scroll sideways (code, tables, and the header navigation on a phone).
OVERFLOW_JS = """(() => {
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > innerWidth + 0.5 || r.left < -0.5)
        && !el.closest("pre, table, .site-nav li"))
      wide.push(el.tagName.toLowerCase() + "." + el.className + " " + Math.round(r.right));
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, wide};
})()"""


# Nine pages: enough to show how the header copes with a long navigation on a phone.
PAGE_TITLES = ("About", "Now", "Projects", "Uses", "Contact", "Colophon", "Reading list",
               "Talks", "Garden log")
# A post rendered by the real Markdown pipeline: footnotes, heading anchors, and an address
# long enough to wrap in the reply box on a phone.
NOTES_SLUG = "notes-on-footnotes-and-rather-long-addresses"
NOTES_MD = """Tomatoes need warmth.[^1] They also need water, but not too much of it, and a
gardener who checks them every morning before work, whatever the weather says.[^2]

## Watering

Water at the base, never on the leaves, and water deeply rather than often. A plant that
has to reach for water grows the roots that carry it through a dry week.[^3]

[^1]: At least 10 °C at night.
[^2]: The weather is usually wrong.
[^3]: Mulch helps too.
"""


# A link as Mastodon shortens it in a post's HTML (the sanitiser keeps these span classes).
SHORTENED_LINK = (
    '<p>See <a href="https://garden.example/a/very/long/path/to/the/page" rel="nofollow noopener'
    ' ugc"><span class="invisible">https://</span><span class="ellipsis">garden.example/a/very'
    '/long</span><span class="invisible">/path/to/the/page</span></a> for more.</p>')


def build_site(root: Path, out: Path, base: str) -> Site:
    """The browser tests' site, rendered into `out` with the theme's static files."""
    site = make_site(root, base_url=base)
    about = site.pages[0]
    pages = [about] + [
        dataclasses.replace(
            about, source=f"pages/{slugify(t)}.md", slug=slugify(t), title=t,
            url=f"{base}{slugify(t)}/", path=f"{slugify(t)}/", aliases=(),
            content_hash=slugify(t),
        )
        for t in PAGE_TITLES[1:]
    ]
    url = f"{base}posts/{NOTES_SLUG}/"
    rendered = render_markdown(NOTES_MD, page_url=url, site_url=base)
    notes = dataclasses.replace(
        site.posts[-1], source=f"posts/{NOTES_SLUG}.md", slug=NOTES_SLUG,
        title="Notes on footnotes", url=url, path=f"posts/{NOTES_SLUG}/", html=rendered.html,
        summary_html=rendered.summary_html, toc_html=rendered.toc_html, aliases=(),
        date=site.posts[-1].date - timedelta(days=1), content_hash="notes",
    )
    site = dataclasses.replace(site, posts=(*site.posts, notes), pages=tuple(pages))
    env = make_environment(site.config)
    # post-7 has a conversation: a deep thread, a crowd of likes, and a name and a handle
    # with no place to break, which must wrap rather than widen a phone's page.
    conv = thread_conversation(f"{base}posts/post-7/object.json", likes=30)
    long = dataclasses.replace(conv.replies[0].author, name="W" * 80,
                               handle="averyveryverylongusername" * 3 + "@server1.example")
    conv = dataclasses.replace(conv, replies=(
        dataclasses.replace(conv.replies[0], author=long,
                            content_html="<p>" + "x" * 200 + "</p>"),
        dataclasses.replace(conv.replies[1], content_html=SHORTENED_LINK), *conv.replies[2:]))
    conversations = conversations_for(f"{base}actor.json", conv)
    for output in plan_pages(site, env, fingerprint_salt="browser", conversations=conversations):
        path = out / output.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(output.render())
    for rel, source in theme_static_files(site.config):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / rel)
    (out / "theme" / "highlight.css").write_text("/* written by the build */\n")
    (out / "images").mkdir()
    (out / "images" / "avatar.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
        '<rect width="64" height="64" fill="#f4d9c6"/>'
        '<circle cx="32" cy="26" r="12" fill="#8d5b3e"/>'
        '<ellipse cx="32" cy="60" rx="22" ry="16" fill="#2e7d32"/></svg>'
    )
    (out / "posts" / "post-7" / "cover.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630" viewBox="0 0 1200 630">'
        '<rect width="1200" height="630" fill="#2e7d32"/>'
        '<circle cx="460" cy="330" r="150" fill="#e53935"/>'
        '<circle cx="760" cy="300" r="130" fill="#d32f2f"/></svg>'
    )
    return site


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    out = tmp_path_factory.mktemp("public")
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    build_site(tmp_path_factory.mktemp("root"), out, base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture(scope="module")
def browser(served: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    devtools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield devtools
    finally:
        devtools.close()


@pytest.mark.parametrize("width", [320, 375])
@pytest.mark.parametrize("page", PAGES)
def test_no_horizontal_overflow_on_phones(
    served: str, browser: DevTools, page: str, width: int
) -> None:
    browser.open(served + page, width, dark=False)
    layout = browser.evaluate(OVERFLOW_JS)
    assert layout["innerWidth"] == width
    assert layout["scrollWidth"] <= width, layout
    assert layout["wide"] == [], layout


def test_code_and_tables_scroll_inside_themselves(served: str, browser: DevTools) -> None:
    browser.open(served + "posts/post-7/", 320, dark=False)
    widths = browser.evaluate(
        "[...document.querySelectorAll('.prose pre, .prose table')]"
        ".map(e => [e.clientWidth, e.scrollWidth, getComputedStyle(e).overflowX])"
    )
    assert widths and all(client <= 320 for client, _, _ in widths)
    assert any(scroll > client for client, scroll, _ in widths)  # the fixture is wide enough
    assert all(overflow == "auto" for _, _, overflow in widths)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_colour_scheme_follows_preference(served: str, browser: DevTools, dark: bool) -> None:
    browser.open(served, 1280, dark=dark)
    bg = browser.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == ("rgb(22, 24, 28)" if dark else "rgb(251, 250, 247)")


def test_measure_is_readable_on_desktop(served: str, browser: DevTools) -> None:
    browser.open(served + "posts/post-7/", 1280, dark=False)
    style = browser.evaluate(
        "(() => { const p = document.querySelector('.prose p'); const s = getComputedStyle(p);"
        " return [p.getBoundingClientRect().width, parseFloat(s.fontSize),"
        " parseFloat(s.lineHeight)]; })()"
    )
    width, font_size, line_height = style
    assert 45 <= width / (font_size * 0.5) <= 85  # ~65 characters (a char is ~0.5em)
    assert 1.5 <= line_height / font_size <= 1.7


SUBMIT_JS = """((value) => {
  const form = document.querySelector("form.follow-form");
  form.querySelector("input[type=text]").value = value;
  let sent = null;
  // Runs after the theme's own listener; stops the (off-machine) navigation and records it.
  const spy = (event) => {
    if (!event.defaultPrevented) sent = form.action + "?" + new URLSearchParams(new FormData(form));
    event.preventDefault();
  };
  form.addEventListener("submit", spy);
  form.requestSubmit();
  form.removeEventListener("submit", spy);
  const error = form.querySelector(".follow-error");
  return {sent, error: error.hidden ? null : error.textContent};
})"""


@pytest.mark.parametrize(
    "typed", ["social.example", " https://Social.Example/about ", "@me@social.example"]
)
def test_follow_form_goes_to_the_readers_server(served: str, browser: DevTools, typed: str) -> None:
    browser.open(served, 375, dark=False)
    assert browser.evaluate("document.querySelector('form.follow-form').hidden") is False
    result = browser.evaluate(f"{SUBMIT_JS}({json.dumps(typed)})")
    acct = "acct%3Aalice%40127.0.0.1%3A" + served.rsplit(":", 1)[1].strip("/")
    assert result == {
        "sent": f"https://social.example/authorize_interaction?uri={acct}",
        "error": None,
    }


def test_follow_form_rejects_nonsense(served: str, browser: DevTools) -> None:
    browser.open(served, 375, dark=False)
    result = browser.evaluate(f"{SUBMIT_JS}('not a server')")
    assert result["sent"] is None
    assert "like mastodon.social" in result["error"]


def test_skip_link_becomes_visible_on_focus(served: str, browser: DevTools) -> None:
    browser.open(served, 1280, dark=False)
    top = browser.evaluate(
        "(() => { const a = document.querySelector('.skip-link'); a.focus();"
        " return a.getBoundingClientRect().top; })()"
    )
    assert top >= 0


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("page", ["index.html", "posts/post-7/"])
def test_screenshots(
    served: str, browser: DevTools, tmp_path: Path, page: str, width: int, dark: bool
) -> None:
    keep = os.environ.get("FEDIPRESS_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    name = page.strip("/").replace("/", "-").replace(".html", "") or "index"
    shot = folder / f"{name}-{width}-{'dark' if dark else 'light'}.png"
    browser.open(served + page, width, dark)
    browser.screenshot(shot, width)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000  # a real, non-blank image


# --- theme polish: each of these failed before the fix it names -------------------------------

BOTH = pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
WIDTHS = pytest.mark.parametrize("width", [375, 1280])
NOTES = f"posts/{NOTES_SLUG}/"


@BOTH
@WIDTHS
def test_footer_reaches_the_bottom_of_a_short_page(
    served: str, browser: DevTools, width: int, dark: bool
) -> None:
    # 1,400 px tall: the 404 page's content and footer take far less.
    browser.open(served + "404.html", width, dark, height=1400)
    box = browser.evaluate(
        "(() => { const f = document.querySelector('.site-footer').getBoundingClientRect();"
        " const m = document.querySelector('main').getBoundingClientRect();"
        " return {bottom: f.bottom, top: f.top, main: m.bottom,"
        " scroll: document.documentElement.scrollHeight}; })()"
    )
    assert abs(box["bottom"] - 1400) <= 1, box
    assert box["scroll"] <= 1400, box  # and no scrolling to get there
    assert box["top"] >= box["main"], box


@BOTH
@WIDTHS
def test_footer_follows_the_content_of_a_long_page(
    served: str, browser: DevTools, width: int, dark: bool
) -> None:
    browser.open(served + "posts/post-7/", width, dark)
    box = browser.evaluate(
        "(() => { const f = document.querySelector('.site-footer').getBoundingClientRect();"
        " const m = document.querySelector('main').getBoundingClientRect();"
        " return [f.top, m.bottom, f.bottom + scrollY,"
        " document.documentElement.scrollHeight]; })()"
    )
    footer_top, main_bottom, footer_bottom, height = box
    assert footer_top >= main_bottom and abs(footer_bottom - height) <= 1, box


NAV_JS = """(() => {
  const nav = document.querySelector(".site-nav");
  const ul = nav.querySelector("ul");
  const links = [...nav.querySelectorAll("a")];
  const row = links[0].getBoundingClientRect().height;
  return {height: nav.getBoundingClientRect().height, row, count: links.length,
          scrollable: ul.scrollWidth > ul.clientWidth, overflow: getComputedStyle(ul).overflowX,
          header: document.querySelector(".site-header").getBoundingClientRect().height};
})()"""


@BOTH
@WIDTHS
def test_nine_pages_keep_the_navigation_to_two_rows(
    served: str, browser: DevTools, width: int, dark: bool
) -> None:
    browser.open(served, width, dark)
    nav = browser.evaluate(NAV_JS)
    assert nav["count"] == len(PAGE_TITLES) + 3  # the pages, Archive, Tags, Follow
    assert nav["height"] <= 2 * nav["row"] + 4, nav
    if width == 375:
        # One row that scrolls sideways rather than four rows of links.
        assert nav["height"] <= nav["row"] + 1 and nav["scrollable"], nav
        assert nav["overflow"] == "auto"


def test_every_link_of_a_scrolling_navigation_is_reachable_by_keyboard(
    served: str, browser: DevTools
) -> None:
    browser.open(served, 375, dark=False)
    last = browser.evaluate(
        "(() => { const a = [...document.querySelectorAll('.site-nav a')].at(-2);"
        " const before = a.getBoundingClientRect().right; a.focus();"
        " const r = a.getBoundingClientRect();"
        " return [before, r.left, r.right, innerWidth, a.textContent]; })()"
    )
    before, left, right, width, text = last
    assert text == "Tags"
    assert before > width  # out of sight at first,
    assert 0 <= left and right <= width, last  # scrolled into view when focused


@pytest.mark.parametrize("page", ["uses/", "about/", "talks/"])
def test_a_scrolling_navigation_shows_the_current_page(
    served: str, browser: DevTools, page: str
) -> None:
    browser.open(served + page, 375, dark=False)
    box = browser.evaluate(
        "(() => { const a = document.querySelector('.site-nav [aria-current]');"
        " const r = a.getBoundingClientRect(); return [r.left, r.right, innerWidth, scrollY,"
        " a.textContent]; })()"
    )
    left, right, width, scrolled, text = box
    assert text.lower() == page.strip("/") and 0 <= left and right <= width, box
    assert scrolled == 0  # the page itself stays where it was


def test_links_are_ordered_by_title_without_weights(served: str, browser: DevTools) -> None:
    browser.open(served, 1280, dark=False)
    texts = browser.evaluate(
        "[...document.querySelectorAll('.site-nav a')].map(a => a.textContent)"
    )
    assert texts == [*sorted(PAGE_TITLES), "Archive", "Tags", "Follow"]


LINES_JS = """(() => {
  // The lines of the first paragraph with a footnote marker: each text fragment's box, by
  // line, outside the markers.
  const p = [...document.querySelectorAll(".prose p")].find(p => p.querySelector("sup"));
  const tops = new Set();
  const walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("sup")) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) tops.add(Math.round(r.top));
  }
  const sup = p.querySelector("sup").getBoundingClientRect();
  const before = p.querySelector("sup").previousSibling;
  const range = document.createRange();
  range.selectNodeContents(before);
  const text = [...range.getClientRects()].at(-1);
  return {lines: [...tops].sort((a, b) => a - b), height: p.getBoundingClientRect().height,
          lineHeight: parseFloat(getComputedStyle(p).lineHeight),
          supTop: sup.top, textTop: text.top, supBottom: sup.bottom, textBottom: text.bottom};
})()"""


@BOTH
@WIDTHS
def test_footnote_markers_do_not_push_lines_apart(
    served: str, browser: DevTools, width: int, dark: bool
) -> None:
    browser.open(served + NOTES, width, dark)
    m = browser.evaluate(LINES_JS)
    lines = m["lines"]
    assert len(lines) >= 2, m  # the paragraph wraps: its lines can be compared
    gaps = [b - a for a, b in zip(lines, lines[1:], strict=False)]
    assert all(abs(gap - m["lineHeight"]) <= 1 for gap in gaps), m  # each line as tall as the rest
    assert abs(m["height"] - len(lines) * m["lineHeight"]) <= 1, m
    assert m["supTop"] < m["textTop"] and m["supBottom"] < m["textBottom"], m  # still raised


ANCHOR_JS = """(() => {
  const a = document.querySelector(".prose h2 a.headerlink");
  const r = a.closest("h2").getBoundingClientRect();
  return {opacity: getComputedStyle(a).opacity, x: r.left + 10, y: r.top + r.height / 2,
          tabbable: a.tabIndex >= 0 && getComputedStyle(a).visibility === "visible"
            && getComputedStyle(a).display !== "none"};
})()"""


def _opacity(browser: DevTools) -> float:
    return float(browser.evaluate(
        "getComputedStyle(document.querySelector('.prose h2 a.headerlink')).opacity"
    ))


@BOTH
def test_heading_anchor_shows_on_hover_and_keyboard_focus_only(
    served: str, browser: DevTools, dark: bool
) -> None:
    browser.open(served + NOTES, 1280, dark)
    assert browser.evaluate("matchMedia('(hover: hover)').matches") is True
    anchor = browser.evaluate(ANCHOR_JS)
    assert float(anchor["opacity"]) == 0 and anchor["tabbable"], anchor
    browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=anchor["x"], y=anchor["y"])
    assert _opacity(browser) == 1
    browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=5, y=5)
    assert _opacity(browser) == 0
    browser.evaluate("document.querySelector('.prose h2 a.headerlink').focus()")
    assert _opacity(browser) == 1
    browser.evaluate("document.activeElement.blur()")
    assert _opacity(browser) == 0


def test_heading_anchor_stays_faintly_visible_on_touch_screens(
    served: str, browser: DevTools
) -> None:
    browser.open(served + NOTES, 375, dark=False)
    assert browser.evaluate("matchMedia('(hover: none)').matches") is True
    assert 0.4 <= _opacity(browser) < 1


BREAKS_JS = """(() => {
  // Where the reply box's address wraps: the characters on either side of each line break.
  const code = document.querySelector(".replies .post-address");
  const chars = [];
  const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      chars.push([node.data[i], range.getBoundingClientRect().top]);
    }
  }
  const breaks = [];
  for (let i = 1; i < chars.length; i++)
    if (chars[i][1] > chars[i - 1][1] + 2) breaks.push(chars[i - 1][0] + chars[i][0]);
  const box = code.getBoundingClientRect();
  return {text: code.textContent, breaks, right: box.right, inner: innerWidth};
})()"""


@BOTH
@pytest.mark.parametrize("width", [320, 375])
def test_reply_address_wraps_between_its_parts_not_mid_word(
    served: str, browser: DevTools, width: int, dark: bool
) -> None:
    browser.open(served + NOTES, width, dark)
    found = browser.evaluate(BREAKS_JS)
    assert found["text"] == f"{served}{NOTES}"  # <wbr> adds nothing to what is copied
    assert found["breaks"], found  # long enough to wrap here
    for pair in found["breaks"]:
        assert pair[0] in "/-", found  # after a "/" or a hyphen, never inside a word
    assert found["right"] <= found["inner"]


ROWS_JS = """((selector) => {
  const row = document.querySelector(selector);
  const button = row.querySelector("button.copy");
  const field = row.querySelector("code");
  const b = button.getBoundingClientRect(), f = field.getBoundingClientRect();
  return {hidden: button.hidden, field: [f.top, f.height, f.right],
          button: [b.top, b.height, b.left]};
})"""


@BOTH
@WIDTHS
@pytest.mark.parametrize("row", [".site-footer .handle-row", ".replies .handle-row"])
def test_copy_button_is_as_tall_as_its_field(
    served: str, browser: DevTools, width: int, dark: bool, row: str
) -> None:
    browser.open(served + NOTES, width, dark)
    box = browser.evaluate(f"{ROWS_JS}({json.dumps(row)})")
    assert box["hidden"] is False  # the clipboard is there (127.0.0.1 is a secure context)
    (f_top, f_height, f_right), (b_top, b_height, b_left) = box["field"], box["button"]
    if row.startswith(".replies") and width < 800:
        # A long address takes the whole width on a phone; its button goes below it.
        assert b_top >= f_top + f_height, box
        return
    assert abs(b_top - f_top) <= 1 and b_left > f_right, box  # side by side
    assert abs(b_height - f_height) <= 1, box


@WIDTHS
def test_a_tag_page_leaves_out_its_own_tag_chip(
    served: str, browser: DevTools, width: int
) -> None:
    chips_js = ("[...document.querySelectorAll('.post-list .summary')].map(s =>"
                " [...s.querySelectorAll('.tag-list a')].map(a => a.textContent))")
    browser.open(served + "tags/code/", width, dark=False)
    on_tag_page = browser.evaluate(chips_js)
    assert on_tag_page and all(chips == ["#garden"] for chips in on_tag_page), on_tag_page
    browser.open(served, width, dark=False)
    on_home = browser.evaluate(chips_js)
    assert ["#garden", "#Code"] in on_home  # elsewhere every tag is shown


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_conversation_fits_a_phone(served: str, browser: DevTools, dark: bool) -> None:
    """(The overflow test above covers its width; this shows it is there, in both schemes.)"""
    browser.open(served + "posts/post-7/", 320, dark=dark)
    shown = browser.evaluate(
        "(() => { const s = document.querySelector('.conversation');"
        " const r = s.getBoundingClientRect();"
        " return [document.querySelectorAll('.conversation .reply').length,"
        " document.querySelectorAll('.conversation .face').length, Math.round(r.right),"
        " getComputedStyle(s.querySelector('.reply-content')).color,"
        " getComputedStyle(document.body).color]; })()")
    replies, faces, right, text, body = shown
    assert (replies, faces) == (6, 12 + 1 + 1)
    assert right <= 320
    assert text == body  # reply text in the page's own colour, light or dark


def test_shortened_links_in_replies_read_as_mastodon_shows_them(
        served: str, browser: DevTools) -> None:
    """`.invisible` parts take no room and show nothing; `.ellipsis` ends with "…"; the whole
    address is still in the text (copying it gives the full link)."""
    browser.open(served + "posts/post-7/", 375, dark=False)
    found = browser.evaluate(
        "(() => { const a = [...document.querySelectorAll('.reply-content a')]"
        ".find(a => a.querySelector('.ellipsis'));"
        " const hidden = [...a.querySelectorAll('.invisible')].map(s => {"
        " const r = s.getBoundingClientRect(); return [r.width, r.height,"
        " getComputedStyle(s).fontSize]; });"
        " const e = a.querySelector('.ellipsis');"
        " return {hidden, after: getComputedStyle(e, '::after').content,"
        " text: a.textContent, width: a.getBoundingClientRect().width,"
        " shown: e.getBoundingClientRect().width}; })()")
    assert found["hidden"] == [[0, 0, "0px"], [0, 0, "0px"]], found
    assert found["after"] == '"…"'
    assert found["text"] == "https://garden.example/a/very/long/path/to/the/page"
    assert found["width"] == found["shown"] > 0  # the link is the shown part and its "…"


def test_live_comments_load_no_remote_avatar_when_avatars_are_cached(
        browser: DevTools, tmp_path: Path) -> None:
    """With `fediverse.cache_avatars` the page references local copies only; a reply the live
    script adds must not make the reader's browser fetch its author's server's avatar."""
    import jinja2

    post = "https://blog.example/posts/a/object.json"
    reply = {"id": "https://r.example/notes/1", "in_reply_to": post,
             "published": "2026-05-01T10:00:00Z", "content_html": "<p>Live one</p>",
             "author": {"id": "https://r.example/users/u", "name": "U", "handle": "u@r.example",
                        "avatar": "https://127.0.0.1:1/u.png"}}
    (tmp_path / "live.json").write_text(json.dumps({"format": 1, "actor": "", "objects": {
        post: {"replies": [reply], "likes": [], "boosts": [], "quotes": []}}}))
    templates = Path(__file__).resolve().parents[2] / "src/fedipress/generator/themes/default"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates / "templates"),
                             autoescape=True)

    def partial(cached: bool) -> str:
        config = {"fediverse": {"comments_live": "/live.json", "cache_avatars": cached}}
        return env.get_template("partials/comments_live.html").render(
            config=config, meta={"activity_json": post})

    remote_box = partial(False).split("<script>")[0].replace("comments-live-title", "t2")
    (tmp_path / "page.html").write_text(
        f"<!doctype html><html><body><div id=remote>{remote_box}</div>"
        f"<div id=cached>{partial(True)}</div></body></html>")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.open(f"http://127.0.0.1:{server.server_address[1]}/page.html", 1024, dark=False)
        count = "document.querySelectorAll('.comments-live-reply').length"
        for _ in range(100):
            if browser.evaluate(count) == 2:
                break
            time.sleep(0.05)
        found = browser.evaluate(
            "['remote', 'cached'].map(id => [document.querySelector('#' + id +"
            " ' .comments-live-reply') !== null, [...document.querySelectorAll('#' + id +"
            " ' img')].map(i => i.getAttribute('src'))])")
    finally:
        server.shutdown()
        server.server_close()
    assert found == [[True, ["https://127.0.0.1:1/u.png"]], [True, []]]
