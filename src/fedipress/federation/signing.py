"""Sign outgoing requests with the blog actor's key, as an `httpx.Auth`.

The signing math lives in the pure `activitypub.httpsig`; this adapter only reads the clock
and the request httpx is about to send, so every POST (deliveries) and GET (fetching actors
from GoToSocial, Threads or authorized-fetch Mastodon, which refuse unsigned GETs) carries a
fresh signature over the exact bytes on the wire:

    auth = SigningAuth.for_actor("https://blog.example/actor.json", private_key)
    async with httpx.AsyncClient(auth=auth) as client:
        await client.post(inbox, content=body, headers={"Content-Type": AS2})
        await client.get(actor_url, headers={"Accept": AS2})    # signed GET

The default scheme is draft-cavage (what every fediverse server verifies). With
`scheme="rfc9421"` the request is signed per RFC 9421 first and, if the server answers 400 or
401, sent again once with a draft-cavage signature ("double knocking", as Fedify does).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Literal

import httpx

from ..activitypub.httpsig import PrivateKey, sign_cavage, sign_rfc9421

__all__ = ["SigningAuth", "utc_now"]

_SIGNATURE_HEADERS = ("signature", "signature-input", "content-digest", "digest", "date")


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware."""
    return datetime.now(UTC)


class SigningAuth(httpx.Auth):
    """Adds Date, Digest/Content-Digest and Signature headers to every request.

    The private key is held only in memory and never appears in repr() or logs.
    """

    requires_request_body = True  # the body's digest is part of the signature

    def __init__(
        self,
        *,
        key_id: str,
        private_key: PrivateKey,
        clock: Callable[[], datetime] = utc_now,
        scheme: Literal["cavage", "rfc9421"] = "cavage",
        double_knock: bool = True,
    ) -> None:
        if scheme not in ("cavage", "rfc9421"):
            raise ValueError(f"unknown signature scheme: {scheme!r}")
        self.key_id = key_id
        self._private_key = private_key
        self._clock = clock
        self.scheme = scheme
        self.double_knock = double_knock

    @classmethod
    def for_actor(
        cls,
        actor_id: str,
        private_key: PrivateKey,
        *,
        clock: Callable[[], datetime] = utc_now,
        scheme: Literal["cavage", "rfc9421"] = "cavage",
    ) -> SigningAuth:
        """Sign as the actor `actor_id`, whose key id is `<actor id>#main-key`."""
        return cls(
            key_id=f"{actor_id}#main-key", private_key=private_key, clock=clock, scheme=scheme
        )

    def __repr__(self) -> str:
        return f"SigningAuth(key_id={self.key_id!r}, scheme={self.scheme!r})"

    def sign(self, request: httpx.Request, scheme: Literal["cavage", "rfc9421"]) -> None:
        """Sign `request` in place (its body must already be read)."""
        for name in _SIGNATURE_HEADERS:
            request.headers.pop(name, None)
        signer = sign_cavage if scheme == "cavage" else sign_rfc9421
        added = signer(
            request.method,
            str(request.url),
            request.headers,
            request.content,
            key_id=self.key_id,
            private_key=self._private_key,
            now=self._clock(),
        )
        request.headers.update(added)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request, self.scheme)
        response = yield request
        if self.scheme == "rfc9421" and self.double_knock and response.status_code in (400, 401):
            # A new request object: the first one stays as it was sent (response.history).
            retry = httpx.Request(
                request.method,
                request.url,
                headers=request.headers.copy(),
                content=request.content,
                extensions=request.extensions,
            )
            self.sign(retry, "cavage")
            yield retry
