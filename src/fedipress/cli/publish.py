"""`fedipress publish`: announce new, edited and removed posts to followers."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import FedipressError
from .shared import (
    Subcommands,
    allow_private,
    backfill_count,
    command,
    err,
    load,
    out,
    private_option,
    seconds,
    site_options,
    warn_placeholder_base_url,
)

if TYPE_CHECKING:
    from ..config import SiteConfig
    from ..federation.service_client import ServiceTarget

__all__ = ["register"]


def _cmd_publish(args: argparse.Namespace) -> int:
    """Exit 0 (all delivered, scheduled for retry, or gone), 1 (some refused for good by an
    inbox, or out of retries), 2 (user error, raised as FedipressError)."""
    from ..federation.publish import PublishOptions, run_publish
    from ..federation.service_client import service_target

    target = service_target(args.to)
    config = load(args, require_content=True)
    if target is not None:
        return _through_service(args, config, target)
    warn_placeholder_base_url(config, args, "followers' servers cannot fetch the blog's actor"
                              " or posts there, so nothing published reaches them:")
    options = PublishOptions(
        dry_run=args.dry_run, first_publish=args.first_publish, backfill=args.backfill,
        wait=args.wait, build=not args.no_build, verbose=args.verbose, base_url=args.base_url,
        allow_private=allow_private(args), progress=sys.stderr.isatty(),
    )
    return run_publish(config, options, out=out, err=err).exit_code


def _through_service(args: argparse.Namespace, config: SiteConfig,
                     target: ServiceTarget) -> int:
    from ..federation.service_client import ServicePublishOptions, publish_through_service

    for flag, given in (("--dry-run", args.dry_run), ("--first-publish", args.first_publish)):
        if given:
            raise FedipressError(f"{flag} is not available when publishing through the service"
                                 f" ({target.url}); run it on the service's machine (the"
                                 " service's first publish needs no flag: its ledger is its own)")
    warn_placeholder_base_url(config, args, "followers' servers cannot fetch the blog's actor"
                              " or posts there, so nothing published reaches them:")
    answer = publish_through_service(
        config, target,
        ServicePublishOptions(build=not args.no_build, verbose=args.verbose,
                              allow_private=allow_private(args), backfill=args.backfill),
        err=err,
    )
    for note in answer.get("notes") or ():
        err(f"note: {note}")
    if answer.get("first_publish"):
        out(f"{target.url}: {answer['first_publish']}")
    out(f"{target.url}: {answer.get('line', '(no summary)')}")
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "publish", _cmd_publish,
                "announce new, edited and removed posts to followers",
                "fedipress publish --dry-run")
    site_options(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the activities and recipients a publish would make now (from the"
                        " content as it is); write, store and send nothing")
    p.add_argument("--first-publish", action="store_true",
                   help="confirm that this store (no ledger, no followers yet) is the blog's own"
                        " and this is its first publish: announce the posts of the last week and"
                        " record the older ones as already published (default: refuse an empty"
                        " store; always refused under CI)")
    p.add_argument("--backfill", type=backfill_count, default=0, metavar="N",
                   help="also announce the newest N back-dated posts (new to the ledger, dated"
                        " over a week ago and, after the first publish, before the last one),"
                        " which are otherwise recorded without an announcement (default 0)")
    p.add_argument("--wait", type=seconds, default=60.0, metavar="SECONDS",
                   help="how long to keep retrying within this run")
    p.add_argument("--no-build", action="store_true", help="use the last build's manifest")
    p.add_argument("--to", metavar="URL",
                   help="publish through the blog's service at URL (default:"
                        " $FEDIPRESS_SERVICE_URL; the owner token comes from"
                        " $FEDIPRESS_SERVICE_TOKEN); no store or private key needed here, and"
                        " the service's own delivery loop sends and retries (--wait unused)")
    p.add_argument("--verbose", "-v", action="store_true", help="log each request")
    private_option(p)
