"""The `fedipress` command line.

Each command parses its arguments, calls one library function and prints the outcome. User
errors (FedipressError) print as clean lines on stderr with exit code 2, each either
`file:LINE: message` or `fedipress: error: message`; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .errors import FedipressError, Problem

if TYPE_CHECKING:
    from .config import SiteConfig

__all__ = ["ERROR_PREFIX", "main", "build_parser", "run"]

# How every error without a file and line begins (`file:LINE: message` for those with one).
ERROR_PREFIX = "fedipress: error: "

Handler = Callable[[argparse.Namespace], int]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _allow_private(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "allow_private_addresses", False)) or _env_flag(
        "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"
    )


def _load(args: argparse.Namespace, *, require_content: bool = False):  # type: ignore[no-untyped-def]
    from .config import load_config

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


# --- command handlers -------------------------------------------------------------------------
# Each handler is owned by the module it calls; keep them short.


def _cmd_init(args: argparse.Namespace) -> int:
    from .generator.scaffold import init_site

    created = init_site(Path(args.directory))
    for path in created:
        print(f"created {path}")
    print(f"Next: set title, base_url and author in {Path(args.directory) / 'site.yaml'},"
          f" then: cd {args.directory} && fedipress build && fedipress serve")
    return 0


def _cmd_new(args: argparse.Namespace) -> int:
    from .generator.scaffold import describe_new, new_post

    if args.page and args.tags:
        # front_matter() writes no tags for a page: refused rather than dropped unseen.
        raise FedipressError("--tags is for posts: pages are not listed under tags; leave out"
                             " --tags or --page")
    config = _load(args, require_content=True)
    path = new_post(config, args.title, page=args.page, draft=args.draft, date=args.date,
                    tags=args.tags, slug=args.slug)
    print(f"created {path}")
    for line in describe_new(config, path, page=args.page, draft=args.draft, date=args.date):
        print(line)
    return 0


def _warn_placeholder_base_url(config: SiteConfig, args: argparse.Namespace, what: str) -> None:
    """Warn (as `site.yaml:LINE: warning: ...`) while base_url is still the address `fedipress
    init` wrote: the actor, its key and every post id would name a host that is not the blog."""
    from urllib.parse import urlsplit

    from .generator.scaffold import PLACEHOLDER_BASE_URL

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
    print(_printable(
        f"{where}: warning: base_url is still the placeholder {config.base_url} that"
        f" `fedipress init` wrote; {what} set it to the blog's public address (it becomes"
        " the fediverse handle's domain), or pass --base-url for a local test"
    ), file=sys.stderr)


def _cmd_build(args: argparse.Namespace) -> int:
    from .generator.build import run_build_command

    config = _load(args, require_content=True)
    if not args.quiet:  # --quiet: errors only
        _warn_placeholder_base_url(config, args, "links, feeds and the fediverse actor point"
                                   " there:")
    return run_build_command(config, args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from .generator.devserver import serve

    return serve(_load(args, require_content=True), args)


def _cmd_keys(args: argparse.Namespace) -> int:
    from .federation.keys import run_keys_command

    return run_keys_command(_load(args), args)


def _cmd_hosting(args: argparse.Namespace) -> int:
    from .federation.hosting import hosting_config

    print(hosting_config(_load(args), args.host_kind, listen=args.listen,
                         upstream=args.upstream), end="")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .federation.doctor import run_doctor_command

    return run_doctor_command(args, allow_private=_allow_private(args))


def _cmd_publish(args: argparse.Namespace) -> int:
    from .federation.publish import run_publish_command

    config = _load(args, require_content=True)
    _warn_placeholder_base_url(config, args, "followers' servers cannot fetch the blog's actor"
                               " or posts there, so nothing published reaches them:")
    return run_publish_command(config, args, allow_private=_allow_private(args))


def _cmd_followers(args: argparse.Namespace) -> int:
    from .federation.followers import run_followers_command

    return run_followers_command(_load(args), args, allow_private=_allow_private(args))


def _cmd_deliveries(args: argparse.Namespace) -> int:
    from .federation.deliveries import run_deliveries_command

    return run_deliveries_command(_load(args), args)


def _cmd_inbox(args: argparse.Namespace) -> int:
    from .federation.inbox_server import run_inbox_command

    return run_inbox_command(_load(args), args, allow_private=_allow_private(args))


def _cmd_interactions(args: argparse.Namespace) -> int:
    from .federation.interactions import run_interactions_command

    return run_interactions_command(_load(args), args)


def _cmd_block(args: argparse.Namespace) -> int:
    from .federation.interactions import run_block_command

    return run_block_command(_load(args), args)


def _cmd_unblock(args: argparse.Namespace) -> int:
    from .federation.interactions import run_unblock_command

    return run_unblock_command(_load(args), args)


def _cmd_blocks(args: argparse.Namespace) -> int:
    from .federation.interactions import run_blocks_command

    return run_blocks_command(_load(args), args)


# --- argument types ---------------------------------------------------------------------------
# Numbers are checked as they are parsed: out of range they would fail far away (a port in the
# socket layer, a limit in SQLite's 64-bit integers) as tracebacks. argparse prints the message
# as `fedipress CMD: error: argument --X: ...` and exits 2.

_MAX_LIMIT = 100_000  # --limit: more rows than anyone reads on a terminal, far below SQLite's cap
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


def _port_number(text: str) -> int:
    """--port: 0..65535 (0 lets the system pick a free port)."""
    return _integer(text, 0, 65535, "give a port from 1 to 65535 (or 0 for any free port)")


def _row_limit(text: str) -> int:
    """--limit: 1.._MAX_LIMIT rows."""
    return _integer(text, 1, _MAX_LIMIT, f"give a number from 1 to {_MAX_LIMIT}")


def _backfill_count(text: str) -> int:
    """--backfill: 0.._MAX_BACKFILL posts."""
    return _integer(text, 0, _MAX_BACKFILL, f"give a number of posts from 0 to {_MAX_BACKFILL}")


def _seconds(text: str) -> float:
    """--wait: a finite number of seconds, 0.._MAX_WAIT (nan and inf are refused)."""
    hint = f"give a number of seconds from 0 to {_MAX_WAIT:.0f}, e.g. 60"
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; {hint}") from None
    if not math.isfinite(value) or not 0 <= value <= _MAX_WAIT:
        raise argparse.ArgumentTypeError(f"{text.strip()} is out of range; {hint}")
    return value


def _post_date(text: str) -> datetime:
    """--date: an ISO 8601 date or date and time; without an offset it is read in the site's
    timezone later (scaffold.new_post), which the parser does not know yet."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; give YYYY-MM-DD or YYYY-MM-DDTHH:MM, optionally with an"
            " offset, e.g. 2024-05-01T09:30+02:00"
        ) from None


