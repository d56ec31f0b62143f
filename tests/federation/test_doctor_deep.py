"""`fedipress doctor --deep`: the service meets its own blog from outside.

A real `fedipress inbox` with the owner token on loopback, asked by the real CLI:
- directly: every hop passes (WebFinger, actor, a published post, the probe's signed Follow
  answered by an Accept signed with the blog's key, the Undo), and the probe is not left a
  follower;
- behind real nginx with the GENERATED configuration (`fedipress hosting nginx`): every hop
  passes through the proxy;
- behind nginx edited to `proxy_set_header Host $host` (the port dropped): the Follow hop fails
  with the inbox's 401 and names the Host fix, and the command exits 1; without
  /.fedipress/api/ proxied, the inbox cannot fetch the probe's key and the fix says so;
- a .well-known/ not deployed fails WebFinger, and a deployed actor whose key is not the
  service's fails the Follow (the Accept does not verify with it), each with its fix;
- without the token, or without a service address: one line saying what to set, exit 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.activitypub.httpsig import sign_cavage
from support.e2e_helpers import Blog
from support.interop_peer import free_port
from support.service import Service, ci_publish, clean_env, make_clone, start_service
from support.webservers import binary, start_nginx, stop, wait_port

TOKEN = "deep-doctor-owner-token-" + "d" * 40


def doctor(url: str, service: str | None, *,
           token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = clean_env(FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1")
    if token is not None:
        env["FEDIPRESS_SERVICE_TOKEN"] = token
    argv = [sys.executable, "-m", "fedipress.cli", "doctor", url, "--deep"]
    if service is not None:
        argv += ["--service", service]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    print(run.stdout, run.stderr)  # shown when a test fails
    return run


def hop_lines(out: str) -> dict[str, str]:
    lines = {}
    for line in out.splitlines():
        mark, _, rest = line.partition("  ")
        if mark in ("pass", "FAIL"):
            lines[rest.split(":")[0]] = mark + " " + rest
    return lines


def followers(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT actor_id FROM followers")]
    finally:
        conn.close()


def probe_deliveries(db: Path) -> list[tuple[str, str]]:
    """(inbox, state) of every queued delivery to a doctor probe."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT inbox, state FROM deliveries WHERE inbox LIKE ?",
                            ("%/.fedipress/api/v1/probe/%",)).fetchall()
    finally:
        conn.close()


def assert_no_failure_left(service: Service) -> None:
    """The probe's Accept is delivered (202), nothing to it is left to retry against a probe
    that is over, and the service's delivery status reports no failure."""
    rows = probe_deliveries(service.root / ".fedipress" / "state.db")
    assert rows and all(state == "delivered" for _, state in rows), rows
    status = httpx.get(service.api("/deliveries"), headers=service.auth(), timeout=10).json()
    assert status["failures"] == [] and not status["counts"].get("failed"), status


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = start_service(tmp_path / "home", token=TOKEN)
    try:
        yield running
    finally:
        log = running.stop()
        assert "Traceback" not in log, log


def test_deep_passes_every_hop_directly(service: Service, tmp_path: Path) -> None:
    published = ci_publish(make_clone(service, tmp_path / "ci"), service)
    assert published.code == 0, published.err
    run = doctor(service.base, service.base)
    assert run.returncode == 0, run.stdout + run.stderr
    hops = hop_lines(run.stdout)
    assert list(hops) == ["WebFinger", "actor", "post", "Follow", "Undo"], run.stdout
    assert all(v.startswith("pass") for v in hops.values()), run.stdout
    assert "no post published" not in hops["post"]
    assert "signed with the blog's key" in hops["Follow"]
    assert "all hops pass" in run.stdout
    assert followers(service.root / ".fedipress" / "state.db") == []
    assert_no_failure_left(service)
    # A late delivery to the probe that just ended (the queue retrying an Accept the check
    # stopped waiting for) is taken and dropped with a log line, not failed as 410 Gone.
    [(probe_inbox, _)] = probe_deliveries(service.root / ".fedipress" / "state.db")
    late = httpx.post(probe_inbox, content=b'{"type": "Accept"}', timeout=10,
                      headers={"Content-Type": "application/activity+json"})
    assert late.status_code == 202, late.text
    assert httpx.get(probe_inbox.replace("/inbox", "/actor"), timeout=10).status_code == 410
    # The probe is over once the check is: its routes answer 410, and the inbox again
    # refuses a key on its own host (only a live probe may sign from there).
    gone = service.base + ".fedipress/api/v1/probe/abc/actor"
    assert httpx.get(gone, timeout=10).status_code == 410
    key = rsa.generate_private_key(65537, 2048)
    follow = json.dumps({"id": gone + "/follow", "type": "Follow", "actor": gone,
                         "object": service.base + "actor.json"}).encode()
    inbox = service.base + "inbox"
    headers = {"Content-Type": "application/activity+json",
               "Host": inbox.split("/")[2]}
    headers |= sign_cavage("POST", inbox, headers, follow, key_id=gone + "#main-key",
                           private_key=key, now=datetime.now(UTC))
    refused = httpx.post(inbox, content=follow, headers=headers, timeout=10)
    assert refused.status_code == 401 and "names this server" in refused.text, refused.text
    assert httpx.post(service.base + ".fedipress/api/v1/probe/abc/inbox", content=b"{}",
                      timeout=10).status_code == 410  # no probe of ours had that id
    assert "a late delivery to it was dropped" in service.stop()


