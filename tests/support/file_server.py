"""A loopback HTTP server of fixed files that records every GET: a remote server's avatars, or
a service's export, standing still for a test.

    server = FileServer()
    server.files["/a.png"] = ("image/png", data)
    server.url("/a.png"); server.gets  # ["/a.png", ...] in the order asked
    server.close()
"""

from __future__ import annotations

import http.server
import threading

__all__ = ["FileServer"]


class FileServer:
    """path -> (content type, body); anything else is a 404. Every GET is recorded."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.gets: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer.gets.append(self.path)
                kind, body = outer.files.get(self.path, ("text/plain", b""))
                self.send_response(200 if self.path in outer.files else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
