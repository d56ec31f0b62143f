"""`fedipress blocks` and `fedipress unblock` on a real state database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.config import load_config
from fedipress.federation.interactions import block_target, list_blocks, unblock_target
from fedipress.store import default_store_path, open_store

SITE = """\
title: Blocks
base_url: https://blog.example/
author:
  name: Blog Author
  handle: author
fediverse:
  blocked: [bad.example]
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "site.yaml").write_text(SITE)
    return tmp_path


def cli(site: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "--config", str(site / "site.yaml")])
    out, err = capsys.readouterr()
    return code, out, err


def blocked(site: Path, target: str) -> bool:
    store = open_store(default_store_path(site / ".fedipress"))
    try:
        return store.is_blocked(target)
    finally:
        store.close()


def test_block_list_unblock(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(site, capsys, "block", "Spam.Example")[0] == 0
    assert cli(site, capsys, "block", "https://c.example/u/eve")[0] == 0
    code, out, _ = cli(site, capsys, "blocks")
    assert code == 0
    rows = [line.split(None, 1) for line in out.splitlines()]
    assert rows == [
        ["https://c.example/u/eve", "fedipress block"],
        ["spam.example", "fedipress block"],
        ["bad.example", f"{site / 'site.yaml'} fediverse.blocked"],
    ]
    code, out, _ = cli(site, capsys, "blocks", "--json")
    assert [json.loads(line) for line in out.splitlines()] == [
        {"target": "https://c.example/u/eve", "source": "store"},
        {"target": "spam.example", "source": "store"},
        {"target": "bad.example", "source": "config"},
    ]

    assert blocked(site, "https://x.spam.example/u/a")
    code, out, _ = cli(site, capsys, "unblock", "spam.example")
    assert code == 0 and out.startswith("unblocked spam.example;")
    assert not blocked(site, "https://x.spam.example/u/a")
    assert blocked(site, "https://c.example/u/eve")
    code, out, _ = cli(site, capsys, "blocks")
    assert "spam.example" not in out


def test_unblock_what_is_not_blocked_is_refused(site: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # Most likely a typo: saying nothing would leave the intended target blocked.
    cli(site, capsys, "block", "spam.example")
    code, out, err = cli(site, capsys, "unblock", "spam.exmaple")
    assert code == 2 and out == ""
    assert err == ("fedipress: error: spam.exmaple is not blocked (blocked with"
                   " `fedipress block`: spam.example)\n")


def test_unblock_of_a_site_yaml_block_names_where_to_lift_it(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(site, capsys, "unblock", "bad.example")
    assert code == 2
    assert err.startswith("fedipress: error: bad.example is blocked by fediverse.blocked in")
    assert "remove it from that list" in err


def test_unblock_warns_when_site_yaml_blocks_it_too(site: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cli(site, capsys, "block", "bad.example")
    code, _, err = cli(site, capsys, "unblock", "bad.example")
    assert code == 0
    assert err.startswith(f"{site / 'site.yaml'}: warning: fediverse.blocked still lists"
                          " bad.example")


def test_blocks_when_nothing_is_blocked(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.yaml").write_text(SITE.split("fediverse:")[0])
    code, out, _ = cli(tmp_path, capsys, "blocks")
    assert (code, out) == (0, "nothing is blocked\n")


def test_the_library_functions_behind_the_commands(site: Path) -> None:
    # What the commands print comes from these, callable without the command line.
    config = load_config(site / "site.yaml")
    assert block_target(config, "bad.example") is True
    assert block_target(config, "bad.example") is False
    assert list_blocks(config).rows == (("bad.example", "store"), ("bad.example", "config"))
    lifted = unblock_target(config, " bad.example ")
    assert (lifted.target, lifted.still_configured) == ("bad.example", True)
    assert list_blocks(config).lines() == [f"bad.example  {site / 'site.yaml'} fediverse.blocked"]
