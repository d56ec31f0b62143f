"""The ids and addresses every document shares: the actor's, a post object's, the followers
collection's, the public audience, and times as servers parse them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...model import Post, Site

__all__ = ["PUBLIC", "actor_id", "iso", "object_id"]

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"



def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, second precision: what every server parses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def actor_id(site: Site) -> str:
    return site.config.url("actor.json")


def object_id(post: Post) -> str:
    return post.url + "object.json"


def _followers_id(site: Site) -> str:
    return site.config.url("followers.json")


def _id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id", ""))
    return str(value)
