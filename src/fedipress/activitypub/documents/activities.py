"""Activities around documents: Create, Update and Delete of posts, the actor's Update, and
the Accept or Reject answering a Follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...model import Site
from .context import _without_context, with_context
from .fitting import MAX_ACTIVITY_BYTES
from .ids import PUBLIC, _followers_id, _id_of, actor_id, iso
from .json_text import serialize

__all__ = [
    "accept_activity",
    "actor_delete_activity",
    "actor_update_activity",
    "create_activity",
    "delete_activity",
    "reject_activity",
    "update_activity",
]


def create_activity(site: Site, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Create for `obj`; its id derives from the object's, so rebuilds never change it."""
    return with_context(
        {
            "id": f"{obj['id']}#create",
            "type": "Create",
            "actor": actor_id(site),
            "published": obj.get("published"),
            "to": obj.get("to", [PUBLIC]),
            "cc": obj.get("cc", [_followers_id(site)]),
            "object": _without_context(obj),
        }
    )


def update_activity(site: Site, obj: Mapping[str, Any], *, revision: str) -> dict[str, Any]:
    """Update for an edited `obj`; `revision` (e.g. the object hash) keeps ids distinct."""
    return with_context(
        {
            "id": f"{obj['id']}#update-{revision}",
            "type": "Update",
            "actor": actor_id(site),
            "published": obj.get("updated", obj.get("published")),
            "to": obj.get("to", [PUBLIC]),
            "cc": obj.get("cc", [_followers_id(site)]),
            "object": _without_context(obj),
        }
    )


def delete_activity(site: Site, object_id: str, *, deleted: datetime) -> dict[str, Any]:
    """Delete of a removed post; the object is a Tombstone with the same id."""
    return with_context(
        {
            "id": f"{object_id}#delete",
            "type": "Delete",
            "actor": actor_id(site),
            "to": [PUBLIC],
            "cc": [_followers_id(site)],
            "object": {"id": object_id, "type": "Tombstone", "deleted": iso(deleted)},
        }
    )


def actor_delete_activity(actor: str) -> dict[str, Any]:
    """Delete of the actor itself, as servers send on account deletion: object = the actor
    id, to the public. Receivers drop the account and every follow to or from it. The id is
    fixed, so a second `leave` queues nothing new."""
    return with_context(
        {
            "id": f"{actor}#delete",
            "type": "Delete",
            "actor": actor,
            "to": [PUBLIC],
            "object": actor,
        }
    )


def actor_update_activity(
    site: Site, actor: Mapping[str, Any], *, revision: str
) -> dict[str, Any]:
    """Update(Person) so followers' servers refresh the profile (object = the actor itself)."""
    return with_context(
        {
            "id": f"{actor['id']}#update-{revision}",
            "type": "Update",
            "actor": actor["id"],
            "to": [PUBLIC],
            "cc": [_followers_id(site)],
            "object": _without_context(actor),
        }
    )


def _answer(site: Site, kind: str, follow: Mapping[str, Any], answer_id: str) -> dict[str, Any]:
    follower = _id_of(follow.get("actor", ""))
    doc = with_context(
        {
            "id": answer_id,
            "type": kind,
            "actor": actor_id(site),
            "to": [follower],
            # The Follow exactly as received (minus its context): Mastodon matches on its id,
            # others on the embedded actor/object.
            "object": _without_context(follow),
        }
    )
    if len(serialize(doc)) <= MAX_ACTIVITY_BYTES:
        return doc
    # A Follow can arrive with up to the inbox's body limit of extra members; echoing them all
    # would make an answer no inbox takes. What matching needs is its id, actor and object.
    slim: dict[str, Any] = {"id": follow.get("id"), "type": follow.get("type", "Follow"),
                            "actor": follower, "object": _id_of(follow.get("object", ""))}
    return with_context({**doc, "object": slim})


def accept_activity(site: Site, follow: Mapping[str, Any], *, accept_id: str) -> dict[str, Any]:
    return _answer(site, "Accept", follow, accept_id)


def reject_activity(site: Site, follow: Mapping[str, Any], *, reject_id: str) -> dict[str, Any]:
    return _answer(site, "Reject", follow, reject_id)
