"""What the inbox decides about a reply or a mention before storing it: who its author addressed
(its audience), whether it mentions the blog, and whether the blog shows it (fediverse.comments,
fediverse.blocked_words).

The audience is read from the object's `to` and `cc` (the activity's when the object has none):
the public collection in `to` is public, in `cc` only unlisted; the author's followers collection
without it is followers-only; anything else is direct. Only public and unlisted ever reach a page
(store/conversations.py decides that); the rest is kept for the blog's author alone.

An edit may narrow the audience (a public reply made followers-only disappears at the next
build) but never widen it: what was sent to a few stays with the few. An edit is also checked
for blocked words again, so a reply cannot be approved and then changed into something else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..activitypub.remote_html import plain_text
from ..config import FediverseConfig
from ..store import Interaction, Store, Visibility
from ..wording import plural

__all__ = [
    "HIDDEN",
    "PUBLIC",
    "Review",
    "audience",
    "blocked_word",
    "follower_accepted",
    "mentions",
    "moderated",
    "narrower",
    "reply_text",
    "review",
    "revised",
]

log = logging.getLogger("fedipress.inbox")

# The three spellings of the public collection found in the wild (JSON-LD compaction of
# as:Public gives the short ones).
PUBLIC = frozenset({"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"})
_NARROWNESS: dict[Visibility, int] = {"public": 0, "unlisted": 1, "followers": 2, "direct": 3}
_MAX_ADDRESSEES = 1000  # more is no audience we need to read to the end
_MAX_TAGS = 200
HIDDEN = "hidden with `fedipress comments hide`"
NOT_A_FOLLOWER = "not a follower"
AWAITING = "awaiting approval (fediverse.comments: approved)"
MENTION = "mentions the blog without replying to a post"
_WORD_PREFIX = "blocked word "


def _addressees(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items[:_MAX_ADDRESSEES]:
        ref = item.get("id") if isinstance(item, Mapping) else item
        if isinstance(ref, str):
            found.append(ref)
    return found


def _followers_of(address: str, author: str) -> bool:
    """True when `address` is the author's followers collection. Actor documents name it, but
    the cached actor does not keep it: every implementation we know puts it at the actor's id
    plus /followers, or at least on the actor's host ending in /followers."""
    if address == author.rstrip("/") + "/followers":
        return True
    try:
        there, here = urlsplit(address), urlsplit(author)
    except ValueError:
        return False
    return bool(there.netloc) and there.netloc == here.netloc and there.path.endswith("/followers")


def audience(obj: Mapping[str, Any], activity: Mapping[str, Any], author: str) -> Visibility:
    """Who the author of `obj` addressed: public, unlisted, followers or direct."""
    source = obj if ("to" in obj or "cc" in obj) else activity
    to, cc = _addressees(source.get("to")), _addressees(source.get("cc"))
    if any(a in PUBLIC for a in to):
        return "public"
    if any(a in PUBLIC for a in cc):
        return "unlisted"
    if any(_followers_of(a, author) for a in to + cc):
        return "followers"
    return "direct"  # no addressing at all is not public either


def narrower(old: Visibility, new: Visibility) -> Visibility:
    """The narrower of two audiences: an edit never widens who may see a reply."""
    return new if _NARROWNESS[new] > _NARROWNESS[old] else old


def mentions(obj: Any, actor_id: str) -> bool:
    """True when `obj` mentions the blog's actor (a Mention tag naming it, or addressed to it)."""
    if not isinstance(obj, Mapping):
        return False
    tags = obj.get("tag")
    for tag in (tags if isinstance(tags, list) else [tags])[:_MAX_TAGS]:
        if isinstance(tag, Mapping) and tag.get("type") == "Mention":
            if tag.get("href") == actor_id:
                return True
    return actor_id in _addressees(obj.get("to")) + _addressees(obj.get("cc"))


_BLOCK_END = re.compile(r"<\s*(br|/p|p|/div|div|/li|li)\b", re.IGNORECASE)


def reply_text(html: str | None, limit: int = 2000) -> str:
    """A reply's HTML as one line of plain text: tags dropped (script and style with their
    content), entities decoded, control and bidi characters removed, paragraphs and line breaks
    a space; capped at `limit` characters. Safe to print on a terminal."""
    if not html:
        return ""
    return plain_text(_BLOCK_END.sub(lambda m: " " + m.group(0), html), limit=limit)


