"""deploy/compose.postgres.yaml: PostgreSQL, two inbox services behind Caddy, two workers.

No container runtime here: the file is checked for what would break it silently (every
command is a real fedipress command line, Caddy proxies to exactly the inboxes' ports, no
password is written in it), and the Caddyfile is adapted by a real Caddy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedipress.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.postgres.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_their_commands() -> None:
    services = _compose()["services"]
    assert set(services) == {"db", "caddy", "migrate", "inbox-1", "inbox-2", "worker-1",
                             "worker-2"}
    parser = build_parser()
    for name in ("migrate", "inbox-1", "inbox-2", "worker-1", "worker-2"):
        service = services[name]
        command = service["command"]
        assert command[0] == "fedipress"
        parser.parse_args(command[1:])  # exits (SystemExit) on a wrong command line
        env = service["environment"]
        assert env["FEDIPRESS_DATABASE_URL"].startswith("postgresql://fedipress@db/")
        assert ":" not in env["FEDIPRESS_DATABASE_URL"].split("//")[1].split("@")[0]
        assert env["PGPASSWORD"].startswith("${")  # from the environment, never written here
        assert env["FEDIPRESS_SERVICE_TOKEN"].startswith("${")
        assert service["network_mode"] == "service:caddy"  # Caddy reaches them on loopback
    for name in ("inbox-1", "inbox-2", "worker-1", "worker-2"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${")


def test_caddy_proxies_to_exactly_the_inbox_ports() -> None:
    services = _compose()["services"]
    ports = sorted(services[n]["command"][services[n]["command"].index("--port") + 1]
                   for n in ("inbox-1", "inbox-2"))
    caddyfile = (DEPLOY / "Caddyfile.compose").read_text()
    proxies = re.findall(r"^\s*reverse_proxy\s+([^{\n]+)", caddyfile, re.M)
    assert proxies
    for upstreams in proxies:  # each proxy (owner API, the rest) reaches both inboxes
        assert sorted(re.findall(r"127\.0\.0\.1:(\d+)", upstreams)) == ports


def test_caddyfile_is_valid_for_caddy() -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (apt-get install caddy)")
    result = subprocess.run(
        [caddy, "adapt", "--config", str(DEPLOY / "Caddyfile.compose"), "--adapter",
         "caddyfile"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "FEDIPRESS_DOMAIN": "blog.example"}, check=False)
    assert result.returncode == 0, result.stderr
    assert "blog.example" in result.stdout and "8082" in result.stdout
