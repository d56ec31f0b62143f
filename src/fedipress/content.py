"""content/ -> Site: the only module that reads the content directory.

Layout it understands:

    content/posts/**.md                   a post (nested folders are fine)
    content/posts/**/<name>/index.md      a post "bundle": files beside index.md are published
                                          next to the post's page (images, downloads)
    content/pages/**.md, .../index.md     a page at /<slug>/ (bundles work the same)
    content/static/**                     copied as-is to the root of the output

Every file is read once; front matter is checked key by key and every mistake in every file is
collected as a `Problem` naming `content/...:LINE`, so one run shows them all. Markdown
rendering (markup.py) is the costly part: it is cached by content (`ParseCache`) and the
misses can be spread over several processes.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import markdown
import pygments  # type: ignore[import-untyped]
import yaml

from .config import SiteConfig
from .errors import ContentError, Problem
from .markup import MARKUP_VERSION, Rendered, absolute_url, media_type_of, render_markdown
from .model import Image, Post, Site, Tag
from .slug import slugify

__all__ = [
    "LoadResult",
    "ParseCache",
    "SourceFile",
    "discover",
    "load_site",
    "static_files",
]

_MARKDOWN_SUFFIXES = (".md", ".markdown")
_DATED_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(.+)")
_LANG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
# Keys fedipress understands; anything else lands in Post.extra for themes to use.
_KNOWN_KEYS = frozenset(
    """title date updated lastmod last_modified_at slug tags categories summary description
    excerpt draft published lang image federate pinned content_warning in_reply_to aliases
    redirect_from keywords layout permalink url""".split()
)
_IGNORED_KEYS = frozenset({"keywords", "layout"})  # Hugo/Jekyll keys with no meaning here
# Bump when _parse changes what it makes of the same file: cached parses go stale.
_PARSE_VERSION = 1


@dataclass(frozen=True)
class SourceFile:
    """One file under content/. `source` is relative to the content directory (posix)."""

    kind: Literal["post", "page", "static"]
    source: str
    path: Path
    bundle_files: tuple[str, ...] = ()  # bundles only: files beside index.md, relative to it


@dataclass(frozen=True)
class LoadResult:
    site: Site
    problems: tuple[Problem, ...]  # broken files skipped (only non-empty with keep_going)
    sources: tuple[SourceFile, ...] = ()  # the posts and pages found (for `sources=` next time)


# --------------------------------------------------------------------------------------------
# Discovery


def _content_dir(config: SiteConfig) -> Path:
    return config.root / config.content_dir


def _hidden(name: str) -> bool:
    # Dotfiles, editor backups and lock files are never content.
    return name.startswith((".", "#", "~")) or name.endswith(("~", ".swp", ".tmp"))


def _walk(top: Path) -> Iterable[tuple[Path, list[str], list[str]]]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        yield Path(dirpath), dirnames, sorted(f for f in filenames if not _hidden(f))


def _discover_documents(content: Path, kind: Literal["post", "page"]) -> list[SourceFile]:
    top = content / ("posts" if kind == "post" else "pages")
    found: list[SourceFile] = []
    if not top.is_dir():
        return found
    for directory, dirnames, filenames in _walk(top):
        if directory != top and "index.md" in filenames:
            # A bundle: everything below it belongs to this post, including subfolders.
            resources = []
            for sub, _dirs, files in _walk(directory):
                for name in files:
                    rel = (sub / name).relative_to(directory).as_posix()
                    if rel != "index.md" and not name.endswith(_MARKDOWN_SUFFIXES):
                        resources.append(rel)
            index = directory / "index.md"
            found.append(
                SourceFile(
                    kind, index.relative_to(content).as_posix(), index, tuple(sorted(resources))
                )
            )
            dirnames[:] = []
            continue
        # Plain string joins: pathlib's relative_to per file is most of a walk of 10,000 posts.
        prefix = directory.relative_to(content).as_posix() + "/"
        folder = str(directory) + os.sep
        for name in filenames:
            if name.endswith(_MARKDOWN_SUFFIXES):
                found.append(SourceFile(kind, prefix + name, Path(folder + name)))
    return found


def discover(config: SiteConfig) -> list[SourceFile]:
    """Posts, pages and static files under the content directory, in a stable order."""
    content = _content_dir(config)
    files = _discover_documents(content, "post") + _discover_documents(content, "page")
    static = content / "static"
    if static.is_dir():
        for directory, _dirs, filenames in _walk(static):
            for name in filenames:
                path = directory / name
                files.append(SourceFile("static", path.relative_to(content).as_posix(), path))
    return files


# --------------------------------------------------------------------------------------------
# Front matter


class _Invalid(Exception):
    """The whole file is unusable (bad encoding, bad YAML): one problem, nothing else."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class _FrontMatter:
    data: dict[str, Any]
    lines: dict[str, int]  # key -> line in the file
    body: str
    present: bool  # the file has a front matter block at all


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_mapping(text: str) -> tuple[dict[str, Any], dict[str, int]]:
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise _Invalid(node.start_mark.line + 2, "front matter must be `key: value` lines")
        lines: dict[str, int] = {}
        for key_node, _value in node.value:
            key = key_node.value
            if key in lines:
                raise _Invalid(
                    key_node.start_mark.line + 2,
                    f"`{key}` appears twice in the front matter (first on line {lines[key]})",
                )
            lines[key] = key_node.start_mark.line + 2
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark is not None else 2
        raise _Invalid(line, f"front matter is not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise _Invalid(2, f"front matter is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return (
        {str(k): _without_controls(v) for k, v in data.items()},
        {str(k): v for k, v in lines.items()},
    )


_TOML_KEY = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=")
_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)")