def blocked_word(text: str, words: tuple[str, ...]) -> str | None:
    """The first of `words` (already case-folded) found in `text` as a whole word or phrase:
    "ass" holds "you ass" but not "a class"."""
    folded = " ".join(text.split()).casefold()
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return word
    return None


@dataclass(frozen=True)
class Review:
    """Whether a reply is shown (`approved`) and, when not, why (`held_reason`)."""

    approved: bool
    held_reason: str | None


def review(config: FediverseConfig, store: Store, written: Interaction, text: str) -> Review:
    """The comment policy applied to a new reply, quote or mention whose plain text is `text`."""
    word = blocked_word(text, config.blocked_words)
    if word is not None:
        return Review(False, f"{_WORD_PREFIX}{word!r} (fediverse.blocked_words)")
    if written.kind == "mention":
        return Review(False, MENTION)
    if config.comments == "all":
        return Review(True, None)
    if config.comments == "followers":
        follower = store.get_follower(written.actor_id)
        if follower is not None and follower.state == "accepted":
            return Review(True, None)
        return Review(False, NOT_A_FOLLOWER)
    return Review(False, AWAITING)


def follower_accepted(config: FediverseConfig, store: Store, actor_id: str) -> int:
    """`actor_id`'s Follow was just accepted (by the inbox, or by `fedipress followers
    approve`): under `fediverse.comments: followers`, the replies and quotes held only because
    they did not follow are shown from the next build. Any other hold (a blocked word, a hide
    by hand) stays. Run in the transaction that accepts the Follow; how many were shown."""
    if config.comments != "followers":
        return 0
    shown = 0
    for i in store.written_interactions():
        if (i.actor_id == actor_id and i.kind != "mention" and not i.approved
                and i.held_reason == NOT_A_FOLLOWER):
            store.review_interaction(i.activity_id, approved=True, held_reason=None,
                                     visibility=i.visibility)
            shown += 1
    if shown:
        log.info("%s now follows: %s shown", actor_id[:200],
                 plural(shown, "held reply or quote", "held replies and quotes"))
    return shown


def moderated(
    config: FediverseConfig,
    store: Store,
    written: Interaction,
    obj: Mapping[str, Any],
    activity: Mapping[str, Any],
) -> Interaction:
    """A new reply or mention with its audience and the policy's verdict. Run inside the
    inbox's write transaction (whether its author follows is read there)."""
    visibility = audience(obj, activity, written.actor_id)
    verdict = review(config, store, written, reply_text(written.content_html))
    if verdict.held_reason is not None:
        log.info("%s %s from %s held: %s", written.kind, (written.reply_object_id or "")[:200],
                 written.actor_id[:200], verdict.held_reason)
    return replace(written, visibility=visibility, approved=verdict.approved,
                   held_reason=verdict.held_reason)


def revised(
    config: FediverseConfig,
    store: Store,
    object_id: str,
    obj: Mapping[str, Any],
    activity: Mapping[str, Any],
) -> None:
    """After an edit of a stored reply or mention: narrow its audience if the edit did, and
    hold it if the new text has a blocked word (or review it afresh if a blocked word held it
    and is gone). A reply the blog's author approved or hid by hand stays as they left it."""
    current = store.get_written(object_id)
    if current is None:
        return
    visibility = narrower(current.visibility, audience(obj, activity, current.actor_id))
    if visibility != current.visibility:
        log.info("%s %s narrowed from %s to %s by its author", current.kind, object_id[:200],
                 current.visibility, visibility)
    elif audience(obj, activity, current.actor_id) != visibility:
        log.info("%s %s: an edit cannot widen its audience; kept %s", current.kind,
                 object_id[:200], visibility)
    text = reply_text(current.content_html)
    verdict = Review(current.approved, current.held_reason)
    word = blocked_word(text, config.blocked_words)
    if word is not None:
        verdict = Review(False, f"{_WORD_PREFIX}{word!r} (fediverse.blocked_words)")
        log.info("%s %s held after an edit: %s", current.kind, object_id[:200], verdict.held_reason)
    elif (current.held_reason or "").startswith(_WORD_PREFIX):
        verdict = review(config, store, current, text)
    store.review_interaction(current.activity_id, approved=verdict.approved,
                             held_reason=verdict.held_reason, visibility=visibility)
