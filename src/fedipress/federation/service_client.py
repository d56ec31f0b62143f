"""`fedipress publish` through the blog's service: no store, no private key on this machine.

    result = publish_through_service(config, ServiceTarget(url, token), options, err=err)

The build (or the last build's manifest) gives the federation manifest; it goes to the
service's owner API as one upload session (begin with the actor, the objects in chunks each
under the service's body limit, then commit, which the service applies in one transaction), and
the service's one-line answer comes back. A connection that drops before the commit leaves the
session unapplied (it expires on the service), so a retry starts again from scratch.

`deep_doctor` (doctor --deep) and `leave_through_service` (leave) ask the same owner API.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import SiteConfig
from ..errors import FedipressError
from ..wording import plural
from .leave import NEXT_STEP
from .publish_checks import (
    check_last_build,
    check_not_preview,
    load_manifest,
    running_under_ci,
)
from .service_http import (
    SERVICE_URL_ENV,
    TOKEN_ENV,
    ServiceClient,
    ServiceError,
    ServiceTarget,
    target_from,
)

__all__ = [
    "SERVICE_URL_ENV",
    "ServiceError",
    "ServiceLeave",
    "ServicePublishOptions",
    "ServiceTarget",
    "chunks",
    "deep_doctor",
    "leave_through_service",
    "publish_through_service",
    "service_target",
]

CHUNK_BYTES = 768 * 1024  # under the service's 1 MiB body limit with room for the wrapper


@dataclass(frozen=True)
class ServicePublishOptions:
    build: bool = True
    verbose: bool = False
    allow_private: bool = False
    chunk_bytes: int = CHUNK_BYTES
    backfill: int = 0  # also announce the newest N back-dated posts


def service_target(to: str | None, environ: Mapping[str, str] = os.environ, *,
                   doing: str = "publishing") -> ServiceTarget | None:
    """The service to publish through: --to, else FEDIPRESS_SERVICE_URL; None: publish locally.
    The token comes only from the environment (a command line shows in `ps` and CI logs)."""
    return target_from(
        to or environ.get(SERVICE_URL_ENV, ""), "--to" if to else SERVICE_URL_ENV, environ,
        f"{doing} through {{url}} needs the owner token in {{env}} (the value the service was"
        " started with)")


def chunks(objects: Mapping[str, Any], limit: int) -> Iterator[dict[str, Any]]:
    """`objects` in consecutive groups whose JSON is at most `limit` bytes (one object over
    the limit goes alone: the service then says it is too large)."""
    group: dict[str, Any] = {}
    size = 0
    for oid in sorted(objects):
        item_size = len(json.dumps({oid: objects[oid]}, ensure_ascii=False).encode()) + 2
        if group and size + item_size > limit:
            yield group
            group, size = {}, 0
        group[oid] = objects[oid]
        size += item_size
    if group:
        yield group


async def _upload(target: ServiceTarget, manifest: Mapping[str, Any],
                  objects: Mapping[str, Any], options: ServicePublishOptions,
                  err: Callable[[str], None]) -> dict[str, Any]:
    client = ServiceClient(target, options.allow_private)
    try:
        begun = await client.call("POST", "/publish/sessions", {"actor": manifest["actor"]})
        session = str(begun.get("session", ""))
        limit = min(options.chunk_bytes, int(begun.get("max_chunk_bytes") or CHUNK_BYTES) - 1024)
        sent = 0
        for group in chunks(objects, max(limit, 1024)):
            await client.call("POST", f"/publish/sessions/{session}/objects", {"objects": group})
            sent += len(group)
            if options.verbose:
                err(f"sent {sent:,} of {plural(len(objects), 'object')}")
        return await client.call("POST", f"/publish/sessions/{session}/commit",
                                 {"objects": sent, "backfill": options.backfill})
    finally:
        await client.http.aclose()


def publish_through_service(
    config: SiteConfig,
    target: ServiceTarget,
    options: ServicePublishOptions,
    *,
    err: Callable[[str], None],
) -> dict[str, Any]:
    """Build (unless told not to), upload the federation manifest, commit: the service's
    answer ({"line", "created", "updated", ...}). Needs no store and no private key here."""
    ci = running_under_ci()
    if options.build:
        from ..generator.build import build_site

        # As the local publish: a preview (--drafts, --future) that may be deployed is not
        # silently rebuilt over, and never reaches the service's ledger.
        check_last_build(config)
        result = build_site(config, log=err if options.verbose else (lambda _l: None), ci=ci)
        err(result.summary())
    manifest = load_manifest(config)
    check_not_preview(config, manifest, require_flags=not options.build)
    objects = manifest.get("objects")
    if not isinstance(objects, dict):
        raise FedipressError("the last build's manifest has no objects; run `fedipress build`")
    return asyncio.run(_upload(target, manifest, objects, options, err))


def deep_doctor(service: str | None, allow_private: bool,
                environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`fedipress doctor --deep`: ask the service (--service, else FEDIPRESS_SERVICE_URL,
    with the owner token) to meet the blog from outside; its {"ok", "hops": [...]}."""
    url = (service or environ.get(SERVICE_URL_ENV, "")).strip()
    if not url:
        raise FedipressError(f"--deep asks the blog's service: pass --service URL or set"
                             f" {SERVICE_URL_ENV}, with the owner token in {TOKEN_ENV}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FedipressError(f"{'--service' if service else SERVICE_URL_ENV} {url[:200]}:"
                             " expected the service's address, such as https://blog.example/")
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise FedipressError(f"--deep needs the owner token in {TOKEN_ENV} (the value the"
                             " service was started with)")
    target = ServiceTarget(url.rstrip("/") + "/", token)

    async def ask() -> dict[str, Any]:
        client = ServiceClient(target, allow_private)
        try:
            return await client.call("POST", "/doctor/deep")
        finally:
            await client.http.aclose()

    return asyncio.run(ask())