def _tag_list(text: str) -> list[str]:
    """--tags: comma-separated names, each one non-empty."""
    tags = [tag.strip() for tag in text.split(",")]
    if any(not tag for tag in tags):
        raise argparse.ArgumentTypeError(
            f"{text!r} has an empty tag; separate tags with single commas, e.g. travel,food"
        )
    return tags


def _slug_text(text: str) -> str:
    """--slug: already in slug form, so the file name is exactly what was typed."""
    from .generator.slug import slugify

    if not text or slugify(text) != text:
        suggestion = slugify(text)
        hint = f", e.g. {suggestion}" if suggestion else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a slug; use lower-case letters, digits and single hyphens{hint}"
        )
    return text


# --- parser -----------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (their examples keep their lines); every option's help ends
    with its default, unless the help already says it: `(default: off)` for a flag."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return _help_with_default(action)


def _help_with_default(action: argparse.Action) -> str | None:
    text = action.help
    if text is None or text == argparse.SUPPRESS or "default" in text:
        return text
    if not action.option_strings and action.nargs not in (argparse.OPTIONAL,
                                                          argparse.ZERO_OR_MORE):
        return text  # a required positional has no default
    if action.default is argparse.SUPPRESS or action.default is None:
        return text  # the help must say it in words (tests/test_cli_help.py checks)
    if isinstance(action, argparse._StoreTrueAction):
        return f"{text} (default: off)"
    if isinstance(action, argparse._StoreFalseAction):
        return f"{text} (default: on)"
    if isinstance(action, argparse.BooleanOptionalAction):
        return f"{text} (default: {'on' if action.default else 'off'})"
    return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors end in the same `fedipress: error: message` line
    as every other mistake, naming where to read more."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"fedipress: error: {message} (see `{self.prog} --help`)\n")


def _site_options(p: argparse.ArgumentParser, *, base_url: bool = True) -> None:
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


def _private_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-private-addresses",
        action="store_true",
        help="allow fetching loopback/private addresses and plain http (testing on one machine;"
        " also FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1)",
    )


def _command(
    sub: argparse._SubParsersAction[_Parser],
    name: str,
    handler: Handler,
    help_text: str,
    example: str,
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text}\n\nexample:\n  {example}",
        formatter_class=_HelpFormatter,
    )
    p.set_defaults(handler=handler)
    return p


def _action(
    sub: argparse._SubParsersAction[_Parser],
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
        formatter_class=_HelpFormatter,
    )


