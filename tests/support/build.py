"""Fixture sites for build tests: copy one to a temp folder, load its config and sources.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SITES = Path(__file__).resolve().parents[1] / "fixtures" / "sites"


def copy_site(name: str, dest: Path) -> Path:
    """A fixture site copied into `dest`, with the committed test key pair (no keygen)."""
    shutil.copytree(SITES / name, dest)
    keys = SITES.parent / "keys"
    state = dest / ".fedipress"
    state.mkdir()
    shutil.copy(keys / "blog-private.pem", state / "private-key.pem")
    os.chmod(state / "private-key.pem", 0o600)
    shutil.copy(keys / "blog-public.pem", dest / "fedipress-public-key.pem")
    return dest


def load(root: Path):  # type: ignore[no-untyped-def]
    from fedipress.config import load_config

    return load_config(root / "site.yaml")
