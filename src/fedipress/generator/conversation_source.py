"""Where a build's conversation comes from (conversation.md in the docs):

1. `FEDIPRESS_SERVICE_URL` set (with `FEDIPRESS_SERVICE_TOKEN`): the service's owner API
   export, `GET /.fedipress/api/v1/conversations` (a CI build in a fresh clone has no store);
2. else the local store, read-only (`store/snapshot.py`: never created, never migrated);
3. else none: the pages have no conversation section.

A service that cannot be asked (unreachable, token refused, another blog's service) stops a CI
build with one line: a deployed site must not silently lose its conversation. Outside CI the
build goes on with a warning, using the local store's conversation if there is one, so an
author can preview offline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..activitypub.conversation import Conversations
from ..config import SiteConfig
from ..errors import FedipressError
from ..store.snapshot import BuildState
from ..wording import plural

if TYPE_CHECKING:
    from ..federation.service_http import ServiceTarget

__all__ = ["ConversationSource", "build_conversations"]

Log = Callable[[str], None]
_TRUE = {"1", "true", "yes", "on"}


@dataclass
class ConversationSource:
    """Asks the service at most once per builder (the dev server rebuilds often; a CLI build
    is one process, so every build reads the service's current conversation)."""

    environ: Mapping[str, str]
    fetched: Conversations | None = None
    target: ServiceTarget | None = None

    def configured(self) -> bool:
        return bool(self.environ.get("FEDIPRESS_SERVICE_URL", "").strip())

    def service(self) -> Conversations | None:
        # Imported only for a build that asks the service: HTTP code stays out of the
        # start-up of every other build.
        from ..federation.service_http import conversation_service, fetch_conversations

        target = conversation_service(self.environ)
        if target is None:
            return None
        if self.fetched is None or self.target != target:
            allow = self.environ.get("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "").strip().lower()
            self.fetched = fetch_conversations(target, allow_private=allow in _TRUE)
            self.target = target
        return self.fetched


def _count(conversations: Conversations) -> str:
    replies = sum(len(c.replies) for c in conversations.objects.values())
    reactions = sum(len(c.likes) + len(c.boosts) + len(c.quotes)
                    for c in conversations.objects.values())
    return (f"{plural(replies, 'reply', 'replies')} and {plural(reactions, 'reaction')} on"
            f" {plural(len(conversations.objects), 'post')}")


def build_conversations(config: SiteConfig, state: BuildState, store_present: bool,
                        source: ConversationSource, *, ci: bool, log: Log,
                        warn: Log) -> Conversations | None:
    """The conversation this build shows, or None for no conversation section at all."""
    local = state.conversations if store_present else None
    if not source.configured():
        return local
    from ..federation.service_http import ServiceError

    actor = config.url("actor.json")
    try:
        fetched = source.service()
        if fetched is not None and fetched.actor and fetched.actor != actor:
            raise ServiceError(
                f"{source.target.url if source.target else ''}: the service speaks for"
                f" {fetched.actor[:200]}, not for this blog ({actor}); check"
                " FEDIPRESS_SERVICE_URL")
    except ServiceError as exc:
        if ci:
            raise FedipressError(f"{exc} (a CI build does not deploy pages without their"
                                 " conversation)") from None
        shown = "the local store's conversation" if local is not None else "no conversation"
        warn(f"warning: {exc}; this build shows {shown} (in CI this stops the build)")
        return local
    if fetched is not None:
        log(f"conversation: {_count(fetched)} from the service")
        return fetched
    return local
