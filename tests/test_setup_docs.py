"""docs/setup.md runs: every ```sh block of each setup is run on loopback (names become
127.0.0.1 ports, /etc paths temp files), with a real nginx and Caddy in front of a real
`fedipress inbox`; a block that is not run must say so with `# not run in tests:`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.support.service import free_port
from tests.support.webservers import binary, start_caddy, start_nginx, stop, wait_port

DOC = Path(__file__).resolve().parents[1] / "docs" / "setup.md"
NOT_RUN = "# not run in tests:"
KEEPS_RUNNING = "# keeps running:"


@dataclass(frozen=True)
class Block:
    heading: str  # "1. One machine ... > With nginx"
    text: str


def blocks() -> list[Block]:
    found: list[Block] = []
    path: list[str] = []
    lines = DOC.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := re.match(r"(#{2,3}) (.*)", line):
            del path[len(m.group(1)) - 2:]
            path.append(m.group(2))
        elif line.strip() == "```sh":
            end = lines.index("```", i + 1)
            found.append(Block(" > ".join(path), "\n".join(lines[i + 1:end]) + "\n"))
            i = end
        i += 1
    return found


def section(number: str, *, skip: str = "") -> list[Block]:
    chosen = [b for b in blocks() if b.heading.startswith(number + ".")
              and not (skip and skip in b.heading)]
    assert chosen, f"docs/setup.md has no section {number}"
    return chosen


class Runner:
    """Runs blocks one after the other like one shell session: the folder and the exported
    variables carry from one block to the next."""

    def __init__(self, work: Path, subs: list[tuple[str, str]], env: dict[str, str]) -> None:
        self.work, self.subs = work, subs
        self.state = work / ".shell-env"
        self.cwd = work
        self.state.write_text("")
        self.env = env
        self.background: list[subprocess.Popen[bytes]] = []

    def text(self, block: Block) -> str:
        text = block.text
        for old, new in self.subs:
            text = text.replace(old, new)
        return text

    def run(self, block: Block) -> str:
        assert not block.text.startswith(NOT_RUN)
        script = (f"set -eo pipefail\n. {self.state}\ncd {self.cwd}\n{self.text(block)}\n"
                  f"export -p > {self.state}\npwd > {self.work / '.shell-cwd'}\n")
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env=self.env, timeout=120, check=False)
        assert proc.returncode == 0, (f"docs/setup.md ({block.heading}) failed:\n"
                                      f"{self.text(block)}\n{proc.stdout}\n{proc.stderr}")
        self.cwd = Path((self.work / ".shell-cwd").read_text().strip())
        return proc.stdout

    def start(self, block: Block, port: int) -> None:
        commands = [line for line in self.text(block).splitlines()
                    if line.strip() and not line.startswith("#")]
        assert len(commands) == 1, commands
        log = self.work / f"background-{len(self.background)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f". {self.state}\ncd {self.cwd}\nexec {commands[0]}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        self.background.append(proc)
        wait_port(port, proc, log, commands[0])

    def stop(self) -> None:
        for proc in self.background:
            stop(proc)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDIPRESS_") and k != "CI"}
    # The fedipress of this checkout first; loopback is a private address fedipress refuses
    # unless told.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["FEDIPRESS_ALLOW_PRIVATE_ADDRESSES"] = "1"
    return env


def etc_subs(work: Path) -> list[tuple[str, str]]:
    return [("/etc/fedipress", str(work / "etc-fedipress")),
            ("/etc/nginx/conf.d/blog.conf", str(work / "blog-nginx.conf")),
            ("/etc/caddy/Caddyfile", str(work / "Caddyfile"))]


def test_every_block_not_run_says_so() -> None:
    all_blocks = blocks()
    assert len(all_blocks) > 10
    ran = [b for n in "1234" for b in section(n)]
    assert ran == all_blocks, "a ```sh block outside the four setups"
    # The blocks a test cannot run are exactly those that say so, and say why.
    unmarked = [b for b in all_blocks if re.search(
        r"\b(systemctl|certbot|netlify|wrangler|npx|scp|git clone|pip install|git commit"
        r"|fedipress ci)\b",
        b.text) and not b.text.startswith(NOT_RUN)]
    assert not unmarked, unmarked
    for b in all_blocks:
        if b.text.startswith(NOT_RUN):
            reason = b.text.splitlines()[0].removeprefix(NOT_RUN).strip()
            assert reason, f"{b.heading}: no reason given"


def _one_machine(tmp_path: Path, server: str) -> None:
    web_bin = binary(server)
    web, inbox = free_port(), free_port()
    work = tmp_path / "server"
    work.mkdir()
    subs = [("https://blog.example/", f"http://127.0.0.1:{web}/"),
            ("--listen 80", f"--listen 127.0.0.1:{web}"),
            ("blog.example", f"127.0.0.1:{web}"), ("8080", str(inbox)), *etc_subs(work)]
    runner = Runner(work, subs, base_env())
    other = "With Caddy" if server == "nginx" else "With nginx"
    webserver: subprocess.Popen[bytes] | None = None
    try:
        for block in section("1", skip=other):
            if block.text.startswith(NOT_RUN):
                if "reload" in block.text and webserver is None:
                    conf = (work / "blog-nginx.conf" if server == "nginx"
                            else work / "Caddyfile")
                    start = start_nginx if server == "nginx" else start_caddy
                    webserver = start(web_bin, work, conf, web)
                continue
            if block.text.startswith(KEEPS_RUNNING):
                runner.start(block, inbox)
                continue
            out = runner.run(block)
            if "curl" in block.text:
                assert '"subject":"acct:you@127.0.0.1' in out.replace(" ", "")
                assert '"key_matches":true' in out.replace(" ", "")
        assert webserver is not None, "the web server was never started"
        token = (work / "etc-fedipress" / "token").read_text().strip()
        api = f"http://127.0.0.1:{web}/.fedipress/api/v1/health"
        assert httpx.get(api, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        if server == "nginx":
            _ci(tmp_path, runner.cwd, subs)
    finally:
        if webserver is not None:
            stop(webserver)
        runner.stop()


def _ci(tmp_path: Path, blog: Path, subs: list[tuple[str, str]]) -> None:
    """Setup 4 against the running service: a clone with only what git holds."""
    clone = tmp_path / "ci-clone"
    clone.mkdir()
    shutil.copy(blog / "site.yaml", clone / "site.yaml")
    shutil.copytree(blog / "content", clone / "content")
    shutil.copy(blog / "fedipress-public-key.pem", clone / "fedipress-public-key.pem")
    (clone / "content" / "posts" / "from-ci.md").write_text(
        "---\ntitle: From CI\ndate: 2024-06-01T10:00:00+00:00\n---\nBuilt in CI.\n")
    runner = Runner(tmp_path, subs, base_env())
    runner.cwd = clone
    runs = [b for b in section("4") if not b.text.startswith(NOT_RUN)]
    assert len(runs) == 1
    first = runner.run(runs[0])
    assert "queued" in first or "recorded" in first, first
    assert not (clone / ".fedipress" / "private-key.pem").exists()
    again = runner.run(runs[0])
    assert "0 new, 0 updated, 0 deleted" in again, again
    # The next post, written in the clone: announced through the service, once.
    # (Dated now: a back-dated one would be recorded quietly.)
    now = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    (clone / "content" / "posts" / "next.md").write_text(
        f"---\ntitle: Next\ndate: {now}\n---\nThe next one.\n")
    assert "1 new, 0 updated, 0 deleted" in runner.run(runs[0])
    assert not (clone / ".fedipress" / "state.db").exists()


def test_one_machine_nginx_and_ci(tmp_path: Path) -> None:
    _one_machine(tmp_path, "nginx")


def test_one_machine_caddy(tmp_path: Path) -> None:
    _one_machine(tmp_path, "caddy")


def test_static_host_and_service(tmp_path: Path) -> None:
    inbox = free_port()
    work = tmp_path / "vps"
    work.mkdir()
    subs = [("https://inbox.blog.example/", f"http://127.0.0.1:{inbox}/"),
            ("https://blog.example/", "http://127.0.0.1:9/"),
            ("8080", str(inbox)), *etc_subs(work)]
    runner = Runner(work, subs, base_env())
    checked = False
    try:
        for block in section("2"):
            if block.text.startswith(NOT_RUN):
                continue
            if block.text.startswith(KEEPS_RUNNING):
                runner.start(block, inbox)
                continue
            out = runner.run(block)
            if "curl" in block.text:
                assert '"key_matches":true' in out.replace(" ", "")
                checked = True
        assert checked
        actor = (runner.cwd / "public" / "actor.json").read_text()
        assert f'"inbox": "http://127.0.0.1:{inbox}/inbox"' in actor
    finally:
        runner.stop()


def test_handle_on_apex(tmp_path: Path) -> None:
    nginx = binary("nginx")
    web = free_port()
    work = tmp_path / "apex"
    work.mkdir()
    blog = f"blog.example.com:{web}"
    subs = [("https://blog.example.com/", f"http://{blog}/"),
            ("--listen 80", f"--listen 127.0.0.1:{web}"), *etc_subs(work)]
    runner = Runner(work, subs, base_env())
    for block in section("3"):
        if not block.text.startswith(NOT_RUN):
            runner.run(block)
    conf = work / "blog-nginx.conf"
    text = conf.read_text()
    assert "server_name example.com;" in text
    assert f"return 302 http://{blog}/.well-known/webfinger$is_args$args;" in text
    # The apex's server block listens where the blog's does (the test's port); the Host
    # header picks the block, as DNS would.
    assert text.count(f"listen 127.0.0.1:{web};") == 2
    process = start_nginx(nginx, work, conf, web)
    try:
        query = "/.well-known/webfinger?resource=acct:you@example.com"
        apex = httpx.get(f"http://127.0.0.1:{web}{query}", headers={"Host": "example.com"})
        assert apex.status_code == 302
        assert apex.headers["location"] == f"http://{blog}{query}"
        # What Mastodon does next: the blog's host answers for the apex handle.
        there = httpx.get(f"http://127.0.0.1:{web}{query}", headers={"Host": blog})
        assert there.status_code == 200, there.text
        assert there.headers["content-type"].startswith("application/jrd+json")
        assert there.json()["subject"] == "acct:you@example.com"
    finally:
        stop(process)


@pytest.mark.parametrize("block", [b for b in blocks() if b.text.startswith(KEEPS_RUNNING)],
                         ids=lambda b: b.heading)
def test_background_blocks_are_one_command(block: Block) -> None:
    assert len([line for line in block.text.splitlines()
                if line.strip() and not line.startswith("#")]) == 1
