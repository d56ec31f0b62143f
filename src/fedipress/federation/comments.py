"""`fedipress comments`: the blog's author reviews the replies, quotes and mentions the inbox
kept, and decides what the blog shows.

    list_comments(config)               # held, shown and private replies and quotes; mentions
    approve_comment(config, "a1b2c3d4") # shown at the next build
    hide_comment(config, "a1b2c3d4")    # gone at the next build
    block_author(config, "@bob@spam.example")   # or a domain, or an actor URL
    unblock_author(config, "spam.example")

Every row gets a short id: the first 8 hex digits of the SHA-256 of its activity id, so the id
stays the same from one listing to the next and across machines. A longer or shorter prefix (4
digits or more) works too; one matching several rows is refused with the candidates listed.
Text is shown as plain text (never the sender's HTML), with control and bidi characters removed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from ..activitypub.remote_html import safe_handle, terminal_safe
from ..config import SiteConfig
from ..errors import FedipressError
from ..store import Interaction, Store, open_site_store
from ..store.conversations import is_private, is_shown
from ..wording import plural
from .interactions import Unblocked, block_counted, unblock_target
from .moderation import HIDDEN, reply_text

__all__ = [
    "Blocked",
    "Comment",
    "CommentList",
    "approve_comment",
    "block_author",
    "comment_of",
    "find_comment",
    "hide_comment",
    "list_comments",
    "short_id",
    "unblock_author",
]

Status = Literal["shown", "held", "private", "mention"]
SHORT = 8
_MIN_PREFIX = 4


def short_id(activity_id: str) -> str:
    """The stable short id of a stored interaction."""
    return hashlib.sha256(activity_id.encode("utf-8", "surrogatepass")).hexdigest()[:SHORT]


@dataclass(frozen=True)
class Comment:
    """One reply, quote or mention as the author sees it."""

    id: str
    status: Status
    interaction: Interaction

    @property
    def text(self) -> str:
        return reply_text(self.interaction.content_html or self.interaction.content_safe_html)

    @property
    def author(self) -> str:
        handle = safe_handle(self.interaction.author_handle)
        return f"@{handle}" if handle else terminal_safe(self.interaction.actor_id)

    @property
    def why(self) -> str:
        """The status in words: private to whom, or held for what."""
        i = self.interaction
        if self.status == "private":
            return "followers only" if i.visibility == "followers" else "direct message"
        if self.status == "mention":
            return f"{i.visibility}; never shown on pages"
        if self.status == "held":
            return i.held_reason or "held"
        return i.visibility

    def record(self) -> dict[str, Any]:
        i = self.interaction
        return {
            "id": self.id,
            "kind": i.kind,
            "status": self.status,
            "reason": self.why,
            "visibility": i.visibility,
            "activity": i.activity_id,
            "object": i.reply_object_id,
            "post": None if i.kind == "mention" else i.object_id,
            "in_reply_to": i.in_reply_to,
            "actor": i.actor_id,
            "author": self.author,
            "published": i.published.isoformat(),
            "received_at": i.received_at.isoformat(),
            "url": i.url,
            "text": self.text,
        }

    def lines(self) -> list[str]:
        i = self.interaction
        when = i.published.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        where = (f"mentions the blog{f' in reply to {i.in_reply_to}' if i.in_reply_to else ''}"
                 if i.kind == "mention" else f"on {i.object_id}")
        head = f"{self.id}  {i.kind:<5}  {self.status} ({self.why})  {when}  {self.author}"
        text = self.text
        body = text if len(text) <= 300 else text[:299] + "…"
        lines = [head, f"          {where}", *([f"          {body}"] if body else [])]
        return [terminal_safe(line) for line in lines]


def comment_of(i: Interaction) -> Comment:
    if i.kind == "mention":
        status: Status = "mention"
    elif is_private(i):
        status = "private"
    elif is_shown(i):
        status = "shown"
    else:
        status = "held"
    return Comment(short_id(i.activity_id), status, i)


@dataclass(frozen=True)
class CommentList:
    """What `fedipress comments` prints: replies and quotes, then mentions, newest first."""

    comments: tuple[Comment, ...]

    def lines(self, *, as_json: bool = False) -> list[str]:
        if as_json:
            return [terminal_safe(json.dumps(c.record(), ensure_ascii=False))
                    for c in self.comments]
        written = [c for c in self.comments if c.status != "mention"]
        mentioned = [c for c in self.comments if c.status == "mention"]
        out: list[str] = []
        if not written:
            out.append("no replies or quotes yet")
        for c in written:
            out.extend(c.lines())
        if mentioned:
            out.extend(["", "mentions (not replies to a post; never shown on pages):"])
            for c in mentioned:
                out.extend(c.lines())
        held = sum(c.status == "held" for c in written)
        if held:
            out.extend(["", f"{held} held: `fedipress comments approve ID` shows one at the"
                            " next build"])
        return out


def _with_store(config: SiteConfig) -> Store:
    # Wherever the blog keeps it (FEDIPRESS_DATABASE_URL, site.yaml `store:`, else state.db).
    return open_site_store(config)


def list_comments(
    config: SiteConfig, *, status: Status | None = None, limit: int | None = None
) -> CommentList:
    """`fedipress comments`: every reply, quote and mention, newest first (optionally only
    those of one status, at most `limit`)."""
    store = _with_store(config)
    try:
        rows = store.written_interactions()
    finally:
        store.close()
    found = [comment_of(i) for i in rows]
    if status is not None:
        found = [c for c in found if c.status == status]
    return CommentList(tuple(found[:limit] if limit else found))


def find_comment(store: Store, ident: str) -> Comment:
    """The one reply, quote or mention `ident` names: a short id (or a prefix of 4+ hex digits)
    or its full activity or object id."""
    wanted = ident.strip().lower()
    rows = [comment_of(i) for i in store.written_interactions()]
    exact = [c for c in rows if ident.strip() in (c.interaction.activity_id,
                                                  c.interaction.reply_object_id)]
    if exact:
        return exact[0]
    if len(wanted) < _MIN_PREFIX or len(wanted) > 64 or wanted.strip("0123456789abcdef"):
        raise FedipressError(
            f"{ident!r} is not a comment id: give the 8-character id `fedipress comments` lists"
            " (at least 4 of its characters)"
        )
    full = [c for c in rows
            if hashlib.sha256(c.interaction.activity_id.encode("utf-8", "surrogatepass"))
            .hexdigest().startswith(wanted)]
    if not full:
        raise FedipressError(f"no reply, quote or mention has the id {ident}; `fedipress"
                             " comments` lists them")
    if len(full) > 1:
        listed = ", ".join(f"{c.id} ({c.author})" for c in full[:10])
        raise FedipressError(f"the id {ident} matches {plural(len(full), 'comment')}: {listed};"
                             " give more"
                             " of its characters")
    return full[0]


def approve_comment(config: SiteConfig, ident: str) -> Comment:
    """Show a held reply or quote from the next build on. A private one or a mention cannot be
    shown: that is refused, not ignored."""
    store = _with_store(config)
    try:
        with store.transaction():
            found = find_comment(store, ident)
            i = found.interaction
            if found.status == "mention":
                raise FedipressError(f"{found.id} mentions the blog without replying to a post;"
                                     " mentions are listed for you, never shown on pages")
            if found.status == "private":
                raise FedipressError(f"{found.id} is a {found.why} reply; its author did not make"
                                     " it public, so the blog never shows it")
            store.review_interaction(i.activity_id, approved=True, held_reason=None)
        return comment_of(replace(i, approved=True, held_reason=None))
    finally:
        store.close()


def hide_comment(config: SiteConfig, ident: str) -> Comment:
    """Keep a reply or quote off the blog from the next build on (it stays listed, held)."""
    store = _with_store(config)
    try:
        with store.transaction():
            found = find_comment(store, ident)
            store.review_interaction(found.interaction.activity_id, approved=False,
                                     held_reason=HIDDEN)
        return Comment(found.id, "held" if found.status == "shown" else found.status,
                       found.interaction)
    finally:
        store.close()


@dataclass(frozen=True)
class Blocked:
    """What `block_author` did: the block's target and what it removed."""

    target: str
    added: bool
    followers: int
    interactions: int


