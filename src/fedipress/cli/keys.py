"""`fedipress keys generate` and `fedipress keys show`: the blog actor's key pair."""

from __future__ import annotations

import argparse

from .shared import Parser, Subcommands, action, command, load, share_group_options, site_options

__all__ = ["register"]


def _cmd_keys(args: argparse.Namespace) -> int:
    from ..federation.keys import ENV_VAR, generate_keys, key_status

    config = load(args)
    if args.keys_command == "generate":
        made = generate_keys(config, force=bool(args.force))
        print(f"private key: {made.private_key} (mode 0600; keep it secret, never commit it)")
        print(f"public key:  {made.public_key} (commit it with site.yaml)")
        print(f"fingerprint: {made.fingerprint}")
        print(f"Where the file cannot be kept (a container's secret store), {ENV_VAR} can carry"
              " its content.")
        return 0
    # show
    status = key_status(config)
    if status.restored:
        print(f"restored {status.public_key} from the private key")
    print(f"public key:  {status.public_key}")
    print(f"fingerprint: {status.fingerprint}")
    if status.private_problem is not None:
        raise status.private_problem
    if status.private_key is not None:
        print(f"private key: {status.private_key} (matches the public key)")
    else:
        print(f"private key: not on this machine (set {ENV_VAR} where you publish)")
    print(status.public_pem, end="")
    return 0


def register(sub: Subcommands) -> None:
    p = command(sub, "keys", _cmd_keys, "manage the blog actor's key pair",
                "fedipress keys generate")
    site_options(p, base_url=False)
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True,
                                parser_class=Parser, help="generate or show")
    kg = action(keys_sub, "generate", "create the RSA-2048 key pair", "fedipress keys generate")
    kg.add_argument("--force", action="store_true",
                    help="replace an existing key (followers' servers will have to refollow)")
    action(keys_sub, "show", "print the public key and where the private key lives",
           "fedipress keys show")
    share_group_options(p)
