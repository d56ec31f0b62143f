"""The build cache in CI: a fresh git clone (every mtime is the checkout time, no public/) with
only .fedipress/cache/ restored parses and renders only what changed, and writes the same
bytes as a cold build."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fedipress.config import load_config
from fedipress.generator import frontmatter
from fedipress.generator.build import BuildOptions, BuildResult, run_build
from fedipress.generator.rendercache import RenderPack

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SITE_YAML = """\
title: CI Blog
base_url: https://blog.example/
language: en
timezone: UTC
posts_per_page: 5
author:
  name: Test Author
  handle: tester
"""
KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
EDITED = "content/posts/2026-01-17-post-17.md"


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A 30-post blog committed to git (public/ and .fedipress/ ignored, as `init` does)."""
    repo = tmp_path / "origin"
    posts = repo / "content" / "posts"
    posts.mkdir(parents=True)
    (repo / "site.yaml").write_text(SITE_YAML, encoding="utf-8")
    shutil.copy(KEYS / "blog-public.pem", repo / "fedipress-public-key.pem")
    for i in range(1, 31):
        (posts / f"2026-01-{i:02d}-post-{i}.md").write_text(
            f"---\ntitle: Post {i}\ntags: [t{i % 4}]\n---\nParagraph *{i}* with a"
            f" [link](https://example.org/{i}).\n\n## Part\n\n```python\nx = {i}\n```\n",
            encoding="utf-8")
    (repo / "content" / "pages").mkdir()
    (repo / "content" / "pages" / "colophon.md").write_text(
        "---\ntitle: Colophon\ndate: 2026-01-01\n---\nMade with care.\n", encoding="utf-8")
    (repo / ".gitignore").write_text("/public/\n/.fedipress/\n", encoding="utf-8")
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "blog", cwd=repo)
    return repo


def _ci_build(site: Path, lines: list[str] | None = None) -> BuildResult:
    log = (lines.append if lines is not None else (lambda _line: None))
    config = load_config(site / "site.yaml")
    return run_build(config, BuildOptions(ci=True), log=log, warn=log).result


def _clone(origin: Path, workspace: Path, cache: Path | None, *, edit: bool = True) -> Path:
    """A CI checkout: always the same path (as a runner's workspace), the cache restored,
    one post edited since the commit the cache was built from."""
    if workspace.exists():
        shutil.rmtree(workspace)
    _git("clone", "-q", str(origin), str(workspace), cwd=origin.parent)
    if cache is not None:
        shutil.copytree(cache, workspace / ".fedipress" / "cache")
    if edit:
            (workspace / EDITED).write_text(
            (workspace / EDITED).read_text(encoding="utf-8") + "\nOne more paragraph.\n",
            encoding="utf-8")
    return workspace


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _previous_ci_run(origin: Path, workspace: Path) -> Path:
    """The cache the workflow saved after the last run: .fedipress/cache/ only."""
    site = _clone(origin, workspace, None, edit=False)
    assert _ci_build(site).from_render_cache == 0
    saved = origin.parent / "saved-cache"
    shutil.copytree(site / ".fedipress" / "cache", saved)
    return saved


