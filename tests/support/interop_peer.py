"""Drive the independent ActivityPub peer (tests/interop/peer.mjs, Fedify on Node 22) from tests.

Interop is judged by an implementation that is not ours. This module starts that peer as a
subprocess on 127.0.0.1, calls its test-only control API, and runs one-shot Fedify lookups:

    peer = start_peer(tmp_path)              # serves @bob@127.0.0.1:<port>; stop() kills it
    peer.follow("tester@127.0.0.1:8001")     # signed Follow from bob to the blog
    peer.wait_for(lambda a: a["type"] == "Accept")
    lookup("tester@127.0.0.1:8001")          # what Fedify resolved, as a dict

Tests using it are marked `@pytest.mark.interop` and call `require_harness()` (or use the
`interop_peer` fixture of tests/conftest.py, which does): without
tests/interop/node_modules they skip on a workstation, but fail in CI, where a missing harness
is a broken build. See tests/interop/README.md for the log format and the control API.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

__all__ = [
    "HARNESS_DIR",
    "NODE",
    "PEER_SCRIPT",
    "Peer",
    "PeerError",
    "free_port",
    "harness_available",
    "lookup",
    "require_harness",
    "start_peer",
]

HARNESS_DIR = Path(__file__).resolve().parents[1] / "interop"
NODE = HARNESS_DIR / "node_modules" / ".bin" / "node"
PEER_SCRIPT = HARNESS_DIR / "peer.mjs"
_FEDIFY = HARNESS_DIR / "node_modules" / "@fedify" / "fedify" / "package.json"

START_TIMEOUT = 30.0
LOOKUP_TIMEOUT = 60.0
CONTROL_TIMEOUT = 45.0


class PeerError(RuntimeError):
    """The peer did not start, or a control call failed (the message carries Fedify's reasons)."""


def harness_available() -> bool:
    return NODE.exists() and PEER_SCRIPT.exists() and _FEDIFY.exists()


def require_harness() -> None:
    """Skip without the Node harness, except in CI (CI env var set), where that is a failure."""
    if harness_available():
        return
    message = (
        f"interop harness missing: {NODE} or @fedify/fedify not installed;"
        " run `npm ci` in tests/interop (scripts/test does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Peer:
    """A running peer: @username@127.0.0.1:port. Use as a context manager or call stop()."""

    port: int
    username: str
    log_path: Path
    output_path: Path
    process: subprocess.Popen[bytes]
    _output: IO[bytes]
    _client: httpx.Client = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def handle(self) -> str:
        return f"{self.username}@127.0.0.1:{self.port}"

    @property
    def actor_id(self) -> str:
        return f"{self.base_url}/users/{self.username}"

    @property
    def inbox(self) -> str:
        return f"{self.actor_id}/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    # --- control API -------------------------------------------------------------------------

    def _post(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(f"{self.base_url}/_control/{action}", json=body)
        data: dict[str, Any] = response.json()
        if response.status_code != 200 or not data.get("ok"):
            raise PeerError(f"peer {action} failed: {json.dumps(data, indent=1)}")
        return data

    def _get(self, what: str) -> list[dict[str, Any]]:
        response = self._client.get(f"{self.base_url}/_control/{what}")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def follow(self, handle: str) -> dict[str, Any]:
        """WebFinger + fetch `handle` (or an actor URL) with Fedify, send a signed Follow."""
        key = "actor" if handle.startswith(("http://", "https://")) else "handle"
        return self._post("follow", {key: handle})

    def undo_follow(self, follow_id: str | None = None) -> dict[str, Any]:
        """Undo the given (default: the last) Follow this peer sent."""
        return self._post("undo-follow", {} if follow_id is None else {"follow": follow_id})

    def like(self, url: str) -> dict[str, Any]:
        return self._post("like", {"object": url})

    def announce(self, url: str) -> dict[str, Any]:
        return self._post("announce", {"object": url})

    def reply(
        self, url: str, html: str, *, visibility: str = "public", to: str | None = None
    ) -> dict[str, Any]:
        """A Create(Note) in reply to `url`, to its author (or to the actor `to`: a reply to a
        reply sent to the blog); `visibility` is public, unlisted, followers or direct, addressed
        as Mastodon does. The result has "id" and "note"."""
        body: dict[str, Any] = {"object": url, "content": html, "visibility": visibility}
        if to is not None:
            body["to"] = to
        return self._post("reply", body)

    def quote_request(self, url: str, html: str = "<p>Quoting this.</p>") -> dict[str, Any]:
        """A Note quoting `url` and a signed FEP-044f QuoteRequest for it, POSTed to the author's
        inbox; the result has "id", "note" and the inbox's HTTP "status"."""
        return self._post("quote-request", {"object": url, "content": html})

    def update_reply(self, note_id: str, html: str) -> dict[str, Any]:
        return self._post("update-reply", {"note": note_id, "content": html})

    def delete_reply(self, note_id: str) -> dict[str, Any]:
        return self._post("delete-reply", {"note": note_id})

    def undo(self, activity_id: str) -> dict[str, Any]:
        """Undo a Like or Announce (or any activity) this peer sent."""
        return self._post("undo", {"activity": activity_id})

    def received(self) -> list[dict[str, Any]]:
        """Every delivery to bob's inboxes, oldest first, refused ones with verified=False."""
        return self._get("received")

    def sent(self) -> list[dict[str, Any]]:
        return self._get("sent")

    def fetches(self) -> list[dict[str, Any]]:
        """Every HTTP request the peer made: url, status, content_type (and any refusal)."""
        return self._get("fetches")

    def followers(self) -> list[str]:
        return [str(item) for item in self._get("followers")]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first received activity matching `predicate`, polling until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for activity in self.received():
                if predicate(activity):
                    return activity
            if time.monotonic() > deadline:
                raise PeerError(
                    f"nothing matching arrived within {timeout} s; received:"
                    f" {json.dumps(self.received(), indent=1)[:4000]}"
                )
            time.sleep(0.1)

    # --- lifetime ----------------------------------------------------------------------------

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def stop(self) -> None:
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._output.close()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _launch(
    tmp_path: Path, port: int, username: str, strict_content_type: bool, first_knock: str
) -> Peer:
    log_path = tmp_path / f"peer-{username}-{port}.jsonl"
    output_path = tmp_path / f"peer-{username}-{port}.out"
    command = [
        str(NODE), str(PEER_SCRIPT), "serve",
        "--port", str(port), "--username", username, "--log", str(log_path),
        "--first-knock", first_knock,
    ]
    if strict_content_type:
        command.append("--strict-content-type")
    output = output_path.open("wb")
    process = subprocess.Popen(
        command, cwd=HARNESS_DIR, stdout=output, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Peer(port, username, log_path, output_path, process, output,
                httpx.Client(timeout=CONTROL_TIMEOUT))


def _wait_ready(peer: Peer) -> bool:
    """True once WebFinger answers; False if the process died (e.g. the port was taken)."""
    url = f"{peer.base_url}/.well-known/webfinger"
    params = {"resource": f"acct:{peer.handle}"}
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if peer.process.poll() is not None:
                return False
            try:
                if client.get(url, params=params).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    peer.stop()
    raise PeerError(f"peer did not answer WebFinger within {START_TIMEOUT} s:\n{peer.output()}")


def start_peer(
    tmp_path: Path,
    port: int | None = None,
    *,
    username: str = "bob",
    strict_content_type: bool = True,
    first_knock: str = "rfc9421",
) -> Peer:
    """Start the Fedify peer and wait until it answers WebFinger. The caller must stop() it.

    strict_content_type: refuse ActivityPub documents not served as application/activity+json
    (Mastodon's rule; Fedify alone accepts application/json). first_knock: "rfc9421" (Fedify's
    default) or "cavage", the signature scheme the peer tries first when it sends.
    """
    require_harness()
    attempts = 1 if port is not None else 3
    for _ in range(attempts):
        peer = _launch(tmp_path, port or free_port(), username, strict_content_type, first_knock)
        if _wait_ready(peer):
            return peer
        peer.stop()  # died early: most likely a lost race for the port; try another
    raise PeerError(f"peer failed to start:\n{peer.output()}")


def lookup(
    target: str, *, strict_content_type: bool = True, timeout: float = LOOKUP_TIMEOUT
) -> dict[str, Any]:
    """What Fedify resolves for a handle (user@host:port) or URL, as the peer's JSON report.

    The dict has "ok" (bool), "returncode", and on success "object" (kind "actor" or
    "object"); on failure "error" with Fedify's reasons. "fetches" lists every request made.
    """
    require_harness()
    command = [str(NODE), str(PEER_SCRIPT), "lookup"]
    if strict_content_type:
        command.append("--strict-content-type")
    command.append(target)
    completed = subprocess.run(
        command, cwd=HARNESS_DIR, capture_output=True, timeout=timeout,
        stdin=subprocess.DEVNULL, check=False,
    )
    stdout = completed.stdout.decode("utf-8", errors="replace")
    try:
        result: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError as error:
        raise PeerError(
            f"peer lookup printed no JSON (exit {completed.returncode}):\n{stdout}\n"
            f"{completed.stderr.decode('utf-8', errors='replace')}"
        ) from error
    result["returncode"] = completed.returncode
    result["stderr"] = completed.stderr.decode("utf-8", errors="replace")
    return result
