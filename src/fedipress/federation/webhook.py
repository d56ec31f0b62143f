"""The webhook: a command the service runs after new approved public interactions.

    webhook = Webhook(config.fediverse.webhook, base_url=..., state_file=..., environ=os.environ)
    await webhook.run_forever(stop, read=lambda: export_conversations(store, actor))

Typically a CI call that rebuilds the blog, so a new reply reaches the page without the author
doing anything. What counts is exactly what the page would show: the public conversation of
store/conversations.py (approved, addressed to the public), polled every few seconds, so an
approval made by `fedipress comments approve` in another process counts as much as a reply the
inbox let through. Each interaction is known by a key; a key not yet reported is new.

Debounced: the first new interaction starts a short wait (`settle_seconds`) so that a burst is
reported in one run, and runs are at least `every_minutes` apart; what arrives meanwhile waits
for the next run. What has been reported is kept in `.fedipress/webhook-seen.json`, so
approvals made while the service was down are reported after a restart, and a restart never
reports old ones again. The first start records what exists without running. Several inbox
processes on one store (PostgreSQL) each poll, but each interaction is claimed in the store
before a run (`claim`: an atomic insert of its key in the store's webhook claims), so only the
process that claims it first runs the command for it; the others count it as reported.

The command is an argument list, run without a shell, with a timeout; its environment is
minimal (PATH, HOME, the locale, the names in `pass_env`) plus the FEDIPRESS_WEBHOOK_
variables below. It never gets the owner token or the private key, nothing is put on its command
line, and a failure (missing program, exit status, timeout) is logged without stopping the
service. The variables:

    FEDIPRESS_WEBHOOK_COUNT    how many new interactions this run reports
    FEDIPRESS_WEBHOOK_REPLIES, _LIKES, _BOOSTS, _QUOTES    the same, by kind
    FEDIPRESS_WEBHOOK_POSTS    the pages they concern, one URL a line (at most 100)
    FEDIPRESS_WEBHOOK_BLOG     the blog's base URL
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..activitypub.conversation import Conversations
from ..config.settings import WebhookConfig
from ..errors import StoreError
from ..store import Store

__all__ = ["KEPT_ENV", "MAX_POSTS", "Webhook", "WebhookRun",
           "claim_webhook_keys", "interaction_keys", "page_url"]

log = logging.getLogger("fedipress.inbox")

# The service's variables every command gets: enough to find programs and speak the locale.
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
MAX_POSTS = 100  # post URLs listed in FEDIPRESS_WEBHOOK_POSTS
MAX_OUTPUT = 2000  # characters of the command's output kept for the log
_KINDS = ("reply", "like", "boost", "quote")


def page_url(object_id: str) -> str:
    """A post's page from its object id (`<page>object.json`, as the build writes it)."""
    return object_id.removesuffix("object.json")


def interaction_keys(conversations: Conversations) -> dict[str, str]:
    """Every public interaction as `digest -> "kind object_id"`: the digest names it across
    runs (a reply by its id, a reaction by kind, actor and URL) without storing remote text."""
    keys: dict[str, str] = {}
    for oid, conv in conversations.objects.items():
        named: list[tuple[str, str]] = [("reply", f"reply {r.id}") for r in conv.replies]
        for reaction in (*conv.likes, *conv.boosts, *conv.quotes):
            named.append((reaction.kind,
                          f"{reaction.kind} {reaction.actor.id} {reaction.url or ''}"))
        for kind, name in named:
            digest = hashlib.sha256(f"{oid}\n{name}".encode()).hexdigest()[:32]
            keys[digest] = f"{kind} {oid}"
    return keys


def claim_webhook_keys(store: Store, keys: list[str], now: datetime) -> set[str]:
    """The keys this process is the first to report: each one claimed in the store, which
    several processes share; a claim that finds it there loses."""
    return {k for k in keys if store.claim_webhook_key(k, now)}


