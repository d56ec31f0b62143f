"""site.yaml -> frozen, typed configuration.

`load_config` reads and validates the whole file and reports every mistake at once as
`site.yaml:LINE: what is wrong and how to fix it` (a ConfigError). Nothing here touches the
network; the only file read is site.yaml itself.
"""

from __future__ import annotations

import difflib
import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple, cast
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError, FedipressError, Problem
from .slug import slugify

__all__ = [
    "Author",
    "AuthorLink",
    "FediverseConfig",
    "FeedConfig",
    "ProfileField",
    "SiteConfig",
    "load_config",
    "parse_config",
]


@dataclass(frozen=True)
class AuthorLink:
    """A link shown with the author and published as `<link rel="me">`."""

    name: str
    url: str


@dataclass(frozen=True)
class Author:
    name: str
    handle: str  # a bare username, e.g. "alice"
    avatar: str | None = None  # absolute URL (relative values are resolved against base_url)
    bio: str = ""  # Markdown
    email: str | None = None
    links: tuple[AuthorLink, ...] = ()


@dataclass(frozen=True)
class FeedConfig:
    atom: bool = True
    rss: bool = True
    json: bool = True
    items: int = 20  # entries per feed
    full_content: bool = True  # full post HTML, else the summary


@dataclass(frozen=True)
class ProfileField:
    """A fediverse profile field (PropertyValue); `value` is plain text or a URL."""

    name: str
    value: str


@dataclass(frozen=True)
class FediverseConfig:
    """The `fediverse:` section. Every field has a usable default derived from the site."""

    username: str
    handle_domain: str  # host[:port] of the handle, e.g. "alice.example" or "127.0.0.1:8001"
    display_name: str
    bio: str  # Markdown
    inbox_url: str  # absolute; default <base_url>inbox
    shared_inbox_url: str  # absolute; default = inbox_url
    avatar: str | None = None  # absolute URL
    header: str | None = None  # absolute URL
    fields: tuple[ProfileField, ...] = ()
    also_known_as: tuple[str, ...] = ()
    post_type: Literal["note", "article"] = "note"
    note_content: Literal["full", "summary"] = "full"
    federate: bool = True  # default for posts without `federate:` in front matter
    discoverable: bool = True
    indexable: bool = True
    manually_approves_followers: bool = False
    blocked: tuple[str, ...] = ()  # domains ("spam.example") or actor ids (https://...)
    public_key_file: str = "fedipress-public-key.pem"  # relative to the site root, committed
    published: str | None = None  # ISO datetime the actor came to be; default: oldest post


@dataclass(frozen=True)
class SiteConfig:
    """The whole of site.yaml, validated, with defaults filled in.

    `base_url` always ends with "/". `root` is the directory holding site.yaml; the content,
    themes and output directories are resolved against it.
    """

    root: Path
    title: str
    base_url: str
    author: Author
    fediverse: FediverseConfig
    description: str = ""
    language: str = "en"
    timezone: str = "UTC"
    permalink: str = "/posts/{slug}/"  # placeholders: {slug} {year} {month} {day}
    posts_per_page: int = 10
    theme: str = "default"
    output_dir: Path = field(default=Path("public"))  # absolute after loading
    content_dir: Path = field(default=Path("content"))  # absolute after loading
    feeds: FeedConfig = field(default_factory=FeedConfig)
    config_file: Path = field(default=Path("site.yaml"))  # absolute after loading

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def host(self) -> str:
        """host[:port] of the site, as it appears in URLs."""
        return urlsplit(self.base_url).netloc

    @property
    def state_dir(self) -> Path:
        """`.fedipress/` beside site.yaml: private key, state.db, cache. Never published."""
        return self.root / ".fedipress"

    @property
    def handle(self) -> str:
        """The fediverse handle without the leading @: user@domain."""
        return f"{self.fediverse.username}@{self.fediverse.handle_domain}"

    def url(self, path: str = "") -> str:
        """Absolute URL for a site-relative path ("posts/x/" or "/posts/x/")."""
        return urljoin(self.base_url, path.lstrip("/"))


