"""The dev server: unit tests of its pure parts, and `fedipress serve` as a real subprocess on a
free loopback port serving a fresh `fedipress init` site."""

from __future__ import annotations

import hashlib
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fedipress.config import load_config
from fedipress.generator.build import Builder
from fedipress.generator.devserver import LiveState, inject_html, local_base_url, resolve_request
from support.devserver import Served, make_served_site, start_serve

# --- pure parts -----------------------------------------------------------------------------


def test_inject_html_puts_script_and_escaped_overlay_before_the_last_body_tag() -> None:
    page = b"<html><body><p>x</p><!-- </body> --></body></html>"
    out = inject_html(page, generation=7, error="bad <script>alert(1)</script> & more")
    assert out.endswith(b"</body></html>")
    assert out.startswith(b"<html><body><p>x</p><!-- </body> -->")
    assert b"since=7" in out
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in out
    assert b"<script>alert(1)" not in out
    assert out.index(b"fedipress-build-error") < out.index(b"fedipress-livereload")


def test_inject_html_without_body_appends_and_without_anything_is_identity() -> None:
    assert inject_html(b"<p>x", generation=1, error=None).startswith(b"<p>x<script")
    assert inject_html(b"<p>x</BODY>", generation=None, error=None) == b"<p>x</BODY>"
    assert b"EventSource" not in inject_html(b"</body>", generation=None, error="e")


def test_local_base_url() -> None:
    assert local_base_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert local_base_url("0.0.0.0", 80) == "http://127.0.0.1:80/"
    assert local_base_url("::1", 8001) == "http://[::1]:8001/"


def test_resolve_request_maps_like_a_static_host(tmp_path: Path) -> None:
    root = (tmp_path / "public").resolve()
    (root / "posts" / "a").mkdir(parents=True)
    (root / "posts" / "a" / "index.html").write_text("a")
    (root / "posts" / "empty").mkdir()
    (root / ".well-known").mkdir()
    (root / ".well-known" / "webfinger").write_text("{}")
    for name in (".htaccess", "_headers", ".secret", "index.html"):
        (root / name).write_text("x")
    (tmp_path / "site.yaml").write_text("secret")
    (root / "escape").symlink_to(tmp_path)
    (root / "link.txt").symlink_to(tmp_path / "site.yaml")

    assert resolve_request(root, "/").file == root / "index.html"
    found = resolve_request(root, "/posts/a/")
    assert (found.file, found.rel) == (root / "posts/a/index.html", "posts/a/index.html")
    assert resolve_request(root, "/posts/a").redirect == "/posts/a/"
    assert resolve_request(root, "/posts/empty/").file is None  # no listing
    assert resolve_request(root, "/.well-known/webfinger").rel == ".well-known/webfinger"
    for refused in ("/../site.yaml", "/%2e%2e/site.yaml", "/posts/../../site.yaml",
                    "/escape/site.yaml", "/link.txt", "/.htaccess", "/_headers", "/.secret",
                    "/posts/a/%00", "/..%5csite.yaml", "relative"):
        assert resolve_request(root, refused).file is None, refused


def test_live_state_wakes_waiters_and_stops() -> None:
    live = LiveState()
    assert live.wait_change(live.generation, 0.01) == live.generation  # timeout: unchanged
    live.publish("broken")
    assert live.wait_change(1, 1.0) == 2
    assert live.snapshot() == (2, "broken")
    live.stop()
    assert live.wait_change(2, 1.0) is None


# --- the real server ------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = start_serve(make_served_site(tmp_path / "blog"))
    yield server
    if server.proc.poll() is None:
        code, err = server.stop()
        assert code == 0, err


