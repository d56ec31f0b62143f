"""`fedipress inbox --site public/` answers for the actor the served site publishes.

The blog is built with `--base-url http://127.0.0.1:PORT/` while site.yaml says
https://blog.example/; the inbox started without --base-url must still record a correctly
signed Follow of the served actor and deliver the Accept (it used to answer 202, record nothing,
send nothing and log nothing). A --base-url that disagrees with the served actor is refused at
start with one line; a served actor.json this service could not stand behind is refused too.
Real processes and sockets throughout: the blog's inbox is a `fedipress inbox` subprocess, the
follower's server a uvicorn sink on loopback, and the follower signs with its own fresh key.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.activitypub.httpsig import sign_cavage
from fedipress.config import load_config
from fedipress.errors import FedipressError
from fedipress.federation.inbox_server import served_identity
from fedipress.federation.keys import load_private_key
from fedipress.store import open_store
from support.e2e_helpers import COMMAND_TIMEOUT, Blog
from support.inbox_sink import InboxSink

pytestmark = pytest.mark.slow

AS2 = "application/activity+json"
FIXTURE_KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
BLOG_PEM = (FIXTURE_KEYS / "blog-public.pem").read_bytes()
REPO = Path(__file__).resolve().parents[2]


def follower_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return key, pem


def person(sink: InboxSink, name: str, pem: str) -> dict[str, Any]:
    actor = sink.url(f"/users/{name}")
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Person",
        "preferredUsername": name,
        "inbox": actor + "/inbox",
        "publicKey": {"id": actor + "#main-key", "owner": actor, "publicKeyPem": pem},
    }


def signed_post(url: str, activity: dict[str, Any], key: rsa.RSAPrivateKey,
                key_id: str) -> httpx.Response:
    body = json.dumps(activity).encode()
    host = httpx.URL(url).netloc.decode()
    headers = {"Content-Type": AS2, "Host": host}
    headers |= sign_cavage("POST", url, headers, body, key_id=key_id, private_key=key,
                           now=datetime.now(UTC))
    return httpx.post(url, content=body, headers=headers, timeout=10)


def start_inbox(blog: Blog, *extra: str) -> subprocess.Popen[bytes]:
    """`fedipress inbox` in the blog folder with exactly `extra` (no --base-url added)."""
    blog.inbox_runs += 1
    log = blog.inbox_log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fedipress.cli", "inbox", "--port", str(blog.port),
         "--allow-private-addresses", *extra],
        cwd=blog.root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    blog.inbox_process, blog._inbox_log = process, log  # noqa: SLF001  (stop_inbox closes it)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, blog.inbox_output()
        try:
            if httpx.get(blog.base + "healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, blog.inbox_output()
        time.sleep(0.1)


@pytest.fixture
def built(tmp_path: Path) -> Blog:
    blog = Blog.create(tmp_path)
    blog.fedipress("build")  # with --base-url http://127.0.0.1:PORT/
    assert load_config(blog.root / "site.yaml").base_url == "https://blog.example/"
    served = json.loads((blog.root / "public" / "actor.json").read_text())
    assert served["id"] == blog.actor_id
    return blog


def test_inbox_without_base_url_records_a_follow_of_the_served_actor(built: Blog) -> None:
    blog = built
    key, pem = follower_key()
    with InboxSink(BLOG_PEM) as sink:
        sink.documents["/users/bob"] = person(sink, "bob", pem)
        bob = sink.url("/users/bob")
        start_inbox(blog, "--site", "public")
        try:
            # A Follow of site.yaml's actor (not the one served here) is accepted and ignored,
            # and the log says for whom it was.
            stray = {"@context": "https://www.w3.org/ns/activitystreams",
                     "id": bob + "/follows/stray", "type": "Follow", "actor": bob,
                     "object": "https://blog.example/actor.json"}
            assert signed_post(blog.base + "inbox", stray, key, bob + "#main-key"
                               ).status_code == 202
            follow = {"@context": "https://www.w3.org/ns/activitystreams",
                      "id": bob + "/follows/1", "type": "Follow", "actor": bob,
                      "object": blog.actor_id}
            response = signed_post(blog.base + "inbox", follow, key, bob + "#main-key")
            assert response.status_code == 202, response.text
            deadline = time.monotonic() + 20
            while not sink.posts_to("/users/bob/inbox"):
                assert time.monotonic() < deadline, f"no Accept:\n{blog.inbox_output()}"
                time.sleep(0.1)
            [accept] = sink.posts_to("/users/bob/inbox")
            doc = json.loads(accept.body)
            assert doc["type"] == "Accept" and doc["actor"] == blog.actor_id
            assert doc["object"]["id"] == follow["id"]
            assert accept.verified_independent and accept.verified_ours
            assert accept.headers["signature"].startswith(f'keyId="{blog.actor_id}#main-key"')
            blog.assert_inbox_healthy()
        finally:
            blog.stop_inbox()
    output = blog.inbox_output()
    assert f"answering for {blog.actor_id}" in output
    assert "https://blog.example/" in output  # and it says what site.yaml had
    ignored = [line for line in output.splitlines() if "follows/stray" in line]
    assert ignored and "ignored" in ignored[0], output
    assert "https://blog.example/actor.json" in ignored[0] and blog.actor_id in ignored[0]
    store = open_store(blog.root / ".fedipress" / "state.db")
    try:
        follower = store.get_follower(bob)
        assert follower is not None and follower.inbox == bob + "/inbox"
        assert store.count_followers() == 1
    finally:
        store.close()


def test_a_disagreeing_base_url_is_refused_in_one_line(built: Blog) -> None:
    other = f"http://127.0.0.1:{built.port + 1}/"
    result = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "inbox", "--port", str(built.port),
         "--site", "public", "--base-url", other],
        cwd=built.root, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("fedipress: error")]
    assert other in line and built.base in line and "--base-url" in line
    with pytest.raises(httpx.TransportError):  # it never started listening
        httpx.get(built.base + "healthz", timeout=1)


def test_without_site_a_local_build_for_another_actor_is_warned_about(built: Blog) -> None:
    start_inbox(built)  # site.yaml's https://blog.example/, public/ built for loopback
    built.stop_inbox()
    output = built.inbox_output()
    assert "Follows of the other will be ignored" in output, output
    assert built.actor_id in output and "https://blog.example/actor.json" in output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(inbox="https://elsewhere.example/inbox"), "its inbox is"),
        (lambda d: d["endpoints"].update(sharedInbox="https://x.example/i"), "its shared inbox"),
        (lambda d: d["publicKey"].update(id=d["id"] + "#other"), "its key id"),
        (lambda d: d["publicKey"].update(
            publicKeyPem=(FIXTURE_KEYS / "remote-public.pem").read_text()), "public key"),
        (lambda d: d.update(id="https://blog.example/people/me"), "is not <base_url>actor.json"),
        (lambda d: d.clear(), "has no actor id"),
        (lambda d: d.update(id="ftp://blog.example/actor.json"), "not a usable base URL"),
    ],
)
def test_a_served_actor_the_inbox_cannot_stand_behind_is_refused(
    built: Blog, change: Any, message: str
) -> None:
    path = built.root / "public" / "actor.json"
    doc = json.loads(path.read_text())
    config = load_config(built.root / "site.yaml")
    key = load_private_key(config)
    # Untouched, it is taken as it is, base URL and all.
    assert served_identity(config, built.root / "public", key,
                           explicit_base_url=False).base_url == built.base
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(FedipressError, match=message) as refused:
        served_identity(config, built.root / "public", key, explicit_base_url=False)
    assert "\n" not in str(refused.value)
    if "its" in message or "public key" in message:  # says how to rebuild for this address
        assert f"fedipress build --base-url {built.base}` again" in str(refused.value)


def test_a_site_without_actor_json_is_refused(tmp_path: Path) -> None:
    blog = Blog.create(tmp_path)
    (blog.root / "public").mkdir()
    config = load_config(blog.root / "site.yaml")
    with pytest.raises(FedipressError, match="run `fedipress build` first"):
        served_identity(config, blog.root / "public", load_private_key(config),
                        explicit_base_url=False)
