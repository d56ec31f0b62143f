"""Deterministic benchmark corpus: a complete fedipress site with N generated posts.

    python benchmarks/corpus.py --posts 1000 --out /tmp/corpus-1k [--seed 1] [--pelican DIR]

Each post has 600-1,200 words in paragraphs, two to five `##`/`###` headings, a bulleted or
numbered list, inline links (to other posts and to outside sites), and a third of the posts
have a fenced, highlighted code block. Tags come from a pool of 50. The same --posts and
--seed always give byte-identical files (random.Random(seed), fixed dates), so runs on
different days and machines build the same site.

The actor's public key is the committed test key (tests/fixtures/keys/blog-public.pem): the
build only needs the public half and this keeps the corpus deterministic and fast to make.

`--pelican DIR` also writes the same posts in Pelican's Markdown metadata format, for a
same-machine comparison (bench_build.py --pelican), with two settings files: pelicanconf.py
asks Pelican for what fedipress makes of the corpus (the same Markdown extensions and
feeds); pelicanconf-defaults.py keeps Pelican's Markdown defaults and one feed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["Post", "generate_posts", "write_pelican", "write_pelican_confs", "write_site"]

REPO = Path(__file__).resolve().parent.parent
TEST_PUBLIC_KEY = REPO / "tests" / "fixtures" / "keys" / "blog-public.pem"
BASE_URL = "https://bench.example/"
START = datetime(2015, 1, 1, 8, 0, tzinfo=UTC)

# A small vocabulary keeps the text plausible for Markdown and Pygments without mattering
# for speed: what costs time is the structure (blocks, inline markup, code), not the words.
WORDS = """garden tomato compost seed soil rain morning window bread coffee river bridge city
server protocol follower timeline message network static site feed build page template cache
kernel thread process memory signal socket packet header request response latency queue worker
the a of and to in is it that for on with as was at by this from be or have an are not but
little quiet early late bright slow careful simple honest patient small warm green old new
write read think plant water wait listen walk cook measure compare repair notice remember""".split()
LINK_HOSTS = ["example.org", "docs.example.net", "blog.example.com", "wiki.example.org"]
LANGS = ["python", "javascript", "rust", "go", "bash", "sql", "yaml", "c"]
CODE = {
    "python": 'def greet(name: str) -> str:\n    """Say hello."""\n    return f"Hello, {name}!"\n\n'
              'for i in range({n}):\n    print(greet("reader"), i * {n})\n',
    "javascript": "const items = [{n}, 2, 3];\nfunction total(xs) {\n  return xs.reduce("
                  "(a, b) => a + b, 0);\n}\nconsole.log(`sum: ${total(items)}`);\n",
    "rust": 'fn main() {\n    let v: Vec<u32> = (0..{n}).collect();\n    let s: u32 = v.iter()'
            '.sum();\n    println!("sum = {}", s);\n}\n',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfor i := 0; i < {n}; i++ {\n\t\t'
          'fmt.Println("tick", i)\n\t}\n}\n',
    "bash": '#!/bin/sh\nset -eu\nfor f in *.md; do\n  echo "building $f"  # {n}\ndone\n'
            'fedipress build --quiet\n',
    "sql": "SELECT actor, count(*) AS n\nFROM followers\nWHERE inbox LIKE 'https://%'\n"
           "GROUP BY actor\nHAVING n > {n}\nORDER BY n DESC;\n",
    "yaml": "title: My blog\nbase_url: https://example.com/\nposts_per_page: {n}\nfeeds:\n"
            "  items: 20\n  full_content: true\n",
    "c": '#include <stdio.h>\n\nint main(void) {\n    for (int i = 0; i < {n}; i++)\n'
         '        printf("%d\\n", i);\n    return 0;\n}\n',
}
TAG_POOL = [f"topic-{i:02d}" for i in range(50)]


class Post:
    """One generated post (plain attributes; this module must not import fedipress)."""

    __slots__ = ("body", "date", "slug", "tags", "title")

    def __init__(self, slug: str, title: str, date: datetime, tags: list[str],
                 body: str) -> None:
        self.slug, self.title, self.date, self.tags, self.body = slug, title, date, tags, body


def _sentence(rng: random.Random, words: int) -> str:
    ws = [rng.choice(WORDS) for _ in range(words)]
    ws[0] = ws[0].capitalize()
    return " ".join(ws) + rng.choice(".........?!")


def _inline(rng: random.Random, text: str, slugs: list[str]) -> str:
    """Sprinkle emphasis, code spans and links over a paragraph's words."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(words))
        kind = rng.random()
        if kind < 0.3:
            words[i] = f"*{words[i]}*"
        elif kind < 0.5:
            words[i] = f"**{words[i]}**"
        elif kind < 0.65:
            words[i] = f"`{words[i]}`"
        elif kind < 0.85 and slugs:
            words[i] = f"[{words[i]}](/posts/{rng.choice(slugs)}/)"
        else:
            words[i] = f"[{words[i]}](https://{rng.choice(LINK_HOSTS)}/{rng.randint(1, 999)})"
    return " ".join(words)