def test_deep_names_a_missing_well_known_and_a_key_the_service_does_not_hold(
        service: Service) -> None:
    public = service.root / "public"
    (public / ".well-known" / "webfinger").unlink()
    # The deployed actor carries another key than the one the service signs with.
    actor = json.loads((public / "actor.json").read_text())
    other = rsa.generate_private_key(65537, 2048).public_key()
    actor["publicKey"]["publicKeyPem"] = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    (public / "actor.json").write_text(json.dumps(actor))
    run = doctor(service.base, service.base)
    assert run.returncode == 1, run.stdout + run.stderr
    hops = hop_lines(run.stdout)
    assert hops["WebFinger"].startswith("FAIL") and "404" in hops["WebFinger"]
    assert ".well-known/ is not deployed" in hops["WebFinger"]
    assert hops["actor"].startswith("pass")
    assert hops["Follow"].startswith("FAIL"), run.stdout
    assert "does not verify with the blog's key" in hops["Follow"]
    assert "fedipress keys show" in hops["Follow"]
    assert hops["Undo"].startswith("pass")
    assert followers(service.root / ".fedipress" / "state.db") == []
    # The Accept that did not verify was judged by the probe and reported above: the
    # service's queue does not retry it (and fail it later) against a probe that is over.
    assert_no_failure_left(service)


def test_deep_needs_the_token_and_the_address(service: Service) -> None:
    run = doctor("https://elsewhere.example/", service.base)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"note: the service serves {service.base}, not https://elsewhere.example/" \
        in run.stdout
    assert "note:" not in doctor("tester@" + service.base.split("/")[2], service.base).stdout
    run = doctor(service.base, service.base, token=None)
    assert run.returncode == 2 and "FEDIPRESS_SERVICE_TOKEN" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    run = doctor(service.base, None)
    assert run.returncode == 2 and "--service" in run.stderr, run.stderr
    run = doctor(service.base, service.base, token="wrong-" + "w" * 50)
    assert run.returncode == 2 and "refused the owner token" in run.stderr, run.stderr


class NginxStack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nginx = binary("nginx")
        self.proxy_port, self.upstream_port = free_port(), free_port()
        while self.upstream_port == self.proxy_port:
            self.upstream_port = free_port()
        self.blog = Blog.create(tmp, port=self.proxy_port)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.proxy: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.blog.fedipress("build")
        log = self.tmp / "inbox.log"
        with log.open("wb") as out:
            inbox = subprocess.Popen(
                [sys.executable, "-m", "fedipress.cli", "inbox", "--base-url", self.blog.base,
                 "--host", "127.0.0.1", "--port", str(self.upstream_port), "--site", "public",
                 "--allow-private-addresses"],
                cwd=self.blog.root, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**{k: v for k, v in os.environ.items() if not k.startswith("FEDIPRESS_")},
                     "FEDIPRESS_SERVICE_TOKEN": TOKEN})
        self.processes.append(inbox)
        wait_port(self.upstream_port, inbox, log, "fedipress inbox")
        self.generated = self.blog.fedipress(
            "hosting", "nginx", "--base-url", self.blog.base,
            "--listen", f"127.0.0.1:{self.proxy_port}",
            "--upstream", f"127.0.0.1:{self.upstream_port}").stdout

    def proxy_with(self, name: str, conf: str) -> None:
        if self.proxy is not None:
            stop(self.proxy)
        path = self.tmp / f"{name}.conf"
        path.write_text(conf, encoding="utf-8")
        self.proxy = start_nginx(self.nginx, self.tmp / name, path, self.proxy_port)

    def stop(self) -> str:
        if self.proxy is not None:
            stop(self.proxy)
        for process in reversed(self.processes):
            stop(process)
        return (self.tmp / "inbox.log").read_text(errors="replace")