# --- fedipress leave through the service -------------------------------------------------------


@dataclass(frozen=True)
class ServiceLeave:
    """What `leave` through the service did: the service's answer to the POST and how the
    Delete's deliveries stood when this run stopped waiting."""

    queued: int
    followers_removed: int
    pending: int
    failed: int

    @property
    def exit_code(self) -> int:
        """0: delivered or still retrying on the service; 1: some server refused it for good."""
        return 1 if self.failed else 0


def leave_through_service(
    target: ServiceTarget,
    *,
    wait: float,
    allow_private: bool,
    confirm: Callable[[Mapping[str, Any]], None],
    out: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> ServiceLeave:
    """`fedipress leave` through the blog's service: GET leave (what would be told), `confirm`
    it (the command prompts, or refuses where nothing can answer: it raises to stop), POST
    leave with the handle as confirmation, then watch the service's queue for up to `wait`
    seconds. Needs no store and no key here."""
    if wait < 0:
        raise FedipressError("--wait: must be 0 or more seconds")

    async def call(method: str, body: Any = None) -> dict[str, Any]:
        client = ServiceClient(target, allow_private)
        try:
            return await client.call(method, "/leave", body)
        finally:
            await client.http.aclose()

    preview = asyncio.run(call("GET"))
    confirm(preview)
    done = asyncio.run(call("POST", {"confirm": preview.get("handle")}))
    where = target.url
    queued = int(done.get("queued") or 0)
    if done.get("new"):
        out(f"{where}: queued the Delete of {preview.get('actor')} for"
            f" {plural(queued, 'inbox', 'inboxes')};"
            f" forgot {plural(int(done.get('followers_removed') or 0), 'follower')}")
    else:
        out(f"{where}: the Delete of {preview.get('actor')} was queued by an earlier `leave`")
    deadline = time.monotonic() + wait
    status = asyncio.run(call("GET"))
    while int(status.get("pending") or 0) and time.monotonic() < deadline:
        sleep(0.5)
        status = asyncio.run(call("GET"))
    pending, failed = int(status.get("pending") or 0), int(status.get("failed") or 0)
    if done.get("new"):
        out(f"{where}: sent {max(queued - pending - failed, 0):,}, retrying {pending:,},"
            f" failed {failed:,}")
    else:
        out(f"{where}: {plural(pending, 'delivery', 'deliveries')} of it still queued,"
            f" {failed:,} failed")
    if pending:
        out("the service keeps retrying what is still queued (`GET deliveries` of its owner"
            " API shows progress)")
    out(NEXT_STEP)
    return ServiceLeave(queued=queued, followers_removed=int(done.get("followers_removed") or 0),
                        pending=pending, failed=failed)
