"""`fedipress doctor --deep`: the service meets its own blog from the outside.

    probes = ProbeRegistry()                       # its routes are public, beside the inbox
    hops = await deep_check(config, store, key, probes, allow_private=...)

The service fetches WebFinger, the actor and one post through the blog's PUBLIC address (so
through whatever proxy is in front), then hosts a short-lived probe actor (a fresh RSA-2048 key
held in memory only, served under /.fedipress/api/v1/probe/<random>/) that sends a signed
Follow to the public inbox, waits for the blog's Accept at the probe's own inbox (its signature
verified with the blog's key) and then Undoes the Follow, so the probe is never left following.
Each hop passes or fails with the fix.

Whatever reaches a probe's inbox is answered 202 once the probe has judged it: its verdict goes
into the report, and a 4xx would only make the service's own queue retry the Accept for days
against a probe that is gone, to end as a failed delivery in `fedipress deliveries`. For the
same reason a probe that is over still takes (and drops, with a log line) deliveries for a
day; any other probe id is 410 Gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..activitypub.httpsig import PublicKey, sign_cavage, verify_request
from ..config import SiteConfig
from ..errors import SignatureError, UnsafeURLError
from ..store import Store
from .netguard import GuardedTransport

__all__ = ["MASTODON_ACCEPT", "Hop", "Probe", "ProbeRegistry", "deep_check"]

log = logging.getLogger("fedipress.inbox")

PROBE_PREFIX = "/.fedipress/api/v1/probe"
MASTODON_ACCEPT = "application/activity+json, application/ld+json"
AS2 = "application/activity+json"
MAX_ACCEPT_BYTES = 64 * 1024
ACCEPT_WAIT = 20.0  # seconds for the blog's Accept to reach the probe
# A finished probe takes late deliveries this long (the queue's own retries come within
# minutes), and at most this many finished probes are remembered.
ENDED_SECONDS = 24 * 3600.0
ENDED_KEPT = 1024
HOST_FIX = ("your proxy changes the Host header the sender signed (nginx: proxy_set_header"
            " Host $http_host; Apache: ProxyPreserveHost On), or use the configuration"
            " `fedipress hosting` prints")


@dataclass(frozen=True)
class Hop:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"hop": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass
class Probe:
    """One live probe actor: its key lives only in this object."""

    pid: str
    base: str  # the blog's public base URL
    key: RSAPrivateKey
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    accept_problem: str | None = None
    accept_fix: str | None = None
    follow_id: str = ""
    # What the Accept must verify with: the key of the actor as deployed (else the service's).
    blog_key: PublicKey | None = None

    @property
    def actor_id(self) -> str:
        return f"{self.base.rstrip('/')}{PROBE_PREFIX}/{self.pid}/actor"

    @property
    def inbox(self) -> str:
        return f"{self.base.rstrip('/')}{PROBE_PREFIX}/{self.pid}/inbox"

    def document(self) -> dict[str, Any]:
        pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return {
            "@context": ["https://www.w3.org/ns/activitystreams",
                         "https://w3id.org/security/v1"],
            "id": self.actor_id, "type": "Application",
            "preferredUsername": "fedipress-doctor-" + self.pid[:8],
            "inbox": self.inbox,
            "publicKey": {"id": self.actor_id + "#main-key", "owner": self.actor_id,
                          "publicKeyPem": pem.decode("ascii")},
        }


def _over() -> Response:
    # 410: a probe lives only while its check runs; a late delivery to it is dropped at once
    # rather than retried.
    return JSONResponse({"error": "this doctor probe is over"}, 410)


class ProbeRegistry:
    """The live probes and their public routes; the recently finished ones (by id) take late
    deliveries without a complaint; 410 for any other id."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.live: dict[str, Probe] = {}
        self.ended: OrderedDict[str, float] = OrderedDict()
        self._clock = clock

    def finish(self, pid: str) -> None:
        """The probe's check is over: its key goes, its id is remembered for late deliveries."""
        self.live.pop(pid, None)
        now = self._clock()
        self.ended[pid] = now
        self.ended.move_to_end(pid)
        while self.ended and (len(self.ended) > ENDED_KEPT
                              or now - next(iter(self.ended.values())) > ENDED_SECONDS):
            self.ended.popitem(last=False)

    def _recently_ended(self, pid: str) -> bool:
        ended = self.ended.get(pid)
        return ended is not None and self._clock() - ended <= ENDED_SECONDS

    def owns(self, key_id: str) -> bool:
        """Is key_id a live probe's key? (The inbox otherwise refuses keys on its own host.)"""
        return any(key_id == p.actor_id + "#main-key" for p in self.live.values())

    async def actor(self, request: Request) -> Response:
        probe = self.live.get(request.path_params["pid"])
        if probe is None:
            return _over()
        return Response(json.dumps(probe.document()).encode(), 200, media_type=AS2)

    async def inbox(self, request: Request) -> Response:
        pid = request.path_params["pid"]
        probe = self.live.get(pid)
        if probe is None:
            if not self._recently_ended(pid):
                return _over()
            # Our own queue delivering after the check ended (an Accept that took longer than
            # the check waited): nothing failed, so it is taken, and dropped with a reason.
            log.info("doctor --deep: probe %s is over; a late delivery to it was dropped", pid)
            return Response(status_code=202)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_ACCEPT_BYTES:  # an Accept is a few hundred bytes
                return JSONResponse({"error": "too large"}, 413)
        headers = dict(request.headers.items())
        # The Accept was signed for the probe's public address: verify against that host,
        # whatever a proxy in front made of it (the Follow hop tests the proxy's Host).
        headers["host"] = urlsplit(probe.inbox).netloc
        problem: str | None = None
        fix = "see the service's log: its inbox answered the Follow with something else"
        try:
            if probe.blog_key is None:
                raise SignatureError("no key to verify with")
            verify_request("POST", urlsplit(probe.inbox).path, headers.items(), body,
                           public_key=probe.blog_key, now=datetime.now(UTC),
                           scheme=urlsplit(probe.inbox).scheme)
            activity = json.loads(body)
            inner = activity.get("object") if isinstance(activity, dict) else None
            inner_id = inner.get("id") if isinstance(inner, dict) else inner
            if activity.get("type") != "Accept" or inner_id != probe.follow_id:
                problem = f"expected an Accept of the probe's Follow, got {body[:200]!r}"
        except SignatureError as exc:
            problem = f"the Accept's signature does not verify with the blog's key ({exc})"
            fix = ("the service signs with a key other than the deployed actor's: rebuild and"
                   " deploy with the service's public key (`fedipress keys show` on the"
                   " service's machine)")
        except (ValueError, AttributeError):
            problem = "the Accept is not a JSON object"
        if problem is not None:
            log.info("doctor --deep: probe %s: %s", probe.pid, problem)
        probe.accept_problem, probe.accept_fix = problem, fix
        probe.accepted.set()
        # Judged: the verdict is the report's (see the module's docstring), not the sender's.
        return Response(status_code=202)

    def routes(self) -> list[BaseRoute]:
        return [Route(PROBE_PREFIX + "/{pid}/actor", self.actor, methods=["GET"]),
                Route(PROBE_PREFIX + "/{pid}/inbox", self.inbox, methods=["POST"])]