def test_fresh_clone_with_restored_cache_parses_only_the_edit_and_matches_a_cold_build(
        origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = origin.parent / "ws" / "site"
    saved = _previous_ci_run(origin, workspace)

    cold_site = _clone(origin, workspace, None)
    cold = _ci_build(cold_site)
    assert cold.parsed_files == cold.sources == 31 and cold.rendered_markdown == 31
    cold_tree = _tree(cold_site / "public")
    cold_manifest = (cold_site / ".fedipress" / "manifest.json").read_bytes()

    site = _clone(origin, workspace, saved)
    parsed: list[str] = []
    real_parse = frontmatter._parse

    def spy(sf, raw, config):  # type: ignore[no-untyped-def]
        parsed.append(sf.source)
        return real_parse(sf, raw, config)

    import fedipress.generator.content as content_module

    monkeypatch.setattr(content_module, "_parse", spy)
    lines: list[str] = []
    cached = _ci_build(site, lines)
    # Only the edited post was read and checked anew and had its Markdown rendered; every
    # other file was found in the cache by its bytes (git gave it a new mtime).
    assert parsed == [EDITED.removeprefix("content/")]
    assert (cached.parsed_files, cached.sources, cached.rendered_markdown) == (1, 31, 1)
    # Every page the edit does not touch came from the render cache.
    assert cached.written == cold.written
    assert 0 < cached.written - cached.from_render_cache < cached.written // 4
    assert not any(line.startswith("note:") for line in lines), lines
    # Byte for byte what a cold build of the same commit writes, and the same federation
    # manifest for publish.
    assert _tree(site / "public") == cold_tree
    assert (site / ".fedipress" / "manifest.json").read_bytes() == cold_manifest


def test_the_next_ci_run_reuses_the_cache_this_one_saved(origin: Path) -> None:
    # The cache a cached run leaves (the render pack appended to, the parse delta) is the
    # next run's: nothing is parsed or rendered again.
    workspace = origin.parent / "ws" / "site"
    saved = _previous_ci_run(origin, workspace)
    site = _clone(origin, workspace, saved)
    _ci_build(site)
    again = origin.parent / "again"
    shutil.copytree(site / ".fedipress" / "cache", again)
    expected = _tree(site / "public")
    site = _clone(origin, workspace, again)  # (the same edit, made again in the new clone)
    result = _ci_build(site)
    assert (result.parsed_files, result.rendered_markdown) == (0, 0)
    assert result.from_render_cache == result.written
    assert _tree(site / "public") == expected


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "other-version"])
def test_a_damaged_or_foreign_cache_is_noted_and_the_output_is_still_right(
        origin: Path, damage: str) -> None:
    workspace = origin.parent / "ws" / "site"
    saved = _previous_ci_run(origin, workspace)
    cold_site = _clone(origin, workspace, None)
    _ci_build(cold_site)
    cold_tree = _tree(cold_site / "public")

    pack = saved / RenderPack.FILE_NAME
    parse = saved / "parse.pickle"
    data = pack.read_bytes()
    if damage == "garbage":
        pack.write_bytes(b"not a pack at all")
        parse.write_bytes(b"\x80\x05garbage")
    elif damage == "truncated":
        pack.write_bytes(data[: len(data) // 2])
        parse.write_bytes(parse.read_bytes()[:100])
    elif damage == "flipped":
        # One byte inside a page the edit does not touch: its checksum catches it, that page
        # is rendered.
        reader = RenderPack(saved)
        assert reader.load() is None
        page = reader.get("colophon/index.html", reader._index["colophon/index.html"][0])
        reader.close()
        assert page is not None
        middle = data.index(page[0]) + len(page[0]) // 2
        pack.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    else:
        pack.write_bytes(data.replace(b"fedipress render pack\n", b"fedipress render pock\n"))
    site = _clone(origin, workspace, saved)
    lines: list[str] = []
    result = _ci_build(site, lines)
    notes = [line for line in lines if line.startswith("note:")]
    assert notes, lines
    if damage == "flipped":
        assert any("1 file in the render cache did not match its checksum" in n
                   for n in notes), notes
    elif damage == "other-version":
        assert any("not a fedipress render pack" in n for n in notes), notes
    else:
        assert any("render cache" in n for n in notes), notes
        assert any("parse.pickle" in n for n in notes), notes
    assert _tree(site / "public") == cold_tree
    # The damaged pack was replaced by a sound one: the next run trusts it again.
    fresh = RenderPack(site / ".fedipress" / "cache")
    assert fresh.load() is None and len(fresh) == result.written
    fresh.close()


def test_a_clean_ci_build_writes_the_render_pack_anew(origin: Path) -> None:
    workspace = origin.parent / "ws" / "site"
    saved = _previous_ci_run(origin, workspace)
    site = _clone(origin, workspace, saved)
    pack_file = site / ".fedipress" / "cache" / RenderPack.FILE_NAME
    before = pack_file.stat().st_size
    result = run_build(load_config(site / "site.yaml"), BuildOptions(ci=True, clean=True),
                       log=lambda _line: None).result
    # Nothing taken from the pack, nothing appended to it: one copy of each output.
    assert result.from_render_cache == 0
    pack = RenderPack(pack_file.parent)
    assert pack.load() is None and len(pack) == result.written
    tree = _tree(site / "public")
    for path, digest in tree.items():
        held = pack.get(path, pack._index[path][0])
        assert held is not None and hashlib.sha256(held[0]).hexdigest() == digest == held[1]
    pack.close()
    assert pack_file.stat().st_size < before * 1.5
