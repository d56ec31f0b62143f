"""A fedipress blog run as real processes on loopback, for the end-to-end federation tests.

    blog = Blog.create(tmp_path)             # temp copy of tests/fixtures/sites/basic + test keys
    blog.fedipress("build")                  # subprocess; fails the test on a traceback
    inbox = blog.start_inbox()               # `fedipress inbox --site public` on blog.port
    ...
    blog.stop_inbox()                        # SIGTERM, waits, checks stderr for tracebacks

Every command runs as `python -m fedipress.cli` in the blog folder with `--base-url
http://127.0.0.1:PORT/` where the command takes one, so the same port serves the site, the
actor and /inbox. The private key lives at .fedipress/private-key.pem (mode 0600), or with
`key_in_env=True` only in FEDIPRESS_PRIVATE_KEY; whatever FEDIPRESS_PRIVATE_KEY /
FEDIPRESS_ALLOW_PRIVATE_ADDRESSES the caller's environment has is dropped, so only what the
test sets counts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from support.interop_peer import free_port

__all__ = ["Blog", "CommandResult", "HANDLE_USER", "write_post"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SITE = FIXTURES / "sites" / "basic"
HANDLE_USER = "tester"  # author.handle in the fixture's site.yaml
COMMAND_TIMEOUT = 90.0
START_TIMEOUT = 30.0

# Commands whose parser has --base-url (deliveries, interactions and block do not).
_BASE_URL_COMMANDS = {"build", "publish", "followers", "inbox"}


@dataclass(frozen=True)
class CommandResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def write_post(root: Path, name: str, title: str, body: str, *, slug: str,
               date: datetime | None = None) -> Path:
    """A post in content/posts dated a minute ago (publish announces only recent posts)."""
    when = date or datetime.now(UTC) - timedelta(minutes=1)
    path = root / "content" / "posts" / name
    path.write_text(
        f"---\ntitle: {title}\ndate: {when.replace(microsecond=0).isoformat()}\n"
        f"slug: {slug}\n---\n{body}\n",
        encoding="utf-8",
    )
    return path


def _env(extra: dict[str, str]) -> dict[str, str]:
    drop = {"FEDIPRESS_PRIVATE_KEY", "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    return env | extra


@dataclass
class Blog:
    """One blog folder and, while running, its inbox service process."""

    root: Path
    port: int
    inbox_process: subprocess.Popen[bytes] | None = None
    _inbox_log: IO[bytes] | None = field(default=None, repr=False)
    inbox_runs: int = 0
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, tmp: Path, port: int | None = None, *, key_in_env: bool = False) -> Blog:
        """key_in_env: no key file; FEDIPRESS_PRIVATE_KEY carries it (the CI-secret way)."""
        root = tmp / "blog"
        shutil.copytree(SITE, root)
        # The build publishes this public half; the private half is where publish, the
        # inbox and followers look for it.
        shutil.copy(FIXTURES / "keys" / "blog-public.pem", root / "fedipress-public-key.pem")
        state = root / ".fedipress"
        state.mkdir()
        blog = cls(root, port or free_port())
        private = FIXTURES / "keys" / "blog-private.pem"
        if key_in_env:
            blog.env["FEDIPRESS_PRIVATE_KEY"] = private.read_text(encoding="ascii")
        else:
            shutil.copy(private, state / "private-key.pem")
            (state / "private-key.pem").chmod(0o600)
        return blog

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def handle(self) -> str:
        return f"{HANDLE_USER}@127.0.0.1:{self.port}"

    @property
    def actor_id(self) -> str:
        return self.base + "actor.json"

    @property
    def inbox_log_path(self) -> Path:
        return self.root.parent / f"inbox-{self.inbox_runs}.log"

    def _argv(self, command: str, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "fedipress.cli", command]
        if command in _BASE_URL_COMMANDS:
            argv += ["--base-url", self.base]
        return argv + list(args)

    def fedipress(self, command: str, *args: str, expect: int | None = 0) -> CommandResult:
        """Run one command to completion; assert its exit code and that nothing crashed."""
        completed = subprocess.run(
            self._argv(command, *args), cwd=self.root, env=_env(self.env), capture_output=True,
            text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
        )
        result = CommandResult((command, *args), completed.returncode, completed.stdout,
                               completed.stderr)
        where = f"fedipress {' '.join(result.args)}"
        assert "Traceback" not in result.stderr, f"{where} crashed:\n{result.stderr}"
        if expect is not None:
            assert result.returncode == expect, (
                f"{where} exited {result.returncode}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    # --- the inbox service ----------------------------------------------------------------

    def start_inbox(self) -> subprocess.Popen[bytes]:
        assert self.inbox_process is None, "inbox already running"
        self.inbox_runs += 1
        log = self.inbox_log_path.open("wb")
        process = subprocess.Popen(
            self._argv("inbox", "--port", str(self.port), "--site", "public",
                       "--allow-private-addresses"),
            cwd=self.root, env=_env(self.env), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.inbox_process, self._inbox_log = process, log
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                if process.poll() is not None:
                    self.stop_inbox(check=False)
                    raise AssertionError(
                        f"inbox exited with {process.returncode}:\n{self.inbox_output()}")
                try:
                    if client.get(self.base + "healthz").status_code == 200:
                        return process
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop_inbox(check=False)
                    raise AssertionError(f"inbox did not answer /healthz:\n{self.inbox_output()}")
                time.sleep(0.1)

    def inbox_output(self) -> str:
        path = self.inbox_log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def assert_inbox_healthy(self) -> None:
        """The inbox is still running and has logged no traceback (it answers 503 and logs
        one on an unexpected error, so a bug would otherwise pass unnoticed)."""
        process = self.inbox_process
        assert process is not None and process.poll() is None, (
            f"inbox is not running:\n{self.inbox_output()}")
        assert "Traceback" not in self.inbox_output(), self.inbox_output()

    def stop_inbox(self, *, check: bool = True) -> None:
        process, log = self.inbox_process, self._inbox_log
        self.inbox_process = self._inbox_log = None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
                    if check:
                        raise AssertionError(
                            f"inbox ignored SIGTERM for 30 s:\n{self.inbox_output()}"
                        ) from None
        finally:
            if log is not None:
                log.close()
        if check:
            output = self.inbox_output()
            assert "Traceback" not in output, output
            assert process.returncode == 0, f"inbox exited {process.returncode}:\n{output}"
