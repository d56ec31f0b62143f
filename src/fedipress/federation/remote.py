"""Fetching remote ActivityPub documents safely: actors, keys, objects and WebFinger.

Every fetch goes through netguard's GuardedTransport (https only, public addresses only, checked
at connect time), follows at most `max_redirects` redirects by hand re-checking each hop, reads
at most `max_bytes` of body, gives up after the connect/read/total time limits, and accepts only
ActivityPub content types (Mastodon's rules: fediverse-interop.md §2). A fetched document's `id`
must equal the URL it was fetched from, so a server can only speak for its own URLs.

Errors are FetchError (or UnsafeURLError for refused URLs) with one clear line naming the URL;
they never quote the remote body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .. import __version__
from ..errors import FetchError, FetchGone, FetchUnavailable, UnsafeURLError
from .netguard import GuardedTransport, Resolver, check_url

__all__ = [
    "ACTOR_TYPES",
    "AP_ACCEPT",
    "AS_CONTEXT",
    "JRD_ACCEPT",
    "FetchPolicy",
    "FetchedDocument",
    "RemoteActor",
    "RemoteFetcher",
    "RemoteKey",
    "actor_url_from_jrd",
    "check_json_depth",
    "has_lone_surrogate",
    "is_activitypub_content_type",
    "is_jrd_content_type",
    "parse_actor",
    "run_sync",
    "user_agent",
]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
AP_ACCEPT = f'application/activity+json, application/ld+json; profile="{AS_CONTEXT}"'
JRD_ACCEPT = "application/jrd+json, application/json;q=0.9"
IMAGE_ACCEPT = "image/webp, image/png, image/jpeg, image/gif"
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})
MAX_JSON_DEPTH = 64
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_ENV_TRUE = frozenset({"1", "true", "yes", "on"})

T = TypeVar("T")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetcher. The defaults are Mastodon's (request.rb)."""

    allow_private: bool = False  # plain http and non-public addresses: testing on one machine only
    max_bytes: int = 1 << 20
    max_redirects: int = 3
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0

    @classmethod
    def from_options(
        cls, allow_private_flag: bool, environ: Mapping[str, str], **limits: Any
    ) -> FetchPolicy:
        """The policy for a CLI command: `--allow-private-addresses` or
        FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1 in `environ` opts in."""
        env = environ.get("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", "").strip().lower() in _ENV_TRUE
        return cls(allow_private=allow_private_flag or env, **limits)


@dataclass(frozen=True)
class FetchedDocument:
    url: str  # the final URL, after redirects
    data: dict[str, Any]
    content_type: str
    status: int


@dataclass(frozen=True)
class RemoteKey:
    key_id: str
    owner: str
    pem: str
    # The owner's actor document when fetching the key fetched it too (`#main-key` keys, and
    # key documents, whose owner is fetched to confirm them): callers cache it, so the same
    # document is not fetched again. None for GoToSocial's stub actors. Not part of equality.
    actor: RemoteActor | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RemoteActor:
    id: str
    type: str
    inbox: str
    shared_inbox: str | None
    preferred_username: str | None
    name: str | None
    handle: str | None  # "user@host" (host with port if the id has one)
    icon_url: str | None
    profile_url: str | None
    public_keys: tuple[RemoteKey, ...]
    also_known_as: tuple[str, ...] = ()

    @property
    def public_key(self) -> RemoteKey | None:
        return self.public_keys[0] if self.public_keys else None

    def key(self, key_id: str) -> RemoteKey | None:
        return next((k for k in self.public_keys if k.key_id == key_id), None)


def user_agent(blog_url: str) -> str:
    """`fedipress/<version> (+<blog url>)`: tells remote admins who is fetching."""
    return f"fedipress/{__version__} (+{blog_url})"


# --- pure checks --------------------------------------------------------------------------------


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def is_activitypub_content_type(content_type: str) -> bool:
    """application/activity+json, or application/ld+json with the ActivityStreams profile."""
    kind, params = _media_type(content_type)
    if kind == "application/activity+json":
        return True
    return kind == "application/ld+json" and AS_CONTEXT in params.get("profile", "").split()


def _is_image_type(content_type: str) -> bool:
    return _media_type(content_type)[0].startswith("image/")


def is_jrd_content_type(content_type: str) -> bool:
    return _media_type(content_type)[0] in {"application/jrd+json", "application/json"}


# A string token, its closing quote optional so that an unterminated string still matches (to
# the end): every match then moves forward and the scan stays linear on hostile input.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """False when arrays/objects nest deeper than `limit` (brackets inside strings ignored).

    Checked before json.loads so a hostile document cannot make the parser recurse deeply."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return True
    depth = 0
    for match in _JSON_TOKEN.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif token in (b"]", b"}"):
            depth -= 1
    return True


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) in parsed JSON holds a surrogate code point: "\\ud800"
    is valid JSON syntax but no Unicode text, and would fail wherever the string is encoded
    (the store, a log line, a page). The nesting is bounded by check_json_depth."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def _same_url(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return httpx.URL(a) == httpx.URL(b)
    except (httpx.InvalidURL, TypeError):
        return False


