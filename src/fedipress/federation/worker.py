"""`fedipress worker`: a delivery worker without an inbox, draining the blog's queue.

Any number of workers (and the inbox services' own delivery loops) share one queue: each row
is leased to one of them at a time (store.claim_due; on PostgreSQL `FOR UPDATE SKIP LOCKED`),
so nothing is sent twice by two workers, and a worker killed with SIGKILL leaves leases that
another takes over when they expire (or at once, on the same machine: recover_dead_leases).
SIGTERM or SIGINT stops it after the requests in flight; rows it had not started are handed
back unsent.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta

from ..config import SiteConfig
from ..store import open_site_store
from .delivery import DEFAULT_LEASE, DeliverySummary, DeliveryWorker, owner_id, recover_dead_leases
from .keys import load_private_key

__all__ = ["WorkerOptions", "run_worker"]

log = logging.getLogger("fedipress.worker")


@dataclass(frozen=True)
class WorkerOptions:
    """How `fedipress worker` delivers: requests at once, per inbox host, and the lease each
    claimed row gets (longer than a request may take; a killed worker's rows wait this long)."""

    concurrency: int = 32
    per_host: int = 4
    lease: timedelta = DEFAULT_LEASE
    allow_private: bool = False


async def serve_worker(config: SiteConfig, options: WorkerOptions) -> DeliverySummary:
    key = load_private_key(config)
    store = open_site_store(config)
    try:
        recovered = recover_dead_leases(store)
        if recovered:
            log.info("took back %d deliveries leased by processes that are gone", recovered)
        owner = owner_id("worker")
        worker = DeliveryWorker.for_site(
            store, config, key, owner=owner, allow_private=options.allow_private,
            concurrency=options.concurrency, per_host=options.per_host, lease=options.lease,
            log=log.info,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("delivery worker %s started (%d at once, %d per host)", owner,
                 options.concurrency, options.per_host)
        summary = await worker.run_forever(stop)
        log.info("delivery worker %s stopped", owner)
        return summary
    finally:
        store.close()


def run_worker(config: SiteConfig, options: WorkerOptions) -> DeliverySummary:
    """Deliver queued rows until SIGTERM/SIGINT; reports through the `fedipress.worker`
    logger (the caller configures where that goes)."""
    if options.allow_private:
        log.warning("private addresses and plain http are allowed: for testing only")
    return asyncio.run(serve_worker(config, options))
