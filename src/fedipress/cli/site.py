"""`fedipress init`, `new`, `build` and `serve`: the site on this machine."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import FedipressError
from .ci import deploy_option, print_plan
from .shared import (
    Subcommands,
    command,
    env_flag,
    err,
    load,
    out,
    port_number,
    post_date,
    site_options,
    slug_text,
    tag_list,
    warn_placeholder_base_url,
)

__all__ = ["register"]


def _cmd_init(args: argparse.Namespace) -> int:
    from ..generator.scaffold import init_site

    target = Path(args.directory)
    plan = None
    if args.ci is not None:
        from ..generator.ci_setup import init_workflow
        from ..generator.ci_workflows import DEFAULT_DEPLOY

        plan = init_workflow(target, args.ci, args.deploy or DEFAULT_DEPLOY)
    elif args.deploy is not None:
        raise FedipressError("--deploy chooses the deploy step of the CI workflow; add --ci"
                             " github or --ci gitlab, or leave out --deploy")
    extra = {plan.workflow.path: plan.workflow.text} if plan is not None else {}
    created = init_site(target, extra_files=extra)
    for path in created:
        print(f"created {path}")
    if plan is not None:
        print_plan(plan.report, print)
    print(f"Next: set title, base_url and author in {target / 'site.yaml'},"
          f" then: cd {args.directory} && fedipress build && fedipress serve")
    return 0


def _cmd_new(args: argparse.Namespace) -> int:
    from ..generator.scaffold import describe_new, new_post

    if args.page and args.tags:
        # front_matter() writes no tags for a page: refused rather than dropped unseen.
        raise FedipressError("--tags is for posts: pages are not listed under tags; leave out"
                             " --tags or --page")
    config = load(args, require_content=True)
    path = new_post(config, args.title, page=args.page, draft=args.draft, date=args.date,
                    tags=args.tags, slug=args.slug)
    print(f"created {path}")
    for line in describe_new(config, path, page=args.page, draft=args.draft, date=args.date):
        print(line)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    """One summary line on stdout; problems on stderr.

    Exit 0 on success, including `--keep-going` builds that skipped broken files (each is
    printed as a warning); broken content without `--keep-going` raises ContentError (exit 2).
    """
    from ..generator.build import BuildOptions, run_build

    config = load(args, require_content=True)
    quiet = bool(args.quiet)  # --quiet: errors only
    if not quiet:
        warn_placeholder_base_url(config, args, "links, feeds and the fediverse actor point"
                                  " there:")
    ci = env_flag("CI")

    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr)

    def warn(line: str) -> None:  # even with --quiet: these are the site's errors
        print(line, file=sys.stderr)

    options = BuildOptions(drafts=args.drafts, future=args.future, keep_going=args.keep_going,
                           clean=args.clean, progress=not quiet and not ci and sys.stderr.isatty(),
                           ci=ci)
    run = run_build(config, options, log=log, warn=warn)
    result = run.result
    if not quiet:
        print(result.summary())
        left_out = result.left_out()
        if left_out is not None:
            print(left_out)
        if ci:
            phases = ", ".join(f"{k} {v:.2f} s" for k, v in result.phase_seconds.items())
            print(f"phases: {phases}")
            print(result.cache_line())
    if getattr(args, "exit_when_done", False):
        # Everything is written and closed: what is left is freeing the loaded site object
        # by object and the interpreter's teardown, which the operating system does at once.
        # `run` still holds the builder here, so nothing is freed before the exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..generator.devserver import ServeOptions, serve

    config = load(args, require_content=True)
    serve(config, ServeOptions(host=args.host, port=args.port, base_url=args.base_url,
                               drafts=args.drafts, future=args.future,
                               reload=not args.no_reload),
          out=out, log=err)
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "init", _cmd_init, "create a new blog", "fedipress init myblog")
    p.add_argument("directory", help="folder to create (must be empty or absent)")
    p.add_argument("--ci", choices=["github", "gitlab"],
                   help="also write a CI workflow that builds, deploys and publishes, as"
                        " `fedipress ci` does (default: none)")
    deploy_option(p, default=None)

    p = command(sub, "new", _cmd_new,
                "write a new post (a draft until you set draft: false) with front matter"
                " filled in",
                'fedipress new "My first post" --tags travel,food')
    p.add_argument("title", help="the post's title, in quotes if it has spaces")
    p.add_argument("--page", action="store_true", help="create a page instead of a post")
    p.add_argument("--draft", action=argparse.BooleanOptionalAction, default=True,
                   help="mark it `draft: true`, so that build, serve and publish leave it out"
                        " until you set `draft: false` (as Hugo does); --no-draft writes"
                        " `draft: false`")
    p.add_argument("--date", metavar="WHEN", type=post_date,
                   help="its date: 2024-05-01, 2024-05-01T09:30 or with an offset,"
                        " +01:00; a time without an offset is in site.yaml's timezone"
                        " (default: now)")
    p.add_argument("--tags", metavar="TAG,TAG", type=tag_list, default=[],
                   help="comma-separated tags, e.g. travel,food (default: none)")
    p.add_argument("--slug", type=slug_text,
                   help="the file and address name, e.g. my-trip: lower-case letters,"
                        " digits and hyphens (default: made from the title)")
    site_options(p, base_url=False)

    p = command(sub, "build", _cmd_build, "build the site into the output folder",
                "fedipress build --drafts")
    site_options(p)
    p.add_argument("--drafts", action="store_true", help="include drafts")
    p.add_argument("--future", action="store_true", help="include future-dated posts")
    p.add_argument("--keep-going", action="store_true",
                   help="build the rest of the site when some content files are broken")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    p.add_argument("--clean", action="store_true", help="ignore the incremental cache")

    p = command(sub, "serve", _cmd_serve, "serve the site locally, rebuild and reload on save",
                "fedipress serve --port 8000")
    site_options(p)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=port_number, default=8000,
                   help="the port to listen on (0: any free port)")
    p.add_argument("--drafts", action="store_true", help="include drafts")
    p.add_argument("--future", action="store_true", help="include future-dated posts")
    p.add_argument("--no-reload", action="store_true", help="do not watch or live-reload")
