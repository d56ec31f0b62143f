"""`fedipress deliveries`: what is still queued or has failed, and `retry` to requeue failures."""

from __future__ import annotations

import argparse

from ..wording import plural
from .shared import Parser, Subcommands, action, command, load, share_group_options, site_options

__all__ = ["register"]


def _cmd_deliveries(args: argparse.Namespace) -> int:
    from ..federation.deliveries import delivery_queue, prune_dead_hosts, retry_failed_deliveries

    config = load(args)
    if getattr(args, "deliveries_command", None) == "prune":
        print(prune_dead_hosts(config).line())
        return 0
    if (getattr(args, "deliveries_command", None) or "list") == "retry":
        count = retry_failed_deliveries(config)
        print(f"requeued {plural(count, 'failed delivery', 'failed deliveries')};"
              " `fedipress publish` (or the inbox service) sends them")
        return 0
    for line in delivery_queue(config).lines():
        print(line)
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "deliveries", _cmd_deliveries, "show queued and failed deliveries",
                "fedipress deliveries retry")
    site_options(p, base_url=False)
    d_sub = p.add_subparsers(dest="deliveries_command", metavar="ACTION", parser_class=Parser,
                             help="list, retry or prune (default: list)")
    action(d_sub, "list", "queued and failed deliveries with their last error (default)",
           "fedipress deliveries list")
    action(d_sub, "retry", "requeue failed deliveries", "fedipress deliveries retry")
    action(d_sub, "prune", "remove the followers on hosts that have failed every delivery for"
           " 7 days (listed by `fedipress deliveries`)", "fedipress deliveries prune")
    share_group_options(p)
