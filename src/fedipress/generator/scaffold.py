"""`fedipress init` and `fedipress new`: write a starter site and new posts.

Every file is created exclusively (O_EXCL): scaffolding never overwrites what a user wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..config import SiteConfig
from ..errors import FedipressError
from ..wording import docs_url
from .slug import slugify

__all__ = ["PLACEHOLDER_BASE_URL", "describe_new", "front_matter", "init_site", "new_post"]

# The base_url `fedipress init` writes; build and publish warn while it is still there.
PLACEHOLDER_BASE_URL = "https://example.com/"

_SITE_YAML = """\
# Your blog. Every key is described in
# {configuration_docs}
# A mistake here is reported as site.yaml:LINE with what to change, so feel free to experiment.

title: {title}
# The public address of the blog. CHANGE THIS before you publish: it becomes the identity of
# your fediverse account (@handle@host). For local testing, `fedipress serve` and
# `--base-url http://127.0.0.1:8000/` override it for one run.
base_url: {placeholder}
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
  comments: followers            # replies shown: all | followers (others wait) | approved
  # blocked_words: [casino]      # a reply containing one waits for `fedipress comments`
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


def _blocker(path: Path) -> Path | None:
    """The nearest of `path` and its parents that exists but is not a folder (a file, or a
    symbolic link to nowhere), which stops a folder being made there; None if there is none."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if candidate.is_dir() else candidate
    return None


def _folder_error(folder: Path, error: OSError) -> FedipressError:
    blocker = _blocker(folder)
    if blocker is not None:
        if blocker.is_symlink():
            what = f"is a symbolic link to {os.readlink(blocker)}, which does not exist"
        else:
            what = "is a file, not a folder"
        return FedipressError(f"{blocker}: {what}; move it out of the way or choose another"
                              " place")
    reason = error.strerror or type(error).__name__
    return FedipressError(f"{folder}: cannot create this folder ({reason.lower()}); choose a"
                          " place you can write to")


class _Undo:
    """What a scaffold command made so far, so a failure halfway leaves nothing behind (an
    empty post file would break the next build)."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.folders: list[Path] = []

    def folder(self, folder: Path) -> None:
        """Make `folder` and its missing parents, remembering each one made."""
        missing = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
        try:
            for path in reversed(missing):
                path.mkdir()
                self.folders.append(path)
        except OSError as error:
            raise _folder_error(folder, error) from None
        if not folder.is_dir():
            raise _folder_error(folder, NotADirectoryError())

    def rollback(self) -> None:
        for path in reversed(self.files):
            path.unlink(missing_ok=True)
        for path in reversed(self.folders):
            try:
                path.rmdir()
            except OSError:
                pass  # someone put something there meanwhile: theirs to keep


