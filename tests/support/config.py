"""site.yaml helpers for config tests: a minimal valid file, loading, the problems raised.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from fedipress.config import SiteConfig, load_config
from fedipress.errors import ConfigError

MINIMAL = """\
title: My Blog
base_url: https://blog.example
author:
  name: Zoë Müller
"""


def write(tmp_path: Path, text: str) -> Path:
    """site.yaml with `text`, beside a content/ folder (as `fedipress init` makes it)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "content").mkdir(exist_ok=True)
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **kwargs: Any) -> SiteConfig:
    return load_config(write(tmp_path, text), **kwargs)


def problems(tmp_path: Path, text: str, **kwargs: Any) -> list[tuple[int | None, str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, **kwargs)
    return [(p.line, p.message) for p in info.value.problems]


def only_problem(tmp_path: Path, text: str, **kwargs: Any) -> tuple[int | None, str]:
    found = problems(tmp_path, text, **kwargs)
    assert len(found) == 1, found
    return found[0]