def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_serves_pages_and_activitypub_like_production(served: Served) -> None:
    host = served.url.removeprefix("http://").rstrip("/")
    status, headers, body = served.get("/posts/hello-world/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    # links point at this server (base_url replaced), and the live-reload script is injected
    assert f'href="{served.url}posts/hello-world/object.json"'.encode() in body
    assert b"/__fedipress/livereload" in body
    on_disk = (served.site / ".fedipress" / "serve" / "posts" / "hello-world" /
               "index.html").read_bytes()
    assert b"livereload" not in on_disk and int(headers["content-length"]) == len(body)

    status, headers, body = served.get("/actor.json")
    assert (status, headers["content-type"]) == (200, "application/activity+json")
    assert f'"id": "{served.url}actor.json"'.encode() in body
    assert served.get("/posts/hello-world/object.json")[1]["content-type"] == \
        "application/activity+json"
    status, headers, head_body = served.get("/actor.json", method="HEAD")
    assert status == 200 and head_body == b"" and int(headers["content-length"]) > 100
    assert served.get("/actor.json", headers={"If-None-Match": headers["etag"]})[0] == 304

    status, headers, body = served.get(f"/.well-known/webfinger?resource=acct:you@{host}")
    assert status == 200 and headers["content-type"] == "application/jrd+json"
    assert headers["access-control-allow-origin"] == "*"
    assert f'"subject": "acct:you@{host}"'.encode() in body
    assert served.get(f"/.well-known/webfinger?resource={served.url}actor.json")[0] == 200
    assert served.get(f"/.well-known/webfinger?resource=acct:bob@{host}")[0] == 404
    assert served.get("/.well-known/webfinger?resource=acct:you@other.example")[0] == 404
    assert served.get("/.well-known/webfinger")[0] == 400
    assert served.get("/.well-known/nodeinfo")[1]["access-control-allow-origin"] == "*"

    status, headers, _ = served.get("/posts/hello-world")
    assert status == 301 and headers["location"] == "/posts/hello-world/"
    status, headers, body = served.get("/no/such/page/")
    assert status == 404 and b"livereload" in body and headers["content-type"].startswith(
        "text/html")
    assert served.get("/posts/")[0] == 404  # no directory listing
    assert served.get("/", method="POST")[0] == 405


def test_path_traversal_is_refused(served: Served) -> None:
    for raw in (b"/../site.yaml", b"/%2e%2e/site.yaml", b"/posts/..%2f..%2fsite.yaml",
                b"/.fedipress/private-key.pem", b"/../.fedipress/private-key.pem"):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"GET " + raw + b" HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.0 404"), raw
        assert b"base_url" not in data and b"PRIVATE KEY" not in data


def _open_events(served: Served, since: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=15)
    sock.sendall(f"GET /__fedipress/livereload?since={since} HTTP/1.0\r\n\r\n".encode())
    return sock


