"""fediverse.webhook: a real command (a small Python script) run after new approved public
interactions in a real SQLite store, debounced on a clock the test moves: a burst of ten
approvals is one run, the next one waits out `every_minutes`; failures, timeouts and a missing
program are logged and the service goes on; secrets never reach the command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.config.settings import WebhookConfig
from fedipress.federation.webhook import Webhook, claim_webhook_keys
from fedipress.store import Interaction, LedgerEntry, Store, open_store
from fedipress.store.conversations import export_conversations
from support.config import MINIMAL, load, problems
from support.inbox import Env
from support.service import start_service

BLOG = "https://blog.example/"
ACTOR = BLOG + "actor.json"
POSTS = [BLOG + "posts/one/object.json", BLOG + "posts/two/object.json"]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

HOOK = """\
import json, os, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}) + "\\n")
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "state.db")
    s.plan_publication([], [], [LedgerEntry(oid, "h", NOW, NOW, "live", None) for oid in POSTS],
                       NOW)
    yield s
    s.close()


def _reply(store: Store, n: int, *, post: str = POSTS[0], approved: bool = True,
           visibility: str = "public") -> str:
    activity = f"https://r.example/activities/{n}"
    store.add_interaction(Interaction(
        activity, "reply", f"https://r.example/users/u{n}", post, NOW, NOW,
        author_name=f"U{n}", content_html=f"<p>reply {n}</p>", approved=approved,
        reply_object_id=f"https://r.example/notes/{n}",
        visibility=visibility))  # type: ignore[arg-type]
    return activity


