"""The build's request for the service's conversation export (federation/service_http.py),
against a loopback HTTP server that answers each way a wrong service can: every failure is
one ServiceError line, never a traceback, and the token is sent only as a bearer header."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from fedipress.errors import FedipressError
from fedipress.federation.service_http import (
    ServiceError,
    ServiceTarget,
    conversation_service,
    fetch_conversations,
)

EXPORT = {"format": 1, "actor": "https://blog.example/actor.json", "objects": {
    "https://blog.example/p/object.json": {
        "replies": [], "boosts": [], "quotes": [],
        "likes": [{"kind": "like", "published": "2026-05-01T10:00:00Z", "url": None,
                   "actor": {"id": "https://s.example/u/a", "name": "A", "handle": "a@s.example",
                             "url": None, "avatar": None}}]}}}


class _Answers:
    status = 200
    body: bytes = json.dumps(EXPORT).encode()
    headers: dict[str, str] = {}
    delay = 0.0
    seen: list[tuple[str, str]] = []


@pytest.fixture
def service() -> Iterator[tuple[str, type[_Answers]]]:
    answers = type("Answers", (_Answers,), {"seen": [], "headers": {}})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            answers.seen.append((self.path, self.headers.get("Authorization", "")))
            time.sleep(answers.delay)
            self.send_response(answers.status)
            for k, v in answers.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(answers.body)))
            self.end_headers()
            self.wfile.write(answers.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", answers
    finally:
        server.shutdown()
        server.server_close()


def _fetch(url: str, **kw: object) -> object:
    return fetch_conversations(ServiceTarget(url, "tok-123"), allow_private=True, **kw)  # type: ignore[arg-type]


def test_the_export_is_read_with_the_token(service: tuple[str, type[_Answers]]) -> None:
    url, answers = service
    conv = fetch_conversations(ServiceTarget(url, "tok-123"), allow_private=True)
    assert conv.actor == "https://blog.example/actor.json"
    found = conv.for_post("https://blog.example/p/object.json")
    assert found is not None and [r.actor.name for r in found.likes] == ["A"]
    assert answers.seen == [("/.fedipress/api/v1/conversations", "Bearer tok-123")]


@pytest.mark.parametrize(("status", "body", "expected"), [
    (401, b'{"error": "bad token"}', "refused the owner token (bad token); set"
                                     " FEDIPRESS_SERVICE_TOKEN"),
    (404, b"", "no owner API there (404)"),
    (500, b"oops", "the service refused the conversation export (500)"),
    (302, b"", "the service refused the conversation export (302)"),  # no redirect followed
    (200, b"<html>a blog</html>", "without a JSON object; is this a fedipress service?"),
    (200, b'{"format": 9, "objects": {}}', "this fedipress reads format 1"),
    (200, b'{"format": 1, "objects": {"x": {"likes": [7]}}}', "x likes[0] is not an object"),
])
def test_each_wrong_answer_is_one_line(service: tuple[str, type[_Answers]], status: int,
                                       body: bytes, expected: str) -> None:
    url, answers = service
    answers.status, answers.body = status, body
    if status == 302:
        answers.headers = {"Location": "http://127.0.0.1:1/elsewhere"}
    with pytest.raises(ServiceError) as info:
        _fetch(url)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert "tok-123" not in str(info.value)


def test_a_slow_service_times_out(service: tuple[str, type[_Answers]]) -> None:
    url, answers = service
    answers.delay = 1.5
    with pytest.raises(ServiceError, match="cannot be reached .*ReadTimeout"):
        _fetch(url, timeout=httpx.Timeout(0.5))


def test_loopback_needs_the_opt_in(service: tuple[str, type[_Answers]]) -> None:
    url, answers = service
    with pytest.raises(ServiceError, match="FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1"):
        fetch_conversations(ServiceTarget(url, "tok-123"))
    assert answers.seen == []


def test_which_service_the_environment_names() -> None:
    assert conversation_service({}) is None
    assert conversation_service({"FEDIPRESS_SERVICE_TOKEN": "t"}) is None  # no URL: no service
    target = conversation_service({"FEDIPRESS_SERVICE_URL": " https://b.example ",
                                   "FEDIPRESS_SERVICE_TOKEN": "secret"})
    assert target == ServiceTarget("https://b.example/", "secret")
    assert "secret" not in repr(target)
    with pytest.raises(FedipressError, match="needs the owner token"):
        conversation_service({"FEDIPRESS_SERVICE_URL": "https://b.example/"})
    with pytest.raises(FedipressError, match="expected the service's address"):
        conversation_service({"FEDIPRESS_SERVICE_URL": "ftp://b.example/",
                              "FEDIPRESS_SERVICE_TOKEN": "t"})
