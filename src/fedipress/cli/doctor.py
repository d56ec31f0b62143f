"""`fedipress doctor URL`: check a deployed blog the way Mastodon would."""

from __future__ import annotations

import argparse

from .shared import Subcommands, allow_private, command, private_option

__all__ = ["register"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ..federation.doctor import check_blog, format_report

    report = check_blog(str(args.url), allow_private=allow_private(args))
    print(format_report(report), end="")
    return 0 if report.ok else 1


def register(sub: Subcommands) -> None:
    p = command(sub, "doctor", _cmd_doctor, "check a deployed blog the way Mastodon would",
                "fedipress doctor https://alice.example/")
    p.add_argument("url", help="the blog's base URL, or its handle (alice@alice.example)")
    private_option(p)