def _read_until(sock: socket.socket, marker: bytes, timeout: float = 15.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        assert time.monotonic() < deadline, f"no {marker!r} in {data!r}"
        chunk = sock.recv(4096)
        assert chunk, f"stream closed before {marker!r}: {data!r}"
        data += chunk
    return data


def _generation(body: bytes) -> int:
    marker = b"livereload?since="
    start = body.index(marker) + len(marker)
    return int(body[start:body.index(b'"', start)])


def test_edit_rebuilds_and_sends_a_reload_event(served: Served) -> None:
    _, _, body = served.get("/posts/hello-world/")
    with _open_events(served, _generation(body)) as events:
        head = _read_until(events, b"retry:")
        assert b"text/event-stream" in head
        started = time.monotonic()
        _edit(served.site / "content/posts/hello-world.md", "This is the first post",
              "This is the edited post")
        _read_until(events, b"event: reload")
    assert time.monotonic() - started < 5
    _, _, body = served.get("/posts/hello-world/")
    assert b"This is the edited post" in body
    # a client that missed the event (older generation) is told to reload at once
    with _open_events(served, 1) as events:
        _read_until(events, b"event: reload")


def test_build_errors_show_in_the_page_and_clear(served: Served) -> None:
    post = served.site / "content/posts/hello-world.md"
    good = post.read_text(encoding="utf-8")
    post.write_text(good.replace("title: Hello, world", "title: [unclosed"), encoding="utf-8")

    def page() -> bytes:
        return served.get("/posts/hello-world/")[2]

    _until(lambda: b"fedipress-build-error" in page(), "the error overlay")
    assert b"hello-world.md" in page()  # names the file
    assert b"Hello, world" in page()  # the last good build is still served under it
    assert b"fedipress-build-error" in served.get("/missing/")[2]

    post.write_text(good.replace("Hello, world", "Hello again"), encoding="utf-8")
    _until(lambda: b"fedipress-build-error" not in page(), "the overlay to clear")
    assert b"Hello again" in page()

    config = served.site / "site.yaml"
    good_config = config.read_text(encoding="utf-8")
    config.write_text(good_config.replace("posts_per_page: 10", "posts_per_page: many"),
                      encoding="utf-8")
    _until(lambda: b"posts_per_page" in page(), "the site.yaml error overlay")
    assert b"site.yaml:" in page()
    # an unrelated save does not hide a site.yaml that is still broken
    _edit(post, "Hello again", "Hello there")
    time.sleep(1.0)
    assert b"fedipress-build-error" in page()
    config.write_text(good_config.replace("title: ", "title: Renamed ", 1), encoding="utf-8")
    _until(lambda: b"fedipress-build-error" not in page(), "the config overlay to clear")
    assert b"Renamed" in page() and b"Hello there" in page()
    assert served.proc.poll() is None


def test_sigint_stops_cleanly(served: Served) -> None:
    code, err = served.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err


def test_explicit_base_url_and_no_reload(tmp_path: Path) -> None:
    server = start_serve(make_served_site(tmp_path / "blog"), "--base-url", "http://blog.test/",
                    "--no-reload")
    try:
        _, _, body = server.get("/")
        assert b'href="http://blog.test/actor.json"' in body or b"http://blog.test/" in body
        assert b"livereload" not in body
        assert server.get("/__fedipress/livereload")[0] == 404
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err
    # the dev server never writes the federation manifest `publish` relies on
    assert not (server.site / ".fedipress" / "manifest.json").exists()


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build_quietly(site: Path) -> tuple[int, int, int, int]:
    builder = Builder(load_config(site / "site.yaml"), log=lambda line: None)
    result = builder.build()
    assert not result.problems
    return result.written, result.removed, result.skipped_render, result.files


def test_serve_leaves_the_output_folder_alone(tmp_path: Path) -> None:
    site = make_served_site(tmp_path / "blog")
    written, _, _, files = _build_quietly(site)
    assert written == files > 10
    public = site / "public"
    before = _hashes(public)
    stat_before = {p: p.stat().st_mtime_ns for p in public.rglob("*")}
    server = start_serve(site)
    try:
        assert ".fedipress/serve" in server.line, server.line
        _, _, body = server.get("/posts/hello-world/")
        assert f'href="{server.url}posts/hello-world/object.json"'.encode() in body
        # a save rebuilds the preview, still not public/
        post = site / "content" / "posts" / "hello-world.md"
        post.write_text(post.read_text(encoding="utf-8") + "\nEdited while serving.\n",
                        encoding="utf-8")
        _until(lambda: b"Edited while serving." in server.get("/posts/hello-world/")[2],
               "the edit to be served")
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err
    assert ".fedipress/serve" in err and "left untouched" in err
    assert _hashes(public) == before
    assert {p: p.stat().st_mtime_ns for p in public.rglob("*")} == stat_before
    preview = site / ".fedipress" / "serve" / "posts" / "hello-world" / "index.html"
    assert server.url.encode() in preview.read_bytes()
    assert server.url.encode() not in b"".join(p.read_bytes() for p in public.rglob("*")
                                               if p.is_file())
    # The edit changes the real build; undo it and the real build has nothing to do: the
    # serve build neither replaced its manifest nor removed its files.
    post.write_text(post.read_text(encoding="utf-8").replace("\nEdited while serving.\n", ""),
                    encoding="utf-8")
    written, removed, skipped, files = _build_quietly(site)
    assert (written, removed) == (0, 0)
    assert skipped == files  # not even rendered again: the manifest is still the real one
    assert _hashes(public) == before
    # ...and a second serve (another port: every page changes) still leaves public/ alone
    server = start_serve(site, "--no-reload")
    try:
        assert server.get("/posts/hello-world/")[0] == 200
    finally:
        code, err = server.stop()
    assert code == 0 and "0 removed" in err, err
    assert _hashes(public) == before


def test_serve_with_explicit_base_url_builds_into_the_output_folder(tmp_path: Path) -> None:
    site = make_served_site(tmp_path / "blog")
    server = start_serve(site, "--base-url", "http://blog.test/", "--no-reload")
    try:
        assert server.get("/posts/hello-world/")[0] == 200
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert str(site / "public") in server.line or "/public" in server.line, server.line
    page = site / "public" / "posts" / "hello-world" / "index.html"
    assert b"http://blog.test/posts/hello-world/" in page.read_bytes()
    assert not (site / ".fedipress" / "serve").exists()
