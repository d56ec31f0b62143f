"""A fixture site served by the real `fedipress serve` on a loopback port.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import http.client
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fedipress.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make_served_site(root: Path) -> Path:
    assert main(["init", str(root)]) == 0
    (root / ".fedipress").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "keys" / "blog-private.pem", root / ".fedipress" / "private-key.pem")
    os.chmod(root / ".fedipress" / "private-key.pem", 0o600)
    shutil.copy(FIXTURES / "keys" / "blog-public.pem", root / "fedipress-public-key.pem")
    return root


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    site: Path
    line: str = ""

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def get(self, path: str, *, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, \
                response.read()
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _out, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err


def start_serve(site: Path, *extra: str) -> Served:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedipress.cli", "serve", "--port", "0", *extra],
        cwd=site, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("Serving "):
                return Served(proc, line.split()[1], site, line)
        if proc.poll() is not None:
            break
    proc.kill()
    _out, err = proc.communicate()
    raise AssertionError(f"serve did not start: {line!r}\n{err}")
