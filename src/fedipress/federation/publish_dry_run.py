"""`fedipress publish --dry-run`: the plan a real publish would make now, printed, from the
content as it is (computed in memory, not the last build) against a throw-away copy of the
store, so that every step of the real plan runs and nothing is written anywhere.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import SiteConfig
from ..errors import FedipressError, StoreError
from ..model import Site
from ..wording import plural
from .mentions import canonical_manifest
from .publish_checks import (
    check_built_site,
    check_last_build,
    check_not_preview,
    connect_read_only,
    first_publish_problem,
    load_manifest,
    read_store_state,
    running_under_ci,
    shown_path,
)
from .publish_plan import Plan, first_publish_line, plan_for_store, recipients

__all__ = ["run_dry"]


def _print_plan(plan: Plan, inboxes: list[str], out: Callable[[str], None]) -> None:
    for change in plan.changes:
        if change.activity_id is None:
            out(f"  {change.action:<13} {change.object_id} ({change.reason})")
        else:
            out(f"  {change.action:<13} {change.object_id} -> {change.activity_id}")
    out(f"{plural(len(plan.activities), 'activity')} to {plural(len(inboxes), 'inbox')}")
    for inbox in inboxes:
        out(f"  -> {inbox}")


@contextmanager
def _store_copy(path: Path | str) -> Iterator[Path]:
    """A throw-away SQLite copy of the store at `path` (an empty folder's path when there is
    none; a PostgreSQL store is copied into a SQLite file), in a temporary folder: a dry run
    may run every step on it, none reaches `path`."""
    with tempfile.TemporaryDirectory(prefix="fedipress-dry-run-") as folder:
        if isinstance(path, str):
            from ..store.transfer import copy_to_sqlite

            copy = Path(folder) / "state.db"
            copy_to_sqlite(path, copy)
            yield copy
            return
        copy = Path(folder) / path.name
        if path.is_file():
            try:
                source = connect_read_only(path)
                try:
                    target = sqlite3.connect(copy)
                    try:
                        source.backup(target)
                    finally:
                        target.close()
                finally:
                    source.close()
            except sqlite3.Error as error:
                raise StoreError(f"{shown_path(path)}: cannot read the state database: {error}"
                                 ) from None
        yield copy


def _computed_manifest(config: SiteConfig, public_pem: bytes, store_copy: Path,
                       now: datetime) -> dict[str, Any]:
    """The federation manifest a build would write now, computed in memory: the content is
    read (the parse cache too, to be quick) and nothing is written."""
    from ..activitypub.site import federation_manifest
    from ..generator import content
    from ..generator.parsecache import ParseCache
    from ..store.snapshot import read_build_state

    cache = ParseCache.for_site(config)
    cache.load()
    # Markdown the cache misses is rendered by forked workers, as the build does (forking is
    # only safe while this process has a single thread).
    workers = (os.cpu_count() or 1) if threading.active_count() == 1 else 1
    site = content.load_site(config, now=now, cache=cache, workers=workers).site
    mentions = read_build_state(store_copy).mentions
    return federation_manifest(site, public_pem, mentions=mentions)


def run_dry(
    config: SiteConfig,
    *,
    build: bool,
    first_publish: bool,
    backfill: int,
    base_url_option: str | None,
    allow_private: bool,
    out: Callable[[str], None],
    err: Callable[[str], None],
) -> None:
    """`publish --dry-run`: the plan a real publish would make now, from the content as it is
    (not the last build, unless `build` is False), against a copy of the store; nothing is
    written anywhere. The options are PublishOptions' of the same names."""
    from ..store import default_store_path, open_store, site_store_location
    from .keys import public_key_path, read_public_key_pem

    public_pem = read_public_key_pem(config, remember=False)
    if public_pem is None:
        raise FedipressError(
            f"{shown_path(public_key_path(config))}: not found, so there is no actor to publish"
            " as; run `fedipress keys generate` (a dry run creates nothing)"
        )
    location = site_store_location(config)
    store_path: Path | str = (
        location if isinstance(location, str) else default_store_path(config.state_dir))
    state = read_store_state(store_path)
    now = datetime.now(UTC)
    site = Site(config=config, posts=(), pages=())
    with _store_copy(store_path) as copy:
        if not build:
            last = load_manifest(config)
            check_not_preview(config, last, require_flags=True)
            check_built_site(config, last, public_pem, base_url_option)
            manifest = canonical_manifest(last)
        else:
            # What a real publish would refuse, the dry run refuses alike.
            check_last_build(config)
            check_built_site(config, None, None, base_url_option)
            manifest = canonical_manifest(_computed_manifest(config, public_pem, copy, now))
        try:
            store = open_store(copy)
        except StoreError as error:
            raise StoreError(str(error).replace(str(copy), shown_path(store_path))) from None
        try:
            # (purges blocked followers from the copy, as the real run would)
            plan, _learned, extra = plan_for_store(
                config, store, manifest, site=site, now=now, backfill=backfill,
                private_key=None, allow_private=allow_private, warn=err,
            )
            inboxes = list(recipients(store)) if plan.activities else []
        finally:
            store.close()
    inboxes += [i for v in extra.values() for i in v if i not in inboxes]
    _print_plan(plan, inboxes, out)
    first = first_publish_line(plan, config.url("actor.json"))
    if first:
        out(first)
    for note in plan.notes:
        err(f"note: {note}")
    problem = first_publish_problem(
        store_path, state, first_publish=first_publish, ci=running_under_ci())
    if problem:
        err(f"note: a real publish would stop here: {problem}")
    out("dry run: nothing stored or sent")
