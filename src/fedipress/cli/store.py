"""`fedipress store`: `migrate` the store's schema, `copy` a SQLite store to PostgreSQL."""

from __future__ import annotations

import argparse
from pathlib import Path

from .shared import (
    Parser,
    Subcommands,
    action,
    command,
    err,
    load,
    share_group_options,
    site_options,
)

__all__ = ["register"]


def _cmd_store(args: argparse.Namespace) -> int:
    from ..store import default_store_path, site_store_location
    from ..store.transfer import copy_to_postgresql, migrate_store

    config = load(args)
    verb = getattr(args, "store_command", None)
    if verb == "copy":
        source = Path(args.source) if args.source else default_store_path(config.state_dir)
        report = copy_to_postgresql(source, args.to, force=bool(args.force), progress=err)
        for line in report.lines():
            print(line)
        print("next: set FEDIPRESS_DATABASE_URL (or site.yaml store:) to it for every"
              " fedipress process")
        return 0
    for line in migrate_store(site_store_location(config)).lines():
        print(line)
    return 0


def _database_url(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(
            f"expected a postgresql:// URL such as postgresql://fedipress@db.example/blog,"
            f" got {text!r}")
    return text


def register(sub: Subcommands) -> None:
    p = command(sub, "store", _cmd_store, "migrate the store, or copy it to PostgreSQL",
                "fedipress store migrate")
    site_options(p, base_url=False)
    s_sub = p.add_subparsers(dest="store_command", metavar="ACTION", parser_class=Parser,
                             required=True, help="migrate or copy")
    action(s_sub, "migrate", "apply the schema migrations this version has to the store"
           " (FEDIPRESS_DATABASE_URL, site.yaml store:, or .fedipress/state.db)",
           "fedipress store migrate")
    cp = action(s_sub, "copy", "copy the SQLite store into an empty PostgreSQL database and"
                " check every table's count", "fedipress store copy --to"
                " postgresql://fedipress@db.example/blog")
    cp.add_argument("--to", required=True, type=_database_url, metavar="URL",
                    help="the PostgreSQL database (migrated first); its password comes from"
                    " PGPASSWORD or ~/.pgpass (required: there is no default)")
    cp.add_argument("--from", dest="source", metavar="FILE",
                    help="the SQLite file to copy (default: .fedipress/state.db)")
    cp.add_argument("--force", action="store_true",
                    help="replace what the target already holds (default: refuse a target"
                    " with rows)")
    share_group_options(p)
