"""The GENERATED nginx, Caddy and Apache configurations, run for real in front of a real
`fedipress inbox --site public` on loopback.

For each server: build the fixture blog for http://127.0.0.1:PROXY/, start the inbox service on
another loopback port, print the configuration with `fedipress hosting KIND --listen
127.0.0.1:PROXY --upstream 127.0.0.1:UPSTREAM`, start the server on it (non-daemon, temp
prefix, pid and logs), then through the server:
- a Follow signed for Host 127.0.0.1:PROXY gets 202 and the follower is recorded (nginx's
  `$host` used to drop the port, and the signature failed with 401);
- WebFinger answers as the service does (RFC 7033): 200 with the JRD for the blog's account
  only, 400 for a missing, empty, repeated or malformed resource, 404 for anything else;
- the owner API (`fedipress publish` from CI) answers as the service does: the public OpenAPI
  document, and the health endpoint with the owner token (the Authorization header passed on)
  and 401 without it; never cached;
- live comments (fediverse.comments_live, on in this blog) reach the service, public and
  cacheable;
- the post form's redirect (/.fedipress/interact) reaches the service.
Apache serves the build's public/.htaccess, with the proxy lines `fedipress hosting apache`
prints. Skipped, saying why, where the server's binary is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from fedipress.activitypub.httpsig import sign_cavage
from fedipress.store import open_store
from support.e2e_helpers import Blog
from support.inbox import AS2, REMOTE_KEY, Remote, actor_doc
from support.interop_peer import free_port
from support.webservers import binary, start_apache, start_caddy, start_nginx, stop, wait_port

# The inbox's owner token for the stack (FEDIPRESS_SERVICE_TOKEN): 43+ characters.
OWNER_TOKEN = "proxied-owner-token-" + "t" * 40


class Stack:
    """The blog, its inbox service on UPSTREAM and the web server on PROXY."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.tmp = kind, tmp
        self.binary = binary(kind)
        self.proxy_port, self.upstream_port = free_port(), free_port()
        while self.upstream_port == self.proxy_port:
            self.upstream_port = free_port()
        self.blog = Blog.create(tmp, port=self.proxy_port)
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def base(self) -> str:
        return self.blog.base  # http://127.0.0.1:PROXY/

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/"

    def start(self) -> None:
        with (self.blog.root / "site.yaml").open("a", encoding="utf-8") as site:
            site.write("  comments_live: true\n")  # fediverse: is the file's last section
        self.blog.fedipress("build")
        log = self.tmp / "inbox.log"
        with log.open("wb") as out:
            inbox = subprocess.Popen(
                [sys.executable, "-m", "fedipress.cli", "inbox", "--base-url", self.base,
                 "--host", "127.0.0.1", "--port", str(self.upstream_port), "--site", "public",
                 "--allow-private-addresses"],
                cwd=self.blog.root, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**{k: v for k, v in os.environ.items() if k != "FEDIPRESS_PRIVATE_KEY"},
                     "FEDIPRESS_SERVICE_TOKEN": OWNER_TOKEN})
        self.processes.append(inbox)
        wait_port(self.upstream_port, inbox, log, "fedipress inbox")
        generated = self.blog.fedipress(
            "hosting", self.kind, "--base-url", self.base,
            "--listen", f"127.0.0.1:{self.proxy_port}",
            "--upstream", f"127.0.0.1:{self.upstream_port}").stdout
        site_conf = self.tmp / f"generated-{self.kind}.conf"
        site_conf.write_text(generated, encoding="utf-8")
        if self.kind == "apache":
            self.processes.append(start_apache(self.binary, self.tmp, site_conf,
                                                self.proxy_port, self.blog.root / "public"))
            return
        start = start_nginx if self.kind == "nginx" else start_caddy
        self.processes.append(start(self.binary, self.tmp, site_conf, self.proxy_port))

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        output = (self.tmp / "inbox.log").read_text(errors="replace")
        assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def remote_actors() -> Iterator[Remote]:
    with Remote() as server:
        server.docs["/users/alice"] = actor_doc(server, "alice")
        yield server


