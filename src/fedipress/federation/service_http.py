"""Talking to the blog's service from this machine: the owner API's address and token, one
client that goes through netguard, one-line errors for each way a request can fail.

    target = conversation_service(os.environ)           # None: no service configured
    conversations = fetch_conversations(target, allow_private=False)

`publish` through the service (federation/service_client.py) uses the same client; the build
uses `fetch_conversations` for a CI build's conversation (generator/conversation_source.py).
This module never imports the build, so the build may import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..activitypub.conversation import Conversations
from ..errors import FedipressError, UnsafeURLError
from .netguard import GuardedTransport, check_url

__all__ = [
    "PREFIX",
    "SERVICE_URL_ENV",
    "TOKEN_ENV",
    "ServiceClient",
    "ServiceError",
    "ServiceTarget",
    "conversation_service",
    "fetch_conversations",
    "target_from",
]

SERVICE_URL_ENV = "FEDIPRESS_SERVICE_URL"
# The owner API's path and token variable (federation/owner_api.py serves them; kept here so
# that what the build imports does not pull in the whole service).
PREFIX = "/.fedipress/api/v1"
TOKEN_ENV = "FEDIPRESS_SERVICE_TOKEN"
TIMEOUT = httpx.Timeout(30.0, read=300.0)  # a commit of 10,000 posts plans for a while
EXPORT_TIMEOUT = httpx.Timeout(10.0, read=60.0)  # the conversation export is one query
EXPORT_MAX_BYTES = 64 * 1024 * 1024


class ServiceError(FedipressError):
    """The service refused the request or could not be reached."""


@dataclass(frozen=True)
class ServiceTarget:
    url: str  # the service's base URL, ending with "/"
    token: str

    def __repr__(self) -> str:  # the token stays out of tracebacks and debug output
        return f"ServiceTarget(url={self.url!r}, token=<hidden>)"


def refusal(response: httpx.Response, url: str, what: str = "the publish") -> ServiceError:
    """One line for a service's non-2xx answer; `what` names the request refused."""
    try:
        reason = str(response.json().get("error") or response.reason_phrase)
    except (ValueError, AttributeError):
        reason = response.reason_phrase
    if response.status_code == 401:
        return ServiceError(f"{url}: the service refused the owner token ({reason}); set"
                            f" {TOKEN_ENV} to the token the service was started with")
    if response.status_code == 429:
        return ServiceError(f"{url}: too many failed attempts from here; wait a minute and"
                            " check the token")
    if response.status_code == 404 and "session" not in reason:
        return ServiceError(f"{url}: no owner API there (404); start `fedipress inbox` with"
                            f" {TOKEN_ENV} set, and check the address")
    return ServiceError(f"{url}: the service refused {what} ({response.status_code}):"
                        f" {reason[:500]}")


class ServiceClient:
    def __init__(self, target: ServiceTarget, allow_private: bool,
                 timeout: httpx.Timeout = TIMEOUT, what: str = "the publish") -> None:
        self.base = target.url + PREFIX.lstrip("/")
        self.what = what
        try:
            check_url(target.url, allow_private=allow_private)
        except UnsafeURLError as exc:
            raise ServiceError(f"{target.url}: refused ({exc}); a service on this machine or"
                               " a private network needs FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1"
                               ) from None
        # Through netguard like every request fedipress makes: loopback and private
        # addresses only when FEDIPRESS_ALLOW_PRIVATE_ADDRESSES (or the flag) says so.
        self.http = httpx.AsyncClient(
            transport=GuardedTransport(allow_private=allow_private), timeout=timeout,
            follow_redirects=False, headers={"Authorization": f"Bearer {target.token}"},
        )

    async def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = self.base + path
        try:
            response = await self.http.request(method, url, json=body)
        except UnsafeURLError as exc:
            raise ServiceError(f"{url}: refused ({exc})") from None
        except httpx.HTTPError as exc:
            raise ServiceError(f"{url}: the service cannot be reached ({type(exc).__name__}:"
                               f" {str(exc)[:200]}); is `fedipress inbox` running there?"
                               ) from None
        if response.status_code >= 300:
            raise refusal(response, url, self.what)
        if len(response.content) > EXPORT_MAX_BYTES:
            raise ServiceError(f"{url}: the answer is over {EXPORT_MAX_BYTES // 2**20} MiB;"
                               " is this a fedipress service?")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ServiceError(f"{url}: the service answered {response.status_code} without a"
                               " JSON object; is this a fedipress service?")
        return data


def target_from(url: str, named: str, environ: Mapping[str, str],
                no_token: str) -> ServiceTarget | None:
    """The service at `url` (from `named`: an option or FEDIPRESS_SERVICE_URL) with the token
    from the environment; None when no URL is given. An address that is not http(s), or a
    missing token (`no_token` says what it was needed for), is a mistake, never ignored."""
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FedipressError(f"{named} {url[:200]}: expected the service's address, such as"
                             " https://blog.example/")
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise FedipressError(no_token.format(url=url[:200], env=TOKEN_ENV))
    return ServiceTarget(url.rstrip("/") + "/", token)


def conversation_service(environ: Mapping[str, str]) -> ServiceTarget | None:
    """The service whose conversation export a build reads: FEDIPRESS_SERVICE_URL with the
    token in FEDIPRESS_SERVICE_TOKEN; None when no URL is set."""
    return target_from(
        environ.get(SERVICE_URL_ENV, ""), SERVICE_URL_ENV, environ,
        f"{SERVICE_URL_ENV} is set, so the build reads the conversation from {{url}}: it needs"
        " the owner token in {env} (or unset the URL to build without the service)")


def fetch_conversations(target: ServiceTarget, *, allow_private: bool = False,
                        timeout: httpx.Timeout = EXPORT_TIMEOUT) -> Conversations:
    """GET the owner API's conversation export; ServiceError (one line) on any failure."""

    async def get() -> dict[str, Any]:
        client = ServiceClient(target, allow_private, timeout, "the conversation export")
        try:
            return await client.call("GET", "/conversations")
        finally:
            await client.http.aclose()

    data = asyncio.run(get())
    try:
        return Conversations.from_json(data)
    except ValueError as exc:
        raise ServiceError(f"{target.url}: {exc}") from None
