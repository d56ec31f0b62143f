"""What publish checks before it plans: the last build's manifest, the store's state (an empty
store is a fresh clone or a CI runner, not the blog's store) and the identity the built site
serves against the key publish signs with. Nothing here writes anything.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..config import SiteConfig
from ..errors import FedipressError, StoreError
from ..wording import docs_url
from .manifest import (
    MANIFEST_NAME,
    PREVIEW_FLAGS,
    build_flags_of,
    read_build_flags,
    read_federation_manifest,
)

__all__ = [
    "FirstPublishError",
    "IdentityMismatchError",
    "PreviewBuildError",
    "StoreState",
    "check_last_build",
    "check_not_preview",
    "check_built_site",
    "check_fediverse_switch",
    "check_identity",
    "connect_read_only",
    "first_publish_problem",
    "load_manifest",
    "manifest_path",
    "read_store_state",
    "running_under_ci",
    "shown_path",
]


def manifest_path(config: SiteConfig) -> Path:
    return config.state_dir / MANIFEST_NAME


def load_manifest(config: SiteConfig) -> dict[str, Any]:
    """The last build's federation manifest; a FedipressError when there is none."""
    path = manifest_path(config)
    try:
        data = read_federation_manifest(config.state_dir)
    except FileNotFoundError:
        raise FedipressError(
            f"{path}: not found; run `fedipress build` first (or publish without --no-build)"
        ) from None
    except (OSError, ValueError) as error:
        raise FedipressError(f"{path}: cannot be read ({error}); run `fedipress build`") from None
    if not isinstance(data, dict) or "actor" not in data or "objects" not in data:
        raise FedipressError(f"{path}: not a federation manifest; run `fedipress build`")
    return data


class FirstPublishError(FedipressError):
    """A publish against a store that has never announced anything and has no followers."""


class IdentityMismatchError(FedipressError):
    """The actor publish would sign and announce as is not the one the built site serves."""


class PreviewBuildError(FedipressError):
    """The last build was a preview (--drafts, --future): nothing of it may be announced, and
    publish does not build over it either (that would hide that the preview is deployed)."""


def _preview_problem(config: SiteConfig, flags: Mapping[str, bool]) -> str | None:
    used = " ".join(f"--{name}" for name in PREVIEW_FLAGS if flags.get(name))
    if not used:
        return None
    return (f"{shown_path(config.output_dir)}/ was built with {used}: a preview build; run"
            f" fedipress build without {used}, then publish")


def check_not_preview(config: SiteConfig, manifest: Mapping[str, Any], *,
                      require_flags: bool) -> None:
    """Refuse a federation manifest (as read_federation_manifest returns it) that a preview
    build wrote. `require_flags`: also refuse one that does not record its flags (written by
    an older fedipress), which cannot be told apart from a preview; the caller that is about
    to build anyway passes False."""
    try:
        flags = build_flags_of(manifest)
    except ValueError as error:
        raise FedipressError(f"{shown_path(manifest_path(config))}: {error}; run"
                             " `fedipress build`, then publish") from None
    if flags is None:
        if require_flags:
            raise PreviewBuildError(
                f"{shown_path(manifest_path(config))} was written by an older fedipress that"
                " did not record whether it was a preview build (--drafts, --future); run"
                " fedipress build, then publish")
        return
    problem = _preview_problem(config, flags)
    if problem:
        raise PreviewBuildError(problem)


def check_last_build(config: SiteConfig) -> None:
    """Before publish builds: refuse when the last build was a preview. Building over it
    would announce nothing wrong, but would silently replace a preview that may be deployed
    (and say nothing about it); the author rebuilds without the flag on purpose instead.
    No manifest, or one of an older fedipress, is no objection: the build writes a new one."""
    try:
        flags = read_build_flags(config.state_dir)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        return  # damaged: the build about to run replaces it, and load_manifest checks that
    problem = _preview_problem(config, flags) if flags is not None else None
    if problem:
        raise PreviewBuildError(problem)


@dataclass(frozen=True)
class StoreState:
    """What the store holds, read without creating, migrating or locking it."""

    exists: bool
    announced: int  # ledger rows (posts and the profile)
    followers: int  # follower rows in any state: the inbox has run on this store


def check_fediverse_switch(config: SiteConfig) -> str | None:
    """site.yaml's on/off switch, before anything is planned: a FedipressError when the blog
    has left (`fediverse.enabled: false`), the one line to print when it is paused
    (`fediverse.paused: true`: nothing new is announced, and that is not a failure), else
    None. Any way of publishing (locally or through the service) asks this first."""
    if not config.fediverse.enabled:
        raise FedipressError(
            "fediverse.enabled is false in site.yaml: nothing is published to the fediverse;"
            " to tell followers the blog has left, run `fedipress leave`"
            f" ({docs_url('leaving')})")
    if config.fediverse.paused:
        return ("fediverse.paused is true in site.yaml: nothing new announced (followers"
                " keep following; set it to false and publish again to announce what changed)")
    return None


