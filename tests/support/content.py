"""Content-reading helpers: a config, writing source files, collecting the problems found.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.config import Author, FediverseConfig, SiteConfig
from fedipress.errors import ContentError
from fedipress.generator.content import load_site

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make_config(root: Path, **changes: object) -> SiteConfig:
    config = SiteConfig(
        root=root,
        title="Alice's Notebook",
        base_url="https://alice.example/",
        author=Author(name="Alice", handle="alice"),
        fediverse=FediverseConfig(
            username="alice",
            handle_domain="alice.example",
            display_name="Alice",
            bio="",
            inbox_url="https://alice.example/inbox",
            shared_inbox_url="https://alice.example/inbox",
        ),
        timezone="Europe/Berlin",
        content_dir=root / "content",
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def write(root: Path, rel: str, text: str) -> Path:
    path = root / "content" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(root: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_site(make_config(root), now=NOW, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]
