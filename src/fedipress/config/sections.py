"""The site.yaml schema: which keys each section has and how each value is checked.

Each `read_*` function reads one section through a `Checker`, which collects every problem
with its line, and returns the dataclass, or None when a required part is missing or wrong.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

from yaml.nodes import MappingNode

from ..errors import Problem
from ..generator.slug import slugify
from .live import read_comments_live, read_webhook
from .schema import Checker, Section, node_line
from .settings import (
    COMMENT_POLICIES,
    Author,
    AuthorLink,
    FediverseConfig,
    FeedConfig,
    ProfileField,
    SiteConfig,
)
from .values import (
    HOST_PORT,
    check_absolute_url,
    check_base_url,
    check_blocked,
    check_blocked_word,
    check_datetime,
    check_output_dir,
    check_permalink,
    check_timezone,
    normalise_permalink,
    real,
    under,
)

__all__ = ["AUTHOR_KEYS", "FEDIVERSE_KEYS", "FEED_KEYS", "TOP_KEYS", "read_site"]

TOP_KEYS = (
    "title", "base_url", "description", "language", "timezone", "permalink", "posts_per_page",
    "theme", "output_dir", "content_dir", "author", "feeds", "fediverse", "service", "store",
)  # fmt: skip
SERVICE_KEYS = ("token_file",)
AUTHOR_KEYS = ("name", "handle", "avatar", "bio", "email", "links")
_LINK_KEYS = ("name", "url")
FEED_KEYS = ("atom", "rss", "json", "items", "full_content")
_FIELD_KEYS = ("name", "value")
FEDIVERSE_KEYS = (
    "username", "handle_domain", "display_name", "bio", "avatar", "header", "fields",
    "also_known_as", "post_type", "note_content", "federate", "discoverable", "indexable",
    "manually_approves_followers", "blocked", "inbox_url", "shared_inbox_url",
    "public_key_file", "published", "enabled", "paused",
    "comments_live", "webhook",
    "comments", "blocked_words", "cache_avatars",
    "quotes", "count_refresh_minutes",
)  # fmt: skip

_USERNAME = re.compile(r"[A-Za-z0-9_.-]+")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
# A placeholder URL used only to keep resolving when base_url itself is broken; a config
# with a broken base_url is never returned, so this value never escapes.
_UNUSABLE_BASE = "https://base-url.invalid/"
# The most posts on a page or entries in a feed: far above any real use, and it keeps a
# mistyped 5000-digit number from reaching int() (which refuses over 4300 digits).
_MAX_COUNT = 100_000


def read_site(
    check: Checker,
    document: MappingNode,
    root: Path,
    override: str | None,
    *,
    require_content: bool = False,
) -> SiteConfig | None:
    top = check.section(document, "", node_line(document), TOP_KEYS)

    title = check.text(top, "title", required="title: My Blog")
    file_base = check.text(
        top, "base_url", required=None if override else "base_url: https://example.com/"
    )
    base: str | None = None
    if file_base is not None:
        base, error = check_base_url(file_base)
        if error:
            check.add(top.line_of("base_url"), f"base_url: {error}")
    if override is not None:
        base, error = check_base_url(override)
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
        error = check_timezone(timezone)
        if error:
            check.add(top.line_of("timezone"), f"timezone: {error}")
    permalink = check.text(top, "permalink")
    if permalink is not None:
        error = check_permalink(permalink)
        if error:
            check.add(top.line_of("permalink"), f"permalink: {error}")
    posts_per_page = check.integer(top, "posts_per_page", minimum=1, maximum=_MAX_COUNT)
    theme = check.text(top, "theme")
    if theme is not None and not theme.strip():
        check.add(top.line_of("theme"), "theme: must not be empty; remove it to use 'default'")

    output_text = check.text(top, "output_dir")
    content_text = check.text(top, "content_dir")
    output_dir = under(root, output_text or "public")
    content_dir = under(root, content_text or "content")
    # Checked with the defaults too: `public` or `themes` may be a symlink into a source folder.
    error = check_output_dir(root, output_dir, content_dir)
    if error:
        check.add(
            top.line_of("output_dir" if output_text is not None else "content_dir"),
            f"output_dir{'' if output_text is not None else ' (public/ by default)'}: {error}",
        )

    if require_content:
        _check_content_dir(check, top, root, content_dir, content_text)

    author = _read_author(check, top, resolve_base)
    feeds = _read_feeds(check, top)
    fediverse = _read_fediverse(check, top, author, resolve_base, root, output_dir, timezone)
    token_file = _read_service(check, top, root, output_dir)
    store_url = _read_store(check, top)

    if check.problems or title is None or base is None or author is None or fediverse is None:
        return None
    defaults = SiteConfig(root=root, title=title, base_url=base, author=author, fediverse=fediverse)
    return SiteConfig(
        root=root,
        title=title,
        base_url=base,
        author=author,
        fediverse=fediverse,
        description=description,
        language=language or defaults.language,
        timezone=timezone or defaults.timezone,
        permalink=normalise_permalink(permalink) if permalink else defaults.permalink,
        posts_per_page=posts_per_page if posts_per_page is not None else 10,
        theme=theme or defaults.theme,
        output_dir=output_dir,
        content_dir=content_dir,
        feeds=feeds,
        config_file=root / Path(check.file).name,
        service_token_file=token_file,
        store_url=store_url,
    )


def _read_service(check: Checker, top: Section, root: Path, output_dir: Path) -> Path | None:
    """service.token_file: the owner token of `fedipress inbox`'s API, in a file (a secret:
    never under the output directory, which is published)."""
    section = check.subsection(top, "service", SERVICE_KEYS)
    if section is None:
        return None
    text = check.text(section, "token_file")
    if text is None:
        return None
    path = under(root, text)
    if not text.strip() or path == root:
        check.add(section.line_of("token_file"),
                  "service.token_file: expected a file name such as '/etc/fedipress/token'")
        return None
    if real(path).is_relative_to(real(output_dir)):
        check.add(section.line_of("token_file"),
                  "service.token_file: must not be inside the output directory (everything"
                  " there is published); keep the token outside it")
        return None
    return path


def _read_store(check: Checker, top: Section) -> str | None:
    """store: a postgresql:// URL (issue 15); absent means the SQLite file in .fedipress/.

    site.yaml is usually in git, so a password is refused here: it comes from PGPASSWORD or a
    libpq password file (~/.pgpass, PGPASSFILE), or the whole URL from FEDIPRESS_DATABASE_URL."""
    text = check.text(top, "store")
    if text is None:
        return None
    url = text.strip()
    line = top.line_of("store")
    if not url.startswith(("postgresql://", "postgres://")):
        check.add(line, "store: expected a PostgreSQL URL such as"
                  " 'postgresql://fedipress@db.example/blog'; remove the key to keep the SQLite"
                  " file in .fedipress/")
        return None
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qs(parts.query)
    except ValueError:
        check.add(line, "store: not a valid URL; expected postgresql://user@host/database")
        return None
    if password is not None or "password" in query:
        check.add(line, "store: holds a password, and site.yaml is usually committed; remove it"
                  " and give the password in PGPASSWORD or a libpq password file (~/.pgpass),"
                  " or the whole URL in FEDIPRESS_DATABASE_URL")
        return None
    return url


def _check_content_dir(
    check: Checker, top: Section, root: Path, content_dir: Path, content_text: str | None
) -> None:
    """The content folder must exist: built from a missing one, the site would have no posts,
    the build would delete the pages of all of them and publish would announce Deletes."""
    if content_dir.is_dir():
        return
    if content_text is None:
        check.add(
            None,
            "no content/ folder next to it; create content/posts/ for your posts, or set"
            " `content_dir:` to the folder that holds them",
        )
        return
    if content_dir.is_symlink():
        why = "a symlink to something that is not there"
    elif content_dir.exists():
        why = "it is a file"
    else:
        why = "it does not exist"
    try:
        folders = [entry.name for entry in os.scandir(root) if entry.is_dir()]
    except OSError:
        folders = []
    close = difflib.get_close_matches(content_text.strip().strip("/"), folders, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "create it or correct the name"
    check.add(
        top.line_of("content_dir"),
        f"content_dir: {content_text!r} is not a folder ({why}); {hint}",
    )


def _read_author(check: Checker, top: Section, base: str) -> Author | None:
    section = check.subsection(
        top, "author", AUTHOR_KEYS, required="author:` with `name: Your Name` under it"
    )
    if section is None:
        return None
    # Keep checking after a missing name, so every mistake in the section is reported.
    name = check.text(section, "name", required="name: Your Name")
    handle = check.text(section, "handle")
    if handle is None:
        handle = slugify(name or "")
        if not handle and name is not None:
            check.add(
                section.line,
                f"author.handle: cannot derive a handle from the name"
                f" {name!r}; set `handle:` to a username such as 'alice'",
            )
    elif not _USERNAME.fullmatch(handle):
        check.add(
            section.line_of("handle"),
            "author.handle: may contain only letters, digits,"
            f" '_', '.' and '-' (e.g. 'alice'), got {handle!r}",
        )
    avatar = check.url(section, "avatar", base)
    bio = check.text(section, "bio") or ""
    email = check.text(section, "email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        check.add(
            section.line_of("email"),
            f"author.email: expected an address such as alice@example.com, got {email!r}",
        )
    links: list[AuthorLink] = []
    for item in check.list_of_mappings(section, "links", _LINK_KEYS):
        link_name = check.text(item, "name", required="name: Code")
        link_url = check.url(
            item,
            "url",
            base,
            required="url: https://code.example/you",
            schemes=("http", "https", "mailto"),
        )
        if link_name is not None and link_url is not None:
            links.append(AuthorLink(name=link_name, url=link_url))
    if name is None:
        return None
    return Author(name=name, handle=handle, avatar=avatar, bio=bio, email=email, links=tuple(links))


def _read_feeds(check: Checker, top: Section) -> FeedConfig:
    section = check.subsection(top, "feeds", FEED_KEYS)
    default = FeedConfig()
    if section is None:
        return default
    items = check.integer(section, "items", minimum=1, maximum=_MAX_COUNT)

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
    check: Checker,
    top: Section,
    author: Author | None,
    base: str,
    root: Path,
    output_dir: Path,
    timezone: str | None,
) -> FediverseConfig | None:
    section = check.subsection(top, "fediverse", FEDIVERSE_KEYS)
    if section is None:
        section = Section("fediverse", top.line, {})

    username = check.text(section, "username")
    if username is not None and not _USERNAME.fullmatch(username):
        check.add(
            section.line_of("username"),
            "fediverse.username: may contain only letters,"
            f" digits, '_', '.' and '-' (e.g. 'alice'), got {username!r}",
        )
    handle_domain = check.text(section, "handle_domain")
    if handle_domain is not None:
        handle_domain = handle_domain.strip().lower()
        if not HOST_PORT.fullmatch(handle_domain):
            check.add(
                section.line_of("handle_domain"),
                "fediverse.handle_domain: expected a host"
                f" name such as 'example.com' (no https://, no path), got {handle_domain!r}",
            )
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
    also_known_as = check.list_of_checked(section, "also_known_as", check_absolute_url)
    post_type = check.choice(section, "post_type", ("note", "article"))
    note_content = check.choice(section, "note_content", ("full", "summary"))
    federate = check.boolean(section, "federate")
    discoverable = check.boolean(section, "discoverable")
    indexable = check.boolean(section, "indexable")
    manual = check.boolean(section, "manually_approves_followers")
    blocked = check.list_of_checked(section, "blocked", check_blocked)
    comments = check.choice(section, "comments", COMMENT_POLICIES)
    blocked_words = check.list_of_checked(section, "blocked_words", check_blocked_word)
    inbox_url = check.url(section, "inbox_url", base, schemes=("http", "https"))
    shared_inbox_url = check.url(section, "shared_inbox_url", base, schemes=("http", "https"))
    public_key_file = check.text(section, "public_key_file")
    if public_key_file is not None:
        key_path = under(root, public_key_file)
        if not public_key_file.strip() or key_path == root:
            check.add(
                section.line_of("public_key_file"),
                "fediverse.public_key_file: expected a file name such as"
                " 'fedipress-public-key.pem'",
            )
        elif real(key_path).is_relative_to(real(output_dir)):
            check.add(
                section.line_of("public_key_file"),
                "fediverse.public_key_file: must not be inside the output directory (the"
                " build replaces its contents); keep it beside site.yaml",
            )
    enabled = check.boolean(section, "enabled")
    paused = check.boolean(section, "paused")
    if enabled is False and paused:
        # Both at once is a contradiction the author should resolve, not one we guess at.
        check.add(
            section.line_of("paused"),
            "fediverse.paused: has no effect with fediverse.enabled: false (the blog has left"
            " the fediverse); remove one of them",
        )
    cache_avatars = check.boolean(section, "cache_avatars")
    quotes = check.choice(section, "quotes", ("anyone", "followers", "nobody"))
    count_refresh = check.integer(section, "count_refresh_minutes", minimum=0, maximum=10_080)
    published = check.text(section, "published")
    if published is not None:
        published, error = check_datetime(published, timezone)
        if error:
            check.add(section.line_of("published"), f"fediverse.published: {error}")

    comments_live = read_comments_live(check, section, base)
    webhook = read_webhook(check, section)

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
        comments="followers" if comments is None else comments,  # type: ignore[arg-type]
        blocked_words=tuple(dict.fromkeys(blocked_words)),
        public_key_file=public_key_file or "fedipress-public-key.pem",
        published=published,
        enabled=True if enabled is None else enabled,
        paused=bool(paused),
        comments_live=comments_live,
        webhook=webhook,
        cache_avatars=bool(cache_avatars),
        quotes="followers" if quotes == "followers" else "nobody" if quotes == "nobody"
        else "anyone",
        count_refresh_minutes=15 if count_refresh is None else count_refresh,
    )
