"""What every command module of the command line shares: the parser's shape (help with
defaults, usage errors as one line, options common to many commands), argument types checked
as they are parsed, loading site.yaml, and printing.

Command modules import from here, never from the package's __init__ (which imports them): the
import graph stays a tree.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from ..errors import FedipressError

if TYPE_CHECKING:
    from ..config import SiteConfig

__all__ = [
    "ERROR_PREFIX",
    "MAX_LIMIT",
    "Handler",
    "HelpFormatter",
    "Parser",
    "Subcommands",
    "action",
    "allow_private",
    "backfill_count",
    "command",
    "env_flag",
    "err",
    "help_with_default",
    "load",
    "out",
    "port_number",
    "post_date",
    "printable",
    "private_option",
    "row_limit",
    "seconds",
    "share_group_options",
    "site_options",
    "slug_text",
    "tag_list",
    "warn_placeholder_base_url",
]

# How every error without a file and line begins (`file:LINE: message` for those with one).
ERROR_PREFIX = "fedipress: error: "

Handler = Callable[[argparse.Namespace], int]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def allow_private(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "allow_private_addresses", False)) or env_flag(
        "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"
    )


def load(args: argparse.Namespace, *, require_content: bool = False) -> SiteConfig:
    from ..config import load_config

    # require_content: commands that read content/ refuse a missing one (see load_config).
    config = load_config(
        Path(args.config),
        base_url=getattr(args, "base_url", None),
        require_content=require_content,
    )
    state = config.state_dir
    # Every command but init keeps state there (key, caches, database); a file in its place
    # would otherwise surface as an OSError deep inside whichever module touches it first.
    if os.path.lexists(state) and not state.is_dir():
        raise FedipressError(
            f"{state}: is a file, not a folder; fedipress keeps the blog's private key, caches"
            " and database there, so move that file elsewhere"
        )
    return config


def out(line: str) -> None:
    """A line of a command's result on stdout, at once (a long run shows progress)."""
    print(line, flush=True)


def err(line: str) -> None:
    """A note, warning or log line on stderr, at once."""
    print(line, file=sys.stderr, flush=True)


def printable(line: str) -> str:
    """`line` with undecodable file-name bytes (lone surrogates) shown as escapes, so reporting
    a mistake about such a name cannot itself fail on a strict stream."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def warn_placeholder_base_url(config: SiteConfig, args: argparse.Namespace, what: str) -> None:
    """Warn (as `site.yaml:LINE: warning: ...`) while base_url is still the address `fedipress
    init` wrote: the actor, its key and every post id would name a host that is not the blog."""
    from urllib.parse import urlsplit

    from ..generator.scaffold import PLACEHOLDER_BASE_URL

    placeholder = urlsplit(PLACEHOLDER_BASE_URL).hostname
    if urlsplit(config.base_url).hostname not in {placeholder, f"www.{placeholder}"}:
        return
    given = Path(args.config)
    shown = given / "site.yaml" if given.is_dir() else given
    try:
        text = config.config_file.read_text(encoding="utf-8")
        found = re.search(r"^base_url\s*:", text, re.MULTILINE)
        line = text.count("\n", 0, found.start()) + 1 if found else None
    except (OSError, ValueError):
        line = None
    where = f"{shown}:{line}" if line is not None else str(shown)
    print(printable(
        f"{where}: warning: base_url is still the placeholder {config.base_url} that"
        f" `fedipress init` wrote; {what} set it to the blog's public address (it becomes"
        " the fediverse handle's domain), or pass --base-url for a local test"
    ), file=sys.stderr)


# --- argument types ---------------------------------------------------------------------------
# Numbers are checked as they are parsed: out of range they would fail far away (a port in the
# socket layer, a limit in SQLite's 64-bit integers) as tracebacks. argparse prints the message
# as `fedipress CMD: error: argument --X: ...` and exits 2.

MAX_LIMIT = 100_000  # --limit: more rows than anyone reads on a terminal, far below SQLite's cap
_MAX_BACKFILL = 100_000
_MAX_WAIT = 7 * 24 * 3600.0  # --wait: a week; longer is surely a typo (ms for s)


def _integer(text: str, low: int, high: int, hint: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; {hint}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{value} is out of range; {hint}")
    return value


def port_number(text: str) -> int:
    """--port: 0..65535 (0 lets the system pick a free port)."""
    return _integer(text, 0, 65535, "give a port from 1 to 65535 (or 0 for any free port)")


def row_limit(text: str) -> int:
    """--limit: 1..MAX_LIMIT rows."""
    return _integer(text, 1, MAX_LIMIT, f"give a number from 1 to {MAX_LIMIT}")


def backfill_count(text: str) -> int:
    """--backfill: 0.._MAX_BACKFILL posts."""
    return _integer(text, 0, _MAX_BACKFILL, f"give a number of posts from 0 to {_MAX_BACKFILL}")


def seconds(text: str) -> float:
    """--wait: a finite number of seconds, 0.._MAX_WAIT (nan and inf are refused)."""
    hint = f"give a number of seconds from 0 to {_MAX_WAIT:.0f}, e.g. 60"
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; {hint}") from None
    if not math.isfinite(value) or not 0 <= value <= _MAX_WAIT:
        raise argparse.ArgumentTypeError(f"{text.strip()} is out of range; {hint}")
    return value


def post_date(text: str) -> datetime:
    """--date: an ISO 8601 date or date and time; without an offset it is read in the site's
    timezone later (scaffold.new_post), which the parser does not know yet."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; give YYYY-MM-DD or YYYY-MM-DDTHH:MM, optionally with an"
            " offset, e.g. 2024-05-01T09:30+02:00"
        ) from None