def _runs(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def _webhook(tmp_path: Path, clock: Clock, command: tuple[str, ...], **kw: object) -> Webhook:
    config = WebhookConfig(command=command, every_minutes=10, timeout_seconds=5,
                           pass_env=("HOOK_SECRET",))
    environ = {"PATH": "/usr/bin:/bin", "HOOK_SECRET": "for-the-ci",
               "FEDIPRESS_SERVICE_TOKEN": "owner-token-never-passed",
               "FEDIPRESS_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----", "OTHER": "not passed"}
    return Webhook(config, BLOG, state_file=tmp_path / "webhook-seen.json", environ=environ,
                   monotonic=clock, **kw)  # type: ignore[arg-type]


def test_a_burst_is_one_run_and_the_next_waits_out_every_minutes(
        tmp_path: Path, store: Store) -> None:
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    log = tmp_path / "runs.jsonl"
    clock = Clock()
    hook = _webhook(tmp_path, clock, (sys.executable, str(script), str(log)))

    def read() -> object:
        return export_conversations(store, ACTOR)

    async def scenario() -> None:
        _reply(store, 0)  # there before the service: never reported
        assert await hook.tick(read) is None  # type: ignore[arg-type]
        # Ten approvals in a burst, on two posts, polled as they come.
        for n in range(1, 11):
            _reply(store, n, post=POSTS[n % 2])
            clock.now += 2
            assert await hook.tick(read) is None  # type: ignore[arg-type]
        # Held and private replies are not public: they never count.
        _reply(store, 90, approved=False)
        _reply(store, 91, visibility="followers")
        _reply(store, 92, visibility="direct")
        clock.now += 31
        first = await hook.tick(read)  # type: ignore[arg-type]
        assert first is not None and first.exit_code == 0 and first.count == 10
        assert await hook.tick(read) is None  # type: ignore[arg-type]

        # One more: it waits until ten minutes have passed since the first run.
        store.set_interaction_approved("https://r.example/activities/90", True)
        clock.now += 60
        assert await hook.tick(read) is None  # type: ignore[arg-type]
        clock.now += 10 * 60 - 60 - 1
        assert await hook.tick(read) is None  # type: ignore[arg-type]
        clock.now += 1
        second = await hook.tick(read)  # type: ignore[arg-type]
        assert second is not None and second.count == 1

    asyncio.run(scenario())
    runs = _runs(log)
    assert len(runs) == 2
    env = runs[0]["env"]
    assert isinstance(env, dict)
    assert env["FEDIPRESS_WEBHOOK_COUNT"] == "10"
    assert env["FEDIPRESS_WEBHOOK_REPLIES"] == "10" and env["FEDIPRESS_WEBHOOK_LIKES"] == "0"
    assert env["FEDIPRESS_WEBHOOK_POSTS"].split("\n") == [BLOG + "posts/one/", BLOG + "posts/two/"]
    assert env["FEDIPRESS_WEBHOOK_BLOG"] == BLOG
    assert env["HOOK_SECRET"] == "for-the-ci"  # named in pass_env
    # Secrets and everything else stay out of its environment and its command line.
    assert "FEDIPRESS_SERVICE_TOKEN" not in env and "FEDIPRESS_PRIVATE_KEY" not in env
    assert "OTHER" not in env
    assert runs[0]["argv"] == [str(log)]
    assert runs[1]["env"]["FEDIPRESS_WEBHOOK_COUNT"] == "1"  # type: ignore[index]
    assert runs[1]["env"]["FEDIPRESS_WEBHOOK_POSTS"] == BLOG + "posts/one/"  # type: ignore[index]


def test_a_restart_reports_what_came_while_it_was_down_and_nothing_twice(
        tmp_path: Path, store: Store) -> None:
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    log = tmp_path / "runs.jsonl"
    clock = Clock()
    command = (sys.executable, str(script), str(log))

    def read() -> object:
        return export_conversations(store, ACTOR)

    async def scenario() -> None:
        first = _webhook(tmp_path, clock, command)
        _reply(store, 1)
        await first.tick(read)  # type: ignore[arg-type]   # the first start: a baseline
        _reply(store, 2)
        assert (await first.tick(read)) is None  # type: ignore[arg-type]  # settling
        clock.now += 40
        assert (await first.tick(read)) is not None  # type: ignore[arg-type]
        # The service stops; a reply is approved meanwhile; it starts again.
        _reply(store, 3)
        again = _webhook(tmp_path, clock, command)
        await again.tick(read)  # type: ignore[arg-type]
        clock.now += 40
        run = await again.tick(read)  # type: ignore[arg-type]
        assert run is not None and run.count == 1

    asyncio.run(scenario())
    assert [r["env"]["FEDIPRESS_WEBHOOK_COUNT"] for r in _runs(log)] == ["1", "1"]  # type: ignore[index]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_services_on_one_store_report_each_interaction_once(
        tmp_path: Path, request: pytest.FixtureRequest, engine: str) -> None:
    """Two inbox processes (each with its own state file, as on two machines) poll the same
    store: whichever claims a new interaction first runs the command for it, the other
    counts it as reported."""
    location = (request.getfixturevalue("postgres_url") if engine == "postgresql"
                else str(tmp_path / "shared.db"))
    stores = [open_store(location), open_store(location)]
    stores[0].plan_publication(
        [], [], [LedgerEntry(oid, "h", NOW, NOW, "live", None) for oid in POSTS], NOW)
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    log = tmp_path / "runs.jsonl"
    clock = Clock()
    command = (sys.executable, str(script), str(log))
    hooks = []
    for n, s in enumerate(stores):
        (tmp_path / f"machine{n}").mkdir()
        hooks.append(_webhook(tmp_path / f"machine{n}", clock, command,
                              claim=lambda keys, s=s: claim_webhook_keys(s, keys, NOW)))
    reads = [lambda s=s: export_conversations(s, ACTOR) for s in stores]

    async def scenario() -> None:
        for hook, read in zip(hooks, reads, strict=True):
            assert await hook.tick(read) is None  # type: ignore[arg-type]  # the baselines
        for n in range(3):
            _reply(stores[0], n)
        for hook, read in zip(hooks, reads, strict=True):
            assert await hook.tick(read) is None  # type: ignore[arg-type]  # settling
        clock.now += 31
        run = await hooks[0].tick(reads[0])  # type: ignore[arg-type]
        assert run is not None and run.count == 3
        assert await hooks[1].tick(reads[1]) is None  # type: ignore[arg-type]  # taken
        assert not hooks[1].pending
        _reply(stores[1], 9)  # the other process is first this time
        for hook, read in zip(hooks, reads, strict=True):
            await hook.tick(read)  # type: ignore[arg-type]
        clock.now += 10 * 60
        run = await hooks[1].tick(reads[1])  # type: ignore[arg-type]
        assert run is not None and run.count == 1
        assert await hooks[0].tick(reads[0]) is None  # type: ignore[arg-type]

    try:
        asyncio.run(scenario())
    finally:
        for s in stores:
            s.close()
    assert [r["env"]["FEDIPRESS_WEBHOOK_COUNT"] for r in _runs(log)] == ["3", "1"]  # type: ignore[index]


def test_a_sender_cannot_claim_an_interaction_before_the_service_reports_it(
        env: Env) -> None:
    """The claims are a table of their own: an activity id spelled like a claim is an ordinary
    activity, and the claim is still the service's to take."""
    key = "0123456789abcdef0123456789abcdef"
    for spelled in (key, f"fedipress:webhook:{key}", env.remote.url(f"/webhook/{key}")):
        like = env.activity("Like", POSTS[0])
        like["id"] = spelled
        env.post(like)  # however each is answered, none may claim anything
    assert env.count("webhook_claims") == 0
    assert claim_webhook_keys(env.store, [key], NOW) == {key}
    assert claim_webhook_keys(env.store, [key], NOW) == set()  # once


