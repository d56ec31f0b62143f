"""A blog with its key pair in place, for tests that build and plan at chosen times (scheduled,
expiring and back-dated posts): site.yaml with dated permalinks, the fixture keys, no content."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["KEYS", "SITE_YAML", "make_dated_blog"]

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"

SITE_YAML = """\
title: Scheduled Blog
base_url: https://blog.example/
timezone: UTC
permalink: /{year}/{month}/{slug}/
author:
  name: Planner
  handle: planner
"""


def make_dated_blog(root: Path) -> Path:
    """site.yaml, the blog's private key (0600) and public key under `root`."""
    state = root / ".fedipress"
    state.mkdir(parents=True)
    (root / "site.yaml").write_text(SITE_YAML, encoding="utf-8")
    shutil.copy(KEYS / "blog-private.pem", state / "private-key.pem")
    os.chmod(state / "private-key.pem", 0o600)
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    return root
