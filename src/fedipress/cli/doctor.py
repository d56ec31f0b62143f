"""`fedipress doctor URL`: check a deployed blog the way Mastodon would."""

from __future__ import annotations

import argparse

from .shared import Subcommands, allow_private, command, private_option

__all__ = ["register"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    if args.deep:
        return _deep(args)
    if args.service:
        print("--service is used only with --deep; ignored")
    from ..federation.doctor import check_blog, format_report

    report = check_blog(str(args.url), allow_private=allow_private(args))
    print(format_report(report), end="")
    return 0 if report.ok else 1


def _deep(args: argparse.Namespace) -> int:
    from ..federation.service_client import deep_doctor

    answer = deep_doctor(args.service, allow_private(args))
    blog = str(answer.get("blog") or "")
    given = str(args.url).strip().removeprefix("@").rstrip("/")
    if blog and given not in (blog.rstrip("/"), str(answer.get("handle") or "")):
        print(f"note: the service serves {blog}, not {args.url}; its hops check {blog}")
    hops = answer.get("hops")
    if not isinstance(hops, list) or not hops:
        print("the service answered no hops; is it a fedipress service of this version?")
        return 1
    for hop in hops:
        if not isinstance(hop, dict):
            continue
        mark = "pass" if hop.get("ok") else "FAIL"
        line = f"{mark}  {hop.get('hop')}: {hop.get('detail')}"
        if not hop.get("ok") and hop.get("fix"):
            line += f" -- fix: {hop.get('fix')}"
        print(line)
    ok = bool(answer.get("ok")) and all(isinstance(h, dict) and h.get("ok") for h in hops)
    print("all hops pass" if ok else "some hops fail: see the fixes above")
    return 0 if ok else 1


def register(sub: Subcommands) -> None:
    p = command(sub, "doctor", _cmd_doctor, "check a deployed blog the way Mastodon would",
                "fedipress doctor https://alice.example/")
    p.add_argument("url", help="the blog's base URL, or its handle (alice@alice.example)")
    p.add_argument("--deep", action="store_true",
                   help="have the blog's service check it from outside: WebFinger, actor, a"
                   " post, a signed Follow from a probe actor and its Undo (needs"
                   " FEDIPRESS_SERVICE_TOKEN)")
    p.add_argument("--service", metavar="URL",
                   help="the service's address for --deep (default FEDIPRESS_SERVICE_URL)")
    private_option(p)
