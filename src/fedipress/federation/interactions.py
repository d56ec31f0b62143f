"""`fedipress interactions` (recent likes, boosts, replies) and `fedipress block`.

    fedipress interactions            # a table for people
    fedipress interactions --json     # one JSON object per line, for scripts
    fedipress block spam.example      # or an actor URL; stored, applied by the inbox at once
    fedipress unblock spam.example    # lift it
    fedipress blocks                  # what is blocked: these and site.yaml's fediverse.blocked
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..activitypub.remote_html import safe_handle, terminal_safe
from ..config import SiteConfig
from ..errors import FedipressError
from ..store import Interaction, Store, open_site_store
from ..store.conversations import is_private, is_shown
from .moderation import reply_text

__all__ = [
    "BlockList",
    "Unblocked",
    "block",
    "block_counted",
    "block_target",
    "interaction_json",
    "interaction_line",
    "interaction_record",
    "list_blocks",
    "purge_blocked",
    "recent_interactions",
    "unblock_target",
]

_KIND = {"like": "Like", "announce": "Announce", "reply": "Create", "quote": "QuoteRequest",
         "mention": "Create"}
_WRITTEN = ("reply", "quote", "mention")


def interaction_json(i: Interaction) -> str:
    """`interaction_record` as one JSON line, safe to print on a terminal (terminal_safe)."""
    return terminal_safe(json.dumps(interaction_record(i), ensure_ascii=False))


def interaction_record(i: Interaction) -> dict[str, Any]:
    """The --json line: activity id, type, actor, object, and for replies the content."""
    record: dict[str, Any] = {
        "id": i.activity_id,
        "type": _KIND[i.kind],
        "kind": i.kind,
        "actor": i.actor_id,
        "object": i.object_id,
        "published": i.published.isoformat(),
        "received_at": i.received_at.isoformat(),
        "author_name": i.author_name,
        "author_handle": i.author_handle,
    }
    if i.kind in _WRITTEN:
        record.update(
            text=reply_text(i.content_html or i.content_safe_html),
            visibility=i.visibility,
            approved=i.approved,
            held_reason=i.held_reason,
            content=i.content_html,
            content_safe=i.content_safe_html,
            reply_object=i.reply_object_id,
            in_reply_to=i.in_reply_to,
            url=i.url,
        )
    return record


def interaction_line(i: Interaction) -> str:
    """A line for people; a reply, quote or mention has its plain text (never its HTML),
    shortened, below, and says when it is private or held. Nothing a remote server sent can
    reach the terminal as a control sequence (terminal_safe)."""
    handle = safe_handle(i.author_handle)
    who = f"@{handle}" if handle else i.actor_id
    when = i.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    where = "(mentions the blog)" if i.kind == "mention" else i.object_id
    text = f"{when}  {i.kind:<8}  {who}  {where}"
    if i.kind in _WRITTEN:
        if is_private(i):
            text += f"  [private: {i.visibility}]"
        elif not is_shown(i):
            text += f"  [held: {i.held_reason or 'not approved'}]"
        snippet = reply_text(i.content_html or i.content_safe_html, limit=200)
        if snippet:
            text += f"\n{'':18}{snippet if len(snippet) < 200 else snippet[:199] + '…'}"
    return terminal_safe(text)


def recent_interactions(config: SiteConfig, *, limit: int = 50) -> list[Interaction]:
    """`fedipress interactions`: the newest `limit` likes, boosts and replies."""
    store = open_site_store(config)
    try:
        return store.recent_interactions(limit=max(1, limit))
    finally:
        store.close()


def block(store: Store, target: str, now: datetime) -> bool:
    """Block a domain (and its subdomains) or an actor; True if it was not blocked before.

    The inbox refuses its requests (403) from now on; a blocked actor that followed is removed,
    and so is everything it left; for a domain, every such account on it and its subdomains."""
    return block_counted(store, target, now)[0]


def block_counted(store: Store, target: str, now: datetime) -> tuple[bool, int, int]:
    """`block`, saying what it did: (newly blocked, followers removed, interactions removed)."""
    added = store.add_block(target, now)
    followers, interactions = purge_blocked(store, [target])
    return added, followers, interactions


def purge_blocked(store: Store, targets: Iterable[str]) -> tuple[int, int]:
    """Remove the followers and interactions that `targets` (domains or actor URLs, as in
    fediverse.blocked) cover: (followers, interactions) removed.

    Run for site.yaml's list by the inbox service at start and by publish before planning, so
    a domain blocked in the config gets no deliveries and shows nothing on the blog."""
    followers = interactions = 0
    for target in targets:
        target = target.strip()
        if not target:
            continue
        removed = store.remove_actor(target) if "://" in target else store.remove_domain(target)
        followers += removed[0]
        interactions += removed[1]
    return followers, interactions


def block_target(config: SiteConfig, target: str) -> bool:
    """`fedipress block TARGET`: True if it was not blocked before (see `block`)."""
    store = open_site_store(config)
    try:
        with store.transaction():
            return block(store, target, datetime.now(UTC))
    finally:
        store.close()


def _configured_blocks(config: SiteConfig) -> list[str]:
    return [b.strip() for b in config.fediverse.blocked if b.strip()]


@dataclass(frozen=True)
class Unblocked:
    """A block lifted by `unblock_target`; `still_configured`: site.yaml's fediverse.blocked
    lists it too, so it stays blocked until removed there."""

    target: str
    still_configured: bool


def unblock_target(config: SiteConfig, target: str) -> Unblocked:
    """`fedipress unblock TARGET`: lift a block made with `fedipress block`. A target that is
    not blocked is refused rather than ignored: it is most likely mistyped."""
    target = target.strip()
    store = open_site_store(config)
    try:
        with store.transaction():
            removed = store.remove_block(target)
        stored = store.list_blocks()
    finally:
        store.close()
    in_config = target.lower().removeprefix("*.") in {
        b.lower().removeprefix("*.") for b in _configured_blocks(config)
    }
    if removed:
        return Unblocked(target=target, still_configured=in_config)
    if in_config:
        raise FedipressError(
            f"{target} is blocked by fediverse.blocked in {config.config_file}, not by"
            " `fedipress block`; remove it from that list to unblock it"
        )
    listed = ", ".join(stored) if stored else "nothing"
    raise FedipressError(f"{target} is not blocked (blocked with `fedipress block`: {listed})")


@dataclass(frozen=True)
class BlockList:
    """Every blocked domain and actor: (target, source), source either "store" (`fedipress
    block`) or "config" (site.yaml's fediverse.blocked)."""

    rows: tuple[tuple[str, str], ...]
    config_file: str

    def lines(self, *, as_json: bool = False) -> list[str]:
        if as_json:
            return [json.dumps({"target": target, "source": source}, ensure_ascii=False)
                    for target, source in self.rows]
        if not self.rows:
            return ["nothing is blocked"]
        shown = [(target, "fedipress block" if source == "store"
                  else f"{self.config_file} fediverse.blocked") for target, source in self.rows]
        width = max(len(target) for target, _ in shown)
        return [f"{target:<{width}}  {source}" for target, source in shown]


def list_blocks(config: SiteConfig) -> BlockList:
    """`fedipress blocks`: every blocked domain and actor and where the block comes from."""
    store = open_site_store(config)
    try:
        stored = store.list_blocks()
    finally:
        store.close()
    rows = [(target, "store") for target in stored]
    rows += [(target, "config") for target in _configured_blocks(config)]
    return BlockList(rows=tuple(rows), config_file=str(config.config_file))
