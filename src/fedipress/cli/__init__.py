"""The `fedipress` command line.

Each command parses its arguments, calls one library function and prints the outcome. User
errors (FedipressError) print as clean lines on stderr with exit code 2, each either
`file:LINE: message` or `fedipress: error: message`; anything else is a bug and keeps its
traceback.

One module per command or command group (site: init, new, build, serve; keys; hosting; ci;
doctor; publish; followers; deliveries; inbox; service; interactions: interactions, block,
unblock, blocks; comments; leave; store: migrate, copy; worker), each with its
`register(subcommands)`; what they share is in `shared`.
Nothing outside this package imports argparse or reads its Namespace: the library functions the
commands call take typed parameters, so the inbox service, tests and scripts can call them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import FedipressError, Problem
from . import (
    ci,
    comments,
    deliveries,
    doctor,
    followers,
    hosting,
    inbox,
    interactions,
    keys,
    leave,
    publish,
    service,
    site,
    store,
    worker,
)
from .shared import ERROR_PREFIX, Handler, HelpFormatter, Parser, printable

__all__ = ["ERROR_PREFIX", "main", "build_parser", "run"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fedipress",
        description="Static blogs that are first-class citizens of the fediverse.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fedipress {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser,
                                help="what to do; `fedipress COMMAND --help` describes each"
                                " (default: print this help)")
    # In this order in `fedipress --help`.
    for module in (site, keys, hosting, ci, doctor, publish, followers, deliveries, inbox,
                   worker, service, interactions, comments, leave, store):
        module.register(sub)
    return parser


# Arguments that name files: any bytes the file system allows are fine there. Every other
# string (a title, an actor, a URL) is text that ends up in UTF-8 files, URLs or the database.
_PATH_ARGUMENTS = frozenset({"directory", "config", "site"})


def _check_text_arguments(args: argparse.Namespace) -> None:
    for name, given in vars(args).items():
        if name in _PATH_ARGUMENTS:
            continue
        # A list option (--tags) holds one string per item.
        values = given if isinstance(given, list) else [given]
        for value in values:
            if not isinstance(value, str):
                continue
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                # A non-UTF-8 byte on the command line reaches Python as a lone surrogate.
                raise FedipressError(
                    f"the {name.replace('_', ' ').replace('url', 'URL')} {value!r} is not UTF-8"
                    " text; set your terminal to UTF-8 (e.g. LANG=C.UTF-8) and type it again"
                ) from None


def _innermost(parser: argparse.ArgumentParser,
               args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser that `args` were parsed by: `fedipress followers add`'s for
    `followers add URL --nope`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return _innermost(chosen, args)
    return parser


def main(argv: Sequence[str] | None = None, *, exit_when_done: bool = False) -> int:
    """Run one command; its exit code. `exit_when_done` (the console script's) lets a command
    that holds a large loaded site end the process itself once all is written (build)."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # Refused by the command they were typed for, so the message names its --help.
            _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as stop:
        # --help, --version and usage errors (a --port out of range...) end here too: callers
        # of main() get an exit code for every outcome, never an exception.
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None) * 2
    args.exit_when_done = exit_when_done
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        _check_text_arguments(args)
        return handler(args)
    except FedipressError as error:
        problems: tuple[Problem, ...] = getattr(error, "problems", ())
        if problems:
            # Located mistakes as `file:LINE: message`, one a line, as compilers write
            # them (editors jump to them); anything else as `fedipress: error: message`,
            # the shape argparse's usage errors take too (_Parser.error).
            for problem in problems:
                print(printable(str(problem)), file=sys.stderr)
        else:
            for line in str(error).splitlines() or [type(error).__name__]:
                print(printable(f"{ERROR_PREFIX}{line}"), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The `fedipress` console script."""
    sys.exit(main(exit_when_done=True))

