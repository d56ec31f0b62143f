"""`fedipress comments`: list replies, quotes and mentions; approve, hide; block, unblock."""

from __future__ import annotations

import argparse
import sys

from ..wording import plural
from .shared import (
    MAX_LIMIT,
    Parser,
    Subcommands,
    action,
    command,
    load,
    printable,
    row_limit,
    share_group_options,
    site_options,
)

__all__ = ["register"]

_STATUSES = ("shown", "held", "private", "mention")


def _cmd_comments(args: argparse.Namespace) -> int:
    from ..federation import comments as c

    config = load(args)
    verb = getattr(args, "comments_command", None) or "list"
    if verb == "list":
        found = c.list_comments(config, status=args.status, limit=args.limit)
        for line in found.lines(as_json=bool(args.json)):
            print(printable(line))
        return 0
    if verb == "approve":
        shown = c.approve_comment(config, args.id)
        print(f"approved {shown.id} by {printable(shown.author)}; shown from the next build")
        return 0
    if verb == "hide":
        hidden = c.hide_comment(config, args.id)
        print(f"hidden {hidden.id} by {printable(hidden.author)}; gone from the next build"
              " (`fedipress comments approve` shows it again)")
        return 0
    if verb == "block":
        done = c.block_author(config, args.target)
        first = f"blocked {printable(done.target)}" if done.added else (
            f"{printable(done.target)} was already blocked")
        gone = plural(done.interactions, "reply, quote or reaction",
                      "replies, quotes and reactions")
        print(f"{first}; removed {plural(done.followers, 'follower')} and {gone},"
              " gone from the next build")
        return 0
    lifted = c.unblock_author(config, args.target)  # unblock (argparse allows nothing else)
    print(f"unblocked {printable(lifted.target)}; what the block removed stays removed")
    if lifted.still_configured:
        print(f"{config.config_file}: warning: fediverse.blocked still lists {lifted.target};"
              " remove it there too, or it stays blocked", file=sys.stderr)
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "comments", _cmd_comments,
                "review replies, quotes and mentions: list, approve, hide, block, unblock",
                "fedipress comments approve 3f2a9c1b")
    site_options(p, base_url=False)
    p.add_argument("--json", action="store_true",
                   help="list as one JSON object per line (id, status, reason, text...)")
    p.add_argument("--status", choices=_STATUSES, default=None,
                   help="list only those shown, held, private or mentions (default: all)")
    p.add_argument("--limit", type=row_limit, default=None, metavar="N",
                   help=f"list only the newest N (1 to {MAX_LIMIT}; default: all)")
    c_sub = p.add_subparsers(dest="comments_command", metavar="ACTION", parser_class=Parser,
                             help="list, approve, hide, block or unblock (default: list)")
    action(c_sub, "list", "list replies and quotes (shown, held, private), then mentions,"
           " newest first (default)", "fedipress comments list --status held")
    id_help = ("the id `fedipress comments` lists (8 characters; a unique prefix of 4 or more"
               " works), or the reply's URL")
    ap = action(c_sub, "approve", "show a held reply or quote from the next build on",
                "fedipress comments approve 3f2a9c1b")
    ap.add_argument("id", help=id_help)
    hp = action(c_sub, "hide", "keep a reply or quote off the blog from the next build on",
                "fedipress comments hide 3f2a9c1b")
    hp.add_argument("id", help=id_help)
    bp = action(c_sub, "block", "block an author or a domain: refused from now on, their"
                " follow, replies and reactions removed", "fedipress comments block spam.example")
    bp.add_argument("target", help="a handle (@bob@spam.example), an actor URL"
                    " (https://spam.example/users/bob) or a domain (spam.example, with its"
                    " subdomains)")
    up = action(c_sub, "unblock", "lift a block (what it removed stays removed)",
                "fedipress comments unblock spam.example")
    up.add_argument("target", help="the actor URL or domain, as `fedipress blocks` lists it")
    share_group_options(p)