def _create(path: Path, text: str, undo: _Undo) -> None:
    """Write a new file; fail if anything is already there."""
    # Encoded before the file exists: a text that cannot be written leaves no empty file.
    data = text.encode("utf-8")
    undo.folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise FedipressError(f"{path}: already exists; not overwriting it") from None
    except OSError as error:
        raise FedipressError(f"{path}: cannot create this file ({error.strerror or error});"
                             " check the folder's permissions") from None
    undo.files.append(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _text(value: str) -> str | None:
    """`value` if it is writable UTF-8; None if it holds undecodable bytes (a non-UTF-8
    command-line argument or file name arrives as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def init_site(target: Path, *, now: datetime | None = None,
              extra_files: Mapping[str, str] | None = None) -> list[Path]:
    """Create a starter blog in `target` (absent or empty) and return the files written.
    `extra_files` (relative path: text) are written with it, and undone with it on a failure
    (a CI workflow from `init --ci`)."""
    if target.exists():
        if not target.is_dir():
            raise FedipressError(f"{target}: exists and is not a folder; choose another name")
        if any(target.iterdir()):
            raise FedipressError(
                f"{target}: folder is not empty; `fedipress init` only fills a new or empty"
                " folder, so pick another name"
            )
    name = _text(target.resolve().name) or ""
    title = name.replace("-", " ").replace("_", " ").strip() or "My Blog"
    files = {
        "site.yaml": _SITE_YAML.format(
            title=json.dumps(title[:1].upper() + title[1:], ensure_ascii=False),
            configuration_docs=docs_url("configuration"),
            placeholder=PLACEHOLDER_BASE_URL,
        ),
        ".gitignore": _GITIGNORE,
        "content/posts/hello-world.md": _HELLO_WORLD.format(date=_now(now, None).isoformat()),
        "content/pages/about.md": _ABOUT,
        "content/static/.gitkeep": "",
        **(extra_files or {}),
    }
    undo = _Undo()
    try:
        for relative, text in files.items():
            _create(target / relative, text, undo)
    except BaseException:
        undo.rollback()
        raise
    return list(undo.files)


def front_matter(
    title: str,
    date: datetime,
    *,
    page: bool = False,
    draft: bool = True,
    tags: Sequence[str] = (),
) -> str:
    """The front matter block `fedipress new` writes, ending with the closing `---`."""
    # A JSON string is a valid YAML double-quoted scalar, so any title (and tag) round-trips.
    lines = ["---", f"title: {json.dumps(title, ensure_ascii=False)}", f"date: {date.isoformat()}"]
    if not page:
        lines.append(f"tags: {json.dumps(list(tags), ensure_ascii=False)}")
    lines += [f"draft: {'true' if draft else 'false'}", "---"]
    return "\n".join(lines) + "\n"


def new_post(
    config: SiteConfig,
    title: str,
    *,
    page: bool = False,
    now: datetime | None = None,
    draft: bool = True,
    date: datetime | None = None,
    tags: Sequence[str] = (),
    slug: str | None = None,
) -> Path:
    """Write content/posts/<slug>.md (or content/pages/<slug>.md) and return its path.

    A draft by default, as Hugo's `hugo new` writes: build, serve and publish leave it out
    until its front matter says `draft: false`, so a half-written post is never announced to
    followers. `date` (default `now`) without an offset is wall-clock time in the site's zone;
    `slug` (default: from the title) names the file."""
    if not title.strip():
        raise FedipressError('the title is empty; try `fedipress new "My first post"`')
    if _text(title) is None:
        raise FedipressError(f"the title {title!r} is not UTF-8 text; set your terminal to"
                             " UTF-8 (e.g. LANG=C.UTF-8) and type it again")
    if slug is not None and (not slug or slugify(slug) != slug):
        raise FedipressError(f"the slug {slug!r} is not a slug; use lower-case letters, digits"
                             " and single hyphens, e.g. my-first-post")
    moment = _now(date if date is not None else now, config)
    kind = "page" if page else "post"
    # A title with no Latin letters or digits still needs a file name; the date is unique enough
    # and the title stays as written in the front matter.
    slug = slug or slugify(title) or f"{kind}-{moment:%Y%m%d-%H%M%S}"
    folder = config.content_dir / ("pages" if page else "posts")
    path = folder / f"{slug}.md"
    bundle = folder / slug / "index.md"
    if bundle.exists():
        raise FedipressError(f"{bundle}: already exists with the slug {slug!r}; choose another"
                             " title (or --slug) or edit that file")
    body = "Write your page here.\n" if page else "Write your post here.\n\n<!--more-->\n"
    text = front_matter(title.strip(), moment, page=page, draft=draft, tags=tags) + body
    undo = _Undo()
    try:
        _create(path, text, undo)
    except BaseException:
        undo.rollback()
        raise
    return path


def describe_new(
    config: SiteConfig,
    path: Path,
    *,
    page: bool = False,
    draft: bool = True,
    date: datetime | None = None,
    now: datetime | None = None,
) -> list[str]:
    """What `fedipress new` says after `created PATH`: whether the new file will be built and
    published, and how to change that."""
    lines = []
    if draft:
        lines.append(f"it is a draft: build, serve and publish leave it out until you set"
                     f" `draft: false` in {path.name} (preview it with"
                     f" `fedipress serve --drafts`)")
    else:
        lines.append("it is not a draft: the next build shows it and the next publish announces"
                     " it to followers")
    current = _now(now, config)
    if not page and date is not None and _now(date, config) > current:
        lines.append(f"its date {_now(date, config).isoformat()} is in the future: build and"
                     " publish leave it out until then (preview it with"
                     " `fedipress serve --future`)")
    return lines
