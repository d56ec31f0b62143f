"""The build records its --drafts and --future flags in .fedipress/manifest.json, where
publish reads them to refuse a preview build; the record follows every build, including one
whose documents are the same as the last build's (no draft, no future post to add)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fedipress.config import load_config
from fedipress.federation.manifest import read_build_flags, read_federation_manifest
from fedipress.generator.build import BuildOptions, build_site, run_build
from support.e2e_helpers import Blog


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CI", raising=False)  # a CI build makes no key pair, so no federation
    return Blog.create(tmp_path).root


def flags(root: Path) -> dict[str, bool] | None:
    return read_build_flags(root / ".fedipress")


def test_each_build_records_its_flags(root: Path) -> None:
    config = load_config(root / "site.yaml")
    build_site(config, log=lambda _line: None)
    assert flags(root) == {"drafts": False, "future": False}
    plain = set(read_federation_manifest(root / ".fedipress")["objects"])
    run_build(config, BuildOptions(drafts=True), log=lambda _line: None)
    assert flags(root) == {"drafts": True, "future": False}
    build_site(config, future=True, log=lambda _line: None)
    assert flags(root) == {"drafts": False, "future": True}
    # The fixture's 2030 post is in a --future build's manifest: publish must refuse it.
    assert len(read_federation_manifest(root / ".fedipress")["objects"]) == len(plain) + 1
    build_site(config, log=lambda _line: None)
    assert flags(root) == {"drafts": False, "future": False}
    assert set(read_federation_manifest(root / ".fedipress")["objects"]) == plain


def test_the_same_documents_with_other_flags_are_recorded_anew(root: Path) -> None:
    """Without drafts or future posts a preview build writes the very same documents: the
    manifest must still be rewritten with the flags (the build skips an unchanged one)."""
    for name in ("2026-11-10-draft.md", "2030-01-01-future.md"):
        (root / "content" / "posts" / name).unlink()
    config = load_config(root / "site.yaml")
    build_site(config, log=lambda _line: None)
    objects = read_federation_manifest(root / ".fedipress")["objects"]
    build_site(config, drafts=True, future=True, log=lambda _line: None)
    assert flags(root) == {"drafts": True, "future": True}
    assert read_federation_manifest(root / ".fedipress")["objects"] == objects
    build_site(config, log=lambda _line: None)
    assert flags(root) == {"drafts": False, "future": False}


def test_a_manifest_of_an_older_build_records_no_flags(root: Path) -> None:
    build_site(load_config(root / "site.yaml"), log=lambda _line: None)
    path = root / ".fedipress" / "manifest.json"
    data = json.loads(path.read_text())
    assert data["format"] == 3
    del data["build"]
    path.write_text(json.dumps(data))
    assert flags(root) is None
    path.write_text(json.dumps({"actor": {}, "objects": {}}))  # format 1: objects inline
    assert flags(root) is None
    path.write_text(json.dumps({"actor": {}, "build": {"drafts": 1}}))
    with pytest.raises(ValueError, match="does not record"):
        flags(root)
    shutil.rmtree(root / ".fedipress")
    with pytest.raises(FileNotFoundError):
        flags(root)
