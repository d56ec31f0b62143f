"""Performance shortcuts in the build must give the same bytes as the plain computation."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from fedipress.activitypub.site import federation_manifest
from fedipress.build import Builder
from fedipress.config import load_config
from fedipress.content import load_site

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _site(dest: Path) -> Path:
    shutil.copytree(FIXTURES / "sites" / "basic", dest)
    shutil.copy(FIXTURES / "keys" / "blog-public.pem", dest / "fedipress-public-key.pem")
    return dest


def _expected(root: Path) -> str:
    config = load_config(root / "site.yaml")
    site = load_site(config, now=NOW).site
    pem = (root / "fedipress-public-key.pem").read_bytes()
    return json.dumps(federation_manifest(site, pem), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def _manifest(root: Path) -> str:
    return (root / ".fedipress" / "manifest.json").read_text(encoding="utf-8")


def test_cached_federation_objects_equal_federation_manifest(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    post = root / "content" / "posts" / "2026-11-01-watching.md"

    def builder() -> Builder:
        return Builder(load_config(root / "site.yaml"), log=lambda _line: None)

    builder().build(now=NOW)
    assert _manifest(root) == _expected(root)
    cache = root / ".fedipress" / "cache" / "federation-objects.marshal"
    assert cache.is_file()

    # A fresh process after an edit: the other objects come from the cache file.
    with post.open("a", encoding="utf-8") as f:
        f.write("\nA new closing paragraph.\n")
    builder().build(now=NOW)
    assert "A new closing paragraph." in _manifest(root)
    assert _manifest(root) == _expected(root)

    # The dev server's builder keeps the cache in memory across edits and removals.
    b = builder()
    b.build(now=NOW)
    with post.open("a", encoding="utf-8") as f:
        f.write("\nAnd another one.\n")
    b.build([post], now=NOW)
    assert _manifest(root) == _expected(root)
    (root / "content" / "posts" / "2026-09-14-hello.md").unlink()
    b.build(now=NOW)
    assert _manifest(root) == _expected(root)
    assert len(json.loads(_manifest(root))["objects"]) == 2


def test_damaged_object_cache_is_recomputed(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    cache = root / ".fedipress" / "cache" / "federation-objects.marshal"
    cache.write_bytes(b"\x00garbage")
    os.remove(root / ".fedipress" / "manifest.json")
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    assert _manifest(root) == _expected(root)