def _ctype(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


async def _get(client: httpx.AsyncClient, url: str, accept: str,
               params: dict[str, str] | None = None) -> httpx.Response | str:
    try:
        return await client.get(url, headers={"Accept": accept}, params=params)
    except UnsafeURLError as exc:
        return f"{url}: refused ({exc}); a blog on a private address needs the service run" \
            " with --allow-private-addresses"
    except httpx.HTTPError as exc:
        return f"{url}: cannot be reached ({type(exc).__name__}: {exc})"


async def _webfinger(config: SiteConfig, client: httpx.AsyncClient) -> Hop:
    acct = f"acct:{config.fediverse.username}@{config.fediverse.handle_domain}"
    url = config.url(".well-known/webfinger")
    got = await _get(client, url, "application/jrd+json", {"resource": acct})
    name = "WebFinger"
    if isinstance(got, str):
        return Hop(name, False, got, "check that the blog's public address is up")
    if got.status_code == 404:
        return Hop(name, False, f"{url} answered 404 for {acct}",
                   ".well-known/ is not deployed: upload public/.well-known/ (many deploy"
                   " tools skip dot folders) or proxy it with `fedipress hosting`")
    if got.status_code != 200:
        return Hop(name, False, f"{url} answered {got.status_code} for {acct}",
                   "serve public/.well-known/webfinger as `fedipress hosting` configures it")
    if _ctype(got) != "application/jrd+json":
        return Hop(name, False, f"content type {_ctype(got) or 'none'}, not"
                   " application/jrd+json", "use the content type `fedipress hosting` sets")
    if got.headers.get("access-control-allow-origin") != "*":
        return Hop(name, False, "no Access-Control-Allow-Origin: * header",
                   "add the CORS header `fedipress hosting` sets for .well-known/webfinger")
    return Hop(name, True, f"{acct}: 200 application/jrd+json with CORS")


def _published_key(doc: Any) -> PublicKey | None:
    key = doc.get("publicKey") if isinstance(doc, dict) else None
    pem = key.get("publicKeyPem") if isinstance(key, dict) else None
    try:
        loaded = load_pem_public_key(pem.encode("ascii")) if isinstance(pem, str) else None
    except (ValueError, UnicodeError, TypeError):
        return None
    return loaded if isinstance(loaded, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)) else None


