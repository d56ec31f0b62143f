"""`fedipress service`: the blog's service (`fedipress inbox`) as its owner sees it."""

from __future__ import annotations

import argparse

from .shared import Parser, Subcommands, action, command, out

__all__ = ["register"]


def _cmd_service(args: argparse.Namespace) -> int:
    from ..federation.owner_api import new_token

    # The only action so far; argparse requires it.
    out(new_token())
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "service", _cmd_service, "the blog's service: make its owner API token",
                "fedipress service token")
    service_sub = p.add_subparsers(dest="service_command", metavar="ACTION", required=True,
                                   parser_class=Parser, help="token")
    action(service_sub, "token",
           "print a new random owner token (for FEDIPRESS_SERVICE_TOKEN or service.token_file)",
           "fedipress service token")
