"""`fedipress followers`: list, add, remove; follow requests: list, approve, reject."""

from __future__ import annotations

import argparse

from .shared import (
    Parser,
    Subcommands,
    action,
    allow_private,
    command,
    load,
    private_option,
    share_group_options,
    site_options,
)

__all__ = ["register"]


def _cmd_followers(args: argparse.Namespace) -> int:
    from ..federation import followers as f

    config = load(args)
    verb = getattr(args, "followers_command", None) or "list"
    as_json = bool(args.json)
    if verb == "list":
        for line in f.list_followers(config).lines(as_json=as_json):
            print(line)
        return 0
    if verb == "requests":
        for follower in f.follow_requests(config):
            print(f.follower_json(follower) if as_json else f.follower_line(follower))
        return 0
    actor = str(args.actor)
    if verb == "add":
        added = f.add_follower_by_url(config, actor, allow_private=allow_private(args))
        print(f"added {f.follower_line(added)}")
        return 0
    if verb == "remove":
        f.remove_follower(config, actor)
        print(f"removed {actor}")
        return 0
    # approve or reject (argparse allows nothing else)
    f.answer_follow_request(config, actor, approve=verb == "approve")
    kind = "Accept" if verb == "approve" else "Reject"
    print(f"{verb}d {actor}; its {kind} is queued (sent by the inbox service or the"
          " next `fedipress publish`)")
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "followers", _cmd_followers, "list and manage followers",
                "fedipress followers add https://mastodon.example/users/bob")
    site_options(p)
    private_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    f_sub = p.add_subparsers(dest="followers_command", metavar="ACTION", parser_class=Parser,
                             help="list, add, remove, requests, approve or reject"
                                  " (default: list)")
    action(f_sub, "list", "list followers with counts by server (default)",
           "fedipress followers list")
    actor_help = "the follower's actor URL, e.g. https://mastodon.example/users/bob"
    fa = action(f_sub, "add", "fetch an actor and record it as a follower",
                "fedipress followers add https://mastodon.example/users/bob")
    fa.add_argument("actor", help=actor_help)
    fr = action(f_sub, "remove", "forget a follower",
                "fedipress followers remove https://mastodon.example/users/bob")
    fr.add_argument("actor", help=actor_help)
    action(f_sub, "requests", "list pending follow requests", "fedipress followers requests")
    fap = action(f_sub, "approve", "accept a pending follow request",
                 "fedipress followers approve https://mastodon.example/users/bob")
    fap.add_argument("actor", help="the requesting actor's URL")
    frj = action(f_sub, "reject", "reject a pending follow request",
                 "fedipress followers reject https://mastodon.example/users/bob")
    frj.add_argument("actor", help="the requesting actor's URL")
    share_group_options(p)
