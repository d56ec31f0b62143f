"""Followers to delivery targets: one inbox per server where possible. Pure.

A server that advertises a shared inbox receives one POST per activity however many of our
followers live there (Mastodon's `preferred_inbox_url`); other followers get their personal
inbox. The result is de-duplicated and keeps the followers' order, so plans are stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["FollowerAddress", "inbox_host", "inboxes_for", "iter_inboxes"]


@dataclass(frozen=True)
class FollowerAddress:
    """Where a follower takes deliveries: its `inbox`, and the server's shared inbox if any."""

    actor_id: str
    inbox: str
    shared_inbox: str | None = None


def _target(follower: FollowerAddress) -> str:
    return (follower.shared_inbox or "").strip() or follower.inbox.strip()


def iter_inboxes(followers: Iterable[FollowerAddress]) -> Iterator[str]:
    """Stream the de-duplicated inboxes; memory grows with distinct inboxes, not followers.

    Followers with neither inbox are skipped (nothing can be delivered to them)."""
    seen: set[str] = set()
    for follower in followers:
        target = _target(follower)
        if target and target not in seen:
            seen.add(target)
            yield target


def inboxes_for(followers: Iterable[FollowerAddress]) -> list[str]:
    """The de-duplicated inbox URLs for `followers`, shared inbox preferred, in first-seen order."""
    return list(iter_inboxes(followers))


def inbox_host(url: str) -> str:
    """The host (with a non-default port) an inbox URL points at, lower-cased: the key for
    per-host limits and failure tracking. Raises ValueError for a URL without a host."""
    parts = urlsplit(url.strip())
    host = parts.hostname
    if not host:
        raise ValueError(f"inbox URL has no host: {url!r}")
    port = parts.port  # raises ValueError for a malformed port
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    if ":" in host:  # IPv6 literal: keep the brackets so the port stays unambiguous
        host = f"[{host}]"
    return host if port is None or port == default else f"{host}:{port}"
