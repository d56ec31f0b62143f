"""The `fedipress` command line.

Each command parses its arguments, calls one library function and prints the outcome. User
errors (FedipressError) print as clean lines on stderr with exit code 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import FedipressError, Problem

__all__ = ["main", "build_parser", "run"]

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
    from .scaffold import init_site

    created = init_site(Path(args.directory))
    for path in created:
        print(f"created {path}")
    print(f"Next: set title, base_url and author in {Path(args.directory) / 'site.yaml'},"
          f" then: cd {args.directory} && fedipress build && fedipress serve")
    return 0


def _cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import new_post

    path = new_post(_load(args, require_content=True), args.title, page=args.page)
    print(f"created {path}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from .build import run_build_command

    return run_build_command(_load(args, require_content=True), args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from .devserver import serve

    return serve(_load(args, require_content=True), args)


def _cmd_keys(args: argparse.Namespace) -> int:
    from .keys import run_keys_command

    return run_keys_command(_load(args), args)


def _cmd_hosting(args: argparse.Namespace) -> int:
    from .hosting import hosting_config

    print(hosting_config(_load(args), args.host_kind, listen=args.listen,
                         upstream=args.upstream), end="")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor_command

    return run_doctor_command(args, allow_private=_allow_private(args))


def _cmd_publish(args: argparse.Namespace) -> int:
    from .publish import run_publish_command

    return run_publish_command(
        _load(args, require_content=True), args, allow_private=_allow_private(args)
    )


def _cmd_followers(args: argparse.Namespace) -> int:
    from .followers import run_followers_command

    return run_followers_command(_load(args), args, allow_private=_allow_private(args))


def _cmd_deliveries(args: argparse.Namespace) -> int:
    from .deliveries import run_deliveries_command

    return run_deliveries_command(_load(args), args)


def _cmd_inbox(args: argparse.Namespace) -> int:
    from .inbox_server import run_inbox_command

    return run_inbox_command(_load(args), args, allow_private=_allow_private(args))


def _cmd_interactions(args: argparse.Namespace) -> int:
    from .interactions import run_interactions_command

    return run_interactions_command(_load(args), args)


def _cmd_block(args: argparse.Namespace) -> int:
    from .interactions import run_block_command

    return run_block_command(_load(args), args)


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


# --- parser -----------------------------------------------------------------------------------


def _site_options(p: argparse.ArgumentParser, *, base_url: bool = True) -> None:
    p.add_argument(
        "--config", "-c", default="site.yaml", metavar="FILE", help="site file (default: site.yaml)"
    )
    if base_url:
        p.add_argument(
            "--base-url",
            metavar="URL",
            help="override site.yaml's base_url for this run, e.g. http://127.0.0.1:8000/",
        )


def _private_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-private-addresses",
        action="store_true",
        help="allow fetching loopback/private addresses and plain http (testing on one machine;"
        " also FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1)",
    )


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
    example: str,
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text}\n\nexample:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(handler=handler)
    return p


def _action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
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
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedipress",
        description="Static blogs that are first-class citizens of the fediverse.",
    )
    parser.add_argument("--version", action="version", version=f"fedipress {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(sub, "init", _cmd_init, "create a new blog", "fedipress init myblog")
    p.add_argument("directory", help="folder to create (must be empty or absent)")

    p = _command(sub, "new", _cmd_new, "write a new post with front matter filled in",
                 'fedipress new "My first post"')
    p.add_argument("title")
    p.add_argument("--page", action="store_true", help="create a page instead of a post")
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
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port_number, default=8000)
    p.add_argument("--drafts", action="store_true", help="include drafts")
    p.add_argument("--future", action="store_true", help="include future-dated posts")
    p.add_argument("--no-reload", action="store_true", help="do not watch or live-reload")

    p = _command(sub, "keys", _cmd_keys, "manage the blog actor's key pair",
                 "fedipress keys generate")
    _site_options(p, base_url=False)
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    kg = _action(keys_sub, "generate", "create the RSA-2048 key pair", "fedipress keys generate")
    kg.add_argument("--force", action="store_true",
                    help="replace an existing key (followers' servers will have to refollow)")
    _action(keys_sub, "show", "print the public key and where the private key lives",
            "fedipress keys show")

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
    p.add_argument("--dry-run", action="store_true", help="print activities and recipients only")
    p.add_argument("--backfill", type=_backfill_count, default=0, metavar="N",
                   help="on the first publish, announce the newest N posts")
    p.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="how long to keep retrying within this run (default 60)")
    p.add_argument("--no-build", action="store_true", help="use the last build's manifest")
    p.add_argument("--verbose", "-v", action="store_true", help="log each request")
    _private_option(p)

    p = _command(sub, "followers", _cmd_followers, "list and manage followers",
                 "fedipress followers add https://mastodon.example/users/bob")
    _site_options(p)
    _private_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    f_sub = p.add_subparsers(dest="followers_command", metavar="ACTION")
    _action(f_sub, "list", "list followers with counts by server (default)",
            "fedipress followers list")
    fa = _action(f_sub, "add", "fetch an actor and record it as a follower",
                 "fedipress followers add https://mastodon.example/users/bob")
    fa.add_argument("actor")
    fr = _action(f_sub, "remove", "forget a follower",
                 "fedipress followers remove https://mastodon.example/users/bob")
    fr.add_argument("actor")
    _action(f_sub, "requests", "list pending follow requests", "fedipress followers requests")
    fap = _action(f_sub, "approve", "accept a pending follow request",
                  "fedipress followers approve https://mastodon.example/users/bob")
    fap.add_argument("actor")
    frj = _action(f_sub, "reject", "reject a pending follow request",
                  "fedipress followers reject https://mastodon.example/users/bob")
    frj.add_argument("actor")

    p = _command(sub, "deliveries", _cmd_deliveries, "show queued and failed deliveries",
                 "fedipress deliveries retry")
    _site_options(p, base_url=False)
    d_sub = p.add_subparsers(dest="deliveries_command", metavar="ACTION")
    _action(d_sub, "list", "queued and failed deliveries with their last error (default)",
            "fedipress deliveries list")
    _action(d_sub, "retry", "requeue failed deliveries", "fedipress deliveries retry")

    p = _command(sub, "inbox", _cmd_inbox, "run the inbox service",
                 "fedipress inbox --site public/ --port 8080")
    _site_options(p)
    _private_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port_number, default=8080)
    p.add_argument("--site", metavar="DIR", help="also serve this built site")
    p.add_argument("--access-log", action="store_true",
                   help="log one line per HTTP request (off by default: the inbox logs its own "
                        "refusals and what it stored)")

    p = _command(sub, "interactions", _cmd_interactions, "recent likes, boosts and replies",
                 "fedipress interactions --json")
    _site_options(p, base_url=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--limit", type=_row_limit, default=50, metavar="N",
                   help=f"show the newest N (1 to {_MAX_LIMIT}; default 50)")

    p = _command(sub, "block", _cmd_block, "block a domain or an actor",
                 "fedipress block spam.example")
    _site_options(p, base_url=False)
    p.add_argument("target", help="a domain (spam.example) or an actor URL")

    return parser


# Arguments that name files: any bytes the file system allows are fine there. Every other
# string (a title, an actor, a URL) is text that ends up in UTF-8 files, URLs or the database.
_PATH_ARGUMENTS = frozenset({"directory", "config", "site"})


def _check_text_arguments(args: argparse.Namespace) -> None:
    for name, value in vars(args).items():
        if not isinstance(value, str) or name in _PATH_ARGUMENTS:
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


def main(argv: Sequence[str] | None = None, *, exit_when_done: bool = False) -> int:
    """Run one command; its exit code. `exit_when_done` (the console script's) lets a command
    that holds a large loaded site end the process itself once all is written (build)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
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
            # them (editors jump to them); anything else as `error: message`.
            for problem in problems:
                print(_printable(str(problem)), file=sys.stderr)
        else:
            for line in str(error).splitlines() or [type(error).__name__]:
                print(_printable(f"error: {line}"), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The `fedipress` console script."""
    sys.exit(main(exit_when_done=True))


if __name__ == "__main__":  # pragma: no cover
    run()
