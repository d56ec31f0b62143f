"""`fedipress init` and `fedipress new`: write a starter site and new posts.

Every file is created exclusively (O_EXCL): scaffolding never overwrites what a user wrote.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from .config import SiteConfig
from .errors import FedipressError
from .slug import slugify

__all__ = ["init_site", "new_post", "front_matter"]

_SITE_YAML = """\
# Your blog. Every key is described in docs/configuration.md; a mistake here is reported as
# site.yaml:LINE with what to change, so feel free to experiment.

title: {title}
# The public address of the blog. CHANGE THIS before you publish: it becomes the identity of
# your fediverse account (@handle@host). For local testing, `fedipress serve` and
# `--base-url http://127.0.0.1:8000/` override it for one run.
base_url: https://example.com/
description: A blog you can follow from Mastodon and the rest of the fediverse.
language: en
timezone: UTC          # e.g. Europe/Berlin; dates without an offset are read in this zone
permalink: /posts/{{slug}}/   # placeholders: {{slug}} {{year}} {{month}} {{day}}
posts_per_page: 10

author:
  name: Your Name
  handle: you          # the fediverse username: @you@example.com
  # avatar: /images/avatar.png   # a path under content/static/ or a full URL
  bio: A sentence or two about you.
  # links:
  #   - name: Code
  #     url: https://code.example/you

feeds:
  items: 20
  full_content: true

fediverse:
  # username: you                # default: author.handle
  # handle_domain: example.com   # default: the host of base_url
  # display_name: Your Name      # default: author.name
  # bio: I write about things.   # Markdown; default: author.bio
  post_type: note                # note (shows in timelines) | article (shows as a link card)
  note_content: full             # full | summary
  # fields:
  #   - name: Blog
  #     value: https://example.com/
  # blocked: [spam.example]
"""

_HELLO_WORLD = """\
---
title: Hello, world
date: {date}
tags: [meta]
draft: false
---
This is the first post of this blog. Edit it in `content/posts/hello-world.md`, or write a new
one with `fedipress new "My next post"`.

<!--more-->

Everything you publish here can be followed from Mastodon and other fediverse servers.
"""

_ABOUT = """\
---
title: About
---
Tell your readers who you are. This page lives in `content/pages/about.md`.
"""

_GITIGNORE = """\
# the built site; `fedipress build` recreates it
/public/
# the private key and the follower database: never commit these
.fedipress/
"""


def _now(now: datetime | None, config: SiteConfig | None) -> datetime:
    zone = config.tz if config is not None else UTC
    if now is None:
        now = datetime.now(zone)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=zone)  # a naive time means wall-clock time in the site zone
    else:
        now = now.astimezone(zone)
    return now.replace(microsecond=0)


def _create(path: Path, text: str) -> None:
    """Write a new file; fail if anything is already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise FedipressError(f"{path}: already exists; not overwriting it") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def init_site(target: Path, *, now: datetime | None = None) -> list[Path]:
    """Create a starter blog in `target` (absent or empty) and return the files written."""
    if target.exists():
        if not target.is_dir():
            raise FedipressError(f"{target}: exists and is not a folder; choose another name")
        if any(target.iterdir()):
            raise FedipressError(
                f"{target}: folder is not empty; `fedipress init` only fills a new or empty"
                " folder, so pick another name"
            )
    title = target.resolve().name.replace("-", " ").replace("_", " ").strip() or "My Blog"
    files = {
        "site.yaml": _SITE_YAML.format(title=json.dumps(title[:1].upper() + title[1:],
                                                        ensure_ascii=False)),
        ".gitignore": _GITIGNORE,
        "content/posts/hello-world.md": _HELLO_WORLD.format(date=_now(now, None).isoformat()),
        "content/pages/about.md": _ABOUT,
        "content/static/.gitkeep": "",
    }
    created: list[Path] = []
    for relative, text in files.items():
        path = target / relative
        _create(path, text)
        created.append(path)
    return created


def front_matter(title: str, date: datetime, *, page: bool = False) -> str:
    """The front matter block `fedipress new` writes, ending with the closing `---`."""
    # A JSON string is a valid YAML double-quoted scalar, so any title round-trips.
    lines = ["---", f"title: {json.dumps(title, ensure_ascii=False)}", f"date: {date.isoformat()}"]
    if not page:
        lines.append("tags: []")
    lines += ["draft: false", "---"]
    return "\n".join(lines) + "\n"


def new_post(
    config: SiteConfig, title: str, *, page: bool = False, now: datetime | None = None
) -> Path:
    """Write content/posts/<slug>.md (or content/pages/<slug>.md) and return its path."""
    if not title.strip():
        raise FedipressError('the title is empty; try `fedipress new "My first post"`')
    moment = _now(now, config)
    kind = "page" if page else "post"
    # A title with no Latin letters or digits still needs a file name; the date is unique enough
    # and the title stays as written in the front matter.
    slug = slugify(title) or f"{kind}-{moment:%Y%m%d-%H%M%S}"
    folder = config.content_dir / ("pages" if page else "posts")
    path = folder / f"{slug}.md"
    bundle = folder / slug / "index.md"
    if bundle.exists():
        raise FedipressError(f"{bundle}: already exists with the slug {slug!r}; choose another"
                             " title or edit that file")
    body = "Write your page here.\n" if page else "Write your post here.\n\n<!--more-->\n"
    _create(path, front_matter(title.strip(), moment, page=page) + body)
    return path
