"""`fedipress publish`: check, build, plan, queue, deliver.

The steps live by concept beside this module, each callable on its own (the inbox service
reuses the queueing and the delivery):

  publish_checks.py    the store's state and the built site's identity against the signing key
  publish_plan.py      plan_changes (pure diff against the ledger), queue_plan (one durable
                       transaction), plan_for_store (both, with mentions resolved)
  publish_dry_run.py   --dry-run: the same plan on a copy of the store, printed
  delivery.py          DeliveryWorker(...).run_until(...): deliver, retry within the run,
                       leave the rest queued

This module runs them in order for the command. Its public names (including those of the
steps, re-exported) are the library's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..config import SiteConfig
from ..errors import FedipressError
from ..model import Site
from ..wording import plural
from .mentions import canonical_manifest
from .publish_checks import (
    FirstPublishError,
    IdentityMismatchError,
    PreviewBuildError,
    StoreState,
    check_built_site,
    check_fediverse_switch,
    check_identity,
    check_last_build,
    check_not_preview,
    first_publish_problem,
    load_manifest,
    read_store_state,
    running_under_ci,
)
from .publish_dry_run import run_dry
from .publish_plan import (
    OLD_POST_AGE,
    ActivityTooLargeError,
    Change,
    Plan,
    actor_ledger_id,
    first_publish_line,
    plan_changes,
    plan_for_store,
    queue_plan,
    recipients,
)

if TYPE_CHECKING:
    from .delivery import DeliverySummary

__all__ = [
    "OLD_POST_AGE",
    "ActivityTooLargeError",
    "Change",
    "FirstPublishError",
    "IdentityMismatchError",
    "Plan",
    "PreviewBuildError",
    "PublishOptions",
    "PublishResult",
    "StoreState",
    "actor_ledger_id",
    "check_identity",
    "first_publish_line",
    "first_publish_problem",
    "load_manifest",
    "plan_changes",
    "queue_plan",
    "read_store_state",
    "recipients",
    "run_publish",
]


@dataclass(frozen=True)
class PublishOptions:
    """`fedipress publish`'s choices.

    `build`: build the site first (False: use the last build's manifest). `wait`: seconds to
    keep retrying within this run. `backfill`: also announce the newest N back-dated posts
    (new to the ledger, dated more than a week ago: see publish_plan.plan_changes).
    `base_url`: the --base-url this run's config was loaded with (None: site.yaml's), named
    in the messages that compare it with the built site. `progress`: draw the delivery
    progress bar on stderr (the caller decides: only on a terminal; never under CI)."""

    dry_run: bool = False
    first_publish: bool = False
    backfill: int = 0
    wait: float = 60.0
    build: bool = True
    verbose: bool = False
    base_url: str | None = None
    allow_private: bool = False
    progress: bool = False


@dataclass(frozen=True)
class PublishResult:
    """What a publish did: the delivery run's summary (None for a dry run: nothing sent)."""

    summary: DeliverySummary | None

    @property
    def exit_code(self) -> int:
        """1 only when a delivery failed for good in a way the author should look at (an
        inbox refused it: 4xx, or retries ran out); 0 when all were delivered, or scheduled
        for retry (a 5xx or an unreachable server: the next publish or the inbox service's
        loop sends them), or failed with 410 Gone (the account is gone and its follower was
        removed: nothing to do). A CI job goes red only when it needs the author."""
        summary = self.summary
        return 1 if summary is not None and summary.failed > summary.gone else 0


def run_publish(
    config: SiteConfig,
    options: PublishOptions,
    *,
    out: Callable[[str], None],
    err: Callable[[str], None],
) -> PublishResult:
    """`fedipress publish`: plan, queue and deliver. `out` gets what was queued and the
    delivery summary, `err` notes, warnings and (verbose) each request, as they happen: a
    publish can run for minutes. User errors raise FedipressError."""
    from ..progress import Progress
    from ..store import open_store, site_store_location
    from .delivery import DeliveryWorker, owner_id, recover_dead_leases
    from .keys import load_private_key, public_pem_of

    verbose, wait, backfill = options.verbose, options.wait, options.backfill
    base_url_option, allow_private = options.base_url, options.allow_private
    if backfill < 0:
        raise FedipressError("--backfill: must be 0 or more")
    if wait < 0:
        raise FedipressError("--wait: must be 0 or more seconds")
    paused = check_fediverse_switch(config)
    if paused is not None:
        out(paused)
        return PublishResult(summary=None)
    if options.dry_run:
        run_dry(config, build=options.build, first_publish=options.first_publish,
                backfill=backfill, base_url_option=base_url_option,
                allow_private=allow_private, out=out, err=err)
        return PublishResult(summary=None)
    ci = running_under_ci()
    # The key is checked before anything else: a publish that cannot sign must not plan.
    private_key = load_private_key(config)
    signing_pem = public_pem_of(private_key)
    # Then the store, before anything is built or created: an empty one is refused as it is.
    store_path = site_store_location(config)
    state = read_store_state(store_path)
    problem = first_publish_problem(
        store_path, state, first_publish=options.first_publish, ci=ci)
    if problem:
        raise FirstPublishError(problem)
    built = options.build
    if built:
        from ..generator.build import build_site

        # public/ built for another address, or with --drafts or --future (a preview), is
        # not silently rebuilt for this one: the author decides what replaces a preview.
        check_last_build(config)
        check_built_site(config, None, None, base_url_option)
        result = build_site(config, log=err if verbose else (lambda _l: None), ci=ci)
        err(result.summary())
    last = load_manifest(config)
    # Drafts and future-dated posts are never announced: a preview build is refused as a
    # whole (as is, with --no-build, a build that did not record whether it was one).
    check_not_preview(config, last, require_flags=not built)
    check_built_site(config, last, signing_pem, base_url_option)
    manifest = canonical_manifest(last)
    site = Site(config=config, posts=(), pages=())
    now = datetime.now(UTC)
    store = open_store(store_path)
    try:
        plan, learned, extra = plan_for_store(
            config, store, manifest, site=site, now=now, backfill=backfill,
            private_key=private_key, allow_private=allow_private, warn=err,
        )
        for note in plan.notes:
            err(f"note: {note}")
        if learned:
            # object.json must show the actor ids the activities carry: rebuild (only the
            # posts naming these accounts change), or tell the user when they skipped the build.
            if built:
                from ..generator.build import build_site

                build_site(config, log=lambda _l: None, ci=ci)
            else:
                err("note: newly resolved mentions; run `fedipress build` so object.json "
                    "names the same accounts")
        if not plan.empty:
            stored = queue_plan(store, plan, now, extra)
            # Printed (and flushed) only after the commit: from here on nothing can be lost.
            out(f"queued {plural(stored.deliveries, 'delivery')} for"
                f" {plural(len(stored.new_activities), 'new activity', 'new activities')}")
            first = first_publish_line(plan, config.url("actor.json"))
            if first:
                out(first)
        owner = owner_id("publish")
        released = recover_dead_leases(store)
        if released and verbose:
            err(f"requeued {plural(released, 'delivery')} left in flight by a killed run")
        progress = Progress(
            total=sum(store.delivery_counts()[s] for s in ("pending", "in_flight")),
            enabled=options.progress and not ci, label="delivering",
        )
        worker = DeliveryWorker.for_site(
            store, config, private_key, owner=owner, allow_private=allow_private,
            log=err if verbose else None, on_result=progress.advance,
        )
        summary = asyncio.run(worker.run_until(datetime.now(UTC) + timedelta(seconds=wait)))
        progress.close()
        out(summary.line())
        return PublishResult(summary=summary)
    finally:
        store.close()
