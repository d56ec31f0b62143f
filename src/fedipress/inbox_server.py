"""`fedipress inbox`: the inbox app under uvicorn, with the delivery loop beside it.

One process, one event loop: uvicorn serves POST /inbox (and, with --site, the built blog),
while DeliveryWorker.run_forever drains the same store's queue, so retries continue for as long
as the service runs and an Accept goes out as soon as its Follow is stored (the app wakes the
worker). SIGTERM/SIGINT stop accepting connections, let in-flight requests finish (each
request's writes are one transaction, so nothing is half-written), stop the delivery loop after
its current attempts, and close the store.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
from pathlib import Path
from types import FrameType

import uvicorn
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from .config import SiteConfig
from .delivery import DeliveryWorker, owner_id, recover_dead_leases
from .errors import FedipressError
from .inbox import create_app
from .keys import load_private_key
from .remote import FetchPolicy, RemoteFetcher, user_agent
from .signing import SigningAuth, utc_now
from .store import default_store_path, open_store

__all__ = ["listen_socket", "run_inbox_command", "serve_inbox"]

log = logging.getLogger("fedipress.inbox")
GRACE_SECONDS = 10


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
) -> None:
    """Run the service until SIGTERM/SIGINT (or until the server stops). `access_log` turns
    on uvicorn's line per request (off by default: overhead on every POST, and the inbox logs
    its own refusals and what it stored)."""
    key = load_private_key(config)
    sock = listen_socket(host, port)
    try:
        await _serve(
            config,
            sock,
            site_dir=site_dir,
            allow_private=allow_private,
            key=key,
            access_log=access_log,
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
) -> None:
    store = open_store(default_store_path(config.state_dir))
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
            app = create_app(
                config,
                store,
                fetcher,
                clock=utc_now,
                delivery_wake=worker.wake,
                site_dir=site_dir,
            )
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    lifespan="off",
                    log_level="info",
                    access_log=access_log,
                    timeout_graceful_shutdown=GRACE_SECONDS,
                    proxy_headers=False,  # inbox.client_ip reads X-Forwarded-For itself
                    server_header=False,
                )
            )

            def on_signal(sig: int, frame: FrameType | None) -> None:
                # uvicorn re-raises the signal that stopped it once it has shut down; this
                # handler (restored by then) absorbs it so the delivery loop can stop cleanly.
                server.should_exit = True

            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, on_signal)
            stop = asyncio.Event()
            deliveries = asyncio.create_task(worker.run_forever(stop))
            # uvicorn logs no address for a socket it is handed.
            bound_host, bound_port = sock.getsockname()[:2]
            log.info("inbox listening on %s port %d", bound_host, bound_port)
            try:
                await server.serve(sockets=[sock])
            finally:
                stop.set()
                worker.wake()
                try:
                    await asyncio.wait_for(deliveries, GRACE_SECONDS * 3)
                except TimeoutError:
                    log.warning("delivery loop did not stop in time; leases will expire")
    finally:
        store.close()


def run_inbox_command(config: SiteConfig, args: argparse.Namespace, allow_private: bool) -> int:
    """`fedipress inbox [--host H] [--port P] [--site DIR] [--allow-private-addresses]
    [--access-log]`."""
    site_dir: Path | None = None
    if getattr(args, "site", None):
        site_dir = Path(args.site)
        if not site_dir.is_dir():
            raise FedipressError(f"{args.site}: not a folder; run `fedipress build` first")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if allow_private:
        log.warning("private addresses and plain http are allowed: for testing only")
    asyncio.run(
        serve_inbox(
            config,
            host=args.host,
            port=args.port,
            site_dir=site_dir,
            allow_private=allow_private,
            access_log=bool(getattr(args, "access_log", False)),
        )
    )
    return 0
