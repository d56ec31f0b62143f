"""The configuration's shape: frozen dataclasses for site.yaml, defaults filled in.

`config.sections` builds these from site.yaml; everything else only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

__all__ = [
    "COMMENT_POLICIES",
    "Author",
    "CommentPolicy",
    "AuthorLink",
    "INTERACT_PATH",
    "FediverseConfig",
    "FeedConfig",
    "ProfileField",
    "SiteConfig",
    "WebhookConfig",
]

# fediverse.comments: all (public replies shown at once), followers (those of accepted
# followers shown, the rest held), approved (every reply held for `fedipress comments approve`).
CommentPolicy = Literal["all", "followers", "approved"]
COMMENT_POLICIES: tuple[CommentPolicy, ...] = ("all", "followers", "approved")

# "Reply, like or boost from your server" without JavaScript: the inbox service's public
# redirect to the reader's server (federation/interact.py), at the root of its host.
INTERACT_PATH = "/.fedipress/interact"


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
class WebhookConfig:
    """`fediverse.webhook`: a command the service runs after new approved public interactions
    (federation/webhook.py). An argument list, never a shell line."""

    command: tuple[str, ...]
    every_minutes: int = 10  # at most one run per this many minutes
    timeout_seconds: int = 60
    pass_env: tuple[str, ...] = ()  # names of the service's variables the command also gets


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
    # Which public replies appear without the author's approval (`fedipress comments`).
    comments: CommentPolicy = "followers"
    blocked_words: tuple[str, ...] = ()  # lower-cased words or phrases that hold a reply
    public_key_file: str = "fedipress-public-key.pem"  # relative to the site root, committed
    published: str | None = None  # ISO datetime the actor came to be; default: oldest post
    # False: the blog has left (or never joined) the fediverse: the build writes no
    # ActivityPub documents and the host configuration answers 410 Gone for them.
    enabled: bool = True
    # True: publish announces nothing new; documents are still served, follows accepted.
    paused: bool = False
    # fediverse.comments_live: None (off), else the absolute URL of the service's public JSON
    # endpoint the post page's script reads (federation/live_comments.py serves it).
    comments_live: str | None = None
    webhook: WebhookConfig | None = None  # fediverse.webhook (federation/webhook.py)
    # True: the build keeps local copies of the conversation's avatars (federation/avatars.py);
    # False: pages reference them at their https URLs and the build fetches nothing.
    cache_avatars: bool = False
    # Who may quote a post (FEP-044f; front matter `quotes:` overrides it per post).
    quotes: Literal["anyone", "followers", "nobody"] = "anyone"
    # The service sends followers at most one count refresh (an Update) per post this often;
    # 0 turns count refreshes off.
    count_refresh_minutes: int = 15

    @property
    def interact_url(self) -> str:
        """Where the post page's form sends a reader without JavaScript: the inbox service's
        interact route on the inbox's host (the blog's own host, proxied there by `fedipress
        hosting`, or the service's own address when the blog is on a static host)."""
        parts = urlsplit(self.inbox_url)
        return f"{parts.scheme}://{parts.netloc}{INTERACT_PATH}"


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
    service_token_file: Path | None = None  # service.token_file: the owner API's token
    # store: a postgresql:// URL without a password (issue 15); None: SQLite in state_dir
    store_url: str | None = None

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
