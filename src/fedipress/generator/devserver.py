"""`fedipress serve`: build, serve the output folder like a production host, rebuild on save.

Three threads besides the main one:

  http       a ThreadingHTTPServer serving the output folder with the content types a
             production host must send (contenttypes.content_type_for), the WebFinger query
             answered only for this blog's account, 404.html for missing files, no listings
  watcher    watchdog on site.yaml, content/ and themes/; events are collected and debounced
  rebuild    one Builder kept for the whole session (parsed content and fingerprints stay in
             memory), so a save rebuilds only what changed

HTML is changed on the way out, never on disk: a tiny script that listens to the server-sent
events at /__fedipress/livereload is injected before </body>, and after a failed build an
overlay with the (escaped) error text. The next good build clears it.
"""

from __future__ import annotations

import html
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ..config import SiteConfig, load_config
from ..errors import ConfigError, FedipressError
from .build import Builder
from .contenttypes import content_type_for, needs_cors

if TYPE_CHECKING:
    from ..activitypub.webfinger import WebfingerAnswer

__all__ = [
    "LIVERELOAD_PATH",
    "PREVIEW_DIR_NAME",
    "DevServer",
    "LiveState",
    "inject_html",
    "local_base_url",
    "ServeOptions",
    "resolve_request",
    "serve",
]

LIVERELOAD_PATH = "/__fedipress/livereload"
# The folder inside the state folder (.fedipress/serve) a local-URL build goes to.
PREVIEW_DIR_NAME = "serve"
DEBOUNCE_SECONDS = 0.15
KEEPALIVE_SECONDS = 15.0
# Files a production host keeps private (its own configuration) are not served either.
_HIDDEN_FILES = frozenset({"_headers", "_redirects", ".htaccess"})
# Editor droppings that are not content: saving them should not trigger a build.
_IGNORED_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload")
_IGNORED_PREFIXES = (".#", ".~")
_BUILD_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- pure helpers ---------------------------------------------------------------------------


