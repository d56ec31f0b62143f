"""content.py: discovery, front matter, dates, paths, errors with file:line, cache, workers."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fedipress.config import SiteConfig
from fedipress.errors import ContentError, Problem
from fedipress.generator.content import ParseCache, discover, load_site, static_files
from fedipress.generator.markup import TOO_DEEP, render_markdown
from fedipress.model import Image, Post, Tag
from support.content import NOW, make_config, problems_of, write

FIXTURE_SITE = Path(__file__).resolve().parents[1] / "fixtures" / "content" / "site"
BERLIN_WINTER = timezone(timedelta(hours=1))
BERLIN_SUMMER = timezone(timedelta(hours=2))


@pytest.fixture
def site_config() -> SiteConfig:
    return make_config(FIXTURE_SITE)


@pytest.fixture
def posts_by_slug(site_config: SiteConfig) -> dict[str, Post]:
    site = load_site(site_config, now=NOW).site
    return {p.slug: p for p in (*site.posts, *site.pages)}


# --- discovery -------------------------------------------------------------------------------


def test_discover_finds_posts_bundles_pages_and_static(site_config: SiteConfig) -> None:
    found = {(sf.kind, sf.source): sf.bundle_files for sf in discover(site_config)}
    assert found == {
        ("post", "posts/2026-01-15-first-light.md"): (),
        ("post", "posts/2026-03-01-tomatoes/index.md"): ("img/leaf.png", "tomatoes.svg"),
        ("post", "posts/2026-04-01-a-draft.md"): (),
        ("post", "posts/2026-05-05-unpublished.md"): (),
        ("post", "posts/2026-06-01-toml.md"): (),
        ("post", "posts/2026/02/spring-notes.md"): (),
        ("post", "posts/2030-01-01-future.md"): (),
        ("post", "posts/hugo-import.md"): (),
        ("post", "posts/jekyll-import.md"): (),
        ("page", "pages/about.md"): (),
        ("page", "pages/projects/index.md"): ("diagram.svg",),
        ("static", "static/extra.txt"): (),
        ("static", "static/images/avatar.svg"): (),
    }


def test_static_files_go_to_root_and_bundle_files_beside_their_post(
    site_config: SiteConfig,
) -> None:
    content = FIXTURE_SITE / "content"
    site = load_site(site_config, now=NOW).site
    expected = [
        ("2026/03/01/tomatoes/img/leaf.png", content / "posts/2026-03-01-tomatoes/img/leaf.png"),
        ("2026/03/01/tomatoes/tomatoes.svg", content / "posts/2026-03-01-tomatoes/tomatoes.svg"),
        ("extra.txt", content / "static/extra.txt"),
        ("images/avatar.svg", content / "static/images/avatar.svg"),
        ("projects/diagram.svg", content / "pages/projects/diagram.svg"),
    ]
    dated = replace(site_config, permalink="/{year}/{month}/{day}/{slug}/")
    assert static_files(dated, load_site(dated, now=NOW).site) == expected
    assert static_files(dated) == expected  # without a site: front matter is read for paths
    assert ("posts/tomatoes/tomatoes.svg", expected[1][1]) in static_files(site_config, site)


# --- the fixture site, key by key ----------------------------------------------------------


def test_posts_are_newest_first_and_filtered(site_config: SiteConfig) -> None:
    site = load_site(site_config, now=NOW).site
    assert [p.slug for p in site.posts] == [
        "toml",
        "tomatoes",
        "spring-notes",
        "first-light",
        "jekyll-import",
        "hugo-import",
    ]
    assert [p.slug for p in site.pages] == ["about", "projects"]


def test_drafts_and_future_only_when_asked(site_config: SiteConfig) -> None:
    def slugs(drafts: bool = False, future: bool = False) -> set[str]:
        result = load_site(site_config, now=NOW, drafts=drafts, future=future)
        return {p.slug for p in result.site.posts}

    base = slugs()
    assert slugs(drafts=True) - base == {"a-draft", "unpublished"}
    assert slugs(future=True) - base == {"future"}
    drafted = {p.slug: p for p in load_site(site_config, now=NOW, drafts=True).site.posts}
    assert drafted["a-draft"].draft and drafted["unpublished"].draft
    assert not drafted["toml"].draft
    # "now" decides what is future: the day before 2030-01-01 it is hidden, after it shown.
    later = datetime(2030, 1, 2, tzinfo=UTC)
    assert "future" in {p.slug for p in load_site(site_config, now=later).site.posts}


def test_first_light_front_matter(posts_by_slug: dict[str, Post]) -> None:
    post = posts_by_slug["first-light"]
    assert post.source == "posts/2026-01-15-first-light.md"
    assert post.kind == "post"
    assert post.title == "First light"
    assert post.date == datetime(2026, 1, 15, tzinfo=BERLIN_WINTER)  # from the file name
    assert post.url == "https://alice.example/posts/first-light/"
    assert post.path == "posts/first-light/"
    assert post.tags == (
        Tag("Garden", "garden", "https://alice.example/tags/garden/"),
        Tag("Notes", "notes", "https://alice.example/tags/notes/"),
    )
    assert post.summary == "The first post of the year, & a short one."
    assert post.summary_html == "<p>The first post of the year, &amp; a short one.</p>"
    assert post.has_more
    assert post.federate is False and post.pinned is True
    assert post.lang == "de"
    assert post.mentions == ("bob@social.example",)
    assert '<a href="https://alice.example/posts/tomatoes/">tomatoes</a>' in post.html
    assert '<a href="https://alice.example/posts/spring-notes/">a sibling</a>' in post.html
    assert "<li>sow peppers<ul>" in post.html  # two-space nesting after a paragraph line
    raw = (FIXTURE_SITE / "content" / post.source).read_bytes()
    import hashlib

    assert post.content_hash == hashlib.sha256(raw).hexdigest()


def test_nested_dir_post_with_comma_tags_categories_lastmod(
    posts_by_slug: dict[str, Post],
) -> None:
    post = posts_by_slug["spring-notes"]
    assert post.title == "Spring notes: what's next"
    assert post.date == datetime(2026, 2, 10, 8, 30, tzinfo=BERLIN_WINTER)
    assert post.date.utcoffset() == timedelta(hours=1)  # naive time in config.timezone
    assert [t.name for t in post.tags] == ["garden", "planning", "Notes"]
    assert post.updated == datetime(2026, 2, 11, tzinfo=BERLIN_WINTER)
    assert post.summary == "Plans for the spring."  # description = summary
    assert post.content_warning == "long list ahead"
    assert post.federate is True  # config.fediverse.federate default
    assert post.lang == "en"
    assert '<h2 id="soil">' in post.html and "#seeds" in post.toc_html
    assert post.summary_html == "<p>Plans for the spring.</p>"


def test_bundle_post_image_and_reply(posts_by_slug: dict[str, Post]) -> None:
    post = posts_by_slug["tomatoes"]
    assert post.date == datetime(2026, 3, 1, 18, 30, tzinfo=BERLIN_SUMMER)
    assert post.image == Image(
        "https://alice.example/posts/tomatoes/tomatoes.svg",
        "Three red tomatoes",
        media_type="image/svg+xml",
    )
    assert post.images == (
        Image("https://alice.example/posts/tomatoes/img/leaf.png", "A leaf", "image/png"),
    )
    assert post.in_reply_to == "https://social.example/@bob/123"
    assert post.bundle_files == ("img/leaf.png", "tomatoes.svg")
    # The first paragraph is the image: that is the automatic summary.
    assert post.summary_html == (
        '<p><img alt="A leaf" src="https://alice.example/posts/tomatoes/img/leaf.png"></p>'
    )


def test_hugo_migration_keys(posts_by_slug: dict[str, Post]) -> None:
    post = posts_by_slug["hugo-import"]
    assert post.path == "2019/01/hugo-import/"  # `url:` overrides the permalink
    assert post.url == "https://alice.example/2019/01/hugo-import/"
    assert post.aliases == ("old/hugo-import/", "old/hugo-import.html")
    assert [t.slug for t in post.tags] == ["imports"]  # categories merged into tags
    assert dict(post.extra) == {"weight": 10, "series": "migration"}  # keywords/layout dropped
    assert post.date == datetime(2019, 1, 31, tzinfo=BERLIN_WINTER)


def test_jekyll_migration_keys(posts_by_slug: dict[str, Post]) -> None:
    post = posts_by_slug["jekyll-import"]
    assert post.date == datetime(2019, 1, 31, 9, 15, tzinfo=BERLIN_WINTER)
    assert post.path == "2019/jekyll-import/"  # `permalink:` overrides too
    assert post.summary == "Moved from Jekyll."  # excerpt = summary
    assert post.aliases == ("blog/jekyll-import/",)  # redirect_from = aliases
    assert not post.draft and dict(post.extra) == {}


def test_toml_front_matter(posts_by_slug: dict[str, Post]) -> None:
    post = posts_by_slug["toml"]
    assert post.title == "TOML front matter"
    assert post.updated == datetime(2026, 6, 2, 10, 0, tzinfo=UTC)
    assert [t.name for t in post.tags] == ["hugo"]


def test_pages_live_at_slash_slug(posts_by_slug: dict[str, Post]) -> None:
    about, projects = posts_by_slug["about"], posts_by_slug["projects"]
    assert (about.kind, about.path, about.url) == ("page", "about/", "https://alice.example/about/")
    assert projects.path == "projects/"
    assert 'src="https://alice.example/projects/diagram.svg"' in projects.html


def test_permalink_placeholders_use_local_date(tmp_path: Path) -> None:
    # 23:30 UTC on Dec 31 is already Jan 1 in Berlin: the path follows the site's clock.
    write(tmp_path, "posts/new-year.md", "---\ntitle: N\ndate: 2025-12-31T23:30:00Z\n---\nx\n")
    config = make_config(tmp_path, permalink="/{year}/{month}/{day}/{slug}/")
    (post,) = load_site(config, now=NOW).site.posts
    assert post.path == "2026/01/01/new-year/"


def test_slug_key_and_ties_broken_by_slug(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        write(tmp_path, f"posts/2026-01-01-{name}.md", f"---\ntitle: {name}\n---\n")
    write(tmp_path, "posts/x.md", "---\ntitle: X\ndate: 2026-01-01\nslug: Über Cool\n---\n")
    posts = load_site(make_config(tmp_path), now=NOW).site.posts
    assert [p.slug for p in posts] == ["a", "b", "c", "uber-cool"]


@pytest.mark.parametrize(("front", "expected"), [
    ("tags: jekyll ruby\ncategories: blog update", ["jekyll", "ruby", "blog", "update"]),
    ("tags: garden, slow food", ["garden", "slow food"]),  # commas: fedipress's own form
    ("tags: [slow food, jekyll]", ["slow food", "jekyll"]),  # a list stays a list
    ("tags: '  one  '", ["one"]),
    ('tags = "hugo  go"', ["hugo", "go"]),  # TOML text too
    ("tags: a\ncategory: Slow Food", ["a", "Slow Food"]),  # Jekyll's one category
])
def test_tags_text_is_split_as_jekyll_splits_it(tmp_path: Path, front: str,
                                                expected: list[str]) -> None:
    fence = "+++" if " = " in front else "---"
    title = 'title = "A"' if fence == "+++" else "title: A"
    write(tmp_path, "posts/2026-01-01-a.md", f"{fence}\n{title}\n{front}\n{fence}\n")
    (post,) = load_site(make_config(tmp_path), now=NOW).site.posts
    assert [t.name for t in post.tags] == expected


def test_top_level_markdown_is_a_page_and_list_texts_are_warned(tmp_path: Path) -> None:
    write(tmp_path, "about.md", "---\ntitle: About\n---\nMe.\n")
    write(tmp_path, "now/index.md", "---\ntitle: Now\n---\nNow.\n")
    write(tmp_path, "now/photo.jpg", "jpg")
    write(tmp_path, "_index.md", "---\ntitle: Home\n---\nHi.\n")
    write(tmp_path, "index.md", "---\nlayout: home\n---\n")
    write(tmp_path, "README.md", "# Notes\n\nNot a page.\n")
    write(tmp_path, "pages/docs/_index.md", "---\ntitle: Docs\n---\n")
    write(tmp_path, "_posts/2020-01-01-a.md", "---\ntitle: A\n---\n")
    write(tmp_path, "_posts/2020-01-02-b.md", "---\ntitle: B\n---\n")
    result = load_site(make_config(tmp_path), now=NOW)
    pages = {p.source: p for p in result.site.pages}
    assert sorted(pages) == ["about.md", "now/index.md"]
    assert pages["about.md"].url == "https://alice.example/about/"
    assert pages["now/index.md"].url == "https://alice.example/now/"
    assert pages["now/index.md"].bundle_files == ("photo.jpg",)
    assert result.site.posts == ()
    shown = [p.as_warning() for p in result.warnings]
    assert [w.split(": warning: ")[0] for w in shown] == [
        "content/pages/docs/_index.md:1", "content/README.md:1", "content/_index.md:1",
        "content/index.md:1", "content/_posts/"]
    assert shown[1].endswith("not published: a page here needs front matter (a --- block with"
                             " a `title:`) at its top")
    assert shown[-1].endswith("2 Markdown files are not published: posts belong in"
                              " content/posts/ and pages in content/pages/ (or directly in"
                              " content/); move them there")


def test_tag_in_non_latin_script_gets_a_stable_slug(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\ntags: [日本, 日本]\n---\n")
    (post,) = load_site(make_config(tmp_path), now=NOW).site.posts
    (tag,) = post.tags
    assert tag.slug.startswith("tag-") and tag.url == f"https://alice.example/tags/{tag.slug}/"


def test_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "content" / "posts" / "2026-01-01-win.md"
    path.parent.mkdir(parents=True)
    path.write_bytes("\ufeff---\r\ntitle: Win\r\n---\r\nHello\r\n".encode())
    (post,) = load_site(make_config(tmp_path), now=NOW).site.posts
    assert post.title == "Win" and post.html == "<p>Hello</p>"


# --- errors, each with its exact file:line -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\ntitle: A\ndate: soon\n---\n", "3: `date`: expected a date like"),
        ("---\ntitle: A\ntags: 5\n---\n", "3: `tags`: expected a list of text or a comma"),
        ("---\ntitle: A\ntags: [a, null]\n---\n", "3: `tags`: expected a list of text or a"
         " comma-separated text; item 2 is empty"),
        ("---\ntitle: A\ntags: [[x]]\n---\n", "3: `tags`: expected a list of text or a"
         " comma-separated text; item 1 is a list"),
        ("---\ntitle: A\naliases: [/a/, true]\n---\n", "3: `aliases`: expected text or a list"
         " of text; item 2 is true/false"),
        ("---\ndate: 2026-01-01\n---\n", "1: missing `title:` in the front matter"),
        ("---\ntitle: [a, b]\n---\n", "2: `title`: expected text, got a list"),
        ("---\ntitle: A\n\ndraft: maybe\n---\n", "4: `draft`: expected true or false"),
        ("---\ntitle: A\npublished: 0\n---\n", "3: `published`: expected true or false"),
        ("---\ntitle: A\nimage: {alt: x}\n---\n", "3: `image`: expected `src:`"),
        ("---\ntitle: A\nimage: 3\n---\n", "3: `image`: expected a file name"),
        ("---\ntitle: A\nimage: 'javascript:alert(1)'\n---\n",
         "3: `image`: expected a file beside the post or an http(s) URL, got 'javascript:"),
        ("---\ntitle: A\nimage: {src: 'data:image/png;base64,AA', alt: x}\n---\n",
         "3: `image`: expected a file beside the post or an http(s) URL"),
        ("---\ntitle: A\nin_reply_to: /x\n---\n", "3: `in_reply_to`: expected an absolute https"),
        (
            "---\ntitle: A\nin_reply_to: http://x.example/1\n---\n",
            "3: `in_reply_to`: expected an absolute https",
        ),
        ("---\ntitle: A\nlang: 'english!'\n---\n", "3: `lang`: expected a language tag"),
        ("---\ntitle: A\nurl: /old.html\n---\n", "3: `url`: '/old.html' must end with /"),
        ("---\ntitle: A\npermalink: /:year/:title/\n---\n", "3: `permalink`: expected a path"),
        ("---\ntitle: A\naliases: [/ok/, ../../etc/]\n---\n", "3: `aliases`: expected an old"),
        ("---\ntitle: A\nslug: '!!!'\n---\n", "3: `slug`: '!!!' has no letters"),
        ("---\ntitle: A\nupdated: someday\n---\n", "3: `updated`: expected a date"),
        ("---\ntitle: A\n  bad: indent\n---\n", "3: front matter is not valid YAML"),
        # An unclosed bracket is found only at the block's end: named on its own line.
        ("---\ntitle: A\ntags: [a, b\n---\n",
         "3: front matter is not valid YAML: the [ opened on this line is not closed with ]"),
        # Date-shaped but impossible: YAML reads them as timestamps, which then fail.
        ("---\ntitle: A\ndate: 2026-02-30\n---\n",
         "3: `date`: 2026-02-30 is not a real date or time (day is out of range for month)"),
        ("---\ntitle: A\nupdated: 2026-13-45\n---\n",
         "3: `updated`: 2026-13-45 is not a real date or time (month must be in 1..12)"),
        ("---\ntitle: A\ndate: 2026-01-31T25:00:00+00:00\n---\n",
         "3: `date`: 2026-01-31T25:00:00+00:00 is not a real date or time (hour must be"),
        ("---\ntitle: A\ndate: 2026-01-31T09:15:00+99:00\n---\n",
         "3: `date`: 2026-01-31T09:15:00+99:00 is not a real date or time (its UTC offset"),
        ("---\ntitle: A\nextra:\n  seen: [2026-01-01, 2026-02-30]\n---\n",
         "4: `extra`: 2026-02-30 is not a real date or time"),
        # Hostile YAML: keys that are collections, a value that contains itself, dates
        # that overflow when converted, a broken IPv6 host.
        ("---\ntitle: A\n[a]: x\n---\n", "3: a front matter key must be a plain name"),
        ("---\ntitle: A\n? {a: 1}\n: x\n---\n", "3: a front matter key must be a plain"),
        ("---\ntitle: A\na: &a [*a]\n---\n", "2: front matter has a value that contains"),
        ("---\ntitle: A\ndate: 9999-12-31T23:59:59-12:00\n---\n",
         "3: `date`: 9999-12-31T23:59:59-12:00 is outside the years 1000-9998"),
        ("---\ntitle: A\nupdated: 0001-01-01T00:00:00+14:00\n---\n",
         "3: `updated`: 0001-01-01T00:00:00+14:00 is outside the years"),
        ("---\ntitle: A\nin_reply_to: 'https://[::1/x'\n---\n",
         "3: `in_reply_to`: expected an absolute https"),
        ("---\ntitle: A\ntitle: B\n---\n", "3: `title` appears twice in the front matter"),
        ("---\n- a\n- b\n---\n", "2: front matter must be `key: value` lines"),
        ("---\ntitle: A\n", "1: the front matter opened with --- on line 1 is never closed"),
        ("Just text\n", "1: no front matter"),
        ('+++\ntitle = "A"\ndate = nope\n+++\n', "3: front matter is not valid TOML"),
    ],
)
def test_front_matter_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, "posts/2026-01-01-x.md", text)
    (problem,) = problems_of(tmp_path)
    assert problem.startswith("content/posts/2026-01-01-x.md:" + expected)


def test_missing_date_for_post_without_dated_name(tmp_path: Path) -> None:
    write(tmp_path, "posts/undated.md", "---\ntitle: A\n---\n")
    assert problems_of(tmp_path) == [
        "content/posts/undated.md:1: no date: add `date: 2026-01-31` to the front matter "
        "or name the file 2026-01-31-slug.md"
    ]


def test_empty_date_falls_back_to_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-05-x.md", "---\ntitle: A\ndate:\n---\n")
    (post,) = load_site(make_config(tmp_path), now=NOW).site.posts
    assert post.date == datetime(2026, 1, 5, tzinfo=BERLIN_WINTER)


def test_problems_in_one_file_come_in_line_order(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntags: 5\ntitle: A\ndraft: 1\n---\n")
    write(tmp_path, "posts/2026-01-02-b.md", "---\npinned: 2\n---\n")
    assert [p.split(": ")[0] for p in problems_of(tmp_path)] == [
        "content/posts/2026-01-01-a.md:2",
        "content/posts/2026-01-01-a.md:4",
        "content/posts/2026-01-02-b.md:1",
        "content/posts/2026-01-02-b.md:2",
    ]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "content" / "posts" / "2026-01-01-bin.md"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"---\ntitle: A\n---\nok\n\xff\n")
    assert problems_of(tmp_path) == [
        "content/posts/2026-01-01-bin.md:5: not valid UTF-8 text; save the file as UTF-8"
    ]


def test_same_output_path_is_reported_at_the_slug_line(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-hello.md", "---\ntitle: A\n---\n")
    write(tmp_path, "posts/2026-02-01-other.md", "---\ntitle: B\n\nslug: hello\n---\n")
    write(tmp_path, "pages/x.md", "---\ntitle: C\naliases: [/posts/hello/]\n---\n")
    assert problems_of(tmp_path) == [
        "content/posts/2026-02-01-other.md:4: output path posts/hello/ is also used by "
        "content/posts/2026-01-01-hello.md; give one of them a different `slug:`",
        "content/pages/x.md:1: output path posts/hello/ is also used by "
        "content/posts/2026-01-01-hello.md; give one of them a different `slug:`",
    ]


def test_all_problems_of_all_files_are_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\ndate: soon\ntags: 5\n---\n")
    write(tmp_path, "posts/2026-01-02-b.md", "---\nfoo: [\n---\n")
    write(tmp_path, "posts/2026-01-03-ok.md", "---\ntitle: Fine\n---\nok\n")
    problems = problems_of(tmp_path)
    assert [p.split(": ")[0] for p in problems] == [
        "content/posts/2026-01-01-a.md:3",
        "content/posts/2026-01-01-a.md:4",
        "content/posts/2026-01-02-b.md:2",
    ]


def test_keep_going_skips_broken_files_and_returns_problems(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\ndate: soon\n---\n")
    write(tmp_path, "posts/2026-01-03-ok.md", "---\ntitle: Fine\n---\nok\n")
    result = load_site(make_config(tmp_path), now=NOW, keep_going=True)
    assert [p.slug for p in result.site.posts] == ["ok"]
    assert result.problems == (
        Problem(
            "content/posts/2026-01-01-a.md",
            3,
            "`date`: expected a date like 2026-01-31, 2026-01-31 09:15 or "
            "2026-01-31T09:15:00+01:00, got 'soon'",
        ),
    )


def test_content_error_message_is_one_line_per_problem(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\ntags: 5\n---\n")
    write(tmp_path, "posts/b.md", "---\ntitle: B\n---\n")
    with pytest.raises(ContentError) as info:
        load_site(make_config(tmp_path), now=NOW)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and all(line.startswith("content/posts/") for line in lines)


# --- cache and workers ---------------------------------------------------------------------


def test_cache_hit_miss_and_drop_unused(tmp_path: Path) -> None:
    root = tmp_path / "site"
    shutil.copytree(FIXTURE_SITE, root)
    config = make_config(root)
    cache = ParseCache.for_site(config)
    cache.load()
    first = load_site(config, now=NOW, cache=cache)
    assert (cache.hits, cache.misses) == (0, 8)
    cache.save()
    assert (root / ".fedipress" / "cache" / ParseCache.FILE_NAME).is_file()

    again = ParseCache.for_site(config)
    again.load()
    second = load_site(config, now=NOW, cache=again)
    assert (again.hits, again.misses) == (8, 0)
    assert second.site == first.site

    # Editing one body misses only that post; removing a post drops its entry on save.
    post = root / "content" / "posts" / "jekyll-import.md"
    post.write_text(post.read_text() + "\nMore.\n")
    (root / "content" / "posts" / "hugo-import.md").unlink()
    third = ParseCache.for_site(config)
    third.load()
    load_site(config, now=NOW, cache=third)
    assert (third.hits, third.misses) == (6, 1)
    third.save()
    fourth = ParseCache.for_site(config)
    fourth.load()
    assert len(fourth) == 7


def test_front_matter_cache_edit_goes_to_a_delta_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import fedipress.generator.content as content_module

    for i in range(5):
        write(tmp_path, f"posts/2026-01-0{i + 1}-p{i}.md", f"---\ntitle: P{i}\n---\nbody {i}\n")
    config = make_config(tmp_path)
    cache = ParseCache(tmp_path / "cache")
    cache.load()
    load_site(config, now=NOW, cache=cache)
    cache.save()
    base = (tmp_path / "cache" / ParseCache.FILE_NAME).read_bytes()
    edited = write(tmp_path, "posts/2026-01-03-p2.md", "---\ntitle: P2 again\n---\nbody 2\n")
    second = ParseCache(tmp_path / "cache")
    second.load()
    load_site(config, now=NOW, cache=second)
    second.save()
    # The edit went to the delta; the base file was not rewritten.
    assert (tmp_path / "cache" / ParseCache.FILE_NAME).read_bytes() == base
    assert (tmp_path / "cache" / ParseCache.DELTA_FILE_NAME).is_file()
    parsed: list[object] = []
    real_parse = content_module._parse
    monkeypatch.setattr(content_module, "_parse",
                        lambda *a: parsed.append(a[0]) or real_parse(*a))
    third = ParseCache(tmp_path / "cache")
    third.load()
    result = load_site(config, now=NOW, cache=third)
    assert parsed == []  # base + delta: every file's front matter came from the cache
    assert "P2 again" in {p.title for p in result.site.posts}
    assert edited.is_file()


def test_long_lived_cache_keeps_only_the_last_builds_entries(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\n---\none\n")
    config = make_config(tmp_path)
    cache = ParseCache(tmp_path / "cache")
    load_site(config, now=NOW, cache=cache)
    cache.save()
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\n---\ntwo\n")
    load_site(config, now=NOW, cache=cache)
    cache.save()
    assert len(cache) == 1
    load_site(config, now=NOW, cache=cache)
    assert (cache.hits, cache.misses) == (1, 2)


def test_cache_key_depends_on_the_page_url(tmp_path: Path) -> None:
    root = tmp_path / "site"
    shutil.copytree(FIXTURE_SITE, root)
    cache = ParseCache(tmp_path / "cache")
    load_site(make_config(root), now=NOW, cache=cache)
    moved = make_config(root, base_url="https://blog.example/")
    result = load_site(moved, now=NOW, cache=cache)
    assert cache.hits == 0
    tomatoes = next(p for p in result.site.posts if p.slug == "tomatoes")
    assert 'src="https://blog.example/posts/tomatoes/img/leaf.png"' in tomatoes.html


def test_corrupt_or_old_cache_is_ignored(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path)
    (tmp_path / ParseCache.FILE_NAME).write_bytes(b"not a pickle at all")
    cache.load()
    assert len(cache) == 0
    import pickle

    (tmp_path / ParseCache.FILE_NAME).write_bytes(pickle.dumps((2, "id", {"k": ()}, {})))
    cache.load()
    assert len(cache) == 0


def test_cache_round_trips_a_rendering_exactly(tmp_path: Path) -> None:
    rendered = render_markdown(
        "# T\n\n![a](x.png) @b@c.example\n\n<!--more-->\n\nmore",
        page_url="https://a.example/p/",
        site_url="https://a.example/",
    )
    cache = ParseCache(tmp_path)
    cache.put("k", rendered)
    cache.save()
    loaded = ParseCache(tmp_path)
    loaded.load()
    assert loaded.get("k") == rendered


def test_cache_of_10000_entries_round_trips(tmp_path: Path) -> None:
    # (How fast it loads is for benchmarks/bench_build.py, not a timed test.)
    rendered = render_markdown(
        "word " * 900, page_url="https://a.example/p/", site_url="https://a.example/"
    )
    cache = ParseCache(tmp_path)
    for i in range(10_000):
        cache.put(f"{i:064x}", rendered)
    cache.save()
    loaded = ParseCache(tmp_path)
    loaded.load()
    assert len(loaded) == 10_000
    assert loaded.get(f"{0:064x}") == loaded.get(f"{9_999:064x}") == rendered


def test_workers_give_the_same_site(tmp_path: Path) -> None:
    for i in range(40):
        write(
            tmp_path,
            f"posts/2026-01-{i % 28 + 1:02d}-p{i}.md",
            f"---\ntitle: P{i}\n---\nHello @u{i}@x.example\n\n- a\n  - b\n\n"
            f"```python\nx = {i}\n```\n",
        )
    config = make_config(tmp_path)
    serial = load_site(config, now=NOW).site
    parallel = load_site(config, now=NOW, workers=2).site
    assert parallel == serial
    assert len(serial.posts) == 40


def test_markdown_is_rendered_by_workers_while_front_matter_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    import fedipress.generator.content

    for i in range(70):
        write(tmp_path, f"posts/2026-01-{i % 28 + 1:02d}-p{i}.md",
              f"---\ntitle: P{i}\n---\nText [link](../p{i + 1}/) *{i}*\n")
    write(tmp_path, "posts/2026-02-01-draft.md", "---\ntitle: D\ndraft: true\n---\nDraft\n")
    write(tmp_path, "posts/2026-02-02-later.md", "---\ntitle: L\ndate: 2027-01-01\n---\nL\n")
    config = make_config(tmp_path)
    expected = load_site(config, now=NOW).site

    in_parent: list[str] = []
    real = fedipress.generator.content.render_markdown

    def render(text: str, *, page_url: str, site_url: str) -> object:
        in_parent.append(page_url)  # a forked worker appends to its own copy
        return real(text, page_url=page_url, site_url=site_url)

    monkeypatch.setattr(fedipress.generator.content, "render_markdown", render)
    events: list[str] = []
    content_module = fedipress.generator.content
    real_parse, real_submit = content_module._parse, content_module._Renderer._submit

    def parse(*args: object) -> object:
        events.append("parse")
        return real_parse(*args)  # type: ignore[arg-type]

    def submit(self: object) -> None:
        events.append("submit")
        real_submit(self)  # type: ignore[arg-type]

    monkeypatch.setattr(fedipress.generator.content, "_parse", parse)
    monkeypatch.setattr(fedipress.generator.content._Renderer, "_submit", submit)
    site = load_site(config, now=NOW, workers=2).site
    assert site == expected
    # The first batch went to the workers while front matter was still being read.
    assert events.index("submit") < len(events) - 1 - events[::-1].index("parse")
    assert len(site.posts) == 70  # no draft, no future post
    assert in_parent == []  # every batch, the last short one too, went to the workers
    assert multiprocessing.active_children() == []

    # A broken file stops the load; the workers are stopped with it.
    write(tmp_path, "posts/zz-broken.md", "---\ntitle: [unclosed\n---\nx\n")
    with pytest.raises(ContentError):
        load_site(config, now=NOW, workers=2)
    assert multiprocessing.active_children() == []
    # A few files are rendered here, without a pool.
    assert load_site(config, now=NOW, workers=2,
                     sources=[sf for sf in discover(config)
                              if sf.kind == "post" and "p1." in sf.source]).site.posts
    assert in_parent


def test_loading_is_deterministic(site_config: SiteConfig) -> None:
    assert load_site(site_config, now=NOW) == load_site(site_config, now=NOW)


def test_parse_progress_counts_what_the_workers_rendered(tmp_path: Path) -> None:
    for i in range(70):
        write(tmp_path, f"posts/2026-01-{i % 28 + 1:02d}-p{i}.md",
              f"---\ntitle: P{i}\n---\nText {i}\n")
    write(tmp_path, "posts/2026-02-01-draft.md", "---\ntitle: D\ndraft: true\n---\nDraft\n")
    config = make_config(tmp_path)
    heard: list[tuple[int, int]] = []
    site = load_site(config, now=NOW, workers=2,
                     progress=lambda done, files: heard.append((done, files))).site
    assert len(site.posts) == 70
    assert heard and {files for _, files in heard} == {71}  # every file found, the draft too
    counts = [done for done, _ in heard]
    # Never backwards (batches finish out of order), never repeated; the draft is not rendered.
    assert counts == sorted(set(counts)) and counts[-1] == 70
    # No workers (a few files, or workers=1): loading is quick and reports nothing.
    heard.clear()
    load_site(config, now=NOW, workers=1, progress=lambda done, files: heard.append((done, files)))
    assert heard == []


def test_parse_progress_never_goes_back() -> None:
    from fedipress.generator.content import _Renderer

    heard: list[int] = []
    renderer = _Renderer(2, "https://a.example/", None, lambda _p: True, progress=heard.append)
    for count in (0, 64, 32, 64, 70):  # batches finished (64) before those collected (32)
        renderer._report(count)
    assert heard == [64, 70]


@pytest.mark.parametrize(("name", "expected"), [
    ("posts/2026-02-30-x.md", "1: the date in the file name, 2026-02-30, is not a real date"),
    ("posts/0001-01-01-x.md", "1: the date in the file name, 0001-01-01, is outside the years"),
])
def test_impossible_date_in_the_file_name_is_named(tmp_path: Path, name: str,
                                                   expected: str) -> None:
    write(tmp_path, name, "---\ntitle: A\n---\n")
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"content/{name}:{expected}")


@pytest.mark.parametrize("body", [
    "\n".join("  " * i + "- x" for i in range(500)),  # 500 nested list levels
    "*" * 20000 + "x" + "*" * 20000,  # emphasis nested 10,000 deep
], ids=["lists", "emphasis"])
def test_markdown_too_deep_to_render_is_a_problem_of_its_file(tmp_path: Path,
                                                              body: str) -> None:
    write(tmp_path, "posts/2026-01-01-deep.md", "---\ntitle: Deep\n---\n" + body + "\n")
    write(tmp_path, "posts/2026-01-02-ok.md", "---\ntitle: Fine\n---\nok\n")
    assert problems_of(tmp_path) == [
        f"content/posts/2026-01-01-deep.md: {TOO_DEEP}"]
    result = load_site(make_config(tmp_path), now=NOW, keep_going=True)
    assert [p.slug for p in result.site.posts] == ["ok"]
    # The parser of this thread still renders the next file correctly.
    assert render_markdown("*a*", page_url="https://a.example/x/",
                           site_url="https://a.example/").html == "<p><em>a</em></p>"


def test_broken_ipv6_links_are_left_as_written(tmp_path: Path) -> None:
    body = "[x](https://[::1/) and ![y](http://[fe80::1%25eth0/y.png) <a href=\"//[::1\">z</a>"
    write(tmp_path, "posts/2026-01-01-v6.md", "---\ntitle: V6\n---\n" + body + "\n")
    (post,) = load_site(make_config(tmp_path), now=NOW).site.posts
    assert 'href="https://[::1/"' in post.html