@dataclass(frozen=True)
class WebhookRun:
    """One run of the command: what it reported and how it ended."""

    count: int
    posts: tuple[str, ...]
    exit_code: int | None  # None: it could not start or was stopped at the timeout
    error: str | None = None
    output: str = ""


@dataclass
class Webhook:
    config: WebhookConfig
    base_url: str
    state_file: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    monotonic: Callable[[], float] = time.monotonic
    settle_seconds: float = 30.0
    poll_seconds: float = 15.0
    reported: set[str] | None = None  # None until the first observation or the state file
    pending: dict[str, str] = field(default_factory=dict)
    pending_since: float | None = None
    last_run: float | None = None
    runs: list[WebhookRun] = field(default_factory=list)
    # Given the pending keys, those this process is first to report (the others were claimed
    # by another process on the same store); None: this process is the only one.
    claim: Callable[[list[str]], set[str]] | None = None

    def __post_init__(self) -> None:
        self.reported = self._load()
        for name in self.config.pass_env:
            if name not in self.environ:
                log.warning("webhook: pass_env names %s, which is not set in the service's"
                            " environment; the command runs without it", name)

    # --- what has been reported ------------------------------------------------------------

    def _load(self) -> set[str] | None:
        if self.state_file is None:
            return None
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("webhook: %s cannot be read (%s); what exists now counts as reported",
                        self.state_file, type(exc).__name__)
            return None
        seen = data.get("reported") if isinstance(data, dict) else None
        if not isinstance(seen, list):
            log.warning("webhook: %s is not as fedipress writes it; what exists now counts as"
                        " reported", self.state_file)
            return None
        return {str(k) for k in seen}

    def _save(self) -> None:
        if self.state_file is None or self.reported is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"reported": sorted(self.reported)}), encoding="utf-8")
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.warning("webhook: cannot write %s (%s); after a restart recent interactions"
                        " may be reported again", self.state_file, exc.strerror or exc)

    # --- the debounce ------------------------------------------------------------------------

    def observe(self, conversations: Conversations) -> int:
        """Note what the public conversation holds now; returns how many are new (pending)."""
        current = interaction_keys(conversations)
        if self.reported is None:
            # The first look: everything already there was shown before this service ran.
            self.reported = set(current)
            self._save()
            return 0
        fresh = {k: v for k, v in current.items() if k not in self.reported}
        if fresh and not self.pending:
            self.pending_since = self.monotonic()
        self.pending = fresh
        if not fresh:
            self.pending_since = None
        # Gone ones (hidden, deleted) leave the record: approved again later, they are new.
        self.reported &= set(current)
        return len(fresh)

    def due(self) -> bool:
        if not self.pending or self.pending_since is None:
            return False
        now = self.monotonic()
        if now - self.pending_since < self.settle_seconds:
            return False
        return self.last_run is None or now - self.last_run >= self.config.every_minutes * 60

    def _environment(self, count: int, kinds: Mapping[str, int],
                     posts: list[str]) -> dict[str, str]:
        env = {k: self.environ[k] for k in (*KEPT_ENV, *self.config.pass_env)
               if k in self.environ}
        env |= {
            "FEDIPRESS_WEBHOOK_COUNT": str(count),
            "FEDIPRESS_WEBHOOK_REPLIES": str(kinds.get("reply", 0)),
            "FEDIPRESS_WEBHOOK_LIKES": str(kinds.get("like", 0)),
            "FEDIPRESS_WEBHOOK_BOOSTS": str(kinds.get("boost", 0)),
            "FEDIPRESS_WEBHOOK_QUOTES": str(kinds.get("quote", 0)),
            "FEDIPRESS_WEBHOOK_POSTS": "\n".join(posts[:MAX_POSTS]),
            "FEDIPRESS_WEBHOOK_BLOG": self.base_url,
        }
        return env

    async def run(self) -> WebhookRun:
        """Run the command for what is pending now; the pending interactions count as reported
        whether it succeeds or not (a failing hook is the owner's to fix, not to hammer)."""
        pending = dict(self.pending)
        kinds = {k: 0 for k in _KINDS}
        for value in pending.values():
            kind = value.split(" ", 1)[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        posts = sorted({page_url(v.split(" ", 1)[1]) for v in pending.values()})
        self.last_run = self.monotonic()
        assert self.reported is not None
        self.reported |= set(pending)
        self.pending = {}
        self.pending_since = None
        self._save()
        result = await self._execute(len(pending), kinds, posts)
        self.runs.append(result)
        return result

    async def _execute(self, count: int, kinds: Mapping[str, int], posts: list[str]) -> WebhookRun:
        command = self.config.command
        program = command[0]
        log.info("webhook: running %s for %d new interactions on %d posts", program, count,
                 len(posts))
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, env=self._environment(count, kinds, posts),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            log.warning("webhook: cannot run %s: %s; fix fediverse.webhook.command in"
                        " site.yaml", program, why)
            return WebhookRun(count, tuple(posts), None, f"cannot run: {why}")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.config.timeout_seconds)
        except (TimeoutError, asyncio.CancelledError) as stopped:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its children too: the session is its own
            except ProcessLookupError:
                pass
            await proc.wait()
            if isinstance(stopped, asyncio.CancelledError):
                raise  # the service is stopping: the command goes with it
            log.warning("webhook: %s still running after %d seconds: stopped (raise"
                        " fediverse.webhook.timeout_seconds if it needs longer)", program,
                        self.config.timeout_seconds)
            return WebhookRun(count, tuple(posts), None, "timed out")
        text = out.decode("utf-8", "replace")[-MAX_OUTPUT:].strip()
        if proc.returncode != 0:
            log.warning("webhook: %s exited with status %s: %s", program, proc.returncode,
                        text or "(no output)")
            return WebhookRun(count, tuple(posts), proc.returncode,
                              f"exit status {proc.returncode}", text)
        log.info("webhook: %s done%s", program, f": {text[:500]}" if text else "")
        return WebhookRun(count, tuple(posts), 0, None, text)

    async def tick(self, read: Callable[[], Conversations]) -> WebhookRun | None:
        """One poll: read the conversation (in a thread: it is SQL), run the command if due."""
        try:
            conversations = await asyncio.to_thread(read)
        except StoreError as exc:
            log.warning("webhook: store unavailable (%s); trying again", exc)
            return None
        self.observe(conversations)
        if not self.due():
            return None
        if self.claim is not None and not await self._claim():
            return None
        return await self.run()

    async def _claim(self) -> bool:
        """Keep only the pending interactions no other process has reported; whether any
        remain. What another process claimed counts as reported here too."""
        try:
            won = await asyncio.to_thread(self.claim, sorted(self.pending))  # type: ignore[arg-type]
        except StoreError as exc:
            log.warning("webhook: store unavailable (%s); trying again", exc)
            return False
        taken = set(self.pending) - won
        if taken:
            log.info("webhook: %d new interactions already reported by another fedipress"
                     " process on the same store", len(taken))
            assert self.reported is not None
            self.reported |= taken
            self.pending = {k: v for k, v in self.pending.items() if k in won}
            self._save()
        if not self.pending:
            self.pending_since = None
            return False
        return True

    async def run_forever(self, stop: asyncio.Event,
                          read: Callable[[], Conversations]) -> None:
        log.info("webhook: runs %s after new approved interactions, at most every %d minutes",
                 self.config.command[0], self.config.every_minutes)
        while not stop.is_set():
            try:
                await self.tick(read)
            except Exception:  # noqa: BLE001 - a bug here must not stop the inbox
                log.exception("webhook: unexpected error; trying again at the next poll")
            try:
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
            except TimeoutError:
                pass
