"""deploy/compose.postgres.yaml's topology run as real processes on loopback.

There is no container runtime here, so the images are not built; everything else is the
Compose file's own: the `migrate` service's command, then both `inbox-*` and both `worker-*`
services' commands exactly as the YAML writes them (`fedipress` run from this checkout), in
the working directory the Dockerfile gives (the blog folder mounted there), with the
environment the YAML gives after Compose's `${VAR}` interpolation. Only what a container would
have and a test cannot is substituted: the `db` service's host → a throwaway PostgreSQL
cluster's loopback address, listen ports → free loopback ports (the services share Caddy's
network namespace, so loopback is where they are in Compose too). Caddy runs
deploy/Caddyfile.compose itself: `$FEDIPRESS_DOMAIN` is a plain-http loopback address, each
upstream it names is mapped to the service that listens there, and a test-only global block
turns off the admin endpoint and binds loopback. The one addition to the environment is
FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1: the independent peer lives on loopback too.

Through Caddy the blog answers WebFinger and its actor, the Fedify peer follows it and gets
one verified Accept, a publish from CI (the owner API, as docs/scaling.md describes) reaches
the peer once, and with one inbox stopped (SIGTERM) a second peer still follows it."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from fedipress.store import open_store
from support.e2e_helpers import Blog, write_post
from support.interop_peer import Peer, free_port, require_harness, start_peer
from support.postgres import PostgresCluster
from support.webservers import binary, stop, wait_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
WAIT = 30.0
QUIET = 2.0  # after the first copy arrives, how long a second one is waited for
# What docs/scaling.md tells the operator to export; the file may need nothing else.
OPERATOR_ENV = {"FEDIPRESS_BLOG", "FEDIPRESS_DOMAIN", "FEDIPRESS_DB_PASSWORD",
                "FEDIPRESS_SERVICE_TOKEN"}
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, shell: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` against `shell`."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        assert name in OPERATOR_ENV, f"the Compose file needs ${name}, which the docs never set"
        value = shell.get(name)
        if op in (":-", "-"):
            return value if value else arg
        assert value, f"${name} is unset: Compose would stop with {arg!r}"
        return value
    return _VAR.sub(one, text).replace("$$", "$")


def workdir() -> str:
    """The image's working directory (the Dockerfile's last WORKDIR)."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("WORKDIR ")][-1]


@dataclass
class Topology:
    """The Compose file's services, translated for loopback."""

    compose: dict[str, Any]
    shell: dict[str, str]
    hosts: dict[str, str]  # compose service name -> loopback host:port
    database: str  # the test's database name, for the database URL's
    ports: dict[int, int] = field(default_factory=dict)  # port in the YAML -> loopback port

    def service(self, name: str) -> dict[str, Any]:
        service: dict[str, Any] = self.compose["services"][name]
        return service

    def port(self, yaml_port: int) -> int:
        return self.ports.setdefault(yaml_port, free_port())

    def argv(self, name: str) -> list[str]:
        command = [interpolate(str(part), self.shell) for part in self.service(name)["command"]]
        assert command[0] == "fedipress", command
        out = [sys.executable, "-m", "fedipress.cli"]
        for before, part in zip(command, command[1:], strict=False):
            out.append(str(self.port(int(part))) if before == "--port" else part)
        return out

    def env(self, name: str) -> dict[str, str]:
        # A container has none of this runner's fedipress, libpq or CI variables.
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("FEDIPRESS_", "PG")) and k != "CI"}
        env = base | {"PYTHONUNBUFFERED": "1", "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1"}
        for key, value in self.service(name)["environment"].items():
            env[key] = self.url(interpolate(str(value), self.shell))
        return env

    def url(self, value: str) -> str:
        """A URL naming a Compose service by host points at that service's loopback port."""
        parts = urlsplit(value)
        if parts.scheme and parts.hostname in self.hosts:
            user = f"{parts.username}@" if parts.username else ""
            parts = parts._replace(netloc=user + self.hosts[parts.hostname])
            if parts.scheme == "postgresql":
                parts = parts._replace(path=f"/{self.database}")
            return urlunsplit(parts)
        return value

    def cwd(self, name: str) -> Path:
        inside = workdir()
        for volume in self.service(name)["volumes"]:
            host, _, mount = interpolate(volume, self.shell).partition(":")
            if mount.split(":")[0] == inside:
                return Path(host)
        raise AssertionError(f"{name}: nothing is mounted at the image's WORKDIR {inside}")

    def healthcheck(self, name: str) -> list[str]:
        test = [str(part) for part in self.service(name)["healthcheck"]["test"]]
        assert test[0] == "CMD" and test[1] == "python", test
        return [sys.executable, *[re.sub(r"127\.0\.0\.1:(\d+)",
                                         lambda m: f"127.0.0.1:{self.port(int(m[1]))}", part)
                                  for part in test[2:]]]

    def caddyfile(self, home: Path) -> Path:
        """Caddyfile.compose with each upstream mapped to the loopback port of the service it
        names, behind a test-only global block (no admin endpoint, loopback only, state here)."""
        text = (DEPLOY / "Caddyfile.compose").read_text()
        lines = list(re.finditer(r"^(\s*reverse_proxy\s+)([^{\n]+)", text, re.M))
        assert lines, "the Caddyfile proxies to nothing"
        inboxes = sorted(n for n in self.compose["services"] if n.startswith("inbox-"))

        def mapped(match: re.Match[str]) -> str:
            reached, out = [], []
            for upstream in match.group(2).split():
                host, _, port = upstream.rpartition(":")
                # In the shared network namespace (network_mode: service:caddy) loopback is
                # the inbox listening on that port; else a service is named by its host name.
                names = [n for n in inboxes if host == n or (
                    host == "127.0.0.1"
                    and self.service(n).get("network_mode") == "service:caddy"
                    and self.argv_port(n) == port)]
                assert len(names) == 1, f"upstream {upstream} is no inbox service"
                reached += names
                out.append(f"127.0.0.1:{self.port(int(self.argv_port(names[0])))}")
            assert sorted(reached) == inboxes, f"{match.group(0)!r} reaches {reached}"
            return match.group(1) + " ".join(out) + " "
        path = home / "Caddyfile"
        path.write_text("{\n\tadmin off\n\tdefault_bind 127.0.0.1\n"
                        f"\tstorage file_system {home}/data\n}}\n\n"
                        + re.sub(r"^(\s*reverse_proxy\s+)([^{\n]+)", mapped, text, flags=re.M))
        return path

    def argv_port(self, name: str) -> str:
        command = self.service(name)["command"]
        return str(command[command.index("--port") + 1])