def load_config(path: Path | str = "site.yaml", *, base_url: str | None = None) -> SiteConfig:
    """Read and validate site.yaml; `base_url` overrides the file's for one run.

    Raises ConfigError listing every problem, each as `site.yaml:LINE: message`, or a
    FedipressError when the file does not exist.
    """
    given = str(path)
    file = Path(path)
    if file.is_dir():
        file = file / "site.yaml"
        given = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FedipressError(
            f"{given}: not found (run `fedipress init DIR` to create a new blog, or pass"
            " --config FILE to use another file)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(given, None, "is not UTF-8 text; save it as UTF-8")]) from None
    except OSError as error:
        raise FedipressError(f"{given}: cannot be read ({error.strerror})") from None
    root = Path(os.path.abspath(file)).parent
    return parse_config(text, file=given, root=root, base_url=base_url)


def parse_config(
    text: str, *, file: str, root: Path, base_url: str | None = None
) -> SiteConfig:
    """Validate site.yaml's text; `file` is how problems name it, `root` the site directory."""
    check = _Checker(file)
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = error.problem or error.context or "cannot be parsed"
        raise ConfigError(
            [
                Problem(
                    file,
                    mark.line + 1 if mark is not None else None,
                    f"YAML syntax error: {what}; check the indentation, colons and quotes"
                    " on this line and the one before",
                )
            ]
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem(file, None, f"YAML syntax error: {error}")]) from None
    if document is None or _is_null(document):
        raise ConfigError(
            [
                Problem(
                    file,
                    1,
                    "the file is empty; it needs at least `title`, `base_url` and `author:` with"
                    " `name` (`fedipress init` writes a complete example)",
                )
            ]
        )
    if not isinstance(document, MappingNode):
        raise ConfigError(
            [
                Problem(
                    file,
                    _line(document),
                    f"the top level must be `key: value` lines (a mapping), got"
                    f" {_describe(document)}",
                )
            ]
        )
    config = _read_site(check, document, root, base_url)
    if check.problems or config is None:
        raise ConfigError(sorted(check.problems, key=lambda p: p.line or 0))
    return config


# --- the schema -------------------------------------------------------------------------------

_TOP_KEYS = (
    "title", "base_url", "description", "language", "timezone", "permalink", "posts_per_page",
    "theme", "output_dir", "content_dir", "author", "feeds", "fediverse",
)  # fmt: skip
_AUTHOR_KEYS = ("name", "handle", "avatar", "bio", "email", "links")
_LINK_KEYS = ("name", "url")
_FEED_KEYS = ("atom", "rss", "json", "items", "full_content")
_FIELD_KEYS = ("name", "value")
_FEDIVERSE_KEYS = (
    "username", "handle_domain", "display_name", "bio", "avatar", "header", "fields",
    "also_known_as", "post_type", "note_content", "federate", "discoverable", "indexable",
    "manually_approves_followers", "blocked", "inbox_url", "shared_inbox_url",
    "public_key_file", "published",
)  # fmt: skip

_USERNAME = re.compile(r"[A-Za-z0-9_.-]+")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HOST_PORT = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")
_PERMALINK_FIELDS = ("slug", "year", "month", "day")
# A placeholder URL used only to keep resolving when base_url itself is broken; a config
# with a broken base_url is never returned, so this value never escapes.
_UNUSABLE_BASE = "https://base-url.invalid/"


