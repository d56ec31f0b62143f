"""`fedipress hosting KIND`: web server configuration for this blog."""

from __future__ import annotations

import argparse

from .shared import Subcommands, command, load, site_options

__all__ = ["register"]


def _cmd_hosting(args: argparse.Namespace) -> int:
    from ..federation.hosting import hosting_config

    print(hosting_config(load(args), args.host_kind, listen=args.listen,
                         upstream=args.upstream), end="")
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "hosting", _cmd_hosting, "print web server configuration for this blog",
                "fedipress hosting nginx")
    p.add_argument("host_kind", choices=["nginx", "caddy", "apache", "netlify", "cloudflare"],
                   help="the web server or static host to configure")
    p.add_argument("--listen", metavar="[HOST:]PORT",
                   help="where nginx or Caddy listen (default: the port of base_url, 80 or 443)")
    p.add_argument("--upstream", metavar="HOST:PORT", default="127.0.0.1:8080",
                   help="where `fedipress inbox` listens, for the /inbox proxy"
                   " (default: 127.0.0.1:8080, the inbox's default)")
    site_options(p)