def _body(rng: random.Random, index: int, slugs: list[str], code: bool) -> str:
    target = rng.randint(600, 1200)
    blocks: list[str] = []
    words = 0
    headings = rng.randint(2, 5)
    heading_every = max(1, target // (headings + 1))
    next_heading = heading_every
    list_done = code_done = False
    while words < target:
        if words >= next_heading and headings:
            level = "##" if rng.random() < 0.7 else "###"
            blocks.append(f"{level} {_sentence(rng, rng.randint(2, 5))[:-1]}")
            headings -= 1
            next_heading += heading_every
        if not list_done and words > target // 3:
            marker = "-" if rng.random() < 0.6 else "1."
            items = []
            for _ in range(rng.randint(3, 6)):
                n = rng.randint(4, 12)
                items.append(f"{marker} {_inline(rng, _sentence(rng, n), slugs)}")
                words += n
            blocks.append("\n".join(items))
            list_done = True
            continue
        if code and not code_done and words > target // 2:
            lang = rng.choice(LANGS)
            snippet = CODE[lang].replace("{n}", str(rng.randint(2, 99)))
            blocks.append(f"```{lang}\n{snippet}```")
            code_done = True
            continue
        sentences = []
        for _ in range(rng.randint(3, 6)):
            n = rng.randint(6, 18)
            sentences.append(_sentence(rng, n))
            words += n
        blocks.append(_inline(rng, " ".join(sentences), slugs))
        if len(blocks) == 2:
            blocks.append("<!--more-->")
    return "\n\n".join(blocks) + "\n"


def generate_posts(count: int, seed: int = 1) -> list[Post]:
    """`count` posts, oldest first, one every ~9 hours from 2015-01-01 (UTC)."""
    rng = random.Random(seed)
    posts: list[Post] = []
    slugs: list[str] = []
    when = START
    for i in range(count):
        title = _sentence(rng, rng.randint(3, 7))[:-1]
        slug = f"post-{i:05d}-" + "-".join(title.lower().split()[:3])
        tags = sorted(rng.sample(TAG_POOL, rng.randint(1, 4)))
        code = i % 3 == 0  # exactly a third (rounded up) have a code block
        body = _body(rng, i, slugs[-50:], code)
        posts.append(Post(slug, title, when, tags, body))
        slugs.append(slug)
        when += timedelta(hours=rng.randint(4, 14), minutes=rng.randint(0, 59))
    return posts


SITE_YAML = """\
# Benchmark corpus ({count} posts, seed {seed}); generated by benchmarks/corpus.py.
title: Benchmark Blog
base_url: {base_url}
description: A generated blog for measuring build speed.
language: en
timezone: UTC
permalink: /posts/{{slug}}/
posts_per_page: 10

author:
  name: Bench Mark
  handle: bench
  bio: A generated author.

feeds:
  items: 20
  full_content: true

fediverse:
  post_type: note
  note_content: full
"""


def _front_matter(post: Post) -> str:
    tags = ", ".join(post.tags)
    title = post.title.replace('"', "'")
    return (f'---\ntitle: "{title}"\ndate: {post.date.isoformat()}\nslug: {post.slug}\n'
            f"tags: [{tags}]\n---\n")


def write_site(out: Path, posts: list[Post], *, seed: int = 1) -> None:
    """Write site.yaml, the public key, content/posts/*.md and one page into `out`."""
    posts_dir = out / "content" / "posts"
    posts_dir.mkdir(parents=True, exist_ok=True)
    (out / "content" / "pages").mkdir(parents=True, exist_ok=True)
    (out / "site.yaml").write_text(
        SITE_YAML.format(count=len(posts), seed=seed, base_url=BASE_URL), encoding="utf-8")
    shutil.copyfile(TEST_PUBLIC_KEY, out / "fedipress-public-key.pem")
    (out / "content" / "pages" / "about.md").write_text(
        "---\ntitle: About\n---\nThis blog was generated for benchmarks.\n", encoding="utf-8")
    for post in posts:
        name = f"{post.date:%Y-%m-%d}-{post.slug}.md"
        (posts_dir / name).write_text(_front_matter(post) + "\n" + post.body, encoding="utf-8")


PELICAN_BASE = """\
# Generated by benchmarks/corpus.py: the fedipress benchmark corpus for Pelican.
AUTHOR = "Bench Mark"
SITENAME = "Benchmark Blog"
SITEURL = ""
PATH = "content"
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
DEFAULT_PAGINATION = 10
ARTICLE_URL = "posts/{slug}/"
ARTICLE_SAVE_AS = "posts/{slug}/index.html"
FEED_ALL_ATOM = "feed.xml"
CATEGORY_FEED_ATOM = None
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
LOAD_CONTENT_CACHE = False
"""

# What fedipress makes of the corpus, asked of Pelican: the same Markdown extensions (its
# `extra` is fenced code, tables, footnotes, attribute lists, definition lists, abbreviations
# and md_in_html), a table of contents with heading permalinks, smart punctuation, and the
# same feeds (site-wide Atom and RSS, Atom and RSS per tag, 20 full-content entries each).
PELICAN_CONF = PELICAN_BASE + """\
# The same work as fedipress's build of this corpus (site.yaml above; fedipress.generator.markup).
FEED_ALL_RSS = "rss.xml"
TAG_FEED_ATOM = "tags/{slug}/feed.xml"
TAG_FEED_RSS = "tags/{slug}/rss.xml"
FEED_MAX_ITEMS = 20
RSS_FEED_SUMMARY_ONLY = False
MARKDOWN = {
    "extension_configs": {
        "markdown.extensions.codehilite": {"css_class": "highlight", "guess_lang": False},
        "markdown.extensions.extra": {},
        "markdown.extensions.meta": {},
        "markdown.extensions.sane_lists": {},
        "markdown.extensions.toc": {"permalink": True},
        "markdown.extensions.smarty": {},
    },
    "output_format": "html5",
}
"""

# Pelican's own Markdown defaults (no table of contents, no smart punctuation) and one Atom
# feed: less than fedipress does, kept so the earlier comparison can still be made.
PELICAN_CONF_DEFAULTS = PELICAN_BASE

PELICAN_CONFS = {"pelicanconf.py": PELICAN_CONF,
                 "pelicanconf-defaults.py": PELICAN_CONF_DEFAULTS}


def write_pelican_confs(out: Path) -> None:
    """(Re)write the settings files; cheap, so a corpus made earlier gets current ones."""
    for name, text in PELICAN_CONFS.items():
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def write_pelican(out: Path, posts: list[Post]) -> None:
    """The same posts as Pelican Markdown (metadata lines, not YAML) with a pelicanconf.py."""
    content = out / "content"
    content.mkdir(parents=True, exist_ok=True)
    write_pelican_confs(out)
    for post in posts:
        meta = (f"Title: {post.title}\nDate: {post.date:%Y-%m-%d %H:%M}\nSlug: {post.slug}\n"
                f"Tags: {', '.join(post.tags)}\n\n")
        body = post.body.replace("<!--more-->\n\n", "")
        (content / f"{post.slug}.md").write_text(meta + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, required=True, help="number of posts")
    parser.add_argument("--out", type=Path, required=True, help="site folder (must be empty)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pelican", type=Path, metavar="DIR",
                        help="also write a Pelican copy of the corpus here")
    args = parser.parse_args(argv)
    if args.posts < 1:
        parser.error("--posts must be at least 1")
    if args.out.exists() and any(args.out.iterdir()):
        print(f"{args.out}: not empty; choose a new folder", file=sys.stderr)
        return 2
    posts = generate_posts(args.posts, args.seed)
    write_site(args.out, posts, seed=args.seed)
    if args.pelican is not None:
        write_pelican(args.pelican, posts)
    words = sum(len(p.body.split()) for p in posts)
    print(f"wrote {len(posts):,} posts ({words:,} words) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