def _strip_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def _first_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return next((v for v in value if isinstance(v, str)), None)
    return None


def _link_url(value: Any) -> str | None:
    """A URL from an AS2 `url`/`icon` value: a string, a Link/Image object, or a list of them
    (the text/html one preferred)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("href", value.get("url"))
        return inner if isinstance(inner, str) else _link_url(inner) if inner else None
    if isinstance(value, list):
        html = [v for v in value if isinstance(v, dict) and v.get("mediaType") == "text/html"]
        for item in html + value:
            found = _link_url(item)
            if found:
                return found
    return None


def _types(data: Mapping[str, Any]) -> set[str]:
    value = data.get("type")
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def _parse_key(value: Any, *, default_owner: str | None, where: str) -> RemoteKey:
    if not isinstance(value, dict):
        raise FetchError(f"{where}: publicKey is not an object")
    key_id, owner, pem = (
        value.get("id"),
        value.get("owner", default_owner),
        value.get("publicKeyPem"),
    )
    if not isinstance(key_id, str) or not isinstance(owner, str) or not isinstance(pem, str):
        raise FetchError(f"{where}: publicKey needs string id, owner and publicKeyPem")
    try:
        load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeError):
        raise FetchError(f"{where}: publicKeyPem of {key_id} is not a PEM public key") from None
    return RemoteKey(key_id=key_id, owner=owner, pem=pem)


def _keys_of(data: Mapping[str, Any], *, where: str) -> tuple[RemoteKey, ...]:
    """The actor's keys that name the actor as owner; keys claiming another owner are ignored."""
    actor_id = data.get("id")
    raw = data.get("publicKey")
    items = raw if isinstance(raw, list) else [] if raw is None else [raw]
    keys = (
        _parse_key(item, default_owner=actor_id if isinstance(actor_id, str) else None, where=where)
        for item in items
    )
    return tuple(k for k in keys if k.owner == actor_id)


def parse_actor(data: Mapping[str, Any], *, where: str) -> RemoteActor:
    """A RemoteActor from an actor document (already fetched and id-checked)."""
    actor_id = data.get("id")
    if not isinstance(actor_id, str):
        raise FetchError(f"{where}: actor has no id")
    kinds = _types(data) & ACTOR_TYPES
    if not kinds:
        raise FetchError(f"{where}: not an actor (type {_types(data) or 'missing'})")
    inbox = data.get("inbox")
    if not isinstance(inbox, str) or not inbox.startswith(("https://", "http://")):
        raise FetchError(f"{where}: actor has no inbox URL")
    endpoints = data.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    username = data.get("preferredUsername")
    username = username if isinstance(username, str) and username else None
    name = data.get("name")
    try:
        host = httpx.URL(actor_id).netloc.decode("ascii") if username else ""
    except (httpx.InvalidURL, UnicodeError):
        raise FetchError(f"{where}: actor id is not a URL") from None
    aka = data.get("alsoKnownAs")
    aka_list = [aka] if isinstance(aka, str) else aka if isinstance(aka, list) else []
    return RemoteActor(
        id=actor_id,
        type=sorted(kinds)[0],
        inbox=inbox,
        shared_inbox=shared if isinstance(shared, str) else None,
        preferred_username=username,
        name=name if isinstance(name, str) else None,
        handle=f"{username}@{host}" if username and host else None,
        icon_url=_link_url(data.get("icon")),
        profile_url=_link_url(data.get("url")),
        public_keys=_keys_of(data, where=where),
        also_known_as=tuple(a for a in aka_list if isinstance(a, str)),
    )


def actor_url_from_jrd(jrd: Mapping[str, Any]) -> str | None:
    """The `self` link with an ActivityPub type in a WebFinger answer."""
    links = jrd.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        kind = link.get("type")
        if isinstance(kind, str) and is_activitypub_content_type(kind):
            href = link.get("href")
            if isinstance(href, str):
                return href
    return None


