"""The fixture sites built for feed and HTML validity checks, and what each must contain.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fedipress.generator.build import build_site
from support.build import copy_site, load

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TRICKY_SITE_YAML = """\
title: "Ünïcødé & <Friends> ]]>"
base_url: https://tricky.example/blog/
description: "Notes & <things> ]]> — ça va?"
language: en
timezone: UTC
posts_per_page: 3
author:
  name: "Zoë O'Brien & Co"
  handle: zoe
  avatar: /images/avatar.svg
  bio: "Writes *markup* & tests"
feeds:
  items: 20
  full_content: true
fediverse:
  display_name: "Zoë & friends"
"""
# The title carries a YAML-escaped control character; the body carries raw ones (C0 and DEL),
# which XML 1.0 cannot represent at all and HTML calls parse errors.
TRICKY_POSTS = {
    "2026-01-01-unicode.md": (
        '---\ntitle: "日本語 & <b>not bold</b> ]]> \\u00e9\\x01"\n'
        "date: 2026-01-01T10:00:00+09:00\n"
        'tags: [open source, "C & C++", Ünïcødé]\n'
        'summary: "A summary with & and <angle> ]]> brackets"\n---\n'
        "Body with control chars: \x01\x02\x0b\x7f end.\n\n"
        "Emoji 🎉 and ]]> and & ampersands and `<code>` and a\tTab.\n\n"
        "```\nif a < b && c > d: ]]>\n```\n"
    ),
    "2026-01-02-nosummary.md": (
        "---\ntitle: No summary here\ndate: 2026-01-02T10:00:00Z\n---\n"
        "Just one paragraph, see [the first](../unicode/) and ![a picture](/images/avatar.svg).\n"
    ),
    "2026-01-03-cw.md": (
        "---\ntitle: Spoilers ahead\ndate: 2026-01-03T10:00:00-05:00\ntags: [open source]\n"
        "content_warning: 'Film <spoilers> & plot'\n---\n"
        "The butler did it.\n\n<!--more-->\n\nMore text after the fold.\n"
    ),
    "2026-01-04-reply.md": (
        "---\ntitle: A reply\ndate: 2026-01-04T10:00:00Z\nupdated: 2026-01-05T11:30:00Z\n"
        "in_reply_to: https://remote.example/notes/1\nlang: pt-BR\n"
        "aliases: [2019/05/old-reply/]\n---\n"
        "Olá! Concordo.\n\n## A heading inside the body\n\nText.\n"
    ),
}


@dataclass(frozen=True)
class Expected:
    """What an independent reader must find in a site's feeds (written by hand, not computed)."""

    base_url: str
    titles: tuple[str, ...]  # newest first
    published: tuple[datetime, ...]  # same order, in UTC
    tags: dict[str, int]  # tag slug -> number of posts
    full_text: dict[str, str]  # post URL path -> text found only in the full content


EXPECTED = {
    "basic": Expected(
        base_url="https://blog.example/",
        titles=("Watching files", "Tomatoes & peppers", "Hello, fediverse"),
        published=(datetime(2026, 11, 1, 11, 0, tzinfo=UTC),
                   datetime(2026, 10, 2, 16, 30, tzinfo=UTC),
                   datetime(2026, 9, 14, 7, 0, tzinfo=UTC)),
        tags={"code": 1, "fediverse": 1, "garden": 2, "meta": 1},
        full_text={"posts/tomatoes/": "A tomato", "posts/hello/": "about page"},
    ),
    "tricky": Expected(
        base_url="https://tricky.example/blog/",
        titles=("A reply", "Spoilers ahead", "No summary here",
                "日本語 & <b>not bold</b> ]]> é"),
        published=(datetime(2026, 1, 4, 10, 0, tzinfo=UTC),
                   datetime(2026, 1, 3, 15, 0, tzinfo=UTC),
                   datetime(2026, 1, 2, 10, 0, tzinfo=UTC),
                   datetime(2026, 1, 1, 1, 0, tzinfo=UTC)),
        tags={"c-c": 1, "open-source": 2, "unicode": 1},
        full_text={"posts/cw/": "More text after the fold.", "posts/reply/": "Text.",
                   "posts/unicode/": "ampersands"},
    ),
}


def make_tricky_site(dest: Path) -> Path:
    """The basic fixture site (for its keys, avatar and page) with tricky config and posts."""
    site = copy_site("basic", dest)
    (site / "site.yaml").write_text(TRICKY_SITE_YAML, encoding="utf-8")
    posts = site / "content" / "posts"
    shutil.rmtree(posts)
    posts.mkdir()
    for name, text in TRICKY_POSTS.items():
        (posts / name).write_text(text, encoding="utf-8")
    return site


def build_fixture_site(name: str, dest: Path) -> Path:
    """Build site `name` ("basic" or "tricky") under `dest`; return its public/ folder."""
    site = make_tricky_site(dest) if name == "tricky" else copy_site(name, dest)
    result = build_site(load(site), now=NOW, log=lambda _line: None)
    assert result.problems == ()
    return site / "public"


SITE_NAMES = tuple(EXPECTED)