def _read_site(
    check: _Checker, document: MappingNode, root: Path, override: str | None
) -> SiteConfig | None:
    top = check.section(document, "", _line(document), _TOP_KEYS)

    title = check.text(top, "title", required="title: My Blog")
    file_base = check.text(
        top, "base_url", required=None if override else "base_url: https://example.com/"
    )
    base: str | None = None
    if file_base is not None:
        base, error = _check_base_url(file_base)
        if error:
            check.add(top.line_of("base_url"), f"base_url: {error}")
    if override is not None:
        base, error = _check_base_url(override)
        if error:
            check.problems.append(Problem("--base-url", None, error))
    resolve_base = base or _UNUSABLE_BASE

    description = check.text(top, "description") or ""
    language = check.text(top, "language")
    if language is not None and not _LANGUAGE.fullmatch(language):
        check.add(
            top.line_of("language"),
            f"language: expected a language tag such as 'en' or 'pt-BR', got {language!r}",
        )
    timezone = check.text(top, "timezone")
    if timezone is not None:
        error = _check_timezone(timezone)
        if error:
            check.add(top.line_of("timezone"), f"timezone: {error}")
    permalink = check.text(top, "permalink")
    if permalink is not None:
        error = _check_permalink(permalink)
        if error:
            check.add(top.line_of("permalink"), f"permalink: {error}")
    posts_per_page = check.integer(top, "posts_per_page", minimum=1)
    theme = check.text(top, "theme")
    if theme is not None and not theme.strip():
        check.add(top.line_of("theme"), "theme: must not be empty; remove it to use 'default'")

    output_text = check.text(top, "output_dir")
    content_text = check.text(top, "content_dir")
    output_dir = _under(root, output_text or "public")
    content_dir = _under(root, content_text or "content")
    if output_text is not None or content_text is not None:
        error = _check_output_dir(root, output_dir, content_dir)
        if error:
            check.add(top.line_of("output_dir" if output_text is not None else "content_dir"),
                      f"output_dir: {error}")

    author = _read_author(check, top, resolve_base)
    feeds = _read_feeds(check, top)
    fediverse = _read_fediverse(check, top, author, resolve_base, root, output_dir, timezone)

    if check.problems or title is None or base is None or author is None or fediverse is None:
        return None
    defaults = SiteConfig(root=root, title=title, base_url=base, author=author,
                          fediverse=fediverse)
    return SiteConfig(
        root=root,
        title=title,
        base_url=base,
        author=author,
        fediverse=fediverse,
        description=description,
        language=language or defaults.language,
        timezone=timezone or defaults.timezone,
        permalink=_normalise_permalink(permalink) if permalink else defaults.permalink,
        posts_per_page=posts_per_page if posts_per_page is not None else 10,
        theme=theme or defaults.theme,
        output_dir=output_dir,
        content_dir=content_dir,
        feeds=feeds,
        config_file=root / Path(check.file).name,
    )


def _read_author(check: _Checker, top: _Section, base: str) -> Author | None:
    section = check.subsection(
        top, "author", _AUTHOR_KEYS, required="author:` with `name: Your Name` under it"
    )
    if section is None:
        return None
    # Keep checking after a missing name, so every mistake in the section is reported.
    name = check.text(section, "name", required="name: Your Name")
    handle = check.text(section, "handle")
    if handle is None:
        handle = slugify(name or "")
        if not handle and name is not None:
            check.add(section.line, f"author.handle: cannot derive a handle from the name"
                      f" {name!r}; set `handle:` to a username such as 'alice'")
    elif not _USERNAME.fullmatch(handle):
        check.add(section.line_of("handle"), "author.handle: may contain only letters, digits,"
                  f" '_', '.' and '-' (e.g. 'alice'), got {handle!r}")
    avatar = check.url(section, "avatar", base)
    bio = check.text(section, "bio") or ""
    email = check.text(section, "email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        check.add(section.line_of("email"),
                  f"author.email: expected an address such as alice@example.com, got {email!r}")
    links: list[AuthorLink] = []
    for item in check.list_of_mappings(section, "links", _LINK_KEYS):
        link_name = check.text(item, "name", required="name: Code")
        link_url = check.url(item, "url", base, required="url: https://code.example/you",
                             schemes=("http", "https", "mailto"))
        if link_name is not None and link_url is not None:
            links.append(AuthorLink(name=link_name, url=link_url))
    if name is None:
        return None
    return Author(name=name, handle=handle, avatar=avatar, bio=bio, email=email,
                  links=tuple(links))