async def _document(client: httpx.AsyncClient, name: str, url: str,
                    found: dict[str, Any] | None = None) -> Hop:
    """One document fetched as Mastodon does; `found` receives it when it passes."""
    got = await _get(client, url, MASTODON_ACCEPT)
    if isinstance(got, str):
        return Hop(name, False, got, "check that the blog's public address is up")
    if got.status_code != 200:
        return Hop(name, False, f"{url} answered {got.status_code} to Accept: {MASTODON_ACCEPT}",
                   "deploy the whole public/ folder")
    if _ctype(got) not in (AS2, "application/ld+json"):
        return Hop(name, False, f"{url}: content type {_ctype(got) or 'none'}",
                   "serve it as application/activity+json (see `fedipress hosting`)")
    try:
        doc = json.loads(got.content)
        served = doc.get("id")
    except (ValueError, AttributeError):
        doc, served = None, None
    if served != url:
        return Hop(name, False, f"{url}: its id is {str(served)[:200]!r}",
                   "rebuild with base_url set to the public address, and deploy")
    if found is not None:
        found.update(doc)
    return Hop(name, True, f"{url}: 200 {_ctype(got)}, id as served")


def _first_post(store: Store) -> str | None:
    for oid, entry in sorted(store.get_ledger().items()):
        if entry.state == "live" and "#" not in oid:
            return oid
    return None


async def _signed_post(client: httpx.AsyncClient, probe: Probe, url: str,
                       activity: dict[str, Any]) -> httpx.Response | str:
    body = json.dumps(activity).encode()
    headers = {"Content-Type": AS2, "Host": urlsplit(url).netloc}
    headers |= sign_cavage("POST", url, headers, body, key_id=probe.actor_id + "#main-key",
                           private_key=probe.key, now=datetime.now(UTC))
    try:
        return await client.post(url, content=body, headers=headers)
    except UnsafeURLError as exc:
        return f"{url}: refused ({exc})"
    except httpx.HTTPError as exc:
        return f"{url}: cannot be reached ({type(exc).__name__}: {exc})"


def _refused(got: httpx.Response, url: str) -> tuple[str, str]:
    try:
        text = str(got.json().get("error") or "")[:200]
    except (ValueError, AttributeError):
        text = got.text[:200].strip()
    detail = f"the inbox {url} answered {got.status_code} {text}".rstrip()
    if got.status_code == 401 and "verify" in text:
        return detail, HOST_FIX
    if "could not be fetched" in text:
        # The service fetches the probe's actor through the public address, as any inbox
        # fetches a sender's key: the proxy must pass /.fedipress/api/ to the service.
        return detail, ("the service could not fetch the probe's actor at its public address:"
                        " proxy /.fedipress/api/ to the service (`fedipress hosting`)")
    if got.status_code == 401:
        return detail, "the inbox refused the probe's signature; see the service's log"
    if got.status_code in (404, 405):
        return detail, "proxy /inbox to the service (`fedipress hosting`)"
    return detail, "see the service's log for why"