# One stack per server for all the tests (a build and three processes each).
@pytest.fixture(scope="module", params=["nginx", "caddy", "apache"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    running = Stack(request.param, tmp_path_factory.mktemp(request.param))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_signed_follow_through_the_generated_configuration(
        stack: Stack, remote_actors: Remote) -> None:
    alice = remote_actors.url("/users/alice")
    actor = httpx.get(stack.base + "actor.json", timeout=10)
    assert actor.status_code == 200
    assert actor.headers["content-type"].startswith("application/activity+json")
    assert actor.json()["id"] == stack.base + "actor.json"

    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": alice + "/follows/" + stack.kind,
        "type": "Follow",
        "actor": alice,
        "object": stack.base + "actor.json",
    }
    body = json.dumps(follow).encode()
    # Signed for the host and port the sender connects to, as every server signs.
    headers = {"Content-Type": AS2, "Host": f"127.0.0.1:{stack.proxy_port}"}
    headers |= sign_cavage("POST", stack.base + "inbox", headers, body,
                           key_id=alice + "#main-key", private_key=REMOTE_KEY,
                           now=datetime.now(UTC))
    response = httpx.post(stack.base + "inbox", content=body, headers=headers, timeout=20)
    assert response.status_code == 202, (stack.kind, response.status_code, response.text)

    store = open_store(stack.blog.root / ".fedipress" / "state.db")
    try:
        assert store.get_follower(alice) is not None, "202 but no follower recorded"
    finally:
        store.close()


def _webfinger_cases(port: int) -> list[tuple[str, int]]:
    own = f"acct:tester@127.0.0.1:{port}"
    base = f"http://127.0.0.1:{port}/"
    host = f"127.0.0.1:{port}"
    return [
        ("", 400),  # no resource at all
        ("rel=self", 400),
        ("resource", 400),
        ("resource=", 400),
        (f"resource={own}", 200),
        (f"resource={quote(own, safe='')}", 200),  # percent-encoded, as clients send it
        (f"resource=acct:tester%40{host}", 200),
        (f"resource=ACCT:Tester@{host}", 200),
        (f"resource={own}&rel=self", 200),  # rel= may be ignored (RFC 7033 4.3)
        (f"resource={quote(base + 'actor.json', safe='')}", 200),  # the actor URL
        (f"resource={base}", 200),  # the blog URL
        (f"resource=={own}", 400),  # resource==acct:...
        (f"resource=tester@{host}", 400),  # bare user@host: not a URI
        (f"resource=you@{host}", 400),
        (f"resource={quote(quote(own, safe=''), safe='')}", 400),  # encoded twice
        (f"resource=acct:te%20ster@{host}", 400),  # a space is no URI character
        (f"resource={own}%0A", 400),  # nor a newline, even at the end
        ("resource=acct:tester", 400),  # acct: without exactly one '@' (RFC 7565)
        (f"resource=acct:@{host}", 400),
        ("resource=acct:tester@", 400),
        (f"resource={own}@", 400),
        (f"resource={own}&resource={own}", 400),  # repeated
        (f"resource={own}&resource=acct:other@{host}", 400),
        (f"resource=acct:no-such-account@{host}", 404),
        (f"resource=acct%3Ano-such-account%40{host}", 404),
        ("resource=mailto:abc@def.com", 404),
        ("resource=acct:tester@other.example", 404),
        ("resource=https://other.example/actor.json", 404),
        (f"resource={base}posts/", 404),
    ]


def test_webfinger_through_the_generated_configuration_matches_the_service(
        stack: Stack) -> None:
    subject = f"acct:tester@127.0.0.1:{stack.proxy_port}"
    with httpx.Client(timeout=10) as client:
        for query, expected in _webfinger_cases(stack.proxy_port):
            path = ".well-known/webfinger" + (f"?{query}" if query else "")
            proxied = client.get(stack.base + path)
            direct = client.get(stack.direct + path)
            where = f"{stack.kind} ?{query}"
            assert direct.status_code == expected, (f"service {where}", direct.text)
            assert proxied.status_code == expected, (where, proxied.text)
            assert proxied.headers.get("access-control-allow-origin") == "*", where
            if expected == 200:
                assert proxied.headers["content-type"].startswith("application/jrd+json"), where
                assert proxied.json()["subject"] == subject, where
                if "rel=" not in query:  # the service filters links by rel; hosts cannot
                    assert proxied.json() == direct.json(), where
            else:
                assert not proxied.headers["content-type"].startswith(
                    "application/jrd+json"), where
                assert "subject" not in proxied.text, where


def test_owner_api_through_the_generated_configuration(stack: Stack) -> None:
    api = ".fedipress/api/v1/"
    with httpx.Client(timeout=10) as client:
        proxied = client.get(stack.base + api + "openapi.json")
        direct = client.get(stack.direct + api + "openapi.json")
        assert direct.status_code == 200, direct.text
        assert proxied.status_code == 200, (stack.kind, proxied.status_code, proxied.text)
        assert proxied.json() == direct.json(), stack.kind
        assert proxied.json()["openapi"].startswith("3.1"), stack.kind
        assert proxied.headers.get("cache-control") == "no-store", stack.kind

        owner = {"Authorization": f"Bearer {OWNER_TOKEN}"}
        health = client.get(stack.base + api + "health", headers=owner)
        assert health.status_code == 200, (stack.kind, health.status_code, health.text)
        assert health.json()["key_matches"] is True, (stack.kind, health.json())
        assert health.json()["actor"] == stack.base + "actor.json", stack.kind
        assert health.headers.get("cache-control") == "no-store", stack.kind

        for refused in ({}, {"Authorization": "Bearer " + "x" * 60}):
            answer = client.get(stack.base + api + "health", headers=refused)
            assert answer.status_code == 401, (stack.kind, refused, answer.text)
            assert answer.headers.get("www-authenticate", "").startswith("Bearer"), stack.kind
            assert "key_matches" not in answer.text, stack.kind
            assert answer.headers.get("cache-control") == "no-store", stack.kind


def test_live_comments_through_the_generated_configuration(stack: Stack) -> None:
    live = ".fedipress/live/v1/conversation"
    post = stack.base + "posts/none/object.json"
    with httpx.Client(timeout=10) as client:
        proxied = client.get(stack.base + live, params={"post": post})
        direct = client.get(stack.direct + live, params={"post": post})
    # The service's own answer (not the web server's 404 page): no such post, for the blog.
    assert direct.status_code == 404 and direct.json() == {"error": "not a post of this blog"}
    assert proxied.status_code == 404, (stack.kind, proxied.text)
    assert proxied.json() == direct.json(), stack.kind
    assert proxied.headers.get("access-control-allow-origin") == stack.base.rstrip("/")
    assert proxied.headers.get("cache-control") == "public, max-age=60", stack.kind
def test_the_interact_form_through_the_generated_configuration(stack: Stack) -> None:
    """The post page's "Reply from your server" form (no JavaScript) reaches the service's
    redirect through the blog's host."""
    route = ".fedipress/interact"
    post = stack.base + "posts/hello/object.json"
    with httpx.Client(timeout=10) as client:
        proxied = client.get(stack.base + route,
                             params={"server": "@me@social.example", "uri": post})
        refused = client.get(stack.base + route,
                             params={"server": "social.example", "uri": "https://evil.example/"})
    assert proxied.status_code == 303, (stack.kind, proxied.status_code, proxied.text)
    assert proxied.headers["location"] == (
        "https://social.example/authorize_interaction?uri=" + quote(post, safe=""))
    assert refused.status_code == 400, (stack.kind, refused.status_code)
    assert "only opens posts of " + stack.base in refused.text, stack.kind


def test_quote_authorizations_through_the_generated_configuration(stack: Stack) -> None:
    """FEP-044f: an authorization the service granted is served through the blog's host (the
    generated configuration sends /.fedipress/quotes/ to the service), as the service serves
    it; a revoked one answers 410 and an unknown one the service's own 404."""
    from fedipress.config import load_config
    from fedipress.federation.quotes import authorization_id
    from fedipress.store import QuoteAuthorization

    config = load_config(stack.blog.root / "site.yaml", base_url=stack.base)
    quoting = f"https://social.example/notes/{stack.kind}"
    auth = authorization_id(config, quoting)
    assert auth.startswith(stack.base + ".fedipress/quotes/")
    body = json.dumps({"id": auth, "type": "QuoteAuthorization"}).encode()
    now = datetime.now(UTC)
    store = open_store(stack.blog.root / ".fedipress" / "state.db")
    try:
        store.put_quote_authorization(QuoteAuthorization(
            auth, stack.base + "posts/x/object.json", quoting,
            "https://social.example/users/q", body, now))
    finally:
        store.close()
    path = auth.removeprefix(stack.base)
    with httpx.Client(timeout=10) as client:
        proxied = client.get(stack.base + path)
        assert proxied.status_code == 200, (stack.kind, proxied.status_code, proxied.text)
        assert proxied.content == body, stack.kind
        assert proxied.headers["content-type"].startswith(AS2), stack.kind
        unknown = client.get(stack.base + ".fedipress/quotes/" + "0" * 32)
        assert unknown.status_code == 404, stack.kind
        assert unknown.json() == {"error": "no such quote authorization"}, stack.kind
        store = open_store(stack.blog.root / ".fedipress" / "state.db")
        try:
            store.revoke_quote_authorization(auth, now)
        finally:
            store.close()
        gone = client.get(stack.base + path)
        assert gone.status_code == 410, (stack.kind, gone.text)
        assert gone.json()["type"] == "Tombstone", stack.kind
