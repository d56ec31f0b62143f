"""A post's public conversation shaped for a template: replies threaded, faces capped, times
formatted. Themes get the result as `conversation` (themes.md in the docs lists every field).

    view = conversation_view(conv, tz=config.tz, post_date=post.date)   # None when empty

Pure: data in, data out, no clock (times are absolute, or relative to the post's own date),
so the same conversation always gives the same page.

Threading: a reply nests under the reply it answers, down to MAX_DEPTH levels; a reply to a
reply at the deepest level is shown flat beside it, in time order, with `replying_to` naming
whom it answers. A reply whose parent is not shown (held, deleted, private) or that answers
something else is listed at the top, so nothing public is dropped. Faces (likes, boosts,
quotes) are capped at MAX_FACES, the earliest first, with the rest counted in `more`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from urllib.parse import urlsplit

from ..activitypub.conversation import Person, PostConversation, Reaction, Reply

__all__ = [
    "MAX_DEPTH",
    "MAX_FACES",
    "ConversationView",
    "Faces",
    "PersonView",
    "ReactionView",
    "ReplyView",
    "TimeView",
    "conversation_view",
]

MAX_DEPTH = 3  # nested levels shown; deeper replies are flattened under the third
MAX_FACES = 12  # faces shown per kind; the rest are "and N more"
# A local copy made by `fediverse.cache_avatars` (federation/avatars.py): a path on the blog
# named by the image's content hash. Nothing else that is not https is shown as a picture.
_LOCAL_AVATAR = re.compile(r"/(?:[A-Za-z0-9._~-]+/)*avatars/[0-9a-f]{32}\.(?:png|jpg|gif|webp)")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class TimeView:
    """A moment: `iso` for `<time datetime>` (UTC, as the sender said it), `text` in the site's
    time zone ("1 May 2026, 10:05"), `date` alone ("1 May 2026"), `relative` to the post
    ("3 hours after the post"; "" when not known)."""

    iso: str
    text: str
    date: str
    relative: str = ""


@dataclass(frozen=True)
class PersonView:
    """Someone in the conversation. `name` is never empty (the handle, or the server's name,
    stands in); `handle` is `user@server` or ""; `url` their profile (http or https) or None;
    `avatar` an https URL, a local copy's path on the blog ("/avatars/<hash>.png", with
    `fediverse.cache_avatars`) or None (then show `initial` in a placeholder)."""

    id: str
    name: str
    handle: str
    url: str | None
    avatar: str | None
    initial: str


@dataclass(frozen=True)
class ReplyView:
    id: str
    url: str | None  # the original on its author's server (http or https), else None
    author: PersonView
    published: TimeView
    updated: TimeView | None  # set when the author edited the reply
    content_html: str  # already sanitised to the reply allowlist: print with |safe
    depth: int  # 1 for a reply to the post
    replying_to: PersonView | None  # whom a flattened (or orphaned) reply answers
    replies: tuple[ReplyView, ...]  # nested under this one, time order
    anchor: str  # a stable id for the element ("reply-<hex>")

    @property
    def edited(self) -> bool:
        return self.updated is not None


@dataclass(frozen=True)
class ReactionView:
    kind: str  # "like", "boost" or "quote"
    person: PersonView
    published: TimeView
    url: str | None  # for a quote: the quoting post


@dataclass(frozen=True)
class Faces:
    """One kind of reaction: `count` in all, `shown` (at most MAX_FACES), `more` not shown."""

    kind: str
    count: int
    shown: tuple[ReactionView, ...]
    more: int


@dataclass(frozen=True)
class ConversationView:
    object_id: str
    replies: tuple[ReplyView, ...]  # top level, time order; each carries its own replies
    reply_count: int  # every reply shown, at any depth
    likes: Faces
    boosts: Faces
    quotes: Faces

    @property
    def reactions(self) -> tuple[Faces, ...]:
        """The kinds that have at least one reaction, likes then boosts then quotes."""
        return tuple(f for f in (self.likes, self.boosts, self.quotes) if f.count)


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _relative(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return ""
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400 * 7, "week"),
                       (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'} after the post"
    return "minutes after the post"


def _time(value: str, tz: tzinfo, post_date: datetime | None) -> TimeView:
    parsed = _parse_time(value)
    if parsed is None:  # not a date: shown as sent (escaped), never guessed at
        return TimeView(iso=value, text=value, date=value)
    local = parsed.astimezone(tz)
    day = f"{local.day} {_MONTHS[local.month - 1]} {local.year}"
    relative = _relative(parsed - post_date) if post_date is not None else ""
    return TimeView(iso=value, text=f"{day}, {local:%H:%M}", date=day, relative=relative)


def _http(url: str | None) -> str | None:
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def _person(p: Person) -> PersonView:
    handle = p.handle.lstrip("@")
    host = urlsplit(p.id).hostname or ""
    name = p.name.strip() or (f"@{handle}" if handle else host) or "someone"
    initial = next((c.upper() for c in name if c.isalnum()), "?")
    avatar = p.avatar if p.avatar and (urlsplit(p.avatar).scheme == "https"
                                       or _LOCAL_AVATAR.fullmatch(p.avatar)) else None
    return PersonView(id=p.id, name=name, handle=handle, url=_http(p.url) or _http(p.id),
                      avatar=avatar, initial=initial)


def _anchor(reply_id: str) -> str:
    # A short, stable, HTML-safe id derived from the reply's id (no hashlib: FNV-1a, 64 bit).
    h = 0xCBF29CE484222325
    for byte in reply_id.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"reply-{h:016x}"


def _faces(kind: str, reactions: tuple[Reaction, ...], tz: tzinfo,
           post_date: datetime | None) -> Faces:
    shown = tuple(
        ReactionView(kind, _person(r.actor), _time(r.published, tz, post_date), _http(r.url))
        for r in reactions[:MAX_FACES]
    )
    return Faces(kind, len(reactions), shown, max(0, len(reactions) - len(shown)))


def _threads(replies: tuple[Reply, ...], object_id: str, tz: tzinfo,
             post_date: datetime | None) -> tuple[tuple[ReplyView, ...], int]:
    by_id = {r.id: r for r in replies}
    children: dict[str, list[Reply]] = {}
    top: list[Reply] = []
    for r in replies:  # already in time order (sort_replies)
        parent = r.in_reply_to
        if parent != object_id and parent in by_id and parent != r.id:
            children.setdefault(parent, []).append(r)
        else:
            top.append(r)
    placed: set[str] = set()
    people: dict[str, PersonView] = {}

    def person(r: Reply) -> PersonView:
        view = people.get(r.id)
        if view is None:
            view = people[r.id] = _person(r.author)
        return view

    def descendants(r: Reply) -> list[Reply]:
        found: list[Reply] = []
        stack = list(reversed(children.get(r.id, [])))
        while stack:
            child = stack.pop()
            if child.id in placed:
                continue
            placed.add(child.id)
            found.append(child)
            stack.extend(reversed(children.get(child.id, [])))
        return found

    def view(r: Reply, depth: int, replying_to: PersonView | None) -> ReplyView:
        placed.add(r.id)
        if depth < MAX_DEPTH:
            nested = tuple(view(c, depth + 1, None) for c in children.get(r.id, [])
                           if c.id not in placed)
        else:  # the deepest level: everything below it, flat and in time order
            flat = sorted(descendants(r), key=lambda c: (c.published, c.id))
            # Each names whom it answers, unless that is the reply they are listed under.
            nested = tuple(
                _reply(c, depth + 1, person(by_id[c.in_reply_to])
                       if c.in_reply_to != r.id else None, (), tz, post_date, person(c))
                for c in flat
            )
        return _reply(r, depth, replying_to, nested, tz, post_date, person(r))

    shown = [view(r, 1, None) for r in top]
    # Replies in a loop of in_reply_to (a answers b answers a) are reached from nowhere: they
    # are public, so they are listed at the top rather than dropped.
    for r in replies:
        if r.id not in placed:
            shown.append(view(r, 1, None))
    return tuple(shown), len(placed)


def _reply(r: Reply, depth: int, replying_to: PersonView | None,
           nested: tuple[ReplyView, ...], tz: tzinfo, post_date: datetime | None,
           author: PersonView) -> ReplyView:
    return ReplyView(
        id=r.id,
        url=_http(r.url) or _http(r.id),
        author=author,
        published=_time(r.published, tz, post_date),
        updated=_time(r.updated, tz, post_date) if r.updated else None,
        content_html=r.content_html,
        depth=depth,
        replying_to=replying_to,
        replies=nested,
        anchor=_anchor(r.id),
    )


def conversation_view(conv: PostConversation | None, *, tz: tzinfo,
                      post_date: datetime | None = None) -> ConversationView | None:
    """The template's `conversation`, or None when there is nothing public to show."""
    if conv is None or conv.empty:
        return None
    replies, count = _threads(conv.replies, conv.object_id, tz, post_date)
    return ConversationView(
        object_id=conv.object_id,
        replies=replies,
        reply_count=count,
        likes=_faces("like", conv.likes, tz, post_date),
        boosts=_faces("boost", conv.boosts, tz, post_date),
        quotes=_faces("quote", conv.quotes, tz, post_date),
    )
