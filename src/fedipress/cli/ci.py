"""`fedipress ci github|gitlab`: write a workflow that builds, deploys and publishes."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .shared import Subcommands, command, err, load, out, site_options

__all__ = ["deploy_option", "print_plan", "register"]


def _cmd_ci(args: argparse.Namespace) -> int:
    from ..generator.ci_setup import CiRequest, plan_ci, write_ci

    config = load(args)
    plan = plan_ci(config, CiRequest(args.provider, deploy=args.deploy, branch=args.branch,
                                     schedule=args.schedule,
                                     cloudflare_project=args.project))
    if args.stdout:
        if args.force:
            err("note: --force does nothing with --stdout, which writes no file")
        print(plan.workflow.text, end="")
        print_plan(plan.report, err)  # stdout holds the file alone, for a pipe
        return 0
    existed = plan.target.exists()
    path = write_ci(plan, force=args.force)
    out(f"{'replaced' if existed else 'created'} {path}")
    print_plan(plan.report, out)
    out("Then commit the file and push.")
    return 0


def print_plan(report: tuple[str, ...], say: Callable[[str], None]) -> None:
    for line in report:
        say(line)


def deploy_option(p: argparse.ArgumentParser, *, default: str | None) -> None:
    """--deploy, shared with `init --ci` (where None tells that it was not given)."""
    from ..generator.ci_workflows import DEFAULT_DEPLOY, DEPLOYS

    p.add_argument("--deploy", choices=DEPLOYS, default=default,
                   help="where the built site goes: rsync (to your own server over SSH, the"
                        " one that runs the service can serve it too), netlify or cloudflare"
                        f" (Cloudflare Pages) (default: {DEFAULT_DEPLOY})")


def register(sub: Subcommands) -> None:
    from ..generator.ci_workflows import DEFAULT_DEPLOY, DEFAULT_SCHEDULE

    p = command(sub, "ci", _cmd_ci,
                "write a CI workflow that builds, deploys and publishes on every push",
                "fedipress ci github --deploy netlify")
    p.add_argument("provider", choices=["github", "gitlab"],
                   help="github writes .github/workflows/fedipress.yml, gitlab .gitlab-ci.yml,"
                        " at the top of the blog's git repository")
    deploy_option(p, default=DEFAULT_DEPLOY)
    p.add_argument("--branch", metavar="NAME",
                   help="the branch whose pushes deploy (default: origin's default branch,"
                        " else the branch checked out; on GitLab, the project's default"
                        " branch)")
    p.add_argument("--schedule", metavar="CRON",
                   help=f"GitHub only: when to run besides pushes, so posts dated in the future"
                        f" go out; `off` for never (default: hourly, {DEFAULT_SCHEDULE!r})")
    p.add_argument("--project", metavar="NAME",
                   help="with --deploy cloudflare: the Pages project (default: the site"
                        " folder's name)")
    p.add_argument("--force", action="store_true", help="replace an existing workflow file")
    p.add_argument("--stdout", action="store_true",
                   help="print the workflow instead of writing it")
    site_options(p, base_url=False)