def running_under_ci() -> bool:
    """Whether CI is set as CI services set it: publish refuses an empty store there."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def shown_path(path: Path | str) -> str:
    """`path` as messages show it: relative to the working folder when under it (a database
    URL without its password)."""
    if isinstance(path, str):
        from ..store.postgres_base import redact_url

        return redact_url(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def connect_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro still creates -wal and -shm files beside a WAL database that nobody has open. When
    # there are none nobody is writing, and immutable=1 reads the file as it is, creating none.
    in_use = Path(f"{path}-wal").exists() or Path(f"{path}-shm").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if in_use else "&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=30.0)


def read_store_state(path: Path | str) -> StoreState:
    """How many ledger rows and followers the database at `path` (a SQLite file or a
    PostgreSQL URL) has; nothing is written."""
    if isinstance(path, str):
        from ..store import open_store

        store = open_store(path)
        try:
            return StoreState(True, len(store.get_ledger()), store.count_followers(None))
        finally:
            store.close()
    if not path.is_file():
        return StoreState(False, 0, 0)

    def count(conn: sqlite3.Connection, table: str) -> int:
        try:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return 0  # an empty file, or a database made before that table existed
            raise

    try:
        conn = connect_read_only(path)
        try:
            return StoreState(True, count(conn, "ledger"), count(conn, "followers"))
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise StoreError(f"{shown_path(path)}: cannot read the state database: {error}") from None


def first_publish_problem(path: Path | str, state: StoreState, *, first_publish: bool,
                          ci: bool) -> str | None:
    """Why a publish against `state` must not go ahead, or None.

    An empty store (no ledger, no followers) is what a fresh clone or a CI runner has: its
    first publish would record every post as published here, announce the recent ones to
    nobody, and the real store (where the inbox records followers) would never know.
    So it needs --first-publish on a workstation and is refused outright under CI."""
    shown = shown_path(path)
    if state.announced == 0 and state.followers == 0:
        what = (f"{shown} has no ledger and no followers" if state.exists
                else f"{shown} does not exist (no ledger, no followers)")
        if ci:
            # The runner's way is the service, which holds the store: name it first.
            return (f"{what}: this CI runner does not have the blog's store, so publish would"
                    " record the posts as published here and send them to nobody;"
                    " publish through the blog's service instead: set FEDIPRESS_SERVICE_URL"
                    " (or pass --to URL) and FEDIPRESS_SERVICE_TOKEN, see"
                    f" {docs_url('service')}; or run `fedipress publish` on the machine where"
                    " `fedipress inbox` runs and keeps that store")
        if not first_publish:
            return (f"{what}, so publish would record the posts as published here and send"
                    " them to nobody; if this is the blog's store and its first publish, run"
                    " `fedipress publish --first-publish` (it announces the posts of the last"
                    " week, --backfill N also the newest N older ones), otherwise publish on"
                    " the machine where `fedipress inbox` keeps the store")
    elif first_publish and state.announced:
        return (f"--first-publish: {shown} already records {state.announced:,} announced"
                f" document{'s' * (state.announced != 1)}, so this is not the first publish;"
                " run publish without --first-publish")
    return None


def _base_of(actor_url: str) -> str:
    return actor_url[: -len("actor.json")] if actor_url.endswith("/actor.json") else actor_url


def check_identity(
    config: SiteConfig,
    actor: Any,
    where: str,
    *,
    public_pem: bytes | None,
    base_url_option: str | None,
) -> None:
    """Refuse when the actor document `actor` (read from `where`) is not the identity publish
    signs and announces as: the actor id of `config` and, given `public_pem`, that key.

    Followers' servers fetch the served actor to verify every signature and resolve every
    id; a difference means deliveries that fail to verify or posts attributed to an actor that
    does not exist, so nothing is sent."""
    from .keys import public_key_fingerprint, same_public_key

    expected = config.url("actor.json")
    source = "--base-url" if base_url_option else f"{config.config_file.name}'s base_url"
    build = f"fedipress build --base-url {_base_of(expected)}" if base_url_option \
        else "fedipress build"
    found = actor.get("id") if isinstance(actor, Mapping) else None
    if found != expected:
        shown = found if isinstance(found, str) else "no actor id"
        raise IdentityMismatchError(
            f"{where} is the actor {shown}, but publish would announce {expected} (from"
            f" {source}): run `{build}` (and deploy it) before publishing, or pass"
            f" --base-url {_base_of(str(found))} to publish as the site was built"
        )
    if public_pem is None:
        return
    key = actor.get("publicKey")
    key_id = key.get("id") if isinstance(key, Mapping) else None
    pem = key.get("publicKeyPem") if isinstance(key, Mapping) else None
    if key_id != expected + "#main-key" or not isinstance(pem, str) \
            or not same_public_key(pem, public_pem):
        raise IdentityMismatchError(
            f"{where} publishes another public key than the one publish signs with"
            f" ({public_key_fingerprint(public_pem)}), so no server could verify the"
            f" deliveries: run `{build}` (and deploy it) before publishing"
        )


def _served_actor(config: SiteConfig, *, required: bool) -> tuple[str, Any] | None:
    """(where, document) of the actor the built site serves, or None when there is none."""
    path = config.output_dir / "actor.json"
    where = shown_path(path)
    try:
        return where, json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        if not required:
            return None  # the build about to run writes it again
        raise FedipressError(f"{where}: cannot be read ({error}); run `fedipress build`"
                             ) from None


def check_built_site(config: SiteConfig, manifest: Mapping[str, Any] | None,
                      public_pem: bytes | None, base_url_option: str | None) -> None:
    """The served actor.json (when public/ has one) and the build's manifest, checked."""
    served = _served_actor(config, required=manifest is not None)
    if served is not None:
        check_identity(config, served[1], served[0], public_pem=public_pem,
                       base_url_option=base_url_option)
    if manifest is not None:
        check_identity(config, manifest.get("actor"),
                       f"the last build ({shown_path(manifest_path(config))})",
                       public_pem=public_pem, base_url_option=base_url_option)