def _read_feeds(check: _Checker, top: _Section) -> FeedConfig:
    section = check.subsection(top, "feeds", _FEED_KEYS)
    default = FeedConfig()
    if section is None:
        return default
    items = check.integer(section, "items", minimum=1)

    def flag(key: str, fallback: bool) -> bool:
        value = check.boolean(section, key)
        return fallback if value is None else value

    return FeedConfig(
        atom=flag("atom", default.atom),
        rss=flag("rss", default.rss),
        json=flag("json", default.json),
        items=default.items if items is None else items,
        full_content=flag("full_content", default.full_content),
    )


def _read_fediverse(
    check: _Checker,
    top: _Section,
    author: Author | None,
    base: str,
    root: Path,
    output_dir: Path,
    timezone: str | None,
) -> FediverseConfig | None:
    section = check.subsection(top, "fediverse", _FEDIVERSE_KEYS)
    if section is None:
        section = _Section("fediverse", top.line, {})

    username = check.text(section, "username")
    if username is not None and not _USERNAME.fullmatch(username):
        check.add(section.line_of("username"), "fediverse.username: may contain only letters,"
                  f" digits, '_', '.' and '-' (e.g. 'alice'), got {username!r}")
    handle_domain = check.text(section, "handle_domain")
    if handle_domain is not None:
        handle_domain = handle_domain.strip().lower()
        if not _HOST_PORT.fullmatch(handle_domain):
            check.add(section.line_of("handle_domain"), "fediverse.handle_domain: expected a host"
                      f" name such as 'example.com' (no https://, no path), got {handle_domain!r}")
    display_name = check.text(section, "display_name")
    bio = check.text(section, "bio")
    avatar = check.url(section, "avatar", base)
    header = check.url(section, "header", base)
    fields: list[ProfileField] = []
    for item in check.list_of_mappings(section, "fields", _FIELD_KEYS):
        field_name = check.text(item, "name", required="name: Blog")
        field_value = check.text(item, "value", required="value: https://example.com/")
        if field_name is not None and field_value is not None:
            fields.append(ProfileField(name=field_name, value=field_value))
    also_known_as: list[str] = []
    for line, value in check.list_of_text(section, "also_known_as"):
        url, error = _check_absolute_url(value)
        if error:
            check.add(line, f"fediverse.also_known_as: {error}")
        else:
            also_known_as.append(url)
    post_type = check.choice(section, "post_type", ("note", "article"))
    note_content = check.choice(section, "note_content", ("full", "summary"))
    federate = check.boolean(section, "federate")
    discoverable = check.boolean(section, "discoverable")
    indexable = check.boolean(section, "indexable")
    manual = check.boolean(section, "manually_approves_followers")
    blocked: list[str] = []
    for line, value in check.list_of_text(section, "blocked"):
        entry, error = _check_blocked(value)
        if error:
            check.add(line, f"fediverse.blocked: {error}")
        else:
            blocked.append(entry)
    inbox_url = check.url(section, "inbox_url", base, schemes=("http", "https"))
    shared_inbox_url = check.url(section, "shared_inbox_url", base, schemes=("http", "https"))
    public_key_file = check.text(section, "public_key_file")
    if public_key_file is not None:
        key_path = _under(root, public_key_file)
        if not public_key_file.strip() or key_path == root:
            check.add(section.line_of("public_key_file"),
                      "fediverse.public_key_file: expected a file name such as"
                      " 'fedipress-public-key.pem'")
        elif key_path.resolve().is_relative_to(output_dir.resolve()):
            check.add(section.line_of("public_key_file"),
                      "fediverse.public_key_file: must not be inside the output directory (the"
                      " build replaces its contents); keep it beside site.yaml")
    published = check.text(section, "published")
    if published is not None:
        published, error = _check_datetime(published, timezone)
        if error:
            check.add(section.line_of("published"), f"fediverse.published: {error}")

    if author is None:
        return None
    default_inbox = urljoin(base, "inbox")
    return FediverseConfig(
        username=username or author.handle,
        handle_domain=handle_domain or urlsplit(base).netloc,
        display_name=display_name or author.name,
        bio=author.bio if bio is None else bio,
        inbox_url=inbox_url or default_inbox,
        shared_inbox_url=shared_inbox_url or inbox_url or default_inbox,
        avatar=avatar or author.avatar,
        header=header,
        fields=tuple(fields),
        also_known_as=tuple(also_known_as),
        post_type="article" if post_type == "article" else "note",
        note_content="summary" if note_content == "summary" else "full",
        federate=True if federate is None else federate,
        discoverable=True if discoverable is None else discoverable,
        indexable=True if indexable is None else indexable,
        manually_approves_followers=bool(manual),
        blocked=tuple(blocked),
        public_key_file=public_key_file or "fedipress-public-key.pem",
        published=published,
    )


