"""`fedipress doctor` against real servers on loopback: `fedipress serve` (passes), the same
site behind `python -m http.server` (wrong content types), and a copy with a broken WebFinger."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fedipress.cli import main
from fedipress.generator.contenttypes import content_type_for, needs_cors
from support.devserver import make_served_site, start_serve


def _doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["doctor", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _built_site(tmp_path: Path, port: int) -> Path:
    site = make_served_site(tmp_path / "blog")
    assert main(["build", "-q", "--config", str(site / "site.yaml"),
                 "--base-url", f"http://127.0.0.1:{port}/"]) == 0
    return site


class _ProductionHandler(SimpleHTTPRequestHandler):
    """A correctly configured static host (what `fedipress hosting` sets up)."""

    def guess_type(self, path: Any) -> str:
        rel = Path(str(path)).relative_to(Path(self.directory).resolve()).as_posix()
        return content_type_for(rel)

    def end_headers(self) -> None:
        if needs_cors(self.path.split("?", 1)[0]):
            self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def static_host() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path, port: int) -> None:
        handler = partial(_ProductionHandler, directory=str(directory.resolve()))
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_doctor_passes_against_fedipress_serve(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    served = start_serve(make_served_site(tmp_path / "blog"))
    try:
        code, out, err = _doctor(capsys, served.url, "--allow-private-addresses")
        assert code == 0, out + err
        for name in ("actor", "public key", "WebFinger (actor host)", "post object",
                     "post page", "NodeInfo"):
            assert f"PASS  {name}:" in out
        assert "FAIL" not in out and "All checks passed" in out
        handle = served.url.removeprefix("http://").rstrip("/")
        code, out, err = _doctor(capsys, f"you@{handle}", "--allow-private-addresses")
        assert code == 0, out + err
        assert "PASS  WebFinger (handle):" in out
    finally:
        assert served.stop()[0] == 0


def test_doctor_fails_against_plain_http_server(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    site = _built_site(tmp_path, port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(site / "public")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.05)
        code, out, _ = _doctor(capsys, f"http://127.0.0.1:{port}/", "--allow-private-addresses")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert code == 1
    assert (f"FAIL  actor: http://127.0.0.1:{port}/actor.json is served as application/json;"
            " Mastodon ignores it") in out
    assert "Content-Type application/activity+json" in out and "`fedipress hosting`" in out
    assert "check failed" in out


def test_doctor_catches_a_self_link_that_is_not_the_actor_id(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], static_host: Any) -> None:
    port = _free_port()
    site = _built_site(tmp_path, port)
    copy = tmp_path / "copy"
    shutil.copytree(site / "public", copy)
    static_host(copy, port)
    base = f"http://127.0.0.1:{port}/"
    # the unmodified copy on a correctly configured host passes ...
    code, out, _ = _doctor(capsys, base, "--allow-private-addresses")
    assert code == 0, out
    # ... and one whose WebFinger points elsewhere does not
    webfinger = copy / ".well-known" / "webfinger"
    jrd = json.loads(webfinger.read_text())
    for link in jrd["links"]:
        if link["rel"] == "self":
            link["href"] = f"{base}users/you"
    webfinger.write_text(json.dumps(jrd))
    code, out, _ = _doctor(capsys, base, "--allow-private-addresses")
    assert code == 1
    assert (f"FAIL  WebFinger (actor host): http://127.0.0.1:{port}/.well-known/webfinger"
            f"?resource=acct%3Ayou%40127.0.0.1%3A{port}: the self link is {base}users/you, but"
            f" the actor id is {base}actor.json") in out
    assert "PASS  post object:" in out  # the other checks still run


def test_doctor_refuses_private_addresses_without_the_flag(
        capsys: pytest.CaptureFixture[str]) -> None:
    for target in ("https://127.0.0.1:9/", "http://127.0.0.1:9/", "https://10.0.0.1/",
                   "https://localhost/", "you@127.0.0.1:9"):
        code, out, err = _doctor(capsys, target)
        assert code == 2, (target, out, err)
        assert "--allow-private-addresses" in err and out == ""
        assert "Traceback" not in err


def test_doctor_reports_an_unreachable_blog_as_a_failure(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _doctor(capsys, f"http://127.0.0.1:{_free_port()}/",
                           "--allow-private-addresses")
    assert code == 1
    assert "FAIL  home page:" in out and "cannot be fetched" in out


def test_doctor_reports_garbage_webfinger_and_nodeinfo_without_a_traceback(
        tmp_path: Path, static_host: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # A host answering 200 with bytes that are not JSON (a misconfigured proxy's HTML page,
    # say) must give a FAIL/WARN line, never an exception.
    port = _free_port()
    site = _built_site(tmp_path, port)
    public = site / "public"
    (public / ".well-known" / "webfinger").write_bytes(b"<html>not json</html>")
    (public / "nodeinfo" / "2.1").write_bytes(b"{not json")
    static_host(public, port)
    code, out, _ = _doctor(capsys, f"you@127.0.0.1:{port}", "--allow-private-addresses")
    assert code == 1, out
    assert "FAIL  WebFinger:" in out and "does not lead to an actor" in out
    code, out, _ = _doctor(capsys, f"http://127.0.0.1:{port}/", "--allow-private-addresses")
    assert "WARN  NodeInfo:" in out
