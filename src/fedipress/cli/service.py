"""`fedipress service`: the blog's service (`fedipress inbox`) as its owner sees it."""

from __future__ import annotations

import argparse

from .shared import Parser, Subcommands, action, command, load, out, site_options

__all__ = ["register"]


def _cmd_service(args: argparse.Namespace) -> int:
    if args.service_command == "feed-url":
        from ..federation.author_feed import service_feed_url
        from ..federation.owner_api import load_owner_token

        config = load(args)
        out(service_feed_url(config, args.service, load_owner_token(config.service_token_file)))
        return 0
    from ..federation.owner_api import new_token

    out(new_token())
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "service", _cmd_service,
                "the blog's service: make its owner API token, print the author's feed URL",
                "fedipress service token")
    service_sub = p.add_subparsers(dest="service_command", metavar="ACTION", required=True,
                                   parser_class=Parser, help="token | feed-url")
    action(service_sub, "token",
           "print a new random owner token (for FEDIPRESS_SERVICE_TOKEN or service.token_file)",
           "fedipress service token")
    feed = action(service_sub, "feed-url",
                  "print the secret URL of the author's private Atom feed (replies, mentions,"
                  " quotes, follows) for a feed reader; a new owner token changes it",
                  "fedipress service feed-url")
    site_options(feed, base_url=False)
    feed.add_argument("--service", metavar="URL",
                      help="the service's address (default: FEDIPRESS_SERVICE_URL, else"
                           " site.yaml's base_url)")
