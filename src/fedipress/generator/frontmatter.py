"""Front matter: one content file's text -> its checked Post fields, or Problems with lines.

YAML (---) or TOML (+++) front matter is split from the Markdown body with each key's line
remembered; `_Fields` reads typed values, collecting a `Problem` naming `content/...:LINE` per
bad key; `_parse` maps the keys (Hugo and Jekyll spellings included) to Post fields. No
Markdown is rendered here: `_Parsed.key` names the rendering (see parsecache.py).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import markdown
import pygments  # type: ignore[import-untyped]
import yaml

from ..config import SiteConfig
from ..config.loader import yaml_syntax_error
from ..errors import Problem
from ..model import Image, MenuEntry, Tag
from .markup import MARKUP_VERSION, absolute_url, media_type_of
from .migration_syntax import SYNTAX_VERSION
from .slug import slugify
from .sources import SourceFile, _Parsed

__all__: list[str] = []

_DATED_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(.+)")
_LANG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
# Keys fedipress understands; anything else lands in Post.extra for themes to use.
_KNOWN_KEYS = frozenset(
    """title date updated lastmod last_modified_at slug tags categories summary description
    excerpt draft published lang image federate pinned comments content_warning in_reply_to aliases
    redirect_from keywords layout permalink url quotes""".split()
)
_KNOWN_KEYS |= {"category"}  # Jekyll's one category, a tag like `categories`
# Hugo's scheduling keys, in every spelling it reads (its keys ignore case: `PublishDate` too).
# `published:` holding a date is Hugo's publishDate as well; holding true/false, Jekyll's flag.
_PUBLISH_KEYS = frozenset({"publishdate", "pubdate"})
_EXPIRY_KEYS = frozenset({"expirydate", "unpublishdate"})
_IGNORED_KEYS = frozenset({"keywords", "layout"})  # Hugo/Jekyll keys with no meaning here
# Bump when _parse changes what it makes of the same file: cached parses go stale.
_PARSE_VERSION = 6  # 2: weight and menu; 3: Jekyll's category and space-separated tags;
# 4: Hugo's publishDate and expiryDate; 5: `comments`; 6: `quotes`


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
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Invalid(key_node.start_mark.line + 2,
                               "a front matter key must be a plain name such as `title:`,"
                               " not a list or a mapping")
            key = key_node.value
            if key in lines:
                raise _Invalid(
                    key_node.start_mark.line + 2,
                    f"`{key}` appears twice in the front matter (first on line {lines[key]})",
                )
            lines[key] = key_node.start_mark.line + 2
        try:
            data = loader.construct_document(node)
        except (ValueError, OverflowError) as exc:
            raise _impossible_timestamp(node, exc) from None
    except yaml.MarkedYAMLError as exc:
        # The line of the mistake (an unclosed quote or bracket is found far below it); the
        # block's first line is the file's second, after `---`.
        where, message = yaml_syntax_error(exc, text)
        raise _Invalid((where or 1) + 1, f"front matter is not valid YAML: {message}") from None
    except yaml.YAMLError as exc:
        raise _Invalid(2, f"front matter is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    try:
        cleaned = {str(k): _without_controls(v) for k, v in data.items()}
    except RecursionError:  # `a: &a [*a]`: a value that contains itself
        raise _Invalid(2, "front matter has a value that contains itself (a YAML anchor"
                          " used inside its own value); write the value out") from None
    return cleaned, {str(k): v for k, v in lines.items()}


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _impossible_timestamp(root: yaml.Node, exc: Exception) -> _Invalid:
    """YAML reads date-shaped text (`2026-02-30`, `09:15:00+99:00`) as a timestamp and only
    then finds it impossible: name the value and its line instead of failing on it."""
    constructor = yaml.constructor.SafeConstructor()
    stack: list[tuple[str | None, yaml.Node]] = [(None, root)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            stack.extend((key if key is not None else str(k.value), v)
                         for k, v in reversed(node.value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((key, item) for item in reversed(node.value))
        elif isinstance(node, yaml.ScalarNode) and node.tag == _TIMESTAMP_TAG:
            try:
                constructor.construct_yaml_timestamp(node)
            except (ValueError, OverflowError) as problem:
                where = f"`{key}`: " if key is not None else ""
                # (Python's own wording for an offset names timedelta reprs)
                why = ("its UTC offset is not under 24 hours" if "offset" in str(problem)
                       else str(problem))
                return _Invalid(node.start_mark.line + 2,
                                f"{where}{node.value} is not a real date or time ({why});"
                                " write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS+HH:MM")
    return _Invalid(root.start_mark.line + 2, f"front matter has a value YAML cannot read: {exc}")


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
        elif not _in_range(parsed, tz):
            shown = value.isoformat() if isinstance(value, date) else _shown(value)
            self.bad(key, f"{shown} is outside the years {_YEARS[0]}-{_YEARS[1]}")
            return None
        return parsed

    def spelling(self, names: frozenset[str]) -> str | None:
        """The one key spelled as any of `names` (any case), or None; two are a mistake,
        since which one wins would be a guess."""
        keys = [k for k in self.data if k.lower() in names]
        for extra in keys[1:]:
            self.bad(extra, f"says the same as `{keys[0]}` on line {self.line(keys[0])};"
                            " keep one of them")
        return keys[0] if keys else None

    def strings(self, key: str, *, comma: bool) -> list[str]:
        """A list, or text: with `comma`, text is split at commas (`garden, food`), or, with
        none, at spaces as Jekyll and Hugo split `tags: jekyll ruby`."""
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            if not comma:
                parts = [value]
            else:
                parts = value.split(",") if "," in value else value.split()
            return [s.strip() for s in parts if s.strip()]
        if isinstance(value, list) and all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
        ):
            return [str(v).strip() for v in value if str(v).strip()]
        what = "a list of text or a comma-separated text" if comma else "text or a list of text"
        if isinstance(value, list):
            n, item = next((n, v) for n, v in enumerate(value, 1)
                           if not isinstance(v, str | int | float) or isinstance(v, bool))
            shown = "empty" if item is None else _shown(item)
            self.bad(key, f"expected {what}; item {n} is {shown}")
            return []
        self.bad(key, f"expected {what}, got {_shown(value)}")
        return []


# Dates every output can write: feeds and ActivityPub need four-digit years, and converting
# between time zones near year 1 or 9999 overflows.
_YEARS = (1000, 9998)


def _in_range(moment: datetime, tz: tzinfo) -> bool:
    try:
        years = (moment.year, moment.astimezone(UTC).year, moment.astimezone(tz).year)
    except OverflowError:
        return False
    return all(_YEARS[0] <= year <= _YEARS[1] for year in years)


def _shown(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", bool: "true/false"}.get(type(value))
    if kind is not None:
        return kind
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _tag_slug(name: str) -> str:
    # A tag in a script slugify cannot transliterate still needs a stable, URL-safe slug.
    return slugify(name) or "tag-" + hashlib.sha256(name.encode()).hexdigest()[:10]


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
    name_problem: str | None = None
    if dated is not None:
        shown = "-".join(dated.groups()[:3])
        try:
            y, m, d = (int(g) for g in dated.groups()[:3])
            name_date = datetime(y, m, d, tzinfo=tz)
            stem = dated.group(4)
        except ValueError as exc:
            name_problem = f"the date in the file name, {shown}, is not a real date ({exc})"
        if name_date is not None and not _in_range(name_date, tz):
            name_problem = (f"the date in the file name, {shown}, is outside the years"
                            f" {_YEARS[0]}-{_YEARS[1]}")
            name_date = None

    title = f.text("title")
    if fm.data.get("title") is None:
        f.problems.append(Problem(file, 1, "missing `title:` in the front matter"))
    elif title == "":
        f.bad("title", "must not be empty")

    when = f.when("date", tz)
    # Hugo's publishDate: the post waits for it (see below). `published: 2026-03-01` is
    # Hugo's spelling too; `published: false` stays Jekyll's draft flag.
    publish_key = f.spelling(_PUBLISH_KEYS)
    published_value = fm.data.get("published")
    if publish_key is None and published_value is not None and not isinstance(
            published_value, bool) and _to_datetime(published_value, tz) is not None:
        publish_key = "published"
    publish_at = f.when(publish_key, tz) if publish_key is not None else None
    has_date = True
    dated_by_publish = False
    if when is None and fm.data.get("date") is None:
        if name_date is not None:
            when = name_date
        elif publish_key is not None:
            when = publish_at  # Hugo's date is the publishDate when `date` is not written
            dated_by_publish = True
        elif name_problem is not None:
            f.problems.append(Problem(file, 1, f"{name_problem}: rename the file or add"
                                                " `date: 2026-01-31` to the front matter"))
        elif sf.kind == "page":
            # Pages rarely carry dates; their file time is the honest "last changed" on
            # this machine (but not across checkouts: see Post.dated).
            when = datetime.fromtimestamp(int(sf.path.stat().st_mtime), tz=UTC)
            has_date = False
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
    # The permalink keeps the written date, as Hugo's does (links to the post stay the same);
    # the post's one date becomes a later publishDate: it is when the post is built, when
    # followers are sent it (publish announces only posts dated in the last week, so the
    # earlier date would have it recorded unannounced) and the date readers and feeds see.
    link_date = when
    scheduled = publish_at is not None and (dated_by_publish or when is None
                                            or publish_at > when)
    if scheduled:
        when = publish_at
        if updated is not None and when is not None and updated <= when:
            updated = None  # an edit before the post went up is no update to it
    expiry_key = f.spelling(_EXPIRY_KEYS)
    expires = f.when(expiry_key, tz) if expiry_key is not None else None
    if expiry_key is not None and expires is not None and when is not None and has_date \
            and expires <= when:
        f.bad(expiry_key, f"{expires.isoformat()} is not after the post's date,"
              f" {when.isoformat()}, so the post would never be published; correct it or"
              " remove it")
        expires = None

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
    if path is None and slug and link_date is not None:
        if sf.kind == "page":
            parent = PurePosixPath(sf.source).parent
            parent = parent.parent if sf.path.name == "index.md" else parent
            prefix = "/".join(parent.parts[1:])  # drop "pages"
            path = f"{prefix}/{slug}/" if prefix else f"{slug}/"
        else:
            local = link_date.astimezone(tz)
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
    # (Jekyll's singular `category:` names one category, spaces and all.)
    for name in (f.strings("tags", comma=True) + f.strings("categories", comma=True)
                 + f.strings("category", comma=False)):
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
    if publish_key != "published" and f.flag("published") is False:
        draft = True

    lang = f.text("lang") or config.language
    if not _LANG.fullmatch(lang):
        f.bad("lang", f"expected a language tag like en or pt-BR, got {lang!r}")

    image = _image(f, url, config) if url else None

    federate = f.flag("federate")
    pinned = f.flag("pinned")
    comments = f.flag("comments")
    warning = f.text("content_warning") or None
    reply_to = f.text("in_reply_to") or None
    quotes = _quotes(f)
    if reply_to is not None:
        try:
            parts = urlsplit(reply_to)
        except ValueError:  # "https://[::1/x": a broken IPv6 host
            parts = urlsplit("")
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

    # Checked here for the navigation, and left in `extra` too, where themes found them
    # before (a theme may order its own lists by a post's weight, as Hugo's do).
    weight = _weight(f)
    menus = _menus(f)

    extra = {k: v for k, v in fm.data.items() if k not in _KNOWN_KEYS and k not in _IGNORED_KEYS
             and k.lower() not in _PUBLISH_KEYS | _EXPIRY_KEYS}
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
        dated=has_date,
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
        weight=weight,
        menus=menus,
    )
    # Set only when written, so that a post without them keeps its fingerprint.
    if scheduled:
        fields["scheduled"] = True
    if expires is not None:
        fields["expires"] = expires
    if comments is False:
        fields["comments"] = False
    if quotes is not None:
        fields["quotes"] = quotes
    path_line = fm.lines.get(path_key or "slug", 1)
    key = _render_key(fm.body, url, config.base_url)
    return _Parsed(sf, file, fields, fm.body, path_line, key, _fields_hash(fields))


def _quotes(f: _Fields) -> str | None:
    """Front matter `quotes`: anyone | followers | nobody (true and false read as anyone and
    nobody), or None when not written (site.yaml's fediverse.quotes then decides)."""
    value = f.data.get("quotes")
    if value is None:
        return None
    if isinstance(value, bool):
        return "anyone" if value else "nobody"
    if value in ("anyone", "followers", "nobody"):
        return str(value)
    f.bad("quotes", f"expected anyone, followers or nobody, got {_shown(value)}")
    return None


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
    # The cover goes into <img src>, og:image and the ActivityPub attachment: only a web
    # address will do there (not javascript:, data: or mailto:).
    if not url.lower().startswith(("https://", "http://")):
        f.bad("image", f"expected a file beside the post or an http(s) URL, got {src.strip()!r}")
        return None
    return Image(url=url, alt=alt.strip(), media_type=media_type_of(url))


def _weight(f: _Fields) -> int | None:
    value = f.data.get("weight")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        f.bad("weight", f"expected a whole number such as 10 (lower comes first in the"
                        f" navigation), got {_shown(value)}")
        return None
    return value


_MENU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_MENU_EXPECTED = ("expected a menu name such as main, a list of names such as [main, footer],"
                  " or false")


def _menus(f: _Fields) -> tuple[MenuEntry, ...] | None:
    """`menu:` as Hugo writes it: `main`, `[main, footer]`, `false`, or a mapping of menu
    names to `{weight, name}` (`menu: {main: {weight: 10}}`). None when not written."""
    value = f.data.get("menu")
    if value is None:
        return None
    if value is False:
        return ()
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            f.bad("menu", f"{_MENU_EXPECTED}; got a list holding"
                          f" {_shown(next(v for v in value if not isinstance(v, str)))}")
            return None
        value = dict.fromkeys(value)
    if not isinstance(value, dict):
        f.bad("menu", f"{_MENU_EXPECTED}, got {_shown(value)}")
        return None
    entries: dict[str, MenuEntry] = {}
    for raw_name, options in value.items():
        name = str(raw_name).strip()
        if not _MENU_NAME.fullmatch(name):
            f.bad("menu", f"{name!r} is not a menu name: use letters, digits, - and _"
                          " (the header navigation is `main`)")
            return None
        if options is None:
            entries.setdefault(name, MenuEntry(name))
            continue
        if not isinstance(options, dict):
            f.bad("menu", f"under `{name}` expected `weight:` and `name:`, got {_shown(options)}")
            return None
        unknown = sorted(str(k) for k in options if k not in ("weight", "name"))
        if unknown:
            f.bad("menu", f"`{unknown[0]}` under `{name}` is not understood: a menu entry takes"
                          " only `weight:` (a whole number) and `name:` (the link's text);"
                          " menus have one level")
            return None
        weight, title = options.get("weight"), options.get("name")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int)):
            f.bad("menu", f"`weight` under `{name}` must be a whole number such as 10,"
                          f" got {_shown(weight)}")
            return None
        if title is not None and (not isinstance(title, str) or not title.strip()):
            f.bad("menu", f"`name` under `{name}` must be the link's text, got {_shown(title)}")
            return None
        entries[name] = MenuEntry(name, weight, title.strip() if title is not None else None)
    return tuple(entries.values())


def _render_key(body: str, page_url: str, site_url: str) -> str:
    h = hashlib.sha256()
    h.update(f"{MARKUP_VERSION}\0{SYNTAX_VERSION}\0{markdown.__version__}\0"
             f"{pygments.__version__}\0".encode())
    h.update(f"{page_url}\0{site_url}\0".encode())
    h.update(body.encode())
    return h.hexdigest()
