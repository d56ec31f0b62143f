"""A throwaway PostgreSQL cluster for the tests: Debian's `postgresql` binaries, `initdb` into a
temporary directory, a server on a free loopback port with its unix socket in that directory,
stopped and removed at the end.

PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres` system
user the Debian package creates (the directory is handed to it; the server runs with its uid).
Local connections are trusted: the cluster listens on 127.0.0.1 only and lives for one run.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PostgresCluster", "find_bindir", "missing_reason", "start_cluster"]

SUPERUSER = "fedipress"


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit()
        else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None when one can."""
    if find_bindir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path  # holds data/ and the socket
    port: int
    process: subprocess.Popen[bytes]
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t", template: str | None = None) -> str:
        """A new, empty database (or a copy of `template`); returns its URL."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            tpl = f" TEMPLATE {template}" if template else ""
            conn.execute(f"CREATE DATABASE {name}{tpl}")  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # immediate: a throwaway cluster keeps nothing
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _as_owner() -> dict[str, Any]:
    """subprocess arguments that run the server as `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def start_cluster() -> PostgresCluster:
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed")
    owner = _as_owner()
    # Not under pytest's tmp_path: that is private to root, and the server may run as postgres.
    root = Path(tempfile.mkdtemp(prefix="fedipress-pg-"))
    if owner:
        os.chown(root, owner["user"], owner["group"])
    data = root / "data"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
         "--encoding=UTF8", "--locale=C", "--no-sync"],
        check=True, capture_output=True, **owner,
    )
    port = _free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - the server keeps writing to it
    if owner:
        os.chown(root / "server.log", owner["user"], owner["group"])
    process = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
         "-k", str(root), "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=200"],
        stdout=log, stderr=subprocess.STDOUT, **owner,
    )
    log.close()
    cluster = PostgresCluster(bindir, root, port, process)
    deadline = time.monotonic() + 30
    import psycopg

    while True:
        try:
            psycopg.connect(cluster.url(), connect_timeout=2).close()
            return cluster
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                text = (root / "server.log").read_text(errors="replace")[-2000:]
                cluster.stop()
                raise RuntimeError(f"the PostgreSQL test cluster did not start:\n{text}") from None
            time.sleep(0.1)


def cluster_or_skip() -> PostgresCluster:
    """Start a cluster, or skip the test with the reason (fail instead when CI=true: CI must
    have PostgreSQL, so a missing package cannot turn the engine's tests silently off)."""
    import pytest

    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return start_cluster()


def migrated_template(cluster: PostgresCluster) -> str:
    """A database holding the current schema, to copy per test (CREATE DATABASE … TEMPLATE)."""
    from fedipress.store import migrate_postgres_store

    url = cluster.create_database("template")
    migrate_postgres_store(url)
    return url.rsplit("/", 1)[1]
