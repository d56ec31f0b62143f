"""`fedipress inbox` for real: --site static serving with content types, and a subprocess that
accepts a Follow, delivers the Accept from its delivery loop, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fedipress.activitypub.httpsig import sign_cavage
from fedipress.federation.inbox import create_app
from fedipress.federation.remote import FetchPolicy, RemoteFetcher
from fedipress.store import open_store
from support.inbox import AS2, NOW, REMOTE_KEY, Env, Remote, actor_doc, make_env

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
REPO = Path(__file__).resolve().parents[2]


def actor_json(base: str) -> str:
    """The parts of a built actor.json the inbox checks against its configuration."""
    actor = base + "actor.json"
    return json.dumps({
        "id": actor, "type": "Person", "inbox": base + "inbox",
        "endpoints": {"sharedInbox": base + "inbox"},
        "publicKey": {"id": actor + "#main-key", "owner": actor,
                      "publicKeyPem": (KEYS / "blog-public.pem").read_text()},
    })


def _site_files(root: Path, base: str = "https://blog.example/") -> Path:
    public = root / "public"
    (public / "posts" / "hello").mkdir(parents=True)
    (public / ".well-known").mkdir()
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "actor.json").write_text(actor_json(base))
    (public / "posts" / "hello" / "index.html").write_text("<p>hello</p>")
    (public / "posts" / "hello" / "object.json").write_text("{}")
    (public / ".well-known" / "webfinger").write_text("{}")
    (public / "style.css").write_text("body{}")
    (public / "404.html").write_text("<p>missing</p>")
    return public



def wait_healthy(proc: subprocess.Popen[bytes], base: str, timeout: float = 20) -> None:
    """Until the `fedipress inbox` subprocess answers /healthz; fails if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "inbox did not start"
        time.sleep(0.1)