@dataclass
class Running:
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)  # stopped on purpose

    def start(self, name: str, argv: list[str], cwd: Path, env: dict[str, str],
              log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes[name], self.logs[name] = process, log
        return process

    def output(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None or name in self.stopped, (
                f"{name} exited {process.returncode}:\n{self.output(name)}")


def _wait_healthy(port: int, running: Running, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        running.alive()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what} never answered /healthz"
        time.sleep(0.1)


def _accepts(peer: Peer, follow_id: str) -> list[dict[str, Any]]:
    peer.wait_for(lambda a: a.get("type") == "Accept" and a.get("verified") is True
                  and a.get("matched_follow_id") == follow_id, timeout=WAIT)
    time.sleep(QUIET)
    return [a for a in peer.received() if a.get("type") == "Accept"]


@pytest.fixture
def deployment(tmp_path: Path, postgres: PostgresCluster) -> Iterator[tuple[Blog, Topology,
                                                                             Running, str]]:
    require_harness()
    caddy = binary("caddy")
    caddy_port = free_port()
    blog = Blog.create(tmp_path, caddy_port)
    # The blog's public address is Caddy's, as https://$FEDIPRESS_DOMAIN/ is in Compose.
    site = blog.root / "site.yaml"
    site.write_text(re.sub(r"^base_url: .*$", f"base_url: {blog.base}", site.read_text(),
                           flags=re.M))
    database = postgres.create_database("blog")  # empty: the migrate service creates the schema
    compose = yaml.safe_load((DEPLOY / "compose.postgres.yaml").read_text())
    token = secrets.token_urlsafe(32)
    shell = {"FEDIPRESS_BLOG": str(blog.root), "FEDIPRESS_DOMAIN": blog.base.rstrip("/"),
             "FEDIPRESS_DB_PASSWORD": "unused-with-trust-auth", "FEDIPRESS_SERVICE_TOKEN": token}
    db = urlsplit(database)
    topology = Topology(compose, shell, {"db": f"{db.hostname}:{db.port}"},
                        db.path.lstrip("/"))
    running = Running()

    migrate = subprocess.run(topology.argv("migrate"), cwd=topology.cwd("migrate"),
                             env=topology.env("migrate"), capture_output=True, text=True,
                             timeout=60, check=False)
    assert migrate.returncode == 0 and "Traceback" not in migrate.stderr, migrate.stderr
    # The author's build before `up` (the inboxes serve its public/).
    blog.fedipress("build", "--quiet")
    try:
        for name in ("inbox-1", "inbox-2", "worker-1", "worker-2"):
            running.start(name, topology.argv(name), topology.cwd(name), topology.env(name),
                          tmp_path / f"{name}.log")
        for name in ("inbox-1", "inbox-2"):
            _wait_healthy(topology.port(int(topology.argv_port(name))), running, name)
            check = subprocess.run(topology.healthcheck(name), capture_output=True,
                                   timeout=30, check=False)
            assert check.returncode == 0, f"{name}'s healthcheck failed: {check.stderr!r}"
        home = tmp_path / "caddy"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg"),
               "XDG_CONFIG_HOME": str(home / "xdg"),
               **{k: interpolate(str(v), shell)
                  for k, v in compose["services"]["caddy"]["environment"].items()}}
        running.start("caddy", [str(caddy), "run", "--config", str(topology.caddyfile(home)),
                                "--adapter", "caddyfile"], home, env, home / "caddy.log")
        wait_port(caddy_port, running.processes["caddy"], running.logs["caddy"], "caddy")
        yield blog, topology, running, database
    finally:
        for process in running.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in running.processes.values():
            stop(process)
    for name in running.processes:
        assert "Traceback" not in running.output(name), running.output(name)


def test_the_compose_topology_federates_through_caddy_and_survives_a_stopped_inbox(
    deployment: tuple[Blog, Topology, Running, str], tmp_path: Path
) -> None:
    blog, topology, running, database = deployment
    with httpx.Client(base_url=blog.base, timeout=10) as client:
        finger = client.get("/.well-known/webfinger",
                            params={"resource": f"acct:{blog.handle}"})
        assert finger.status_code == 200, finger.text
        assert blog.actor_id in finger.text
        actor = client.get("/actor.json", headers={"Accept": "application/activity+json"})
        assert actor.status_code == 200 and actor.json()["id"] == blog.actor_id

    ci = {k: v for k, v in os.environ.items() if not k.startswith("FEDIPRESS_")}
    ci |= {"FEDIPRESS_SERVICE_URL": blog.base, "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1",
           "FEDIPRESS_SERVICE_TOKEN": topology.shell["FEDIPRESS_SERVICE_TOKEN"]}
    with start_peer(tmp_path) as bob:
        follow_id = str(bob.follow(blog.handle)["id"])
        accepts = _accepts(bob, follow_id)
        assert len(accepts) == 1, accepts

        # Publish from CI through Caddy and the owner API; the service plans it in the store.
        write_post(blog.root, "scaled.md", "Scaled", "Sent once by four processes.",
                   slug="scaled")
        published = subprocess.run([sys.executable, "-m", "fedipress.cli", "publish"],
                                   cwd=blog.root, env=ci, capture_output=True, text=True,
                                   timeout=90, check=False)
        assert published.returncode == 0, published.stdout + published.stderr
        create = bob.wait_for(lambda a: a.get("type") == "Create"
                              and "scaled" in str(a.get("object_id")), timeout=WAIT)
        assert create["verified"] is True
        time.sleep(QUIET)
        creates = [a for a in bob.received() if a.get("type") == "Create"]
        assert len(creates) == 1, creates
        assert all(a.get("verified") is True for a in bob.received())

    # One inbox stops (as `docker compose stop inbox-1` would); Caddy sends all to the other.
    inbox_1 = running.processes["inbox-1"]
    inbox_1.send_signal(signal.SIGTERM)
    assert inbox_1.wait(30) == 0, running.output("inbox-1")
    running.stopped.add("inbox-1")
    health = subprocess.run(topology.healthcheck("inbox-1"), capture_output=True, timeout=30,
                            check=False)
    assert health.returncode != 0  # Compose would see it unhealthy too
    with httpx.Client(base_url=blog.base, timeout=10) as client:
        # Round robin: one of the first two is meant for the stopped one, before any health
        # check has noticed; a POST must then be sent again to the other (its body too).
        for _ in range(2):
            refused = client.post("/inbox", content=b'{"type": "Follow"}',
                                  headers={"Content-Type": "application/activity+json"})
            assert refused.status_code == 400 and "needs an id" in refused.text, refused
        for _ in range(4):
            assert client.get("/actor.json").status_code == 200
    with start_peer(tmp_path, username="carol") as carol:
        follow_id = str(carol.follow(blog.handle)["id"])
        accepts = _accepts(carol, follow_id)
        assert len(accepts) == 1, accepts
    running.alive()

    store = open_store(database)
    try:
        assert store.count_followers() == 2
        counts = store.delivery_counts()
        # Accept to bob, the Create to bob, Accept to carol: each once, nothing left queued.
        assert counts["delivered"] == sum(counts.values()) == 3, counts
    finally:
        store.close()
    assert not (blog.root / ".fedipress" / "state.db").exists()
