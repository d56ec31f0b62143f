"""`fedipress leave`: delete the blog's fediverse account at every follower's server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import FedipressError
from ..wording import docs_url, plural
from .shared import (
    Subcommands,
    allow_private,
    command,
    env_flag,
    err,
    load,
    out,
    private_option,
    seconds,
    site_options,
)

if TYPE_CHECKING:
    from ..federation.service_client import ServiceTarget

__all__ = ["register"]

_DESCRIPTION = (
    "leave the fediverse: send a signed Delete of the blog's account to every follower's"
    " server (they drop the account and its follows) and forget the followers. Coming back"
    " later is a fresh start: nobody follows the blog any more, readers must follow it again."
    f" Read {docs_url('leaving')} first")


def _can_ask() -> None:
    """Refuse, before anything is asked of the store or the service, where nothing can answer
    the confirmation (CI, a pipe)."""
    if env_flag("CI"):
        raise FedipressError(
            "`fedipress leave` deletes the blog's fediverse account and asks for confirmation;"
            " under CI nothing can answer: pass --yes if you mean it")
    if not sys.stdin.isatty():
        raise FedipressError(
            "`fedipress leave` deletes the blog's fediverse account and asks for confirmation"
            " on a terminal; pass --yes to run it without one")


def _confirm(handle: str, followers: int, inboxes: int) -> None:
    """Ask on a terminal (after _can_ask)."""
    print(f"This deletes @{handle} on the fediverse: {plural(followers, 'follower')} on"
          f" {plural(inboxes, 'inbox')} are told the account is gone and stop following it.",
          file=sys.stderr)
    print("Coming back later is a fresh start: nobody will follow the blog any more."
          " The blog's pages stay as they are.", file=sys.stderr)
    try:
        typed = input(f"Type the handle ({handle}) to leave: ")
    except EOFError:
        typed = ""
    if typed.strip().lstrip("@") != handle:
        raise FedipressError("the handle was not typed as shown; nothing was sent")


def _cmd_leave(args: argparse.Namespace) -> int:
    """Exit 0 (delivered or still retrying), 1 (some server refused it for good), 2 (user
    error or no confirmation, raised as FedipressError)."""
    from ..federation.leave import LeaveOptions, preview_leave, run_leave
    from ..federation.service_client import service_target

    target = service_target(args.to, doing="leaving")
    if target is not None:
        return _through_service(args, target)
    config = load(args)
    if not args.yes:
        _can_ask()
        preview = preview_leave(config)
        _confirm(preview.handle, preview.followers, preview.inboxes)
    options = LeaveOptions(wait=args.wait, allow_private=allow_private(args),
                           verbose=args.verbose)
    return run_leave(config, options, out=out, err=err).exit_code


def _through_service(args: argparse.Namespace, target: ServiceTarget) -> int:
    """The blog's service holds the followers and the key: it queues the Delete and its own
    delivery loop sends and retries it. This run waits up to --wait seconds for it."""
    from ..federation.service_client import leave_through_service

    if not args.yes:
        _can_ask()

    def confirm(preview: Mapping[str, Any]) -> None:
        if not args.yes:
            _confirm(str(preview.get("handle")), int(preview.get("followers") or 0),
                     int(preview.get("inboxes") or 0))

    return leave_through_service(target, wait=args.wait, allow_private=allow_private(args),
                                 confirm=confirm, out=out).exit_code


def register(sub: Subcommands) -> None:
    p = command(sub, "leave", _cmd_leave, _DESCRIPTION, "fedipress leave")
    site_options(p)
    p.add_argument("--yes", action="store_true",
                   help="do not ask for confirmation (needed under CI and without a terminal)")
    p.add_argument("--wait", type=seconds, default=60.0, metavar="SECONDS",
                   help="how long to keep delivering and retrying within this run (what is"
                        " left stays queued for `fedipress inbox`); through the service, how"
                        " long to watch its queue")
    p.add_argument("--to", metavar="URL",
                   help="leave through the blog's service at URL (default:"
                        " $FEDIPRESS_SERVICE_URL; the owner token comes from"
                        " $FEDIPRESS_SERVICE_TOKEN): the service sends the Delete to its"
                        " followers; no store or private key needed here")
    p.add_argument("--verbose", "-v", action="store_true", help="log each request")
    private_option(p)