def _share_group_options(group: argparse.ArgumentParser) -> None:
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
                shared.help = _help_with_default(option)
                if shared.help is not None and "%(default)" in shared.help:
                    shared.help = shared.help.replace("%(default)s", str(option.default))
                shared.default = argparse.SUPPRESS
                action_parser._add_action(shared)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fedipress",
        description="Static blogs that are first-class citizens of the fediverse.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fedipress {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                help="what to do; `fedipress COMMAND --help` describes each"
                                " (default: print this help)")

    p = _command(sub, "init", _cmd_init, "create a new blog", "fedipress init myblog")
    p.add_argument("directory", help="folder to create (must be empty or absent)")

    p = _command(sub, "new", _cmd_new,
                 "write a new post (a draft until you set draft: false) with front matter"
                 " filled in",
                 'fedipress new "My first post" --tags travel,food')
    p.add_argument("title", help="the post's title, in quotes if it has spaces")
    p.add_argument("--page", action="store_true", help="create a page instead of a post")
    p.add_argument("--draft", action=argparse.BooleanOptionalAction, default=True,
                   help="mark it `draft: true`, so that build, serve and publish leave it out"
                        " until you set `draft: false` (as Hugo does); --no-draft writes"
                        " `draft: false`")
    p.add_argument("--date", metavar="WHEN", type=_post_date,
                   help="its date: 2024-05-01, 2024-05-01T09:30 or with an offset,"
                        " +01:00; a time without an offset is in site.yaml's timezone"
                        " (default: now)")
    p.add_argument("--tags", metavar="TAG,TAG", type=_tag_list, default=[],
                   help="comma-separated tags, e.g. travel,food (default: none)")
    p.add_argument("--slug", type=_slug_text,
                   help="the file and address name, e.g. my-trip: lower-case letters,"
                        " digits and hyphens (default: made from the title)")
    _site_options(p, base_url=False)

    p = _command(sub, "build", _cmd_build, "build the site into the output folder",
                 "fedipress build --drafts")
    _site_options(p)
    p.add_argument("--drafts", action="store_true", help="include drafts")
    p.add_argument("--future", action="store_true", help="include future-dated posts")
    p.add_argument("--keep-going", action="store_true",
                   help="build the rest of the site when some content files are broken")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    p.add_argument("--clean", action="store_true", help="ignore the incremental cache")

    p = _command(sub, "serve", _cmd_serve, "serve the site locally, rebuild and reload on save",
                 "fedipress serve --port 8000")
    _site_options(p)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=_port_number, default=8000,
                   help="the port to listen on (0: any free port)")
    p.add_argument("--drafts", action="store_true", help="include drafts")
    p.add_argument("--future", action="store_true", help="include future-dated posts")
    p.add_argument("--no-reload", action="store_true", help="do not watch or live-reload")

    p = _command(sub, "keys", _cmd_keys, "manage the blog actor's key pair",
                 "fedipress keys generate")
    _site_options(p, base_url=False)
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True,
                                parser_class=_Parser, help="generate or show")
    kg = _action(keys_sub, "generate", "create the RSA-2048 key pair", "fedipress keys generate")
    kg.add_argument("--force", action="store_true",
                    help="replace an existing key (followers' servers will have to refollow)")
    _action(keys_sub, "show", "print the public key and where the private key lives",
            "fedipress keys show")
    _share_group_options(p)

    p = _command(sub, "hosting", _cmd_hosting, "print web server configuration for this blog",
                 "fedipress hosting nginx")
    p.add_argument("host_kind", choices=["nginx", "caddy", "apache", "netlify", "cloudflare"],
                   help="the web server or static host to configure")
    p.add_argument("--listen", metavar="[HOST:]PORT",
                   help="where nginx or Caddy listen (default: the port of base_url, 80 or 443)")
    p.add_argument("--upstream", metavar="HOST:PORT", default="127.0.0.1:8080",
                   help="where `fedipress inbox` listens, for the /inbox proxy"
                   " (default: 127.0.0.1:8080, the inbox's default)")
    _site_options(p)

    p = _command(sub, "doctor", _cmd_doctor, "check a deployed blog the way Mastodon would",
                 "fedipress doctor https://alice.example/")
    p.add_argument("url", help="the blog's base URL, or its handle (alice@alice.example)")
    _private_option(p)

    p = _command(sub, "publish", _cmd_publish,
                 "announce new, edited and removed posts to followers",
                 "fedipress publish --dry-run")
    _site_options(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the activities and recipients a publish would make now (from the"
                        " content as it is); write, store and send nothing")
    p.add_argument("--first-publish", action="store_true",
                   help="confirm that this store (no ledger, no followers yet) is the blog's own"
                        " and this is its first publish: record the existing posts as already"
                        " announced (default: refuse an empty store; always refused under CI)")
    p.add_argument("--backfill", type=_backfill_count, default=0, metavar="N",
                   help="on the first publish, announce the newest N posts (default 0)")
    p.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="how long to keep retrying within this run")
    p.add_argument("--no-build", action="store_true", help="use the last build's manifest")
    p.add_argument("--verbose", "-v", action="store_true", help="log each request")
    _private_option(p)

    p = _command(sub, "followers", _cmd_followers, "list and manage followers",
                 "fedipress followers add https://mastodon.example/users/bob")
    _site_options(p)
    _private_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    f_sub = p.add_subparsers(dest="followers_command", metavar="ACTION", parser_class=_Parser,
                             help="list, add, remove, requests, approve or reject"
                                  " (default: list)")
    _action(f_sub, "list", "list followers with counts by server (default)",
            "fedipress followers list")
    actor_help = "the follower's actor URL, e.g. https://mastodon.example/users/bob"
    fa = _action(f_sub, "add", "fetch an actor and record it as a follower",
                 "fedipress followers add https://mastodon.example/users/bob")
    fa.add_argument("actor", help=actor_help)
    fr = _action(f_sub, "remove", "forget a follower",
                 "fedipress followers remove https://mastodon.example/users/bob")
    fr.add_argument("actor", help=actor_help)
    _action(f_sub, "requests", "list pending follow requests", "fedipress followers requests")
    fap = _action(f_sub, "approve", "accept a pending follow request",
                  "fedipress followers approve https://mastodon.example/users/bob")
    fap.add_argument("actor", help="the requesting actor's URL")
    frj = _action(f_sub, "reject", "reject a pending follow request",
                  "fedipress followers reject https://mastodon.example/users/bob")
    frj.add_argument("actor", help="the requesting actor's URL")
    _share_group_options(p)

    p = _command(sub, "deliveries", _cmd_deliveries, "show queued and failed deliveries",
                 "fedipress deliveries retry")
    _site_options(p, base_url=False)
    d_sub = p.add_subparsers(dest="deliveries_command", metavar="ACTION", parser_class=_Parser,
                             help="list or retry (default: list)")
    _action(d_sub, "list", "queued and failed deliveries with their last error (default)",
            "fedipress deliveries list")
    _action(d_sub, "retry", "requeue failed deliveries", "fedipress deliveries retry")
    _share_group_options(p)

    p = _command(sub, "inbox", _cmd_inbox, "run the inbox service",
                 "fedipress inbox --site public/ --port 8080")
    _site_options(p)
    _private_option(p)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=_port_number, default=8080,
                   help="the port to listen on (0: any free port)")
    p.add_argument("--site", metavar="DIR",
                   help="also serve this built site (default: serve only the inbox)")
    p.add_argument("--access-log", action="store_true",
                   help="log one line per HTTP request (the inbox logs its own refusals and"
                        " what it stored in any case)")

    p = _command(sub, "interactions", _cmd_interactions, "recent likes, boosts and replies",
                 "fedipress interactions --json")
    _site_options(p, base_url=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--limit", type=_row_limit, default=50, metavar="N",
                   help=f"show the newest N (1 to {_MAX_LIMIT})")

    block_target = "a domain (spam.example, which covers its subdomains) or an actor URL"
    p = _command(sub, "block", _cmd_block, "block a domain or an actor",
                 "fedipress block spam.example")
    _site_options(p, base_url=False)
    p.add_argument("target", help=block_target)

    p = _command(sub, "unblock", _cmd_unblock, "lift a block made with `fedipress block`",
                 "fedipress unblock spam.example")
    _site_options(p, base_url=False)
    p.add_argument("target", help=f"{block_target}, as `fedipress blocks` lists it")

    p = _command(sub, "blocks", _cmd_blocks,
                 "list blocked domains and actors (`fedipress block` and site.yaml's"
                 " fediverse.blocked)",
                 "fedipress blocks")
    _site_options(p, base_url=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

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


def _printable(line: str) -> str:
    """`line` with undecodable file-name bytes (lone surrogates) shown as escapes, so reporting
    a mistake about such a name cannot itself fail on a strict stream."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


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
                print(_printable(str(problem)), file=sys.stderr)
        else:
            for line in str(error).splitlines() or [type(error).__name__]:
                print(_printable(f"{ERROR_PREFIX}{line}"), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The `fedipress` console script."""
    sys.exit(main(exit_when_done=True))


if __name__ == "__main__":  # pragma: no cover
    run()
