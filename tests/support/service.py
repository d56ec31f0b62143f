"""A real `fedipress inbox` with its owner API on loopback, and CI-like clones publishing to it.

    service = start_service(tmp_path / "home", token=TOKEN, followers=[...])
    clone = make_clone(service, tmp_path / "ci")      # site.yaml, content/, the public key only
    result = ci_publish(clone, service)               # CI=true, the two env vars, nothing else
    service.stop()                                    # its log (stderr) as text
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from fedipress.cli import main
from fedipress.store import Follower, open_store

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
REPO = Path(__file__).resolve().parents[2]
PREFIX = "/.fedipress/api/v1"
TOKEN = "test-owner-token-" + "x7Qp2Lm9" * 6  # 65 characters


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_yaml(base: str) -> str:
    return (f"title: Service Blog\nbase_url: {base}\nauthor:\n  name: Tester\n  handle: tester\n"
            "fediverse:\n  display_name: Tester\n  bio: A test blog.\n")


def write_post(root: Path, slug: str, text: str = "Hello.", *,
               age: timedelta = timedelta(hours=1)) -> Path:
    date = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    path = root / "content" / "posts" / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: {slug}\ndate: {date}\nslug: {slug}\n---\n{text}\n")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDIPRESS_") and k != "CI"}
    env["PYTHONUNBUFFERED"] = "1"
    return env | extra


@dataclass
class Service:
    root: Path
    base: str
    token: str
    proc: subprocess.Popen[bytes] | None = None
    log: str = ""
    out: str = ""  # its stdout (uvicorn's access log, with --access-log)
    _stopped: bool = field(default=False)

    def api(self, path: str) -> str:
        return self.base.rstrip("/") + PREFIX + path

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def ledger(self) -> dict[str, str]:
        """object id -> state, read beside the running service."""
        conn = sqlite3.connect(f"file:{self.root / '.fedipress' / 'state.db'}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT object_id, state FROM ledger").fetchall())
        finally:
            conn.close()

    def stop(self) -> str:
        if self.proc is not None and not self._stopped:
            self._stopped = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, err = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
            self.log = err.decode("utf-8", "replace")
            self.out = out.decode("utf-8", "replace")
        return self.log


def start_service(root: Path, *, token: str = TOKEN, followers: Iterable[Follower] = (),
                  posts: Iterable[str] = ("first",), fediverse_yaml: str = "",
                  args: Iterable[str] = (), allow_private: bool = True) -> Service:
    """A blog folder with the fixture key, built, with `followers` stored, served by
    `fedipress inbox --site public/` with FEDIPRESS_SERVICE_TOKEN set. `fediverse_yaml`: more
    lines of the fediverse: section (indented); `args`: more options of `fedipress inbox`;
    `allow_private`: False runs it without --allow-private-addresses (as in production)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    root.mkdir(parents=True)
    (root / "site.yaml").write_text(site_yaml(base) + fediverse_yaml)
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    state = root / ".fedipress"
    state.mkdir(mode=0o700)
    shutil.copy(KEYS / "blog-private.pem", state / "private-key.pem")
    (state / "private-key.pem").chmod(0o600)
    (root / "content" / "posts").mkdir(parents=True)
    for slug in posts:
        write_post(root, slug)
    assert main(["build", "--config", str(root / "site.yaml")]) == 0
    store = open_store(state / "state.db")
    try:
        store.upsert_followers(list(followers))
    finally:
        store.close()
    service = Service(root, base, token)
    service.proc = subprocess.Popen(
        [sys.executable, "-m", "fedipress.cli", "inbox", "--config", str(root / "site.yaml"),
         "--port", str(port), "--site", str(root / "public"),
         *(["--allow-private-addresses"] if allow_private else []), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=clean_env(FEDIPRESS_SERVICE_TOKEN=token), cwd=REPO,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "healthz", timeout=1).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        if service.proc.poll() is not None:
            raise AssertionError(f"inbox exited: {service.stop()}")
        assert time.monotonic() < deadline, "inbox did not start"
        time.sleep(0.1)


def make_clone(service: Service, dest: Path) -> Path:
    """What a fresh `git clone` of the blog holds: site.yaml, content/, the public key."""
    dest.mkdir(parents=True)
    shutil.copy(service.root / "site.yaml", dest / "site.yaml")
    shutil.copytree(service.root / "content", dest / "content")
    shutil.copy(service.root / "fedipress-public-key.pem", dest / "fedipress-public-key.pem")
    return dest


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def ci_publish(clone: Path, service: Service, *args: str, token: str | None = None) -> Run:
    """`fedipress publish` as a CI job runs it: CI=true and only the two service variables
    (plus the opt-in to loopback addresses that tests need)."""
    proc = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "publish", "--config", str(clone / "site.yaml"),
         *args],
        capture_output=True, env=clean_env(
            CI="true", FEDIPRESS_SERVICE_URL=service.base,
            FEDIPRESS_SERVICE_TOKEN=token or service.token,
            FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1"),
        cwd=clone, timeout=120,
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def read_json(response: httpx.Response) -> dict[str, object]:
    data = json.loads(response.content)
    assert isinstance(data, dict)
    return data