def _size(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


# --- the fetcher --------------------------------------------------------------------------------


class RemoteFetcher:
    """Fetches remote documents under a FetchPolicy. Use as `async with`, or call aclose().

    `auth` signs each request (the blog's signed GET, for servers with authorized fetch);
    `transport` replaces the guarded transport (tests only: httpx.MockTransport, or a
    GuardedTransport with a fake resolver/connector); `resolver` injects DNS for the default one.
    """

    def __init__(
        self,
        *,
        policy: FetchPolicy,
        user_agent: str,
        auth: httpx.Auth | None = None,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        if transport is None:
            transport = GuardedTransport(allow_private=policy.allow_private, resolver=resolver)
        timeout = httpx.Timeout(
            connect=policy.connect_timeout,
            read=policy.read_timeout,
            write=policy.read_timeout,
            pool=policy.connect_timeout,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            auth=auth,
            timeout=timeout,
            follow_redirects=False,  # redirects are followed by hand, each hop re-checked
            trust_env=False,  # no proxies or netrc from the environment
            headers={"User-Agent": user_agent},
        )

    async def __aenter__(self) -> RemoteFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- raw fetch --

    async def _get(
        self, url: str, *, accept: str, acceptable: Callable[[str], bool], what: str
    ) -> tuple[str, bytes, str, int]:
        """GET with redirects, limits and content-type check -> (final url, body, type, status)."""
        policy = self.policy
        current = url
        check_url(current, allow_private=policy.allow_private)
        try:
            with anyio.fail_after(policy.total_timeout):
                for hop in range(policy.max_redirects + 1):
                    async with self._client.stream(
                        "GET", current, headers={"Accept": accept}
                    ) as response:
                        status = response.status_code
                        if status in _REDIRECT_CODES:
                            location = response.headers.get("location")
                            if not location:
                                raise FetchError(f"{url}: HTTP {status} redirect without Location")
                            if hop == policy.max_redirects:
                                raise FetchError(
                                    f"{url}: too many redirects (more than {policy.max_redirects})"
                                )
                            target = httpx.URL(current).join(location)
                            check_url(target, allow_private=policy.allow_private)
                            current = str(target)
                            continue
                        if status != 200:
                            message = f"{current}: HTTP {status} (expected 200)"
                            if status == 410:
                                raise FetchGone(message)
                            if status >= 500 or status in (408, 429):
                                raise FetchUnavailable(message)
                            raise FetchError(message)
                        content_type = response.headers.get("content-type", "")
                        if not acceptable(content_type):
                            shown = content_type[:80] or "none"
                            raise FetchError(f"{current}: Content-Type {shown} is not {what}")
                        body = await self._read_capped(response, current)
                        return current, body, content_type, status
        except TimeoutError:
            raise FetchUnavailable(
                f"{url}: no complete answer within {policy.total_timeout:g} s"
            ) from None
        except httpx.TimeoutException as exc:
            kind = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for data"
            raise FetchUnavailable(f"{current}: timed out {kind}") from None
        except httpx.TransportError as exc:
            # Refused, reset, DNS failure, protocol error: the server may be back later.
            raise FetchUnavailable(
                f"{current}: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{current}: {type(exc).__name__}: {str(exc)[:200]}") from None
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        limit = self.policy.max_bytes
        too_big = f"{url}: response larger than {_size(limit)}"
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise FetchError(too_big)
        chunks: list[bytes] = []
        total = 0
        # Count decoded bytes, so a small gzip bomb is caught as well as a large body.
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > limit:
                raise FetchError(too_big)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _parse_json(body: bytes, url: str) -> dict[str, Any]:
        if not check_json_depth(body):
            raise FetchError(f"{url}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            raise FetchError(f"{url}: response is not valid JSON ({reason})") from None
        if not isinstance(data, dict):
            raise FetchError(f"{url}: JSON document is not an object")
        if b"\\u" in body and has_lone_surrogate(data):
            raise FetchError(f"{url}: JSON string with a lone surrogate (\\ud800-\\udfff)")
        return data

    # -- public API --

    async def fetch_json(
        self, url: str, *, accept: str = AP_ACCEPT, check_id: bool = True
    ) -> FetchedDocument:
        """An ActivityPub document whose `id` equals the final URL (unless check_id=False)."""
        final, body, content_type, status = await self._get(
            url,
            accept=accept,
            acceptable=is_activitypub_content_type,
            what="ActivityPub JSON (application/activity+json)",
        )
        data = self._parse_json(body, final)
        if check_id:
            doc_id = data.get("id")
            if not isinstance(doc_id, str) or not _same_url(doc_id, final):
                shown = doc_id[:200] if isinstance(doc_id, str) else "missing"
                raise FetchError(f"{final}: document id ({shown}) does not match its URL")
        return FetchedDocument(url=final, data=data, content_type=content_type, status=status)

    async def fetch_image(self, url: str) -> tuple[str, bytes]:
        """An image's bytes (avatars cached by federation/avatars.py): the same guard and the
        policy's size cap; the Content-Type must say image/*, and the caller checks the bytes."""
        final, body, _type, _status = await self._get(
            url, accept=IMAGE_ACCEPT, acceptable=_is_image_type, what="an image (image/*)")
        return final, body

    async def fetch_actor(self, url: str) -> RemoteActor:
        doc = await self.fetch_json(url)
        return parse_actor(doc.data, where=doc.url)

    async def fetch_key(self, key_id: str) -> RemoteKey:
        """The public key `key_id` names, confirmed by its owner.

        Three layouts are in use: `<actor>#main-key` (the key sits in the actor document); a
        separate key document with `owner` (then the owner actor must list the key); and
        GoToSocial's `<actor>/main-key`, which serves a stub actor with that key (accepted when
        the stub is on the same origin as the key URL, since the origin speaks for its URLs).
        A keyId equal to the actor's own id is accepted when that actor has exactly one key.
        """
        doc_url = _strip_fragment(key_id)
        doc = await self.fetch_json(doc_url, check_id=False)
        data, where = doc.data, doc.url
        doc_id = data.get("id")
        if not isinstance(doc_id, str):
            raise FetchError(f"{where}: document has no id")
        if _types(data) & ACTOR_TYPES:
            actor: RemoteActor | None = None  # stays None for a stub actor
            if _same_url(doc_id, where):
                actor = parse_actor(data, where=where)
                key = actor.key(key_id)
                if key is None and _same_url(key_id, actor.id) and len(actor.public_keys) == 1:
                    key = actor.public_key  # keyId = the actor itself (some servers do this)
            elif "#" not in key_id and _same_origin(doc_id, key_id):
                key = _stub_key(data, key_id, where)
            else:
                raise FetchError(f"{where}: document id ({doc_id[:200]}) does not match its URL")
            if key is None:
                raise FetchError(f"{where}: actor does not list the key {key_id}")
            return replace(key, actor=actor)
        # A key document of its own: its owner must list it.
        if not _same_url(doc_id, where) or not _same_url(doc_id, key_id):
            raise FetchError(f"{where}: key document id ({doc_id[:200]}) does not match its URL")
        key = _parse_key(data, default_owner=None, where=where)
        owner = await self.fetch_actor(key.owner)
        listed = owner.key(key.key_id)
        if listed is None:
            raise FetchError(f"{key.owner}: actor does not list the key {key_id}")
        if "".join(listed.pem.split()) != "".join(key.pem.split()):
            raise FetchError(f"{key.owner}: actor lists a different key for {key_id}")
        return replace(key, actor=owner)

    async def webfinger(self, acct: str) -> dict[str, Any]:
        """The JRD for `user@host` (also accepts `@user@host` and `acct:user@host`)."""
        user, host = _split_acct(acct)
        scheme = "https"
        if self.policy.allow_private and _is_loopback_host(host):
            scheme = "http"  # a test instance on this machine has no certificate
        try:
            url = str(
                httpx.URL(
                    f"{scheme}://{host}/.well-known/webfinger",
                    params={"resource": f"acct:{user}@{host}"},
                )
            )
        except httpx.InvalidURL:
            raise UnsafeURLError(f"{acct}: not a valid fediverse handle") from None
        final, body, _ctype, _status = await self._get(
            url,
            accept=JRD_ACCEPT,
            acceptable=is_jrd_content_type,
            what="WebFinger JSON (application/jrd+json)",
        )
        return self._parse_json(body, final)


def _same_origin(a: str, b: str) -> bool:
    try:
        ua, ub = httpx.URL(a), httpx.URL(b)
    except (httpx.InvalidURL, TypeError):
        return False
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)


def _stub_key(data: Mapping[str, Any], key_id: str, where: str) -> RemoteKey | None:
    raw = data.get("publicKey")
    for item in raw if isinstance(raw, list) else [raw]:
        if isinstance(item, dict) and item.get("id") == key_id:
            key = _parse_key(item, default_owner=data.get("id"), where=where)
            return key if key.owner == data.get("id") else None
    return None


def _split_acct(acct: str) -> tuple[str, str]:
    text = acct.strip()
    text = text.removeprefix("acct:").removeprefix("@")
    user, sep, host = text.rpartition("@")
    if not sep or not user or not host or "@" in user or any(c in host for c in "/?#\\ "):
        raise UnsafeURLError(f"{acct}: not a fediverse handle (expected user@host)")
    return user, host


def _is_loopback_host(host: str) -> bool:
    try:
        name = httpx.URL(f"http://{host}/").host
    except httpx.InvalidURL:
        return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def run_sync(
    func: Callable[[RemoteFetcher], Awaitable[T]],
    *,
    policy: FetchPolicy,
    user_agent: str,
    auth: httpx.Auth | None = None,
) -> T:
    """For CLI commands: run `func(fetcher)` in a fresh event loop and close the fetcher.

    Example: `run_sync(lambda f: f.fetch_actor(url), policy=p, user_agent=ua)`.
    """

    async def main() -> T:
        async with RemoteFetcher(policy=policy, user_agent=user_agent, auth=auth) as fetcher:
            return await func(fetcher)

    return asyncio.run(main())