def tag_list(text: str) -> list[str]:
    """--tags: comma-separated names, each one non-empty."""
    tags = [tag.strip() for tag in text.split(",")]
    if any(not tag for tag in tags):
        raise argparse.ArgumentTypeError(
            f"{text!r} has an empty tag; separate tags with single commas, e.g. travel,food"
        )
    return tags


def slug_text(text: str) -> str:
    """--slug: already in slug form, so the file name is exactly what was typed."""
    from ..generator.slug import slugify

    if not text or slugify(text) != text:
        suggestion = slugify(text)
        hint = f", e.g. {suggestion}" if suggestion else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a slug; use lower-case letters, digits and single hyphens{hint}"
        )
    return text


# --- parser -----------------------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (their examples keep their lines); every option's help ends
    with its default, unless the help already says it: `(default: off)` for a flag."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return help_with_default(action)


def help_with_default(action: argparse.Action) -> str | None:
    text = action.help
    if text is None or text == argparse.SUPPRESS or "default" in text:
        return text
    if not action.option_strings and action.nargs not in (argparse.OPTIONAL,
                                                          argparse.ZERO_OR_MORE):
        return text  # a required positional has no default
    if action.default is argparse.SUPPRESS or action.default is None:
        return text  # the help must say it in words (tests/cli/test_cli_help.py checks)
    if isinstance(action, argparse._StoreTrueAction):
        return f"{text} (default: off)"
    if isinstance(action, argparse._StoreFalseAction):
        return f"{text} (default: on)"
    if isinstance(action, argparse.BooleanOptionalAction):
        return f"{text} (default: {'on' if action.default else 'off'})"
    return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors end in the same `fedipress: error: message` line
    as every other mistake, naming where to read more."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"fedipress: error: {message} (see `{self.prog} --help`)\n")


# argparse's subparsers action is generic only to type checkers.
Subcommands: TypeAlias = "argparse._SubParsersAction[Parser]"


def site_options(p: argparse.ArgumentParser, *, base_url: bool = True) -> None:
    p.add_argument(
        "--config", "-c", default="site.yaml", metavar="FILE",
        help="the site file, or the folder that holds site.yaml",
    )
    if base_url:
        p.add_argument(
            "--base-url",
            metavar="URL",
            help="use this base URL for this run only, e.g. http://127.0.0.1:8000/"
            " (default: site.yaml's base_url)",
        )


def private_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-private-addresses",
        action="store_true",
        help="allow fetching loopback/private addresses and plain http (testing on one machine;"
        " also FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1)",
    )


def command(
    sub: Subcommands,
    name: str,
    handler: Handler,
    help_text: str,
    example: str,
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text}\n\nexample:\n  {example}",
        formatter_class=HelpFormatter,
    )
    p.set_defaults(handler=handler)
    return p


def action(
    sub: Subcommands,
    name: str,
    help_text: str,
    example: str,
) -> argparse.ArgumentParser:
    # A subcommand (keys generate, followers add...) documents itself like a command: help text
    # and an example in its --help (tests/test_docs.py checks both).
    return sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text}\n\nexample:\n  {example}",
        formatter_class=HelpFormatter,
    )


def share_group_options(group: argparse.ArgumentParser) -> None:
    """Make the options of a command group (followers, keys, deliveries...) work after its
    action too: `followers add URL --allow-private-addresses` as well as `followers
    --allow-private-addresses add URL`.

    Each action gets a copy of every group option whose default is SUPPRESS: argparse copies
    every attribute of the action's namespace over the group's, so a real default there
    would undo a value given before the action. The copy's help names the group's default."""
    options = [
        a for a in group._actions
        if a.option_strings and not isinstance(a, (argparse._HelpAction,
                                                   argparse._VersionAction))
    ]
    for subparsers in group._actions:
        if not isinstance(subparsers, argparse._SubParsersAction):
            continue
        for action_parser in subparsers.choices.values():
            for option in options:
                shared = copy.copy(option)
                shared.help = help_with_default(option)
                if shared.help is not None and "%(default)" in shared.help:
                    shared.help = shared.help.replace("%(default)s", str(option.default))
                shared.default = argparse.SUPPRESS
                action_parser._add_action(shared)