@pytest.fixture
def nginx_stack(tmp_path: Path) -> Iterator[NginxStack]:
    stack = NginxStack(tmp_path)
    try:
        stack.start()
        yield stack
    finally:
        log = stack.stop()
        assert "Traceback" not in log, log


def test_deep_through_nginx_generated_then_host_rewritten(nginx_stack: NginxStack) -> None:
    stack = nginx_stack
    base = stack.blog.base
    assert "proxy_set_header Host $http_host;" in stack.generated
    stack.proxy_with("generated", stack.generated)
    # Publish through the proxy, so the post hop has a post to fetch there.
    published = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "publish", "--no-build"],
        cwd=stack.blog.root, capture_output=True, text=True, timeout=120, check=False,
        env=clean_env(CI="true", FEDIPRESS_SERVICE_URL=base, FEDIPRESS_SERVICE_TOKEN=TOKEN,
                      FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1"))
    assert published.returncode == 0, published.stdout + published.stderr
    run = doctor(base, base)  # the owner API through the proxy too
    assert run.returncode == 0, run.stdout + run.stderr + (stack.tmp / "inbox.log").read_text()
    hops = hop_lines(run.stdout)
    assert list(hops) == ["WebFinger", "actor", "post", "Follow", "Undo"], run.stdout
    assert all(v.startswith("pass") for v in hops.values()), run.stdout
    assert "no post published" not in hops["post"]

    # $host drops the port: the Follow signed for 127.0.0.1:PORT no longer verifies.
    broken = stack.generated.replace("proxy_set_header Host $http_host;",
                                     "proxy_set_header Host $host;")
    stack.proxy_with("host-rewritten", broken)
    run = doctor(base, f"http://127.0.0.1:{stack.upstream_port}/")
    assert run.returncode == 1, run.stdout + run.stderr
    hops = hop_lines(run.stdout)
    assert hops["WebFinger"].startswith("pass") and hops["actor"].startswith("pass")
    follow = hops["Follow"]
    assert follow.startswith("FAIL"), run.stdout
    assert "answered 401 signature does not verify" in follow, follow
    assert "proxy_set_header Host $http_host" in follow, follow
    assert "Undo" not in hops
    assert followers(stack.blog.root / ".fedipress" / "state.db") == []

    # /.fedipress/api/ not proxied: the inbox cannot fetch the probe's key there.
    unproxied = stack.generated.replace("location ^~ /.fedipress/api/ {",
                                        "location ^~ /.fedipress/not-proxied/ {")
    assert unproxied != stack.generated
    stack.proxy_with("api-not-proxied", unproxied)
    run = doctor(base, f"http://127.0.0.1:{stack.upstream_port}/")
    assert run.returncode == 1, run.stdout + run.stderr
    follow = hop_lines(run.stdout)["Follow"]
    assert follow.startswith("FAIL") and "proxy /.fedipress/api/ to the service" in follow, \
        follow


def test_a_private_blog_address_without_the_opt_in_is_a_failing_hop() -> None:
    from fedipress.federation.doctor_probe import _get
    from fedipress.federation.netguard import GuardedTransport

    async def fetch() -> object:
        async with httpx.AsyncClient(transport=GuardedTransport(allow_private=False)) as client:
            return await _get(client, "http://127.0.0.1:9/actor.json", "application/json")

    answer = asyncio.run(fetch())
    assert isinstance(answer, str) and "refused" in answer, answer
    assert "--allow-private-addresses" in answer


def test_finished_probes_are_remembered_for_a_day_at_most() -> None:
    from fedipress.federation.doctor_probe import ENDED_KEPT, ENDED_SECONDS, ProbeRegistry

    now = [1000.0]
    probes = ProbeRegistry(clock=lambda: now[0])
    probes.finish("first")
    assert list(probes.ended) == ["first"]
    now[0] += ENDED_SECONDS + 1
    probes.finish("second")  # the first is a day old: forgotten
    assert list(probes.ended) == ["second"]
    for n in range(ENDED_KEPT + 5):
        probes.finish(f"p{n}")
    assert len(probes.ended) == ENDED_KEPT and "second" not in probes.ended