# --- value checks (each returns the clean value and an error message, or None) ----------------


def _check_base_url(value: str) -> tuple[str | None, str | None]:
    example = "such as https://example.com/ or http://127.0.0.1:8000/"
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None, f"must be an absolute http(s) URL {example}, got {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, f"must be an absolute http(s) URL {example}, got {value!r}"
    if parts.query or parts.fragment or parts.username or parts.password:
        return None, f"must not contain a query, fragment or user name ({example}), got {value!r}"
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{netloc}{path}", None


def _check_absolute_url(value: str) -> tuple[str, str | None]:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return value, f"expected an absolute https:// URL, got {value!r}"
    return value.strip(), None


def _check_timezone(name: str) -> str | None:
    try:
        ZoneInfo(name)
        return None
    except (ZoneInfoNotFoundError, ValueError):
        pass
    known = available_timezones()
    by_lower = {zone.lower(): zone for zone in known}
    close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), by_lower, n=1)]
    hint = f"did you mean {close[0]!r}?" if close else "use a name such as 'Europe/Berlin' or 'UTC'"
    return f"unknown time zone {name!r}; {hint}"


def _check_permalink(pattern: str) -> str | None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError:
        return f"unbalanced braces in {pattern!r}; write placeholders as {{slug}}"
    unknown = sorted({n for n in names if n not in _PERMALINK_FIELDS})
    if unknown:
        known = " ".join("{" + n + "}" for n in _PERMALINK_FIELDS)
        return f"unknown placeholder {{{unknown[0]}}}; use only {known}"
    if "slug" not in names:
        return "must contain {slug} so every post gets its own URL, e.g. /posts/{slug}/"
    if not (pattern.endswith("/") or pattern.endswith(".html")):
        return f"must end with '/' (or '.html'), e.g. /posts/{{slug}}/, got {pattern!r}"
    if any(part == ".." for part in pattern.split("/")) or "?" in pattern or "#" in pattern:
        return f"must be a plain path such as /posts/{{slug}}/, got {pattern!r}"
    return None


def _normalise_permalink(pattern: str) -> str:
    return pattern if pattern.startswith("/") else "/" + pattern


def _check_output_dir(root: Path, output_dir: Path, content_dir: Path) -> str | None:
    out = output_dir.resolve()
    site = root.resolve()
    why = "the build deletes stale files in it; use a folder of its own such as 'public'"
    if out == site or site.is_relative_to(out):
        return f"must not be the site folder or one of its parents ({why})"
    content = content_dir.resolve()
    if out == content or content.is_relative_to(out) or out.is_relative_to(content):
        return f"must not be, contain or be inside the content folder ({why})"
    state = (root / ".fedipress").resolve()
    if state.is_relative_to(out) or out.is_relative_to(state):
        return f"must not contain or be inside .fedipress/, which holds the private key ({why})"
    return None