def _resolve_author(store: Store, target: str) -> str:
    """An actor URL or domain as given; a handle (@bob@host or bob@host) as the actor id of a
    stored reply, reaction or follower with that handle."""
    text = target.strip()
    if "://" in text or "@" not in text:
        return text
    handle = text.lstrip("@").lower()
    for i in store.written_interactions() + store.recent_interactions(limit=10_000):
        if (i.author_handle or "").lstrip("@").lower() == handle:
            return i.actor_id
    for follower in store.iter_followers(state=None):
        if (follower.handle or "").lstrip("@").lower() == handle:
            return follower.actor_id
    raise FedipressError(f"no reply, reaction or follower of this blog has the handle {text};"
                         " give the actor URL (https://host/users/name) or the domain")


def block_author(config: SiteConfig, target: str) -> Blocked:
    """Block an author (handle or actor URL) or a whole domain: the inbox refuses them from now
    on, and their follow, replies, quotes and reactions are removed, so the next build no longer
    shows them."""
    store = _with_store(config)
    try:
        with store.transaction():
            resolved = _resolve_author(store, target)
            # The same block as `fedipress block`, counted.
            added, followers, interactions = block_counted(store, resolved, datetime.now(UTC))
    finally:
        store.close()
    return Blocked(resolved, added, followers, interactions)


def unblock_author(config: SiteConfig, target: str) -> Unblocked:
    """Lift a block made with `comments block` or `fedipress block` (a handle is looked up
    among those the store still knows, else refused). What the block removed stays removed."""
    resolved = target.strip()
    if "@" in resolved and "://" not in resolved:
        raise FedipressError(f"give the actor URL or domain that `fedipress blocks` lists, not"
                             f" the handle {resolved}")
    return unblock_target(config, resolved)