async def _follow_and_undo(config: SiteConfig, store: Store, probe: Probe,
                           client: httpx.AsyncClient,
                           db: Callable[..., Awaitable[Any]]) -> list[Hop]:
    inbox = config.fediverse.inbox_url
    blog_actor = config.url("actor.json")
    probe.follow_id = probe.actor_id + "/follow"
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": probe.follow_id,
              "type": "Follow", "actor": probe.actor_id, "object": blog_actor}
    got = await _signed_post(client, probe, inbox, follow)
    if isinstance(got, str):
        return [Hop("Follow", False, got, "proxy /inbox to the service (`fedipress hosting`)")]
    if got.status_code not in (200, 202):
        detail, fix = _refused(got, inbox)
        return [Hop("Follow", False, detail, fix)]
    hops: list[Hop] = []
    if config.fediverse.manually_approves_followers:
        hops.append(Hop("Follow", True, f"{inbox} answered {got.status_code}; held for"
                        " approval (manually_approves_followers), so no Accept is expected"))
    else:
        try:
            await asyncio.wait_for(probe.accepted.wait(), ACCEPT_WAIT)
        except TimeoutError:
            hops.append(Hop("Follow", False, f"{inbox} answered {got.status_code} but no"
                            f" Accept reached {probe.inbox} in {ACCEPT_WAIT:.0f}s",
                            "check `fedipress deliveries` on the service and that"
                            " /.fedipress/api/ is proxied to it"))
        else:
            if probe.accept_problem is not None:
                hops.append(Hop("Follow", False, probe.accept_problem, probe.accept_fix))
            else:
                hops.append(Hop("Follow", True, f"{inbox} answered {got.status_code}; the"
                                " Accept arrived, signed with the blog's key"))
    undo = {"@context": "https://www.w3.org/ns/activitystreams",
            "id": probe.actor_id + "/undo", "type": "Undo", "actor": probe.actor_id,
            "object": follow}
    got = await _signed_post(client, probe, inbox, undo)
    left = await db(store.get_follower, probe.actor_id)
    if isinstance(got, str) or got.status_code not in (200, 202) or left is not None:
        # deep_check removes the probe from the store whatever happens: never left following.
        detail = got if isinstance(got, str) else (
            f"the inbox answered {got.status_code} {got.text[:200].strip()}" if got.status_code
            not in (200, 202) else "the probe was still a follower after its Undo")
        hops.append(Hop("Undo", False, detail, "see the service's log; the probe was removed"))
    else:
        hops.append(Hop("Undo", True, f"{inbox} answered {got.status_code}; the probe is no"
                        " longer a follower"))
    return hops


async def deep_check(config: SiteConfig, store: Store, key: RSAPrivateKey,
                     probes: ProbeRegistry, *, allow_private: bool,
                     db: Callable[..., Awaitable[Any]],
                     timeout: float = 15.0) -> list[Hop]:
    """The hops, in order. Each runs whatever the others gave: an inbox may work while
    WebFinger does not, and the owner wants every fix at once."""
    transport = GuardedTransport(allow_private=allow_private)
    async with httpx.AsyncClient(transport=transport, timeout=timeout,
                                 follow_redirects=False) as client:
        hops = [await _webfinger(config, client)]
        actor: dict[str, Any] = {}
        hops.append(await _document(client, "actor", config.url("actor.json"), actor))
        post = await db(_first_post, store)
        if post is None:
            hops.append(Hop("post", True, "no post published yet: nothing to fetch"))
        else:
            hops.append(await _document(client, "post", post))
        # A fresh key per check, never stored; made off the event loop (it takes a while).
        probe_key = await asyncio.to_thread(rsa.generate_private_key, 65537, 2048)
        probe = Probe(secrets.token_urlsafe(12), config.base_url, probe_key)
        probe.blog_key = _published_key(actor) or key.public_key()
        probes.live[probe.pid] = probe
        try:
            hops.extend(await _follow_and_undo(config, store, probe, client, db))
        finally:
            probes.finish(probe.pid)
            # Its follower row (if the Undo failed), cached document and key go with it.
            await db(store.remove_actor, probe.actor_id)
    return hops