@pytest.mark.parametrize("kind", ["fails", "hangs", "missing"])
def test_failures_are_logged_and_the_loop_goes_on(
        tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    script = tmp_path / "hook.py"
    script.write_text({"fails": "import sys; print('CI said no'); sys.exit(3)",
                       "hangs": "import time; time.sleep(60)", "missing": ""}[kind])
    command = ((str(tmp_path / "no-such-program"),) if kind == "missing"
               else (sys.executable, str(script)))
    clock = Clock()
    hook = _webhook(tmp_path, clock, command)
    hook = Webhook(WebhookConfig(command=command, every_minutes=1, timeout_seconds=1), BLOG,
                   environ={"PATH": "/usr/bin:/bin"}, monotonic=clock)

    def read() -> object:
        return export_conversations(store, ACTOR)

    async def scenario() -> None:
        stop = asyncio.Event()
        hook.poll_seconds = 0.05
        hook.settle_seconds = 0
        hook.reported = set()
        _reply(store, 1)
        loop = asyncio.create_task(hook.run_forever(stop, read))  # type: ignore[arg-type]
        for _ in range(200):
            await asyncio.sleep(0.05)
            if hook.runs:
                break
        clock.now += 61
        _reply(store, 2)
        for _ in range(200):
            await asyncio.sleep(0.05)
            if len(hook.runs) == 2:
                break
        stop.set()
        await loop

    with caplog.at_level(logging.INFO, logger="fedipress.inbox"):
        asyncio.run(scenario())
    assert len(hook.runs) == 2  # the loop survived the first failure
    text = caplog.text
    if kind == "fails":
        assert hook.runs[0].exit_code == 3
        assert "exited with status 3: CI said no" in text
    elif kind == "hangs":
        assert hook.runs[0].error == "timed out"
        assert "still running after 1 seconds: stopped" in text
    else:
        assert hook.runs[0].error is not None and "cannot run" in hook.runs[0].error
        assert "fix fediverse.webhook.command" in text


@pytest.mark.parametrize(("text", "message"), [
    ("  webhook:\n    every_minutes: 5\n",
     "missing required key 'fediverse.webhook.command'; add e.g. `command:"),
    ("  webhook:\n    command: curl -X POST https://ci.example/\n",
     "fediverse.webhook.command: expected a list of arguments"),
    ("  webhook:\n    command: []\n",
     "fediverse.webhook.command: the first entry must name the program to run"),
    ("  webhook:\n    command: [x]\n    every_minutes: 0\n",
     "fediverse.webhook.every_minutes: must be at least 1"),
    ("  webhook:\n    command: [x]\n    pass_env: [FEDIPRESS_SERVICE_TOKEN]\n",
     "fediverse.webhook.pass_env: FEDIPRESS_SERVICE_TOKEN is the service's own"),
    ("  webhook:\n    command: [x]\n    pass_env: ['A B']\n",
     "fediverse.webhook.pass_env: 'A B' is not an environment variable name"),
    ("  webhook:\n    comand: [x]\n", "unknown key 'comand' in fediverse.webhook; did you mean"),
])
def test_webhook_mistakes_in_site_yaml(tmp_path: Path, text: str, message: str) -> None:
    found = problems(tmp_path, MINIMAL + "fediverse:\n" + text)
    assert any(m.startswith(message) for _, m in found), found


def test_webhook_in_site_yaml(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "fediverse:\n  webhook:\n    command: [curl, -X, POST]\n"
                  "    pass_env: [CI_TOKEN]\n")
    assert config.fediverse.webhook == WebhookConfig(("curl", "-X", "POST"), 10, 60,
                                                     ("CI_TOKEN",))
    assert load(tmp_path / "x", MINIMAL).fediverse.webhook is None


@pytest.mark.slow
def test_the_service_runs_the_webhook_loop(tmp_path: Path) -> None:
    yaml = (f"  webhook:\n    command: [{sys.executable}, -c, pass]\n    every_minutes: 3\n"
            "    pass_env: [NOT_SET_ANYWHERE]\n")
    service = start_service(tmp_path / "home", fediverse_yaml=yaml)
    seen = service.root / ".fedipress" / "webhook-seen.json"
    try:
        for _ in range(100):  # its first look at the store records what exists
            if seen.exists():
                break
            time.sleep(0.1)
        assert json.loads(seen.read_text()) == {"reported": []}
    finally:
        log = service.stop()
    assert f"webhook: runs {sys.executable} after new approved interactions, at most every 3" \
        " minutes" in log
    assert "webhook: pass_env names NOT_SET_ANYWHERE, which is not set in the service's" in log
