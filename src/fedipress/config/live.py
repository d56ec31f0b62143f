"""The service's optional extras in `fediverse:`: `comments_live` and `webhook`.

    comments_live: true                      # or the service's address, when not base_url
    webhook:
      command: [curl, -fsS, -X, POST, https://ci.example/hooks/blog]
      every_minutes: 10                      # at most one run per 10 minutes (default)
      timeout_seconds: 60                    # the run is stopped after this (default)
      pass_env: [CI_HOOK_TOKEN]              # the service's variables the command also gets

Kept apart from sections.py so each extra reads as one unit: its keys, its checks, its messages.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from yaml.nodes import ScalarNode

from .schema import Checker, Section, node_line
from .settings import WebhookConfig
from .values import split_url

__all__ = ["LIVE_PATH", "WEBHOOK_KEYS", "read_comments_live", "read_webhook"]

# Where the service answers live comments, at the root of its host (as /.fedipress/api/ is):
# federation/live_comments.py serves it, federation/hosting.py proxies /.fedipress/live/.
LIVE_PATH = "/.fedipress/live/v1/conversation"

WEBHOOK_KEYS = ("command", "every_minutes", "timeout_seconds", "pass_env")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOOL = "tag:yaml.org,2002:bool"


def read_comments_live(check: Checker, section: Section, base: str) -> str | None:
    """`fediverse.comments_live`: false (default), true (the service answers on the blog's
    host), or the service's own address (a blog on a static host whose service lives
    elsewhere). Returns the endpoint's absolute URL, which the page's script asks."""
    entry = section.entries.get("comments_live")
    if entry is None:
        return None
    if isinstance(entry.value, ScalarNode) and entry.value.tag == _BOOL:
        return urljoin(base, LIVE_PATH) if check.boolean(section, "comments_live") else None
    value = check.text(section, "comments_live")
    if value is None:
        return None
    value = value.strip()
    parts = split_url(value)
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.query or parts.fragment):
        check.add(section.line_of("comments_live"),
                  "fediverse.comments_live: expected true, false or the service's address"
                  f" such as https://inbox.example/, got {value[:200]!r}")
        return None
    return urljoin(value, LIVE_PATH)


def read_webhook(check: Checker, parent: Section) -> WebhookConfig | None:
    """`fediverse.webhook`: the command run after new approved public interactions."""
    entry = parent.entries.get("webhook")
    section = check.subsection(parent, "webhook", WEBHOOK_KEYS)
    if section is None or entry is None:
        return None
    name = section.path
    command_entry = section.entries.get("command")
    if command_entry is None:
        check.add(section.line, f"missing required key '{name}.command'; add e.g. `command:"
                  " [curl, -fsS, -X, POST, https://ci.example/hook]`")
        return None
    if isinstance(command_entry.value, ScalarNode):
        check.add(node_line(command_entry.key),
                  f"{name}.command: expected a list of arguments such as [curl, -fsS, -X, POST,"
                  " https://ci.example/hook] (it runs without a shell), got text")
        return None
    command = [text for _, text in check.list_of_text(section, "command")]
    if not command or not command[0].strip():
        check.add(node_line(command_entry.key),
                  f"{name}.command: the first entry must name the program to run")
        return None
    every = check.integer(section, "every_minutes", minimum=1, maximum=24 * 60)
    timeout = check.integer(section, "timeout_seconds", minimum=1, maximum=3600)
    pass_env: list[str] = []
    for line, value in check.list_of_text(section, "pass_env"):
        if not _ENV_NAME.fullmatch(value):
            check.add(line, f"{name}.pass_env: {value[:100]!r} is not an environment"
                      " variable name (letters, digits and _)")
        elif value.upper().startswith("FEDIPRESS_"):
            # The owner token and the private key live in FEDIPRESS_ variables: a command
            # that needs them is a command that should not be run by the service.
            check.add(line, f"{name}.pass_env: {value} is the service's own; the command"
                      " never gets FEDIPRESS_ variables")
        else:
            pass_env.append(value)
    defaults = WebhookConfig(command=())
    return WebhookConfig(
        command=tuple(command),
        every_minutes=defaults.every_minutes if every is None else every,
        timeout_seconds=defaults.timeout_seconds if timeout is None else timeout,
        pass_env=tuple(pass_env),
    )
