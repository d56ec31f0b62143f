"""`fedipress worker`: a delivery worker sharing the blog's queue with the inbox services."""

from __future__ import annotations

import argparse
import logging
from datetime import timedelta

from .shared import Subcommands, allow_private, command, load, private_option, site_options

__all__ = ["register"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000, got {text!r}")
    return value


def _lease(text: str) -> timedelta:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 5 to 3600, got {text!r}")
    return timedelta(seconds=value)


def _cmd_worker(args: argparse.Namespace) -> int:
    from ..federation.worker import WorkerOptions, run_worker

    config = load(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(config, WorkerOptions(
        concurrency=args.concurrency, per_host=args.per_host, lease=args.lease,
        allow_private=allow_private(args)))
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "worker", _cmd_worker, "deliver queued activities (beside the inbox"
                " services, on the same store)", "fedipress worker --concurrency 64")
    site_options(p)
    private_option(p)
    p.add_argument("--concurrency", type=_count, default=32,
                   help="requests in flight at once")
    p.add_argument("--per-host", type=_count, default=4,
                   help="requests in flight to one inbox host, counting every worker's")
    p.add_argument("--lease", type=_lease, default=timedelta(seconds=60), metavar="SECONDS",
                   help="how long a claimed delivery stays this worker's; a killed worker's"
                   " deliveries wait this long before another takes them (default: 60)")
