""""Reply, like or boost from your server" in headless Chromium: the post page (served from
127.0.0.1) sends the reader to their own server, a loopback https "server" with a
self-signed certificate that answers WebFinger with or without FEP-3b86 intent links and
records every request. The test checks the address the browser actually went to."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedipress.generator.render import plan_pages
from fedipress.generator.themes import make_environment, theme_static_files
from support.conversation import conversations_for, thread_conversation
from support.devtools import CHROMIUM, DevTools
from support.render import make_site
from support.service import start_service

pytestmark = pytest.mark.browser

POST = "posts/post-7/"
INTENT = "https://w3id.org/fep/3b86/"


class ReaderServer:
    """The reader's home server: WebFinger (CORS open, as Mastodon's) and a page for every
    other path, each request recorded as (path, query)."""

    def __init__(self, tmp: Path) -> None:
        self.links: list[dict[str, str]] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                parts = urlsplit(self.path)
                server_self.requests.append((parts.path, parse_qs(parts.query)))
                if parts.path == "/.well-known/webfinger":
                    resource = parse_qs(parts.query).get("resource", [""])[0]
                    body = json.dumps({"subject": resource, "links": server_self.links})
                    kind = "application/jrd+json"
                else:
                    body, kind = "<!doctype html><title>home server</title>", "text/html"
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        cert, key = tmp / "cert.pem", tmp / "key.pem"
        _self_signed(cert, key)
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.http.socket = context.wrap_socket(self.http.socket, server_side=True)
        self.host = f"127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def wait_for(self, path: str, timeout: float = 15.0) -> dict[str, list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for seen, query in self.requests:
                if seen == path:
                    return query
            time.sleep(0.05)
        raise AssertionError(f"the browser never asked for {path}: {self.requests}")

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def _self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def blog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (/usr/bin/chromium)")
    out = tmp_path_factory.mktemp("public")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    site = make_site(tmp_path_factory.mktemp("root"), base_url=base)
    conv = conversations_for(base + "actor.json", thread_conversation(f"{base}{POST}object.json"))
    for o in plan_pages(site, make_environment(site.config), fingerprint_salt="s",
                        conversations=conv):
        (out / o.path).parent.mkdir(parents=True, exist_ok=True)
        (out / o.path).write_bytes(o.render())
    for rel, src in theme_static_files(site.config):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(src.read_bytes())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[ReaderServer]:
    server = ReaderServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(blog: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    devtools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    # The reader's server has a self-signed certificate (a real one would not).
    devtools.call("Security.setIgnoreCertificateErrors", ignore=True)
    try:
        yield devtools
    finally:
        devtools.close()


def _press(browser: DevTools, blog: str, typed: str, button: str) -> Any:
    browser.open(blog + POST, 375, dark=False)
    return browser.evaluate(
        "((typed, button) => { const form = document.querySelector('form.interact-form');"
        " form.querySelector('input').value = typed;"
        " form.querySelector(`button[value=${button}]`).click();"
        " const error = form.querySelector('.follow-error');"
        " return {hidden: form.hidden, error: error.hidden ? null : error.textContent}; })"
        f"({json.dumps(typed)}, {json.dumps(button)})")


def test_without_intents_the_reader_goes_to_authorize_interaction(
    blog: str, browser: DevTools, reader: ReaderServer
) -> None:
    assert _press(browser, blog, reader.host, "reply") == {"hidden": False, "error": None}
    query = reader.wait_for("/authorize_interaction")
    assert query == {"uri": [f"{blog}{POST}object.json"]}
    # The server alone was given: its own account was asked for intents first.
    webfinger = reader.wait_for("/.well-known/webfinger")
    assert webfinger["resource"] == [f"acct:127.0.0.1@{reader.host}"]


def test_advertised_intents_are_used_with_their_parameters(
    blog: str, browser: DevTools, reader: ReaderServer
) -> None:
    home = f"https://{reader.host}"
    reader.links = [
        {"rel": "self", "type": "application/activity+json", "href": f"{home}/users/me"},
        {"rel": INTENT + "Create",
         "href": home + "/intents/reply?to={inReplyTo}&done={on-success}"},
        # The older `template` property, and a parameter fedipress does not know (left empty).
        {"rel": INTENT + "Like", "template": home + "/intents/like?id={object}&x={unknown}"},
        {"rel": INTENT + "Announce", "href": home + "/intents/boost?id={object}"},
    ]
    object_id = f"{blog}{POST}object.json"
    _press(browser, blog, f"@me@{reader.host}", "like")
    assert reader.wait_for("/intents/like") == {"id": [object_id]}  # x= is empty: dropped
    raw = next(q for p, q in reader.requests if p == "/.well-known/webfinger")
    assert raw["resource"] == [f"acct:me@{reader.host}"]  # the reader's own account
    reader.requests.clear()
    _press(browser, blog, f"@me@{reader.host}", "reply")
    assert reader.wait_for("/intents/reply") == {"to": [object_id], "done": [blog + POST]}
    reader.requests.clear()
    _press(browser, blog, f"@me@{reader.host}", "boost")
    assert reader.wait_for("/intents/boost") == {"id": [object_id]}


def test_an_intent_that_is_not_https_is_not_followed(
    blog: str, browser: DevTools, reader: ReaderServer
) -> None:
    reader.links = [{"rel": INTENT + "Like", "href": "javascript:alert(1)//{object}"},
                    {"rel": INTENT + "Like", "href": "http://127.0.0.1:1/like?id={object}"}]
    _press(browser, blog, reader.host, "like")
    assert reader.wait_for("/authorize_interaction") == {"uri": [f"{blog}{POST}object.json"]}


def test_the_server_is_remembered_and_nonsense_refused(
    blog: str, browser: DevTools, reader: ReaderServer
) -> None:
    _press(browser, blog, f"@me@{reader.host}", "reply")
    reader.wait_for("/authorize_interaction")
    browser.open(blog + POST, 375, dark=False)
    assert browser.evaluate("document.querySelector('#interact-server').value") == \
        f"@me@{reader.host}"
    result = _press(browser, blog, "not a server", "like")
    assert result["error"] and "like mastodon.social" in result["error"]


def test_without_javascript_the_form_and_the_address_are_there(blog: str,
                                                                browser: DevTools) -> None:
    browser.call("Emulation.setScriptExecutionDisabled", value=True)
    try:
        browser.open(blog + POST, 375, dark=False)
        state = browser.evaluate(  # (evaluate still runs: only the page's scripts are off)
            "[document.querySelector('form.interact-form').hidden,"
            " document.querySelector('form.interact-form').action,"
            " document.querySelector('form.interact-form input[name=uri]').value,"
            " document.querySelector('.replies .post-address').textContent,"
            " document.querySelectorAll('.conversation .reply').length]")
    finally:
        browser.call("Emulation.setScriptExecutionDisabled", value=False)
    # The form goes to the inbox service (on the blog's host here); the address stays too.
    assert state == [False, f"{blog}.fedipress/interact", f"{blog}{POST}object.json",
                     f"{blog}{POST}", 6]


def test_without_javascript_the_service_sends_the_reader_to_their_server(
    browser: DevTools, reader: ReaderServer, tmp_path: Path
) -> None:
    """A real `fedipress inbox --site` serves the built blog and its interact route; the
    reader types their server and presses Enter with the page's scripts off."""
    service = start_service(tmp_path / "blog")  # --allow-private-addresses: a loopback server
    post = service.base + "posts/first/"
    browser.call("Emulation.setScriptExecutionDisabled", value=True)
    try:
        browser.open(post, 1000, dark=False)
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        field = browser.call("DOM.querySelector", nodeId=root,
                             selector="form.interact-form input[name=server]")["nodeId"]
        assert field, "the post page has no server field"
        browser.call("DOM.focus", nodeId=field)
        browser.call("Input.insertText", text=f"@me@{reader.host}")
        for kind in ("keyDown", "keyUp"):
            browser.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                         windowsVirtualKeyCode=13, text="\r" if kind == "keyDown" else "")
        query = reader.wait_for("/authorize_interaction")
    finally:
        browser.call("Emulation.setScriptExecutionDisabled", value=False)
        log = service.stop()
    assert query == {"uri": [post + "object.json"]}
    # No script ran: the reader's server was never asked for intents.
    assert "/.well-known/webfinger" not in [p for p, _ in reader.requests]
    assert "Traceback" not in log