def _toml_mapping(text: str) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_AT.search(str(exc))
        line = int(m.group(1)) + 1 if m else 2
        message = _TOML_AT.sub("", str(exc)).strip()
        raise _Invalid(line, f"front matter is not valid TOML: {message}") from None
    lines: dict[str, int] = {}
    for number, line_text in enumerate(text.split("\n"), start=2):
        m = _TOML_KEY.match(line_text)
        if m and m.group(1) not in lines:
            lines[m.group(1)] = number
    return {k: _without_controls(v) for k, v in data.items()}, lines


def _without_controls(value: Any) -> Any:
    """Front matter values with control characters dropped (YAML and TOML escapes such as
    "\\x01" create them after the raw text was cleaned)."""
    if isinstance(value, str):
        return _CONTROL_CHARS.sub("", value)
    if isinstance(value, list):
        return [_without_controls(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_controls(item) for key, item in value.items()}
    return value


def _split(text: str) -> _FrontMatter:
    first, _, rest = text.partition("\n")
    fence = first.rstrip()
    if fence not in ("---", "+++"):
        return _FrontMatter({}, {}, text, present=False)
    lines = rest.split("\n")
    closers = ("---", "...") if fence == "---" else ("+++",)
    for index, line in enumerate(lines):
        if line.rstrip() in closers:
            head = "\n".join(lines[:index])
            # Keep the body's line numbers equal to the file's, for anyone reporting them.
            body = "\n" * (index + 2) + "\n".join(lines[index + 1 :])
            parse = _yaml_mapping if fence == "---" else _toml_mapping
            data, key_lines = parse(head)
            return _FrontMatter(data, key_lines, body, present=True)
    raise _Invalid(1, f"the front matter opened with {fence} on line 1 is never closed")


# --------------------------------------------------------------------------------------------
# Values


def _to_datetime(value: Any, tz: tzinfo) -> datetime | None:
    """A front matter date in any usual form -> aware datetime; None if it is not a date."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
        # Jekyll writes "2019-01-31 09:15:00 +0100".
        for pattern in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z"):
            try:
                parsed = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _display(config: SiteConfig, path: Path) -> str:
    try:
        return path.relative_to(config.root).as_posix()
    except ValueError:
        return path.as_posix()


def _output_path(value: str) -> str | None:
    """A site path as written ("/a/b/", "a/b") -> output-relative "a/b/"; None if unsafe."""
    path = value.strip().lstrip("/")
    if not path or "\\" in path or any(part in ("..", ".") for part in path.split("/")):
        return None
    return path


class _Fields:
    """Typed access to one file's front matter, collecting a Problem per bad key."""

    def __init__(self, fm: _FrontMatter, file: str) -> None:
        self.data = fm.data
        self.lines = fm.lines
        self.file = file
        self.problems: list[Problem] = []

    def line(self, key: str) -> int:
        return self.lines.get(key, 1)

    def bad(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(key), f"`{key}`: {message}"))

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.bad(key, f"expected text, got {_shown(value)}")
            return None
        return str(value).strip()

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {_shown(value)}")
            return None
        return value

    def when(self, key: str, tz: tzinfo) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            return None
        parsed = _to_datetime(value, tz)
        if parsed is None:
            self.bad(
                key,
                f"expected a date like 2026-01-31, 2026-01-31 09:15 or "
                f"2026-01-31T09:15:00+01:00, got {_shown(value)}",
            )
        return parsed

    def strings(self, key: str, *, comma: bool) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [s.strip() for s in (value.split(",") if comma else [value]) if s.strip()]
        if isinstance(value, list) and all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
        ):
            return [str(v).strip() for v in value if str(v).strip()]
        what = "a list of text or a comma-separated text" if comma else "text or a list of text"
        self.bad(key, f"expected {what}, got {_shown(value)}")
        return []


