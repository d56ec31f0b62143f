"""`fedipress inbox`: the inbox service (and, with --site, the built blog beside it)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import FedipressError
from .shared import (
    Subcommands,
    allow_private,
    command,
    load,
    port_number,
    private_option,
    site_options,
)

__all__ = ["register"]


def _cmd_inbox(args: argparse.Namespace) -> int:
    from ..federation.inbox_server import InboxOptions, run_inbox

    config = load(args)
    site_dir: Path | None = None
    if args.site:
        site_dir = Path(args.site)
        if not site_dir.is_dir():
            # Named as typed (`public/`), before the service would name the path it made.
            raise FedipressError(f"{args.site}: not a folder; run `fedipress build` first")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_inbox(config, InboxOptions(
        host=args.host, port=args.port, site_dir=site_dir, allow_private=allow_private(args),
        access_log=args.access_log, explicit_base_url=bool(args.base_url),
    ))
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "inbox", _cmd_inbox, "run the inbox service",
                "fedipress inbox --site public/ --port 8080")
    site_options(p)
    private_option(p)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=port_number, default=8080,
                   help="the port to listen on (0: any free port)")
    p.add_argument("--site", metavar="DIR",
                   help="also serve this built site (default: serve only the inbox)")
    p.add_argument("--access-log", action="store_true",
                   help="log one line per HTTP request (the inbox logs its own refusals and"
                        " what it stored in any case)")
