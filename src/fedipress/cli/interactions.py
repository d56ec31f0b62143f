"""`fedipress interactions` (recent likes, boosts, replies), `block`, `unblock` and `blocks`."""

from __future__ import annotations

import argparse
import sys

from .shared import MAX_LIMIT, Subcommands, command, load, row_limit, site_options

__all__ = ["register"]


def _cmd_interactions(args: argparse.Namespace) -> int:
    from ..federation.interactions import interaction_json, interaction_line, recent_interactions

    items = recent_interactions(load(args), limit=args.limit)
    if args.json:
        for item in items:
            print(interaction_json(item))
        return 0
    if not items:
        print("no likes, boosts or replies yet")
        return 0
    for item in items:
        print(interaction_line(item))
    return 0


def _cmd_block(args: argparse.Namespace) -> int:
    from ..federation.interactions import block_target

    added = block_target(load(args), args.target)
    print(f"blocked {args.target}" if added else f"{args.target} was already blocked")
    return 0


def _cmd_unblock(args: argparse.Namespace) -> int:
    from ..federation.interactions import unblock_target

    config = load(args)
    lifted = unblock_target(config, args.target)
    print(f"unblocked {lifted.target}; followers and interactions removed by the block stay"
          " removed (they can follow again)")
    if lifted.still_configured:
        print(f"{config.config_file}: warning: fediverse.blocked still lists {lifted.target};"
              " remove it there too, or it stays blocked", file=sys.stderr)
    return 0


def _cmd_blocks(args: argparse.Namespace) -> int:
    from ..federation.interactions import list_blocks

    for line in list_blocks(load(args)).lines(as_json=args.json):
        print(line)
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "interactions", _cmd_interactions, "recent likes, boosts and replies",
                "fedipress interactions --json")
    site_options(p, base_url=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--limit", type=row_limit, default=50, metavar="N",
                   help=f"show the newest N (1 to {MAX_LIMIT})")

    block_target = "a domain (spam.example, which covers its subdomains) or an actor URL"
    p = command(sub, "block", _cmd_block, "block a domain or an actor",
                "fedipress block spam.example")
    site_options(p, base_url=False)
    p.add_argument("target", help=block_target)

    p = command(sub, "unblock", _cmd_unblock, "lift a block made with `fedipress block`",
                "fedipress unblock spam.example")
    site_options(p, base_url=False)
    p.add_argument("target", help=f"{block_target}, as `fedipress blocks` lists it")

    p = command(sub, "blocks", _cmd_blocks,
                "list blocked domains and actors (`fedipress block` and site.yaml's"
                " fediverse.blocked)",
                "fedipress blocks")
    site_options(p, base_url=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