def _shown(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", bool: "true/false"}.get(type(value))
    if kind is not None:
        return kind
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _tag_slug(name: str) -> str:
    # A tag in a script slugify cannot transliterate still needs a stable, URL-safe slug.
    return slugify(name) or "tag-" + hashlib.sha256(name.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class _Parsed:
    """A content file with its front matter checked, before Markdown rendering."""

    source: SourceFile
    file: str  # as errors name it: content/posts/x.md
    fields: dict[str, Any]  # Post keyword arguments except the rendered ones
    body: str  # "" when the parse came from the post cache (`key` names its rendering)
    path_line: int  # where to point when its output path collides
    key: str  # _render_key of the body: names the Markdown rendering in the cache
    fields_hash: str  # _fields_hash(fields): with `key`, the Post's identity


_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _parse(sf: SourceFile, raw: bytes, config: SiteConfig) -> _Parsed | list[Problem]:
    file = _display(config, sf.path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [Problem(file, line, "not valid UTF-8 text; save the file as UTF-8")]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Control characters (a stray paste, an old export) are invalid in HTML and XML; every
    # output would have to drop them, so they are dropped once, here.
    text = _CONTROL_CHARS.sub("", text)
    try:
        fm = _split(text)
    except _Invalid as exc:
        return [Problem(file, exc.line, exc.message)]
    if not fm.present:
        return [
            Problem(file, 1, "no front matter: start the file with a --- block with a `title:`")
        ]

    f = _Fields(fm, file)
    tz = config.tz
    stem = sf.path.parent.name if sf.path.name == "index.md" else sf.path.stem
    dated = _DATED_NAME.fullmatch(stem)
    name_date: datetime | None = None
    if dated is not None:
        try:
            y, m, d = (int(g) for g in dated.groups()[:3])
            name_date = datetime(y, m, d, tzinfo=tz)
            stem = dated.group(4)
        except ValueError:
            name_date = None

    title = f.text("title")
    if fm.data.get("title") is None:
        f.problems.append(Problem(file, 1, "missing `title:` in the front matter"))
    elif title == "":
        f.bad("title", "must not be empty")

    when = f.when("date", tz)
    if when is None and fm.data.get("date") is None:
        if name_date is not None:
            when = name_date
        elif sf.kind == "page":
            # Pages rarely carry dates; their file time is the honest "last changed".
            when = datetime.fromtimestamp(int(sf.path.stat().st_mtime), tz=UTC)
        else:
            f.problems.append(
                Problem(
                    file,
                    1,
                    "no date: add `date: 2026-01-31` to the front matter "
                    "or name the file 2026-01-31-slug.md",
                )
            )
    updated = None
    for key in ("updated", "lastmod", "last_modified_at"):
        if key in fm.data:
            updated = f.when(key, tz)
            break

    slug_text = f.text("slug")
    slug = slugify(slug_text if slug_text is not None else stem)
    if not slug and slug_text is not None:
        f.bad("slug", f"{slug_text!r} has no letters or digits usable in a URL")
    elif not slug:
        f.problems.append(
            Problem(file, 1, f"cannot make a URL slug from the file name {stem!r}; add `slug:`")
        )

    path_key = next((k for k in ("url", "permalink") if k in fm.data), None)
    path: str | None = None
    if path_key is not None:
        written = f.text(path_key)
        if written is not None:
            if written.startswith(config.base_url):
                written = written[len(config.base_url) :]
            path = _output_path(written)
            if path is None or "://" in written or ":" in written:
                f.bad(
                    path_key, f"expected a path on this site like /2019/01/name/, got {written!r}"
                )
                path = None
            elif not path.endswith("/"):
                f.bad(
                    path_key,
                    f"{written!r} must end with / (a folder); to keep an old address like "
                    f"/name.html working, list it under `aliases:` instead",
                )
                path = None
    if path is None and slug and when is not None:
        if sf.kind == "page":
            parent = PurePosixPath(sf.source).parent
            parent = parent.parent if sf.path.name == "index.md" else parent
            prefix = "/".join(parent.parts[1:])  # drop "pages"
            path = f"{prefix}/{slug}/" if prefix else f"{slug}/"
        else:
            local = when.astimezone(tz)
            path = (
                config.permalink.replace("{slug}", slug)
                .replace("{year}", f"{local.year:04d}")
                .replace("{month}", f"{local.month:02d}")
                .replace("{day}", f"{local.day:02d}")
                .lstrip("/")
            )
            if not path.endswith("/"):
                path += "/"
    url = config.url(path) if path is not None else ""

    tags: list[Tag] = []
    seen: set[str] = set()
    for name in f.strings("tags", comma=True) + f.strings("categories", comma=True):
        tag_slug = _tag_slug(name)
        if tag_slug not in seen:
            seen.add(tag_slug)
            tags.append(Tag(name, tag_slug, config.url(f"tags/{tag_slug}/")))

    summary = None
    for key in ("summary", "description", "excerpt"):
        if key in fm.data:
            summary = f.text(key) or None
            break

    draft = bool(f.flag("draft"))
    if f.flag("published") is False:
        draft = True

    lang = f.text("lang") or config.language
    if not _LANG.fullmatch(lang):
        f.bad("lang", f"expected a language tag like en or pt-BR, got {lang!r}")

    image = _image(f, url, config) if url else None

    federate = f.flag("federate")
    pinned = f.flag("pinned")
    warning = f.text("content_warning") or None
    reply_to = f.text("in_reply_to") or None
    if reply_to is not None:
        parts = urlsplit(reply_to)
        if parts.scheme != "https" or not parts.netloc:
            f.bad("in_reply_to", f"expected an absolute https:// URL, got {reply_to!r}")
            reply_to = None

    aliases: list[str] = []
    for key in ("aliases", "redirect_from"):
        for old in f.strings(key, comma=False):
            if old.startswith(config.base_url):
                old = old[len(config.base_url) :]
            alias = _output_path(old)
            if alias is None or "://" in old:
                f.bad(key, f"expected an old path on this site like /2019/01/name/, got {old!r}")
                continue
            if not alias.endswith("/") and "." not in alias.rsplit("/", 1)[-1]:
                alias += "/"
            aliases.append(alias)

    extra = {k: v for k, v in fm.data.items() if k not in _KNOWN_KEYS and k not in _IGNORED_KEYS}
    if f.problems or path is None or when is None or not title:
        return sorted(f.problems, key=lambda p: p.line or 0) or [
            Problem(file, 1, "unusable front matter")
        ]

    fields: dict[str, Any] = dict(
        source=sf.source,
        kind=sf.kind,
        slug=slug,
        title=title,
        date=when,
        url=url,
        path=path,
        lang=lang,
        updated=updated,
        tags=tuple(tags),
        summary=summary,
        draft=draft,
        image=image,
        aliases=tuple(aliases),
        federate=config.fediverse.federate if federate is None else federate,
        pinned=bool(pinned),
        content_warning=warning,
        in_reply_to=reply_to,
        bundle_files=sf.bundle_files,
        content_hash=hashlib.sha256(raw).hexdigest(),
        extra=MappingProxyType(extra),
    )
    path_line = fm.lines.get(path_key or "slug", 1)
    key = _render_key(fm.body, url, config.base_url)
    return _Parsed(sf, file, fields, fm.body, path_line, key, _fields_hash(fields))


def _fields_hash(fields: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(fields):
        h.update(f"{name}\0{fields[name]!r}\0".encode())
    return h.hexdigest()


def _image(f: _Fields, page_url: str, config: SiteConfig) -> Image | None:
    value = f.data.get("image")
    if value is None:
        return None
    alt = ""
    if isinstance(value, Mapping):
        src, alt = value.get("src"), value.get("alt", "")
        if not isinstance(src, str) or not src.strip() or not isinstance(alt, str):
            f.bad("image", "expected `src:` (text) and optional `alt:` (text)")
            return None
    elif isinstance(value, str) and value.strip():
        src = value
    else:
        f.bad("image", f"expected a file name or {{src, alt}}, got {_shown(value)}")
        return None
    url = absolute_url(src.strip(), page_url, config.base_url)
    return Image(url=url, alt=alt.strip(), media_type=media_type_of(url))


# --------------------------------------------------------------------------------------------
# Parse cache


def _render_key(body: str, page_url: str, site_url: str) -> str:
    h = hashlib.sha256()
    h.update(f"{MARKUP_VERSION}\0{markdown.__version__}\0{pygments.__version__}\0".encode())
    h.update(f"{page_url}\0{site_url}\0".encode())
    h.update(body.encode())
    return h.hexdigest()


_Entry = tuple[str, str, str, int, int, tuple[tuple[str, str], ...], tuple[str, ...], bool]


def _to_entry(r: Rendered) -> _Entry:
    images = tuple((i.url, i.alt) for i in r.images)
    return (
        r.html,
        r.summary_html,
        r.toc_html,
        r.word_count,
        r.reading_minutes,
        images,
        r.mentions,
        r.has_more,
    )


def _from_entry(e: _Entry) -> Rendered:
    return Rendered(
        html=e[0],
        summary_html=e[1],
        toc_html=e[2],
        word_count=e[3],
        reading_minutes=e[4],
        images=tuple(Image(url=u, alt=a, media_type=media_type_of(u)) for u, a in e[5]),
        mentions=e[6],
        has_more=e[7],
    )


_PostEntry = tuple[int, int, tuple[str, ...], str, dict[str, Any], dict[str, Any], int, str, str]


class ParseCache:
    """What parsing content files produced, kept in `<state_dir>/cache/` between builds.

    Rendered Markdown by content hash (`markup.marshal`): the key covers the Markdown body,
    the page and site URLs (links are made absolute) and the versions of everything that
    shapes the HTML, so a hit is always safe to reuse. Stored with marshal (plain tuples and
    strings) because it loads 10,000 entries in a few tens of milliseconds.

    Checked front matter by file (`posts.pickle`): keyed by the file's size and mtime_ns, its
    bundle files and `settings` (the config and code versions), so an unchanged file costs
    one stat: no read, no YAML. Pickled because the fields hold datetimes with time zones;
    the file lives in the site's own state folder, next to its keys.

    `save()` keeps only the entries this build used.
    """

    VERSION = 2
    POSTS_VERSION = 2
    FILE_NAME = "markup.marshal"
    DELTA_FILE_NAME = "markup-delta.marshal"
    POSTS_FILE_NAME = "posts.pickle"
    POSTS_DELTA_FILE_NAME = "posts-delta.pickle"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.FILE_NAME
        self.delta_path = directory / self.DELTA_FILE_NAME
        self.posts_path = directory / self.POSTS_FILE_NAME
        self.posts_delta_path = directory / self.POSTS_DELTA_FILE_NAME
        # The posts file's own entries (before its delta), by identity: what a delta omits.
        self._posts_base_id: str | None = None
        self._posts_base: dict[str, _PostEntry] = {}
        self._base_id: str | None = None  # names the base file a delta file applies to
        self._base_keys: set[str] = set()  # the keys in the base file
        self._entries: dict[str, _Entry] = {}
        self._used: dict[str, _Entry] = {}
        self._posts: dict[str, _PostEntry] = {}
        self._posts_used: dict[str, _PostEntry] = {}
        # Post objects by fingerprint, in memory only: a long-lived builder hands the same
        # object to the next build, so per-object memos downstream stay warm.
        self._objects: dict[str, Post] = {}
        self._objects_used: dict[str, Post] = {}
        self._dirty = False
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_site(cls, config: SiteConfig) -> ParseCache:
        return cls(config.state_dir / "cache")

    def __len__(self) -> int:
        return len(self._entries)

    def load(self) -> None:
        """Read the cache files; a missing, corrupt or other-version file means an empty cache."""
        try:
            data = marshal.loads(self.path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(data, tuple) and len(data) == 3 and data[0] == self.VERSION \
                and isinstance(data[2], dict):
            self._entries, self._base_id, self._base_keys = data[2], data[1], set(data[2])
            self._load_delta()
        elif isinstance(data, tuple) and len(data) == 2 and data[0] == 1 \
                and isinstance(data[1], dict):
            self._entries = data[1]  # the first format: rewritten whole on the next save
        try:
            posts = pickle.loads(self.posts_path.read_bytes())
        except Exception:  # noqa: BLE001 - any damage only costs parsing the files again
            return
        if isinstance(posts, tuple) and len(posts) == 3 and posts[0] == self.POSTS_VERSION \
                and isinstance(posts[1], str) and isinstance(posts[2], dict):
            self._posts_base_id, self._posts_base = posts[1], posts[2]
            self._posts = dict(posts[2])
            self._load_posts_delta()

    def _load_posts_delta(self) -> None:
        try:
            delta = pickle.loads(self.posts_delta_path.read_bytes())
        except Exception:  # noqa: BLE001 - any damage only costs parsing the files again
            return
        if isinstance(delta, tuple) and len(delta) == 4 and delta[:2] == (
                self.POSTS_VERSION, self._posts_base_id) and isinstance(delta[2], dict):
            for key in delta[3]:
                self._posts.pop(key, None)
            self._posts.update(delta[2])

    def _load_delta(self) -> None:
        try:
            delta = marshal.loads(self.delta_path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(delta, tuple) and len(delta) == 4 and delta[:2] == (
                self.VERSION, self._base_id) and isinstance(delta[2], dict):
            for key in delta[3]:
                self._entries.pop(key, None)
            self._entries.update(delta[2])

    def save(self, *, write: bool = True) -> None:
        """Write the entries used since load() (or the last save) atomically; drop the rest.

        A long-lived cache (the dev server rebuilding) keeps only what the last build used,
        so it does not grow with every edit. With `write=False` (or nothing new since the
        last save) the files are left as they are: entries are found by content and stat,
        so an older file is never wrong, only less complete.

        The Markdown file (~100 MB at 10,000 posts) is rewritten only when much changed;
        a few edits go to a small delta file (entries added and keys dropped since).
        """
        changed = self._dirty or self._used.keys() != self._entries.keys() \
            or self._posts_used.keys() != self._posts.keys() or not self.path.is_file()
        if write and changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            used = self._used
            added = {k: v for k, v in used.items() if k not in self._base_keys}
            dropped = [k for k in self._base_keys if k not in used]
            small = max(64, len(used) // 10)
            if self._base_id is not None and len(added) <= small and len(dropped) <= small:
                _replace(self.delta_path,
                         marshal.dumps((self.VERSION, self._base_id, added, dropped)))
            else:
                self._base_id = os.urandom(8).hex()
                _replace(self.path, marshal.dumps((self.VERSION, self._base_id, used)))
                self.delta_path.unlink(missing_ok=True)
                self._base_keys = set(used)
            self._save_posts()
            self._dirty = False
        self._entries, self._used = self._used, {}
        self._posts, self._posts_used = self._posts_used, {}
        self._objects, self._objects_used = self._objects_used, {}

    def _save_posts(self) -> None:
        """Like the Markdown file: an edit writes the few changed entries to a delta file
        (pickling all 10,000 entries again took ~0.1 s); the base is rewritten when much
        changed. Entries taken from the cache are the very objects loaded, so `is` finds
        what changed."""
        used, base = self._posts_used, self._posts_base
        added = {k: v for k, v in used.items() if base.get(k) is not v}
        dropped = [k for k in base if k not in used]
        small = max(64, len(used) // 10)
        if self._posts_base_id is not None and len(added) <= small and len(dropped) <= small:
            _replace(self.posts_delta_path,
                     pickle.dumps((self.POSTS_VERSION, self._posts_base_id, added, dropped),
                                  protocol=pickle.HIGHEST_PROTOCOL))
            return
        self._posts_base_id = os.urandom(8).hex()
        _replace(self.posts_path, pickle.dumps((self.POSTS_VERSION, self._posts_base_id, used),
                                               protocol=pickle.HIGHEST_PROTOCOL))
        self.posts_delta_path.unlink(missing_ok=True)
        self._posts_base = dict(used)

    def get(self, key: str) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used[key] = entry
        return _from_entry(entry)

    def touch(self, key: str) -> bool:
        """Keep the rendering `key` (used without being read); False when it is not here."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        self.hits += 1
        self._used[key] = entry
        return True

    def put(self, key: str, rendered: Rendered) -> None:
        entry = _to_entry(rendered)
        self._entries[key] = entry
        self._used[key] = entry
        self._dirty = True

    def parsed(self, sf: SourceFile, st: os.stat_result, settings: str) -> _Parsed | None:
        """The cached check of `sf` if the file, its bundle and the settings are unchanged."""
        entry = self._posts.get(sf.source)
        if entry is None or entry[0] != st.st_size or entry[1] != st.st_mtime_ns \
                or entry[2] != sf.bundle_files or entry[3] != settings \
                or entry[7] not in self._entries:
            return None
        self._posts_used[sf.source] = entry
        fields = dict(entry[4], extra=MappingProxyType(entry[5]))
        return _Parsed(sf, fields.pop("_file"), fields, "", entry[6], entry[7], entry[8])

    def put_parsed(self, p: _Parsed, st: os.stat_result, settings: str) -> None:
        fields = {k: v for k, v in p.fields.items() if k != "extra"}
        fields["_file"] = p.file
        entry: _PostEntry = (st.st_size, st.st_mtime_ns, p.source.bundle_files, settings,
                             fields, dict(p.fields["extra"]), p.path_line, p.key, p.fields_hash)
        self._posts_used[p.source.source] = entry
        self._dirty = True

    def post(self, fingerprint: str) -> Post | None:
        post = self._objects.get(fingerprint)
        if post is not None:
            self._objects_used[fingerprint] = post
        return post

    def put_post(self, post: Post) -> None:
        self._objects_used[post.fingerprint] = post


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Loading


def _render_chunk(jobs: list[tuple[str, str, str]]) -> list[Rendered]:
    return [render_markdown(body, page_url=u, site_url=s) for body, u, s in jobs]


def _render_all(jobs: list[tuple[str, str, str]], workers: int) -> list[Rendered]:
    if workers <= 1 or len(jobs) < 8 * workers:
        return _render_chunk(jobs)  # a pool costs more than it saves for a few files
    size = max(1, min(64, len(jobs) // (workers * 4)))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [r for chunk in pool.map(_render_chunk, chunks) for r in chunk]


def _settings(config: SiteConfig) -> str:
    """What a file's checked front matter depends on besides the file: the post cache key."""
    text = f"{_PARSE_VERSION}\0{MARKUP_VERSION}\0{config!r}"
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_all(
    config: SiteConfig, sources: Iterable[SourceFile], cache: ParseCache | None = None
) -> tuple[list[_Parsed], list[Problem]]:
    parsed: list[_Parsed] = []
    problems: list[Problem] = []
    settings = _settings(config) if cache is not None else ""
    for sf in sources:
        try:
            # Stat before reading: an edit in between leaves a stale stat in the cache, which
            # only means parsing the file again next time.
            st = os.stat(sf.path)
            hit = cache.parsed(sf, st, settings) if cache is not None else None
            if hit is not None:
                parsed.append(hit)
                continue
            raw = sf.path.read_bytes()
        except OSError as exc:
            problems.append(Problem(_display(config, sf.path), None, f"cannot read: {exc}"))
            continue
        result = _parse(sf, raw, config)
        if isinstance(result, list):
            problems.extend(result)
        else:
            parsed.append(result)
            if cache is not None:
                cache.put_parsed(result, st, settings)
    return parsed, problems


def load_site(
    config: SiteConfig,
    *,
    now: datetime,
    drafts: bool = False,
    future: bool = False,
    keep_going: bool = False,
    cache: ParseCache | None = None,
    workers: int = 1,
    sources: Sequence[SourceFile] | None = None,
) -> LoadResult:
    """Read every post and page and render its Markdown.

    `sources` (the previous result's, when the caller knows no file was added, removed or
    moved since) saves walking the content folder; each file is still stat'ed.

    Drafts are included only with `drafts`, posts dated after `now` only with `future`.
    Every broken file becomes a Problem; unless `keep_going`, any problem raises
    ContentError listing all of them, otherwise the broken files are skipped and returned.
    """
    if sources is None:
        sources = [sf for sf in discover(config) if sf.kind != "static"]
    parsed, problems = _parse_all(config, sources, cache)
    parsed = [
        p
        for p in parsed
        if (drafts or not p.fields["draft"])
        and (future or p.fields["kind"] == "page" or p.fields["date"] <= now)
    ]

    # Two files, or a file and an alias, must not claim the same output folder.
    owners: dict[str, str] = {}
    unique: list[_Parsed] = []
    for p in parsed:
        claimed = [p.fields["path"], *p.fields["aliases"]]
        clash = next((c for c in claimed if c in owners), None)
        if clash is not None:
            problems.append(
                Problem(
                    p.file,
                    p.path_line,
                    f"output path {clash} is also used by {owners[clash]}; "
                    f"give one of them a different `slug:`",
                )
            )
            continue
        for c in claimed:
            owners[c] = p.file
        unique.append(p)

    if problems and not keep_going:
        raise ContentError(problems)

    site_url = config.base_url
    rendered: list[Rendered | None] = []
    missing: list[int] = []
    keys: list[str] = []
    kept: dict[int, Post] = {}
    fingerprints: list[str] = []
    for i, p in enumerate(unique):
        key = p.key
        keys.append(key)
        # The fields and the rendering (named by its key) are all a Post is made of.
        fingerprint = hashlib.sha256(f"{p.fields_hash}\0{key}".encode()).hexdigest()
        fingerprints.append(fingerprint)
        same = cache.post(fingerprint) if cache is not None else None
        if same is not None and cache is not None and cache.touch(key):
            kept[i] = same  # a long-lived builder's Post from the last build, reused as is
            rendered.append(None)
            continue
        hit = cache.get(key) if cache is not None else None
        rendered.append(hit)
        if hit is None:
            missing.append(i)
    jobs = [(unique[i].body, unique[i].fields["url"], site_url) for i in missing]
    for i, r in zip(missing, _render_all(jobs, workers), strict=True):
        rendered[i] = r
        if cache is not None:
            cache.put(keys[i], r)

    posts: list[Post] = []
    pages: list[Post] = []
    for i, (p, maybe) in enumerate(zip(unique, rendered, strict=True)):
        if i in kept:
            (posts if kept[i].kind == "post" else pages).append(kept[i])
            continue
        assert maybe is not None
        r = maybe
        fingerprint = fingerprints[i]
        summary = p.fields["summary"]
        post = Post(
            **p.fields,
            html=r.html,
            summary_html=f"<p>{_escape(summary)}</p>" if summary else r.summary_html,
            images=r.images,
            toc_html=r.toc_html,
            word_count=r.word_count,
            reading_minutes=r.reading_minutes,
            mentions=r.mentions,
            has_more=r.has_more,
            fingerprint=fingerprint,
        )
        if cache is not None:
            cache.put_post(post)
        (posts if post.kind == "post" else pages).append(post)

    posts.sort(key=lambda post: post.slug)
    posts.sort(key=lambda post: post.date, reverse=True)
    pages.sort(key=lambda page: page.path)
    site = Site(config=config, posts=tuple(posts), pages=tuple(pages))
    return LoadResult(site=site, problems=tuple(problems), sources=tuple(sources))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def static_files(config: SiteConfig, site: Site | None = None) -> list[tuple[str, Path]]:
    """(output-relative path, source file) for everything copied verbatim.

    content/static/images/a.svg -> images/a.svg; a bundle's content/posts/x/tomatoes.svg ->
    <post path>tomatoes.svg. Pass the loaded `site` so that only published posts' bundle
    files are listed; without it every bundle's files are (front matter is read, not rendered).
    """
    content = _content_dir(config)
    out: list[tuple[str, Path]] = []
    bundles: list[SourceFile] = []
    if site is not None:
        # The site knows its bundles: only content/static needs walking (not every post).
        static = content / "static"
        if static.is_dir():
            for directory, _dirs, filenames in _walk(static):
                for name in filenames:
                    path = directory / name
                    out.append((path.relative_to(static).as_posix(), path))
    else:
        for sf in discover(config):
            if sf.kind == "static":
                out.append((sf.source.split("/", 1)[1], sf.path))
            elif sf.bundle_files:
                bundles.append(sf)
    if site is not None:
        for post in (*site.posts, *site.pages):
            if not post.bundle_files:
                continue
            folder = (content / post.source).parent
            out.extend((post.path + rel, folder / rel) for rel in post.bundle_files)
    else:
        parsed, _problems = _parse_all(config, bundles)
        for p in parsed:
            folder = p.source.path.parent
            out.extend((p.fields["path"] + rel, folder / rel) for rel in p.source.bundle_files)
    return sorted(out)