def test_site_dir_is_served_with_content_types(tmp_path: Path, remote: Remote) -> None:
    env: Env = make_env(tmp_path, remote)
    public = _site_files(tmp_path)
    (tmp_path / "secret.txt").write_text("no")

    async def main() -> dict[str, httpx.Response]:
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True), user_agent="t") as f:
            app = create_app(env.config, env.store, f, clock=lambda: NOW, site_dir=public)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://blog.example") as c:
                paths = [
                    "/",
                    "/posts/hello/",
                    "/posts/hello",
                    "/actor.json",
                    "/posts/hello/object.json",
                    "/.well-known/webfinger?resource=acct:author@blog.example",
                    "/.well-known/webfinger?resource=acct:a@b",
                    "/style.css",
                    "/nope",
                    "/../secret.txt",
                    "/%2e%2e/secret.txt",
                    "/healthz",
                ]
                return {p: await c.get(p) for p in paths}

    r = asyncio.run(main())
    env.store.close()
    assert r["/"].headers["content-type"].startswith("text/html")
    assert r["/"].text == "<h1>home</h1>"
    assert r["/posts/hello/"].text == "<p>hello</p>"
    assert r["/posts/hello"].status_code in (301, 307, 308)
    assert r["/actor.json"].headers["content-type"].startswith("application/activity+json")
    assert (
        r["/posts/hello/object.json"]
        .headers["content-type"]
        .startswith("application/activity+json")
    )
    # only the blog's own account gets the JRD (RFC 7033; tests/activitypub/test_webfinger.py has
    # the rest)
    assert r["/.well-known/webfinger?resource=acct:a@b"].status_code == 404
    webfinger = r["/.well-known/webfinger?resource=acct:author@blog.example"]
    assert webfinger.headers["content-type"].startswith("application/jrd+json")
    assert webfinger.headers.get("access-control-allow-origin") == "*"
    assert r["/style.css"].headers["content-type"].startswith("text/css")
    assert r["/nope"].status_code == 404 and "missing" in r["/nope"].text
    assert r["/../secret.txt"].status_code == 404
    assert r["/%2e%2e/secret.txt"].status_code == 404
    assert r["/healthz"].json() == {"status": "ok"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_inbox_subprocess_follow_accept_and_sigterm(tmp_path: Path, remote: Remote) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/"
    (tmp_path / "site.yaml").write_text(
        f"title: Sub\nbase_url: {base}\nauthor:\n  name: A\n  handle: author\n"
    )
    shutil.copy(KEYS / "blog-public.pem", tmp_path / "fedipress-public-key.pem")
    state = tmp_path / ".fedipress"
    state.mkdir()
    shutil.copy(KEYS / "blog-private.pem", state / "private-key.pem")
    os.chmod(state / "private-key.pem", 0o600)
    public = _site_files(tmp_path, base)
    remote.docs["/users/alice"] = actor_doc(remote, "alice")
    alice = remote.url("/users/alice")

    env_vars = {k: v for k, v in os.environ.items() if k != "FEDIPRESS_PRIVATE_KEY"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedipress.cli",
            "inbox",
            "--config",
            str(tmp_path / "site.yaml"),
            "--port",
            str(port),
            "--site",
            str(public),
            "--allow-private-addresses",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_vars,
        cwd=REPO,
    )
    try:
        wait_healthy(proc, base)
        assert (
            httpx.get(base + "actor.json")
            .headers["content-type"]
            .startswith("application/activity+json")
        )
        follow = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": alice + "/follows/1",
            "type": "Follow",
            "actor": alice,
            "object": base + "actor.json",
        }
        body = json.dumps(follow).encode()
        headers = {"Content-Type": AS2, "Host": f"127.0.0.1:{port}"}
        headers |= sign_cavage(
            "POST",
            base + "inbox",
            headers,
            body,
            key_id=alice + "#main-key",
            private_key=REMOTE_KEY,
            now=datetime.now(UTC),
        )
        r = httpx.post(base + "inbox", content=body, headers=headers)
        assert r.status_code == 202, r.text
        # The delivery loop sends the Accept to Alice's inbox promptly.
        deadline = time.monotonic() + 15
        while not [p for p in remote.posts if p[0] == "/users/alice/inbox"]:
            assert time.monotonic() < deadline, "Accept not delivered"
            time.sleep(0.1)
        [(_, _, accept)] = [p for p in remote.posts if p[0] == "/users/alice/inbox"]
        assert json.loads(accept)["type"] == "Accept"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert b"inbox stopped" in err
    store = open_store(state / "state.db")
    try:
        assert store.get_follower(alice) is not None
        assert store.delivery_counts().get("delivered") == 1
    finally:
        store.close()


def _requests_logged(tmp_path: Path, *flags: str) -> bytes:
    """Start `fedipress inbox` with `flags`, GET /healthz once, stop it: what it logged
    (uvicorn writes access lines to stdout, everything else to stderr)."""
    tmp_path.mkdir()
    port = _free_port()
    base = f"http://127.0.0.1:{port}/"
    (tmp_path / "site.yaml").write_text(
        f"title: Log\nbase_url: {base}\nauthor:\n  name: A\n  handle: author\n"
    )
    shutil.copy(KEYS / "blog-public.pem", tmp_path / "fedipress-public-key.pem")
    state = tmp_path / ".fedipress"
    state.mkdir(exist_ok=True)
    shutil.copy(KEYS / "blog-private.pem", state / "private-key.pem")
    os.chmod(state / "private-key.pem", 0o600)
    env_vars = {k: v for k, v in os.environ.items() if k != "FEDIPRESS_PRIVATE_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedipress.cli", "inbox", "--config", str(tmp_path / "site.yaml"),
         "--port", str(port), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=env_vars, cwd=REPO,
    )
    try:
        wait_healthy(proc, base)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err.decode()
    assert b"inbox listening" in err  # our own log lines are still there
    return out + err


@pytest.mark.slow
def test_access_log_is_off_by_default_and_on_with_the_flag(tmp_path: Path) -> None:
    assert b"GET /healthz" not in _requests_logged(tmp_path / "quiet")
    assert b"GET /healthz" in _requests_logged(tmp_path / "loud", "--access-log")
