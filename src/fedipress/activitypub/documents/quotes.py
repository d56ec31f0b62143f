"""Quote posts (FEP-044f): the QuoteAuthorization the blog grants, the Accept or Reject that
answers a QuoteRequest, and the Delete that revokes an authorization. Pure.

    QuoteRequest  {actor: quoter, object: our post, instrument: the quoting post}
    Accept        {actor: blog, object: <the request's id>, result: <authorization id>}
    QuoteAuthorization {attributedTo: blog, interactingObject: quoting post,
                        interactionTarget: our post}

The answer names the request by its id, not embedded: Mastodon finds its pending quote by
that id (either way), while a reader without a QuoteRequest type (Fedify 1.9, and the servers
built on it) refuses an Accept that embeds one as unparseable (400), and the quote would stay
pending there for ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .context import with_context
from .ids import PUBLIC, _id_of

__all__ = [
    "authorization_delete_activity",
    "quote_accept_activity",
    "quote_authorization_document",
    "quote_reject_activity",
]


def quote_authorization_document(actor: str, authorization_id: str, *, quoting: str,
                                 quoted: str) -> dict[str, Any]:
    """The authorization the blog serves at `authorization_id` for as long as it stands."""
    return with_context({
        "id": authorization_id,
        "type": "QuoteAuthorization",
        "attributedTo": actor,
        "interactingObject": quoting,
        "interactionTarget": quoted,
    })


def _request_id(request: Mapping[str, Any]) -> str:
    return _id_of(request.get("id", ""))


def quote_accept_activity(actor: str, request: Mapping[str, Any], *, accept_id: str,
                          authorization_id: str) -> dict[str, Any]:
    """Accept of a QuoteRequest; `result` names the authorization (served by the service)."""
    return with_context({
        "id": accept_id,
        "type": "Accept",
        "actor": actor,
        "to": [_id_of(request.get("actor", ""))],
        "object": _request_id(request),
        "result": authorization_id,
    })


def quote_reject_activity(actor: str, request: Mapping[str, Any], *,
                          reject_id: str) -> dict[str, Any]:
    """Reject of a QuoteRequest the post's policy does not allow."""
    return with_context({
        "id": reject_id,
        "type": "Reject",
        "actor": actor,
        "to": [_id_of(request.get("actor", ""))],
        "object": _request_id(request),
    })


def authorization_delete_activity(actor: str, authorization_id: str, quoter: str, *,
                                  delete_id: str) -> dict[str, Any]:
    """Delete of an authorization: the quote is no longer approved (its post was deleted or its
    author blocked). Public, as the authorization was; sent to the quoter."""
    return with_context({
        "id": delete_id,
        "type": "Delete",
        "actor": actor,
        "to": [PUBLIC],
        "cc": [quoter],
        "object": authorization_id,
    })
