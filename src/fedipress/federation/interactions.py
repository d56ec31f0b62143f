"""`fedipress interactions` (recent likes, boosts, replies) and `fedipress block`.

    fedipress interactions            # a table for people
    fedipress interactions --json     # one JSON object per line, for scripts
    fedipress block spam.example      # or an actor URL; stored, applied by the inbox at once
    fedipress unblock spam.example    # lift it
    fedipress blocks                  # what is blocked: these and site.yaml's fediverse.blocked
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..config import SiteConfig
from ..errors import FedipressError
from ..store import Interaction, Store, default_store_path, open_store

__all__ = [
    "block",
    "interaction_record",
    "purge_blocked",
    "run_block_command",
    "run_blocks_command",
    "run_unblock_command",
    "run_interactions_command",
]

_KIND = {"like": "Like", "announce": "Announce", "reply": "Create"}


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
    if i.kind == "reply":
        record.update(
            content=i.content_html,
            content_safe=i.content_safe_html,
            reply_object=i.reply_object_id,
            in_reply_to=i.in_reply_to,
            url=i.url,
        )
    return record


def _line(i: Interaction) -> str:
    who = f"@{i.author_handle}" if i.author_handle else i.actor_id
    when = i.received_at.strftime("%Y-%m-%d %H:%M")
    text = f"{when}  {i.kind:<8}  {who}  {i.object_id}"
    if i.kind == "reply" and i.content_safe_html:
        snippet = " ".join(i.content_safe_html.replace("<", " <").split())[:80]
        text += f"\n{'':18}{snippet}"
    return text


def run_interactions_command(
    config: SiteConfig, args: argparse.Namespace, *, echo: Callable[[str], None] = print
) -> int:
    store = open_store(default_store_path(config.state_dir))
    try:
        items = store.recent_interactions(limit=max(1, int(getattr(args, "limit", 50))))
    finally:
        store.close()
    if getattr(args, "json", False):
        for item in items:
            echo(json.dumps(interaction_record(item), ensure_ascii=False))
        return 0
    if not items:
        echo("no likes, boosts or replies yet")
        return 0
    for item in items:
        echo(_line(item))
    return 0


def block(store: Store, target: str, now: datetime) -> bool:
    """Block a domain (and its subdomains) or an actor; True if it was not blocked before.

    The inbox refuses its requests (403) from now on; a blocked actor that followed is removed,
    and so is everything it left; for a domain, every such account on it and its subdomains."""
    added = store.add_block(target, now)
    purge_blocked(store, [target])
    return added


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


def run_block_command(
    config: SiteConfig, args: argparse.Namespace, *, echo: Callable[[str], None] = print
) -> int:
    store = open_store(default_store_path(config.state_dir))
    try:
        with store.transaction():
            added = block(store, args.target, datetime.now(UTC))
    finally:
        store.close()
    echo(f"blocked {args.target}" if added else f"{args.target} was already blocked")
    return 0


def _configured_blocks(config: SiteConfig) -> list[str]:
    return [b.strip() for b in config.fediverse.blocked if b.strip()]


def run_unblock_command(
    config: SiteConfig, args: argparse.Namespace, *, echo: Callable[[str], None] = print
) -> int:
    """`fedipress unblock TARGET`: lift a block made with `fedipress block`. A target that is
    not blocked is refused rather than ignored: it is most likely mistyped."""
    target = args.target.strip()
    store = open_store(default_store_path(config.state_dir))
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
        echo(f"unblocked {target}; followers and interactions removed by the block stay removed"
             " (they can follow again)")
        if in_config:
            print(f"{config.config_file}: warning: fediverse.blocked still lists {target};"
                  " remove it there too, or it stays blocked", file=sys.stderr)
        return 0
    if in_config:
        raise FedipressError(
            f"{target} is blocked by fediverse.blocked in {config.config_file}, not by"
            " `fedipress block`; remove it from that list to unblock it"
        )
    listed = ", ".join(stored) if stored else "nothing"
    raise FedipressError(f"{target} is not blocked (blocked with `fedipress block`: {listed})")


def run_blocks_command(
    config: SiteConfig, args: argparse.Namespace, *, echo: Callable[[str], None] = print
) -> int:
    """`fedipress blocks`: every blocked domain and actor and where the block comes from."""
    store = open_store(default_store_path(config.state_dir))
    try:
        stored = store.list_blocks()
    finally:
        store.close()
    rows = [(target, "fedipress block") for target in stored]
    rows += [(target, f"{config.config_file} fediverse.blocked")
             for target in _configured_blocks(config)]
    if getattr(args, "json", False):
        for target, source in rows:
            echo(json.dumps({"target": target,
                             "source": "store" if source == "fedipress block" else "config"},
                            ensure_ascii=False))
        return 0
    if not rows:
        echo("nothing is blocked")
        return 0
    width = max(len(target) for target, _ in rows)
    for target, source in rows:
        echo(f"{target:<{width}}  {source}")
    return 0
