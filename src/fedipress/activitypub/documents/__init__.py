"""ActivityPub documents as plain dicts: the actor, post objects, activities and collections.

Every function here is pure: model objects (and, where time matters, an explicit datetime) in,
a dict out. Key order is fixed by construction and `serialize` is deterministic, so a rebuild
of unchanged content produces identical bytes and `object_hash` only changes on real edits.

One module per concept; this face re-exports their public names, so callers write
`from fedipress.activitypub import documents as d` and `d.actor_document(...)`:
  ids.py          ids and addresses every document shares (actor, object, followers, PUBLIC)
  context.py      the JSON-LD @context, built from the terms a document uses
  json_text.py    deterministic JSON text, the prepared object text, manifest entries, hashes
  objects.py      a post as a Note or Article: content, attachments, hashtags, mentions
  actor.py        the blog's Person
  activities.py   Create, Update, Delete, the actor's Update, Accept and Reject
  fitting.py      an activity made to fit under the size servers accept
  collections.py  the outbox and its pages, followers, following, featured, per-post counts
  threads.py      a post's replies, likes, shares and context collections; its interaction
                  policy (who may quote), read in either GoToSocial vocabulary
  quotes.py       FEP-044f: QuoteAuthorization, the Accept or Reject of a QuoteRequest, revoking
"""

from __future__ import annotations

from .activities import (
    accept_activity,
    actor_delete_activity,
    actor_update_activity,
    create_activity,
    delete_activity,
    reject_activity,
    update_activity,
)
from .actor import actor_document
from .collections import (
    OUTBOX_PAGE_SIZE,
    context_document,
    featured_document,
    followers_document,
    following_document,
    likes_document,
    outbox_document,
    outbox_page,
    outbox_page_count,
    outbox_page_path,
    outbox_pages,
    replies_document,
    serialize_collection,
    serialize_outbox_page,
    shares_document,
    thread_page_document,
)
from .context import AS_CONTEXT, SEC_CONTEXT, with_context
from .fitting import MAX_ACTIVITY_BYTES, fit_activity
from .ids import PUBLIC, actor_id, iso, object_id
from .json_text import (
    DocumentBytes,
    PreparedObject,
    StringMemo,
    indented_json,
    manifest_entry_json,
    object_hash,
    serialize,
)
from .objects import (
    MAX_ATTACHMENTS,
    federated_posts,
    hashtag_name,
    object_document,
    object_documents,
    post_mentions,
    quote_policy,
)
from .quotes import (
    authorization_delete_activity,
    quote_accept_activity,
    quote_authorization_document,
    quote_reject_activity,
)
from .threads import (
    NO_THREAD,
    QUOTE_POLICIES,
    THREAD_PAGE_SIZE,
    Approval,
    QuotePolicy,
    Thread,
    interaction_policy,
    page_count,
    read_approval,
    thread_page_path,
)

__all__ = [
    "AS_CONTEXT",
    "NO_THREAD",
    "QUOTE_POLICIES",
    "THREAD_PAGE_SIZE",
    "Approval",
    "QuotePolicy",
    "Thread",
    "authorization_delete_activity",
    "context_document",
    "interaction_policy",
    "page_count",
    "quote_accept_activity",
    "quote_authorization_document",
    "quote_policy",
    "quote_reject_activity",
    "read_approval",
    "thread_page_document",
    "thread_page_path",
    "MAX_ACTIVITY_BYTES",
    "MAX_ATTACHMENTS",
    "OUTBOX_PAGE_SIZE",
    "PUBLIC",
    "SEC_CONTEXT",
    "accept_activity",
    "actor_document",
    "actor_id",
    "actor_delete_activity",
    "actor_update_activity",
    "DocumentBytes",
    "PreparedObject",
    "StringMemo",
    "create_activity",
    "delete_activity",
    "featured_document",
    "federated_posts",
    "fit_activity",
    "followers_document",
    "following_document",
    "hashtag_name",
    "indented_json",
    "iso",
    "manifest_entry_json",
    "likes_document",
    "object_document",
    "object_documents",
    "object_hash",
    "object_id",
    "outbox_document",
    "outbox_page",
    "outbox_page_count",
    "outbox_page_path",
    "outbox_pages",
    "post_mentions",
    "reject_activity",
    "replies_document",
    "serialize",
    "serialize_collection",
    "serialize_outbox_page",
    "shares_document",
    "update_activity",
    "with_context",
]
