"""`fedipress inbox`: the inbox app under uvicorn, with the delivery loop beside it.

One process, one event loop: uvicorn serves POST /inbox (and, with --site, the built blog),
while DeliveryWorker.run_forever drains the same store's queue, so retries continue for as long
as the service runs and an Accept goes out as soon as its Follow is stored (the app wakes the
worker); CountRefresher (quotes.py) beside it queues count refreshes and quote revocations.
SIGTERM/SIGINT stop accepting connections, let in-flight requests finish (each request's writes
are one transaction, so nothing is half-written), stop the delivery loop after its current
attempts, and close the store.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.routing import BaseRoute

from ..config import SiteConfig, load_config
from ..errors import FedipressError
from ..store import open_site_store
from ..store.conversations import export_conversations
from ..wording import docs_url
from .author_feed import SecretPathFilter
from .delivery import DeliveryWorker, owner_id, recover_dead_leases
from .doctor_probe import ProbeRegistry
from .inbox import MAX_HEADER_BYTES, create_app
from .interact import INTERACT_PATH, Interact
from .keys import load_private_key
from .live_comments import LIVE_PATH, LiveComments, blog_origin
from .owner_api import PREFIX as OWNER_PREFIX
from .owner_api import TOKEN_ENV, OwnerApi, load_owner_token
from .quotes import CountRefresher, authorization_routes
from .remote import FetchPolicy, RemoteFetcher, user_agent
from .signing import SigningAuth, utc_now
from .webhook import Webhook, claim_webhook_keys

__all__ = ["InboxOptions", "listen_socket", "run_inbox", "serve_inbox", "served_identity"]

log = logging.getLogger("fedipress.inbox")
GRACE_SECONDS = 10


def _actor_document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise FedipressError(
            f"{path}: not found; the inbox answers for the actor of the site it serves,"
            " so run `fedipress build` first"
        ) from None
    except OSError as exc:
        raise FedipressError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except ValueError:
        raise FedipressError(f"{path}: not valid JSON; run `fedipress build` again") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise FedipressError(f"{path}: has no actor id; run `fedipress build` again")
    return data


def _same_key(pem: Any, private_key: RSAPrivateKey) -> bool:
    if not isinstance(pem, str):
        return False
    try:
        published = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeError):
        return False
    return isinstance(published, RSAPublicKey) and (
        published.public_numbers() == private_key.public_key().public_numbers()
    )


def served_identity(
    config: SiteConfig,
    site_dir: Path,
    private_key: RSAPrivateKey,
    *,
    explicit_base_url: bool,
) -> SiteConfig:
    """The configuration whose actor is the one `site_dir/actor.json` publishes.

    A Follow names the actor id the follower fetched, so an inbox answering for another id
    (site.yaml's base_url while the site was built with --base-url, say) would accept it with
    202 and drop it. The served document therefore decides: site.yaml's base_url gives way to
    the one the site was built for (with a log line), an explicit --base-url that disagrees is
    refused, and so is a document whose inbox or key this service could not stand behind."""
    if not config.fediverse.enabled:
        # The blog has left: no actor is built, the inbox answers 410 Gone and only its
        # delivery loop still works (it retries the Delete `fedipress leave` queued).
        return config
    path = site_dir / "actor.json"
    doc = _actor_document(path)
    actor_id: str = doc["id"]
    if not actor_id.endswith("/actor.json"):
        raise FedipressError(
            f"{path}: actor id {actor_id[:200]} is not <base_url>actor.json;"
            " run `fedipress build` again"
        )
    served_base = actor_id.removesuffix("actor.json")
    if served_base != config.base_url:
        if explicit_base_url:
            raise FedipressError(
                f"--base-url {config.base_url} but {path} was built for {served_base}:"
                f" start the inbox with --base-url {served_base} (or without --base-url),"
                f" or rebuild with `fedipress build --base-url {config.base_url}`"
            )
        log.info(
            "answering for %s as %s was built for it (site.yaml's base_url is %s)",
            actor_id, path, config.base_url,
        )
        try:
            config = load_config(config.config_file, base_url=served_base)
        except FedipressError:
            raise FedipressError(
                f"{path}: built for {served_base[:200]}, which is not a usable base URL;"
                " run `fedipress build` again"
            ) from None
    fed = config.fediverse
    endpoints = doc.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    key = doc.get("publicKey")
    key_id = key.get("id") if isinstance(key, dict) else None

    def rebuild() -> str:
        if served_base == _file_base(config):
            return "run `fedipress build` again"
        return f"run `fedipress build --base-url {served_base}` again"

    for what, served, expected in (
        ("actor id", actor_id, config.url("actor.json")),  # base_url as site.yaml spells it
        ("inbox", doc.get("inbox"), fed.inbox_url),
        ("shared inbox", shared, fed.shared_inbox_url),
        ("key id", key_id, actor_id + "#main-key"),
    ):
        if served != expected:
            raise FedipressError(
                f"{path}: its {what} is {str(served)[:200]} but the configuration makes it"
                f" {expected}; {rebuild()}"
            )
    if not _same_key(key.get("publicKeyPem") if isinstance(key, dict) else None, private_key):
        raise FedipressError(
            f"{path}: publishes a public key that does not match this blog's private key"
            f" (followers could not verify what the inbox sends); {rebuild()}"
        )
    return config


def _file_base(config: SiteConfig) -> str | None:
    """site.yaml's own base_url, to tell whether a rebuild needs --base-url."""
    try:
        return load_config(config.config_file).base_url
    except FedipressError:
        return None


def _warn_if_built_for_another(config: SiteConfig) -> None:
    """Without --site the actor is served elsewhere, but a local build that names another
    actor means Follows of that actor would be ignored: say so once, at start."""
    path = config.output_dir / "actor.json"
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return
    served = data.get("id") if isinstance(data, dict) else None
    expected = config.url("actor.json")
    if isinstance(served, str) and served != expected:
        log.warning(
            "%s names the actor %s but this inbox answers for %s: Follows of the other will"
            " be ignored; start with --site %s or --base-url %s",
            path, served[:200], expected, config.output_dir, served.removesuffix("actor.json"),
        )


def listen_socket(host: str, port: int) -> socket.socket:
    """The bound listening socket, made before anything else starts.

    uvicorn binds inside serve() and answers a busy port with a log line and exit code 3 (after
    the delivery loop has started); binding here turns it into one clear user error instead."""
    where = f"{host}:{port}"
    if not 0 <= port <= 65535:
        raise FedipressError(f"--port {port}: not a port number (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise FedipressError(f"--host {host}: cannot listen there ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # A restarted service may bind while the old one's connections sit in TIME_WAIT; a
        # port another process listens on still fails.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise FedipressError(
                f"{where}: address already in use (is another `fedipress inbox` running?);"
                " stop it or choose another --port"
            ) from None
        raise FedipressError(f"{where}: cannot listen ({exc.strerror or exc})") from None
    return sock


async def serve_inbox(
    config: SiteConfig,
    *,
    host: str,
    port: int,
    site_dir: Path | None,
    allow_private: bool,
    access_log: bool = False,
    explicit_base_url: bool = False,
) -> None:
    """Run the service until SIGTERM/SIGINT (or until the server stops). `access_log` turns
    on uvicorn's line per request (off by default: overhead on every POST, and the inbox logs
    its own refusals and what it stored). With `site_dir`, the served actor.json decides the
    blog's identity (see served_identity); `explicit_base_url` says config's came from
    --base-url rather than site.yaml."""
    key = load_private_key(config)
    token = load_owner_token(config.service_token_file)
    if site_dir is not None:
        config = served_identity(config, site_dir, key, explicit_base_url=explicit_base_url)
    else:
        _warn_if_built_for_another(config)
    sock = listen_socket(host, port)
    try:
        await _serve(
            config,
            sock,
            site_dir=site_dir,
            allow_private=allow_private,
            key=key,
            access_log=access_log,
            token=token,
        )
    finally:
        sock.close()
    log.info("inbox stopped")


async def _serve(
    config: SiteConfig,
    sock: socket.socket,
    *,
    site_dir: Path | None,
    allow_private: bool,
    key: RSAPrivateKey,
    access_log: bool,
    token: str | None = None,
) -> None:
    store = open_site_store(config)
    try:
        recovered = recover_dead_leases(store)
        if recovered:
            log.info("took back %d deliveries leased by processes that are gone", recovered)
        actor = config.url("actor.json")
        policy = FetchPolicy(allow_private=allow_private)
        async with RemoteFetcher(
            policy=policy,
            user_agent=user_agent(config.base_url),
            auth=SigningAuth.for_actor(actor, key),
        ) as fetcher:
            worker = DeliveryWorker.for_site(
                store, config, key, owner=owner_id("inbox"), allow_private=allow_private
            )
            owner_routes: list[BaseRoute] = []
            probes = ProbeRegistry()
            if token is not None:
                owner_routes = OwnerApi(
                    config, store, key, token, fetcher=fetcher, clock=utc_now,
                    site_dir=site_dir, allow_private=allow_private, delivery_wake=worker.wake,
                    probes=probes,
                ).routes() + probes.routes()
                log.info("owner API at %s/ (its token from %s)", OWNER_PREFIX,
                         "the environment" if os.environ.get(TOKEN_ENV) else "service.token_file")
            else:
                log.info("owner API off: set %s to enable it (see %s)", TOKEN_ENV,
                         docs_url("service"))
            if config.fediverse.comments_live is not None:
                live = LiveComments(config, store)
                owner_routes += live.routes()
                log.info("live comments at %s for pages of %s (see %s)", LIVE_PATH,
                         blog_origin(config.base_url), docs_url("notifications"))
            # The post pages' "Reply from your server" form, without JavaScript.
            owner_routes += Interact(config, allow_private=allow_private).routes()
            log.info("interact redirects at %s", INTERACT_PATH)
            app = create_app(
                config,
                store,
                fetcher,
                clock=utc_now,
                delivery_wake=worker.wake,
                site_dir=site_dir,
                # Quote authorizations (FEP-044f) are served from the moment their Accept is
                # queued: Mastodon fetches them at once, before any rebuild.
                extra_routes=[*owner_routes, *authorization_routes(config, store)],
                own_probe=probes.owns,
            )
            config_uvicorn = uvicorn.Config(
                app,
                lifespan="off",
                log_level="info",
                access_log=access_log,
                timeout_graceful_shutdown=GRACE_SECONDS,
                proxy_headers=False,  # inbox.client_ip reads X-Forwarded-For itself
                server_header=False,
                # h11 whatever else is installed ("auto" would pick httptools, which has
                # other limits): it refuses a header block still incomplete past this
                # size with 400, and the app refuses a complete one over it with 431.
                http="h11",
                h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            )
            # uvicorn has configured its loggers by now: the access log (--access-log) must
            # not write the author feed's secret URL.
            logging.getLogger("uvicorn.access").addFilter(SecretPathFilter())
            server = uvicorn.Server(config_uvicorn)

            def on_signal(sig: int, frame: FrameType | None) -> None:
                # uvicorn re-raises the signal that stopped it once it has shut down; this
                # handler (restored by then) absorbs it so the delivery loop can stop cleanly.
                server.should_exit = True

            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, on_signal)
            stop = asyncio.Event()
            deliveries = asyncio.create_task(worker.run_forever(stop))
            hook_task: asyncio.Task[None] | None = None
            if config.fediverse.webhook is not None:
                hook = Webhook(config.fediverse.webhook, config.base_url,
                               state_file=config.state_dir / "webhook-seen.json",
                               claim=lambda keys: claim_webhook_keys(store, keys, utc_now()))
                hook_task = asyncio.create_task(hook.run_forever(
                    stop, read=lambda: export_conversations(store, actor)))
            # Beside it: count refreshes for followers and revocations of blocked quoters.
            refresher = CountRefresher(config, store, utc_now, worker.wake)
            refreshes = asyncio.create_task(refresher.run_forever(stop))
            # uvicorn logs no address for a socket it is handed.
            bound_host, bound_port = sock.getsockname()[:2]
            log.info("inbox listening on %s port %d", bound_host, bound_port)
            log.info("inbox for %s at %s", actor, config.fediverse.inbox_url)
            try:
                await server.serve(sockets=[sock])
            finally:
                stop.set()
                worker.wake()
                try:
                    await asyncio.wait_for(deliveries, GRACE_SECONDS * 3)
                except TimeoutError:
                    log.warning("delivery loop did not stop in time; leases will expire")
                if hook_task is not None:
                    try:
                        await asyncio.wait_for(hook_task, GRACE_SECONDS)
                    except TimeoutError:
                        log.warning("webhook: its command was stopped with the service")
                try:
                    await asyncio.wait_for(refreshes, GRACE_SECONDS)
                except TimeoutError:
                    log.warning("count refresh loop did not stop in time")
    finally:
        store.close()


@dataclass(frozen=True)
class InboxOptions:
    """How `fedipress inbox` runs: where it listens, the built site it also serves (None:
    only the inbox), and whether config's base_url came from --base-url (see serve_inbox)."""

    host: str = "127.0.0.1"
    port: int = 8080
    site_dir: Path | None = None
    allow_private: bool = False
    access_log: bool = False
    explicit_base_url: bool = False


def run_inbox(config: SiteConfig, options: InboxOptions) -> None:
    """`fedipress inbox`: serve until SIGTERM/SIGINT. It reports through the
    `fedipress.inbox` logger; the caller configures where that goes."""
    if options.site_dir is not None and not options.site_dir.is_dir():
        raise FedipressError(f"{options.site_dir}: not a folder; run `fedipress build` first")
    if options.allow_private:
        log.warning("private addresses and plain http are allowed: for testing only")
    asyncio.run(
        serve_inbox(
            config,
            host=options.host,
            port=options.port,
            site_dir=options.site_dir,
            allow_private=options.allow_private,
            access_log=options.access_log,
            explicit_base_url=options.explicit_base_url,
        )
    )
