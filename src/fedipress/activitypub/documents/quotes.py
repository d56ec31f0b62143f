"""Quote posts (FEP-044f): the QuoteAuthorization the blog grants, the Accept or Reject that
answers a QuoteRequest, and the Delete that revokes an authorization. Pure.

    QuoteRequest  {actor: quoter, object: our post, instrument: the quoting post}
    Accept        {actor: blog, object: the request, result: <authorization id>}
    QuoteAuthorization {attributedTo: blog, interactingObject: quoting post,
                        interactionTarget: our post}

The request is echoed in its essentials only (id, type, actor, object, the instrument's id):
that is what servers match an answer on, and a quoting post embedded in full could make the
answer larger than inboxes take.
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


def _request_essentials(request: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _id_of(request.get("id", "")), "type": "QuoteRequest",
                           "actor": _id_of(request.get("actor", "")),
                           "object": _id_of(request.get("object", ""))}
    instrument = request.get("instrument")
    if instrument is not None:
        out["instrument"] = _id_of(instrument)
    return out


def quote_accept_activity(actor: str, request: Mapping[str, Any], *, accept_id: str,
                          authorization_id: str) -> dict[str, Any]:
    """Accept of a QuoteRequest; `result` names the authorization (served by the service)."""
    return with_context({
        "id": accept_id,
        "type": "Accept",
        "actor": actor,
        "to": [_id_of(request.get("actor", ""))],
        "object": _request_essentials(request),
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
        "object": _request_essentials(request),
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