def _check_blocked(value: str) -> tuple[str, str | None]:
    text = value.strip()
    if "://" in text:
        return _check_absolute_url(text)
    domain = text.lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    if not _DOMAIN.fullmatch(domain) or "." not in domain:
        return text, ("expected a domain such as 'spam.example' or an actor URL such as"
                      f" 'https://spam.example/users/bob', got {value!r}")
    return domain, None


def _check_datetime(value: str, timezone: str | None) -> tuple[str | None, str | None]:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None, (
            f"expected an ISO date and time such as 2024-05-01T09:00:00+02:00, got {value!r}"
        )
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(timezone or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            return None, None  # the timezone problem is reported on its own line
    return moment.isoformat(), None


def _under(root: Path, value: str) -> Path:
    return Path(os.path.normpath(root / Path(value).expanduser()))


# --- the YAML node reader ---------------------------------------------------------------------

_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"


class _Entry(NamedTuple):
    key: Node
    value: Node


@dataclass
class _Section:
    """One mapping of site.yaml: its dotted `path`, where it starts, and its entries."""

    path: str
    line: int
    entries: dict[str, _Entry]

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def line_of(self, key: str) -> int:
        entry = self.entries.get(key)
        return _line(entry.key) if entry else self.line


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping (key: value lines)"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    return repr(cast(str, node.value))


class _Checker:
    """Reads typed values out of YAML nodes and collects every problem with its line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def section(self, node: Node, path: str, line: int, known: Sequence[str]) -> _Section:
        entries: dict[str, _Entry] = {}
        if not isinstance(node, MappingNode):
            return _Section(path, line, entries)
        where = f" in {path}" if path else ""
        for key_node, value_node in cast(list[tuple[Node, Node]], node.value):
            if not isinstance(key_node, ScalarNode):
                self.add(_line(key_node), f"a key{where} must be a plain word, got"
                         f" {_describe(key_node)}")
                continue
            key = cast(str, key_node.value)
            if key in entries:
                self.add(_line(key_node), f"duplicate key {key!r}{where} (first on line"
                         f" {_line(entries[key].key)}); keep only one")
            elif key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else "known keys: " + ", ".join(known))
                self.add(_line(key_node), f"unknown key {key!r}{where}; {hint}")
            else:
                entries[key] = _Entry(key_node, value_node)
        return _Section(path, line, entries)

    def subsection(
        self, parent: _Section, key: str, known: Sequence[str], *, required: str | None = None
    ) -> _Section | None:
        entry = parent.entries.get(key)
        if entry is None:
            if required:
                self.add(parent.line, f"missing required section {parent.name(key)!r}; add"
                         f" `{required}`")
            return None
        if _is_null(entry.value):
            # `feeds:` with nothing under it means "all defaults".
            return _Section(parent.name(key), _line(entry.key), {})
        if not isinstance(entry.value, MappingNode):
            self.add(_line(entry.key), f"{parent.name(key)}: expected indented `key: value`"
                     f" lines (a mapping), got {_describe(entry.value)}")
            return None
        return self.section(entry.value, parent.name(key), _line(entry.key), known)

    def _scalar(self, section: _Section, key: str, required: str | None) -> _Entry | None:
        entry = section.entries.get(key)
        if entry is None or _is_null(entry.value):
            if required:
                where = section.line if entry is None else _line(entry.key)
                what = "missing required key" if entry is None else "empty required key"
                self.add(where, f"{what} {section.name(key)!r}; add e.g. `{required}`")
            return None
        return entry

    def text(self, section: _Section, key: str, *, required: str | None = None) -> str | None:
        entry = self._scalar(section, key, required)
        if entry is None:
            return None
        if not isinstance(entry.value, ScalarNode):
            self.add(_line(entry.key), f"{section.name(key)}: expected text, got"
                     f" {_describe(entry.value)}")
            return None
        # The source text, not the YAML 1.1 reading: `language: no` is Norwegian, not False,
        # and `title: 1984` is a title.
        value = cast(str, entry.value.value)
        if required and not value.strip():
            self.add(_line(entry.key), f"{section.name(key)}: must not be empty; add e.g."
                     f" `{required}`")
            return None
        return value

    def integer(self, section: _Section, key: str, *, minimum: int) -> int | None:
        entry = self._scalar(section, key, None)
        if entry is None:
            return None
        node = entry.value
        if not (isinstance(node, ScalarNode) and node.tag == _INT):
            self.add(_line(entry.key), f"{section.name(key)}: expected a number, got"
                     f" {_describe(node)}")
            return None
        number = yaml.constructor.SafeConstructor().construct_yaml_int(node)
        if number < minimum:
            self.add(_line(entry.key), f"{section.name(key)}: must be at least {minimum},"
                     f" got {number}")
            return None
        return number

    def boolean(self, section: _Section, key: str) -> bool | None:
        entry = self._scalar(section, key, None)
        if entry is None:
            return None
        node = entry.value
        if not (isinstance(node, ScalarNode) and node.tag == _BOOL):
            self.add(_line(entry.key), f"{section.name(key)}: expected true or false, got"
                     f" {_describe(node)}")
            return None
        return yaml.constructor.SafeConstructor().construct_yaml_bool(node)

    def choice(self, section: _Section, key: str, options: Sequence[str]) -> str | None:
        value = self.text(section, key)
        if value is None:
            return None
        if value not in options:
            self.add(section.line_of(key), f"{section.name(key)}: must be one of"
                     f" {' | '.join(options)}, got {value!r}")
            return None
        return value

    def url(
        self,
        section: _Section,
        key: str,
        base: str,
        *,
        required: str | None = None,
        schemes: Sequence[str] = ("http", "https"),
    ) -> str | None:
        """An absolute URL, or a site-relative one ("/images/a.svg") resolved against base."""
        value = self.text(section, key, required=required)
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme:
            if parts.scheme not in schemes or (parts.scheme != "mailto" and not parts.netloc):
                self.add(section.line_of(key), f"{section.name(key)}: expected an https:// URL"
                         f" or a path on this site such as /images/me.png, got {value!r}")
                return None
            return value
        if value.startswith("//"):
            self.add(section.line_of(key), f"{section.name(key)}: write the scheme too"
                     f" (https:{value}) or a path on this site, got {value!r}")
            return None
        return urljoin(base, value.lstrip("/"))

    def _sequence(self, section: _Section, key: str) -> list[Node]:
        entry = self._scalar(section, key, None)
        if entry is None:
            return []
        if not isinstance(entry.value, SequenceNode):
            self.add(_line(entry.key), f"{section.name(key)}: expected a list (lines starting"
                     f" with '- '), got {_describe(entry.value)}")
            return []
        return cast(list[Node], entry.value.value)

    def list_of_text(self, section: _Section, key: str) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for node in self._sequence(section, key):
            if isinstance(node, ScalarNode) and not _is_null(node):
                out.append((_line(node), cast(str, node.value)))
            else:
                self.add(_line(node), f"{section.name(key)}: each entry must be text, got"
                         f" {_describe(node)}")
        return out

    def list_of_mappings(
        self, section: _Section | None, key: str, known: Sequence[str]
    ) -> list[_Section]:
        if section is None:
            return []
        out: list[_Section] = []
        for index, node in enumerate(self._sequence(section, key)):
            path = f"{section.name(key)}[{index + 1}]"
            if not isinstance(node, MappingNode):
                self.add(_line(node), f"{path}: expected `{known[0]}:` and `{known[1]}:` lines,"
                         f" got {_describe(node)}")
                continue
            out.append(self.section(node, path, _line(node), known))
        return out