def local_base_url(host: str, port: int) -> str:
    """The base URL that makes links work when the site is served on host:port."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # a wildcard bind is reached through loopback
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


_SCRIPT = (
    '<script id="fedipress-livereload">(function(){{'
    'var es=new EventSource("{path}?since={generation}");'
    'es.addEventListener("reload",function(){{es.close();location.reload();}});'
    "}})();</script>"
)

_OVERLAY = (
    '<div id="fedipress-build-error" role="alert" style="position:fixed;inset:0;'
    "z-index:2147483647;overflow:auto;margin:0;padding:2rem;background:rgba(40,0,0,.94);"
    'color:#fff;font:14px/1.5 ui-monospace,monospace;text-align:left">'
    "<p style=\"margin:0 0 1em;font-weight:bold\">fedipress: the last build failed.</p>"
    '<pre style="white-space:pre-wrap;margin:0 0 1em">{text}</pre>'
    "<p style=\"margin:0\">The site shows the previous good build. Fix the problem and save;"
    " this page reloads by itself.</p></div>"
)


def inject_html(body: bytes, *, generation: int | None, error: str | None) -> bytes:
    """`body` with the live-reload script (unless `generation` is None) and, when `error` is
    set, the error overlay inserted before the last </body> (appended when there is none)."""
    extra = ""
    if error is not None:
        extra += _OVERLAY.format(text=html.escape(error))
    if generation is not None:
        extra += _SCRIPT.format(path=LIVERELOAD_PATH, generation=generation)
    if not extra:
        return body
    at = body.lower().rfind(b"</body>")
    data = extra.encode("utf-8")
    if at < 0:
        return body + data
    return body[:at] + data + body[at:]


@dataclass(frozen=True)
class Resolved:
    """A request path mapped into the output folder."""

    file: Path | None  # the file to serve, or None (404)
    rel: str  # site-relative path of that file ("posts/x/index.html"), for its content type
    redirect: str | None = None  # a folder requested without its trailing slash


def resolve_request(root: Path, url_path: str) -> Resolved:
    """Map a (percent-encoded) URL path onto `root` (resolved) the way a static host does.

    Folders serve their index.html (a folder without its slash is redirected to it), nothing
    outside `root` is ever served (`..`, symlinks leading out), and neither are dotfiles
    (except .well-known/) nor host configuration files.
    """
    raw = unquote(url_path)
    if "\0" in raw or "\\" in raw or not raw.startswith("/"):
        return Resolved(None, "")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return Resolved(None, "")
    for i, part in enumerate(parts):
        if part in _HIDDEN_FILES or (part.startswith(".") and not (i == 0 and
                                                                  part == ".well-known")):
            return Resolved(None, "")
    candidate = root.joinpath(*parts)
    try:
        real = candidate.resolve()
    except (OSError, RuntimeError):
        return Resolved(None, "")
    if real != root and root not in real.parents:
        return Resolved(None, "")
    rel = "/".join(parts)
    if real.is_dir():
        if not raw.endswith("/"):
            return Resolved(None, rel, redirect=quote("/" + rel + "/"))
        index = real / "index.html"
        rel = f"{rel}/index.html" if rel else "index.html"
        return Resolved(index if index.is_file() else None, rel)
    if real.is_file():
        return Resolved(real, rel)
    return Resolved(None, rel)


# --- live state shared by the threads -------------------------------------------------------


class LiveState:
    """The build generation and the last build error, with a condition to wait for changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.generation = 1
        self.error: str | None = None
        self.stopping = False

    def publish(self, error: str | None) -> None:
        with self._cond:
            self.generation += 1
            self.error = error
            self._cond.notify_all()

    def snapshot(self) -> tuple[int, str | None]:
        with self._cond:
            return self.generation, self.error

    def wait_change(self, since: int, timeout: float) -> int | None:
        """The generation once it differs from `since`; the same after `timeout`; None when
        the server is stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self.generation != since or self.stopping, timeout)
            return None if self.stopping else self.generation

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()


# --- HTTP -----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # open live-reload streams must not keep the process alive
    dev: DevServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "fedipress-dev"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.dev.verbose:
            _stderr(f"{self.address_string()} {format % args}")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.path.startswith(LIVERELOAD_PATH):
            super().log_request(code, size)

    # Production static hosts answer only GET and HEAD (and CORS preflights).
    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("Allow", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Accept, Content-Type")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _not_allowed(self) -> None:
        self._plain(405, "405 Method Not Allowed (this is a static site)\n",
                    extra={"Allow": "GET, HEAD, OPTIONS"}, head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    # -- responses --

    def _plain(self, status: int, text: str, *, head: bool,
               extra: dict[str, str] | None = None) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, *, head: bool) -> None:
        dev = self.server.dev
        parts = urlsplit(self.path)
        if parts.path == LIVERELOAD_PATH and dev.reload:
            self._livereload(parse_qs(parts.query), head=head)
            return
        found = resolve_request(dev.output_dir, parts.path)
        if found.redirect is not None:
            location = found.redirect + (f"?{parts.query}" if parts.query else "")
            self._plain(301, f"moved to {location}\n", head=head, extra={"Location": location})
            return
        if found.rel == ".well-known/webfinger" and found.file is not None:
            answer = dev.webfinger(found.file, parts.query)
            if answer is not None:
                self._bytes(answer.status, answer.body, answer.content_type, head=head,
                            extra=dict(answer.headers))
                return
        if found.file is None or not self._send_file(found.file, found.rel, 200, head=head):
            page = dev.output_dir / "404.html"
            if not (page.is_file() and self._send_file(page, "404.html", 404, head=head)):
                generation, error = dev.live.snapshot()
                if error is not None or dev.reload:
                    body = inject_html(b"<!doctype html><title>Not found</title><body>"
                                       b"<h1>404 Not Found</h1></body>",
                                       generation=generation if dev.reload else None,
                                       error=error)
                    self._bytes(404, body, "text/html; charset=utf-8", head=head)
                else:
                    self._plain(404, "404 Not Found\n", head=head)

    def _bytes(self, status: int, body: bytes, content_type: str, *, head: bool,
               extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_file(self, file: Path, rel: str, status: int, *, head: bool) -> bool:
        """Send `file`; False when it vanished meanwhile (a rebuild removed it)."""
        dev = self.server.dev
        content_type = content_type_for(rel)
        extra: dict[str, str] = {}
        if needs_cors(rel):
            extra["Access-Control-Allow-Origin"] = "*"
        try:
            st = file.stat()
            data = file.read_bytes()
        except OSError:
            return False
        if content_type.startswith("text/html"):
            generation, error = dev.live.snapshot()
            body = inject_html(data, generation=generation if dev.reload else None, error=error)
            self._bytes(status, body, content_type, head=head, extra=extra)
            return True
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        extra["ETag"] = etag
        extra["Last-Modified"] = formatdate(st.st_mtime, usegmt=True)
        if status == 200 and self._not_modified(etag, st.st_mtime):
            self.send_response(304)
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            return True
        self._bytes(status, data, content_type, head=head, extra=extra)
        return True

    def _not_modified(self, etag: str, mtime: float) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:
            return etag in [m.strip() for m in match.split(",")] or match.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return int(mtime) <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
        return False

    def _livereload(self, query: dict[str, list[str]], *, head: bool) -> None:
        live = self.server.dev.live
        current, _ = live.snapshot()
        try:
            since = int(query.get("since", [str(current)])[0])
        except ValueError:
            since = current
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if head:
            return
        try:
            self.wfile.write(b"retry: 500\n\n")
            self.wfile.flush()
            while True:
                generation = live.wait_change(since, KEEPALIVE_SECONDS)
                if generation is None:
                    return
                if generation != since:
                    self.wfile.write(f"event: reload\ndata: {generation}\n\n".encode())
                    since = generation
                else:
                    self.wfile.write(b": keep-alive\n\n")  # also notices closed clients
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            return


# --- watching -------------------------------------------------------------------------------


def _ignored_name(path: str) -> bool:
    name = Path(path).name
    # 4913: the file vim creates to test whether a folder is writable
    return name.endswith(_IGNORED_SUFFIXES) or name.startswith(_IGNORED_PREFIXES) or \
        name == "4913"


class _Watcher:
    """Feeds changed paths under site.yaml, content/ and themes/ to `on_change`."""

    def __init__(self, config: SiteConfig, on_change: Callable[[Iterable[Path]], None]) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        self.config = config
        self.observer = Observer()
        self.scheduled: set[Path] = set()
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._event(event, on_change)

        self.handler = Handler()
        self.observer.daemon = True
        # site.yaml and the appearance of content/ or themes/ are seen in the site folder
        # itself, watched without recursion so the output and state folders stay unwatched.
        self.observer.schedule(self.handler, str(config.root), recursive=False)
        self._schedule_trees()

    def _trees(self) -> list[Path]:
        return [self.config.content_dir, self.config.root / "themes"]

    def _schedule_trees(self) -> None:
        for tree in self._trees():
            if tree not in self.scheduled and tree.is_dir():
                self.observer.schedule(self.handler, str(tree), recursive=True)
                self.scheduled.add(tree)

    def _event(self, event: Any, on_change: Callable[[Iterable[Path]], None]) -> None:
        if event.event_type not in _BUILD_EVENTS:
            return  # "opened"/"closed_no_write": the build reading files must not loop
        paths = [p if isinstance(p, str) else p.decode()
                 for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        relevant: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.parent == self.config.root:
                if path == self.config.config_file:
                    relevant.append(path)
                elif path in self._trees():
                    self._schedule_trees()  # content/ or themes/ was just created
                    relevant.append(path)
                continue
            if event.is_directory and event.event_type == "modified":
                continue  # a folder's mtime changes with every file written in it
            if not _ignored_name(raw):
                relevant.append(path)
        if relevant:
            on_change(relevant)

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)


# --- the server -----------------------------------------------------------------------------


class _DevBuilder(Builder):
    """The Builder, minus the federation manifest: a dev build (with a local base_url) must
    never become what `publish --no-build` announces."""

    def _write_federation_manifest(self, site: Any, public_key: bytes,
                                   rendered: Mapping[str, object] | None = None) -> None:
        return None


class DevServer:
    """Build `config`'s site and serve it on host:port; `start()` binds and builds, `stop()`
    shuts everything down. Port 0 picks a free port (see `url`)."""

    def __init__(
        self,
        config: SiteConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        base_url: str | None = None,
        drafts: bool = False,
        future: bool = False,
        reload: bool = True,
        verbose: bool = True,
        log: Log = _stderr,
    ) -> None:
        self.config = config
        self.host, self.port = host, port
        self.base_url_override = base_url
        self.drafts, self.future, self.reload = drafts, future, reload
        self.verbose, self.log = verbose, log
        self.live = LiveState()
        self._lock = threading.Condition()
        self._pending: set[Path] = set()
        self._last_event = 0.0
        self._config_broken = False
        self._threads: list[threading.Thread] = []
        self._watcher: _Watcher | None = None
        self._httpd: _Server | None = None
        self.builder: Builder | None = None
        # Set by prepare_config when serving local URLs: the folder built and served instead
        # of the output folder.
        self.preview_dir: Path | None = None
        self.url = ""

    # -- lifecycle --

    def bind(self) -> str:
        """Open the listening socket; returns the URL (with the real port when port was 0)."""
        server_class: type[_Server] = _Server
        if ":" in self.host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self._httpd = server_class((self.host, self.port), _Handler)
        except OSError as error:
            raise FedipressError(
                f"cannot listen on {self.host}:{self.port} ({error.strerror}); pick another"
                " port with --port") from None
        self._httpd.dev = self
        self.port = int(self._httpd.server_address[1])
        self.url = local_base_url(self.host, self.port)
        return self.url

    def prepare_config(self) -> None:
        """Point base_url at this server unless the user chose one (--base-url).

        The local-URL site is then built into a preview folder inside the state folder
        (never published), never into the output folder: deploying public/ after serving
        must not ship links to 127.0.0.1. With --base-url the output folder is used, as
        before (previews and tests rely on it)."""
        if self.base_url_override is not None:
            return
        self.preview_dir = self.config.state_dir / PREVIEW_DIR_NAME
        if self.config.base_url != self.url:
            self.log(f"base_url {self.config.base_url} is replaced by {self.url} while serving,"
                     f" so links work locally; the site is built into {self.preview_dir},"
                     f" {self.config.output_dir} is left untouched")
            self.config = self._load_config()

    def _load_config(self) -> SiteConfig:
        wanted = self.base_url_override or self.url
        return load_config(self.config.config_file, base_url=wanted)

    @property
    def output_dir(self) -> Path:
        assert self.builder is not None
        return self.builder.output_dir

    def webfinger(self, file: Path, query: str) -> WebfingerAnswer | None:
        """The RFC 7033 answer for the built WebFinger `file`; None when it vanished meanwhile
        (a rebuild removed it) so the request gets the usual 404."""
        from ..activitypub.webfinger import webfinger_answer

        assert self.builder is not None
        try:
            built = file.read_bytes()
        except OSError:
            return None
        return webfinger_answer(self.builder.config, query, built)

    def first_build(self) -> None:
        """The initial build, run before any thread starts (forked workers are then safe)."""
        self.builder = _DevBuilder(
            self.config, drafts=self.drafts, future=self.future, log=self.log,
            reload_config=self._load_config, output_dir=self.preview_dir,
            federation_manifest=False,
        )
        self._build(None)
        # Later rebuilds run beside the server threads: no forked workers there.
        self.builder.workers = 1

    def start_threads(self) -> None:
        assert self._httpd is not None
        http = threading.Thread(target=self._httpd.serve_forever, name="fedipress-http",
                                kwargs={"poll_interval": 0.2}, daemon=True)
        self._threads.append(http)
        if self.reload:
            self._watcher = _Watcher(self.config, self.changed)
            self._watcher.start()
            self._threads.append(threading.Thread(target=self._rebuild_loop,
                                                  name="fedipress-rebuild", daemon=True))
        for thread in self._threads:
            thread.start()

    def start(self) -> str:
        self.bind()
        self.prepare_config()
        self.first_build()
        self.start_threads()
        return self.url

    def stop(self) -> None:
        self.live.stop()
        with self._lock:
            self._lock.notify_all()
        if self._watcher is not None:
            self._watcher.stop()
        if self._httpd is not None:
            if any(t.name == "fedipress-http" and t.is_alive() for t in self._threads):
                self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- rebuilding --

    def changed(self, paths: Iterable[Path]) -> None:
        with self._lock:
            self._pending.update(paths)
            self._last_event = time.monotonic()
            self._lock.notify_all()

    def _rebuild_loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._pending) or self.live.stopping)
                if self.live.stopping:
                    return
                # Debounce: an editor's save (and `git checkout`) is a burst of events.
                while (delay := self._last_event + DEBOUNCE_SECONDS - time.monotonic()) > 0:
                    self._lock.wait(delay)
                    if self.live.stopping:
                        return
                paths, self._pending = self._pending, set()
            self._build(paths)

    def _build(self, paths: set[Path] | None) -> None:
        assert self.builder is not None
        changed: set[Path] | None = None if paths is None else set(paths)
        if changed is not None and self._config_broken:
            changed.add(self.config.config_file)  # retry the config until it loads again
        _, previous_error = self.live.snapshot()
        try:
            result = self.builder.build(changed)
        except FedipressError as error:
            # A site.yaml that no longer loads is retried on every later change until it does.
            self._config_broken = isinstance(error, ConfigError)
            text = str(error)
            self.log("build failed:\n" + "\n".join(f"  {line}" for line in text.splitlines()))
            self.live.publish(text)
            return
        except Exception:  # a bug in fedipress or a theme: show it, keep serving
            text = traceback.format_exc()
            self.log(text.rstrip())
            self.live.publish(text)
            return
        self._config_broken = False
        self.log(result.summary())
        if paths is None:
            return
        if result.written or result.removed or previous_error is not None:
            self.live.publish(None)


# --- the command ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    """`fedipress serve`'s choices; `base_url` is --base-url's (None: a local address is
    made from host and port, see DevServer)."""

    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str | None = None
    drafts: bool = False
    future: bool = False
    reload: bool = True


def serve(config: SiteConfig, options: ServeOptions, *, out: Log, log: Log = _stderr) -> None:
    """`fedipress serve`: serve until Ctrl-C or SIGTERM. `out` gets the one line saying where
    the blog is served; `log` gets builds, requests and "stopped"."""
    server = DevServer(
        config,
        host=options.host,
        port=options.port,
        base_url=options.base_url,
        drafts=options.drafts,
        future=options.future,
        reload=options.reload,
        log=log,
    )
    stop = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Until the threads run, both signals interrupt the (possibly long) first build.
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        try:
            server.start()
        except KeyboardInterrupt:
            server.stop()
            log("stopped")
            return
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        out(f"Serving {server.url} from {server.output_dir} (Ctrl-C to stop)")
        while not stop.wait(0.5):
            pass
        server.stop()
        log("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
