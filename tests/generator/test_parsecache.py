"""The parse cache keeps finished Posts by file stat: every kind of change must re-parse."""

from __future__ import annotations

import os
import pickle
import sys
import types
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import markdown
import pytest

from fedipress.generator import parsecache
from fedipress.generator.content import ParseCache, load_site
from fedipress.generator.parsecache import _dumps
from fedipress.model import Post
from support.content import make_config, write

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)




def cached_load(root: Path, **kwargs: object) -> tuple[dict[str, Post], ParseCache]:
    """A fresh process's load: cache files read, the site loaded, the cache saved."""
    cache = ParseCache(root / "cache")
    cache.load()
    site = load_site(make_config(root), now=NOW, cache=cache, **kwargs).site  # type: ignore[arg-type]
    cache.save()
    return {p.source: p for p in (*site.posts, *site.pages)}, cache


def fresh_load(root: Path) -> dict[str, Post]:
    site = load_site(make_config(root), now=NOW).site
    return {p.source: p for p in (*site.posts, *site.pages)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(tmp_path, "posts/2026-01-01-a.md",
          "---\ntitle: Aaaa\ntags: [x, y]\nmood: calm\n---\nBody *one*.\n\n```python\nx = 1\n```\n")
    write(tmp_path, "posts/2026-01-02-b.md",
          "---\ntitle: B\nsummary: Own <summary>\n---\nFirst.\n\n<!--more-->\n\nRest.\n")
    write(tmp_path, "posts/c/index.md", "---\ntitle: C\ndate: 2026-01-03\n---\n![i](pic.png)\n")
    write(tmp_path, "posts/c/pic.png", "png")
    write(tmp_path, "pages/about.md", "---\ntitle: About\n---\nHi.\n")
    return tmp_path


def test_cached_posts_equal_a_fresh_load_and_need_no_parse(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fedipress.generator.content as content_module

    first, _ = cached_load(root)
    assert first == fresh_load(root)
    monkeypatch.setattr(content_module, "_parse", lambda *a: pytest.fail("parsed"))
    monkeypatch.setattr(content_module, "render_markdown", lambda *a, **k: pytest.fail("rendered"))
    second, cache = cached_load(root)
    assert second == first  # fingerprints, extra, tags, dates, summaries included
    assert (cache.hits, cache.misses) == (4, 0)
    assert dict(second["posts/2026-01-01-a.md"].extra) == {"mood": "calm"}
    assert second["posts/2026-01-02-b.md"].summary_html == "<p>Own &lt;summary&gt;</p>"


def test_same_size_new_mtime_is_parsed_again(root: Path) -> None:
    cached_load(root)
    post = root / "content" / "posts" / "2026-01-01-a.md"
    post.write_text(post.read_text(encoding="utf-8").replace("Aaaa", "Bbbb"), encoding="utf-8")
    st = post.stat()
    os.utime(post, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    posts, _ = cached_load(root)
    assert posts["posts/2026-01-01-a.md"].title == "Bbbb"
    assert posts == fresh_load(root)


def test_same_mtime_new_size_is_parsed_again(root: Path) -> None:
    post = root / "content" / "posts" / "2026-01-01-a.md"
    before = post.stat()
    cached_load(root)
    post.write_text(post.read_text(encoding="utf-8") + "\nMore words.\n", encoding="utf-8")
    os.utime(post, ns=(before.st_atime_ns, before.st_mtime_ns))
    posts, _ = cached_load(root)
    assert "More words." in posts["posts/2026-01-01-a.md"].html
    assert posts == fresh_load(root)


def test_a_bundle_file_added_is_seen(root: Path) -> None:
    posts, _ = cached_load(root)
    assert posts["posts/c/index.md"].bundle_files == ("pic.png",)
    write(root, "posts/c/notes.txt", "n")  # index.md itself is untouched
    posts, _ = cached_load(root)
    assert posts["posts/c/index.md"].bundle_files == ("notes.txt", "pic.png")
    assert posts == fresh_load(root)


def test_a_markdown_upgrade_renders_again(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached_load(root)
    monkeypatch.setattr(markdown, "__version__", "999.0")
    _, cache = cached_load(root)
    assert cache.misses == 4


def test_drafts_flag_and_edits_through_the_delta_file(root: Path) -> None:
    write(root, "posts/2026-01-04-d.md", "---\ntitle: D\ndraft: true\n---\nDraft.\n")
    posts, _ = cached_load(root)
    assert "posts/2026-01-04-d.md" not in posts
    posts, _ = cached_load(root, drafts=True)
    assert posts["posts/2026-01-04-d.md"].draft
    base = (root / "cache" / ParseCache.FILE_NAME).read_bytes()
    write(root, "posts/2026-01-02-b.md", "---\ntitle: B2\n---\nOther.\n")
    posts, _ = cached_load(root, drafts=True)
    assert (root / "cache" / ParseCache.FILE_NAME).read_bytes() == base
    assert (root / "cache" / ParseCache.DELTA_FILE_NAME).is_file()
    again, cache = cached_load(root, drafts=True)
    assert again == posts and posts["posts/2026-01-02-b.md"].title == "B2"
    assert cache.misses == 0


def test_touched_file_keeps_its_post_object_in_a_long_lived_cache(root: Path) -> None:
    cache = ParseCache(root / "cache")
    config = make_config(root)
    first = load_site(config, now=NOW, cache=cache).site
    cache.save(write=False)
    post = root / "content" / "posts" / "2026-01-01-a.md"
    st = post.stat()
    os.utime(post, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    second = load_site(config, now=NOW, cache=cache).site
    assert [id(p) for p in second.posts] == [id(p) for p in first.posts]


def test_old_cache_files_are_removed_and_an_other_version_is_ignored(root: Path) -> None:
    (root / "cache").mkdir()
    for name in ParseCache.OLD_FILE_NAMES:
        (root / "cache" / name).write_bytes(b"old")
    cached_load(root)
    assert not any((root / "cache" / n).exists() for n in ParseCache.OLD_FILE_NAMES)
    data = pickle.loads((root / "cache" / ParseCache.FILE_NAME).read_bytes())
    (root / "cache" / ParseCache.FILE_NAME).write_bytes(
        _dumps((ParseCache.VERSION + 1, *data[1:])))
    _, cache = cached_load(root)
    assert cache.misses == 4


def _as_written_before_the_move(data: tuple[object, ...]) -> bytes:
    """`data` pickled as fedipress wrote it while the module was fedipress.parsecache (cache
    version 5): the Posts and mappings unpickle through functions named by that path."""
    old = types.ModuleType("fedipress.parsecache")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("_post", "_mapping"):
            real = getattr(parsecache, name)
            fake = types.FunctionType(real.__code__, real.__globals__, name)
            fake.__module__, fake.__qualname__ = old.__name__, name
            setattr(old, name, fake)
            patch.setattr(parsecache, name, fake)
        patch.setitem(sys.modules, old.__name__, old)
        blob = _dumps((5, *data[1:]))
    assert b"fedipress.parsecache" in blob and b"fedipress.generator" not in blob
    return blob


def test_a_cache_written_before_the_modules_moved_is_rebuilt(root: Path) -> None:
    first, _ = cached_load(root)
    path = root / "cache" / ParseCache.FILE_NAME
    path.write_bytes(_as_written_before_the_move(pickle.loads(path.read_bytes())))
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(path.read_bytes())  # what the load has to survive

    posts, cache = cached_load(root)
    assert (cache.hits, cache.misses) == (0, 4)
    assert posts == first == fresh_load(root)
    rebuilt = path.read_bytes()
    assert b"fedipress.generator.parsecache" in rebuilt and b"fedipress.parsecache" not in rebuilt
    _, cache = cached_load(root)
    assert (cache.hits, cache.misses) == (4, 0)


def test_a_cache_from_before_the_move_is_not_used_even_if_the_old_module_lingers(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stale fedipress/parsecache.py left by a careless upgrade would let the old pickle load:
    # the version number still turns it away.
    cached_load(root)
    path = root / "cache" / ParseCache.FILE_NAME
    path.write_bytes(_as_written_before_the_move(pickle.loads(path.read_bytes())))
    stale = types.ModuleType("fedipress.parsecache")
    stale._post = parsecache._post  # type: ignore[attr-defined]
    stale._mapping = parsecache._mapping  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, stale.__name__, stale)
    assert pickle.loads(path.read_bytes())[0] == 5
    _, cache = cached_load(root)
    assert (cache.hits, cache.misses) == (0, 4)


def test_cache_survives_a_config_change_only_by_reparsing(root: Path) -> None:
    cached_load(root)
    cache = ParseCache(root / "cache")
    cache.load()
    other = replace(make_config(root), base_url="https://elsewhere.example/")
    site = load_site(other, now=NOW, cache=cache).site
    assert all(p.url.startswith("https://elsewhere.example/") for p in site.posts)
    assert site == load_site(other, now=NOW).site
